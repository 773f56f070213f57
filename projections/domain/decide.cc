#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "eventstore/enum_names.h"
#include "projections/domain/commands.h"
#include "eventstore/base/time.h"

namespace okr {

bool ValidId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdChars) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

namespace {

// Code points in valid UTF-8, or -1 when `s` is not valid UTF-8.
long Utf8Length(std::string_view s) {
  long n = 0;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > s.size()) return -1;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return -1;
    }
    // RFC 3629: no overlong forms, no UTF-16 surrogates, nothing past
    // U+10FFFF (a JSON encoder refuses to write any of them).
    const unsigned char c1 = len > 1 ? static_cast<unsigned char>(s[i + 1]) : 0;
    if (len == 2 && c < 0xc2) return -1;                                // overlong
    if (len == 3 && c == 0xe0 && c1 < 0xa0) return -1;                  // overlong
    if (len == 3 && c == 0xed && c1 > 0x9f) return -1;                  // surrogate
    if (len == 4 && c == 0xf0 && c1 < 0x90) return -1;                  // overlong
    if (len == 4 && (c > 0xf4 || (c == 0xf4 && c1 > 0x8f))) return -1;  // past U+10FFFF
    i += len;
    ++n;
  }
  return n;
}

Status CheckString(std::string_view s, const char* field, size_t max_chars, bool multiline,
                   bool required) {
  long n = Utf8Length(s);
  if (n < 0) return Status::Invalid(std::string(field) + " is not valid UTF-8", field);
  if (required && s.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return Status::Invalid(std::string(field) + " must not be empty", field);
  }
  if (static_cast<size_t>(n) > max_chars) {
    return Status::Invalid(std::string(field) + " is longer than " + std::to_string(max_chars) +
                               " characters",
                           field);
  }
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    bool allowed_space = multiline && (c == '\n' || c == '\r' || c == '\t');
    // C1 controls U+0080–U+009F are 0xC2 0x80–0x9F (the UTF-8 is valid here).
    bool c1 = c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xa0;
    if ((c < 0x20 && !allowed_space) || c == 0x7f || c1) {
      return Status::Invalid(std::string(field) + " contains a control character", field);
    }
  }
  return Status::Ok();
}

Status CheckTitle(std::string_view s, const char* field) {
  return CheckString(s, field, kMaxTitleChars, false, true);
}
Status CheckText(std::string_view s, const char* field) {
  return CheckString(s, field, kMaxTextChars, true, false);
}

// A finite number within ±kMaxAbsValue.
Status CheckBounded(double v, const char* field) {
  if (!std::isfinite(v)) return Status::Invalid(std::string(field) + " must be a finite number", field);
  if (std::fabs(v) > kMaxAbsValue) {
    return Status::Invalid(std::string(field) + " must lie between -1e15 and 1e15", field);
  }
  return Status::Ok();
}

Status CheckNewId(const Projection& state, const std::string& id, const char* field) {
  if (!ValidId(id)) {
    return Status::Invalid(std::string(field) + " must be 1-64 characters of a-z, 0-9, '.', '_', '-'",
                           field);
  }
  if (state.KindOf(id)) return Status::AlreadyExists("id " + id + " is already taken", field);
  return Status::Ok();
}

// The enumerant named `name` (already checked against the rules), or E's
// first one for an empty name, which is how unset optional enums are stored.
template <typename E>
E ToEnum(const std::string& name) {
  return EnumFromName<E>(name).value_or(static_cast<E>(0));
}

bool IsOneOf(const std::string& v, std::initializer_list<const char*> options) {
  return std::any_of(options.begin(), options.end(), [&](const char* o) { return v == o; });
}





void SetTexts(capnp::List<capnp::Text>::Builder list, const std::vector<std::string>& v) {
  for (size_t i = 0; i < v.size(); ++i) list.set(static_cast<unsigned>(i), v[i]);
}

// Builds one command's Decision; every check fails fast with the field.
class Decider {
 public:
  Decider(const Projection& state, const CommandContext& ctx) : s_(state), ctx_(ctx) {}

