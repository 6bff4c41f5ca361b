// Names of Status values, kept identical to the Python IntEnum member names.
#include "hft_engine/status.h"

namespace hft {

const char* to_string(Status status) noexcept {
  switch (status) {
    case Status::Ok: return "OK";
    case Status::InvalidQty: return "INVALID_QTY";
    case Status::InvalidPrice: return "INVALID_PRICE";
    case Status::DuplicateId: return "DUPLICATE_ID";
    case Status::UnknownOrder: return "UNKNOWN_ORDER";
    case Status::UnknownSymbol: return "UNKNOWN_SYMBOL";
    case Status::InvalidSide: return "INVALID_SIDE";
    case Status::InvalidType: return "INVALID_TYPE";
    case Status::Capacity: return "CAPACITY";
  }
  return "UNKNOWN_STATUS";
}

}  // namespace hft
