#pragma once
/// \file page_mapping.h
/// Zero-filled anonymous memory mapped straight from the kernel for the engine's large tables,
/// committed up front or lazily according to a MemoryMode. Never the malloc heap: a heap chunk's
/// history (recycled, already resident, trimmed) would make what is committed, and when, depend
/// on earlier allocations.

#include <cstddef>

#include "hft_engine/memory_mode.h"

namespace hft {

/// Owning handle of one anonymous private mapping. Movable, not copyable.
class PageMapping {
 public:
  /// Size of a transparent huge page on x86-64 and arm64 (4 KiB base pages).
  static constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

  /// An empty mapping (data() == nullptr, bytes() == 0).
  PageMapping() noexcept = default;
  /// Maps at least `bytes` (>= 1) zeroed bytes. With MemoryMode::Prefault a mapping of at least
  /// kHugePageBytes is aligned to and rounded up to whole huge pages and advised MADV_HUGEPAGE, then
  /// every page is committed for writing before the constructor returns. Throws std::bad_alloc
  /// when the kernel refuses the mapping or its population.
  PageMapping(std::size_t bytes, MemoryMode mode);
  ~PageMapping();
  PageMapping(PageMapping&& other) noexcept;
  PageMapping& operator=(PageMapping&& other) noexcept;
  PageMapping(const PageMapping&) = delete;
  PageMapping& operator=(const PageMapping&) = delete;

  /// First byte of the mapping (page aligned; huge-page aligned when huge_pages_advised()).
  void* data() const noexcept { return data_; }
  /// Mapped length in bytes (the request rounded up to whole pages).
  std::size_t bytes() const noexcept { return bytes_; }
  /// True when the kernel accepted MADV_HUGEPAGE for this mapping. Whether it then found free
  /// huge pages is visible only in /proc/self/smaps (AnonHugePages); 4 KiB pages are the fallback.
  bool huge_pages_advised() const noexcept { return huge_advised_; }

 private:
  void release() noexcept;

  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  bool huge_advised_ = false;
};

}  // namespace hft
