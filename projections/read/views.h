// Read models: the projection as the API shows it, as of any seq.
//
// A View answers every state read for one point of the log (`as_of`) and,
// for key-result values, one valid time (`at`). It memoises progress, so
// one View serves one request; it borrows the Projection, which must not
// change while the View lives.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "projections/domain/projection.h"

namespace okr {

// --- Plain rows: what an answer needs, copied out of the projection ---
//
// A row borrows nothing, so a handler fills rows under the projection's
// lock, releases it, and renders JSON (the Render* functions) without it.

struct UnitRow {
  std::string id;
  UnitFields fields;
  uint64_t version = 0;
};
struct CycleRow {
  std::string id;
  CycleFields fields;
  uint64_t version = 0;
};
struct KeyResultRow {
  std::string id;
  KeyResultFields fields;
  std::string owner;  // effective: the objective's when the key result has none
  double current = 0;
  double progress = 0;
  size_t check_in_count = 0;
  std::optional<CheckIn> last_check_in;  // value as corrected
  uint64_t version = 0;
};
struct ObjectiveRow {
  std::string id;
  ObjectiveFields fields;
  double progress = 0;
  std::vector<KeyResultRow> key_results;  // active ones, creation order
  uint64_t version = 0;
};
struct CascadeNode {
  UnitRow unit;
  std::vector<ObjectiveRow> objectives;
  std::vector<CascadeNode> children;
  size_t objective_count = 0;     // in the whole subtree
  std::optional<double> progress; // mean over the subtree; none without objectives
};

nlohmann::json RenderUnit(const UnitRow& row);
nlohmann::json RenderCycle(const CycleRow& row);
nlohmann::json RenderCheckIn(const CheckIn& check_in);
nlohmann::json RenderKeyResult(const KeyResultRow& row);
nlohmann::json RenderObjective(const ObjectiveRow& row);
// {"nodes":[…]} as GET /v1/cascade answers.
nlohmann::json RenderCascade(const std::vector<CascadeNode>& nodes);

struct ObjectiveFilter {
  std::string cycle;   // empty: every cycle
  std::string owner;   // empty: every owner
  bool include_archived = false;
};

class View {
 public:
  // `now_us` is the clock lint judges staleness by.
  View(const Projection& projection, uint64_t as_of, int64_t at_us, int64_t now_us);

  uint64_t as_of() const { return as_of_; }
  const Projection& projection() const { return p_; }

  // Entities as they stood at as_of; nullptr when they did not exist yet.
  const UnitFields* UnitAt(const std::string& id) const;
  const CycleFields* CycleAt(const std::string& id) const;
  const ObjectiveFields* ObjectiveAt(const std::string& id) const;
  const KeyResultFields* KeyResultAt(const std::string& id) const;

  // Rows of entities that exist at as_of (FieldsAt non-null).
  UnitRow UnitRowOf(const Unit& unit) const;
  CycleRow CycleRowOf(const Cycle& cycle) const;
  ObjectiveRow ObjectiveRowOf(const Objective& objective);
  KeyResultRow KeyResultRowOf(const KeyResult& kr);

  // The same, rendered (Render*(…RowOf(…))).
  nlohmann::json UnitJson(const Unit& unit) const;
  nlohmann::json CycleJson(const Cycle& cycle) const;
  nlohmann::json ObjectiveJson(const Objective& objective);
  nlohmann::json KeyResultJson(const KeyResult& kr);
  nlohmann::json CheckInJson(const CheckIn& check_in) const;

  // Objectives matching `filter`, by id.
  std::vector<const Objective*> Objectives(const ObjectiveFilter& filter) const;
  // Active key results of an objective, in creation order.
  std::vector<const KeyResult*> KeyResultsOf(const Objective& objective) const;

  double KeyResultProgress(const KeyResult& kr);
  double ObjectiveProgress(const Objective& objective);
  // The key result's owner, or its objective's when it has none.
  std::string EffectiveOwner(const KeyResultFields& f) const;