  Result<Decision> operator()(const CreateUnit& c) {
    if (Status st = CheckNewId(s_, c.id, "id"); !st.ok()) return st;
    if (!IsOneOf(c.kind, {"company", "department", "team", "person"})) {
      return Status::Invalid("kind must be company, department, team or person", "kind");
    }
    if (Status st = CheckTitle(c.name, "name"); !st.ok()) return st;
    if (Status st = CheckEmail(c.kind, c.email); !st.ok()) return st;
    if (c.kind == "company") {
      if (!c.parent.empty()) return Status::Invalid("the company has no parent", "parent");
      for (const auto& [id, u] : s_.units()) {
        if (u.current().kind == "company" && !u.current().retired) {
          return Status::Invalid("there is already a company: " + id, "kind");
        }
      }
    } else if (Status st = CheckParentUnit(c.parent, c.id); !st.ok()) {
      return st;
    }
    Begin(c.id);
    EventDraft d = Draft(c.id);
    auto b = d.event().initUnitCreated();
    b.setKind(ToEnum<schema::UnitKind>(c.kind));
    b.setName(c.name);
    b.setParent(c.parent);
    b.setEmail(c.email);
    return Finish(std::move(d));
  }

  Result<Decision> operator()(const UpdateUnit& c) {
    const Unit* u = s_.unit(c.id);
    if (u == nullptr) return Status::NotFound("no unit " + c.id, "id");
    const UnitFields& f = u->current();
    if (f.retired) return Status::FailedPrecondition("unit " + c.id + " is retired", "id");
    Begin(c.id);
    if (c.name && *c.name != f.name) {
      if (Status st = CheckTitle(*c.name, "name"); !st.ok()) return st;
      EventDraft d = Draft(c.id);
      auto b = d.event().initUnitRenamed();
      b.setBefore(f.name);
      b.setAfter(*c.name);
      decision_.events.push_back(std::move(d));
    }
    if (c.parent && *c.parent != f.parent) {
      if (f.kind == "company") return Status::Invalid("the company has no parent", "parent");
      if (Status st = CheckParentUnit(*c.parent, c.id); !st.ok()) return st;
      EventDraft d = Draft(c.id);
      auto b = d.event().initUnitMoved();
      b.setBefore(f.parent);
      b.setAfter(*c.parent);
      decision_.events.push_back(std::move(d));
    }
    if (c.email && *c.email != f.email) {
      if (Status st = CheckEmail(f.kind, *c.email); !st.ok()) return st;
      EventDraft d = Draft(c.id);
      auto b = d.event().initUnitEmailChanged();
      b.setBefore(f.email);
      b.setAfter(*c.email);
      decision_.events.push_back(std::move(d));
    }
    return std::move(decision_);
  }

  Result<Decision> operator()(const RetireUnit& c) {
    const Unit* u = s_.unit(c.id);
    if (u == nullptr) return Status::NotFound("no unit " + c.id, "id");
    if (u->current().retired) return Status::FailedPrecondition("unit " + c.id + " is already retired", "id");
    for (const auto& [id, other] : s_.units()) {
      if (other.current().parent == c.id && !other.current().retired) {
        return Status::Invalid("unit " + c.id + " still has unit " + id + " under it", "id");
      }
    }
    Begin(c.id);
    EventDraft d = Draft(c.id);
    d.event().initUnitRetired();
    return Finish(std::move(d));
  }

  Result<Decision> operator()(const CreateCycle& c) {
    if (Status st = CheckNewId(s_, c.id, "id"); !st.ok()) return st;
    if (Status st = CheckTitle(c.name, "name"); !st.ok()) return st;
    if (Status st = CheckCycleShape(c.id, c.starts, c.ends, c.parent); !st.ok()) return st;
    Begin(c.id);
    EventDraft d = Draft(c.id);
    auto b = d.event().initCycleCreated();
    b.setName(c.name);
    b.setStarts(c.starts);
    b.setEnds(c.ends);
    b.setParent(c.parent);
    return Finish(std::move(d));
  }

