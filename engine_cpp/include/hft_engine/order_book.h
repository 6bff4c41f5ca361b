#pragma once
/// \file order_book.h
/// Price-time priority limit order book of one symbol. Price levels are a tick-indexed array (O(1)
/// access), non-empty ticks are tracked in a LevelBitmap, each level is an intrusive FIFO of pool
/// slots. The book does no input validation: Engine checks every request before calling it.

#include <cstddef>
#include <vector>

#include "hft_engine/fill.h"
#include "hft_engine/level_bitmap.h"
#include "hft_engine/memory_mode.h"
#include "hft_engine/order_index.h"
#include "hft_engine/order_pool.h"
#include "hft_engine/price_level.h"
#include "hft_engine/types.h"
#include "hft_engine/zeroed_array.h"

namespace hft {

/// One symbol's book. Because a book is never crossed after matching, bids and asks share one
/// level array: every non-empty tick <= best bid is a bid level, every one >= best ask an ask level.
class OrderBook {
 public:
  /// Book for ticks 1..max_price, storing orders in the engine-wide `pool` and `index`; its level
  /// array and bitmap are committed according to `mode`.
  OrderBook(SymbolId symbol, Price max_price, OrderPool& pool, OrderIndex& index,
            MemoryMode mode = MemoryMode::Prefault);

  /// Matches an incoming order against the opposite side, best price first, oldest first within a
  /// level. `limit` is the worst acceptable price (ignored when `market`). Returns filled quantity.
  Quantity match(OrderId taker_id, Side side, Price limit, bool market, Quantity qty,
                 FillListener& listener) noexcept;

  /// Rests `qty` at `price` in slot `slot` (already acquired; the caller checked the book would
  /// not cross at this price, i.e. it ran match() first).
  void rest(SlotIndex slot, OrderId id, Side side, Price price, Quantity qty) noexcept;

  /// Removes the live order in `slot` from its level and the index, frees the slot, and returns
  /// its open quantity.
  Quantity remove(SlotIndex slot) noexcept;

  /// Top `levels` price levels per side, best first.
  void depth(std::size_t levels, std::vector<DepthLevel>& bids, std::vector<DepthLevel>& asks) const;

  /// Highest bid tick, or 0 when there are no bids.
  Price best_bid() const noexcept { return best_bid_; }
  /// Lowest ask tick, or max_price + 1 when there are no asks.
  Price best_ask() const noexcept { return best_ask_; }
  /// Largest valid tick.
  Price max_price() const noexcept { return max_price_; }
  /// Symbol id of this book.
  SymbolId symbol() const noexcept { return symbol_; }
  /// Bytes mapped for the level array and the bitmap.
  std::size_t memory_bytes() const noexcept { return levels_.mapped_bytes() + occupied_.memory_bytes(); }

 private:
  void unlink(PriceLevel& level, const Order& order) noexcept;
  void on_level_emptied(Side side, Price price) noexcept;

  SymbolId symbol_;
  Price max_price_;
  Price best_bid_ = 0;
  Price best_ask_;
  OrderPool& pool_;
  OrderIndex& index_;
  ZeroedArray<PriceLevel> levels_;  // index = tick; 0 and max_price+1 stay empty sentinels
  LevelBitmap occupied_;
};

}  // namespace hft
