// Query strings as okrd's read routes take them: cpp-httplib splits and
// decodes the parameters, then as_of/from/to (a seq or an RFC 3339
// time), at (a time), limit, cursor and after go through the parsers in
// api/routes/request.h and eventstore/base/time.h. None may crash; what they
// accept must read back the same.
#include <httplib.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "api/routes/request.h"
#include "eventstore/base/time.h"
#include "eventstore/event_json.h"
#include "projections/domain/commands.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string query(reinterpret_cast<const char*>(data), size);
  httplib::Params params;
  httplib::detail::parse_query_text(query, params);
  // The whole input as one value too, undecoded.
  params.emplace("raw", query);
  for (const auto& [name, value] : params) {
    okr::api::ApiError error;
    auto limit = okr::api::ParseLimit(&value, &error);
    if (limit) {
      FUZZ_CHECK(*limit >= 1 && *limit <= okr::api::kMaxPageSize);
    } else {
      FUZZ_CHECK(error.status == 400 && error.field == "limit");
    }
    if (auto seq = okr::api::ParseUnsigned(value)) {
      FUZZ_CHECK(okr::api::ParseUnsigned(std::to_string(*seq)) == seq);
    }
    if (auto us = okr::ParseRfc3339(value)) {
      std::string text = okr::FormatTimeUs(*us);
      FUZZ_CHECK(okr::ParseRfc3339(text) == us);
    }
    if (auto day = okr::ParseDate(value)) {
      FUZZ_CHECK(okr::ParseDate(okr::FormatDate(*day)) == day);
    }
    (void)okr::ValidId(value);
  }
  return 0;
}
