#pragma once
/// \file batch.h
/// Fixed binary layouts of batch rows (mirrored by the numpy ORDER_DTYPE / RESULT_DTYPE /
/// FILL_DTYPE) and the loop that runs a batch through an Engine. Layouts are asserted at compile
/// time, so a change here cannot silently desynchronise the Python side.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "hft_engine/engine.h"
#include "hft_engine/types.h"

namespace hft {

/// One input row (32 bytes, little-endian, no implicit padding before `kind`).
struct OrderRow {
  std::uint64_t order_id;  ///< id to submit, or to cancel for kind == Cancel
  std::int64_t price;      ///< ticks (ignored for Market and Cancel)
  std::int64_t qty;        ///< quantity (ignored for Cancel)
  std::int32_t symbol;     ///< symbol id
  std::uint8_t side;       ///< Side value (ignored for Cancel)
  std::uint8_t kind;       ///< OrderType value
};
static_assert(sizeof(OrderRow) == 32 && offsetof(OrderRow, symbol) == 24 && offsetof(OrderRow, kind) == 29);

/// One output row per input row (24 bytes). For Cancel rows filled_qty is the cancelled quantity.
struct ResultRow {
  std::int64_t filled_qty;   ///< executed (or, for Cancel rows, cancelled) quantity
  std::int64_t resting_qty;  ///< left on the book
  std::uint32_t status;      ///< Status value
  std::uint32_t fill_count;  ///< number of FillRow entries produced by this row
};
static_assert(sizeof(ResultRow) == 24);

/// One execution (40 bytes), tagged with the input row that caused it.
struct FillRow {
  std::uint64_t maker_id;  ///< resting order
  std::uint64_t taker_id;  ///< incoming order
  std::int64_t price;      ///< ticks
  std::int64_t qty;        ///< executed quantity
  std::uint32_t row;       ///< index of the input row
  std::int32_t symbol;     ///< symbol id
};
static_assert(sizeof(FillRow) == 40);

/// Runs `orders` in order, writing one ResultRow per input and appending fills to `fills`
/// (which may reallocate; reserve to avoid it). `results.size()` must equal `orders.size()`.
void process_batch(Engine& engine, std::span<const OrderRow> orders, std::span<ResultRow> results,
                   std::vector<FillRow>& fills);

}  // namespace hft
