#include "eventstore/base/status.h"

namespace okr {

std::string Status::ToString() const {
  static const char* const kNames[] = {"ok",      "not found",  "conflict", "already exists",
                                       "failed precondition", "permission denied", "invalid",
                                       "corruption",
                                       "io error"};
  std::string out = kNames[static_cast<int>(code_)];
  if (!message_.empty()) out += ": " + message_;
  return out;
}

}  // namespace okr
