// Matching, resting and removal for one symbol's book (the hot path).
#include "hft_engine/order_book.h"

#include <algorithm>

namespace hft {

OrderBook::OrderBook(SymbolId symbol, Price max_price, OrderPool& pool, OrderIndex& index, MemoryMode mode)
    : symbol_(symbol),
      max_price_(max_price),
      best_ask_(max_price + 1),
      pool_(pool),
      index_(index),
      levels_(static_cast<std::size_t>(max_price) + 2, mode),
      occupied_(static_cast<std::size_t>(max_price) + 2, mode) {}

Quantity OrderBook::match(OrderId taker_id, Side side, Price limit, bool market, Quantity qty,
                          FillListener& listener) noexcept {
  const bool buy = side == Side::Buy;
  Quantity remaining = qty;
  for (;;) {
    const Price price = buy ? best_ask_ : best_bid_;
    // Crossing test: a buy takes asks up to its limit, a sell takes bids down to its limit.
    if (buy ? price > (market ? max_price_ : limit) : price < (market ? Price{1} : limit)) break;
    PriceLevel& level = levels_[static_cast<std::size_t>(price)];
    SlotIndex slot = level.head;
    while (remaining > 0 && level.order_count > 0) {
      Order& maker = pool_[slot];
      const Quantity traded = std::min(maker.qty, remaining);
      listener.on_fill(Fill{symbol_, maker.id, taker_id, price, traded});
      maker.qty -= traded;
      level.total_qty -= traded;
      remaining -= traded;
      if (maker.qty == 0) {
        const SlotIndex next = maker.next;
        index_.erase(symbol_, maker.id);
        pool_.release(slot);
        --level.order_count;
        level.head = next;
        if (next != kNoSlot) pool_[next].prev = kNoSlot;
        slot = next;
      }
    }
    if (level.order_count != 0) break;  // taker exhausted inside this level
    occupied_.clear(static_cast<std::size_t>(price));
    if (buy) {
      const std::size_t next = occupied_.find_next(static_cast<std::size_t>(price) + 1);
      best_ask_ = next == LevelBitmap::npos ? max_price_ + 1 : static_cast<Price>(next);
    } else {
      const std::size_t next = occupied_.find_prev(static_cast<std::size_t>(price) - 1);
      best_bid_ = next == LevelBitmap::npos ? 0 : static_cast<Price>(next);
    }
    if (remaining == 0) break;
  }
  return qty - remaining;
}

void OrderBook::rest(SlotIndex slot, OrderId id, Side side, Price price, Quantity qty) noexcept {
  PriceLevel& level = levels_[static_cast<std::size_t>(price)];
  Order& order = pool_[slot];
  order.id = id;
  order.qty = qty;
  order.next = kNoSlot;
  order.price = static_cast<std::uint32_t>(price);
  order.symbol = symbol_;
  order.side = side;
  if (level.order_count == 0) {
    order.prev = kNoSlot;
    level.head = slot;
    occupied_.set(static_cast<std::size_t>(price));
  } else {
    order.prev = level.tail;
    pool_[level.tail].next = slot;
  }
  level.tail = slot;
  ++level.order_count;
  level.total_qty += qty;
  index_.insert(symbol_, id, slot);
  if (side == Side::Buy) {
    best_bid_ = std::max(best_bid_, price);
  } else {
    best_ask_ = std::min(best_ask_, price);
  }
}

void OrderBook::unlink(PriceLevel& level, const Order& order) noexcept {
  if (order.prev != kNoSlot) {
    pool_[order.prev].next = order.next;
  } else {
    level.head = order.next;
  }
  if (order.next != kNoSlot) {
    pool_[order.next].prev = order.prev;
  } else {
    level.tail = order.prev;
  }
}

Quantity OrderBook::remove(SlotIndex slot) noexcept {
  const Order& order = pool_[slot];
  const Price price = order.price;
  const Side side = order.side;
  const Quantity qty = order.qty;
  PriceLevel& level = levels_[static_cast<std::size_t>(price)];
  unlink(level, order);
  --level.order_count;
  level.total_qty -= qty;
  index_.erase(symbol_, order.id);
  pool_.release(slot);
  if (level.order_count == 0) on_level_emptied(side, price);
  return qty;
}

void OrderBook::on_level_emptied(Side side, Price price) noexcept {
  occupied_.clear(static_cast<std::size_t>(price));
  if (side == Side::Buy && price == best_bid_) {
    const std::size_t next = occupied_.find_prev(static_cast<std::size_t>(price) - 1);
    best_bid_ = next == LevelBitmap::npos ? 0 : static_cast<Price>(next);
  } else if (side == Side::Sell && price == best_ask_) {
    const std::size_t next = occupied_.find_next(static_cast<std::size_t>(price) + 1);
    best_ask_ = next == LevelBitmap::npos ? max_price_ + 1 : static_cast<Price>(next);
  }
}

void OrderBook::depth(std::size_t levels, std::vector<DepthLevel>& bids,
                      std::vector<DepthLevel>& asks) const {
  bids.clear();
  asks.clear();
  for (Price p = best_bid_; p > 0 && bids.size() < levels;) {
    const PriceLevel& level = levels_[static_cast<std::size_t>(p)];
    bids.push_back(DepthLevel{p, level.total_qty, level.order_count});
    const std::size_t next = occupied_.find_prev(static_cast<std::size_t>(p) - 1);
    p = next == LevelBitmap::npos ? 0 : static_cast<Price>(next);
  }
  for (Price p = best_ask_; p <= max_price_ && asks.size() < levels;) {
    const PriceLevel& level = levels_[static_cast<std::size_t>(p)];
    asks.push_back(DepthLevel{p, level.total_qty, level.order_count});
    const std::size_t next = occupied_.find_next(static_cast<std::size_t>(p) + 1);
    p = next == LevelBitmap::npos ? max_price_ + 1 : static_cast<Price>(next);
  }
}

}  // namespace hft
