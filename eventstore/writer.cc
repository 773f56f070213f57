// The writer: one thread drains every waiting append into one RocksDB
// WriteBatch and one synced write (group commit), so callers share the
// cost of the sync, and appends are decided in one order against one head.
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstring>
#include <tuple>

#include "eventstore/format.h"
#include "eventstore/sealing.h"
#include "eventstore/store_impl.h"

namespace okr {

// What every append must be, drafts or stored events: to a writable,
// undamaged log, of 1 to `most` events.
Status EventStore::Impl::AdmitAppend(size_t events, size_t most) const {
  if (options_.read_only) return Status::Invalid("the log is open read-only");
  OKR_RETURN_IF_ERROR(RefuseIfDamaged());
  if (events == 0) return Status::Invalid("an append needs at least one event");
  if (events > most) {
    return Status::Invalid("an append holds at most " + std::to_string(most) + " events");
  }
  return Status::Ok();
}

Result<AppendResult> EventStore::Impl::Append(AppendRequest request) {
  OKR_RETURN_IF_ERROR(AdmitAppend(request.events.size(), kMaxEventsPerAppend));
  if (request.idempotency_key.size() > kMaxIdempotencyKeyBytes) {
    return Status::Invalid(
        "idempotency key longer than " + std::to_string(kMaxIdempotencyKeyBytes) + " bytes",
        "Idempotency-Key");
  }
  for (auto& draft : request.events) {
    if (draft.entity().empty()) return Status::Invalid("an event needs an entity", "entity");
    if (draft.entity().find(format::kStreamSeparator) != std::string::npos) {
      return Status::Invalid("entity id contains NUL", "entity");
    }
  }
  return Enqueue(std::move(request), nullptr);
}

// Hands an append to the writer thread and waits for its answer.
Result<AppendResult> EventStore::Impl::Enqueue(AppendRequest request,
                                               std::unique_ptr<PreparedStored::State> stored) {
  Pending pending{std::move(request), std::move(stored), {}};
  auto future = pending.done.get_future();
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (stopping_) return Status::IOError("the log is closing");
    queue_.push_back(&pending);
  }
  queue_cv_.notify_one();
  // `pending` lives on this stack until the writer has answered it.
  return future.get();
}

void EventStore::Impl::WriterLoop() {
  std::vector<Pending*> batch;
  PruneIdempotencyAlone();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      auto ready = [&] { return stopping_ || !queue_.empty(); };
      if (level0_before_.empty()) {
        queue_cv_.wait(lock, ready);
      } else if (!queue_cv_.wait_for(lock, kBulkCopyPause, ready)) {
        lock.unlock();
        DeferCompactions(false);  // the bulk copy has paused
        continue;
      }
      if (queue_.empty()) return;  // stopping, and everything queued is done
      while (!queue_.empty() && batch.size() < kMaxAppendsPerBatch) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    assert(!batch.empty() && batch.size() <= kMaxAppendsPerBatch);
    ProcessBatch(batch);
    batch.clear();
  }
}

// Turns every acceptable append of `batch` into one WriteBatch and one
// synced write, then answers each caller.
void EventStore::Impl::ProcessBatch(const std::vector<Pending*>& batch) {
  std::vector<Outcome> outcomes;
  outcomes.reserve(batch.size());
  BatchState state;
  state.wb = std::move(kept_.wb);
  state.index_puts = std::move(kept_.index_puts);
  state.events = std::move(kept_.events);
  state.head = writer_head_;
  state.frontier = frontier_;
  for (Pending* pending : batch) {
    outcomes.push_back(pending->stored ? ProcessStored(*pending->stored, &state)
                                       : ProcessAppend(pending->request, &state));
  }
  assert(state.head.seq >= writer_head_.seq);
  // Every staged append adds at least one event, so an unchanged head means
  // nothing to write (replays of this batch's own keys need a staged append).
  Status written = Status::Ok();
  if (state.head.seq > writer_head_.seq) written = CommitBatch(&state, outcomes);
  for (size_t i = 0; i < batch.size(); ++i) {
    if (outcomes[i].needs_write && !written.ok()) outcomes[i].result = written;
    batch[i]->done.set_value(std::move(outcomes[i].result));
  }
  // A moved-from WriteBatch has no header: the next batch gets a cleared
  // one or a new one.
  if (state.wb.Data().capacity() <= kMostKeptBytes) {
    state.wb.Clear();
    kept_.wb = std::move(state.wb);
  } else {
    kept_.wb = rocksdb::WriteBatch();
  }
  Keep(&state.index_puts, &kept_.index_puts);
  Keep(&state.events, &kept_.events);
}

