#pragma once
/// \file order_pool.h
/// Preallocated storage for resting orders with an intrusive free list: acquiring and releasing a
/// slot is O(1) and never touches the heap after construction.

#include <cstddef>
#include <cstdint>

#include "hft_engine/memory_mode.h"
#include "hft_engine/order.h"
#include "hft_engine/types.h"
#include "hft_engine/zeroed_array.h"

namespace hft {

/// Fixed-capacity slab of Order slots shared by all books of an Engine.
class OrderPool {
 public:
  /// Maps `capacity` slots (1 .. 2^31), committed according to `mode`.
  explicit OrderPool(std::uint32_t capacity, MemoryMode mode = MemoryMode::Prefault);

  /// Takes a free slot, or returns kNoSlot when all `capacity` slots are live.
  SlotIndex acquire() noexcept {
    if (free_head_ != kNoSlot) {
      const SlotIndex slot = free_head_;
      free_head_ = slots_[slot].next;
      ++live_;
      return slot;
    }
    if (high_water_ < capacity_) {
      ++live_;
      return high_water_++;
    }
    return kNoSlot;
  }

  /// Returns a slot obtained from acquire().
  void release(SlotIndex slot) noexcept {
    slots_[slot].next = free_head_;
    free_head_ = slot;
    --live_;
  }

  /// The order stored in a live slot.
  Order& operator[](SlotIndex slot) noexcept { return slots_[slot]; }
  /// The order stored in a live slot.
  const Order& operator[](SlotIndex slot) const noexcept { return slots_[slot]; }

  /// True when no slot is free.
  bool full() const noexcept { return live_ == capacity_; }
  /// Number of live slots.
  std::uint32_t live() const noexcept { return live_; }
  /// Total number of slots.
  std::uint32_t capacity() const noexcept { return capacity_; }
  /// Bytes mapped for the slots.
  std::size_t memory_bytes() const noexcept { return slots_.mapped_bytes(); }

 private:
  ZeroedArray<Order> slots_;
  std::uint32_t capacity_;
  std::uint32_t live_ = 0;
  std::uint32_t high_water_ = 0;  // slots never used yet are handed out before the free list grows
  SlotIndex free_head_ = kNoSlot;
};

}  // namespace hft
