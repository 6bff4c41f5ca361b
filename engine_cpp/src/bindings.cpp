// Python binding of hft::Engine (module hft_engine._core). The only file that includes pybind11.
// Single-order calls take and return plain ints and small tuples (no bound object per order);
// submit_batch works on numpy structured arrays and matches with the GIL released.
#include <pybind11/native_enum.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "hft_engine/batch.h"
#include "hft_engine/engine.h"

namespace py = pybind11;

namespace hft {
namespace {

/// Collects fills of one single-order call into a reusable buffer.
class FillBuffer final : public FillListener {
 public:
  void on_fill(const Fill& fill) override { fills_.push_back(fill); }
  void clear() noexcept { fills_.clear(); }
  const std::vector<Fill>& fills() const noexcept { return fills_; }

 private:
  std::vector<Fill> fills_;
};

/// Maps an arbitrary Python int onto the 8-bit enum domain; out-of-range values become 255,
/// which the engine rejects with InvalidSide / InvalidType instead of a Python TypeError.
std::uint8_t to_code(std::int64_t value) noexcept {
  return value >= 0 && value <= 254 ? static_cast<std::uint8_t>(value) : std::uint8_t{255};
}

SymbolId to_symbol(std::int64_t value) noexcept {
  return value >= 0 && value <= std::numeric_limits<SymbolId>::max() ? static_cast<SymbolId>(value) : -1;
}

/// Engine plus the lock that serialises it: batches run without the GIL, so the GIL alone does
/// not keep a batch and a single-order call from another thread apart.
class PyEngine {
 public:
  explicit PyEngine(std::uint32_t max_orders) : engine_(max_orders) {}

  SymbolId add_symbol(const std::string& name, Price max_price) {
    std::lock_guard lock(mutex_);
    return engine_.add_symbol(name, max_price);
  }

  SymbolId symbol_id(const std::string& name) {
    std::lock_guard lock(mutex_);
    return engine_.symbol_id(name);
  }

  py::tuple submit(std::int64_t symbol, OrderId id, std::int64_t side, std::int64_t kind, Price price,
                   Quantity qty) {
    SubmitResult result;
    {
      std::lock_guard lock(mutex_);
      buffer_.clear();
      result = engine_.submit(OrderRequest{to_symbol(symbol), id, static_cast<Side>(to_code(side)),
                                           static_cast<OrderType>(to_code(kind)), price, qty},
                              buffer_);
      // buffer_ is read below without the lock: safe because the GIL is held throughout and
      // every writer of buffer_ also holds the GIL.
    }
    const auto& fills = buffer_.fills();
    py::list out(fills.size());
    for (std::size_t i = 0; i < fills.size(); ++i) {
      const Fill& f = fills[i];
      out[i] = py::make_tuple(f.maker_id, f.taker_id, f.price, f.qty);
    }
    return py::make_tuple(static_cast<int>(result.status), result.filled_qty, result.resting_qty,
                          std::move(out));
  }

  py::tuple cancel(std::int64_t symbol, OrderId id) {
    std::lock_guard lock(mutex_);
    const CancelResult result = engine_.cancel(to_symbol(symbol), id);
    return py::make_tuple(static_cast<int>(result.status), result.cancelled_qty);
  }

  py::tuple depth(std::int64_t symbol, std::int64_t levels) {
    if (levels < 0) throw py::value_error("depth levels must be >= 0, got " + std::to_string(levels));
    std::vector<DepthLevel> bids;
    std::vector<DepthLevel> asks;
    Status status;
    {
      std::lock_guard lock(mutex_);
      status = engine_.depth(to_symbol(symbol), static_cast<std::size_t>(levels), bids, asks);
    }
    if (status != Status::Ok) {
      throw py::value_error("unknown symbol id " + std::to_string(symbol) +
                            "; expected an id returned by add_symbol()");
    }
    return py::make_tuple(to_list(bids), to_list(asks));
  }

  std::uint32_t live_orders() {
    std::lock_guard lock(mutex_);
    return engine_.live_orders();
  }

  std::uint32_t max_orders() const noexcept { return engine_.max_orders(); }

  py::tuple submit_batch(const py::array& orders) {
    check_order_array(orders);
    const auto n = static_cast<std::size_t>(orders.shape(0));
    const auto* rows = static_cast<const OrderRow*>(orders.data());
    py::array_t<ResultRow> results(static_cast<py::ssize_t>(n));
    ResultRow* out = results.mutable_data();
    std::vector<FillRow> fills;
    {
      py::gil_scoped_release release;
      fills.reserve(n / 2 + 16);
      // Lock taken after the GIL is released and dropped before it is re-acquired: no lock-order
      // inversion with a thread that holds the GIL and waits for the lock.
      std::lock_guard lock(mutex_);
      process_batch(engine_, std::span<const OrderRow>(rows, n), std::span<ResultRow>(out, n), fills);
    }
    py::array_t<FillRow> fill_array(static_cast<py::ssize_t>(fills.size()));
    if (!fills.empty()) std::memcpy(fill_array.mutable_data(), fills.data(), fills.size() * sizeof(FillRow));
    return py::make_tuple(std::move(results), std::move(fill_array));
  }