// Decides one append of the batch: a replay of its idempotency key, a
// refusal (versions, ids), or its events staged into `state`.
EventStore::Impl::Outcome EventStore::Impl::ProcessAppend(AppendRequest& req, BatchState* state) {
  if (auto replay = ReplayIdempotent(req, *state)) return *std::move(replay);
  if (Status st = CheckExpected(req.expected, *state); !st.ok()) return {st, false};
  // Every id the events create must be new: the fold refuses an id used
  // twice, so the writer refuses it first (docs/DECISIONS.md, "A total
  // projection").
  std::unordered_set<std::string> created;
  if (Status st = CheckNewIds(req.events, state->ids, &created); !st.ok()) return {st, false};
  // The seqs these events will take: nothing of this append is staged yet.
  if (Status st = SealPersonal(req.events, state->head.seq + 1); !st.ok()) return {st, false};
  auto versions = AssignVersions(req.events, state);
  if (!versions.ok()) return {versions.status(), false};
  AppendResult result = StageEvents(req, *versions, state);
  state->ids.merge(created);
  if (!req.idempotency_key.empty()) {
    IdempotencyRecord record{req.fingerprint, result};
    state->wb.Put(idempotency_, req.idempotency_key, EncodeIdempotency(record));
    state->keys[req.idempotency_key] = record;
  }
  return {result, true};
}

// The answer to a retry: from an earlier append of this batch (valid only
// once the batch is durable) or from a live record in the log. nullopt
// when the key is new, unused, or its record has expired.
std::optional<EventStore::Impl::Outcome> EventStore::Impl::ReplayIdempotent(
    const AppendRequest& req, const BatchState& state) const {
  if (req.idempotency_key.empty()) return std::nullopt;
  if (auto it = state.keys.find(req.idempotency_key); it != state.keys.end()) {
    return Outcome{AnswerIdempotent(it->second, req.fingerprint), true};
  }
  auto record = LiveIdempotencyRecord(req.idempotency_key);
  if (!record.ok()) return Outcome{record.status(), false};
  if (!*record) return std::nullopt;  // an expired record is a new request's to overwrite
  return Outcome{AnswerIdempotent(**record, req.fingerprint), false};
}

Status EventStore::Impl::CheckExpected(const std::vector<ExpectedVersion>& expected,
                                       const BatchState& state) {
  for (const auto& exp : expected) {
    OKR_ASSIGN_OR_RETURN(uint64_t current, CurrentVersion(exp.entity, state.overlay));
    if (current != exp.version) {
      return Status::VersionMismatch(exp.entity + " is at version " + std::to_string(current) +
                                         ", not " + std::to_string(exp.version),
                                     "version");
    }
  }
  return Status::Ok();
}

// Seals each draft's personal texts (EventDraft::SetPersonal) under their
// subjects' keys, bound to the seq the event will take: `first_seq` for
// the first draft, then one more each. Creates a subject's key when it has
// none; kConflict when one was erased. Without a key ring the texts go
// into the bodies as they are. Rewrites the sealed lists whole, so an
// append processed again seals again.
Status EventStore::Impl::SealPersonal(std::vector<EventDraft>& drafts, uint64_t first_seq) const {
  KeyRing* ring = options_.key_ring;
  if (ring != nullptr) {  // every key the append needs, made in one synced write
    std::vector<std::string_view> subjects;
    for (const auto& draft : drafts) {
      for (const auto& p : draft.personal()) subjects.push_back(p.subject);
    }
    if (!subjects.empty()) OKR_RETURN_IF_ERROR(ring->Prepare(subjects));
  }
  for (size_t k = 0; k < drafts.size(); ++k) {
    const auto& personal = drafts[k].personal();
    if (personal.empty()) continue;
    auto ev = drafts[k].event();
    if (ring == nullptr) {
      for (const auto& p : personal) SetBodyText(ev, p.field, p.text);
      continue;
    }
    auto list = ev.initSealed(static_cast<unsigned>(personal.size()));
    for (size_t i = 0; i < personal.size(); ++i) {
      const auto& p = personal[i];
      auto entry = list[static_cast<unsigned>(i)];
      entry.setField(p.field);
      entry.setSubject(p.subject);
      auto box = entry.initBox(static_cast<unsigned>(KeyRing::BoxBytes(p.text.size())));
      OKR_RETURN_IF_ERROR(ring->Seal(p.subject, first_seq + k, p.field, p.text, box));
    }
  }
  return Status::Ok();
}

