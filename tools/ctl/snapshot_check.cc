#include "tools/ctl/snapshot_check.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <tuple>

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
std::string Show(schema::Event::Which type) { return Show(std::string_view(EventTypeName(type))); }
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

// One field of a struct: its name in a difference, and where it lives.
template <typename T, typename V>
struct Member {
  const char* name;
  V T::*ptr;
};
template <typename T, typename V>
constexpr Member<T, V> F(const char* name, V T::*ptr) {
  return {name, ptr};
}

// A nested struct whose fields read as the outer one's (a check-in's meta:
// "seq", not "meta.seq").
constexpr const char* kFlat = "";

constexpr auto FieldsOf(const Meta*) {
  return std::tuple(F("seq", &Meta::seq), F("recorded_at", &Meta::recorded_at_us),
                    F("actor", &Meta::actor), F("reason", &Meta::reason), F("type", &Meta::which));
}
constexpr auto FieldsOf(const UnitFields*) {
  using U = UnitFields;
  return std::tuple(F("kind", &U::kind), F("name", &U::name), F("parent", &U::parent),
                    F("email", &U::email), F("retired", &U::retired));
}
constexpr auto FieldsOf(const CycleFields*) {
  using C = CycleFields;
  return std::tuple(F("name", &C::name), F("starts", &C::starts), F("ends", &C::ends),
                    F("parent", &C::parent), F("closed", &C::closed));
}
constexpr auto FieldsOf(const ReviewFields*) {
  using R = ReviewFields;
  return std::tuple(F("score", &R::score), F("outcome", &R::outcome),
                    F("reflection", &R::reflection), F("lessons", &R::lessons), F(kFlat, &R::meta));
}
constexpr auto FieldsOf(const ObjectiveFields*) {
  using O = ObjectiveFields;
  return std::tuple(F("cycle", &O::cycle), F("owner", &O::owner), F("title", &O::title),
                    F("description", &O::description), F("parents", &O::parents),
                    F("archived", &O::archived), F("review", &O::review));
}
constexpr auto FieldsOf(const KeyResultFields*) {
  using K = KeyResultFields;
  return std::tuple(F("objective", &K::objective), F("title", &K::title), F("owner", &K::owner),
                    F("metric", &K::metric), F("start", &K::start), F("target", &K::target),
                    F("unit", &K::unit), F("weight", &K::weight), F("removed", &K::removed));
}
constexpr auto FieldsOf(const CheckIn*) {
  return std::tuple(F("id", &CheckIn::id), F(kFlat, &CheckIn::meta), F("value", &CheckIn::value),
                    F("has_confidence", &CheckIn::has_confidence),
                    F("confidence", &CheckIn::confidence), F("status", &CheckIn::status),
                    F("note", &CheckIn::note), F("measured_at", &CheckIn::measured_at_us));
}
constexpr auto FieldsOf(const Correction*) {
  using C = Correction;
  return std::tuple(F(kFlat, &C::meta), F("check_in", &C::check_in), F("before", &C::before),
                    F("value", &C::value), F("note", &C::note));
}
constexpr auto FieldsOf(const Comment*) {
  return std::tuple(F(kFlat, &Comment::meta), F("text", &Comment::text));
}

template <typename T>
concept HasFields = requires(const T* t) {
  FieldsOf(t);
};

template <HasFields T>
void Compare(Differ* d, const T& a, const T& b, const std::string& prefix = "");

// One field: a value, a nested struct (its fields under "name."), or the
// optional review ("reviewed", then its fields under "review.").
template <typename V>
void CompareField(Differ* d, const std::string& prefix, const char* name, const V& a, const V& b) {
  if constexpr (HasFields<V>) {
    Compare(d, a, b, *name == '\0' ? prefix : prefix + name + ".");
  } else {
    d->Field(prefix + name, a, b);
  }
}
void CompareField(Differ* d, const std::string& prefix, const char* name,
                  const std::optional<ReviewFields>& a, const std::optional<ReviewFields>& b) {
  d->Field(prefix + "reviewed", a.has_value(), b.has_value());
  if (a && b) Compare(d, *a, *b, prefix + name + ".");
}

// Every field of two structs in declaration order; the Differ keeps the first difference.
template <HasFields T>
void Compare(Differ* d, const T& a, const T& b, const std::string& prefix) {
  std::apply([&](const auto&... m) { (CompareField(d, prefix, m.name, a.*m.ptr, b.*m.ptr), ...); },
             FieldsOf(static_cast<const T*>(nullptr)));
}

// "what N: field: ..." for the first differing element of two lists.
template <typename List>
std::string DiffList(const std::string& what, const List& a, const List& b) {
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
  // The same check-ins with other latest ones: the derived index differs.
  return d.empty() && a.check_ins != b.check_ins ? "the index of latest check-ins" : d;
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
    // Its seq only: no part needs reading beyond the first.
    auto seq = store.ReadSnapshot(at, [](std::string_view) { return false; });
    if (!seq.ok()) {
      if (seq.status().code() == Status::Code::kNotFound) break;
      return seq.status();
    }
    seqs.push_back(*seq);
    if (*seq == 0) break;
    at = *seq - 1;
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
  auto snapshot = SnapshotCodec::Decode(stored->parts, &hash);
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
