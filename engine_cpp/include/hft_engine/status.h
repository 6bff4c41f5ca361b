#pragma once
/// \file status.h
/// Result codes. Every rejected input maps to one of these; the engine never throws on the order path.

#include <cstdint>

namespace hft {

/// Outcome of an order-path call. Values (and their order) are part of the Python/numpy contract.
enum class Status : std::uint8_t {
  Ok = 0,         ///< accepted (possibly filled, partially filled, or rested)
  InvalidQty,     ///< qty <= 0 or qty > kMaxQuantity
  InvalidPrice,   ///< limit/IOC price <= 0 or > the symbol's max_price
  DuplicateId,    ///< the order id is already live on this symbol
  UnknownOrder,   ///< cancel of an id that is not live on this symbol
  UnknownSymbol,  ///< symbol id was never returned by add_symbol
  InvalidSide,    ///< side is neither Buy nor Sell
  InvalidType,    ///< order type is not Limit/Market/Ioc (Cancel only in batches)
  Capacity,       ///< a limit order arrived while the order pool is full; nothing happened
};

/// Stable upper-case name of a status ("OK", "INVALID_QTY", ...), matching the Python IntEnum.
const char* to_string(Status status) noexcept;

}  // namespace hft
