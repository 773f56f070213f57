// Stored event bytes from anywhere (a damaged disk, a hostile backup):
// DecodedEvent::Decode must refuse what is not a valid Event and never
// crash; what it accepts must render as the audit API's JSON and fold
// into a projection (accepted or refused, never a crash).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "eventstore/event_codec.h"
#include "eventstore/event_json.h"
#include "projections/domain/projection.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto decoded = okr::DecodedEvent::Decode(bytes);
  if (!decoded.ok()) {
    FUZZ_CHECK(decoded.status().code() == okr::Status::Code::kCorruption);
    return 0;
  }
  auto event = (*decoded)->event();
  FUZZ_CHECK(okr::EventTypeName(event.which()) != nullptr);
  nlohmann::json j = okr::EventToJson(event);
  (void)j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  okr::Projection projection;
  (void)projection.Apply(event);
  return 0;
}
