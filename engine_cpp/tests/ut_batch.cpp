// process_batch gives the same results and fills as the same orders submitted one by one.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "hft_engine/batch.h"
#include "recording_listener.h"

namespace hft {
namespace {

TEST_CASE("batch equals single submits on a random stream", "[batch]") {
  Engine single(256);
  Engine batched(256);
  for (Engine* e : {&single, &batched}) {
    e->add_symbol("A", 50);
    e->add_symbol("B", 50);
  }
  std::mt19937_64 rng(7);
  std::vector<OrderRow> rows;
  for (std::uint64_t i = 0; i < 5000; ++i) {
    OrderRow row{};
    row.order_id = rng() % 400;  // small id space: duplicates and cancels of dead ids happen
    row.symbol = static_cast<std::int32_t>(rng() % 3);  // 2 = unknown symbol
    row.side = static_cast<std::uint8_t>(rng() % 2);
    row.kind = static_cast<std::uint8_t>(rng() % 5);  // 4 = invalid type
    row.price = static_cast<std::int64_t>(rng() % 52);  // 0 and 51 are invalid
    row.qty = static_cast<std::int64_t>(rng() % 20);   // 0 is invalid
    rows.push_back(row);
  }
  std::vector<ResultRow> results(rows.size());
  std::vector<FillRow> fills;
  process_batch(batched, rows, results, fills);

  RecordingListener listener;
  std::size_t fill_pos = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const OrderRow& row = rows[i];
    if (row.kind == static_cast<std::uint8_t>(OrderType::Cancel)) {
      const CancelResult c = single.cancel(row.symbol, row.order_id);
      REQUIRE(results[i].status == static_cast<std::uint32_t>(c.status));
      REQUIRE(results[i].filled_qty == c.cancelled_qty);
      continue;
    }
    listener.clear();
    const SubmitResult r = single.submit({row.symbol, row.order_id, static_cast<Side>(row.side),
                                          static_cast<OrderType>(row.kind), row.price, row.qty},
                                         listener);
    REQUIRE(results[i].status == static_cast<std::uint32_t>(r.status));
    REQUIRE(results[i].filled_qty == r.filled_qty);
    REQUIRE(results[i].resting_qty == r.resting_qty);
    REQUIRE(results[i].fill_count == listener.fills().size());
    for (const Fill& f : listener.fills()) {
      REQUIRE(fill_pos < fills.size());
      const FillRow& got = fills[fill_pos++];
      CHECK(got.row == i);
      CHECK(got.symbol == f.symbol);
      CHECK(got.maker_id == f.maker_id);
      CHECK(got.taker_id == f.taker_id);
      CHECK(got.price == f.price);
      CHECK(got.qty == f.qty);
    }
  }
  CHECK(fill_pos == fills.size());
  CHECK(fills.size() > 100);  // the stream really crosses
  CHECK(single.live_orders() == batched.live_orders());
}

}  // namespace
}  // namespace hft