  Result<Decision> operator()(const UpdateCycle& c) {
    const Cycle* cy = s_.cycle(c.id);
    if (cy == nullptr) return Status::NotFound("no cycle " + c.id, "id");
    const CycleFields& f = cy->current();
    if (f.closed) return Status::FailedPrecondition("cycle " + c.id + " is closed", "id");
    std::string name = c.name.value_or(f.name), starts = c.starts.value_or(f.starts),
                ends = c.ends.value_or(f.ends), parent = c.parent.value_or(f.parent);
    if (Status st = CheckTitle(name, "name"); !st.ok()) return st;
    if (Status st = CheckCycleShape(c.id, starts, ends, parent); !st.ok()) return st;
    // The cycles inside this one must stay inside it.
    for (const auto& [id, child] : s_.cycles()) {
      const CycleFields& cf = child.current();
      if (cf.parent != c.id) continue;
      if (cf.starts < starts) {
        return Status::Invalid("cycle " + id + " inside it starts on " + cf.starts, "starts");
      }
      if (cf.ends > ends) return Status::Invalid("cycle " + id + " inside it ends on " + cf.ends, "ends");
      Expect(id);
    }
    Begin(c.id);
    if (name == f.name && starts == f.starts && ends == f.ends && parent == f.parent) {
      return std::move(decision_);
    }
    EventDraft d = Draft(c.id);
    auto b = d.event().initCycleChanged();
    b.setNameBefore(f.name);
    b.setName(name);
    b.setStartsBefore(f.starts);
    b.setStarts(starts);
    b.setEndsBefore(f.ends);
    b.setEnds(ends);
    b.setParentBefore(f.parent);
    b.setParent(parent);
    return Finish(std::move(d));
  }

  Result<Decision> operator()(const CloseCycle& c) {
    const Cycle* cy = s_.cycle(c.id);
    if (cy == nullptr) return Status::NotFound("no cycle " + c.id, "id");
    if (cy->current().closed) return Status::FailedPrecondition("cycle " + c.id + " is already closed", "id");
    Begin(c.id);
    EventDraft d = Draft(c.id);
    d.event().initCycleClosed();
    return Finish(std::move(d));
  }

  Result<Decision> operator()(const ReopenCycle& c) {
    const Cycle* cy = s_.cycle(c.id);
    if (cy == nullptr) return Status::NotFound("no cycle " + c.id, "id");
    if (!cy->current().closed) return Status::FailedPrecondition("cycle " + c.id + " is open", "id");
    Begin(c.id);
    EventDraft d = Draft(c.id);
    d.event().initCycleReopened();
    return Finish(std::move(d));
  }

  Result<Decision> operator()(const CreateObjective& c) {
    if (Status st = CheckNewId(s_, c.id, "id"); !st.ok()) return st;
    if (Status st = CheckOpenCycle(c.cycle, "cycle", false); !st.ok()) return st;
    if (Status st = CheckOwner(c.owner, "owner"); !st.ok()) return st;
    if (Status st = CheckTitle(c.title, "title"); !st.ok()) return st;
    if (Status st = CheckText(c.description, "description"); !st.ok()) return st;
    if (Status st = CheckAlignment(c.id, c.parents); !st.ok()) return st;
    Begin(c.id);
    EventDraft d = Draft(c.id);
    auto b = d.event().initObjectiveCreated();
    b.setCycle(c.cycle);
    b.setOwner(c.owner);
    b.setTitle(c.title);
    b.setDescription(c.description);
    SetTexts(b.initParents(static_cast<unsigned>(c.parents.size())), c.parents);
    return Finish(std::move(d));
  }

  Result<Decision> operator()(const UpdateObjective& c) {
    const Objective* o = s_.objective(c.id);
    if (o == nullptr) return Status::NotFound("no objective " + c.id, "id");
    const ObjectiveFields& f = o->current();
    if (Status st = CheckOpenCycle(f.cycle, "cycle", true); !st.ok()) return st;
    Begin(c.id);
    if (c.title && *c.title != f.title) {
      if (Status st = CheckTitle(*c.title, "title"); !st.ok()) return st;
      TextChange(c.id, &schema::Event::Builder::initObjectiveRetitled, f.title, *c.title);
    }
    if (c.description && *c.description != f.description) {
      if (Status st = CheckText(*c.description, "description"); !st.ok()) return st;
      TextChange(c.id, &schema::Event::Builder::initObjectiveDescribed, f.description,
                 *c.description);
    }
    if (c.owner && *c.owner != f.owner) {
      if (Status st = CheckOwner(*c.owner, "owner"); !st.ok()) return st;
      TextChange(c.id, &schema::Event::Builder::initObjectiveOwnerChanged, f.owner, *c.owner);
    }
    if (c.parents && *c.parents != f.parents) {
      if (Status st = CheckAlignment(c.id, *c.parents); !st.ok()) return st;
      EventDraft d = Draft(c.id);
      auto b = d.event().initObjectiveAlignmentSet();
      SetTexts(b.initBefore(static_cast<unsigned>(f.parents.size())), f.parents);
      SetTexts(b.initAfter(static_cast<unsigned>(c.parents->size())), *c.parents);
      decision_.events.push_back(std::move(d));
    }
    if (c.archived && *c.archived != f.archived) {
      EventDraft d = Draft(c.id);
      if (*c.archived) {
        d.event().initObjectiveArchived();
      } else {
        d.event().initObjectiveRestored();
      }
      decision_.events.push_back(std::move(d));
    }
    return std::move(decision_);
  }

