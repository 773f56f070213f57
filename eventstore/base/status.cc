#include "eventstore/base/status.h"

namespace okr {

std::string Status::ToString() const {
  static const char* const kNames[] = {
      "ok",       "not found",         "version mismatch", "already exists",
      "conflict", "permission denied", "invalid",          "corruption",
      "io error"};
  std::string out = kNames[static_cast<int>(code_)];
  if (!message_.empty()) out += ": " + message_;
  return out;
}

}  // namespace okr
