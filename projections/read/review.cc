// The end-of-cycle review: each objective's computed and reviewed score,
// its key results from original to final target, and the goalposts moved
// after the cycle started — as JSON here, as Markdown and CSV in
// review_render.cc.
#include "projections/read/review.h"

#include <algorithm>
#include <cassert>

#include "eventstore/base/time.h"
#include "projections/read/shown.h"

namespace okr {

using nlohmann::json;

namespace {

// The outcomes the review groups active objectives by, in its order; any
// outcome other than achieved or partially counts as missed.
constexpr std::array<const char*, 4> kOutcomes = {"achieved", "partially", "missed", "unreviewed"};

size_t OutcomeOf(const ObjectiveFields& f) {
  if (!f.review) return 3;
  if (f.review->outcome == kOutcomes[0]) return 0;
  return f.review->outcome == kOutcomes[1] ? 1 : 2;
}

}  // namespace

ReviewPlan::ReviewPlan(const Projection& p, const Cycle& cycle, uint64_t as_of, int64_t start_us,
                       int64_t end_us)
    : p_(p),
      cycle_(cycle),
      as_of_(as_of),
      start_us_(start_us),
      end_us_(end_us),
      seq_at_start_(std::min(as_of, p.SeqAtTime(start_us - 1))),
      at_end_(p, as_of, end_us - 1, end_us) {}

Result<ReviewPlan> ReviewPlan::Make(const Projection& p, const std::string& cycle_id,
                                    uint64_t as_of) {
  const Cycle* cycle = p.cycle(cycle_id);
  const CycleFields* cf = cycle ? cycle->FieldsAt(as_of) : nullptr;
  if (!cf) return Status::NotFound("no cycle " + cycle_id, "cycle");
  ReviewPlan plan(p, *cycle, as_of, CycleStartUs(*cf), CycleEndUs(*cf));
  plan.objectives_ = plan.at_end_.Objectives({cycle_id, "", true});
  for (const Objective* o : plan.objectives_) {
    const ObjectiveFields& f = *o->FieldsAt(as_of);
    if (f.archived) continue;
    ++plan.by_outcome_[OutcomeOf(f)];
    for (const KeyResult* kr : plan.at_end_.KeyResultsOf(*o)) {
      plan.check_ins_ += plan.CheckInsOf(*kr);
    }
  }
  return plan;
}

size_t ReviewPlan::CheckInsOf(const KeyResult& kr, const CheckIn** last) const {
  size_t count = 0;
  const CheckIn* latest = nullptr;
  for (const CheckIn& ci : kr.check_ins) {
    if (ci.meta.seq > as_of_) break;
    if (ci.measured_at_us >= end_us_) continue;
    ++count;
    if (!latest || ci.measured_at_us >= latest->measured_at_us) latest = &ci;
  }
  assert(count <= kr.check_ins.size());
  if (last) *last = latest;
  return count;
}

ReviewPlan::KeyResultLine ReviewPlan::LineOf(const KeyResult& kr) {
  const KeyResultFields& kf = *kr.FieldsAt(as_of_);
  const KeyResultFields* at_start = kr.FieldsAt(seq_at_start_);
  const CheckIn* last = nullptr;
  const size_t count = CheckInsOf(kr, &last);
  return {kf,
          at_start ? at_start->target : kr.revisions.front().fields.target,
          ValueOf(kr, kf, as_of_, end_us_ - 1).value,
          at_end_.KeyResultProgress(kr),
          count,
          last};
}

void ReviewPlan::ForEachGoalpost(const Objective& o,
                                 const std::function<void(const Goalpost&)>& fn) const {
  for (const std::string& kr_id : o.key_results) {
    const KeyResult* kr = p_.key_result(kr_id);
    if (kr == nullptr) continue;
    for (const auto& rev : kr->revisions) {
      if (rev.meta.seq > as_of_) break;
      if (!IsGoalpostChange(rev.meta) || rev.meta.recorded_at_us < start_us_) continue;
      assert(rev.meta.seq > 0 && &rev != &kr->revisions.front());  // a change, not the creation
      const KeyResultFields* before = kr->FieldsAt(rev.meta.seq - 1);
      const bool target = rev.meta.which == schema::Event::Which::KEY_RESULT_TARGET_CHANGED;
      fn({*kr, rev.meta, target, before ? (target ? before->target : before->start) : 0.0,
          target ? rev.fields.target : rev.fields.start});
    }
  }
}

// One key result's line of the review.
void ReviewPlan::WriteKeyResult(JsonOut& out, const KeyResult& kr) {
  const KeyResultLine line = LineOf(kr);
  const KeyResultFields& kf = line.fields;
  out.StartObject().Key("check_ins").Uint(line.check_ins).Key("final").Number(line.final_value);
  out.Key("id").String(kr.id).Key("last_check_in");
  if (line.last) {
    out.String(FormatTimeText(line.last->measured_at_us).view());
  } else {
    out.Null();
  }
  out.Key("metric").String(kf.metric).Key("original_target").Number(line.original_target);
  out.Key("owner").String(at_end_.EffectiveOwner(kf)).Key("progress").Number(line.progress);
  out.Key("start").Number(kf.start).Key("target").Number(kf.target);
  out.Key("title").String(kf.title).Key("unit").String(kf.unit);
  out.Key("weight").Number(kf.weight).EndObject();
}

// One active objective's entry: scores, the review written, key results.
void ReviewPlan::WriteObjective(JsonOut& out, const Objective& o) {
  const ObjectiveFields& f = *o.FieldsAt(as_of_);
  assert(!f.archived);  // archived objectives are listed apart
  const ReviewFields* review = f.review ? &*f.review : nullptr;
  const uint64_t seq = review ? review->meta.seq : 0;
  const Shown shown{{review ? review->reflection : "", seq, PersonalField::REFLECTION},
                    {review ? review->lessons : "", seq, PersonalField::LESSONS}};
  out.StartObject().Key("computed_score").Number(at_end_.ObjectiveProgress(o));
  shown.Flags(out);
  out.Key("id").String(o.id).Key("key_results").StartArray();
  for (const KeyResult* kr : at_end_.KeyResultsOf(o)) WriteKeyResult(out, *kr);
  out.EndArray();
  auto text = [&](const char* key, const std::string& value) {
    out.Key(key);
    review ? out.String(value) : out.Null();
  };
  auto personal = [&](const char* key, size_t i) {
    out.Key(key);
    if (review) {
      shown.Write(out, i);
    } else {
      out.Null();
    }
  };
  personal("lessons", 1);
  text("outcome", review ? review->outcome : "");
  out.Key("owner").String(f.owner).Key("parents").StartArray();
  for (const std::string& parent : f.parents) out.String(parent);
  out.EndArray();
  personal("reflection", 0);
  text("reviewed_by", review ? review->meta.actor.str() : "");
  out.Key("score").NumberOrNull(review ? std::optional<double>(review->score) : std::nullopt);
  out.Key("title").String(f.title).EndObject();
}

void ReviewPlan::WriteJson(JsonOut& out, std::optional<uint64_t> as_of_seq,
                           const nlohmann::json* checkpoint, const std::function<void()>& pause) {
  auto each = [&](auto write) {
    for (const Objective* o : objectives_) {
      write(*o, *o->FieldsAt(as_of_));
      if (pause) pause();
    }
  };
  // The ids of the active objectives with outcome `i`.
  auto ids_with = [&](size_t i) {
    out.StartArray();
    each([&](const Objective& o, const ObjectiveFields& f) {
      if (!f.archived && OutcomeOf(f) == i) out.String(o.id);
    });
    out.EndArray();
  };
  out.StartObject().Key("achieved");
  ids_with(0);
  out.Key("archived").StartArray();
  each([&](const Objective& o, const ObjectiveFields& f) {
    if (!f.archived) return;
    out.StartObject().Key("id").String(o.id).Key("owner").String(f.owner);
    out.Key("title").String(f.title).EndObject();
  });
  out.EndArray();
  if (as_of_seq) out.Key("as_of_seq").Uint(*as_of_seq);
  out.Key("check_ins").Uint(check_ins_);
  if (checkpoint) out.Key("checkpoint").Json(*checkpoint);
  out.Key("cycle").Json(at_end_.CycleJson(cycle_));
  out.Key("missed");
  ids_with(2);
  out.Key("moved_goalposts").StartArray();
  each([&](const Objective& o, const ObjectiveFields&) {
    ForEachGoalpost(o, [&](const Goalpost& g) {
      const Shown reason{{g.meta.reason, g.meta.seq, PersonalField::REASON}};
      out.StartObject().Key("actor").String(g.meta.actor).Key("after").Number(g.after);
      out.Key("before").Number(g.before);
      reason.Flags(out);
      out.Key("field").String(g.target ? "target" : "start");
      out.Key("key_result").String(g.kr.id).Key("objective").String(o.id);
      out.Key("reason");
      reason.Write(out, 0);
      out.Key("recorded_at").String(FormatTimeText(g.meta.recorded_at_us).view());
      out.Key("seq").Uint(g.meta.seq).EndObject();
    });
  });
  out.EndArray().Key("objectives").StartArray();
  each([&](const Objective& o, const ObjectiveFields& f) {
    if (!f.archived) WriteObjective(out, o);
  });
  out.EndArray().Key("partially");
  ids_with(1);
  out.Key("unreviewed");
  ids_with(3);
  out.EndObject();
}

Result<json> Review(const Projection& p, const std::string& cycle, uint64_t as_of) {
  auto plan = ReviewPlan::Make(p, cycle, as_of);
  if (!plan.ok()) return plan.status();
  return WriteJsonDocument([&](JsonOut& out) { plan->WriteJson(out, std::nullopt); });
}

Result<std::string> ReviewText(const Projection& p, const std::string& cycle, uint64_t as_of,
                               ReviewFormat format) {
  auto plan = ReviewPlan::Make(p, cycle, as_of);
  if (!plan.ok()) return plan.status();
  std::string text;
  plan->WriteText(format, &text);
  return text;
}

}  // namespace okr