  Result<Decision> operator()(const ArchiveObjective& c) {
    const Objective* o = s_.objective(c.id);
    if (o == nullptr) return Status::NotFound("no objective " + c.id, "id");
    if (o->current().archived) {
      return Status::FailedPrecondition("objective " + c.id + " is already archived", "id");
    }
    return (*this)(UpdateObjective{c.id, {}, {}, {}, {}, true});
  }

  Result<Decision> operator()(const CreateKeyResult& c) {
    if (Status st = CheckNewId(s_, c.id, "id"); !st.ok()) return st;
    const Objective* o = s_.objective(c.objective);
    if (o == nullptr) return Status::Invalid("no objective " + c.objective, "objective");
    if (o->current().archived) {
      return Status::Invalid("objective " + c.objective + " is archived", "objective");
    }
    if (Status st = CheckOpenCycle(o->current().cycle, "objective", true); !st.ok()) return st;
    if (Status st = CheckTitle(c.title, "title"); !st.ok()) return st;
    if (!c.owner.empty()) {
      if (Status st = CheckOwner(c.owner, "owner"); !st.ok()) return st;
    }
    KeyResultFields f;
    f.metric = c.metric;
    f.start = c.start;
    f.target = c.target;
    f.weight = c.weight;
    if (Status st = CheckMeasure(f); !st.ok()) return st;
    if (Status st = CheckString(c.unit, "unit", kMaxUnitLabelChars, false, false); !st.ok()) return st;
    Begin(c.id);
    Expect(c.objective);
    EventDraft d = Draft(c.id);
    auto b = d.event().initKeyResultAdded();
    b.setObjective(c.objective);
    b.setTitle(c.title);
    b.setOwner(c.owner);
    b.setMetric(ToEnum<schema::Metric>(c.metric));
    b.setStart(c.start);
    b.setTarget(c.target);
    b.setUnit(c.unit);
    b.setWeight(c.weight);
    return Finish(std::move(d));
  }

  Result<Decision> operator()(const UpdateKeyResult& c) {
    const KeyResult* kr = s_.key_result(c.id);
    if (kr == nullptr) return Status::NotFound("no key result " + c.id, "id");
    const KeyResultFields& f = kr->current();
    if (f.removed) return Status::FailedPrecondition("key result " + c.id + " is removed", "id");
    if (Status st = CheckOpenCycleOfObjective(f.objective); !st.ok()) return st;
    KeyResultFields n = f;
    if (c.metric) n.metric = *c.metric;
    if (c.start) n.start = *c.start;
    if (c.target) n.target = *c.target;
    if (c.weight) n.weight = *c.weight;
    if (Status st = CheckMeasure(n); !st.ok()) return st;
    Begin(c.id);
    if (c.title && *c.title != f.title) {
      if (Status st = CheckTitle(*c.title, "title"); !st.ok()) return st;
      TextChange(c.id, &schema::Event::Builder::initKeyResultTitleChanged, f.title, *c.title);
    }
    if (c.owner && *c.owner != f.owner) {
      if (!c.owner->empty()) {
        if (Status st = CheckOwner(*c.owner, "owner"); !st.ok()) return st;
      }
      TextChange(c.id, &schema::Event::Builder::initKeyResultOwnerChanged, f.owner, *c.owner);
    }
    if (c.unit && *c.unit != f.unit) {
      if (Status st = CheckString(*c.unit, "unit", kMaxUnitLabelChars, false, false); !st.ok()) return st;
      TextChange(c.id, &schema::Event::Builder::initKeyResultUnitChanged, f.unit, *c.unit);
    }
    if (n.metric != f.metric) {
      EventDraft d = Draft(c.id);
      auto b = d.event().initKeyResultMetricChanged();
      b.setBefore(ToEnum<schema::Metric>(f.metric));
      b.setAfter(ToEnum<schema::Metric>(n.metric));
      decision_.events.push_back(std::move(d));
    }
    NumberChange(c.id, &schema::Event::Builder::initKeyResultStartChanged, f.start, n.start);
    NumberChange(c.id, &schema::Event::Builder::initKeyResultTargetChanged, f.target, n.target);
    NumberChange(c.id, &schema::Event::Builder::initKeyResultWeightChanged, f.weight, n.weight);
    return std::move(decision_);
  }

