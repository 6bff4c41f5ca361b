// pt_engine: native throughput and per-operation latency of hft::Engine on a mixed order stream.
//
// The stream is generated up front (not timed) by driving a scratch engine, so cancels always
// target live orders and adds always rest. Mix of the timed part: 60% resting limit adds,
// 25% cancels, 15% crossing orders (5% market, 5% IOC, 5% GTC limit crossing the touch);
// ~1,000 live orders over a few hundred price levels. Prints one JSON object on stdout and can
// dump the stream (ORDER_DTYPE rows) so the Python benchmark replays the identical orders.
// Every timed region also counts the page faults it took (getrusage), and the latency replay
// records how much memory the engine committed (resident set growth). Every engine prefaults its
// memory (the default); one more latency replay on a MemoryMode::Reserve engine shows the lazy
// alternative on the same stream.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "hft_engine/batch.h"
#include "hft_engine/engine.h"

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace hft {
namespace {

constexpr Price kMaxPrice = 1'000'000;
constexpr Price kMid = 500'000;
constexpr std::size_t kTargetLive = 1000;
constexpr Price kBand = 150;  // resting adds land within this many ticks behind the touch
constexpr std::uint32_t kCapacity = 1u << 20;

/// Minor and major page faults taken by this process so far.
struct Faults {
  long minor = 0;
  long major = 0;
};

Faults faults_now() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return Faults{usage.ru_minflt, usage.ru_majflt};
}

Faults faults_since(const Faults& start) {
  const Faults now = faults_now();
  return Faults{now.minor - start.minor, now.major - start.major};
}

Faults worst(const Faults& a, const Faults& b) {
  return Faults{std::max(a.minor, b.minor), std::max(a.major, b.major)};
}

/// AnonHugePages of this process in bytes (/proc/self/smaps_rollup), or -1 if unreadable.
long anon_huge_bytes() {
  std::FILE* f = std::fopen("/proc/self/smaps_rollup", "r");
  if (f == nullptr) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "AnonHugePages: %ld kB", &kib) == 1) break;
  }
  std::fclose(f);
  return kib < 0 ? -1 : kib * 1024;
}

