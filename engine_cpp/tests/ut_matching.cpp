// Matching rules: price-time priority, partial fills, market/IOC residuals, cancels and depth.
#include <catch2/catch.hpp>

#include <vector>

#include "hft_engine/engine.h"
#include "recording_listener.h"

namespace hft {
namespace {

struct Fixture {
  Engine engine{1024};
  SymbolId sym = engine.add_symbol("TEST", 1000);
  RecordingListener fills;

  SubmitResult limit(OrderId id, Side side, Price price, Quantity qty) {
    return engine.submit({sym, id, side, OrderType::Limit, price, qty}, fills);
  }
  SubmitResult send(OrderId id, Side side, OrderType type, Price price, Quantity qty) {
    return engine.submit({sym, id, side, type, price, qty}, fills);
  }
  std::vector<DepthLevel> bids(std::size_t n = 10) {
    std::vector<DepthLevel> b, a;
    engine.depth(sym, n, b, a);
    return b;
  }
  std::vector<DepthLevel> asks(std::size_t n = 10) {
    std::vector<DepthLevel> b, a;
    engine.depth(sym, n, b, a);
    return a;
  }
};

TEST_CASE("non-crossing limit orders rest and aggregate per level", "[book]") {
  Fixture f;
  CHECK(f.limit(1, Side::Buy, 100, 10).resting_qty == 10);
  CHECK(f.limit(2, Side::Buy, 100, 5).resting_qty == 5);
  CHECK(f.limit(3, Side::Buy, 99, 7).resting_qty == 7);
  CHECK(f.limit(4, Side::Sell, 101, 3).resting_qty == 3);
  CHECK(f.fills.fills().empty());
  CHECK(f.bids() == std::vector<DepthLevel>{{100, 15, 2}, {99, 7, 1}});
  CHECK(f.asks() == std::vector<DepthLevel>{{101, 3, 1}});
  CHECK(f.engine.live_orders() == 4);
  CHECK(f.engine.book(f.sym)->best_bid() == 100);
  CHECK(f.engine.book(f.sym)->best_ask() == 101);
}

TEST_CASE("fills follow price then time priority at the maker's price", "[book]") {
  Fixture f;
  f.limit(1, Side::Sell, 102, 5);
  f.limit(2, Side::Sell, 101, 5);
  f.limit(3, Side::Sell, 101, 5);
  const SubmitResult r = f.limit(9, Side::Buy, 102, 12);
  CHECK(r.status == Status::Ok);
  CHECK(r.filled_qty == 12);
  CHECK(r.resting_qty == 0);
  CHECK(f.fills.fills() == std::vector<Fill>{{f.sym, 2, 9, 101, 5}, {f.sym, 3, 9, 101, 5},
                                             {f.sym, 1, 9, 102, 2}});
  CHECK(f.asks() == std::vector<DepthLevel>{{102, 3, 1}});
  CHECK(f.engine.live_orders() == 1);
}

TEST_CASE("partial fill of a maker keeps its place in the queue", "[book]") {
  Fixture f;
  f.limit(1, Side::Buy, 50, 10);
  f.limit(2, Side::Buy, 50, 10);
  f.limit(10, Side::Sell, 50, 4);
  f.limit(11, Side::Sell, 50, 4);
  CHECK(f.fills.fills() == std::vector<Fill>{{f.sym, 1, 10, 50, 4}, {f.sym, 1, 11, 50, 4}});
  CHECK(f.bids() == std::vector<DepthLevel>{{50, 12, 2}});
  f.fills.clear();
  f.limit(12, Side::Sell, 50, 5);
  CHECK(f.fills.fills() == std::vector<Fill>{{f.sym, 1, 12, 50, 2}, {f.sym, 2, 12, 50, 3}});
}

TEST_CASE("crossing limit order rests its residual at its own price", "[book]") {
  Fixture f;
  f.limit(1, Side::Sell, 100, 5);
  const SubmitResult r = f.limit(2, Side::Buy, 105, 8);
  CHECK(r.filled_qty == 5);
  CHECK(r.resting_qty == 3);
  CHECK(f.bids() == std::vector<DepthLevel>{{105, 3, 1}});
  CHECK(f.asks().empty());
}

TEST_CASE("limit order does not trade through its limit price", "[book]") {
  Fixture f;
  f.limit(1, Side::Sell, 101, 5);
  const SubmitResult r = f.limit(2, Side::Buy, 100, 5);
  CHECK(r.filled_qty == 0);
  CHECK(r.resting_qty == 5);
  CHECK(f.fills.fills().empty());
}

TEST_CASE("market order sweeps levels and discards its residual", "[book]") {
  Fixture f;
  f.limit(1, Side::Buy, 100, 5);
  f.limit(2, Side::Buy, 90, 5);
  f.limit(3, Side::Buy, 1, 5);
  const SubmitResult r = f.send(9, Side::Sell, OrderType::Market, 0, 100);
  CHECK(r.status == Status::Ok);
  CHECK(r.filled_qty == 15);
  CHECK(r.resting_qty == 0);
  CHECK(f.fills.fills().size() == 3);
  CHECK(f.bids().empty());
  CHECK(f.engine.live_orders() == 0);
  // Order 9 never rested, so its id is free for reuse.
  CHECK(f.limit(9, Side::Sell, 500, 1).status == Status::Ok);
}

TEST_CASE("market order reaches the max_price level", "[book]") {
  Fixture f;
  f.limit(1, Side::Sell, 1000, 5);
  CHECK(f.send(2, Side::Buy, OrderType::Market, 0, 5).filled_qty == 5);
}

TEST_CASE("market order against an empty book fills nothing", "[book]") {
  Fixture f;
  const SubmitResult r = f.send(1, Side::Buy, OrderType::Market, 0, 10);
  CHECK(r.status == Status::Ok);
  CHECK(r.filled_qty == 0);
  CHECK(f.engine.live_orders() == 0);
}

TEST_CASE("IOC matches up to its limit and never rests", "[book]") {
  Fixture f;
  f.limit(1, Side::Sell, 100, 5);
  f.limit(2, Side::Sell, 102, 5);
  const SubmitResult r = f.send(3, Side::Buy, OrderType::Ioc, 101, 20);
  CHECK(r.filled_qty == 5);
  CHECK(r.resting_qty == 0);
  CHECK(f.bids().empty());
  CHECK(f.asks() == std::vector<DepthLevel>{{102, 5, 1}});
  CHECK(f.send(4, Side::Buy, OrderType::Ioc, 101, 20).filled_qty == 0);
}

TEST_CASE("cancel removes an order from the middle, head and tail of a level", "[book]") {
  Fixture f;
  for (OrderId id = 1; id <= 4; ++id) f.limit(id, Side::Sell, 200, static_cast<Quantity>(id));
  CHECK(f.engine.cancel(f.sym, 2).cancelled_qty == 2);
  CHECK(f.engine.cancel(f.sym, 1).cancelled_qty == 1);
  CHECK(f.engine.cancel(f.sym, 4).cancelled_qty == 4);
  CHECK(f.asks() == std::vector<DepthLevel>{{200, 3, 1}});
  f.limit(5, Side::Sell, 200, 6);
  f.send(6, Side::Buy, OrderType::Market, 0, 100);
  CHECK(f.fills.fills() == std::vector<Fill>{{f.sym, 3, 6, 200, 3}, {f.sym, 5, 6, 200, 6}});
}

TEST_CASE("cancel of the best level moves best price to the next level", "[book]") {
  Fixture f;
  f.limit(1, Side::Buy, 100, 1);
  f.limit(2, Side::Buy, 40, 1);
  f.limit(3, Side::Sell, 110, 1);
  f.limit(4, Side::Sell, 900, 1);
  f.engine.cancel(f.sym, 1);
  f.engine.cancel(f.sym, 3);
  CHECK(f.engine.book(f.sym)->best_bid() == 40);
  CHECK(f.engine.book(f.sym)->best_ask() == 900);
  f.engine.cancel(f.sym, 2);
  f.engine.cancel(f.sym, 4);
  CHECK(f.engine.book(f.sym)->best_bid() == 0);
  CHECK(f.engine.book(f.sym)->best_ask() == 1001);
  CHECK(f.engine.live_orders() == 0);
}

TEST_CASE("depth returns at most N levels per side, best first", "[book]") {
  Fixture f;
  for (OrderId i = 0; i < 20; ++i) {
    f.limit(i + 1, Side::Buy, 100 - static_cast<Price>(i) * 3, 1);
    f.limit(i + 101, Side::Sell, 200 + static_cast<Price>(i) * 70, 2);
  }
  const auto bids = f.bids(5);
  const auto asks = f.asks(3);
  REQUIRE(bids.size() == 5);
  REQUIRE(asks.size() == 3);
  CHECK(bids.front().price == 100);
  CHECK(bids.back().price == 88);
  CHECK(asks == std::vector<DepthLevel>{{200, 2, 1}, {270, 2, 1}, {340, 2, 1}});
  CHECK(f.bids(0).empty());
  CHECK(f.asks(100).size() == 12);  // prices above max_price=1000 were rejected
}

TEST_CASE("symbols are independent books and ids are per symbol", "[engine]") {
  Engine engine(64);
  RecordingListener fills;
  const SymbolId a = engine.add_symbol("A", 100);
  const SymbolId b = engine.add_symbol("B", 100);
  CHECK(engine.symbol_id("A") == a);
  CHECK(engine.symbol_id("B") == b);
  CHECK(engine.symbol_id("C") == -1);
  CHECK(engine.submit({a, 1, Side::Sell, OrderType::Limit, 10, 5}, fills).status == Status::Ok);
  CHECK(engine.submit({b, 1, Side::Sell, OrderType::Limit, 10, 5}, fills).status == Status::Ok);
  CHECK(engine.submit({b, 2, Side::Buy, OrderType::Limit, 10, 2}, fills).filled_qty == 2);
  REQUIRE(fills.fills().size() == 1);
  CHECK(fills.fills()[0].symbol == b);
  CHECK(engine.cancel(a, 1).cancelled_qty == 5);
  CHECK(engine.cancel(b, 1).cancelled_qty == 3);
}

TEST_CASE("add_symbol rejects duplicates and bad max_price", "[engine]") {
  Engine engine(8);
  engine.add_symbol("X", 10);
  CHECK_THROWS_AS(engine.add_symbol("X", 10), std::invalid_argument);
  CHECK_THROWS_AS(engine.add_symbol("Y", 0), std::invalid_argument);
  CHECK_THROWS_AS(engine.add_symbol("Y", kMaxPriceLimit + 1), std::invalid_argument);
  CHECK_THROWS_AS(engine.add_symbol("", 10), std::invalid_argument);
  CHECK_THROWS_AS(Engine(0), std::invalid_argument);
}

}  // namespace
}  // namespace hft
