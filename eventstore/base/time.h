// Dates and times as okrd reads and writes them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace okr {

inline constexpr int64_t kMicrosPerDay = 86'400'000'000;

// "YYYY-MM-DD" → µs at 00:00 UTC that day; nullopt when not a real date.
std::optional<int64_t> ParseDate(std::string_view date);
// µs → "YYYY-MM-DD" (UTC).
std::string FormatDate(int64_t us);
// RFC 3339 ("2026-07-01T09:30:00Z", "…T09:30:00.123+02:00") → µs UTC.
// A bare date is accepted as 00:00 UTC. nullopt when malformed.
std::optional<int64_t> ParseRfc3339(std::string_view text);
// What ParseRfc3339 accepts, as an error message names it: times before
// 1970 or after 9999 are refused like malformed ones.
inline constexpr char kRfc3339Accepted[] = "an RFC 3339 date-time from 1970 to 9999";
// µs UTC → RFC 3339 with six fractional digits ("2026-07-01T09:30:00.000000Z").
std::string FormatTimeUs(int64_t us);
// The same text, held in place: a big answer writes two times per
// check-in, and the text is longer than a short string keeps inline.
struct TimeText {
  char text[64];
  size_t size = 0;
  std::string_view view() const { return {text, size}; }
};
TimeText FormatTimeText(int64_t us);

}  // namespace okr
