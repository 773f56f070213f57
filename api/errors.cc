#include "api/errors.h"

namespace okr::api {

using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int HttpStatus(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk:
      return 200;
    case Status::Code::kNotFound:
      return 404;
    case Status::Code::kVersionMismatch:
      return 412;
    case Status::Code::kAlreadyExists:
      return 409;
    case Status::Code::kConflict:
      return 409;
    case Status::Code::kPermissionDenied:
      return 403;
    case Status::Code::kInvalid:
      return 422;
    case Status::Code::kCorruption:
      return 500;
    case Status::Code::kIOError:
      return 503;
  }
  return 500;
}

const char* ErrorCode(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk:
      return "ok";
    case Status::Code::kNotFound:
      return "not_found";
    case Status::Code::kVersionMismatch:
      return "version_mismatch";
    case Status::Code::kAlreadyExists:
      return "already_exists";
    case Status::Code::kConflict:
      return "conflict";
    case Status::Code::kPermissionDenied:
      return "forbidden";
    case Status::Code::kInvalid:
      return "invalid";
    case Status::Code::kCorruption:
      return "internal";
    case Status::Code::kIOError:
      return "unavailable";
  }
  return "internal";
}

const char* DefaultErrorCode(int status) {
  switch (status) {
    case 400:
      return "malformed";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 408:
      return "request_timeout";
    case 409:
      return "conflict";
    case 412:
      return "version_mismatch";
    case 413:
      return "too_large";
    case 414:
      return "uri_too_long";
    case 415:
      return "unsupported_encoding";
    case 422:
      return "invalid";
    case 431:
      return "headers_too_large";
    case 503:
      return "unavailable";
    default:
      return status >= 500 ? "internal" : "error";
  }
}

json ErrorBody(const std::string& code, const std::string& message, const std::string& field) {
  return {{"error",
           {{"code", code},
            {"message", message},
            {"field", field.empty() ? json(nullptr) : json(field)}}}};
}

}  // namespace okr::api
