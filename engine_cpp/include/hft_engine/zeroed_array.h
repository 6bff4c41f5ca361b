#pragma once
/// \file zeroed_array.h
/// Fixed-size array of trivial objects backed by calloc. Large tables (price levels, hash slots)
/// are allocated once up front; calloc lets the OS hand out zero pages lazily, so an engine with a
/// 1M-tick symbol only commits the memory its prices actually touch.

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>

namespace hft {

/// Owning, non-resizable, zero-initialised array. Not copyable; movable.
template <typename T>
class ZeroedArray {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
                "ZeroedArray holds trivial types only (all-zero bytes must be a valid value)");

 public:
  ZeroedArray() = default;
  /// Allocates `size` zeroed elements; throws std::bad_alloc on failure.
  explicit ZeroedArray(std::size_t size)
      : data_(static_cast<T*>(std::calloc(size == 0 ? 1 : size, sizeof(T)))), size_(size) {
    if (!data_) throw std::bad_alloc();
  }

  /// Element access without bounds checks (callers index by validated ticks/slots).
  T& operator[](std::size_t i) noexcept { return data_.get()[i]; }
  /// Element access without bounds checks.
  const T& operator[](std::size_t i) const noexcept { return data_.get()[i]; }
  /// Number of elements.
  std::size_t size() const noexcept { return size_; }
  /// Raw pointer to the first element.
  T* data() noexcept { return data_.get(); }

 private:
  struct Free {
    void operator()(T* p) const noexcept { std::free(p); }
  };
  std::unique_ptr<T, Free> data_;
  std::size_t size_ = 0;
};

}  // namespace hft
