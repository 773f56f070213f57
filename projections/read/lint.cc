// Lint: findings on a cycle's plan — too many objectives per owner or key
// results per objective, objectives aligned to nothing, key results gone
// stale, goalposts moved after the cycle started.
#include <algorithm>
#include <cassert>
#include <map>

#include "eventstore/base/time.h"
#include "projections/read/shown.h"
#include "projections/read/view.h"

namespace okr {

using nlohmann::json;

namespace {

constexpr int64_t kStaleAfterUs = 14 * kMicrosPerDay;
constexpr size_t kLintMaxObjectives = 5;
constexpr size_t kLintMaxKeyResults = 5;

void AddFinding(JsonOut& findings, const char* rule, const std::string& entity,
                const std::string& message) {
  findings.StartObject().Key("entity").String(entity).Key("message").String(message);
  findings.Key("rule").String(rule).EndObject();
}

// When `kr` was last measured, known at `as_of`; its creation while it has
// no check-in; never before the cycle starts (nothing is due before then).
int64_t LastMeasuredUs(const KeyResult& kr, uint64_t as_of, int64_t cycle_start) {
  int64_t last = INT64_MIN;
  for (const CheckIn& ci : kr.check_ins) {
    if (ci.meta.seq > as_of) break;
    last = std::max(last, ci.measured_at_us);
  }
  if (last == INT64_MIN) last = kr.revisions.front().meta.recorded_at_us;
  return std::max(last, cycle_start);
}

}  // namespace

void View::WriteLint(JsonOut& out, const std::string& cycle, std::optional<uint64_t> as_of_seq,
                     const std::function<void()>& pause) {
  out.StartObject();
  if (as_of_seq) out.Key("as_of_seq").Uint(*as_of_seq);
  out.Key("findings").StartArray();
  std::map<std::pair<std::string, std::string>, size_t> per_owner;  // (cycle, owner) → count
  for (const Objective* o : Objectives({cycle, "", false})) {
    const ObjectiveFields& f = *o->FieldsAt(as_of_);
    per_owner[{f.cycle, f.owner}]++;
    LintObjective(*o, out);
    if (pause) pause();
  }
  for (const auto& [key, count] : per_owner) {
    if (count > kLintMaxObjectives) {
      AddFinding(out, "too_many_objectives", key.second,
                 key.second + " has " + std::to_string(count) + " active objectives in " +
                     key.first + "; keep it to " + std::to_string(kLintMaxObjectives) +
                     " or fewer");
    }
  }
  out.EndArray().EndObject();
}

json View::Lint(const std::string& cycle) {
  return WriteJsonDocument([&](JsonOut& out) { WriteLint(out, cycle, std::nullopt); });
}

void View::LintObjective(const Objective& o, JsonOut& findings) {
  const ObjectiveFields* f = o.FieldsAt(as_of_);
  assert(f != nullptr && !f->archived);  // Lint passes only active objectives
  auto krs = KeyResultsOf(o);
  if (krs.size() > kLintMaxKeyResults) {
    AddFinding(findings, "too_many_key_results", o.id,
               "objective has " + std::to_string(krs.size()) + " key results; keep it to " +
                   std::to_string(kLintMaxKeyResults) + " or fewer");
  }
  const UnitFields* owner = UnitAt(f->owner);
  if (owner && owner->kind != "company" && f->parents.empty()) {
    AddFinding(findings, "unaligned", o.id,
               "objective of " + f->owner + " aligns to no other objective");
  }
  const CycleFields* cy = CycleAt(f->cycle);
  if (!cy) return;
  for (const KeyResult* kr : krs) LintKeyResult(*kr, *cy, findings);
}

void View::LintKeyResult(const KeyResult& kr, const CycleFields& cycle, JsonOut& findings) const {
  assert(!kr.revisions.empty());
  const int64_t cycle_start = CycleStartUs(cycle);
  if (!cycle.closed) {
    // Staleness runs from the newest measurement (LastMeasuredUs).
    const int64_t last = LastMeasuredUs(kr, as_of_, cycle_start);
    if (now_us_ - last > kStaleAfterUs) {
      AddFinding(findings, "stale", kr.id,
                 "no check-in since " + FormatDate(last) + " (more than 14 days)");
    }
  }
  for (const auto& rev : kr.revisions) {
    if (rev.meta.seq > as_of_) break;
    if (!IsGoalpostChange(rev.meta) || rev.meta.recorded_at_us < cycle_start) continue;
    AddFinding(
        findings, "moved_goalposts", kr.id,
        (rev.meta.which == schema::Event::Which::KEY_RESULT_TARGET_CHANGED ? "target" : "start") +
            std::string(" changed on ") + FormatDate(rev.meta.recorded_at_us) + " by " +
            rev.meta.actor.str() + ", after the cycle started" +
            (rev.meta.reason.empty()
                 ? ""
                 : " (" + ShownText({rev.meta.reason, rev.meta.seq, PersonalField::REASON}) + ")"));
  }
}

}  // namespace okr
