#pragma once
/// \file engine.h
/// Multi-symbol matching engine: validates every request, owns the shared order pool and id index,
/// and routes to the per-symbol OrderBook. Not thread-safe: callers serialise access.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hft_engine/fill.h"
#include "hft_engine/memory_mode.h"
#include "hft_engine/order_book.h"
#include "hft_engine/order_index.h"
#include "hft_engine/order_pool.h"
#include "hft_engine/price_level.h"
#include "hft_engine/status.h"
#include "hft_engine/types.h"

namespace hft {

/// An incoming order. `side` and `type` may hold out-of-range values cast from untrusted input;
/// Engine::submit rejects them with a status.
struct OrderRequest {
  SymbolId symbol;  ///< from add_symbol
  OrderId id;       ///< caller-chosen, unique among the symbol's live orders
  Side side;        ///< Buy or Sell
  OrderType type;   ///< Limit, Market or Ioc
  Price price;      ///< limit price in ticks (ignored for Market)
  Quantity qty;     ///< 1 .. kMaxQuantity
};

/// Outcome of Engine::submit.
struct SubmitResult {
  Status status;         ///< Ok or the reason nothing happened
  Quantity filled_qty;   ///< executed against resting orders
  Quantity resting_qty;  ///< left on the book (Limit only)
};

/// Outcome of Engine::cancel.
struct CancelResult {
  Status status;           ///< Ok, UnknownSymbol or UnknownOrder
  Quantity cancelled_qty;  ///< open quantity removed from the book
};

/// The matching engine.
class Engine {
 public:
  /// Default order capacity (shared by all symbols).
  static constexpr std::uint32_t kDefaultMaxOrders = 1u << 20;
  /// Hard upper bound on max_orders.
  static constexpr std::uint32_t kMaxOrdersLimit = 1u << 31;

  /// Maps room for `max_orders` resting orders (1 .. 2^31). With MemoryMode::Prefault (the
  /// default) the pool and id index are committed here and each symbol's tables in add_symbol, so
  /// the order path never faults on engine memory; MemoryMode::Reserve commits pages on first
  /// touch instead. Throws std::invalid_argument for a bad max_orders or mode, std::bad_alloc when
  /// the kernel refuses the memory.
  explicit Engine(std::uint32_t max_orders = kDefaultMaxOrders, MemoryMode memory = MemoryMode::Prefault);
  /// Books hold references to the pool and index, so an Engine stays where it was built.
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Registers a symbol with ticks 1..max_price and returns its id; its level array and bitmap
  /// (about 24 bytes per tick) are committed here under MemoryMode::Prefault. Throws
  /// std::invalid_argument for an empty or duplicate name or max_price outside 1..kMaxPriceLimit,
  /// std::bad_alloc when the kernel refuses the memory. Not on the order path.
  SymbolId add_symbol(std::string_view name, Price max_price);

  /// Id of a registered symbol, or -1.
  SymbolId symbol_id(std::string_view name) const;

  /// Validates and executes one order; fills are reported to `listener` in execution order.
  SubmitResult submit(const OrderRequest& request, FillListener& listener) noexcept;

  /// Cancels a live order.
  CancelResult cancel(SymbolId symbol, OrderId id) noexcept;

  /// Top `levels` levels per side, best first. Returns UnknownSymbol (and leaves the vectors
  /// empty) for an unknown symbol.
  Status depth(SymbolId symbol, std::size_t levels, std::vector<DepthLevel>& bids,
               std::vector<DepthLevel>& asks) const;

  /// Number of resting orders over all symbols.
  std::uint32_t live_orders() const noexcept { return pool_.live(); }
  /// Order capacity given at construction.
  std::uint32_t max_orders() const noexcept { return pool_.capacity(); }
  /// Number of registered symbols.
  std::size_t symbol_count() const noexcept { return books_.size(); }
  /// How the tables commit their memory (fixed at construction).
  MemoryMode memory_mode() const noexcept { return memory_; }
  /// Bytes mapped for all tables: pool, index and every symbol's levels and bitmap. All of it is
  /// resident under MemoryMode::Prefault; under Reserve only the pages touched so far are.
  std::size_t memory_bytes() const noexcept;
  /// The book of a registered symbol (for inspection); nullptr if unknown.
  const OrderBook* book(SymbolId symbol) const noexcept {
    return is_known(symbol) ? books_[static_cast<std::size_t>(symbol)].get() : nullptr;
  }

 private:
  bool is_known(SymbolId symbol) const noexcept {
    return symbol >= 0 && static_cast<std::size_t>(symbol) < books_.size();
  }

  MemoryMode memory_;
  OrderPool pool_;
  OrderIndex index_;
  std::vector<std::unique_ptr<OrderBook>> books_;
  std::unordered_map<std::string, SymbolId> names_;
};

}  // namespace hft
