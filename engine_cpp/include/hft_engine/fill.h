#pragma once
/// \file fill.h
/// A trade between a resting (maker) order and an incoming (taker) order, and the listener
/// interface through which fills leave the book. The book never stores fills itself.

#include "hft_engine/types.h"

namespace hft {

/// One execution. The price is always the maker's resting price.
struct Fill {
  SymbolId symbol;   ///< book the trade happened in
  OrderId maker_id;  ///< resting order
  OrderId taker_id;  ///< incoming order
  Price price;       ///< execution price in ticks (the maker's level)
  Quantity qty;      ///< executed quantity, > 0
};

/// Receives fills in execution order. Called synchronously from inside (noexcept) matching, so
/// an implementation must not call back into the engine, and an exception escaping on_fill
/// terminates the process.
class FillListener {
 public:
  virtual ~FillListener() = default;
  /// Called once per execution, in time order.
  virtual void on_fill(const Fill& fill) = 0;
};

/// Listener that drops fills; useful when only the book state matters.
class NullFillListener final : public FillListener {
 public:
  /// Ignores the fill.
  void on_fill(const Fill& /*fill*/) override {}
};

}  // namespace hft