// The version of each draft's event, in order, and the batch's overlay
// moved past them. The versions go into a local map first, so a failed
// lookup leaves the overlay as it was.
Result<std::vector<uint64_t>> EventStore::Impl::AssignVersions(
    const std::vector<EventDraft>& drafts, BatchState* state) {
  std::unordered_map<std::string, uint64_t> assigned;
  std::vector<uint64_t> versions;
  versions.reserve(drafts.size());
  for (const auto& draft : drafts) {
    uint64_t current = 0;
    if (auto it = assigned.find(draft.entity()); it != assigned.end()) {
      current = it->second;
    } else {
      OKR_ASSIGN_OR_RETURN(current, CurrentVersion(draft.entity(), state->overlay));
    }
    assigned[draft.entity()] = current + 1;
    versions.push_back(current + 1);
  }
  for (auto& [entity, version] : assigned) {
    assert(version > 0);
    state->overlay[entity] = version;
  }
  assert(versions.size() == drafts.size());
  return versions;
}

// Fills in the store's fields of each event (seq, recordedAt, version,
// idempotency key, prevHash) and puts it into the batch (PutEvent), moving
// the batch's head and frontier past it.
AppendResult EventStore::Impl::StageEvents(AppendRequest& req,
                                           const std::vector<uint64_t>& versions,
                                           BatchState* state) {
  assert(versions.size() == req.events.size() && !req.events.empty());
  Head& head = state->head;
  AppendResult result;
  result.first_seq = head.seq + 1;
  for (size_t k = 0; k < req.events.size(); ++k) {
    EventDraft& draft = req.events[k];
    auto ev = draft.event();
    head.seq += 1;
    head.recorded_at_us = std::max(options_.clock_us(), head.recorded_at_us);
    ev.setSeq(head.seq);
    ev.setRecordedAt(head.recorded_at_us);
    // Set a pointer field only when it changes: Cap'n Proto zeroes a
    // replaced object but keeps its words in the message, and a null
    // Text reads as "" (docs/FORMAT.md, "Worked example").
    auto entity = ev.asReader().getEntity();
    if (std::string_view(entity.begin(), entity.size()) != draft.entity()) {
      ev.setEntity(draft.entity());
    }
    ev.setVersion(versions[k]);
    if (!req.idempotency_key.empty()) {
      ev.setIdempotencyKey(req.idempotency_key);
    } else if (ev.hasIdempotencyKey()) {
      ev.disownIdempotencyKey();  // null: reads as ""
    }
    auto prev = ev.getPrevHash();
    if (prev.size() != format::kHashSize) prev = ev.initPrevHash(format::kHashSize);
    assert(prev.size() == head.hash.size());
    std::memcpy(prev.begin(), head.hash.data(), format::kHashSize);
    std::string bytes = EncodeMessage(draft.message());
    head.hash = Sha256(bytes);
    const Hash leaf = merkle::LeafHash(bytes);
    AddIndexPuts(format::SeqKey(head.seq), draft.entity(), versions[k], CreatedId(ev.asReader()),
                 &state->index_puts);
    PutEvent(head.seq, std::move(bytes), leaf, state);
  }
  result.last_seq = head.seq;
  assert(state->frontier.size() == head.seq);
  assert(result.last_seq - result.first_seq + 1 == req.events.size() && "seqs are dense");
  return result;
}

// Puts one encoded event and the tree nodes its leaf hash completes into
// the batch (its index entries and the head are the caller's).
void EventStore::Impl::PutEvent(uint64_t seq, std::string bytes, const Hash& leaf,
                                BatchState* state) {
  state->wb.Put(events_, format::SeqKey(seq), bytes);
  state->completed.clear();
  state->frontier.Append(leaf, &state->completed);
  PutNodes(&state->wb, state->completed);
  state->events.push_back({seq, std::move(bytes)});
}

void AddIndexPuts(std::string seq_key, std::string_view entity, uint64_t version,
                  std::string_view created_id, std::vector<IndexPut>* puts) {
  puts->push_back({format::StreamKey(entity, version), seq_key, false});
  if (!created_id.empty()) puts->push_back({std::string(created_id), std::move(seq_key), true});
}

bool IndexPut::operator<(const IndexPut& other) const {
  return std::tie(ids, key) < std::tie(other.ids, other.key);
}

// The batch's streams and ids entries, each column family's in key order:
// a memtable inserts a key from where it inserted the one before, so keys
// in order cost it a short search each, where keys in the order the
// events name them (any entity, any id) cost a search from the top. A
// replica's append brings its own in order (PrepareStored), so a batch of
// one such append is only checked.
void EventStore::Impl::PutIndexEntries(BatchState* state) {
  auto& puts = state->index_puts;
  if (!std::is_sorted(puts.begin(), puts.end())) std::sort(puts.begin(), puts.end());
  for (const IndexPut& p : puts) state->wb.Put(p.ids ? ids_ : streams_, p.key, p.seq_key);
  puts.clear();
}

