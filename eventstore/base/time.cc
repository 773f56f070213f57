#include "eventstore/base/time.h"

#include <cassert>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace okr {

namespace {

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

}  // namespace

std::optional<int64_t> ParseDate(std::string_view date) {
  int y, m, d;
  if (date.size() != 10 || date[4] != '-' || date[7] != '-' || !Digits(date, 0, 4, &y) ||
      !Digits(date, 5, 2, &m) || !Digits(date, 8, 2, &d)) {
    return std::nullopt;
  }
  std::chrono::year_month_day ymd{std::chrono::year{y},
                                  std::chrono::month{static_cast<unsigned>(m)},
                                  std::chrono::day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || y < 1970 || y > 9999) return std::nullopt;
  auto days = std::chrono::sys_days{ymd}.time_since_epoch().count();
  return static_cast<int64_t>(days) * kMicrosPerDay;
}

std::string FormatDate(int64_t us) {
  int64_t days = us / kMicrosPerDay;
  if (us < 0 && us % kMicrosPerDay != 0) days -= 1;
  std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{days}}};
  char buf[32];  // room for any int the compiler cannot rule out
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

std::optional<int64_t> ParseRfc3339(std::string_view text) {
  auto day = ParseDate(text.substr(0, 10));
  if (!day) return std::nullopt;
  if (text.size() == 10) return day;
  if (text.size() < 20 || (text[10] != 'T' && text[10] != 't' && text[10] != ' ')) {
    return std::nullopt;
  }
  int hh, mm, ss;
  if (!Digits(text, 11, 2, &hh) || text[13] != ':' || !Digits(text, 14, 2, &mm) ||
      text[16] != ':' || !Digits(text, 17, 2, &ss) || hh > 23 || mm > 59 || ss > 60) {
    return std::nullopt;
  }
  int64_t us = *day + (static_cast<int64_t>(hh) * 3600 + mm * 60 + std::min(ss, 59)) * 1'000'000;
  size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int64_t frac = 0, scale = 100000;
    size_t start = pos;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      if (scale > 0) {
        frac += (text[pos] - '0') * scale;
        scale /= 10;
      }
      ++pos;
    }
    if (pos == start || pos - start > 9) return std::nullopt;
    us += frac;
  }
  if (pos >= text.size()) return std::nullopt;
  if ((text[pos] == 'Z' || text[pos] == 'z') && pos + 1 == text.size()) return us;
  int oh, om;
  if (pos + 6 != text.size() || (text[pos] != '+' && text[pos] != '-') ||
      !Digits(text, pos + 1, 2, &oh) || text[pos + 3] != ':' || !Digits(text, pos + 4, 2, &om) ||
      oh > 23 || om > 59) {
    return std::nullopt;
  }
  int64_t offset = (static_cast<int64_t>(oh) * 3600 + om * 60) * 1'000'000;
  us = text[pos] == '+' ? us - offset : us + offset;
  // An offset can carry a time out of 1970..9999, which dates keep to and
  // times are written back in.
  static const int64_t kEnd = *ParseDate("9999-12-31") + kMicrosPerDay;
  if (us < 0 || us >= kEnd) return std::nullopt;
  return us;
}

namespace {

// Writes `value` as `width` digits at `out` (value < 10^width).
char* Fixed(char* out, unsigned value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  return out + width;
}

}  // namespace

TimeText FormatTimeText(int64_t us) {
  TimeText t;
  // Times okrd keeps (1970..9999) are written digit by digit; the rest
  // (none a written event holds) through the C library, which the fast
  // path writes the same text as.
  static const int64_t kEnd = *ParseDate("9999-12-31") + kMicrosPerDay;
  if (us >= 0 && us < kEnd) {
    const int64_t days = us / kMicrosPerDay;
    const int64_t in_day = us % kMicrosPerDay;
    const std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{days}}};
    const auto secs = static_cast<unsigned>(in_day / 1'000'000);
    char* out = Fixed(t.text, static_cast<unsigned>(static_cast<int>(ymd.year())), 4);
    *out++ = '-';
    out = Fixed(out, static_cast<unsigned>(ymd.month()), 2);
    *out++ = '-';
    out = Fixed(out, static_cast<unsigned>(ymd.day()), 2);
    *out++ = 'T';
    out = Fixed(out, secs / 3600, 2);
    *out++ = ':';
    out = Fixed(out, secs / 60 % 60, 2);
    *out++ = ':';
    out = Fixed(out, secs % 60, 2);
    *out++ = '.';
    out = Fixed(out, static_cast<unsigned>(in_day % 1'000'000), 6);
    *out++ = 'Z';
    t.size = static_cast<size_t>(out - t.text);
    assert(t.size == 27);
    return t;
  }
  int64_t secs = us / 1000000;
  int64_t frac = us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    secs -= 1;
  }
  std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  const int n = std::snprintf(t.text, sizeof t.text, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, static_cast<long long>(frac));
  assert(n > 0 && static_cast<size_t>(n) < sizeof t.text);
  t.size = static_cast<size_t>(n);
  return t;
}

std::string FormatTimeUs(int64_t us) { return std::string(FormatTimeText(us).view()); }

}  // namespace okr
