// Engine: request validation and routing to per-symbol books.
#include "hft_engine/engine.h"

#include <stdexcept>

namespace hft {

Engine::Engine(std::uint32_t max_orders, MemoryMode memory)
    : memory_(is_valid(memory) ? memory : throw std::invalid_argument("memory mode must be Prefault or Reserve")),
      pool_(max_orders == 0 || max_orders > kMaxOrdersLimit
                ? throw std::invalid_argument("max_orders must be in 1..2^31")
                : max_orders,
            memory),
      index_(max_orders, memory) {}

SymbolId Engine::add_symbol(std::string_view name, Price max_price) {
  if (name.empty()) throw std::invalid_argument("symbol name must not be empty");
  if (max_price < 1 || max_price > kMaxPriceLimit) {
    throw std::invalid_argument("max_price must be in 1.." + std::to_string(kMaxPriceLimit) +
                                ", got " + std::to_string(max_price));
  }
  std::string key(name);
  if (names_.contains(key)) throw std::invalid_argument("symbol '" + key + "' is already registered");
  const auto id = static_cast<SymbolId>(books_.size());
  books_.push_back(std::make_unique<OrderBook>(id, max_price, pool_, index_, memory_));
  names_.emplace(std::move(key), id);
  return id;
}

std::size_t Engine::memory_bytes() const noexcept {
  std::size_t bytes = pool_.memory_bytes() + index_.memory_bytes();
  for (const auto& book : books_) bytes += book->memory_bytes();
  return bytes;
}

SymbolId Engine::symbol_id(std::string_view name) const {
  const auto it = names_.find(std::string(name));
  return it == names_.end() ? -1 : it->second;
}

SubmitResult Engine::submit(const OrderRequest& request, FillListener& listener) noexcept {
  if (!is_known(request.symbol)) return {Status::UnknownSymbol, 0, 0};
  if (request.type != OrderType::Limit && request.type != OrderType::Market &&
      request.type != OrderType::Ioc) {
    return {Status::InvalidType, 0, 0};
  }
  if (!is_valid(request.side)) return {Status::InvalidSide, 0, 0};
  if (request.qty <= 0 || request.qty > kMaxQuantity) return {Status::InvalidQty, 0, 0};
  OrderBook& book = *books_[static_cast<std::size_t>(request.symbol)];
  const bool market = request.type == OrderType::Market;
  if (!market && (request.price <= 0 || request.price > book.max_price())) {
    return {Status::InvalidPrice, 0, 0};
  }
  if (index_.find(request.symbol, request.id) != kNoSlot) return {Status::DuplicateId, 0, 0};
  // Checked before matching so a rejected order has no side effects at all.
  const bool rests = request.type == OrderType::Limit;
  if (rests && pool_.full()) return {Status::Capacity, 0, 0};

  const Quantity filled = book.match(request.id, request.side, request.price, market, request.qty, listener);
  const Quantity residual = request.qty - filled;
  if (!rests || residual == 0) return {Status::Ok, filled, 0};
  book.rest(pool_.acquire(), request.id, request.side, request.price, residual);
  return {Status::Ok, filled, residual};
}

CancelResult Engine::cancel(SymbolId symbol, OrderId id) noexcept {
  if (!is_known(symbol)) return {Status::UnknownSymbol, 0};
  const SlotIndex slot = index_.find(symbol, id);
  if (slot == kNoSlot) return {Status::UnknownOrder, 0};
  return {Status::Ok, books_[static_cast<std::size_t>(symbol)]->remove(slot)};
}

Status Engine::depth(SymbolId symbol, std::size_t levels, std::vector<DepthLevel>& bids,
                     std::vector<DepthLevel>& asks) const {
  if (!is_known(symbol)) {
    bids.clear();
    asks.clear();
    return Status::UnknownSymbol;
  }
  books_[static_cast<std::size_t>(symbol)]->depth(levels, bids, asks);
  return Status::Ok;
}

}  // namespace hft
