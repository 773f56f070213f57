// Review: the end-of-cycle review of a cycle's objectives, as JSON, and
// its rendering for people (Markdown) and spreadsheets (CSV) — each
// written from the projection as it is walked, never held as a document.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "projections/domain/projection.h"
#include "projections/read/json_out.h"
#include "projections/read/view.h"

namespace okr {

enum class ReviewFormat { kJson, kMarkdown, kCsv };

// The end-of-cycle review as of `as_of` (GET /v1/cycles/{id}/review): per
// objective computed score (progress at the cycle's end), reviewed score
// and outcome, key results with original and final targets, moved
// goalposts, check-in counts. Which objectives it shows and the totals its
// heading needs are found once (Make); each Write then walks them again
// from the projection, keeping no row, so a whole organisation's review
// costs what one objective's does.
//
// Borrows the Projection, which must not change between Make and the end
// of a Write but where `pause` allows it (see Write).
class ReviewPlan {
 public:
  // kNotFound for a cycle that did not exist at `as_of`.
  static Result<ReviewPlan> Make(const Projection& p, const std::string& cycle, uint64_t as_of);

  // How many objectives the review shows, active and archived.
  size_t objectives() const { return objectives_.size(); }

  // Writes the review as JSON ({"achieved", "archived", "as_of_seq"?,
  // "check_ins", "checkpoint"?, "cycle", "missed", "moved_goalposts",
  // "objectives", "partially", "unreviewed"}); "checkpoint" is
  // `checkpoint` when not null (the log's signed checkpoint at
  // as_of_seq, which the caller makes). Calls `pause` (when given) after each
  // objective written: the caller may let go of the projection there and
  // take it back, provided entities keep their addresses meanwhile (the
  // plan holds pointers to them, and reads their fields again each time).
  void WriteJson(JsonOut& out, std::optional<uint64_t> as_of_seq,
                 const nlohmann::json* checkpoint = nullptr,
                 const std::function<void()>& pause = nullptr);
  // Appends the review as Markdown or CSV (not kJson) to *text, calling
  // `pause` as WriteJson does; the caller may take the text meanwhile.
  // A `checkpoint` that is an object ({"size", "root", "note"}, as in the
  // JSON) ends the text: a Markdown section with the note verbatim in a
  // fenced block, or CSV rows marked "#checkpoint" in the first column.
  void WriteText(ReviewFormat format, std::string* text, const nlohmann::json* checkpoint = nullptr,
                 const std::function<void()>& pause = nullptr);

 private:
  ReviewPlan(const Projection& p, const Cycle& cycle, uint64_t as_of, int64_t start_us,
             int64_t end_us);

  // What the review shows of one key result.
  struct KeyResultLine {
    const KeyResultFields& fields;  // as of as_of
    double original_target;         // in force when the cycle started
    double final_value;             // measured before the cycle's end
    double progress;
    size_t check_ins;     // measured before the cycle's end
    const CheckIn* last;  // the latest of them by measured_at, or none
  };
  // A target or start moved after the cycle started.
  struct Goalpost {
    const KeyResult& kr;
    const Meta& meta;  // of the change
    bool target;       // else the start
    double before;
    double after;
  };
  size_t CheckInsOf(const KeyResult& kr, const CheckIn** last = nullptr) const;
  KeyResultLine LineOf(const KeyResult& kr);
  // Calls `fn` with each goalpost moved among `o`'s key results — also of
  // key results removed since and of objectives archived since.
  void ForEachGoalpost(const Objective& o, const std::function<void(const Goalpost&)>& fn) const;
  void WriteKeyResult(JsonOut& out, const KeyResult& kr);
  void WriteObjective(JsonOut& out, const Objective& o);
  void WriteMarkdown(std::string* text, const std::function<void()>& pause);
  void WriteCsv(std::string* text, const std::function<void()>& pause);

  const Projection& p_;
  const Cycle& cycle_;
  uint64_t as_of_;
  int64_t start_us_;       // the cycle's first instant
  int64_t end_us_;         // the first instant after the cycle
  uint64_t seq_at_start_;  // the last seq recorded before the cycle started
  // Scores at the cycle's end: values measured before it ends, as known at as_of.
  View at_end_;
  // The cycle's objectives at as_of, by id: the active ones are reviewed,
  // the archived ones listed apart; the goalposts of both are listed.
  std::vector<const Objective*> objectives_;
  size_t check_ins_ = 0;  // of the active objectives' key results
  // Active objectives per outcome: achieved, partially, missed, unreviewed.
  std::array<size_t, 4> by_outcome_ = {};
};

// The review's JSON as a document (ReviewPlan::WriteJson, without as_of_seq).
Result<nlohmann::json> Review(const Projection& projection, const std::string& cycle,
                              uint64_t as_of);
// The review's Markdown or CSV text (ReviewPlan::WriteText, without a checkpoint).
Result<std::string> ReviewText(const Projection& projection, const std::string& cycle,
                               uint64_t as_of, ReviewFormat format);

}  // namespace okr
