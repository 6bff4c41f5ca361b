// OrderIndex sizing and backward-shift deletion.
#include "hft_engine/order_index.h"

#include <bit>

namespace hft {

namespace {

std::size_t table_size_for(std::uint32_t max_entries) {
  // Load factor <= 0.5 keeps linear-probe chains short.
  const std::size_t wanted = static_cast<std::size_t>(max_entries) * 2;
  return std::bit_ceil(wanted < 16 ? std::size_t{16} : wanted);
}

}  // namespace

OrderIndex::OrderIndex(std::uint32_t max_entries, MemoryMode mode)
    : table_(table_size_for(max_entries), mode),
      mask_(table_.size() - 1),
      shift_(64u - static_cast<unsigned>(std::countr_zero(table_.size()))) {}

bool OrderIndex::erase(SymbolId symbol, OrderId id) noexcept {
  std::size_t hole = home(symbol, id);
  for (;; hole = (hole + 1) & mask_) {
    const Entry& e = table_[hole];
    if (e.slot_plus_one == 0) return false;
    if (e.id == id && e.symbol == symbol) break;
  }
  // Backward shift: pull later entries of the probe run into the hole when their home position
  // is not cyclically after the hole, so no tombstones are needed.
  for (std::size_t j = (hole + 1) & mask_;; j = (j + 1) & mask_) {
    const Entry& e = table_[j];
    if (e.slot_plus_one == 0) break;
    const std::size_t ideal = home(e.symbol, e.id);
    if (((j - ideal) & mask_) >= ((j - hole) & mask_)) {
      table_[hole] = e;
      hole = j;
    }
  }
  table_[hole] = Entry{};
  return true;
}

}  // namespace hft
