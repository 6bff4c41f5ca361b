// Building blocks checked against brute-force models: LevelBitmap, OrderIndex, OrderPool.
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>
#include <vector>

#include "hft_engine/level_bitmap.h"
#include "hft_engine/order_index.h"
#include "hft_engine/order_pool.h"

namespace hft {
namespace {

TEST_CASE("LevelBitmap successor/predecessor agree with std::set", "[bitmap]") {
  for (const std::size_t size : {std::size_t{1}, std::size_t{64}, std::size_t{65}, std::size_t{5000},
                                 std::size_t{300000}}) {
    LevelBitmap bits(size);
    std::set<std::size_t> model;
    std::mt19937_64 rng(size);
    std::uniform_int_distribution<std::size_t> pick(0, size - 1);
    for (int step = 0; step < 4000; ++step) {
      const std::size_t i = pick(rng);
      if (rng() % 3 == 0) {
        bits.clear(i);
        model.erase(i);
      } else {
        bits.set(i);
        model.insert(i);
      }
      const std::size_t q = pick(rng);
      const auto next = model.lower_bound(q);
      CHECK(bits.find_next(q) == (next == model.end() ? LevelBitmap::npos : *next));
      auto prev = model.upper_bound(q);
      CHECK(bits.find_prev(q) == (prev == model.begin() ? LevelBitmap::npos : *--prev));
      CHECK(bits.test(i) == (model.count(i) == 1));
    }
    CHECK(bits.find_next(size) == LevelBitmap::npos);
  }
}

TEST_CASE("OrderIndex insert/find/erase agree with std::map under churn", "[index]") {
  constexpr std::uint32_t kCapacity = 1000;
  OrderIndex index(kCapacity);
  std::map<std::pair<SymbolId, OrderId>, SlotIndex> model;
  std::mt19937_64 rng(42);
  SlotIndex next_slot = 0;
  for (int step = 0; step < 200000; ++step) {
    // Few distinct keys -> long probe runs, many deletions in the middle of runs.
    const auto sym = static_cast<SymbolId>(rng() % 3);
    const OrderId id = rng() % 1500;
    const auto key = std::make_pair(sym, id);
    const auto it = model.find(key);
    if (it != model.end()) {
      REQUIRE(index.find(sym, id) == it->second);
      REQUIRE(index.erase(sym, id));
      model.erase(it);
      REQUIRE(index.find(sym, id) == kNoSlot);
    } else if (model.size() < kCapacity) {
      REQUIRE(index.find(sym, id) == kNoSlot);
      index.insert(sym, id, next_slot);
      model.emplace(key, next_slot++);
    }
  }
  for (const auto& [key, slot] : model) CHECK(index.find(key.first, key.second) == slot);
  CHECK_FALSE(index.erase(7, 123456789));
}

TEST_CASE("OrderIndex handles arbitrary 64-bit ids", "[index]") {
  OrderIndex index(16);
  const std::vector<OrderId> ids{0, 1, ~OrderId{0}, OrderId{1} << 63, 0x9E3779B97F4A7C15ull};
  for (std::size_t i = 0; i < ids.size(); ++i) index.insert(0, ids[i], static_cast<SlotIndex>(i));
  for (std::size_t i = 0; i < ids.size(); ++i) CHECK(index.find(0, ids[i]) == i);
  CHECK(index.find(1, 0) == kNoSlot);
}

TEST_CASE("OrderPool hands out every slot once and reuses released ones", "[pool]") {
  OrderPool pool(3);
  std::set<SlotIndex> taken;
  for (int i = 0; i < 3; ++i) taken.insert(pool.acquire());
  CHECK(taken == std::set<SlotIndex>{0, 1, 2});
  CHECK(pool.full());
  CHECK(pool.acquire() == kNoSlot);
  pool.release(1);
  CHECK(pool.live() == 2);
  CHECK(pool.acquire() == 1);
  CHECK(pool.acquire() == kNoSlot);
}

}  // namespace
}  // namespace hft
