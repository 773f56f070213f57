#include "projections/service/snapshot.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/debug.h>
#include <kj/exception.h>

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <map>

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

// The entities [begin, end) of one kind: id, revisions and event seqs. The
// parts only some kinds have are written after all of them (PutExtras),
// which fixes the message's layout: a snapshot encodes to the same bytes
// every time.
template <typename It, typename ListB>
void PutEntities(ListB list, It begin, It end) {
  unsigned i = 0;
  for (It at = begin; at != end; ++at) {
    const auto& e = at->second;
    auto b = list[i++];
    b.setId(at->first);
    auto revs = b.initRevisions(static_cast<unsigned>(e.revisions.size()));
    for (size_t k = 0; k < e.revisions.size(); ++k) {
      auto rb = revs[static_cast<unsigned>(k)];
      PutMeta(rb.initMeta(), e.revisions[k].meta);
      PutFields(rb, e.revisions[k].fields);
    }
    PutSeqs(b.initEventSeqs(static_cast<unsigned>(e.event_seqs.size())), e.event_seqs);
  }
  assert(i == list.size());
}

// What only objectives and key results have, and how much of a part each
// entity takes.
void PutExtras(s::ObjectiveEntity::Builder b, const Objective& o) {
  PutTexts(b.initKeyResults(static_cast<unsigned>(o.key_results.size())), o.key_results);
  PutComments(b.initComments(static_cast<unsigned>(o.comments.size())), o.comments);
}
void PutExtras(s::KeyResultEntity::Builder b, const KeyResult& kr) {
  PutCheckIns(b.initCheckIns(static_cast<unsigned>(kr.check_ins.size())), kr.check_ins);
  PutCorrections(b.initCorrections(static_cast<unsigned>(kr.corrections.size())), kr.corrections);
  PutComments(b.initComments(static_cast<unsigned>(kr.comments.size())), kr.comments);
}
template <typename B, typename E>
void PutExtras(B, const E&) {}
size_t Items(const Objective& o) { return o.key_results.size() + o.comments.size(); }
size_t Items(const KeyResult& kr) {
  return kr.check_ins.size() + kr.corrections.size() + kr.comments.size();
}
template <typename E>
size_t Items(const E&) {
  return 0;
}

// A part's message, with what every part carries.
s::Snapshot::Builder StartPart(capnp::MessageBuilder* message, uint64_t seq, size_t part) {
  auto snap = message->initRoot<s::Snapshot>();
  snap.setFormatVersion(kSnapshotFormatVersion);
  snap.setSeq(seq);
  snap.setPart(static_cast<uint32_t>(part));
  return snap;
}

// Appends the entities of `m` to `parts`, in runs of about
// kSnapshotPartItems items; `init(snapshot, n)` makes a part's list of n.
template <typename E, typename Init>
void PutRuns(const std::map<std::string, E>& m, uint64_t seq, Init init,
             std::vector<std::string>* parts) {
  for (auto begin = m.begin(); begin != m.end();) {
    auto end = begin;
    unsigned count = 0;
    for (size_t items = 0; end != m.end() && (count == 0 || items < kSnapshotPartItems); ++end) {
      items += 1 + end->second.revisions.size() + Items(end->second);
      ++count;
    }
    capnp::MallocMessageBuilder message;
    auto list = init(StartPart(&message, seq, parts->size()), count);
    PutEntities(list, begin, end);
    unsigned i = 0;
    for (auto at = begin; at != end; ++at) PutExtras(list[i++], at->second);
    parts->push_back(EncodeMessage(message));
    begin = end;
  }
}

// Reads every entity of `list` into `m`, after those already there;
// `get_extras(reader, entity)` reads what only that kind has.
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

std::vector<std::string> SnapshotCodec::Encode(const Projection& p, const Hash& head_hash) {
  std::vector<std::string> parts(1);  // the header, written last: it counts the parts
  PutRuns(
      p.units_, p.seq_, [](s::Snapshot::Builder b, unsigned n) { return b.initUnits(n); }, &parts);
  PutRuns(
      p.cycles_, p.seq_, [](s::Snapshot::Builder b, unsigned n) { return b.initCycles(n); },
      &parts);
  PutRuns(
      p.objectives_, p.seq_, [](s::Snapshot::Builder b, unsigned n) { return b.initObjectives(n); },
      &parts);
  PutRuns(
      p.key_results_, p.seq_,
      [](s::Snapshot::Builder b, unsigned n) { return b.initKeyResults(n); }, &parts);
  capnp::MallocMessageBuilder message;
  auto snap = StartPart(&message, p.seq_, 0);
  snap.setParts(static_cast<uint32_t>(parts.size()));
  snap.setRecordedAt(p.recorded_at_us_);
  auto hash = snap.initHeadHash(static_cast<unsigned>(head_hash.size()));
  std::memcpy(hash.begin(), head_hash.data(), head_hash.size());
  auto times = snap.initTimeIndex(static_cast<unsigned>(p.time_index_.size()));
  for (size_t i = 0; i < p.time_index_.size(); ++i) {
    times[static_cast<unsigned>(i)].setRecordedAt(p.time_index_[i].first);
    times[static_cast<unsigned>(i)].setSeq(p.time_index_[i].second);
  }
  parts[0] = EncodeMessage(message);
  return parts;
}

