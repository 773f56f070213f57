// The end-of-cycle review: each objective's computed and reviewed score,
// its key results from original to final target, and the goalposts moved
// after the cycle started.
#include "projections/read/review.h"

#include <algorithm>
#include <cassert>
#include <map>

#include "eventstore/base/time.h"
#include "projections/read/view.h"

namespace okr {

using nlohmann::json;

namespace {

// One review's fixed points: the cycle's range and the View at its end.
struct ReviewScope {
  const Projection& p;
  uint64_t as_of;
  int64_t start_us;       // the cycle's first instant
  int64_t end_us;         // the first instant after the cycle
  uint64_t seq_at_start;  // the last seq recorded before the cycle started
  // Scores at the cycle's end: values measured before it ends, as known at as_of.
  View at_end;
};

// Appends every target or start of `o`'s key results moved after the cycle
// started — also of key results removed since and of objectives archived since.
void AppendGoalposts(const ReviewScope& r, const Objective& o, json* goalposts) {
  for (const std::string& kr_id : o.key_results) {
    const KeyResult* kr = r.p.key_result(kr_id);
    if (kr == nullptr) continue;
    for (const auto& rev : kr->revisions) {
      if (rev.meta.seq > r.as_of) break;
      if (!IsGoalpostChange(rev.meta) || rev.meta.recorded_at_us < r.start_us) continue;
      assert(rev.meta.seq > 0 && &rev != &kr->revisions.front());  // a change, not the creation
      const KeyResultFields* before = kr->FieldsAt(rev.meta.seq - 1);
      bool target = rev.meta.which == schema::Event::Which::KEY_RESULT_TARGET_CHANGED;
      goalposts->push_back({{"key_result", kr->id},
                            {"objective", o.id},
                            {"field", target ? "target" : "start"},
                            {"before", before ? (target ? before->target : before->start) : 0.0},
                            {"after", target ? rev.fields.target : rev.fields.start},
                            {"actor", rev.meta.actor},
                            {"recorded_at", FormatTimeUs(rev.meta.recorded_at_us)},
                            {"reason", rev.meta.reason},
                            {"seq", rev.meta.seq}});
    }
  }
}

// One key result's line of the review; adds its check-ins before the
// cycle's end to *check_ins.
json KeyResultReview(ReviewScope& r, const KeyResult& kr, size_t* check_ins) {
  const KeyResultFields& kf = *kr.FieldsAt(r.as_of);
  const KeyResultFields* at_start = kr.FieldsAt(r.seq_at_start);
  double original_target = at_start ? at_start->target : kr.revisions.front().fields.target;
  CurrentValue final_value = ValueOf(kr, kf, r.as_of, r.end_us - 1);
  size_t count = 0;
  const CheckIn* last = nullptr;
  for (const CheckIn& ci : kr.check_ins) {
    if (ci.meta.seq > r.as_of) break;
    if (ci.measured_at_us >= r.end_us) continue;
    ++count;
    if (!last || ci.measured_at_us >= last->measured_at_us) last = &ci;
  }
  assert(count <= kr.check_ins.size());
  *check_ins += count;
  return {{"id", kr.id},
          {"title", kf.title},
          {"owner", r.at_end.EffectiveOwner(kf)},
          {"metric", kf.metric},
          {"unit", kf.unit},
          {"weight", kf.weight},
          {"start", kf.start},
          {"original_target", original_target},
          {"target", kf.target},
          {"final", final_value.value},
          {"progress", r.at_end.KeyResultProgress(kr)},
          {"check_ins", count},
          {"last_check_in", last ? json(FormatTimeUs(last->measured_at_us)) : json(nullptr)}};
}

// One active objective's entry: scores, the review written, key results.
json ObjectiveReview(ReviewScope& r, const Objective& o, size_t* check_ins) {
  const ObjectiveFields& f = *o.FieldsAt(r.as_of);
  assert(!f.archived);  // archived objectives are listed apart
  json krs = json::array();
  for (const KeyResult* kr : r.at_end.KeyResultsOf(o)) {
    krs.push_back(KeyResultReview(r, *kr, check_ins));
  }
  auto reviewed = [&](auto field) { return f.review ? json(field(*f.review)) : json(nullptr); };
  return {{"id", o.id},
          {"title", f.title},
          {"owner", f.owner},
          {"parents", f.parents},
          {"computed_score", r.at_end.ObjectiveProgress(o)},
          {"score", reviewed([](const ReviewFields& v) { return v.score; })},
          {"outcome", reviewed([](const ReviewFields& v) { return v.outcome; })},
          {"reflection", reviewed([](const ReviewFields& v) { return v.reflection; })},
          {"lessons", reviewed([](const ReviewFields& v) { return v.lessons; })},
          {"reviewed_by", reviewed([](const ReviewFields& v) { return v.meta.actor; })},
          {"key_results", std::move(krs)}};
}

}  // namespace

Result<json> Review(const Projection& p, const std::string& cycle_id, uint64_t as_of) {
  const Cycle* cycle = p.cycle(cycle_id);
  const CycleFields* cf = cycle ? cycle->FieldsAt(as_of) : nullptr;
  if (!cf) return Status::NotFound("no cycle " + cycle_id, "cycle");
  const int64_t start_us = CycleStartUs(*cf), end_us = CycleEndUs(*cf);
  ReviewScope r{p,
                as_of,
                start_us,
                end_us,
                std::min(as_of, p.SeqAtTime(start_us - 1)),
                View(p, as_of, end_us - 1, end_us)};
  json objectives = json::array(), goalposts = json::array(), archived = json::array();
  // The objectives by outcome: achieved, partially, missed, not reviewed.
  std::map<std::string, json> by_outcome = {{"achieved", json::array()},
                                            {"partially", json::array()},
                                            {"missed", json::array()},
                                            {"unreviewed", json::array()}};
  size_t total_check_ins = 0;
  for (const Objective* o : r.at_end.Objectives({cycle_id, "", true})) {
    const ObjectiveFields& f = *o->FieldsAt(as_of);
    AppendGoalposts(r, *o, &goalposts);
    if (f.archived) {
      archived.push_back({{"id", o->id}, {"title", f.title}, {"owner", f.owner}});
      continue;
    }
    objectives.push_back(ObjectiveReview(r, *o, &total_check_ins));
    // Any outcome other than achieved or partially counts as missed.
    const std::string outcome =
        !f.review                                                             ? "unreviewed"
        : f.review->outcome == "achieved" || f.review->outcome == "partially" ? f.review->outcome
                                                                              : "missed";
    by_outcome[outcome].push_back(o->id);
  }
  return json{{"cycle", r.at_end.CycleJson(*cycle)},
              {"objectives", std::move(objectives)},
              {"moved_goalposts", std::move(goalposts)},
              {"achieved", std::move(by_outcome["achieved"])},
              {"partially", std::move(by_outcome["partially"])},
              {"missed", std::move(by_outcome["missed"])},
              {"unreviewed", std::move(by_outcome["unreviewed"])},
              {"archived", std::move(archived)},
              {"check_ins", total_check_ins}};
}

}  // namespace okr