 private:
  static py::list to_list(const std::vector<DepthLevel>& levels) {
    py::list out(levels.size());
    for (std::size_t i = 0; i < levels.size(); ++i) {
      out[i] = py::make_tuple(levels[i].price, levels[i].total_qty, levels[i].order_count);
    }
    return out;
  }

  static void check_order_array(const py::array& orders) {
    const py::dtype expected = py::dtype::of<OrderRow>();
    if (!orders.dtype().equal(expected)) {
      throw py::type_error("submit_batch expects a numpy array of hft_engine.ORDER_DTYPE " +
                           py::str(expected).cast<std::string>() + ", got dtype " +
                           py::str(orders.dtype()).cast<std::string>() +
                           "; build it with np.zeros(n, dtype=hft_engine.ORDER_DTYPE)");
    }
    if (orders.ndim() != 1) {
      throw py::value_error("submit_batch expects a 1-d array, got ndim=" + std::to_string(orders.ndim()));
    }
    if (!(orders.flags() & py::array::c_style)) {
      throw py::value_error(
          "submit_batch expects a C-contiguous array, got a strided view; pass np.ascontiguousarray(a)");
    }
    if (reinterpret_cast<std::uintptr_t>(orders.data()) % alignof(OrderRow) != 0) {
      throw py::value_error("submit_batch expects an 8-byte aligned array, got an unaligned buffer; "
                            "pass a copy: np.array(a, dtype=hft_engine.ORDER_DTYPE)");
    }
  }

  Engine engine_;
  std::mutex mutex_;
  FillBuffer buffer_;
};

}  // namespace
}  // namespace hft

PYBIND11_MODULE(_core, m) {
  m.doc() = "Price-time priority limit order book (C++), see hft_engine for the public API.";

  PYBIND11_NUMPY_DTYPE(hft::OrderRow, order_id, price, qty, symbol, side, kind);
  PYBIND11_NUMPY_DTYPE(hft::ResultRow, filled_qty, resting_qty, status, fill_count);
  PYBIND11_NUMPY_DTYPE(hft::FillRow, maker_id, taker_id, price, qty, row, symbol);

  py::native_enum<hft::Side>(m, "Side", "enum.IntEnum")
      .value("BUY", hft::Side::Buy)
      .value("SELL", hft::Side::Sell)
      .finalize();
  py::native_enum<hft::OrderType>(m, "OrderType", "enum.IntEnum")
      .value("LIMIT", hft::OrderType::Limit)
      .value("MARKET", hft::OrderType::Market)
      .value("IOC", hft::OrderType::Ioc)
      .value("CANCEL", hft::OrderType::Cancel)
      .finalize();
  auto status = py::native_enum<hft::Status>(m, "Status", "enum.IntEnum");
  for (int code = 0; code <= static_cast<int>(hft::Status::Capacity); ++code) {
    const auto value = static_cast<hft::Status>(code);
    status.value(hft::to_string(value), value);
  }
  status.finalize();

  m.attr("ORDER_DTYPE") = py::dtype::of<hft::OrderRow>();
  m.attr("RESULT_DTYPE") = py::dtype::of<hft::ResultRow>();
  m.attr("FILL_DTYPE") = py::dtype::of<hft::FillRow>();
  m.attr("MAX_PRICE_LIMIT") = hft::kMaxPriceLimit;
  m.attr("MAX_QUANTITY") = hft::kMaxQuantity;
  m.attr("DEFAULT_MAX_ORDERS") = hft::Engine::kDefaultMaxOrders;

  py::class_<hft::PyEngine>(m, "Engine")
      .def(py::init<std::uint32_t>(), py::arg("max_orders") = hft::Engine::kDefaultMaxOrders)
      .def("add_symbol", &hft::PyEngine::add_symbol, py::arg("name"), py::kw_only(),
           py::arg("max_price") = 1'000'000)
      .def("symbol_id", &hft::PyEngine::symbol_id, py::arg("name"))
      .def("submit", &hft::PyEngine::submit, py::arg("symbol"), py::arg("order_id"), py::arg("side"),
           py::arg("kind"), py::arg("price"), py::arg("qty"))
      .def("cancel", &hft::PyEngine::cancel, py::arg("symbol"), py::arg("order_id"))
      .def("depth", &hft::PyEngine::depth, py::arg("symbol"), py::arg("levels") = 10)
      .def("live_orders", &hft::PyEngine::live_orders)
      .def_property_readonly("max_orders", &hft::PyEngine::max_orders)
      .def("submit_batch", &hft::PyEngine::submit_batch, py::arg("orders"));
}