Result<Projection> SnapshotCodec::Decode(const std::vector<std::string>& parts, Hash* head_hash) {
  SnapshotDecoder decoder;
  for (const std::string& part : parts) {
    if (!decoder.Add(part)) break;
  }
  return decoder.Finish(head_hash);
}

bool SnapshotDecoder::Add(std::string_view bytes) {
  if (!status_.ok()) return false;
  status_ = AddPart(bytes);
  ++added_;
  return status_.ok();
}

Status SnapshotDecoder::AddPart(std::string_view bytes) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return Status::Corruption("snapshot part is not a whole number of words");
  }
  // Read in place when the bytes are word-aligned (a std::string's buffer
  // is); else through a copy kept for the next part.
  kj::ArrayPtr<const capnp::word> words;
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(capnp::word) == 0) {
    words = kj::arrayPtr(reinterpret_cast<const capnp::word*>(bytes.data()),
                         bytes.size() / sizeof(capnp::word));
  } else {
    const size_t size = bytes.size() / sizeof(capnp::word);
    if (aligned_.size() < size) aligned_ = kj::heapArray<capnp::word>(size);
    std::memcpy(aligned_.begin(), bytes.data(), bytes.size());
    words = aligned_.slice(0, size);
  }
  capnp::ReaderOptions options;
  options.traversalLimitInWords = words.size() * 4 + 1024;
  options.nestingLimit = 16;
  Projection& p = projection_;
  try {
    capnp::FlatArrayMessageReader reader(words, options);
    auto snap = reader.getRoot<s::Snapshot>();
    if (added_ == 0) {
      // The header: format 1 is one message holding everything.
      format_ = snap.getFormatVersion();
      if (format_ != kSnapshotFormatVersion && format_ != 1) {
        return Status::Corruption("snapshot format " + std::to_string(format_) + " is not known");
      }
      parts_ = format_ == 1 ? 1 : snap.getParts();
      auto hash = snap.getHeadHash();
      head_hash_.assign(hash.begin(), hash.end());
      p.seq_ = snap.getSeq();
      p.recorded_at_us_ = snap.getRecordedAt();
      for (auto t : snap.getTimeIndex()) p.time_index_.emplace_back(t.getRecordedAt(), t.getSeq());
    }
    if (added_ >= parts_ || snap.getFormatVersion() != format_ || snap.getSeq() != p.seq_ ||
        snap.getPart() != added_) {
      return Status::Corruption("snapshot part " + std::to_string(added_) +
                                " is not of this snapshot");
    }
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
  return Status::Ok();
}

Result<Projection> SnapshotDecoder::Finish(Hash* head_hash) {
  OKR_RETURN_IF_ERROR(status_);
  if (added_ == 0 || added_ != parts_) {
    return Status::Corruption("snapshot has " + std::to_string(added_) + " parts of " +
                              std::to_string(parts_));
  }
  if (head_hash_.size() != head_hash->size()) {
    return Status::Corruption("snapshot head hash size");
  }
  std::memcpy(head_hash->data(), head_hash_.data(), head_hash_.size());
  Projection p = std::move(projection_);
  // Objectives are linked to their key results next: each must be here.
  for (const auto& [id, o] : p.objectives_) {
    for (const std::string& kr : o.key_results) {
      if (!p.key_results_.contains(kr)) {
        return Status::Corruption("snapshot's objective " + id + " names key result " + kr +
                                  ", which it does not hold");
      }
    }
  }
  // Every entity's revisions()[0] and current() are read unguarded
  // elsewhere, RebuildIndex first among them: check before it runs.
  auto empty = [](const auto& m) {
    return std::any_of(m.begin(), m.end(),
                       [](const auto& kv) { return kv.second.revisions.empty(); });
  };
  if (empty(p.units_) || empty(p.cycles_) || empty(p.objectives_) || empty(p.key_results_)) {
    return Status::Corruption("snapshot holds an entity without revisions");
  }
  p.RebuildIndex();
  return p;
}

}  // namespace okr