/// Resident set size of this process (second field of /proc/self/statm, in pages).
long resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  if (f == nullptr || std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
  if (f != nullptr) std::fclose(f);
  return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

/// Scratch-engine listener that tracks open quantity of live orders during generation.
class LiveTracker final : public FillListener {
 public:
  void on_fill(const Fill& fill) override {
    auto it = open_.find(fill.maker_id);
    it->second -= fill.qty;
    if (it->second == 0) {
      open_.erase(it);
      drop(fill.maker_id);
    }
  }
  void add(OrderId id, Quantity qty) {
    open_.emplace(id, qty);
    pos_.emplace(id, ids_.size());
    ids_.push_back(id);
  }
  void drop(OrderId id) {
    const std::size_t p = pos_.at(id);
    pos_[ids_.back()] = p;
    ids_[p] = ids_.back();
    ids_.pop_back();
    pos_.erase(id);
    open_.erase(id);
  }
  std::size_t size() const { return ids_.size(); }
  OrderId at(std::size_t i) const { return ids_[i]; }

 private:
  std::unordered_map<OrderId, Quantity> open_;
  std::unordered_map<OrderId, std::size_t> pos_;
  std::vector<OrderId> ids_;
};

struct Stream {
  std::vector<OrderRow> rows;
  std::size_t warmup = 0;  // leading rows that build the initial book (replayed, not timed)
  std::size_t adds = 0, cancels = 0, crossing = 0;
  std::size_t max_levels = 0;
  double mean_live = 0;
};

Stream generate(std::size_t ops, std::uint64_t seed) {
  Stream s;
  Engine scratch(1u << 20);
  const SymbolId sym = scratch.add_symbol("BENCH", kMaxPrice);
  const OrderBook& book = *scratch.book(sym);
  LiveTracker live;
  std::mt19937_64 rng(seed);
  auto uniform = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  std::uint64_t next_id = 1;
  auto fresh_id = [&] { return (next_id++) * 0x9E3779B97F4A7C15ull; };  // arbitrary-looking uint64 ids

  auto emit = [&](const OrderRow& row) {
    s.rows.push_back(row);
    if (row.kind == static_cast<std::uint8_t>(OrderType::Cancel)) {
      if (scratch.cancel(row.symbol, row.order_id).status == Status::Ok) live.drop(row.order_id);
      return;
    }
    const SubmitResult r = scratch.submit({row.symbol, row.order_id, static_cast<Side>(row.side),
                                           static_cast<OrderType>(row.kind), row.price, row.qty},
                                          live);
    if (r.status != Status::Ok) {
      std::fprintf(stderr, "generator produced a rejected order (status %d)\n", static_cast<int>(r.status));
      std::exit(2);
    }
    if (r.resting_qty > 0) live.add(row.order_id, r.resting_qty);
  };
  auto resting_add = [&] {
    const bool buy = uniform(0, 1) == 0;
    const Price bid = book.best_bid() > 0 ? book.best_bid() : kMid - 1;
    const Price ask = book.best_ask() <= kMaxPrice ? book.best_ask() : kMid + 1;
    // Priced behind the opposite touch, so it never crosses.
    const Price price = buy ? std::min(bid, ask - 1) - uniform(0, kBand) : std::max(ask, bid + 1) + uniform(0, kBand);
    emit(OrderRow{fresh_id(), price, uniform(1, 100), sym, static_cast<std::uint8_t>(buy ? 0 : 1),
                  static_cast<std::uint8_t>(OrderType::Limit)});
  };

  while (live.size() < kTargetLive) resting_add();
  s.warmup = s.rows.size();

  double live_sum = 0;
  for (std::size_t i = 0; i < ops; ++i) {
    const std::int64_t pick = uniform(0, 99);
    if (pick < 60 || (pick < 85 && live.size() == 0)) {
      resting_add();
      ++s.adds;
    } else if (pick < 85) {
      const OrderId id = live.at(static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(live.size()) - 1)));
      emit(OrderRow{id, 0, 0, sym, 0, static_cast<std::uint8_t>(OrderType::Cancel)});
      ++s.cancels;
    } else {
      const bool buy = uniform(0, 1) == 0;
      // Taker size adapts so fills + cancels balance adds and the book stays near kTargetLive.
      const Quantity qty = uniform(1, live.size() > kTargetLive ? 1000 : 100);
      const Price touch = buy ? book.best_ask() : book.best_bid();
      OrderType type = OrderType::Market;
      Price price = 0;
      if (pick >= 90 && touch >= 1 && touch <= kMaxPrice) {
        type = pick < 95 ? OrderType::Ioc : OrderType::Limit;
        price = buy ? std::min(touch + uniform(0, 10), kMaxPrice) : std::max(touch - uniform(0, 10), Price{1});
      }
      emit(OrderRow{fresh_id(), price, qty, sym, static_cast<std::uint8_t>(buy ? 0 : 1),
                    static_cast<std::uint8_t>(type)});
      ++s.crossing;
    }
    live_sum += static_cast<double>(live.size());
    if (i % 1024 == 0) {
      std::vector<DepthLevel> bids, asks;
      scratch.depth(sym, 100000, bids, asks);
      s.max_levels = std::max(s.max_levels, bids.size() + asks.size());
    }
  }
  s.mean_live = live_sum / static_cast<double>(ops);
  return s;
}

/// Sums fill quantities so the compiler cannot drop the listener work.
class CountingListener final : public FillListener {
 public:
  void on_fill(const Fill& fill) override { qty_ += fill.qty; }
  std::int64_t qty() const noexcept { return qty_; }

 private:
  std::int64_t qty_ = 0;
};

inline void apply(Engine& engine, const OrderRow& row, FillListener& listener) {
  if (row.kind == static_cast<std::uint8_t>(OrderType::Cancel)) {
    engine.cancel(row.symbol, row.order_id);
  } else {
    engine.submit({row.symbol, row.order_id, static_cast<Side>(row.side), static_cast<OrderType>(row.kind),
                   row.price, row.qty},
                  listener);
  }
}

/// Resident set growth (bytes) at each stage of one engine's life, from just before construction.
struct Memory {
  long before = 0;              // resident set just before construction (absolute)
  long after_construction = 0;  // Engine(kCapacity)
  long after_add_symbol = 0;    // + one symbol of kMaxPrice ticks
  long after_run = 0;           // + the warm-up and the timed stream
  long huge_before = 0;         // AnonHugePages just before construction (absolute)
  long huge_after_add_symbol = 0;  // its growth by construction and add_symbol
  std::size_t mapped = 0;       // Engine::memory_bytes() after add_symbol
};

