#pragma once
/// \file zeroed_array.h
/// Fixed-size array of trivial objects in its own PageMapping. Large tables (order slots, hash
/// entries, price levels, bitmap words) are mapped once, at construction; the MemoryMode decides
/// whether their pages are committed then (Prefault) or on first touch (Reserve).

#include <cstddef>
#include <type_traits>
#include <utility>

#include "hft_engine/memory_mode.h"
#include "hft_engine/page_mapping.h"

namespace hft {

/// Owning, non-resizable, zero-initialised array. Not copyable; movable.
template <typename T>
class ZeroedArray {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
                "ZeroedArray holds trivial types only (all-zero bytes must be a valid value)");

 public:
  ZeroedArray() = default;
  /// Maps `size` zeroed elements, committed according to `mode`; throws std::bad_alloc.
  ZeroedArray(std::size_t size, MemoryMode mode)
      : memory_(size * sizeof(T), mode), data_(static_cast<T*>(memory_.data())), size_(size) {}
  ZeroedArray(ZeroedArray&& other) noexcept
      : memory_(std::move(other.memory_)),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  ZeroedArray& operator=(ZeroedArray&& other) noexcept {
    memory_ = std::move(other.memory_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    return *this;
  }

  /// Element access without bounds checks (callers index by validated ticks/slots).
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  /// Element access without bounds checks.
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  /// Number of elements.
  std::size_t size() const noexcept { return size_; }
  /// Raw pointer to the first element.
  T* data() noexcept { return data_; }
  /// Bytes of address space mapped for the array (all resident once prefaulted).
  std::size_t mapped_bytes() const noexcept { return memory_.bytes(); }
  /// True when the kernel accepted the huge page advice for this array.
  bool huge_pages_advised() const noexcept { return memory_.huge_pages_advised(); }

 private:
  PageMapping memory_;
  T* data_ = nullptr;  // memory_.data(), typed (a moved PageMapping keeps its address)
  std::size_t size_ = 0;
};

}  // namespace hft
