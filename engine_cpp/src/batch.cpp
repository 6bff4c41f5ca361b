// Batch loop shared by the Python binding and the native benchmark.
#include "hft_engine/batch.h"

namespace hft {

namespace {

/// Appends fills to a FillRow vector, tagging each with the current input row.
class FillRowSink final : public FillListener {
 public:
  explicit FillRowSink(std::vector<FillRow>& out) : out_(out) {}
  void on_fill(const Fill& fill) override {
    out_.push_back(FillRow{fill.maker_id, fill.taker_id, fill.price, fill.qty, row_, fill.symbol});
  }
  void set_row(std::uint32_t row) noexcept { row_ = row; }

 private:
  std::vector<FillRow>& out_;
  std::uint32_t row_ = 0;
};

}  // namespace

void process_batch(Engine& engine, std::span<const OrderRow> orders, std::span<ResultRow> results,
                   std::vector<FillRow>& fills) {
  FillRowSink sink(fills);
  for (std::size_t i = 0; i < orders.size(); ++i) {
    const OrderRow& row = orders[i];
    ResultRow& out = results[i];
    if (row.kind == static_cast<std::uint8_t>(OrderType::Cancel)) {
      const CancelResult c = engine.cancel(row.symbol, row.order_id);
      out = ResultRow{c.cancelled_qty, 0, static_cast<std::uint32_t>(c.status), 0};
      continue;
    }
    sink.set_row(static_cast<std::uint32_t>(i));
    const std::size_t before = fills.size();
    const SubmitResult r = engine.submit(
        OrderRequest{row.symbol, row.order_id, static_cast<Side>(row.side),
                     static_cast<OrderType>(row.kind), row.price, row.qty},
        sink);
    out = ResultRow{r.filled_qty, r.resting_qty, static_cast<std::uint32_t>(r.status),
                    static_cast<std::uint32_t>(fills.size() - before)};
  }
}

}  // namespace hft
