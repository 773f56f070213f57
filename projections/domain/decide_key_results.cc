// Deciding key results (what is measured, from where to where) and their
// check-ins and corrections.
#include <cassert>
#include <cmath>
#include <cstdio>
#include <random>

#include "projections/domain/decider.h"

namespace okr::decide {

Result<Decision> Decider::operator()(const CreateKeyResult& c) {
  OKR_RETURN_IF_ERROR(CheckNewId(s_, c.id, "id"));
  const Objective* o = s_.objective(c.objective);
  if (o == nullptr) return Status::Invalid("no objective " + c.objective, "objective");
  if (o->current().archived) {
    return Status::Invalid("objective " + c.objective + " is archived", "objective");
  }
  OKR_RETURN_IF_ERROR(CheckOpenCycle(o->current().cycle, "objective", true));
  OKR_RETURN_IF_ERROR(CheckTitle(c.title, "title"));
  if (!c.owner.empty()) OKR_RETURN_IF_ERROR(CheckOwner(c.owner, "owner"));
  KeyResultFields f;
  f.metric = c.metric;
  f.start = c.start;
  f.target = c.target;
  f.weight = c.weight;
  OKR_RETURN_IF_ERROR(CheckMeasure(f));
  OKR_RETURN_IF_ERROR(CheckString(c.unit, "unit", kMaxUnitLabelChars, false, false));
  Begin(c.id);
  // Its objective's version too: the new key result joins its list.
  Expect(c.objective);
  Add(c.id, [&](schema::Event::Builder ev) {
    auto b = ev.initKeyResultAdded();
    b.setObjective(c.objective);
    b.setTitle(c.title);
    b.setOwner(c.owner);
    b.setMetric(ToEnum<schema::Metric>(c.metric));
    b.setStart(c.start);
    b.setTarget(c.target);
    b.setUnit(c.unit);
    b.setWeight(c.weight);
  });
  return Done();
}

Result<Decision> Decider::operator()(const UpdateKeyResult& c) {
  OKR_ASSIGN_OR_RETURN(const KeyResult* kr, Found(s_.key_result(c.id), "key result", c.id, "id"));
  const KeyResultFields& f = kr->current();
  OKR_RETURN_IF_ERROR(RefuseIf(f.removed, "key result", c.id, "is removed", "id"));
  OKR_RETURN_IF_ERROR(CheckOpenCycleOfObjective(f.objective));
  // The measure is checked as a whole: a new target must differ from the
  // start it will have, not the one it had.
  KeyResultFields n = f;
  if (c.metric) n.metric = *c.metric;
  if (c.start) n.start = *c.start;
  if (c.target) n.target = *c.target;
  if (c.weight) n.weight = *c.weight;
  OKR_RETURN_IF_ERROR(CheckMeasure(n));
  Begin(c.id);
  OKR_RETURN_IF_ERROR(UpdateKeyResultTexts(c, f));
  if (n.metric != f.metric) {
    Add(c.id, [&](schema::Event::Builder ev) {
      auto b = ev.initKeyResultMetricChanged();
      b.setBefore(ToEnum<schema::Metric>(f.metric));
      b.setAfter(ToEnum<schema::Metric>(n.metric));
    });
  }
  NumberChange(c.id, &schema::Event::Builder::initKeyResultStartChanged, f.start, n.start);
  NumberChange(c.id, &schema::Event::Builder::initKeyResultTargetChanged, f.target, n.target);
  NumberChange(c.id, &schema::Event::Builder::initKeyResultWeightChanged, f.weight, n.weight);
  return Done();
}

// The title, owner and unit label an update changes, in that order.
Status Decider::UpdateKeyResultTexts(const UpdateKeyResult& c, const KeyResultFields& f) {
  assert(decision_.entity == c.id);
  using B = schema::Event::Builder;
  OKR_RETURN_IF_ERROR(TextUpdate(c.id, &B::initKeyResultTitleChanged, f.title, c.title,
                                 [](const std::string& v) { return CheckTitle(v, "title"); }));
  // An empty owner hands the key result back to its objective's owner.
  OKR_RETURN_IF_ERROR(TextUpdate(
      c.id, &B::initKeyResultOwnerChanged, f.owner, c.owner,
      [&](const std::string& v) { return v.empty() ? Status::Ok() : CheckOwner(v, "owner"); }));
  OKR_RETURN_IF_ERROR(
      TextUpdate(c.id, &B::initKeyResultUnitChanged, f.unit, c.unit, [](const std::string& v) {
        return CheckString(v, "unit", kMaxUnitLabelChars, false, false);
      }));
  return Status::Ok();
}

Result<Decision> Decider::operator()(const RemoveKeyResult& c) {
  OKR_ASSIGN_OR_RETURN(const KeyResult* kr, Found(s_.key_result(c.id), "key result", c.id, "id"));
  OKR_RETURN_IF_ERROR(
      RefuseIf(kr->current().removed, "key result", c.id, "is already removed", "id"));
  OKR_RETURN_IF_ERROR(CheckOpenCycleOfObjective(kr->current().objective));
  return One(c.id, [](schema::Event::Builder ev) { ev.initKeyResultRemoved(); });
}

Result<Decision> Decider::operator()(const RecordCheckIn& c) {
  OKR_ASSIGN_OR_RETURN(const KeyResult* kr, Found(s_.key_result(c.key_result), "key result",
                                                  c.key_result, "key_result"));
  const KeyResultFields& f = kr->current();
  OKR_RETURN_IF_ERROR(RefuseIf(f.removed, "key result", c.key_result, "is removed", "key_result"));
  OKR_RETURN_IF_ERROR(CheckOpenCycleOfObjective(f.objective));
  OKR_ASSIGN_OR_RETURN(std::string id, CheckInId(c.id));
  OKR_RETURN_IF_ERROR(CheckCheckIn(c, f));
  int64_t measured = c.measured_at_us.value_or(ctx_.now_us);
  assert(measured >= 0 && measured <= ctx_.now_us);  // CheckCheckIn
  // The check-in id — the client's own or a fresh one — is reserved by
  // the store atomically with the append (ids are unique across every
  // kind), so concurrent check-ins never wait for each other.
  BeginAppend(c.key_result);
  Add(c.key_result, [&](schema::Event::Builder ev) {
    auto b = ev.initCheckInRecorded();
    b.setCheckIn(id);
    b.setValue(c.value);
    b.setHasConfidence(c.confidence.has_value());
    b.setConfidence(c.confidence.value_or(0));
    b.setStatus(ToEnum<schema::CheckInStatus>(c.status));
    b.setMeasuredAt(measured);
    Personal(schema::PersonalField::NOTE, c.note, Author());
  });
  return Done();
}

// The client's check-in id when it is a valid new one, or a fresh one.
Result<std::string> Decider::CheckInId(const std::string& requested) {
  if (requested.empty()) return AssignCheckInId();
  OKR_RETURN_IF_ERROR(CheckNewId(s_, requested, "id"));
  return requested;
}

// The value, confidence, status, note and measuring time of a check-in.
Status Decider::CheckCheckIn(const RecordCheckIn& c, const KeyResultFields& f) {
  OKR_RETURN_IF_ERROR(CheckValue(f, c.value, "value"));
  if (c.confidence) OKR_RETURN_IF_ERROR(CheckConfidence(*c.confidence, "confidence"));
  if (!c.status.empty() && !IsOneOf(c.status, {"on_track", "at_risk", "off_track"})) {
    return Status::Invalid("status must be on_track, at_risk or off_track", "status");
  }
  OKR_RETURN_IF_ERROR(CheckText(c.note, "note"));
  int64_t measured = c.measured_at_us.value_or(ctx_.now_us);
  if (measured > ctx_.now_us) {
    return Status::Invalid("measured_at is in the future", "measured_at");
  }
  if (measured < 0) return Status::Invalid("measured_at is before 1970", "measured_at");
  return Status::Ok();
}

Result<Decision> Decider::operator()(const CorrectCheckIn& c) {
  OKR_ASSIGN_OR_RETURN(const KeyResult* kr, Found(s_.key_result(c.key_result), "key result",
                                                  c.key_result, "key_result"));
  const KeyResultFields& f = kr->current();
  OKR_RETURN_IF_ERROR(CheckOpenCycleOfObjective(f.objective));
  if (s_.KeyResultOfCheckIn(c.corrects) != kr) {
    return Status::Invalid("no check-in " + c.corrects + " on key result " + c.key_result,
                           "corrects");
  }
  OKR_RETURN_IF_ERROR(CheckValue(f, c.value, "value"));
  OKR_RETURN_IF_ERROR(CheckText(c.note, "note"));
  double before = 0;
  for (const CheckIn& ci : CheckInSeries(*kr, s_.seq())) {
    if (ci.id == c.corrects) before = ci.value;
  }
  // `before` is read from the current state: a correction racing another
  // must be decided again, or it records a value that was already replaced.
  return One(c.key_result, [&](schema::Event::Builder ev) {
    auto b = ev.initCheckInCorrected();
    b.setCheckIn(c.corrects);
    b.setBefore(before);
    b.setValue(c.value);
    Personal(schema::PersonalField::NOTE, c.note, Author());
  });
}

// What is measured and how: a known metric, bounded numbers, a positive
// bounded weight, booleans from 0 or 1 to the other, and some distance to go.
Status Decider::CheckMeasure(const KeyResultFields& f) {
  if (!IsOneOf(f.metric, {"number", "percent", "currency", "boolean"})) {
    return Status::Invalid("metric must be number, percent, currency or boolean", "metric");
  }
  OKR_RETURN_IF_ERROR(CheckBounded(f.start, "start"));
  OKR_RETURN_IF_ERROR(CheckBounded(f.target, "target"));
  if (!std::isfinite(f.weight)) return Status::Invalid("weight must be a finite number", "weight");
  if (f.weight <= 0) return Status::Invalid("weight must be greater than 0", "weight");
  if (f.weight > kMaxWeight) return Status::Invalid("weight must be at most 1000", "weight");
  if (f.metric == "boolean") {
    if (f.start != 0 && f.start != 1) return Status::Invalid("a boolean starts at 0 or 1", "start");
    if (f.target != 0 && f.target != 1) {
      return Status::Invalid("a boolean targets 0 or 1", "target");
    }
  }
  if (f.target == f.start) return Status::Invalid("target must differ from start", "target");
  return Status::Ok();
}

Status Decider::CheckValue(const KeyResultFields& f, double v, const char* field) {
  OKR_RETURN_IF_ERROR(CheckBounded(v, field));
  if (f.metric == "boolean" && v != 0 && v != 1) {
    return Status::Invalid(std::string(field) + " of a boolean key result is 0 or 1", field);
  }
  return Status::Ok();
}

// Random, so concurrent check-ins decided on the same state never pick
// the same id (64 bits: a collision is refused by the id check anyway).
std::string Decider::AssignCheckInId() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  for (;;) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "ci-%016llx", static_cast<unsigned long long>(rng()));
    if (!s_.KindOf(buf)) return buf;
  }
}

}  // namespace okr::decide
