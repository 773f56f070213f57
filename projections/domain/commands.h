// Commands: what a user asks okrd to change, before it is checked.
//
// decide(state, command) → events | error is the only write path: the HTTP
// API, the importer and the demo all build these and call Decide().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "eventstore/event_store.h"
#include "projections/domain/projection.h"

namespace okr {

// Limits on what one command may carry (SPEC §1; each is tested).
inline constexpr size_t kMaxIdChars = 64;
inline constexpr size_t kMaxTitleChars = 200;     // names and titles
inline constexpr size_t kMaxTextChars = 10'000;   // descriptions, notes, comments, reflections
inline constexpr size_t kMaxParents = 20;         // objectives one objective aligns to
inline constexpr size_t kMaxUnitLabelChars = 32;  // a key result's unit label
// Numbers stay finite (SPEC §6): values, starts and targets lie within
// ±kMaxAbsValue (a quadrillion: any headcount, percentage or currency
// amount in cents), weights in (0, kMaxWeight]. Every difference, ratio
// and weighted sum okrd computes from them is then a finite double.
inline constexpr double kMaxAbsValue = 1e15;
inline constexpr double kMaxWeight = 1000;

struct CreateUnit {
  std::string id, kind, name, parent, email;
};
struct UpdateUnit {
  std::string id;
  std::optional<std::string> name, parent, email;
};
struct RetireUnit {
  std::string id;
};

struct CreateCycle {
  std::string id, name, starts, ends, parent;
};
struct UpdateCycle {
  std::string id;
  std::optional<std::string> name, starts, ends, parent;
};
struct CloseCycle {
  std::string id;
};
struct ReopenCycle {
  std::string id;
};

struct CreateObjective {
  std::string id, cycle, owner, title, description;
  std::vector<std::string> parents;
};
struct UpdateObjective {
  std::string id;
  std::optional<std::string> title, description, owner;
  std::optional<std::vector<std::string>> parents;
  std::optional<bool> archived;  // false restores an archived objective
};
struct ArchiveObjective {
  std::string id;
};

struct CreateKeyResult {
  std::string id, objective, title;
  std::string owner;  // empty: the objective's owner
  std::string metric = "number";
  double start = 0;
  double target = 0;
  std::string unit;
  double weight = 1;
};
struct UpdateKeyResult {
  std::string id;
  std::optional<std::string> title, owner, metric, unit;
  std::optional<double> start, target, weight;
};
struct RemoveKeyResult {
  std::string id;
};

struct RecordCheckIn {
  std::string key_result;
  std::string id;  // empty: assigned by the server
  double value = 0;
  std::optional<double> confidence;
  std::string status;  // empty, on_track, at_risk, off_track
  std::string note;
  std::optional<int64_t> measured_at_us;  // default: now
};
struct CorrectCheckIn {
  std::string key_result;
  std::string corrects;  // check-in id
  double value = 0;
  std::string note;
};

struct AddComment {
  std::string target;  // objective or key result
  std::string text;
};

struct ReviewObjective {
  std::string objective;
  double score = 0;
  std::string outcome;
  std::string reflection, lessons;
};

using Command = std::variant<CreateUnit, UpdateUnit, RetireUnit, CreateCycle, UpdateCycle,
                             CloseCycle, ReopenCycle, CreateObjective, UpdateObjective,
                             ArchiveObjective, CreateKeyResult, UpdateKeyResult, RemoveKeyResult,
                             RecordCheckIn, CorrectCheckIn, AddComment, ReviewObjective>;

struct CommandContext {
  std::string actor;  // the authenticated principal
  // The person unit the principal is (its tokens-file entry's subject):
  // the free texts it writes are sealed under that person's key (SPEC §10).
  // Empty: none, and its texts are stored as written.
  std::string subject;
  std::string reason;
  int64_t now_us = 0;  // the clock the command is judged by (measured_at ≤ now)
};

// What a command becomes: the events to append and the versions they were
// decided against (so a concurrent change makes the append conflict, and
// the command is decided again on the newer state).
struct Decision {
  std::string entity;              // the entity the command is about (the answer's subject)
  std::vector<EventDraft> events;  // empty: nothing to change
  std::vector<ExpectedVersion> expected;
};

// A write's reason: multiline text of at most kMaxTextChars (kInvalid naming "reason").
Status CheckReason(std::string_view reason);

// Checks `command` against `state` (the current projection) and turns it
// into events. Errors name the field: kInvalid (422: a rule broken),
// kNotFound (404: the subject does not exist), kAlreadyExists (409: id
// taken), kConflict (409: closed cycle).
Result<Decision> Decide(const Projection& state, const Command& command,
                        const CommandContext& context);

// The units that own the command's subject before and after it (a key
// result's own owner, else its objective's — also when an update clears
// the owner): an editor may run the command only when every one of them is
// in its scope. Empty for units and cycles, which only admins change.
// `read` (optional) gets the objectives and key results whose owner was
// read, so the write can expect their versions.
std::vector<std::string> OwningUnits(const Projection& state, const Command& command,
                                     std::vector<std::string>* read = nullptr);

// True when `id` is 1–64 characters of [a-z0-9._-].
bool ValidId(std::string_view id);
// What ValidId accepts, for refusals.
inline constexpr char kIdRule[] = "1-64 characters of a-z, 0-9, '.', '_', '-'";

}  // namespace okr
