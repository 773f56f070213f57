// One structured log line per event worth logging (a request, an append
// batch, start-up), as `key=value` text or as one JSON object per line.
#pragma once

#include <spdlog/logger.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace okr::api {

enum class LogFormat { kText, kJson };

// A stderr logger whose lines are `time level message` (text) or exactly
// the JSON object LogLine builds (json).
std::shared_ptr<spdlog::logger> MakeLogger(LogFormat format);

void LogLine(spdlog::logger& log, LogFormat format, spdlog::level::level_enum level,
             const char* event, const std::vector<std::pair<const char*, nlohmann::json>>& fields);

}  // namespace okr::api
