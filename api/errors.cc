#include "api/errors.h"

#include <cassert>
#include <iterator>

namespace okr::api {

using nlohmann::json;

namespace {

// What a Status code becomes on the wire: one row per code, so the HTTP
// status and the body's "code" cannot drift apart. Rows follow the enum.
struct WireCode {
  Status::Code code;
  int http_status;
  const char* name;
};
constexpr WireCode kWireCodes[] = {
    {Status::Code::kOk, 200, "ok"},
    {Status::Code::kNotFound, 404, "not_found"},
    {Status::Code::kVersionMismatch, 412, "version_mismatch"},
    {Status::Code::kAlreadyExists, 409, "already_exists"},
    {Status::Code::kConflict, 409, "conflict"},
    {Status::Code::kPermissionDenied, 403, "forbidden"},
    {Status::Code::kInvalid, 422, "invalid"},
    {Status::Code::kCorruption, 500, "internal"},
    {Status::Code::kIOError, 503, "unavailable"},
};

const WireCode& Wire(const Status& s) {
  const auto i = static_cast<size_t>(s.code());
  assert(i < std::size(kWireCodes));
  assert(kWireCodes[i].code == s.code());  // the table is indexed by the enum
  return kWireCodes[i];
}

// The body's "code" for an HTTP status chosen without a Status.
struct DefaultCode {
  int http_status;
  const char* name;
};
constexpr DefaultCode kDefaultCodes[] = {
    {400, "malformed"},         {401, "unauthorized"},         {403, "forbidden"},
    {404, "not_found"},         {405, "method_not_allowed"},   {408, "request_timeout"},
    {409, "conflict"},          {412, "version_mismatch"},     {413, "too_large"},
    {414, "uri_too_long"},      {415, "unsupported_encoding"}, {422, "invalid"},
    {431, "headers_too_large"}, {503, "unavailable"},
};

}  // namespace

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int HttpStatus(const Status& s) { return Wire(s).http_status; }

const char* ErrorCode(const Status& s) { return Wire(s).name; }

const char* DefaultErrorCode(int status) {
  for (const DefaultCode& d : kDefaultCodes) {
    if (d.http_status == status) return d.name;
  }
  return status >= 500 ? "internal" : "error";
}

json ErrorBody(const std::string& code, const std::string& message, const std::string& field) {
  return {{"error",
           {{"code", code},
            {"message", message},
            {"field", field.empty() ? json(nullptr) : json(field)}}}};
}

}  // namespace okr::api
