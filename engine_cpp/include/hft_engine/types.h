#pragma once
/// \file types.h
/// Scalar vocabulary of the engine: ids, integer price ticks, integer quantities, sides, order kinds.
/// No floating point anywhere: prices are ticks, quantities are whole units.

#include <cstdint>

namespace hft {

/// Caller-chosen order identifier; unique among the live orders of one symbol.
using OrderId = std::uint64_t;
/// Price in integer ticks, valid range 1..max_price of the symbol.
using Price = std::int64_t;
/// Quantity in whole units; always > 0 for a valid order.
using Quantity = std::int64_t;
/// Dense symbol handle returned by Engine::add_symbol (0, 1, 2, ...); -1 means "unknown".
using SymbolId = std::int32_t;
/// Index of an order slot in the preallocated OrderPool.
using SlotIndex = std::uint32_t;

/// Sentinel for "no slot" in intrusive links.
inline constexpr SlotIndex kNoSlot = 0xFFFFFFFFu;
/// Largest max_price a symbol may declare (bounds the tick-indexed level arrays).
inline constexpr Price kMaxPriceLimit = 100'000'000;
/// Largest quantity of one order. With at most 2^31 live orders a level's total stays below
/// 2^63, so aggregate quantities can never overflow.
inline constexpr Quantity kMaxQuantity = 0xFFFF'FFFFll;

/// Side of an order. Values are part of the Python/numpy contract.
enum class Side : std::uint8_t { Buy = 0, Sell = 1 };

/// Kind of an order. Values are part of the Python/numpy contract.
enum class OrderType : std::uint8_t {
  Limit = 0,   ///< good-till-cancelled: residual rests on the book
  Market = 1,  ///< matches at any price; residual is discarded
  Ioc = 2,     ///< immediate-or-cancel limit: matches up to its price; residual is discarded
  Cancel = 3,  ///< batch rows only: cancel the live order with this id
};

/// True for the two defined sides; guards against values cast from untrusted integers.
constexpr bool is_valid(Side side) noexcept { return side == Side::Buy || side == Side::Sell; }

/// The opposite side.
constexpr Side opposite(Side side) noexcept { return side == Side::Buy ? Side::Sell : Side::Buy; }

}  // namespace hft
