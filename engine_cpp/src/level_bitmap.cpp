// LevelBitmap tier layout and successor/predecessor search.
#include "hft_engine/level_bitmap.h"

#include <bit>

namespace hft {

LevelBitmap::LevelBitmap(std::size_t size, MemoryMode mode) : size_(size) {
  std::size_t bits = size == 0 ? 1 : size;
  for (;;) {
    const std::size_t words = (bits + 63) / 64;
    tiers_.emplace_back(words, mode);
    if (words == 1) break;
    bits = words;  // the next tier holds one bit per word of this one
  }
}

std::size_t LevelBitmap::memory_bytes() const noexcept {
  std::size_t bytes = 0;
  for (const auto& tier : tiers_) bytes += tier.mapped_bytes();
  return bytes;
}

std::size_t LevelBitmap::find_next(std::size_t i) const noexcept {
  if (i >= size_) return npos;
  std::size_t tier = 0;
  std::size_t idx = i;
  for (;;) {
    const std::size_t word = idx >> 6;
    if (word < tiers_[tier].size()) {
      const std::uint64_t bits = tiers_[tier][word] & (~std::uint64_t{0} << (idx & 63));
      if (bits != 0) {
        idx = (word << 6) + static_cast<std::size_t>(std::countr_zero(bits));
        break;
      }
    }
    if (tier + 1 == tiers_.size()) return npos;
    idx = word + 1;  // continue with the words after this one, one tier up
    ++tier;
  }
  while (tier > 0) {
    --tier;
    idx = (idx << 6) + static_cast<std::size_t>(std::countr_zero(tiers_[tier][idx]));
  }
  return idx;
}

std::size_t LevelBitmap::find_prev(std::size_t i) const noexcept {
  if (size_ == 0) return npos;
  if (i >= size_) i = size_ - 1;
  std::size_t tier = 0;
  std::size_t idx = i;
  for (;;) {
    const std::size_t word = idx >> 6;
    const std::uint64_t bits = tiers_[tier][word] & (~std::uint64_t{0} >> (63 - (idx & 63)));
    if (bits != 0) {
      idx = (word << 6) + 63 - static_cast<std::size_t>(std::countl_zero(bits));
      break;
    }
    if (tier + 1 == tiers_.size() || word == 0) return npos;
    idx = word - 1;  // continue with the words before this one, one tier up
    ++tier;
  }
  while (tier > 0) {
    --tier;
    idx = (idx << 6) + 63 - static_cast<std::size_t>(std::countl_zero(tiers_[tier][idx]));
  }
  return idx;
}

}  // namespace hft
