// Python binding of hft::Engine (module hft_engine._core). The only file that includes pybind11.
// Single-order calls take and return plain ints and small tuples (no bound object per order);
// submit_batch works on numpy structured arrays and matches with the GIL released.
#include <pybind11/native_enum.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hft_engine/batch.h"
#include "hft_engine/engine.h"
#include "hft_engine/page_mapping.h"

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

/// Committed memory behind the arrays submit_batch returns, taken back when Python drops an array
/// and lent to a later batch. Fresh numpy arrays come from the C heap, which maps and trims pages
/// as it sees fit, so steady-state batches would keep faulting on their own output; recycled
/// buffers are already resident. Only used with the GIL held (submit_batch before it releases the
/// GIL, and the arrays' capsule destructors), so the GIL is its lock.
class ArrayPool : public std::enable_shared_from_this<ArrayPool> {
 public:
  /// Free buffers kept for reuse, at most; the rest are unmapped when their array dies.
  static constexpr std::size_t kMaxFree = 8;
  /// Free bytes kept for reuse, at most (a whole-stream batch's buffers are not all worth keeping).
  static constexpr std::size_t kMaxFreeBytes = std::size_t{128} << 20;

  /// A 1-d numpy array of `count` T whose memory is a resident pool buffer (contents undefined).
  template <typename T>
  py::array_t<T> array(std::size_t count) {
    PageMapping memory = take(count * sizeof(T));
    T* data = static_cast<T*>(memory.data());
    auto* lease = new Lease{shared_from_this(), std::move(memory)};
    py::capsule owner(lease, [](void* p) {
      auto* done = static_cast<Lease*>(p);
      done->pool->give_back(std::move(done->memory));
      delete done;
    });
    return py::array_t<T>(static_cast<py::ssize_t>(count), data, owner);
  }

 private:
  struct Lease {
    std::shared_ptr<ArrayPool> pool;
    PageMapping memory;
  };

  PageMapping take(std::size_t bytes) {
    // Whole powers of two: batches of one size produce fill arrays of varying length, and a
    // rounded buffer serves the next one instead of making the pool map another.
    bytes = std::bit_ceil(std::max(bytes, std::size_t{4096}));
    std::size_t best = free_.size();
    for (std::size_t i = 0; i < free_.size(); ++i) {
      if (free_[i].bytes() >= bytes && (best == free_.size() || free_[i].bytes() < free_[best].bytes())) best = i;
    }
    if (best == free_.size()) return PageMapping(bytes, MemoryMode::Prefault);
    PageMapping memory = std::move(free_[best]);
    free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(best));
    free_bytes_ -= memory.bytes();
    return memory;
  }

  void give_back(PageMapping memory) {
    if (free_.size() >= kMaxFree || free_bytes_ + memory.bytes() > kMaxFreeBytes) return;  // unmapped here
    free_bytes_ += memory.bytes();
    free_.push_back(std::move(memory));
  }

  std::vector<PageMapping> free_;
  std::size_t free_bytes_ = 0;
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
  PyEngine(std::uint32_t max_orders, MemoryMode memory) : engine_(max_orders, memory) {}

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

  MemoryMode memory_mode() const noexcept { return engine_.memory_mode(); }

  std::size_t memory_bytes() {
    std::lock_guard lock(mutex_);
    return engine_.memory_bytes();
  }

  py::tuple submit_batch(const py::array& orders) {
    check_order_array(orders);
    const auto n = static_cast<std::size_t>(orders.shape(0));
    const auto* rows = static_cast<const OrderRow*>(orders.data());
    py::array_t<ResultRow> results = arrays_->array<ResultRow>(n);
    ResultRow* out = results.mutable_data();
    std::vector<FillRow> fills;
    {
      py::gil_scoped_release release;
      // Lock taken after the GIL is released and dropped before it is re-acquired: no lock-order
      // inversion with a thread that holds the GIL and waits for the lock.
      std::lock_guard lock(mutex_);
      // Borrow the fill buffer of earlier batches: its pages are already committed, so appending
      // fills takes no page fault until a batch produces more fills than any before it.
      fills = std::move(spare_fills_);
      fills.clear();
      if (fills.capacity() < n / 2 + 16) {
        // Commit the new capacity now (value-initialising writes every page), not fill by fill.
        fills.resize(n / 2 + 16);
        fills.clear();
      }
      process_batch(engine_, std::span<const OrderRow>(rows, n), std::span<ResultRow>(out, n), fills);
    }
    py::array_t<FillRow> fill_array = arrays_->array<FillRow>(fills.size());
    if (!fills.empty()) std::memcpy(fill_array.mutable_data(), fills.data(), fills.size() * sizeof(FillRow));
    {
      // The GIL is held here, like in every single-order call: the same lock order as theirs.
      std::lock_guard lock(mutex_);
      if (fills.capacity() > spare_fills_.capacity()) spare_fills_ = std::move(fills);
    }
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
  std::vector<FillRow> spare_fills_;  // fill buffer kept between batches (guarded by mutex_)
  std::shared_ptr<ArrayPool> arrays_ = std::make_shared<ArrayPool>();  // outlives the engine while arrays do
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
  py::native_enum<hft::MemoryMode>(m, "MemoryMode", "enum.IntEnum")
      .value("PREFAULT", hft::MemoryMode::Prefault)
      .value("RESERVE", hft::MemoryMode::Reserve)
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
      .def(py::init<std::uint32_t, hft::MemoryMode>(), py::arg("max_orders") = hft::Engine::kDefaultMaxOrders,
           py::kw_only(), py::arg("memory") = hft::MemoryMode::Prefault)
      .def("add_symbol", &hft::PyEngine::add_symbol, py::arg("name"), py::kw_only(),
           py::arg("max_price") = 1'000'000)
      .def("symbol_id", &hft::PyEngine::symbol_id, py::arg("name"))
      .def("submit", &hft::PyEngine::submit, py::arg("symbol"), py::arg("order_id"), py::arg("side"),
           py::arg("kind"), py::arg("price"), py::arg("qty"))
      .def("cancel", &hft::PyEngine::cancel, py::arg("symbol"), py::arg("order_id"))
      .def("depth", &hft::PyEngine::depth, py::arg("symbol"), py::arg("levels") = 10)
      .def("live_orders", &hft::PyEngine::live_orders)
      .def_property_readonly("max_orders", &hft::PyEngine::max_orders)
      .def_property_readonly("memory_mode", &hft::PyEngine::memory_mode)
      .def_property_readonly("memory_bytes", &hft::PyEngine::memory_bytes)
      .def("submit_batch", &hft::PyEngine::submit_batch, py::arg("orders"));
}
