// A replica's appends: events exactly as another log stored them, each
// checked to continue this log before any is staged, then written by the
// writer thread with the rest of its batch, as an Append's events are.
#include <algorithm>
#include <cassert>

#include "eventstore/format.h"
#include "eventstore/store_impl.h"

namespace okr {

namespace {

Status Diverges(uint64_t seq, const std::string& why) {
  return Status::Corruption("seq " + std::to_string(seq) + " does not continue this log: " + why);
}

}  // namespace

Result<AppendResult> EventStore::Impl::AppendStored(std::vector<StoredEvent> events) {
  OKR_RETURN_IF_ERROR(AdmitAppend(events.size(), kMaxStoredEventsPerAppend));
  return Enqueue({}, std::move(events));
}

// Writer thread: every event is checked against the head the ones before
// it leave, then all are staged; the first that does not continue the log
// refuses the whole append and leaves the batch as it was.
EventStore::Impl::Outcome EventStore::Impl::ProcessStored(std::vector<StoredEvent>& stored,
                                                          BatchState* state) {
  assert(!stored.empty());
  Head head = state->head;
  std::unordered_map<std::string, uint64_t> versions;  // this append's, so far
  std::unordered_set<std::string> created;
  versions.reserve(stored.size());
  created.reserve(stored.size());
  Borrowed<StoredLink> borrowed(&kept_.links);
  std::vector<StoredLink>& links = *borrowed;
  links.reserve(stored.size());
  EventScratch scratch;
  Status broken = Status::Ok();  // the first event that does not continue the log
  for (const StoredEvent& event : stored) {
    auto link = CheckStored(event, head, *state, versions, created, &scratch);
    if (!link.ok()) {
      broken = link.status();
      break;
    }
    versions[link->entity] = link->version;
    if (!link->created_id.empty()) created.insert(link->created_id);
    head.seq = event.seq;
    head.hash = Sha256(event.bytes);
    head.recorded_at_us = link->recorded_at_us;
    links.push_back(*std::move(link));
  }
  // The ids the events before it create, against the log's, all at once.
  if (Status st = CheckIdsNotInLog(links, stored.front().seq); !st.ok()) return {st, false};
  if (!broken.ok()) return {broken, false};
  const AppendResult result{.first_seq = stored.front().seq, .last_seq = head.seq};
  ReserveBatch(stored, state);
  for (size_t k = 0; k < links.size(); ++k) {
    PutEvent(stored[k].seq, std::move(stored[k].bytes), links[k].entity, links[k].version,
             links[k].created_id, state);
    if (links[k].erases) state->erased.push_back(links[k].entity);
  }
  state->head = head;
  state->copied += links.size();
  if (state->overlay.empty()) {
    state->overlay = std::move(versions);
  } else {
    for (auto& [entity, version] : versions) state->overlay[entity] = version;
  }
  state->ids.merge(created);
  assert(state->frontier.size() == head.seq);
  return {result, true};
}

// A batch about to take a large append of copied events gets its buffer
// at once: grown by doubling, a 30 MB batch copied itself over and over.
void EventStore::Impl::ReserveBatch(const std::vector<StoredEvent>& stored, BatchState* state) {
  constexpr size_t kKeyBytesPerEvent = 160;  // streams, ids and tree keys and values, about
  size_t need = state->wb.GetDataSize();
  for (const StoredEvent& event : stored) need += event.bytes.size() + kKeyBytesPerEvent;
  if (state->wb.Count() == 0 && state->wb.Data().capacity() < need) {
    state->wb = rocksdb::WriteBatch(need);
  }
}

// Whether `event` continues a log whose head is `head`: what staging it
// needs, or why it does not (kCorruption).
Result<EventStore::Impl::StoredLink> EventStore::Impl::CheckStored(
    const StoredEvent& event, const Head& head, const BatchState& state,
    const std::unordered_map<std::string, uint64_t>& versions,
    const std::unordered_set<std::string>& created, EventScratch* scratch) {
  const uint64_t seq = event.seq;
  if (seq != head.seq + 1) {
    return Diverges(seq, "the next seq here is " + std::to_string(head.seq + 1));
  }
  auto decoded = scratch->Read(event.bytes, DecodeCheck::kFull);
  if (!decoded.ok()) return Diverges(seq, decoded.status().message());
  const schema::Event::Reader ev = *decoded;
  if (ev.getSeq() != seq) return Diverges(seq, "it says seq " + std::to_string(ev.getSeq()));
  if (!NamesAsPrev(ev, head.hash)) {
    return Diverges(seq, "its prevHash is not the hash of seq " + std::to_string(head.seq));
  }
  if (ev.getRecordedAt() < head.recorded_at_us) return Diverges(seq, "recordedAt goes back");
  StoredLink link;
  const auto entity = ev.getEntity();
  link.entity.assign(entity.begin(), entity.size());
  if (link.entity.empty() || link.entity.find(format::kStreamSeparator) != std::string::npos) {
    return Diverges(seq, "its entity is empty or holds NUL");
  }
  link.created_id = CreatedId(ev);
  link.erases = ev.which() == schema::Event::Which::SUBJECT_ERASED;
  // Taken by the log: CheckIdsNotInLog, for the whole append.
  if (!link.created_id.empty() &&
      (state.ids.count(link.created_id) > 0 || created.count(link.created_id) > 0)) {
    return Diverges(seq, "id " + link.created_id + " is already taken");
  }
  // An event that creates its own entity, with an id nothing has taken,
  // finds no stream of it: every stream's entity has its id taken.
  uint64_t current = 0;
  if (link.created_id != link.entity) {
    if (auto it = versions.find(link.entity); it != versions.end()) {
      current = it->second;
    } else {
      OKR_ASSIGN_OR_RETURN(current, CurrentVersion(link.entity, state.overlay));
    }
  }
  if (ev.getVersion() != current + 1) {
    return Diverges(seq, link.entity + " is at version " + std::to_string(current) +
                             " here, and the event says " + std::to_string(ev.getVersion()));
  }
  link.version = ev.getVersion();
  link.recorded_at_us = ev.getRecordedAt();
  return link;
}

// kCorruption naming the first of `links` (of the events from
// `first_seq` on) that creates an id the log holds. The ids are looked up
// in key order, a thousand to a MultiGet, which reads each table's filter
// and blocks once for all of them, where a Get per id searched every table
// for each: an ingested append leaves a table of `ids` keys spanning the
// whole range until compaction merges it.
Status EventStore::Impl::CheckIdsNotInLog(const std::vector<StoredLink>& links,
                                          uint64_t first_seq) const {
  std::vector<std::pair<rocksdb::Slice, size_t>> ids;  // with its index in `links`
  for (size_t k = 0; k < links.size(); ++k) {
    if (!links[k].created_id.empty()) ids.emplace_back(links[k].created_id, k);
  }
  std::sort(ids.begin(), ids.end(),
            [](const auto& a, const auto& b) { return a.first.compare(b.first) < 0; });
  constexpr size_t kPerLookup = 1024;
  std::vector<rocksdb::Slice> keys(kPerLookup);
  std::vector<rocksdb::PinnableSlice> values(kPerLookup);
  std::vector<rocksdb::Status> statuses(kPerLookup);
  size_t first_taken = links.size();
  for (size_t from = 0; from < ids.size(); from += kPerLookup) {
    const size_t n = std::min(kPerLookup, ids.size() - from);
    for (size_t i = 0; i < n; ++i) keys[i] = ids[from + i].first;
    db_->MultiGet(rocksdb::ReadOptions(), ids_, n, keys.data(), values.data(), statuses.data(),
                  /*sorted_input=*/true);
    for (size_t i = 0; i < n; ++i) {
      if (statuses[i].ok()) first_taken = std::min(first_taken, ids[from + i].second);
      if (!statuses[i].ok() && !statuses[i].IsNotFound()) return FromRocks(statuses[i]);
      values[i].Reset();
    }
  }
  if (first_taken == links.size()) return Status::Ok();
  return Diverges(first_seq + first_taken,
                  "id " + links[first_taken].created_id + " is already taken");
}

}  // namespace okr