// Writes the batch with the new head record in one synced write; only
// once it is durable does the rest of the store (head, versions, prune
// position, tree frontier) move on. On failure nothing is known to be durable: the
// overlay is forgotten and the old head kept.
Status EventStore::Impl::CommitBatch(BatchState* state, const std::vector<Outcome>& outcomes) {
  state->head.root = state->frontier.Root();
  const Head& head = state->head;
  assert(head.seq > writer_head_.seq && head.recorded_at_us >= writer_head_.recorded_at_us);
  PutIndexEntries(state);
  // Expired idempotency records go with the batch.
  uint64_t pruned = PruneIdempotency(head.recorded_at_us, state->keys, &state->wb);
  state->wb.Put(meta_, format::kHeadKey,
                format::EncodeHead(head.seq, head.hash, head.recorded_at_us));
  state->wb.Put(meta_, format::kIdsThroughKey, format::SeqKey(head.seq));
  state->wb.Put(meta_, format::kTreeThroughKey, format::SeqKey(head.seq));
  std::unique_lock<std::mutex> commit(commit_mu_);
  const bool checkpoint = CheckpointDue(head);
  if (checkpoint) state->wb.Put(meta_, format::kCheckpointKey, CheckpointNote(head));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  auto started = std::chrono::steady_clock::now();
  // A bulk copy (a replica catching up) goes in as table files: through
  // the memtables, its keys cost a skip-list insert each, and the memtables
  // a flush later (docs/DECISIONS.md, "A replica's catch-up is ingested").
  // Not a primary's batch, however large: an ingestion first flushes the
  // memtables it overlaps, and the appends waiting would wait for that.
  const bool bulk_copy =
      state->events.size() >= kIngestAtEvents && state->copied == state->events.size();
  DeferCompactions(bulk_copy);
  Status written =
      bulk_copy ? IngestBatch(state->wb, head.seq) : FromRocks(db_->Write(wo, &state->wb));
  if (options_.on_batch) {
    ReportBatch(*state, outcomes,
                std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - started)
                    .count(),
                written);
  }
  if (!written.ok()) return Status::IOError("append not durable: " + written.message());
  if (checkpoint) CheckpointStored(head);
  // A replica erases the keys its copied erasures name, as the primary
  // did; one that fails is erased again when the key store next opens.
  if (options_.key_ring != nullptr) {
    for (const std::string& subject : state->erased) (void)options_.key_ring->Erase(subject);
  }
  pruned_through_ = pruned;
  frontier_ = std::move(state->frontier);
  recent_ids_.push_back({writer_head_.seq, head.seq, std::move(state->ids)});
  if (recent_ids_.size() > kRecentBatches) recent_ids_.pop_front();
  // Moved, not copied: a bulk append brings tens of thousands of entities.
  while (!state->overlay.empty()) {
    auto moved = versions_.insert(state->overlay.extract(state->overlay.begin()));
    if (!moved.inserted) moved.position->second = moved.node.mapped();
  }
  writer_head_ = head;
  {
    std::lock_guard<std::mutex> lock(head_mu_);
    head_ = head;
  }
  head_cv_.notify_all();
  commit.unlock();
  assert(state->events.size() == head.seq - state->events.front().seq + 1);  // dense, to the head
  std::lock_guard<std::mutex> lock(listener_mu_);
  if (listener_) listener_(state->events);
  return Status::Ok();
}

void EventStore::Impl::SetDurableListener(DurableListener listener) {
  std::lock_guard<std::mutex> lock(listener_mu_);
  listener_ = std::move(listener);
}

// Tells options_.on_batch about the write: called before the writer's head
// moves, so `writer_head_` is still the head before the batch.
void EventStore::Impl::ReportBatch(const BatchState& state, const std::vector<Outcome>& outcomes,
                                   int64_t write_us, const Status& written) const {
  assert(options_.on_batch);
  size_t appends = 0;
  for (const auto& o : outcomes) appends += o.needs_write && o.result.ok() && !o.result->replayed;
  options_.on_batch(appends, state.head.seq - writer_head_.seq,
                    written.ok() ? state.head.seq : writer_head_.seq, write_us, written);
}

// Writer thread only: the entity's version as this batch sees it — after
// the batch's own appends (`overlay`), else as committed (cached).
Result<uint64_t> EventStore::Impl::CurrentVersion(
    const std::string& entity, const std::unordered_map<std::string, uint64_t>& overlay) {
  if (auto it = overlay.find(entity); it != overlay.end()) return it->second;
  if (auto it = versions_.find(entity); it != versions_.end()) return it->second;
  auto stored = StoredVersion(entity, rocksdb::ReadOptions());
  if (stored.ok()) versions_.emplace(entity, *stored);
  return stored;
}

}  // namespace okr
