// Decider: the inside of Decide(), shared by the files that decide one
// family of commands each (decide_units.cc: units and cycles,
// decide_objectives.cc: objectives, comments and reviews,
// decide_key_results.cc: key results and check-ins). Private to
// okr_domain: nothing outside projections/domain includes it.
//
// Pure: reads the projection it is given, never the clock (the command's
// context carries "now"), takes no lock. One Decider decides one command
// on one thread.
#pragma once

#include <cassert>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eventstore/enum_names.h"
#include "eventstore/sealing.h"
#include "projections/domain/commands.h"

namespace okr::decide {

// --- Field rules: each answers kInvalid naming `field` ---

// Valid UTF-8 of at most `max_chars` code points, without control
// characters (tabs and line breaks allowed when `multiline`), not blank
// when `required`.
Status CheckString(std::string_view s, const char* field, size_t max_chars, bool multiline,
                   bool required);
// A name or title: one line, required, at most kMaxTitleChars.
Status CheckTitle(std::string_view s, const char* field);
// A description, note or reflection: multiline, optional, at most kMaxTextChars.
Status CheckText(std::string_view s, const char* field);
// A finite number within ±kMaxAbsValue.
Status CheckBounded(double v, const char* field);
// A check-in's confidence: a finite number from 0 to 1.
Status CheckConfidence(double v, const char* field);
// A valid id not yet used by any entity (kAlreadyExists when taken).
Status CheckNewId(const Projection& state, const std::string& id, const char* field);

bool IsOneOf(const std::string& v, std::initializer_list<const char*> options);

// The enumerant named `name` (already checked against the rules), or E's
// first one for an empty name, which is how unset optional enums are stored.
template <typename E>
E ToEnum(const std::string& name) {
  return EnumFromName<E>(name).value_or(static_cast<E>(0));
}

void SetTexts(capnp::List<capnp::Text>::Builder list, const std::vector<std::string>& v);

// `entity` when it exists, else kNotFound "no <noun> <id>" naming `field`.
template <typename E>
Result<const E*> Found(const E* entity, const char* noun, const std::string& id,
                       const char* field) {
  if (entity == nullptr) return Status::NotFound(std::string("no ") + noun + " " + id, field);
  return entity;
}

// kConflict "<noun> <id> <state>" naming `field` when `in_state`
// (a retired unit, a closed cycle, a removed key result…).
Status RefuseIf(bool in_state, const char* noun, const std::string& id, const char* state,
                const char* field);

// Builds one command's Decision; every check fails fast with the field.
// Borrows the state and the context, which must outlive it.
class Decider {
 public:
  Decider(const Projection& state, const CommandContext& ctx) : s_(state), ctx_(ctx) {}

  // decide_units.cc
  Result<Decision> operator()(const CreateUnit& c);
  Result<Decision> operator()(const UpdateUnit& c);
  Result<Decision> operator()(const RetireUnit& c);
  Result<Decision> operator()(const CreateCycle& c);
  Result<Decision> operator()(const UpdateCycle& c);
  Result<Decision> operator()(const CloseCycle& c);
  Result<Decision> operator()(const ReopenCycle& c);
  // decide_objectives.cc
  Result<Decision> operator()(const CreateObjective& c);
  Result<Decision> operator()(const UpdateObjective& c);
  Result<Decision> operator()(const ArchiveObjective& c);
  Result<Decision> operator()(const AddComment& c);
  Result<Decision> operator()(const ReviewObjective& c);
  // decide_key_results.cc
  Result<Decision> operator()(const CreateKeyResult& c);
  Result<Decision> operator()(const UpdateKeyResult& c);
  Result<Decision> operator()(const RemoveKeyResult& c);
  Result<Decision> operator()(const RecordCheckIn& c);
  Result<Decision> operator()(const CorrectCheckIn& c);

 private:
  // --- Building the decision (decide.cc) ---