  // The cascade's nodes for `cycle`, from `root` (default: every top-level
  // unit). kNotFound for an unknown cycle or root.
  Result<std::vector<CascadeNode>> CascadeNodes(const std::string& cycle, const std::string& root);
  // {"nodes":[{"unit","objectives","children","progress"}]}: RenderCascade
  // of CascadeNodes.
  Result<nlohmann::json> Cascade(const std::string& cycle, const std::string& root);

  // {"findings":[{rule, entity, message}]} for `cycle` (empty: all cycles).
  nlohmann::json Lint(const std::string& cycle);

 private:
  const std::vector<const Objective*>& AlignedChildren(const std::string& objective);
  double ObjectiveProgressGuarded(const Objective& objective, int depth);

  const Projection& p_;
  uint64_t as_of_;
  int64_t at_us_;
  int64_t now_us_;
  std::unordered_map<std::string, double> kr_progress_;
  std::unordered_map<std::string, double> objective_progress_;
  std::optional<std::unordered_map<std::string, std::vector<const Objective*>>> children_;
};

// The µs instant a cycle's date range begins, and the first instant after
// its last day (cycles include their end date).
int64_t CycleStartUs(const CycleFields& cycle);
int64_t CycleEndUs(const CycleFields& cycle);

// --- Diff ---
//
// A diff is made of rows, each from one event: an entity created, a field
// changed (before and after), an entity archived, a check-in recorded, a
// check-in corrected, a comment added. An event gives zero or more rows in
// a fixed order, so (seq, rows of that event already shown) is a position
// in any diff: /v1/diff pages by it, reading events from the log and
// asking the projection only for the rows of those events (O(page), not
// O(log)).

// A review as a diff row shows it (null when there is none).
struct DiffReview {
  bool present = false;
  double score = 0;
  std::string outcome, reflection, lessons;
  bool operator==(const DiffReview&) const = default;
};
using DiffValue = std::variant<std::string, double, std::vector<std::string>, DiffReview>;

// One row of a diff, copied out of the projection.
struct DiffRow {
  enum class List { kCreated, kChanged, kArchived, kCheckIns, kCorrections, kComments };
  List list = List::kCreated;
  Meta meta;           // the event's seq, actor, recorded_at, reason
  std::string entity;  // unit, cycle, objective or key result
  std::string label;   // created/archived: kind; changed: field; check-ins, corrections: check-in id
  DiffValue before, after;  // changed: the field; corrections: the values; check-ins: after = value
  int64_t measured_at_us = 0;  // check-ins
  std::string text;            // comments
};

// Appends the rows the event at `seq` on `entity` gives, in their fixed
// order; none when `cycle` is non-empty and the entity is not the cycle or
// one of its objectives or key results (units belong to no cycle). Costs
// O(log n) in the entity's own history.
void AppendDiffRows(const Projection& projection, uint64_t seq, const std::string& entity,
                    const std::string& cycle, std::vector<DiffRow>* rows);

// {from, to, created, changed, archived, check_ins, corrections, comments}
// of `rows` (in seq order).
nlohmann::json RenderDiff(uint64_t from, uint64_t to, const std::vector<DiffRow>& rows);

// The whole diff (from, to] at once, rendered: every entity's history is
// walked (O(log)). For tests and offline tools; the server pages instead.
nlohmann::json Diff(const Projection& projection, uint64_t from, uint64_t to,
                    const std::string& cycle);

// The end-of-cycle review as of `as_of`: per objective computed score
// (progress at the cycle's end), reviewed score and outcome, key results
// with original and final targets, moved goalposts, check-in counts.
Result<nlohmann::json> Review(const Projection& projection, const std::string& cycle,
                              uint64_t as_of);
// The same review rendered for people (Markdown) and spreadsheets (CSV).
std::string ReviewMarkdown(const nlohmann::json& review);
std::string ReviewCsv(const nlohmann::json& review);

}  // namespace okr
