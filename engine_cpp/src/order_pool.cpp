// OrderPool construction; acquire/release are inline in the header (hot path).
#include "hft_engine/order_pool.h"

namespace hft {

OrderPool::OrderPool(std::uint32_t capacity, MemoryMode mode) : slots_(capacity, mode), capacity_(capacity) {}

}  // namespace hft
