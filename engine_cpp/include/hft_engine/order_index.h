#pragma once
/// \file order_index.h
/// (symbol, order id) -> pool slot map: preallocated open addressing with linear probing and
/// backward-shift deletion (no tombstones), so lookups stay short however long the engine runs.

#include <cstddef>
#include <cstdint>

#include "hft_engine/memory_mode.h"
#include "hft_engine/types.h"
#include "hft_engine/zeroed_array.h"

namespace hft {

/// Hash index of live orders. Capacity is fixed at construction (load factor <= 0.5).
class OrderIndex {
 public:
  /// Sizes the table for up to `max_entries` live orders, committed according to `mode`.
  explicit OrderIndex(std::uint32_t max_entries, MemoryMode mode = MemoryMode::Prefault);

  /// Slot of the live order (symbol, id), or kNoSlot.
  SlotIndex find(SymbolId symbol, OrderId id) const noexcept {
    for (std::size_t i = home(symbol, id);; i = (i + 1) & mask_) {
      const Entry& e = table_[i];
      if (e.slot_plus_one == 0) return kNoSlot;
      if (e.id == id && e.symbol == symbol) return e.slot_plus_one - 1;
    }
  }

  /// Adds (symbol, id) -> slot. The key must not be present and the table must not be full.
  void insert(SymbolId symbol, OrderId id, SlotIndex slot) noexcept {
    std::size_t i = home(symbol, id);
    while (table_[i].slot_plus_one != 0) i = (i + 1) & mask_;
    table_[i] = Entry{id, slot + 1, symbol};
  }

  /// Removes (symbol, id); returns false if it was not present.
  bool erase(SymbolId symbol, OrderId id) noexcept;

  /// Bytes mapped for the table.
  std::size_t memory_bytes() const noexcept { return table_.mapped_bytes(); }

 private:
  struct Entry {
    OrderId id;
    std::uint32_t slot_plus_one;  // 0 marks an empty entry, so zero-filled memory is an empty table
    SymbolId symbol;
  };

  std::size_t home(SymbolId symbol, OrderId id) const noexcept {
    // Fibonacci hashing: multiply by 2^64/phi and keep the top bits; mixes sequential ids well.
    const std::uint64_t key = id ^ (static_cast<std::uint64_t>(static_cast<std::uint32_t>(symbol)) << 40);
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }

  ZeroedArray<Entry> table_;
  std::size_t mask_;
  unsigned shift_;
};

}  // namespace hft
