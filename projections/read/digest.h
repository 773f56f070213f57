// The daily reminder digest (SPEC §8, "Reminders"): what needs attention
// today, grouped by the unit that owns it —
//   - stale key results: no check-in for 7 days or more, in cycles under
//     way (not closed, and `now` between their first instant and the first
//     instant after their end day); key results not removed, of objectives
//     not archived. A key result is stale when its newest check-in (by
//     measured_at) was measured at least 7×24 h before `now`, or, with no
//     check-in ever, when it was created at least 7×24 h before `now`;
//   - objectives due for review: not archived and not reviewed, of cycles
//     not closed whose end day lies within [today, today + 14 days].
// A key result belongs to its owner, else to its objective's; an objective
// to its owner.
//
// The digest is of the projection's current state (as_of_seq: its head)
// judged at `now_us`, the caller's clock: the wall clock when the webhook
// delivers it, a chosen instant in tests. Bounded: at most max_entries
// entries (stale key results and objectives together; kDigestMaxEntries by
// default), taken in the answer's order — units by id, each unit's stale
// key results, then its objectives, each list by id — and "truncated" is
// true when some were left out.
//
// MakeDigest copies what it shows, so a caller holds the projection's lock
// for it alone and renders without it.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "projections/domain/projection.h"

namespace okr {

// A digest lists at most this many entries, which bounds a webhook's body:
// an entry with a short title is about 130 bytes of JSON (5000 of them made
// 661 KB in digest_test), one with the longest title and ids at most about
// 1.1 KB, so a digest is under 6 MB whatever the names.
inline constexpr size_t kDigestMaxEntries = 5000;
// How long without a check-in makes a key result stale, and how far ahead
// a cycle's end makes its objectives due for review.
inline constexpr int kDigestStaleDays = 7;
inline constexpr int kDigestReviewDays = 14;

struct DigestStaleKeyResult {
  std::string id, title, objective, cycle;
  std::optional<int64_t> last_check_in_us;  // measured_at of the newest; none: never checked in
  int64_t days_since = 0;  // whole days since then, or since its creation when none
};

struct DigestDueObjective {
  std::string id, title, cycle;
  std::string cycle_ends;  // YYYY-MM-DD, the cycle's last day
  int64_t days_left = 0;   // whole days from today to cycle_ends (0: it ends today)
};

struct DigestUnit {
  std::string unit;
  std::optional<std::string> name;                      // none: no such unit in the projection
  std::vector<DigestStaleKeyResult> stale_key_results;  // by id
  std::vector<DigestDueObjective> objectives_due_for_review;  // by id
};

struct Digest {
  std::string day;  // YYYY-MM-DD (UTC) of now_us
  int64_t generated_at_us = 0;
  uint64_t as_of_seq = 0;
  std::vector<DigestUnit> units;  // by unit id; none without an entry
  bool truncated = false;         // entries were left out to keep max_entries
};

Digest MakeDigest(const Projection& p, int64_t now_us, size_t max_entries = kDigestMaxEntries);

// {"type": "digest", "day", "generated_at" (RFC 3339), "as_of_seq",
//  "truncated", "units": [{"unit", "name", "stale_key_results": [{"id",
//  "title", "objective", "cycle", "last_check_in_at" (RFC 3339 or null),
//  "days_since"}], "objectives_due_for_review": [{"id", "title", "cycle",
//  "cycle_ends", "days_left"}]}]}.
nlohmann::json RenderDigest(const Digest& digest);

// RenderDigest(MakeDigest(p, now_us, max_entries)).
nlohmann::json DigestJson(const Projection& p, int64_t now_us,
                          size_t max_entries = kDigestMaxEntries);

}  // namespace okr
