// Diff: what changed between two points of the log, as rows.
//
// Pure functions of a Projection the caller keeps unchanged while they
// run; rows copy what they show, so rendering needs no lock.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "projections/domain/projection.h"

namespace okr {

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
  uint64_t seq = 0;  // the review's event, where its sealed words are
  bool operator==(const DiffReview&) const = default;
};
using DiffValue = std::variant<std::string, double, std::vector<std::string>, DiffReview>;

// One row of a diff, copied out of the projection.
struct DiffRow {
  enum class List { kCreated, kChanged, kArchived, kCheckIns, kCorrections, kComments };
  List list = List::kCreated;
  Meta meta;           // the event's seq, actor, recorded_at, reason
  std::string entity;  // unit, cycle, objective or key result
  std::string label;  // created/archived: kind; changed: field; check-ins, corrections: check-in id
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

}  // namespace okr
