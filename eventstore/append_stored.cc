// A replica's appends: events exactly as another log stored them, each
// checked to continue this log before any is staged (what needs no writer
// on the caller's thread, PrepareStored), then written by the writer
// thread with the rest of its batch, as an Append's events are.
#include <algorithm>
#include <cassert>

#include "eventstore/format.h"
#include "eventstore/store_impl.h"

namespace okr {

namespace {

Status Diverges(uint64_t seq, const std::string& why) {
  return Status::Corruption("seq " + std::to_string(seq) + " does not continue this log: " + why);
}

// Whether `ev` (seq `seq`) follows an event `prev_seq` with hash
// `prev_hash`, recorded at `prev_us`: names that hash as its prevHash and
// is recorded no earlier.
Status Follows(schema::Event::Reader ev, uint64_t seq, uint64_t prev_seq, const Hash& prev_hash,
               int64_t prev_us) {
  if (!NamesAsPrev(ev, prev_hash)) {
    return Diverges(seq, "its prevHash is not the hash of seq " + std::to_string(prev_seq));
  }
  if (ev.getRecordedAt() < prev_us) return Diverges(seq, "recordedAt goes back");
  return Status::Ok();
}

// What `event` says of itself, if it decodes in full and follows `before`
// (the event before it in the append; the first's link to the log's head
// is the writer's to check).
Result<PreparedStored::State::Link> CheckAlone(const StoredEvent& event,
                                               const PreparedStored::State::Link* before,
                                               uint64_t seq_before, EventScratch* scratch) {
  const uint64_t seq = event.seq;
  if (before != nullptr && seq != seq_before + 1) {
    return Diverges(seq, "the next seq here is " + std::to_string(seq_before + 1));
  }
  auto decoded = scratch->Read(event.bytes, DecodeCheck::kFull);
  if (!decoded.ok()) return Diverges(seq, decoded.status().message());
  const schema::Event::Reader ev = *decoded;
  if (ev.getSeq() != seq) return Diverges(seq, "it says seq " + std::to_string(ev.getSeq()));
  if (before != nullptr) {
    OKR_RETURN_IF_ERROR(Follows(ev, seq, seq_before, before->hash, before->recorded_at_us));
  }
  PreparedStored::State::Link link;
  const auto entity = ev.getEntity();
  link.entity.assign(entity.begin(), entity.size());
  if (link.entity.empty() || link.entity.find(format::kStreamSeparator) != std::string::npos) {
    return Diverges(seq, "its entity is empty or holds NUL");
  }
  link.created_id = CreatedId(ev);
  link.erases = ev.which() == schema::Event::Which::SUBJECT_ERASED;
  link.version = ev.getVersion();
  link.recorded_at_us = ev.getRecordedAt();
  link.hash = Sha256(event.bytes);
  link.leaf = merkle::LeafHash(event.bytes);
  return link;
}

}  // namespace

PreparedStored::PreparedStored(std::unique_ptr<State> state) : state_(std::move(state)) {
  assert(state_);
}
PreparedStored::~PreparedStored() = default;
PreparedStored::PreparedStored(PreparedStored&&) noexcept = default;
PreparedStored& PreparedStored::operator=(PreparedStored&&) noexcept = default;
uint64_t PreparedStored::last_seq() const {
  return state_->events.empty() ? 0 : state_->events.back().seq;
}

// Each event as far as it can be checked alone, up to the first that
// cannot (the writer checks the ones before it against the log first).
PreparedStored EventStore::PrepareStored(std::vector<StoredEvent> events) const {
  auto state = std::make_unique<PreparedStored::State>();
  state->links.reserve(events.size());
  EventScratch scratch;
  for (size_t k = 0; k < events.size(); ++k) {
    const auto* before = k == 0 ? nullptr : &state->links.back();
    auto link = CheckAlone(events[k], before, k == 0 ? 0 : events[k - 1].seq, &scratch);
    if (!link.ok()) {
      state->broken = link.status();
      break;
    }
    state->links.push_back(*std::move(link));
  }
  // The index entries, sorted here rather than on the writer's thread,
  // which a replica's catch-up waits for.
  state->index_puts.reserve(state->links.size() + state->links.size() / 2);
  for (size_t k = 0; k < state->links.size(); ++k) {
    const auto& link = state->links[k];
    AddIndexPuts(format::SeqKey(events[k].seq), link.entity, link.version, link.created_id,
                 &state->index_puts);
  }
  std::sort(state->index_puts.begin(), state->index_puts.end());
  // The ids they create, looked up here too, while the writer may store the
  // append before: the writer then checks only the ids of the batches made
  // durable after this head (CheckIdsNotInLog). The head is read first:
  // the lookup then sees at least every event up to it.
  const uint64_t looked_up_at = impl_->head().seq;
  if (auto first = impl_->FirstIdInLog(state->links, state->links.size()); first.ok()) {
    state->ids_looked_up_at = looked_up_at;
    state->ids_looked_up_in = impl_.get();
    state->first_id_taken = *first;
  }
  state->events = std::move(events);
  return PreparedStored(std::move(state));
}

Result<AppendResult> EventStore::Impl::AppendStored(std::unique_ptr<PreparedStored::State> events) {
  OKR_RETURN_IF_ERROR(AdmitAppend(events->events.size(), kMaxStoredEventsPerAppend));
  return Enqueue({}, std::move(events));
}

// Writer thread: every event is checked against the head the ones before
// it leave, then all are staged; the first that does not continue the log
// refuses the whole append and leaves the batch as it was.
EventStore::Impl::Outcome EventStore::Impl::ProcessStored(PreparedStored::State& prepared,
                                                          BatchState* state) {
  std::vector<StoredEvent>& stored = prepared.events;
  const std::vector<StoredLink>& links = prepared.links;
  assert(!stored.empty() && links.size() <= stored.size());
  Head head = state->head;
  std::unordered_map<std::string, uint64_t> versions;  // this append's, so far
  std::unordered_set<std::string> created;
  versions.reserve(links.size());
  created.reserve(links.size());
  // The first that does not continue the log: the writer's finding, else
  // what preparing found.
  Status broken = ContinuesHead(stored.front(), head);
  size_t checked = 0;
  for (; broken.ok() && checked < links.size(); ++checked) {
    const StoredLink& link = links[checked];
    broken = CheckStored(stored[checked].seq, link, *state, versions, created);
    if (!broken.ok()) break;
    versions[link.entity] = link.version;
    if (!link.created_id.empty()) created.insert(link.created_id);
  }
  if (broken.ok()) broken = prepared.broken;
  // The ids the events before it create, against the log's, all at once.
  if (Status st = CheckIdsNotInLog(prepared, checked); !st.ok()) {
    return {st, false};
  }
  if (!broken.ok()) return {broken, false};
  head.seq = stored.back().seq;
  head.hash = links.back().hash;
  head.recorded_at_us = links.back().recorded_at_us;
  const AppendResult result{.first_seq = stored.front().seq, .last_seq = head.seq};
  ReserveBatch(stored, state);
  for (size_t k = 0; k < links.size(); ++k) {
    PutEvent(stored[k].seq, std::move(stored[k].bytes), links[k].leaf, state);
    if (links[k].erases) state->erased.push_back(links[k].entity);
  }
  if (state->index_puts.empty()) {
    state->index_puts.swap(prepared.index_puts);
  } else {
    state->index_puts.insert(state->index_puts.end(),
                             std::make_move_iterator(prepared.index_puts.begin()),
                             std::make_move_iterator(prepared.index_puts.end()));
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

// Whether the first event of an append continues a log whose head is
// `head`: the next seq, naming the head's hash, not before it in time.
Status EventStore::Impl::ContinuesHead(const StoredEvent& first, const Head& head) {
  const uint64_t seq = first.seq;
  if (seq != head.seq + 1) {
    return Diverges(seq, "the next seq here is " + std::to_string(head.seq + 1));
  }
  EventScratch scratch;
  auto decoded = scratch.Read(first.bytes, DecodeCheck::kFull);
  if (!decoded.ok()) return Diverges(seq, decoded.status().message());
  return Follows(*decoded, seq, head.seq, head.hash, head.recorded_at_us);
}

// Whether an event that came out of PrepareStored as `link` continues the
// log and the events before it in the batch: an id not taken yet, its
// entity's next version.
Status EventStore::Impl::CheckStored(uint64_t seq, const StoredLink& link, const BatchState& state,
                                     const std::unordered_map<std::string, uint64_t>& versions,
                                     const std::unordered_set<std::string>& created) {
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
  if (link.version != current + 1) {
    return Diverges(seq, link.entity + " is at version " + std::to_string(current) +
                             " here, and the event says " + std::to_string(link.version));
  }
  return Status::Ok();
}

// kCorruption naming the first of `prepared`'s first `count` events that
// creates an id the log holds. Looked up where it was prepared, against
// the head then; here only the ids of the batches made durable since are
// checked. All are looked up here when that lookup failed, was made in
// another store, or the batches since are no longer all kept.
Status EventStore::Impl::CheckIdsNotInLog(const PreparedStored::State& prepared,
                                          size_t count) const {
  std::optional<size_t> since;
  if (prepared.ids_looked_up_in == this) {
    since = FirstIdCreatedAfter(prepared.links, count, prepared.ids_looked_up_at);
  }
  size_t first = count;
  if (since) {
    first = std::min({prepared.first_id_taken, *since, count});
  } else {
    OKR_ASSIGN_OR_RETURN(first, FirstIdInLog(prepared.links, count));
  }
  if (first == count) return Status::Ok();
  return Diverges(prepared.events[first].seq,
                  "id " + prepared.links[first].created_id + " is already taken");
}

// Writer thread only: the first of `links`' first `count` whose created id
// a batch made durable after the head `seq` created (`count`: none);
// nullopt when not all of those batches are kept.
std::optional<size_t> EventStore::Impl::FirstIdCreatedAfter(const std::vector<StoredLink>& links,
                                                            size_t count, uint64_t seq) const {
  assert(seq <= writer_head_.seq);  // a head this store made durable
  if (seq < writer_head_.seq && (recent_ids_.empty() || recent_ids_.front().after_seq > seq)) {
    return std::nullopt;
  }
  for (size_t k = 0; k < count; ++k) {
    if (links[k].created_id.empty()) continue;
    for (auto batch = recent_ids_.rbegin(); batch != recent_ids_.rend() && batch->through_seq > seq;
         ++batch) {
      if (batch->ids.count(links[k].created_id) > 0) return k;
    }
  }
  return count;
}

// The ids are looked up in key order, a thousand to a MultiGet, which reads
// each table's filter and blocks once for all of them, where a Get per id
// searched every table for each: an ingested append leaves a table of
// `ids` keys spanning the whole range until compaction merges it.
Result<size_t> EventStore::Impl::FirstIdInLog(const std::vector<StoredLink>& links,
                                              size_t count) const {
  std::vector<std::pair<rocksdb::Slice, size_t>> ids;  // with its index in `links`
  for (size_t k = 0; k < count; ++k) {
    if (!links[k].created_id.empty()) ids.emplace_back(links[k].created_id, k);
  }
  std::sort(ids.begin(), ids.end(),
            [](const auto& a, const auto& b) { return a.first.compare(b.first) < 0; });
  constexpr size_t kPerLookup = 1024;
  std::vector<rocksdb::Slice> keys(kPerLookup);
  std::vector<rocksdb::PinnableSlice> values(kPerLookup);
  std::vector<rocksdb::Status> statuses(kPerLookup);
  size_t first_taken = count;
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
  return first_taken;
}

}  // namespace okr
