#pragma once
/// \file memory_mode.h
/// When the engine's tables (order pool, id index, per-symbol level arrays and bitmaps) commit
/// their memory: all up front, or page by page as the order path first touches them.

#include <cstdint>

namespace hft {

/// Memory commitment of an Engine's tables. Values are part of the Python contract.
enum class MemoryMode : std::uint8_t {
  /// Engine construction and add_symbol commit and write every page the tables span (on 2 MiB
  /// transparent huge pages where the kernel allows, 4 KiB pages otherwise), so the order path
  /// never takes a page fault on engine memory. Costs the full table size in resident memory.
  Prefault = 0,
  /// Address space only, on 4 KiB pages: the kernel commits a page when the order path first
  /// touches it (a minor page fault of a few microseconds each). Resident memory follows use.
  Reserve = 1,
};

/// True for the two defined modes; guards against values cast from untrusted integers.
constexpr bool is_valid(MemoryMode mode) noexcept {
  return mode == MemoryMode::Prefault || mode == MemoryMode::Reserve;
}

}  // namespace hft
