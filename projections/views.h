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
#include <vector>

#include "projections/projection.h"

namespace okr {

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

  // {"nodes":[{"unit","objectives","children","progress"}]} for `cycle`,
  // from `root` (default: every top-level unit). kNotFound for an unknown
  // cycle or root.
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

// What changed between two seqs (from, to]: created, changed field by field
// (with seq, actor, recorded_at, reason), archived, and check-ins recorded.
// `cycle` (optional) keeps the cycle itself and its objectives and key results.
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