std::unique_ptr<Engine> fresh_engine(const Stream& s, FillListener& listener, Memory* memory = nullptr,
                                     MemoryMode mode = MemoryMode::Prefault) {
  const long rss0 = resident_bytes();
  if (memory != nullptr) {
    memory->before = rss0;
    memory->huge_before = anon_huge_bytes();
  }
  auto engine = std::make_unique<Engine>(kCapacity, mode);
  if (memory != nullptr) memory->after_construction = resident_bytes() - rss0;
  engine->add_symbol("BENCH", kMaxPrice);
  if (memory != nullptr) {
    memory->after_add_symbol = resident_bytes() - rss0;
    memory->huge_after_add_symbol = anon_huge_bytes() - memory->huge_before;
    memory->mapped = engine->memory_bytes();
  }
  for (std::size_t i = 0; i < s.warmup; ++i) apply(*engine, s.rows[i], listener);
  return engine;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Best-of-N single-thread throughput over the timed part of the stream.
/// `faults` receives the most taken by any one run.
double throughput(const Stream& s, int repeats, std::int64_t& fill_qty, Faults& faults) {
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    CountingListener listener;
    const auto owner = fresh_engine(s, listener);
    Engine& engine = *owner;
    const Faults f0 = faults_now();
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = s.warmup; i < s.rows.size(); ++i) apply(engine, s.rows[i], listener);
    const double dt = seconds_since(t0);
    faults = worst(faults, faults_since(f0));
    best = std::max(best, static_cast<double>(s.rows.size() - s.warmup) / dt);
    fill_qty = listener.qty();
  }
  return best;
}

double batch_throughput(const Stream& s, int repeats, std::size_t chunk, Faults& faults) {
  double best = 0;
  std::vector<ResultRow> results(chunk);
  // Written once before timing (then emptied, keeping its capacity) so appending fills in the
  // timed loop touches no new page of the harness's own buffer.
  std::vector<FillRow> fills(chunk * 4);
  fills.clear();
  for (int r = 0; r < repeats; ++r) {
    NullFillListener null;
    const auto owner = fresh_engine(s, null);
    Engine& engine = *owner;
    const Faults f0 = faults_now();
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = s.warmup; i < s.rows.size(); i += chunk) {
      const std::size_t n = std::min(chunk, s.rows.size() - i);
      fills.clear();
      process_batch(engine, std::span<const OrderRow>(s.rows.data() + i, n),
                    std::span<ResultRow>(results.data(), n), fills);
    }
    best = std::max(best, static_cast<double>(s.rows.size() - s.warmup) / seconds_since(t0));
    faults = worst(faults, faults_since(f0));
  }
  return best;
}

inline std::uint64_t ticks() noexcept {
#if defined(__x86_64__)
  _mm_lfence();  // keep the read from drifting ahead of the measured work
  const std::uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
#else
  return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
#endif
}

struct Latency {
  double ns_per_tick;
  double overhead_ticks;
  double p50, p90, p99, p999, max;
  Faults faults;  // taken inside the timed replay
  Memory memory;
};

Latency latency(const Stream& s, MemoryMode mode) {
  // Timer overhead: median of back-to-back reads, subtracted from every sample.
  std::vector<std::uint64_t> empty(200000);
  for (auto& e : empty) {
    const std::uint64_t a = ticks();
    e = ticks() - a;
  }
  std::nth_element(empty.begin(), empty.begin() + empty.size() / 2, empty.end());
  const double overhead = static_cast<double>(empty[empty.size() / 2]);

  // Sized and written before the engine exists: a growing sample buffer would add its own page
  // faults to the timed region and its own pages to the engine's resident set growth.
  std::vector<double> samples(s.rows.size() - s.warmup, 0.0);
  CountingListener listener;
  Memory memory;
  const auto owner = fresh_engine(s, listener, &memory, mode);
  Engine& engine = *owner;
  const Faults f0 = faults_now();
  const auto wall0 = std::chrono::steady_clock::now();
  const std::uint64_t tick0 = ticks();
  for (std::size_t i = s.warmup; i < s.rows.size(); ++i) {
    const std::uint64_t a = ticks();
    apply(engine, s.rows[i], listener);
    const std::uint64_t b = ticks();
    samples[i - s.warmup] = std::max(0.0, static_cast<double>(b - a) - overhead);
  }
  const double ns_per_tick = seconds_since(wall0) * 1e9 / static_cast<double>(ticks() - tick0);
  const Faults faults = faults_since(f0);
  memory.after_run = resident_bytes() - memory.before;
  std::sort(samples.begin(), samples.end());
  auto pct = [&](double q) { return samples[static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1))] * ns_per_tick; };
  return Latency{ns_per_tick, overhead, pct(0.50), pct(0.90), pct(0.99), pct(0.999), samples.back() * ns_per_tick,
                 faults, memory};
}

}  // namespace
}  // namespace hft

