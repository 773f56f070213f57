// Request bodies into commands, as okrd's write routes take them: the
// first byte picks the route, the rest is the body. ParseBody and
// ParseCommand must refuse anything malformed with 400 or 422 and a
// message, never crash, and the refusal must render as JSON.
#include <cstddef>
#include <cstdint>
#include <string>

#include "api/routes/request.h"
#include "tests/fuzz/fuzz_check.h"

using okr::api::ApiError;
using okr::api::WriteRoute;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  constexpr int kRoutes = static_cast<int>(WriteRoute::kReview) + 1;
  auto route = static_cast<WriteRoute>(data[0] % kRoutes);
  std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  ApiError error;
  auto parsed = okr::api::ParseBody(body, &error);
  auto refused = [&] {
    FUZZ_CHECK(error.status == 400 || error.status == 422);
    FUZZ_CHECK(!error.code.empty() && !error.message.empty());
    FUZZ_CHECK(error.field.size() <= 64);
    // As the server answers it: field names come from the body.
    nlohmann::json answer = {
        {"error", {{"code", error.code}, {"message", error.message}, {"field", error.field}}}};
    (void)answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  if (!parsed) {
    refused();
    return 0;
  }
  FUZZ_CHECK(parsed->is_object());
  std::string reason;
  error = ApiError{};
  auto command = okr::api::ParseCommand(route, "fuzz-id", *parsed, &reason, &error);
  if (!command) refused();
  return 0;
}
