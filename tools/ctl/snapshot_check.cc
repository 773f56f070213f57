#include "tools/ctl/snapshot_check.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "projections/service/projector.h"
#include "projections/service/snapshot.h"
#include "tools/ctl/csv.h"

namespace okr::ctl {

namespace {

// --- Showing values in a difference ---

std::string Show(std::string_view s) {
  std::string cut(s.substr(0, kMaxShownChars));
  if (s.size() > kMaxShownChars) cut += "...";
  // Quoted and escaped; bytes that are not UTF-8 (a damaged snapshot) shown as U+FFFD.
  return nlohmann::json(cut).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
std::string Show(const std::string& s) { return Show(std::string_view(s)); }
std::string Show(double v) { return FormatNumber(v); }
std::string Show(bool v) { return v ? "true" : "false"; }
std::string Show(int64_t v) { return std::to_string(v); }
std::string Show(uint64_t v) { return std::to_string(v); }
template <typename T>
std::string Show(const std::vector<T>& list) {
  std::string out = "[";
  for (size_t i = 0; i < list.size(); ++i) {
    if (out.size() > kMaxShownChars) return out + ",...]";
    out += (i == 0 ? "" : ",") + Show(list[i]);
  }
  return out + "]";
}

// Records the first field whose two values differ.
class Differ {
 public:
  template <typename T>
  void Field(const std::string& name, const T& snapshot, const T& log) {
    if (found() || snapshot == log) return;
    text_ = name + ": snapshot " + Show(snapshot) + ", log " + Show(log);
  }
  bool found() const { return !text_.empty(); }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// --- The fields of each kind, in declaration order ---

void Compare(Differ* d, const Meta& a, const Meta& b, const std::string& prefix = "") {
  d->Field(prefix + "seq", a.seq, b.seq);
  d->Field(prefix + "recorded_at", a.recorded_at_us, b.recorded_at_us);
  d->Field(prefix + "actor", a.actor, b.actor);
  d->Field(prefix + "reason", a.reason, b.reason);
  d->Field(prefix + "type", std::string(a.type), std::string(b.type));
}
void Compare(Differ* d, const UnitFields& a, const UnitFields& b) {
  d->Field("kind", a.kind, b.kind);
  d->Field("name", a.name, b.name);
  d->Field("parent", a.parent, b.parent);
  d->Field("email", a.email, b.email);
  d->Field("retired", a.retired, b.retired);
}
void Compare(Differ* d, const CycleFields& a, const CycleFields& b) {
  d->Field("name", a.name, b.name);
  d->Field("starts", a.starts, b.starts);
  d->Field("ends", a.ends, b.ends);
  d->Field("parent", a.parent, b.parent);
  d->Field("closed", a.closed, b.closed);
}
void Compare(Differ* d, const std::optional<ReviewFields>& a,
             const std::optional<ReviewFields>& b) {
  d->Field("reviewed", a.has_value(), b.has_value());
  if (!a || !b) return;
  d->Field("review.score", a->score, b->score);
  d->Field("review.outcome", a->outcome, b->outcome);
  d->Field("review.reflection", a->reflection, b->reflection);
  d->Field("review.lessons", a->lessons, b->lessons);
  Compare(d, a->meta, b->meta, "review.");
}
void Compare(Differ* d, const ObjectiveFields& a, const ObjectiveFields& b) {
  d->Field("cycle", a.cycle, b.cycle);
  d->Field("owner", a.owner, b.owner);
  d->Field("title", a.title, b.title);
  d->Field("description", a.description, b.description);
  d->Field("parents", a.parents, b.parents);
  d->Field("archived", a.archived, b.archived);
  Compare(d, a.review, b.review);
}
void Compare(Differ* d, const KeyResultFields& a, const KeyResultFields& b) {
  d->Field("objective", a.objective, b.objective);
  d->Field("title", a.title, b.title);
  d->Field("owner", a.owner, b.owner);
  d->Field("metric", a.metric, b.metric);
  d->Field("start", a.start, b.start);
  d->Field("target", a.target, b.target);
  d->Field("unit", a.unit, b.unit);
  d->Field("weight", a.weight, b.weight);
  d->Field("removed", a.removed, b.removed);
}
void Compare(Differ* d, const CheckIn& a, const CheckIn& b) {
  d->Field("id", a.id, b.id);
  Compare(d, a.meta, b.meta);
  d->Field("value", a.value, b.value);
  d->Field("has_confidence", a.has_confidence, b.has_confidence);
  d->Field("confidence", a.confidence, b.confidence);
  d->Field("status", a.status, b.status);
  d->Field("note", a.note, b.note);
  d->Field("measured_at", a.measured_at_us, b.measured_at_us);
}
void Compare(Differ* d, const Correction& a, const Correction& b) {
  Compare(d, a.meta, b.meta);
  d->Field("check_in", a.check_in, b.check_in);
  d->Field("before", a.before, b.before);
  d->Field("value", a.value, b.value);
  d->Field("note", a.note, b.note);
}
void Compare(Differ* d, const Comment& a, const Comment& b) {
  Compare(d, a.meta, b.meta);
  d->Field("text", a.text, b.text);
}

// "what N: field: ..." for the first differing element of two lists.
template <typename T>
std::string DiffList(const std::string& what, const std::vector<T>& a, const std::vector<T>& b) {
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    Differ d;
    Compare(&d, a[i], b[i]);
    if (d.found()) return what + " " + std::to_string(i + 1) + ", " + d.text();
  }
  Differ d;
  d.Field(what + "s (count)", static_cast<uint64_t>(a.size()), static_cast<uint64_t>(b.size()));
  return d.text();
}

// Revisions, then the seqs of the entity's events.
template <typename Fields>
std::string DiffLife(const Entity<Fields>& a, const Entity<Fields>& b) {
  for (size_t i = 0; i < std::min(a.revisions.size(), b.revisions.size()); ++i) {
    Differ d;
    Compare(&d, a.revisions[i].fields, b.revisions[i].fields);
    Compare(&d, a.revisions[i].meta, b.revisions[i].meta);
    if (d.found()) {
      return "revision " + std::to_string(i + 1) + " (seq " +
             std::to_string(b.revisions[i].meta.seq) + "), " + d.text();
    }
  }
  Differ d;
  d.Field("revisions (count)", static_cast<uint64_t>(a.revisions.size()),
          static_cast<uint64_t>(b.revisions.size()));
  d.Field("event seqs", a.event_seqs, b.event_seqs);
  return d.text();
}

std::string DiffEntity(const Unit& a, const Unit& b) { return DiffLife(a, b); }
std::string DiffEntity(const Cycle& a, const Cycle& b) { return DiffLife(a, b); }
std::string DiffEntity(const Objective& a, const Objective& b) {
  std::string d = DiffLife(a, b);
  if (d.empty()) {
    Differ kr;
    kr.Field("key results", a.key_results, b.key_results);
    d = kr.text();
  }
  return d.empty() ? DiffList("comment", a.comments, b.comments) : d;
}
std::string DiffEntity(const KeyResult& a, const KeyResult& b) {
  std::string d = DiffLife(a, b);
  if (d.empty()) d = DiffList("check-in", a.check_ins, b.check_ins);
  if (d.empty()) d = DiffList("correction", a.corrections, b.corrections);
  if (d.empty()) d = DiffList("comment", a.comments, b.comments);
  return d.empty() && a.latest_prefix != b.latest_prefix ? "the index of latest check-ins" : d;
}

// The first entity of one kind that differs, by id.
template <typename E>
std::string DiffKind(const std::string& kind, const std::map<std::string, E>& a,
                     const std::map<std::string, E>& b) {
  auto ia = a.begin();
  auto ib = b.begin();
  while (ia != a.end() || ib != b.end()) {
    if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
      return kind + " " + ia->first + ": in the snapshot, not in the log";
    }
    if (ia == a.end() || ib->first < ia->first) {
      return kind + " " + ib->first + ": in the log, missing from the snapshot";
    }
    if (!(ia->second == ib->second)) {
      std::string what = DiffEntity(ia->second, ib->second);
      return kind + " " + ia->first + ": " + (what.empty() ? "differs" : what);
    }
    ++ia;
    ++ib;
  }
  return "";
}

// The stored snapshots' seqs, oldest first, newest first found: each
// lookup asks for the newest one before the last found.
Result<std::vector<uint64_t>> SnapshotSeqs(const EventStore& store) {
  std::vector<uint64_t> seqs;
  for (uint64_t at = UINT64_MAX;;) {
    auto stored = store.SnapshotAtOrBefore(at);
    if (!stored.ok()) {
      if (stored.status().code() == Status::Code::kNotFound) break;
      return stored.status();
    }
    seqs.push_back(stored->seq);
    if (stored->seq == 0) break;
    at = stored->seq - 1;
  }
  std::reverse(seqs.begin(), seqs.end());
  return seqs;
}

// What is wrong with the snapshot stored at `seq` (empty: nothing).
Result<std::string> CheckOne(const EventStore& store, uint64_t seq) {
  const uint64_t head = store.head().seq;
  if (seq == 0 || seq > head) {
    return "it lies outside the log (seqs 1 to " + std::to_string(head) + ")";
  }
  auto stored = store.SnapshotAtOrBefore(seq);
  if (!stored.ok()) return stored.status();
  Hash hash{};
  auto snapshot = SnapshotCodec::Decode(stored->bytes, &hash);
  if (!snapshot.ok()) return "it does not decode: " + snapshot.status().message();
  if (snapshot->seq() != seq) return "it says it reflects seq " + std::to_string(snapshot->seq());
  auto event = store.Read(seq - 1, 1);
  if (!event.ok()) return event.status();
  if (event->size() != 1) return Status::Corruption("no event at seq " + std::to_string(seq));
  if (Sha256(event->front().bytes) != hash) {
    return std::string(
        "its head hash is not the hash of the event at its seq (another log's snapshot)");
  }
  auto replay = Projector::Rebuild(store, seq, /*use_snapshot=*/false);
  if (!replay.ok()) return replay.status();
  return FirstDifference(*snapshot, *replay);
}

}  // namespace

std::string FirstDifference(const Projection& snapshot, const Projection& replay) {
  Differ d;
  d.Field("seq", snapshot.seq(), replay.seq());
  d.Field("recorded_at", snapshot.recorded_at_us(), replay.recorded_at_us());
  if (d.found()) return d.text();
  for (const std::string& found :
       {DiffKind("unit", snapshot.units(), replay.units()),
        DiffKind("cycle", snapshot.cycles(), replay.cycles()),
        DiffKind("objective", snapshot.objectives(), replay.objectives()),
        DiffKind("key result", snapshot.key_results(), replay.key_results())}) {
    if (!found.empty()) return found;
  }
  return snapshot == replay ? "" : "the time index (which seq was recorded when)";
}

Result<SnapshotCheckReport> CheckSnapshots(const EventStore& store,
                                           const std::function<void(size_t, size_t)>& progress) {
  auto seqs = SnapshotSeqs(store);
  if (!seqs.ok()) return seqs.status();
  SnapshotCheckReport report;
  report.seqs = std::move(seqs.value());
  for (uint64_t seq : report.seqs) {
    if (progress) progress(report.checked, report.seqs.size());
    auto problem = CheckOne(store, seq);
    if (!problem.ok()) return problem.status();
    if (!problem->empty()) {
      report.ok = false;
      report.first_bad_seq = seq;
      report.problem = std::move(problem.value());
      return report;
    }
    ++report.checked;
  }
  if (progress) progress(report.checked, report.seqs.size());
  return report;
}

}  // namespace okr::ctl
