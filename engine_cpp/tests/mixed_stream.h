#pragma once
/// \file mixed_stream.h
/// Test-only generator of a deterministic mixed order stream (60% resting adds, 25% cancels of
/// live orders, 15% crossing orders), built by driving a scratch engine so every cancel names a
/// live order and every add rests. Generated in full before any measurement starts.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

#include "hft_engine/batch.h"
#include "hft_engine/engine.h"

namespace hft {

/// Runs one batch row through `engine` (cancel or submit), as process_batch would.
inline void apply_row(Engine& engine, const OrderRow& row, FillListener& listener) {
  if (row.kind == static_cast<std::uint8_t>(OrderType::Cancel)) {
    engine.cancel(row.symbol, row.order_id);
  } else {
    engine.submit({row.symbol, row.order_id, static_cast<Side>(row.side), static_cast<OrderType>(row.kind),
                   row.price, row.qty},
                  listener);
  }
}

/// Sums fill quantities; allocates nothing, so it adds no page fault of its own.
class CountingListener final : public FillListener {
 public:
  void on_fill(const Fill& fill) override { qty_ += fill.qty; }
  std::int64_t qty() const noexcept { return qty_; }

 private:
  std::int64_t qty_ = 0;
};

/// `ops` rows on symbol 0 of an engine whose symbol 0 has ticks 1..max_price. Resting adds land
/// up to `band` ticks behind the touch around the middle of the range, so a long stream spreads
/// over many pages of the level array, and ~`target_live` orders stay live.
inline std::vector<OrderRow> mixed_stream(std::size_t ops, std::uint64_t seed, Price max_price,
                                          Price band = 5000, std::size_t target_live = 1000) {
  Engine scratch(static_cast<std::uint32_t>(std::min<std::size_t>(ops + 16, Engine::kMaxOrdersLimit)),
                 MemoryMode::Reserve);
  const SymbolId sym = scratch.add_symbol("MIXED", max_price);
  const OrderBook& book = *scratch.book(sym);
  const Price mid = max_price / 2;

  // Live orders with their open quantity; fills shrink them, cancels and full fills remove them.
  struct Live final : FillListener {
    std::unordered_map<OrderId, Quantity> open;
    std::vector<OrderId> ids;
    std::unordered_map<OrderId, std::size_t> pos;
    void add(OrderId id, Quantity qty) {
      open.emplace(id, qty);
      pos.emplace(id, ids.size());
      ids.push_back(id);
    }
    void drop(OrderId id) {
      const std::size_t p = pos.at(id);
      pos[ids.back()] = p;
      ids[p] = ids.back();
      ids.pop_back();
      pos.erase(id);
      open.erase(id);
    }
    void on_fill(const Fill& fill) override {
      if ((open.at(fill.maker_id) -= fill.qty) == 0) drop(fill.maker_id);
    }
  } live;

  std::mt19937_64 rng(seed);
  auto uniform = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  std::vector<OrderRow> rows;
  rows.reserve(ops);
  OrderId next_id = 1;
  auto emit = [&](const OrderRow& row) {
    rows.push_back(row);
    if (row.kind == static_cast<std::uint8_t>(OrderType::Cancel)) {
      scratch.cancel(row.symbol, row.order_id);
      live.drop(row.order_id);
      return;
    }
    const SubmitResult r = scratch.submit({row.symbol, row.order_id, static_cast<Side>(row.side),
                                           static_cast<OrderType>(row.kind), row.price, row.qty},
                                          live);
    if (r.resting_qty > 0) live.add(row.order_id, r.resting_qty);
  };
  while (rows.size() < ops) {
    const std::int64_t pick = live.ids.size() < target_live / 2 ? 0 : uniform(0, 99);
    if (pick < 60 || (pick < 85 && live.ids.empty())) {
      const bool buy = uniform(0, 1) == 0;
      const Price bid = book.best_bid() > 0 ? book.best_bid() : mid - 1;
      const Price ask = book.best_ask() <= max_price ? book.best_ask() : mid + 1;
      const Price price = buy ? std::max<Price>(1, std::min(bid, ask - 1) - uniform(0, band))
                              : std::min(max_price, std::max(ask, bid + 1) + uniform(0, band));
      emit(OrderRow{next_id++, price, uniform(1, 100), sym, static_cast<std::uint8_t>(buy ? 0 : 1),
                    static_cast<std::uint8_t>(OrderType::Limit)});
    } else if (pick < 85) {
      const OrderId id = live.ids[static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(live.ids.size()) - 1))];
      emit(OrderRow{id, 0, 0, sym, 0, static_cast<std::uint8_t>(OrderType::Cancel)});
    } else {
      const bool buy = uniform(0, 1) == 0;
      const Price touch = buy ? book.best_ask() : book.best_bid();
      OrderType type = OrderType::Market;
      Price price = 0;
      if (pick >= 90 && touch >= 1 && touch <= max_price) {
        type = pick < 95 ? OrderType::Ioc : OrderType::Limit;
        price = buy ? std::min(touch + uniform(0, 10), max_price) : std::max(touch - uniform(0, 10), Price{1});
      }
      const Quantity qty = uniform(1, live.ids.size() > target_live ? 1000 : 100);
      emit(OrderRow{next_id++, price, qty, sym, static_cast<std::uint8_t>(buy ? 0 : 1),
                    static_cast<std::uint8_t>(type)});
    }
  }
  return rows;
}

}  // namespace hft
