#pragma once
/// \file order.h
/// A resting order as stored in a pool slot, with the intrusive links of its price level's FIFO.

#include "hft_engine/types.h"

namespace hft {

/// Resting order. Lives in an OrderPool slot; `prev`/`next` chain the orders of one price level
/// in time priority (and `next` chains free slots while the slot is unused).
struct Order {
  OrderId id;         ///< caller's id
  Quantity qty;       ///< remaining (open) quantity
  SlotIndex prev;     ///< older order at the same level, or kNoSlot
  SlotIndex next;     ///< newer order at the same level, or kNoSlot
  std::uint32_t price;  ///< price tick (<= kMaxPriceLimit fits 32 bits)
  SymbolId symbol;    ///< owning book
  Side side;          ///< Buy or Sell
};

}  // namespace hft