  Result<Decision> operator()(const RemoveKeyResult& c) {
    const KeyResult* kr = s_.key_result(c.id);
    if (kr == nullptr) return Status::NotFound("no key result " + c.id, "id");
    if (kr->current().removed) {
      return Status::FailedPrecondition("key result " + c.id + " is already removed", "id");
    }
    if (Status st = CheckOpenCycleOfObjective(kr->current().objective); !st.ok()) return st;
    Begin(c.id);
    EventDraft d = Draft(c.id);
    d.event().initKeyResultRemoved();
    return Finish(std::move(d));
  }

  Result<Decision> operator()(const RecordCheckIn& c) {
    const KeyResult* kr = s_.key_result(c.key_result);
    if (kr == nullptr) return Status::NotFound("no key result " + c.key_result, "key_result");
    const KeyResultFields& f = kr->current();
    if (f.removed) return Status::FailedPrecondition("key result " + c.key_result + " is removed", "key_result");
    if (Status st = CheckOpenCycleOfObjective(f.objective); !st.ok()) return st;
    std::string id = c.id;
    if (id.empty()) {
      id = AssignCheckInId();
    } else if (Status st = CheckNewId(s_, id, "id"); !st.ok()) {
      return st;
    }
    if (Status st = CheckValue(f, c.value, "value"); !st.ok()) return st;
    if (c.confidence) {
      if (!std::isfinite(*c.confidence) || *c.confidence < 0 || *c.confidence > 1) {
        return Status::Invalid("confidence must be between 0 and 1", "confidence");
      }
    }
    if (!c.status.empty() && !IsOneOf(c.status, {"on_track", "at_risk", "off_track"})) {
      return Status::Invalid("status must be on_track, at_risk or off_track", "status");
    }
    if (Status st = CheckText(c.note, "note"); !st.ok()) return st;
    int64_t measured = c.measured_at_us.value_or(ctx_.now_us);
    if (measured > ctx_.now_us) {
      return Status::Invalid("measured_at is in the future", "measured_at");
    }
    if (measured < 0) return Status::Invalid("measured_at is before 1970", "measured_at");
    // The check-in id — the client's own or a fresh one — is reserved by
    // the store atomically with the append (ids are unique across every
    // kind), so concurrent check-ins never wait for each other.
    BeginAppend(c.key_result);
    EventDraft d = Draft(c.key_result);
    auto b = d.event().initCheckInRecorded();
    b.setCheckIn(id);
    b.setValue(c.value);
    b.setHasConfidence(c.confidence.has_value());
    b.setConfidence(c.confidence.value_or(0));
    b.setStatus(ToEnum<schema::CheckInStatus>(c.status));
    b.setNote(c.note);
    b.setMeasuredAt(measured);
    return Finish(std::move(d));
  }

  Result<Decision> operator()(const CorrectCheckIn& c) {
    const KeyResult* kr = s_.key_result(c.key_result);
    if (kr == nullptr) return Status::NotFound("no key result " + c.key_result, "key_result");
    const KeyResultFields& f = kr->current();
    if (Status st = CheckOpenCycleOfObjective(f.objective); !st.ok()) return st;
    if (s_.KeyResultOfCheckIn(c.corrects) != kr) {
      return Status::Invalid("no check-in " + c.corrects + " on key result " + c.key_result,
                             "corrects");
    }
    if (Status st = CheckValue(f, c.value, "value"); !st.ok()) return st;
    if (Status st = CheckText(c.note, "note"); !st.ok()) return st;
    double before = 0;
    for (const CheckIn& ci : CheckInSeries(*kr, s_.seq())) {
      if (ci.id == c.corrects) before = ci.value;
    }
    // `before` is read from the current state: a correction racing another
    // must be decided again, or it records a value that was already replaced.
    Begin(c.key_result);
    EventDraft d = Draft(c.key_result);
    auto b = d.event().initCheckInCorrected();
    b.setCheckIn(c.corrects);
    b.setBefore(before);
    b.setValue(c.value);
    b.setNote(c.note);
    return Finish(std::move(d));
  }

  Result<Decision> operator()(const AddComment& c) {
    if (s_.objective(c.target) == nullptr && s_.key_result(c.target) == nullptr) {
      return Status::NotFound("no objective or key result " + c.target, "target");
    }
    if (Status st = CheckString(c.text, "text", kMaxTextChars, true, true); !st.ok()) return st;
    BeginAppend(c.target);
    EventDraft d = Draft(c.target);
    d.event().initCommentAdded().setText(c.text);
    return Finish(std::move(d));
  }

