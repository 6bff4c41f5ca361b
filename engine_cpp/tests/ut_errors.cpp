// Every Status code: each bad input is rejected with its code and leaves the book untouched.
#include <catch2/catch.hpp>

#include <limits>
#include <vector>

#include "hft_engine/engine.h"
#include "recording_listener.h"

namespace hft {
namespace {

struct Fixture {
  Engine engine{4};
  SymbolId sym = engine.add_symbol("ERR", 1000);
  RecordingListener fills;

  Status submit(OrderId id, Side side, OrderType type, Price price, Quantity qty, SymbolId s = 0) {
    return engine.submit({s, id, side, type, price, qty}, fills).status;
  }
  std::size_t levels() {
    std::vector<DepthLevel> b, a;
    engine.depth(sym, 100, b, a);
    return b.size() + a.size();
  }
};

TEST_CASE("invalid quantity", "[errors]") {
  Fixture f;
  CHECK(f.submit(1, Side::Buy, OrderType::Limit, 10, 0) == Status::InvalidQty);
  CHECK(f.submit(1, Side::Buy, OrderType::Limit, 10, -5) == Status::InvalidQty);
  CHECK(f.submit(1, Side::Buy, OrderType::Market, 0, 0) == Status::InvalidQty);
  CHECK(f.submit(1, Side::Buy, OrderType::Limit, 10, kMaxQuantity + 1) == Status::InvalidQty);
  CHECK(f.submit(1, Side::Buy, OrderType::Market, 0, std::numeric_limits<Quantity>::max()) == Status::InvalidQty);
  CHECK(f.submit(1, Side::Buy, OrderType::Limit, 10, kMaxQuantity) == Status::Ok);
  CHECK(f.submit(1, Side::Buy, OrderType::Ioc, 10, std::numeric_limits<Quantity>::min()) ==
        Status::InvalidQty);
  CHECK(f.engine.live_orders() == 1);
}

TEST_CASE("invalid price for limit and IOC, ignored for market", "[errors]") {
  Fixture f;
  CHECK(f.submit(1, Side::Buy, OrderType::Limit, 0, 1) == Status::InvalidPrice);
  CHECK(f.submit(1, Side::Sell, OrderType::Limit, -1, 1) == Status::InvalidPrice);
  CHECK(f.submit(1, Side::Buy, OrderType::Limit, 1001, 1) == Status::InvalidPrice);
  CHECK(f.submit(1, Side::Buy, OrderType::Ioc, std::numeric_limits<Price>::max(), 1) ==
        Status::InvalidPrice);
  CHECK(f.submit(1, Side::Buy, OrderType::Market, -7, 1) == Status::Ok);
  CHECK(f.submit(2, Side::Buy, OrderType::Limit, 1000, 1) == Status::Ok);
  CHECK(f.submit(3, Side::Sell, OrderType::Limit, 1001, 1) == Status::InvalidPrice);
  CHECK(f.levels() == 1);
}

TEST_CASE("duplicate live id is rejected for every order type", "[errors]") {
  Fixture f;
  REQUIRE(f.submit(7, Side::Buy, OrderType::Limit, 10, 1) == Status::Ok);
  CHECK(f.submit(7, Side::Buy, OrderType::Limit, 11, 1) == Status::DuplicateId);
  CHECK(f.submit(7, Side::Sell, OrderType::Market, 0, 1) == Status::DuplicateId);
  CHECK(f.submit(7, Side::Sell, OrderType::Ioc, 10, 1) == Status::DuplicateId);
  CHECK(f.fills.fills().empty());
  REQUIRE(f.engine.cancel(f.sym, 7).status == Status::Ok);
  CHECK(f.submit(7, Side::Buy, OrderType::Limit, 11, 1) == Status::Ok);
}

TEST_CASE("unknown order on cancel", "[errors]") {
  Fixture f;
  CHECK(f.engine.cancel(f.sym, 1).status == Status::UnknownOrder);
  f.submit(1, Side::Buy, OrderType::Limit, 10, 3);
  CHECK(f.engine.cancel(f.sym, 1).cancelled_qty == 3);
  CHECK(f.engine.cancel(f.sym, 1).status == Status::UnknownOrder);
  f.submit(2, Side::Sell, OrderType::Limit, 10, 3);
  f.submit(3, Side::Buy, OrderType::Limit, 10, 3);  // fully fills 2
  CHECK(f.engine.cancel(f.sym, 2).status == Status::UnknownOrder);
  CHECK(f.engine.cancel(f.sym, 3).status == Status::UnknownOrder);
}

TEST_CASE("unknown symbol", "[errors]") {
  Fixture f;
  CHECK(f.submit(1, Side::Buy, OrderType::Limit, 10, 1, 1) == Status::UnknownSymbol);
  CHECK(f.submit(1, Side::Buy, OrderType::Limit, 10, 1, -1) == Status::UnknownSymbol);
  CHECK(f.engine.cancel(99, 1).status == Status::UnknownSymbol);
  std::vector<DepthLevel> b, a;
  CHECK(f.engine.depth(5, 10, b, a) == Status::UnknownSymbol);
}

TEST_CASE("invalid side and type", "[errors]") {
  Fixture f;
  CHECK(f.submit(1, static_cast<Side>(2), OrderType::Limit, 10, 1) == Status::InvalidSide);
  CHECK(f.submit(1, static_cast<Side>(255), OrderType::Market, 10, 1) == Status::InvalidSide);
  CHECK(f.submit(1, Side::Buy, OrderType::Cancel, 10, 1) == Status::InvalidType);
  CHECK(f.submit(1, Side::Buy, static_cast<OrderType>(9), 10, 1) == Status::InvalidType);
  CHECK(f.engine.live_orders() == 0);
}

TEST_CASE("pool exhaustion rejects limit orders atomically and recovers", "[errors]") {
  Fixture f;  // capacity 4
  for (OrderId id = 1; id <= 4; ++id) REQUIRE(f.submit(id, Side::Sell, OrderType::Limit, 100, 1) == Status::Ok);
  CHECK(f.engine.live_orders() == 4);
  // Even a limit order that would fully fill is rejected before matching: no side effects.
  CHECK(f.submit(5, Side::Buy, OrderType::Limit, 100, 1) == Status::Capacity);
  CHECK(f.fills.fills().empty());
  CHECK(f.engine.live_orders() == 4);
  // Orders that never rest still work while the pool is full, and free slots as they fill.
  CHECK(f.submit(6, Side::Buy, OrderType::Ioc, 100, 1) == Status::Ok);
  CHECK(f.submit(7, Side::Buy, OrderType::Market, 0, 1) == Status::Ok);
  CHECK(f.engine.live_orders() == 2);
  CHECK(f.submit(8, Side::Sell, OrderType::Limit, 200, 1) == Status::Ok);
  CHECK(f.submit(9, Side::Sell, OrderType::Limit, 200, 1) == Status::Ok);
  CHECK(f.submit(10, Side::Sell, OrderType::Limit, 200, 1) == Status::Capacity);
  REQUIRE(f.engine.cancel(f.sym, 8).status == Status::Ok);
  CHECK(f.submit(10, Side::Sell, OrderType::Limit, 200, 1) == Status::Ok);
}

TEST_CASE("status names match the Python enum", "[errors]") {
  CHECK(std::string(to_string(Status::Ok)) == "OK");
  CHECK(std::string(to_string(Status::Capacity)) == "CAPACITY");
  CHECK(static_cast<int>(Status::Capacity) == 8);
}

}  // namespace
}  // namespace hft
