#pragma once
/// \file recording_listener.h
/// Test-only FillListener that keeps every fill for later assertions.

#include <vector>

#include "hft_engine/fill.h"

namespace hft {

/// Stores fills in arrival order.
class RecordingListener final : public FillListener {
 public:
  /// Appends the fill.
  void on_fill(const Fill& fill) override { fills_.push_back(fill); }
  /// All fills seen so far.
  const std::vector<Fill>& fills() const noexcept { return fills_; }
  /// Forgets recorded fills.
  void clear() noexcept { fills_.clear(); }

 private:
  std::vector<Fill> fills_;
};

/// Field-wise equality, so Catch2 can compare fills directly.
inline bool operator==(const Fill& a, const Fill& b) {
  return a.symbol == b.symbol && a.maker_id == b.maker_id && a.taker_id == b.taker_id &&
         a.price == b.price && a.qty == b.qty;
}

/// Field-wise equality for depth rows.
inline bool operator==(const DepthLevel& a, const DepthLevel& b) {
  return a.price == b.price && a.total_qty == b.total_qty && a.order_count == b.order_count;
}

}  // namespace hft