int main(int argc, char** argv) {
  std::size_t ops = 2'000'000;
  std::uint64_t seed = 20261126;
  int repeats = 5;
  std::string dump;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--ops") ops = std::stoull(argv[i + 1]);
    else if (flag == "--seed") seed = std::stoull(argv[i + 1]);
    else if (flag == "--repeats") repeats = std::stoi(argv[i + 1]);
    else if (flag == "--dump-ops") dump = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: pt_engine [--ops N] [--seed S] [--repeats R] [--dump-ops FILE]\n");
      return 2;
    }
  }
  // The first clock read maps the vDSO's data page: take that page fault here, not in a timed region.
  (void)std::chrono::steady_clock::now();
  const hft::Stream s = hft::generate(ops, seed);
  if (!dump.empty()) {
    std::FILE* f = std::fopen(dump.c_str(), "wb");
    if (!f || std::fwrite(s.rows.data(), sizeof(hft::OrderRow), s.rows.size(), f) != s.rows.size()) {
      std::fprintf(stderr, "cannot write %s\n", dump.c_str());
      return 1;
    }
    std::fclose(f);
  }
  std::int64_t fill_qty = 0;
  hft::Faults mixed_faults, batch_faults;
  const double ops_per_s = hft::throughput(s, repeats, fill_qty, mixed_faults);
  const double batch_ops_per_s = hft::batch_throughput(s, repeats, 8192, batch_faults);
  const hft::Latency lat = hft::latency(s, hft::MemoryMode::Prefault);
  const hft::Latency lazy = hft::latency(s, hft::MemoryMode::Reserve);
  std::printf(
      "{\"ops\": %zu, \"warmup_ops\": %zu, \"repeats\": %d, \"seed\": %llu,\n"
      " \"capacity_orders\": %u, \"max_price\": %lld,\n"
      " \"mix\": {\"resting_adds\": %zu, \"cancels\": %zu, \"crossing\": %zu, \"mean_live_orders\": %.1f, "
      "\"max_price_levels\": %zu},\n"
      " \"native_mixed_ops_per_s\": %.0f, \"native_batch_ops_per_s\": %.0f, \"fill_qty\": %lld,\n"
      " \"native_p50_ns\": %.1f, \"native_p90_ns\": %.1f, \"native_p99_ns\": %.1f, \"native_p999_ns\": %.1f, "
      "\"native_max_ns\": %.1f,\n"
      " \"faults\": {\"mixed\": {\"minor\": %ld, \"major\": %ld}, \"batch\": {\"minor\": %ld, \"major\": %ld}, "
      "\"latency\": {\"minor\": %ld, \"major\": %ld}},\n"
      " \"resident_growth_bytes\": {\"after_construction\": %ld, \"after_add_symbol\": %ld, \"after_run\": %ld},\n"
      " \"anon_huge_pages_growth_bytes\": %ld, \"engine_memory_bytes\": %zu,\n"
      " \"reserve\": {\"p50_ns\": %.1f, \"p99_ns\": %.1f, \"p999_ns\": %.1f, \"max_ns\": %.1f, "
      "\"faults\": {\"minor\": %ld, \"major\": %ld}, \"resident_growth_bytes\": {\"after_construction\": %ld, "
      "\"after_add_symbol\": %ld, \"after_run\": %ld}},\n"
      " \"timer_overhead_ticks\": %.1f, \"ns_per_tick\": %.4f}\n",
      ops, s.warmup, repeats, static_cast<unsigned long long>(seed), hft::kCapacity,
      static_cast<long long>(hft::kMaxPrice), s.adds, s.cancels, s.crossing, s.mean_live, s.max_levels, ops_per_s,
      batch_ops_per_s, static_cast<long long>(fill_qty), lat.p50, lat.p90, lat.p99, lat.p999, lat.max,
      mixed_faults.minor, mixed_faults.major, batch_faults.minor, batch_faults.major, lat.faults.minor,
      lat.faults.major, lat.memory.after_construction, lat.memory.after_add_symbol, lat.memory.after_run,
      lat.memory.huge_after_add_symbol, lat.memory.mapped, lazy.p50, lazy.p99, lazy.p999, lazy.max,
      lazy.faults.minor, lazy.faults.major, lazy.memory.after_construction, lazy.memory.after_add_symbol,
      lazy.memory.after_run, lat.overhead_ticks, lat.ns_per_tick);
  return 0;
}