  Result<Decision> operator()(const ReviewObjective& c) {
    const Objective* o = s_.objective(c.objective);
    if (o == nullptr) return Status::NotFound("no objective " + c.objective, "objective");
    if (!std::isfinite(c.score) || c.score < 0 || c.score > 1) {
      return Status::Invalid("score must be between 0 and 1", "score");
    }
    if (!IsOneOf(c.outcome, {"achieved", "partially", "missed"})) {
      return Status::Invalid("outcome must be achieved, partially or missed", "outcome");
    }
    if (Status st = CheckText(c.reflection, "reflection"); !st.ok()) return st;
    if (Status st = CheckText(c.lessons, "lessons"); !st.ok()) return st;
    BeginAppend(c.objective);
    EventDraft d = Draft(c.objective);
    auto b = d.event().initObjectiveReviewed();
    b.setScore(c.score);
    b.setOutcome(ToEnum<schema::Outcome>(c.outcome));
    b.setReflection(c.reflection);
    b.setLessons(c.lessons);
    return Finish(std::move(d));
  }

 private:
  // A change of `entity` decided on its current fields: the append expects
  // the version those fields are from.
  void Begin(const std::string& entity) {
    decision_.entity = entity;
    Expect(entity);
  }
  // An addition to `entity` (check-in, correction, comment, review) that does
  // not depend on its other fields: concurrent additions must all land, so
  // none expects the entity's version (If-Match still can).
  void BeginAppend(const std::string& entity) { decision_.entity = entity; }
  void Expect(const std::string& id) {
    for (const auto& e : decision_.expected) {
      if (e.entity == id) return;
    }
    decision_.expected.push_back({id, s_.Version(id)});
  }
  EventDraft Draft(const std::string& entity) { return EventDraft(ctx_.actor, entity, ctx_.reason); }
  Decision Finish(EventDraft d) {
    decision_.events.push_back(std::move(d));
    return std::move(decision_);
  }

  template <typename Init>
  void TextChange(const std::string& id, Init init, const std::string& before,
                  const std::string& after) {
    EventDraft d = Draft(id);
    auto ev = d.event();
    auto b = (ev.*init)();
    b.setBefore(before);
    b.setAfter(after);
    decision_.events.push_back(std::move(d));
  }
  template <typename Init>
  void NumberChange(const std::string& id, Init init, double before, double after) {
    if (before == after) return;
    EventDraft d = Draft(id);
    auto ev = d.event();
    auto b = (ev.*init)();
    b.setBefore(before);
    b.setAfter(after);
    decision_.events.push_back(std::move(d));
  }

  Status CheckEmail(const std::string& kind, const std::string& email) {
    if (email.empty()) return Status::Ok();
    if (kind != "person") return Status::Invalid("only a person has an email", "email");
    if (Status st = CheckString(email, "email", kMaxTitleChars, false, false); !st.ok()) return st;
    auto at = email.find('@');
    if (at == std::string::npos || at == 0 || at + 1 >= email.size() ||
        email.find(' ') != std::string::npos) {
      return Status::Invalid("email is not an address", "email");
    }
    return Status::Ok();
  }

  // `parent` exists, is an active non-person unit, and is not `child` or
  // below it (units stay a tree).
  Status CheckParentUnit(const std::string& parent, const std::string& child) {
    if (parent.empty()) return Status::Invalid("parent is required below the company", "parent");
    const Unit* p = s_.unit(parent);
    if (p == nullptr) return Status::Invalid("no unit " + parent, "parent");
    if (p->current().retired) return Status::Invalid("unit " + parent + " is retired", "parent");
    if (p->current().kind == "person") return Status::Invalid("a person has no units under it", "parent");
    std::string at = parent;
    for (size_t depth = 0; !at.empty(); ++depth) {
      if (at == child) return Status::Invalid("unit " + child + " would be under itself", "parent");
      const Unit* u = s_.unit(at);
      if (u == nullptr || depth > s_.units().size()) break;
      Expect(at);
      at = u->current().parent;
    }
    return Status::Ok();
  }

  Status CheckOwner(const std::string& owner, const char* field) {
    const Unit* u = s_.unit(owner);
    if (u == nullptr) return Status::Invalid("no unit " + owner, field);
    if (u->current().retired) return Status::Invalid("unit " + owner + " is retired", field);
    return Status::Ok();
  }

