#include "api/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "eventstore/base/clock.h"
#include "eventstore/event_json.h"

namespace okr::api {

std::shared_ptr<spdlog::logger> MakeLogger(LogFormat format) {
  auto log =
      std::make_shared<spdlog::logger>("okrd", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  log->set_pattern(format == LogFormat::kJson ? "%v" : "%Y-%m-%dT%H:%M:%S.%fZ %l %v",
                   spdlog::pattern_time_type::utc);
  log->flush_on(spdlog::level::info);
  return log;
}

void LogLine(spdlog::logger& log, LogFormat format, spdlog::level::level_enum level,
             const char* event, const std::vector<std::pair<const char*, nlohmann::json>>& fields) {
  if (!log.should_log(level)) return;
  if (format == LogFormat::kJson) {
    nlohmann::json line;
    line["time"] = FormatTimeUs(SystemClockUs());
    line["level"] = spdlog::level::to_string_view(level).data();
    line["event"] = event;
    for (const auto& [k, v] : fields) line[k] = v;
    log.log(level, "{}", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  std::string text = event;
  for (const auto& [k, v] : fields) {
    text += ' ';
    text += k;
    text += '=';
    text += v.is_string() ? v.get<std::string>()
                          : v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  log.log(level, "{}", text);
}

}  // namespace okr::api
