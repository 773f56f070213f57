// How okrd says no: a Status or an HTTP status becomes the status code and
// the JSON error body every refusal carries (SPEC §3 "Errors"), so that a
// client reads the same shape whichever layer refused it.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "eventstore/base/status.h"

namespace okr::api {

// `j` as okrd writes every JSON answer: compact, invalid UTF-8 replaced
// rather than thrown on.
std::string Dump(const nlohmann::json& j);

// The HTTP status a Status answers with (kVersionMismatch is a failed If-Match: 412).
int HttpStatus(const Status& s);
// The error body's "code" for a Status.
const char* ErrorCode(const Status& s);
// The error body's "code" for an HTTP status okrd (or cpp-httplib) chose
// without a Status: a refused request, a routing miss, a transport limit.
const char* DefaultErrorCode(int status);
// {"error": {"code", "message", "field"}}; an empty field is null.
nlohmann::json ErrorBody(const std::string& code, const std::string& message,
                         const std::string& field);

}  // namespace okr::api