  Status CheckCycleShape(const std::string& id, const std::string& starts, const std::string& ends,
                         const std::string& parent) {
    auto s = ParseDate(starts);
    if (!s) return Status::Invalid("starts must be a date YYYY-MM-DD", "starts");
    auto e = ParseDate(ends);
    if (!e) return Status::Invalid("ends must be a date YYYY-MM-DD", "ends");
    if (*e <= *s) return Status::Invalid("a cycle ends after it starts", "ends");
    if (parent.empty()) return Status::Ok();
    const Cycle* p = s_.cycle(parent);
    if (p == nullptr) return Status::Invalid("no cycle " + parent, "parent");
    const CycleFields& pf = p->current();
    if (starts < pf.starts || ends > pf.ends) {
      return Status::Invalid("cycle must lie within " + parent + " (" + pf.starts + " to " +
                                 pf.ends + ")",
                             "parent");
    }
    std::string at = parent;
    for (size_t depth = 0; !at.empty() && depth <= s_.cycles().size(); ++depth) {
      if (at == id) return Status::Invalid("cycle " + id + " would be inside itself", "parent");
      Expect(at);
      const Cycle* c = s_.cycle(at);
      at = c ? c->current().parent : "";
    }
    return Status::Ok();
  }

  // Objectives and key results of a closed cycle refuse changes (409).
  Status CheckOpenCycle(const std::string& cycle, const char* field, bool exists_already) {
    const Cycle* c = s_.cycle(cycle);
    if (c == nullptr) {
      if (exists_already) return Status::Corruption("objective in unknown cycle " + cycle);
      return Status::Invalid("no cycle " + cycle, field);
    }
    if (c->current().closed) {
      return Status::FailedPrecondition("cycle " + cycle + " is closed", field);
    }
    Expect(cycle);
    return Status::Ok();
  }

  Status CheckOpenCycleOfObjective(const std::string& objective) {
    const Objective* o = s_.objective(objective);
    if (o == nullptr) return Status::Corruption("key result of unknown objective " + objective);
    return CheckOpenCycle(o->current().cycle, "cycle", true);
  }

  // Parents exist, are few, unique, and alignment stays acyclic.
  Status CheckAlignment(const std::string& id, const std::vector<std::string>& parents) {
    if (parents.size() > kMaxParents) {
      return Status::Invalid("at most " + std::to_string(kMaxParents) + " parents", "parents");
    }
    std::set<std::string> unique(parents.begin(), parents.end());
    if (unique.size() != parents.size()) return Status::Invalid("a parent is listed twice", "parents");
    std::vector<std::string> stack;
    for (const auto& p : parents) {
      if (p == id) return Status::Invalid("an objective cannot align to itself", "parents");
      const Objective* parent = s_.objective(p);
      if (parent == nullptr) return Status::Invalid("no objective " + p, "parents");
      if (parent->current().archived) return Status::Invalid("objective " + p + " is archived", "parents");
      // Alignment is part of the cycle's plan: a closed cycle's objectives
      // take no new children until it is reopened.
      const Cycle* cycle = s_.cycle(parent->current().cycle);
      if (cycle != nullptr && cycle->current().closed) {
        return Status::Invalid("objective " + p + " is in closed cycle " + parent->current().cycle,
                               "parents");
      }
      if (cycle != nullptr) Expect(parent->current().cycle);
      stack.push_back(p);
    }
    std::set<std::string> seen;
    while (!stack.empty()) {
      std::string at = std::move(stack.back());
      stack.pop_back();
      if (!seen.insert(at).second) continue;
      if (at == id) return Status::Invalid("alignment would form a cycle through " + id, "parents");
      const Objective* o = s_.objective(at);
      if (o == nullptr) continue;
      Expect(at);
      for (const auto& next : o->current().parents) stack.push_back(next);
    }
    return Status::Ok();
  }

