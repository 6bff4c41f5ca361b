#pragma once
/// \file price_level.h
/// Aggregate of all resting orders at one price tick: FIFO head/tail plus running totals.

#include <cstdint>

#include "hft_engine/types.h"

namespace hft {

/// One tick of a book. Zero-filled memory is a valid empty level (order_count == 0), so a freshly
/// mapped level array needs no initialisation pass.
struct PriceLevel {
  SlotIndex head;              ///< oldest order (first to match); meaningless when empty
  SlotIndex tail;              ///< newest order; meaningless when empty
  std::uint32_t order_count;   ///< number of live orders at this tick
  Quantity total_qty;          ///< sum of their open quantities
};

/// One row of a depth snapshot.
struct DepthLevel {
  Price price;               ///< tick
  Quantity total_qty;        ///< aggregated open quantity
  std::uint32_t order_count; ///< number of orders
};

}  // namespace hft
