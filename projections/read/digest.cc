// The daily reminder digest: stale key results and objectives due for
// review, by owner unit. Found as light references first, then sorted and
// cut to the bound, and only the entries kept are copied out.
#include "projections/read/digest.h"

#include <algorithm>
#include <map>
#include <string_view>
#include <tuple>

#include "eventstore/base/time.h"
#include "projections/read/pace.h"
#include "projections/read/shown.h"

namespace okr {

using nlohmann::json;

namespace {

constexpr int64_t kStaleUs = kDigestStaleDays * kMicrosPerDay;

// One entry of the digest before it is copied out: what it is and where.
struct Candidate {
  const std::string* unit;  // the owner's id
  bool objective;           // else a stale key result; they come first
  const std::string* id;
  int64_t days;                    // days_since or days_left
  std::optional<int64_t> last_us;  // a key result's newest measured_at
  const std::string* cycle_ends;   // an objective's cycle's last day

  // The answer's order: unit, stale key results before objectives, id.
  bool operator<(const Candidate& o) const {
    return std::tie(*unit, objective, *id) < std::tie(*o.unit, o.objective, *o.id);
  }
};

// The stale key results of cycles under way at `now_us`.
void AddStaleKeyResults(const Projection& p, int64_t now_us, std::vector<Candidate>* out) {
  std::map<std::string_view, bool> under_way;  // by cycle id; cycles are few
  for (const auto& [id, c] : p.cycles()) {
    const CycleSpan span = CycleSpanOf(c.current());
    under_way[id] =
        !c.current().closed && span.starts_us <= now_us && now_us < span.ends_us_exclusive;
  }
  for (const auto& [id, kr] : p.key_results()) {
    const KeyResultFields& f = kr.current();
    const Objective* o = f.removed ? nullptr : p.objective(f.objective);
    if (o == nullptr || o->current().archived) continue;
    const ObjectiveFields& of = o->current();
    auto cycle = under_way.find(of.cycle);
    if (cycle == under_way.end() || !cycle->second) continue;
    std::optional<int64_t> last;
    if (!kr.check_ins.empty()) {
      last = kr.check_ins[kr.check_ins.LatestUpTo(kr.check_ins.size() - 1)].measured_at_us;
    }
    const int64_t since = last.value_or(kr.revisions.front().meta.recorded_at_us);
    if (now_us - since < kStaleUs) continue;
    const std::string* owner = f.owner.empty() ? &of.owner : &f.owner;
    out->push_back({owner, false, &id, (now_us - since) / kMicrosPerDay, last, nullptr});
  }
}

// The unreviewed objectives of open cycles whose last day is within
// [today, today + kDigestReviewDays].
void AddDueObjectives(const Projection& p, int64_t today_us, std::vector<Candidate>* out) {
  std::map<std::string_view, int64_t> days_left;  // by cycle id, of the cycles due
  for (const auto& [id, c] : p.cycles()) {
    const CycleFields& f = c.current();
    const std::optional<int64_t> ends_us = ParseDate(f.ends);
    if (f.closed || !ends_us || *ends_us < today_us ||
        *ends_us > today_us + kDigestReviewDays * kMicrosPerDay) {
      continue;
    }
    days_left[id] = (*ends_us - today_us) / kMicrosPerDay;
  }
  if (days_left.empty()) return;
  for (const auto& [id, o] : p.objectives()) {
    const ObjectiveFields& f = o.current();
    if (f.archived || f.review) continue;
    auto due = days_left.find(f.cycle);
    if (due == days_left.end()) continue;
    const std::string* ends = &p.cycle(f.cycle)->current().ends;
    out->push_back({&f.owner, true, &id, due->second, std::nullopt, ends});
  }
}

// Copies `c` out into `unit`.
void CopyOut(const Projection& p, const Candidate& c, DigestUnit* unit) {
  if (c.objective) {
    const ObjectiveFields& f = p.objective(*c.id)->current();
    unit->objectives_due_for_review.push_back({*c.id, f.title, f.cycle, *c.cycle_ends, c.days});
    return;
  }
  const KeyResultFields& f = p.key_result(*c.id)->current();
  const std::string& cycle = p.objective(f.objective)->current().cycle;
  unit->stale_key_results.push_back({*c.id, f.title, f.objective, cycle, c.last_us, c.days});
}

}  // namespace

Digest MakeDigest(const Projection& p, int64_t now_us, size_t max_entries) {
  Digest digest;
  digest.day = FormatDate(now_us);
  digest.generated_at_us = now_us;
  digest.as_of_seq = p.seq();
  std::vector<Candidate> found;
  AddStaleKeyResults(p, now_us, &found);
  AddDueObjectives(p, *ParseDate(digest.day), &found);
  digest.truncated = found.size() > max_entries;
  const size_t kept = std::min(found.size(), max_entries);
  std::partial_sort(found.begin(), found.begin() + static_cast<std::ptrdiff_t>(kept), found.end());
  for (size_t i = 0; i < kept; ++i) {
    const Candidate& c = found[i];
    if (digest.units.empty() || digest.units.back().unit != *c.unit) {
      DigestUnit& unit = digest.units.emplace_back();
      unit.unit = *c.unit;
      if (const Unit* u = p.unit(*c.unit)) unit.name = u->current().name;
    }
    CopyOut(p, c, &digest.units.back());
  }
  return digest;
}

json RenderDigest(const Digest& digest) {
  json units = json::array();
  for (const DigestUnit& u : digest.units) {
    json stale = json::array();
    for (const DigestStaleKeyResult& kr : u.stale_key_results) {
      stale.push_back(
          {{"id", kr.id},
           {"title", kr.title},
           {"objective", kr.objective},
           {"cycle", kr.cycle},
           {"last_check_in_at",
            kr.last_check_in_us ? json(FormatTimeUs(*kr.last_check_in_us)) : json(nullptr)},
           {"days_since", kr.days_since}});
    }
    json due = json::array();
    for (const DigestDueObjective& o : u.objectives_due_for_review) {
      due.push_back({{"id", o.id},
                     {"title", o.title},
                     {"cycle", o.cycle},
                     {"cycle_ends", o.cycle_ends},
                     {"days_left", o.days_left}});
    }
    ShownFlags flags;
    json unit = {{"unit", u.unit},
                 {"name", u.name ? ShownJson({*u.name}, &flags) : json(nullptr)},
                 {"stale_key_results", std::move(stale)},
                 {"objectives_due_for_review", std::move(due)}};
    flags.AddTo(&unit);
    units.push_back(std::move(unit));
  }
  return {{"type", "digest"},
          {"day", digest.day},
          {"generated_at", FormatTimeUs(digest.generated_at_us)},
          {"as_of_seq", digest.as_of_seq},
          {"truncated", digest.truncated},
          {"units", std::move(units)}};
}

json DigestJson(const Projection& p, int64_t now_us, size_t max_entries) {
  return RenderDigest(MakeDigest(p, now_us, max_entries));
}

}  // namespace okr
