// PageMapping: anonymous mmap, huge page alignment and advice, and prefaulting.
#include "hft_engine/page_mapping.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <new>
#include <utility>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14 uapi value, for C libraries whose headers predate it
#endif

namespace hft {

namespace {

std::size_t round_up(std::size_t n, std::size_t multiple) { return (n + multiple - 1) / multiple * multiple; }

/// Commits every page of [data, data + bytes) for writing, so no later access faults. Writing is
/// what matters: a read would map the shared zero page, and the first write would still fault.
/// MADV_POPULATE_WRITE does it in one call; a kernel older than 5.14 rejects it with EINVAL, and
/// then one write per page does the same.
bool populate_for_write(void* data, std::size_t bytes, std::size_t page) {
  if (madvise(data, bytes, MADV_POPULATE_WRITE) == 0) return true;
  if (errno != EINVAL) return false;  // ENOMEM, EINTR...: the kernel could not commit the pages
  auto* p = static_cast<volatile unsigned char*>(data);
  for (std::size_t offset = 0; offset < bytes; offset += page) p[offset] = 0;
  return true;
}

}  // namespace

PageMapping::PageMapping(std::size_t bytes, MemoryMode mode) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const bool prefault = mode == MemoryMode::Prefault;
  // Huge pages only for prefaulted tables: faulted in lazily, each one would commit and zero
  // 2 MiB on the order path for a single touched slot.
  const bool huge = prefault && bytes >= kHugePageBytes;
  const std::size_t length = round_up(bytes == 0 ? 1 : bytes, huge ? kHugePageBytes : page);
  // The kernel backs a range with a huge page only where it covers a whole aligned 2 MiB, so map
  // one huge page more than needed and unmap the unaligned head and the rest of the tail.
  const std::size_t slack = huge ? kHugePageBytes : 0;
  void* raw = mmap(nullptr, length + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  auto* start = static_cast<unsigned char*>(raw);
  if (huge) {
    const auto address = reinterpret_cast<std::uintptr_t>(raw);
    const std::size_t head = round_up(address, kHugePageBytes) - address;
    if (head != 0) munmap(raw, head);
    if (slack - head != 0) munmap(start + head + length, slack - head);
    start += head;
    // EINVAL when the kernel has no THP support: 4 KiB pages then, which is the fallback.
    huge_advised_ = madvise(start, length, MADV_HUGEPAGE) == 0;
  }
  data_ = start;
  bytes_ = length;
  if (prefault && !populate_for_write(data_, bytes_, page)) {
    release();
    throw std::bad_alloc();
  }
}

PageMapping::~PageMapping() { release(); }

PageMapping::PageMapping(PageMapping&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      huge_advised_(std::exchange(other.huge_advised_, false)) {}

PageMapping& PageMapping::operator=(PageMapping&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    huge_advised_ = std::exchange(other.huge_advised_, false);
  }
  return *this;
}

void PageMapping::release() noexcept {
  if (data_ != nullptr) munmap(data_, bytes_);
  data_ = nullptr;
  bytes_ = 0;
  huge_advised_ = false;
}

}  // namespace hft
