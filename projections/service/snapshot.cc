#include "projections/service/snapshot.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/debug.h>
#include <kj/exception.h>

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>

#include "schemas/snapshot.capnp.h"

namespace okr {

namespace {

namespace s = schema;

// Every text okrd stores came through Decide, which refuses control
// characters, and a Cap'n Proto text setter stops at the first NUL: a NUL
// inside a snapshot's text means damage, and kept, it would not encode back
// as it was read (two ids "\0a" and "\0b" would both be written as "").
std::string_view View(capnp::Text::Reader t) {
  if (std::memchr(t.begin(), '\0', t.size()) != nullptr)
    KJ_FAIL_REQUIRE("snapshot text holds a NUL");
  return std::string_view(t.begin(), t.size());
}
std::string Str(capnp::Text::Reader t) { return std::string(View(t)); }
Interned Intern(capnp::Text::Reader t) { return Interned::Of(View(t)); }

void PutMeta(s::Meta::Builder b, const Meta& m) {
  b.setSeq(m.seq);
  b.setRecordedAt(m.recorded_at_us);
  b.setActor(m.actor.c_str());
  b.setReason(m.reason.c_str());
  b.setType(EventTypeName(m.which));
}
Meta GetMeta(s::Meta::Reader r) {
  auto type = r.getType();
  const auto which = EventTypeNamed(std::string_view(type.begin(), type.size()));
  if (!which) KJ_FAIL_REQUIRE("snapshot names an unknown event type");
  return {r.getSeq(), r.getRecordedAt(), Intern(r.getActor()), Intern(r.getReason()), *which};
}

template <typename List>
void PutSeqs(List list, const std::vector<uint64_t>& v) {
  for (size_t i = 0; i < v.size(); ++i) list.set(static_cast<unsigned>(i), v[i]);
}
std::vector<uint64_t> GetSeqs(capnp::List<uint64_t>::Reader r) {
  std::vector<uint64_t> out;
  out.reserve(r.size());
  for (uint64_t seq : r) out.push_back(seq);
  return out;
}
void PutTexts(capnp::List<capnp::Text>::Builder list, const std::vector<std::string>& v) {
  for (size_t i = 0; i < v.size(); ++i) list.set(static_cast<unsigned>(i), v[i]);
}
std::vector<std::string> GetTexts(capnp::List<capnp::Text>::Reader r) {
  std::vector<std::string> out;
  for (auto t : r) out.push_back(Str(t));
  return out;
}

template <typename B>
void PutComments(B list, const std::vector<Comment>& v) {
  for (size_t i = 0; i < v.size(); ++i) {
    auto c = list[static_cast<unsigned>(i)];
    PutMeta(c.initMeta(), v[i].meta);
    c.setText(v[i].text);
  }
}
std::vector<Comment> GetComments(capnp::List<s::Comment>::Reader r) {
  std::vector<Comment> out;
  for (auto c : r) out.push_back({GetMeta(c.getMeta()), Str(c.getText())});
  return out;
}
// --- One revision's fields, each kind both ways ---

void PutFields(s::UnitRevision::Builder b, const UnitFields& f) {
  b.setKind(f.kind);
  b.setName(f.name);
  b.setParent(f.parent);
  b.setEmail(f.email);
  b.setRetired(f.retired);
}
void GetFields(s::UnitRevision::Reader b, UnitFields* f) {
  f->kind = Str(b.getKind());
  f->name = Str(b.getName());
  f->parent = Str(b.getParent());
  f->email = Str(b.getEmail());
  f->retired = b.getRetired();
}

void PutFields(s::CycleRevision::Builder b, const CycleFields& f) {
  b.setName(f.name);
  b.setStarts(f.starts);
  b.setEnds(f.ends);
  b.setParent(f.parent);
  b.setClosed(f.closed);
}
void GetFields(s::CycleRevision::Reader b, CycleFields* f) {
  f->name = Str(b.getName());
  f->starts = Str(b.getStarts());
  f->ends = Str(b.getEnds());
  f->parent = Str(b.getParent());
  f->closed = b.getClosed();
}

void PutFields(s::ObjectiveRevision::Builder b, const ObjectiveFields& f) {
  b.setCycle(f.cycle);
  b.setOwner(f.owner);
  b.setTitle(f.title);
  b.setDescription(f.description);
  PutTexts(b.initParents(static_cast<unsigned>(f.parents.size())), f.parents);
  b.setArchived(f.archived);
  b.setHasReview(f.review.has_value());
  if (f.review) {
    auto r = b.initReview();
    r.setScore(f.review->score);
    r.setOutcome(f.review->outcome);
    r.setReflection(f.review->reflection);
    r.setLessons(f.review->lessons);
    PutMeta(r.initMeta(), f.review->meta);
  }
}
void GetFields(s::ObjectiveRevision::Reader b, ObjectiveFields* f) {
  f->cycle = Str(b.getCycle());
  f->owner = Str(b.getOwner());
  f->title = Str(b.getTitle());
  f->description = Str(b.getDescription());
  f->parents = GetTexts(b.getParents());
  f->archived = b.getArchived();
  if (b.getHasReview()) {
    auto rv = b.getReview();
    f->review = ReviewFields{rv.getScore(), Str(rv.getOutcome()), Str(rv.getReflection()),
                             Str(rv.getLessons()), GetMeta(rv.getMeta())};
  }
}

void PutFields(s::KeyResultRevision::Builder b, const KeyResultFields& f) {
  b.setObjective(f.objective);
  b.setTitle(f.title);
  b.setOwner(f.owner);
  b.setMetric(f.metric);
  b.setStart(f.start);
  b.setTarget(f.target);
  b.setUnit(f.unit);
  b.setWeight(f.weight);
  b.setRemoved(f.removed);
}
void GetFields(s::KeyResultRevision::Reader b, KeyResultFields* f) {
  f->objective = Str(b.getObjective());
  f->title = Str(b.getTitle());
  f->owner = Str(b.getOwner());
  f->metric = Str(b.getMetric());
  f->start = b.getStart();
  f->target = b.getTarget();
  f->unit = Str(b.getUnit());
  f->weight = b.getWeight();
  f->removed = b.getRemoved();
}

// --- A key result's appended lists ---

void PutCheckIns(capnp::List<s::CheckIn>::Builder list, const CheckIns& v) {
  assert(list.size() == v.size());
  for (size_t k = 0; k < v.size(); ++k) {
    const CheckIn& ci = v[k];
    auto cb = list[static_cast<unsigned>(k)];
    cb.setId(ci.id.c_str());
    PutMeta(cb.initMeta(), ci.meta);
    cb.setValue(ci.value);
    cb.setHasConfidence(ci.has_confidence);
    cb.setConfidence(ci.confidence);
    cb.setStatus(ci.status.c_str());
    cb.setNote(ci.note.c_str());
    cb.setMeasuredAt(ci.measured_at_us);
  }
}

void PutCorrections(capnp::List<s::Correction>::Builder list, const std::vector<Correction>& v) {
  assert(list.size() == v.size());
  for (size_t k = 0; k < v.size(); ++k) {
    const Correction& c = v[k];
    auto cb = list[static_cast<unsigned>(k)];
    PutMeta(cb.initMeta(), c.meta);
    cb.setCheckIn(c.check_in.c_str());
    cb.setBefore(c.before);
    cb.setValue(c.value);
    cb.setNote(c.note.c_str());
  }
}

// --- Whole entities ---

// Every entity of one kind: id, revisions and event seqs. The parts only
// some kinds have are written after all of them (PutExtras), which fixes
// the message's layout: a snapshot encodes to the same bytes every time.
template <typename E, typename ListB>
void PutEntities(ListB list, const std::map<std::string, E>& m) {
  assert(list.size() == m.size());
  unsigned i = 0;
  for (const auto& [id, e] : m) {
    auto b = list[i++];
    b.setId(id);
    auto revs = b.initRevisions(static_cast<unsigned>(e.revisions.size()));
    for (size_t k = 0; k < e.revisions.size(); ++k) {
      auto rb = revs[static_cast<unsigned>(k)];
      PutMeta(rb.initMeta(), e.revisions[k].meta);
      PutFields(rb, e.revisions[k].fields);
    }
    PutSeqs(b.initEventSeqs(static_cast<unsigned>(e.event_seqs.size())), e.event_seqs);
  }
}

// `put(builder, entity)` for each entity of `m`, in map order.
template <typename E, typename ListB, typename Put>
void PutExtras(ListB list, const std::map<std::string, E>& m, Put put) {
  assert(list.size() == m.size());
  unsigned i = 0;
  for (const auto& [id, e] : m) put(list[i++], e);
}

// Reads every entity of one kind into `m`; `get_extras(reader, entity)`
// reads what only that kind has.
template <typename E, typename ListR, typename GetExtras>
void GetEntities(ListR list, std::map<std::string, E>* m, GetExtras get_extras) {
  for (auto r : list) {
    // Written in map order, so each id goes at the end: no search.
    auto it = m->emplace_hint(m->end(), Str(r.getId()), E{});
    E* e = &it->second;
    e->id = it->first;
    for (auto rev : r.getRevisions()) {
      e->revisions.push_back({GetMeta(rev.getMeta()), {}});
      GetFields(rev, &e->revisions.back().fields);
    }
    e->event_seqs = GetSeqs(r.getEventSeqs());
    get_extras(r, e);
  }
}

// A key result's check-ins go to `arena`, its projection's.
void GetKeyResultExtras(s::KeyResultEntity::Reader r, KeyResult* kr, CheckInArena* arena) {
  for (auto c : r.getCheckIns()) {
    kr->check_ins.Append(arena, CheckIn{.meta = GetMeta(c.getMeta()),
                                        .value = c.getValue(),
                                        .confidence = c.getConfidence(),
                                        .measured_at_us = c.getMeasuredAt(),
                                        .id = Intern(c.getId()),
                                        .status = Intern(c.getStatus()),
                                        .note = Intern(c.getNote()),
                                        .has_confidence = c.getHasConfidence()});
  }
  for (auto c : r.getCorrections()) {
    kr->corrections.push_back(Correction{GetMeta(c.getMeta()), Intern(c.getCheckIn()),
                                         c.getBefore(), c.getValue(), Intern(c.getNote())});
  }
  kr->comments = GetComments(r.getComments());
}

}  // namespace

std::string SnapshotCodec::Encode(const Projection& p, const Hash& head_hash) {
  capnp::MallocMessageBuilder message;
  auto snap = message.initRoot<s::Snapshot>();
  snap.setFormatVersion(kSnapshotFormatVersion);
  snap.setSeq(p.seq_);
  snap.setRecordedAt(p.recorded_at_us_);
  auto hash = snap.initHeadHash(static_cast<unsigned>(head_hash.size()));
  std::memcpy(hash.begin(), head_hash.data(), head_hash.size());
  auto times = snap.initTimeIndex(static_cast<unsigned>(p.time_index_.size()));
  for (size_t i = 0; i < p.time_index_.size(); ++i) {
    times[static_cast<unsigned>(i)].setRecordedAt(p.time_index_[i].first);
    times[static_cast<unsigned>(i)].setSeq(p.time_index_[i].second);
  }
  PutEntities(snap.initUnits(static_cast<unsigned>(p.units_.size())), p.units_);
  PutEntities(snap.initCycles(static_cast<unsigned>(p.cycles_.size())), p.cycles_);
  auto objectives = snap.initObjectives(static_cast<unsigned>(p.objectives_.size()));
  PutEntities(objectives, p.objectives_);
  PutExtras(objectives, p.objectives_, [](s::ObjectiveEntity::Builder b, const Objective& o) {
    PutTexts(b.initKeyResults(static_cast<unsigned>(o.key_results.size())), o.key_results);
    PutComments(b.initComments(static_cast<unsigned>(o.comments.size())), o.comments);
  });
  auto krs = snap.initKeyResults(static_cast<unsigned>(p.key_results_.size()));
  PutEntities(krs, p.key_results_);
  PutExtras(krs, p.key_results_, [](s::KeyResultEntity::Builder b, const KeyResult& kr) {
    PutCheckIns(b.initCheckIns(static_cast<unsigned>(kr.check_ins.size())), kr.check_ins);
    PutCorrections(b.initCorrections(static_cast<unsigned>(kr.corrections.size())), kr.corrections);
    PutComments(b.initComments(static_cast<unsigned>(kr.comments.size())), kr.comments);
  });
  return EncodeMessage(message);
}

Result<Projection> SnapshotCodec::Decode(std::string_view bytes, Hash* head_hash) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return Status::Corruption("snapshot is not a whole number of words");
  }
  // Read in place when the bytes are word-aligned (a std::string's buffer
  // is): a snapshot of a million events is ≈ 220 MB, and a copy of it cost
  // a fifth of okrd's start-up in memmove and page faults.
  kj::Array<capnp::word> copy;
  kj::ArrayPtr<const capnp::word> words;
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(capnp::word) == 0) {
    words = kj::arrayPtr(reinterpret_cast<const capnp::word*>(bytes.data()),
                         bytes.size() / sizeof(capnp::word));
  } else {
    copy = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
    std::memcpy(copy.begin(), bytes.data(), bytes.size());
    words = copy.asPtr();
  }
  capnp::ReaderOptions options;
  options.traversalLimitInWords = words.size() * 4 + 1024;
  options.nestingLimit = 16;
  Projection p;
  try {
    capnp::FlatArrayMessageReader reader(words, options);
    auto snap = reader.getRoot<s::Snapshot>();
    if (snap.getFormatVersion() != kSnapshotFormatVersion) {
      return Status::Corruption("snapshot format " + std::to_string(snap.getFormatVersion()) +
                                " is not known");
    }
    auto hash = snap.getHeadHash();
    if (hash.size() != head_hash->size()) return Status::Corruption("snapshot head hash size");
    std::memcpy(head_hash->data(), hash.begin(), hash.size());
    p.seq_ = snap.getSeq();
    p.recorded_at_us_ = snap.getRecordedAt();
    for (auto t : snap.getTimeIndex()) p.time_index_.emplace_back(t.getRecordedAt(), t.getSeq());
    auto nothing_more = [](auto, auto*) {};
    GetEntities(snap.getUnits(), &p.units_, nothing_more);
    GetEntities(snap.getCycles(), &p.cycles_, nothing_more);
    GetEntities(snap.getObjectives(), &p.objectives_,
                [](s::ObjectiveEntity::Reader r, Objective* o) {
                  o->key_results = GetTexts(r.getKeyResults());
                  o->comments = GetComments(r.getComments());
                });
    GetEntities(snap.getKeyResults(), &p.key_results_,
                [&p](s::KeyResultEntity::Reader r, KeyResult* kr) {
                  GetKeyResultExtras(r, kr, p.check_in_arena_.get());
                });
  } catch (const kj::Exception& e) {
    return Status::Corruption(std::string("undecodable snapshot: ") + e.getDescription().cStr());
  }
  p.RebuildIndex();
  // Every entity's revisions()[0] is read unguarded elsewhere: check it here.
  auto empty = [](const auto& m) {
    return std::any_of(m.begin(), m.end(),
                       [](const auto& kv) { return kv.second.revisions.empty(); });
  };
  if (empty(p.units_) || empty(p.cycles_) || empty(p.objectives_) || empty(p.key_results_)) {
    return Status::Corruption("snapshot holds an entity without revisions");
  }
  return p;
}

}  // namespace okr