  // A change of `entity` decided on its current fields: the append expects
  // the version those fields are from.
  void Begin(const std::string& entity);
  // An addition to `entity` (check-in, correction, comment, review) that does
  // not depend on its other fields: concurrent additions must all land, so
  // none expects the entity's version (If-Match still can).
  void BeginAppend(const std::string& entity);
  // Expects `id`'s current version (once per id).
  void Expect(const std::string& id);
  // Adds one event on `entity`, its body filled by `fill(event builder)`.
  // The event's reason is its author's personal text (Personal).
  template <typename Fill>
  void Add(const std::string& entity, Fill fill) {
    EventDraft d(ctx_.actor, entity);
    draft_ = &d;
    fill(d.event());
    d.SetPersonal(schema::PersonalField::REASON, ctx_.reason, ctx_.subject);
    draft_ = nullptr;
    decision_.events.push_back(std::move(d));
  }
  // Inside Add's `fill`, once the event's union member is chosen: a
  // personal text of the event, sealed under `subject` (none: stored as
  // written). Authored texts take the author's subject (Author()); a
  // person's name and email take the person's own.
  void Personal(schema::PersonalField field, const std::string& text, const std::string& subject) {
    assert(draft_ != nullptr && "only inside Add");
    draft_->SetPersonal(field, text, subject);
  }
  const std::string& Author() const { return ctx_.subject; }
  // The subject a unit's name and email are sealed under: the person's
  // own id, none for other kinds of unit.
  static std::string SubjectOf(const std::string& id, const std::string& kind) {
    return kind == "person" ? id : std::string();
  }
  // The decision so far, handed out once.
  Decision Done();
  // Begin(entity), one event, Done(): the shape of most commands.
  template <typename Fill>
  Decision One(const std::string& entity, Fill fill) {
    Begin(entity);
    Add(entity, fill);
    return Done();
  }
  // A field change event (before → after) built by `init`, a member of
  // schema::Event::Builder such as initObjectiveRetitled. TextChange always
  // adds one; NumberChange only when the value changes.
  template <typename Init>
  void TextChange(const std::string& id, Init init, const std::string& before,
                  const std::string& after) {
    Change(id, init, before, after);
  }
  template <typename Init>
  void NumberChange(const std::string& id, Init init, double before, double after) {
    if (before != after) Change(id, init, before, after);
  }
  // TextUpdate for a unit's name or email: `stored` is the text as the
  // projection keeps it (a sealed token, for a person), revealed to be
  // compared and written again as `before`; both sides are sealed under
  // `subject` (SubjectOf).
  template <typename Init, typename Check>
  Status PersonalUpdate(const std::string& id, Init init, const std::string& stored,
                        const std::optional<std::string>& after, const std::string& subject,
                        Check check) {
    Revealed before = Reveal(stored);
    if (!after || (before.readable() && *after == before.text)) return Status::Ok();
    OKR_RETURN_IF_ERROR(check(*after));
    Add(id, [&](schema::Event::Builder ev) {
      (ev.*init)();
      Personal(schema::PersonalField::BEFORE, before.text, subject);
      Personal(schema::PersonalField::AFTER, *after, subject);
    });
    return Status::Ok();
  }
  // An optional new text for a field: when it is set and differs from
  // `before`, checks it with `check(text)` and adds the change event.
  template <typename Init, typename Check>
  Status TextUpdate(const std::string& id, Init init, const std::string& before,
                    const std::optional<std::string>& after, Check check) {
    if (!after || *after == before) return Status::Ok();
    OKR_RETURN_IF_ERROR(check(*after));
    TextChange(id, init, before, *after);
    return Status::Ok();
  }
  template <typename Init, typename V>
  void Change(const std::string& id, Init init, const V& before, const V& after) {
    Add(id, [&](schema::Event::Builder ev) {
      auto b = (ev.*init)();
      b.setBefore(before);
      b.setAfter(after);
    });
  }

  // --- Rules that read the state (each file checks its own family) ---

  Status CheckEmail(const std::string& kind, const std::string& email);
  Status CheckParentUnit(const std::string& parent, const std::string& child);
  Status CheckNewCompany(const CreateUnit& c);
  Status CheckCycleShape(const std::string& id, const std::string& starts, const std::string& ends,
                         const std::string& parent);
  Status CheckCycleAncestry(const std::string& id, const std::string& parent);
  Status CheckChildCycles(const std::string& id, const std::string& starts,
                          const std::string& ends);
  Status CheckOwner(const std::string& owner, const char* field);
  Status CheckOpenCycle(const std::string& cycle, const char* field, bool exists_already);
  Status CheckOpenCycleOfObjective(const std::string& objective);
  Status CheckAlignmentParent(const std::string& id, const std::string& parent);
  Status CheckAlignment(const std::string& id, const std::vector<std::string>& parents);
  Status CheckMeasure(const KeyResultFields& f);
  Status CheckValue(const KeyResultFields& f, double v, const char* field);
  Status CheckCheckIn(const RecordCheckIn& c, const KeyResultFields& f);
  Result<std::string> CheckInId(const std::string& requested);
  std::string AssignCheckInId();
  // The text fields an update changes, in the order their events go.
  Status UpdateObjectiveTexts(const UpdateObjective& c, const ObjectiveFields& f);
  Status UpdateKeyResultTexts(const UpdateKeyResult& c, const KeyResultFields& f);

  const Projection& s_;
  const CommandContext& ctx_;
  Decision decision_;
  EventDraft* draft_ = nullptr;  // the event Add is filling
};

}  // namespace okr::decide