  Status CheckMeasure(const KeyResultFields& f) {
    if (!IsOneOf(f.metric, {"number", "percent", "currency", "boolean"})) {
      return Status::Invalid("metric must be number, percent, currency or boolean", "metric");
    }
    if (Status st = CheckBounded(f.start, "start"); !st.ok()) return st;
    if (Status st = CheckBounded(f.target, "target"); !st.ok()) return st;
    if (!std::isfinite(f.weight)) return Status::Invalid("weight must be a finite number", "weight");
    if (f.weight <= 0) return Status::Invalid("weight must be greater than 0", "weight");
    if (f.weight > kMaxWeight) return Status::Invalid("weight must be at most 1000", "weight");
    if (f.metric == "boolean") {
      if (f.start != 0 && f.start != 1) return Status::Invalid("a boolean starts at 0 or 1", "start");
      if (f.target != 0 && f.target != 1) return Status::Invalid("a boolean targets 0 or 1", "target");
    }
    if (f.target == f.start) return Status::Invalid("target must differ from start", "target");
    return Status::Ok();
  }

  Status CheckValue(const KeyResultFields& f, double v, const char* field) {
    if (Status st = CheckBounded(v, field); !st.ok()) return st;
    if (f.metric == "boolean" && v != 0 && v != 1) {
      return Status::Invalid(std::string(field) + " of a boolean key result is 0 or 1", field);
    }
    return Status::Ok();
  }

  // Random, so concurrent check-ins decided on the same state never pick
  // the same id (64 bits: a collision is refused by the id check anyway).
  std::string AssignCheckInId() {
    thread_local std::mt19937_64 rng(std::random_device{}());
    for (;;) {
      char buf[24];
      std::snprintf(buf, sizeof buf, "ci-%016llx", static_cast<unsigned long long>(rng()));
      if (!s_.KindOf(buf)) return buf;
    }
  }

  const Projection& s_;
  const CommandContext& ctx_;
  Decision decision_;
};

}  // namespace

Result<Decision> Decide(const Projection& state, const Command& command,
                        const CommandContext& context) {
  if (Status st = CheckText(context.reason, "reason"); !st.ok()) return st;
  Decider decider(state, context);
  return std::visit(decider, command);
}

std::vector<std::string> OwningUnits(const Projection& state, const Command& command,
                                     std::vector<std::string>* read) {
  auto note = [&](const std::string& id) {
    if (read != nullptr) read->push_back(id);
  };
  auto objective_owner = [&](const std::string& id) -> std::vector<std::string> {
    const Objective* o = state.objective(id);
    if (!o) return {};
    note(id);
    return {o->current().owner};
  };
  auto kr_owners = [&](const std::string& id) -> std::vector<std::string> {
    const KeyResult* kr = state.key_result(id);
    if (!kr) return {};
    note(id);
    if (!kr->current().owner.empty()) return {kr->current().owner};
    return objective_owner(kr->current().objective);
  };
  // A key result's owner after an update: cleared, it falls back to its
  // objective's, which must be in scope too.
  auto kr_owner_after = [&](const UpdateKeyResult& c) -> std::vector<std::string> {
    if (!c.owner) return {};
    if (!c.owner->empty()) return {*c.owner};
    const KeyResult* kr = state.key_result(c.id);
    return kr ? objective_owner(kr->current().objective) : std::vector<std::string>{};
  };
  auto join = [](std::vector<std::string> a, std::vector<std::string> b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  return std::visit(
      [&](const auto& c) -> std::vector<std::string> {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, CreateObjective>) {
          return {c.owner};
        } else if constexpr (std::is_same_v<T, UpdateObjective>) {
          // An objective always has an owner: an empty one is refused by
          // Decide, and is named here so it cannot pass as "no change".
          auto out = objective_owner(c.id);
          if (c.owner) out.push_back(*c.owner);
          return out;
        } else if constexpr (std::is_same_v<T, ArchiveObjective>) {
          return objective_owner(c.id);
        } else if constexpr (std::is_same_v<T, ReviewObjective>) {
          return objective_owner(c.objective);
        } else if constexpr (std::is_same_v<T, CreateKeyResult>) {
          auto out = objective_owner(c.objective);
          if (!c.owner.empty()) out.push_back(c.owner);
          return out;
        } else if constexpr (std::is_same_v<T, UpdateKeyResult>) {
          return join(kr_owners(c.id), kr_owner_after(c));
        } else if constexpr (std::is_same_v<T, RemoveKeyResult>) {
          return kr_owners(c.id);
        } else if constexpr (std::is_same_v<T, RecordCheckIn> || std::is_same_v<T, CorrectCheckIn>) {
          return kr_owners(c.key_result);
        } else if constexpr (std::is_same_v<T, AddComment>) {
          return state.objective(c.target) ? objective_owner(c.target) : kr_owners(c.target);
        } else {
          return {};
        }
      },
      command);
}

}  // namespace okr
