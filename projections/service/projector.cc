#include "projections/service/projector.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <iterator>
#include <mutex>

#include <kj/exception.h>

#include "eventstore/base/clock.h"
#include "eventstore/base/thread_name.h"
#include "eventstore/read_ahead.h"
#include "projections/service/snapshot.h"

namespace okr {

namespace {

// Folds one stored event into `p`. A fold failure is kCorruption naming
// the seq; the projection then holds the state before it, unless *damaged
// is set (a malformed field threw half-way through Apply): then it must be
// rebuilt.
Status FoldEvent(EventScratch* scratch, uint64_t seq, std::string_view bytes, Projection* p,
                 bool* damaged) {
  // Framing only: Apply reads each field once, and a malformed one throws
  // here, where it becomes a corruption status, instead of being walked
  // twice.
  auto event = scratch->Read(bytes, DecodeCheck::kFramingOnly);
  if (!event.ok()) {
    return Status::Corruption("seq " + std::to_string(seq) + ": " + event.status().message());
  }
  try {
    return p->Apply(*event);
  } catch (const kj::Exception& e) {
    if (damaged != nullptr) *damaged = true;
    return Status::Corruption("seq " + std::to_string(seq) +
                              ": undecodable event: " + e.getDescription().cStr());
  }
}

// Replays of at least this many events read ahead (eventstore/read_ahead.h).
constexpr uint64_t kReadAheadFromEvents = 16384;

// Folds events (p->seq(), up_to] of `store` into `p`, as FoldEvent does.
Status Replay(const EventStore& store, uint64_t up_to, Projection* p, bool* damaged = nullptr) {
  if (up_to <= p->seq()) return Status::Ok();
  Status failed = Status::Ok();
  EventScratch scratch;
  const uint64_t from = p->seq() + 1;
  auto fold = [&](uint64_t seq, std::string_view bytes) {
    failed = FoldEvent(&scratch, seq, bytes, p, damaged);
    return failed.ok();
  };
  // A long replay (a start without a snapshot, a rebuild) reads the log
  // on a second thread while this one folds; a short one is not worth it.
  Status s =
      up_to - from < kReadAheadFromEvents
          ? store.Scan(from, up_to, fold)
          : ReadAhead([&](const EventSink& sink) { return store.Scan(from, up_to, sink); }, fold);
  OKR_RETURN_IF_ERROR(s);
  OKR_RETURN_IF_ERROR(failed);
  if (p->seq() != up_to) {
    return Status::Corruption("log ends at seq " + std::to_string(p->seq()) + ", expected " +
                              std::to_string(up_to));
  }
  return Status::Ok();
}

}  // namespace

Projector::Projector(EventStore* store, ProjectorOptions options)
    : store_(store), options_(std::move(options)) {
  if (!options_.clock_us) options_.clock_us = SystemClockUs;
}

Result<std::unique_ptr<Projector>> Projector::Open(EventStore* store, ProjectorOptions options) {
  std::unique_ptr<Projector> p(new Projector(store, std::move(options)));
  uint64_t head = store->head().seq;
  if (p->options_.load_snapshot) {
    if (auto snap = LoadSnapshot(*store, head)) p->projection_ = std::move(*snap);
  }
  // Snapshots are spaced from the one this start stands on: the one loaded
  // (none, if the newest stored was refused), else the newest stored.
  const uint64_t stands_on =
      p->options_.load_snapshot ? p->projection_.seq() : std::min(store->NewestSnapshotSeq(), head);
  // A log the projection cannot fold to its end is still served: reads
  // answer the last good state and health says why (SPEC §6, "stuck").
  // Only a log that cannot be read at all refuses.
  if (Status s = p->FoldLocked(head); !s.ok() && !p->stuck()) return s;
  const uint64_t every = p->options_.snapshot_every_events;
  if (every > 0) {
    // Set before the writer's thread can fold (and owe) anything. A
    // snapshot owed when the last process stopped (killed before its
    // snapshot thread got to it, or a log restored without one) is owed
    // again, so start-up stays a snapshot load plus a short tail.
    std::lock_guard<std::mutex> lock(p->snapshot_mu_);
    p->snapshot_base_ = stands_on;
    if (!p->is_stuck_ && head - stands_on >= p->SnapshotSpacing(head)) {
      p->snapshot_owed_ = head;
      p->snapshot_base_ = head;
    }
  }
  // From here every durable batch is folded by the writer's thread before
  // its appends are answered; what was appended since `head` is folded
  // from the log by the first batch that finds the gap.
  store->SetDurableListener(
      [raw = p.get()](std::vector<StoredEvent>& events) { raw->FoldDurable(events); });
  p->follower_ = NamedThread("okr:fold", [raw = p.get()] { raw->FollowLoop(); });
  if (every > 0) {
    p->snapshotter_ = NamedThread("okr:snapshot", [raw = p.get()] { raw->SnapshotLoop(); });
  }
  return p;
}

Projector::~Projector() {
  store_->SetDurableListener({});  // returns once a fold under way is done
  {
    // Under snapshot_mu_, so the snapshot thread cannot miss the wake-up.
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    stopping_ = true;
  }
  snapshot_cv_.notify_all();
  follow_cv_.notify_all();
  if (follower_.joinable()) follower_.join();
  if (snapshotter_.joinable()) snapshotter_.join();
}

void Projector::FollowLoop() {
  std::unique_lock<std::mutex> lock(follow_mu_);
  while (!stopping_) {
    // Woken when the writer's thread left a batch to it; the timeout only
    // bounds how long an event the listener never saw could wait.
    follow_cv_.wait_for(lock, std::chrono::milliseconds(100),
                        [&] { return stopping_ || follow_owed_; });
    follow_owed_ = false;
    // The batches handed over, one at a time: while one is folded, the
    // writer's thread may hand over kMostHandedBatches more.
    while (!handed_.empty() && !stopping_) {
      std::vector<StoredEvent> events = std::move(handed_.front());
      handed_.pop_front();
      lock.unlock();
      if (!is_stuck_) {
        std::unique_lock exclusive(mu_);
        FoldEventsLocked(events);
        MaybeSnapshot(projection_.seq());  // owed before the fold is visible
      }
      events = {};  // the bytes freed before follow_mu_ is taken again
      { std::lock_guard<std::mutex> projected(projected_mu_); }
      projected_cv_.notify_all();
      lock.lock();
    }
    lock.unlock();
    uint64_t head = store_->head().seq;
    if (head > seq() && !is_stuck_) {
      // A fold failure marks the projection stuck (CatchUpLocked); it then
      // stays at its last good state and this loop only idles.
      (void)CatchUpLocked(head);
      { std::lock_guard<std::mutex> projected(projected_mu_); }
      projected_cv_.notify_all();
    }
    lock.lock();
  }
}

void Projector::LeaveToFollower(std::vector<StoredEvent> handed) {
  {
    std::lock_guard<std::mutex> follow(follow_mu_);
    follow_owed_ = true;
    if (!handed.empty()) handed_.push_back(std::move(handed));
  }
  follow_cv_.notify_one();
}

void Projector::FoldDurable(std::vector<StoredEvent>& events) {
  assert(!events.empty());  // a batch stores at least one event
  // A bulk batch (a replica catching up; on a primary only many bulk
  // appends at once make one) is folded beside the writer, which
  // meanwhile stores the next; its appends, if any wait, wait for that.
  if (events.size() >= kFoldBesideWriterAtEvents) {
    last_bulk_batch_.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                           std::memory_order_relaxed);
    std::vector<StoredEvent> handed;
    {
      std::lock_guard<std::mutex> follow(follow_mu_);
      if (handed_.size() < kMostHandedBatches) {
        handed.assign(std::make_move_iterator(events.begin()),
                      std::make_move_iterator(events.end()));
      }
    }
    return LeaveToFollower(std::move(handed));
  }
  {
    // Readers hold mu_ only briefly, but one may be waiting for this very
    // batch (an append made under Read); the writer then leaves the batch
    // to the follower rather than wait for it.
    std::unique_lock lock(mu_, kFoldWaitForReaders);
    if (!lock.owns_lock()) {
      batches_left_to_follower_.fetch_add(1, std::memory_order_relaxed);
      return LeaveToFollower();
    }
    FoldEventsLocked(events);
    // Owed before the fold is visible, as in CatchUpLocked.
    MaybeSnapshot(projection_.seq());
  }
  { std::lock_guard<std::mutex> lock(projected_mu_); }
  projected_cv_.notify_all();
}

void Projector::FoldEventsLocked(const std::vector<StoredEvent>& events) {
  if (is_stuck_ || events.empty() || events.back().seq <= projection_.seq()) return;
  // Events appended before this projector listened (or a batch left to the
  // log before these) come from the log.
  const uint64_t before = projection_.seq();
  if (events.front().seq > before + 1 && !FoldLocked(events.front().seq - 1).ok()) return;
  EventScratch scratch;
  for (const StoredEvent& e : events) {
    if (e.seq <= projection_.seq()) continue;
    assert(e.seq == projection_.seq() + 1);  // the batch is dense and follows the projection
    bool damaged = false;
    if (Status s = FoldEvent(&scratch, e.seq, e.bytes, &projection_, &damaged); !s.ok()) {
      if (s.code() == Status::Code::kCorruption) (void)FoldFailed(s, damaged);
      break;  // otherwise a waiting writer folds from the log (WaitProjected)
    }
  }
}

Status Projector::WaitProjected(uint64_t target) {
  {
    std::unique_lock<std::mutex> lock(projected_mu_);
    if (projected_cv_.wait_for(lock, std::chrono::seconds(2),
                               [&] { return is_stuck_ || seq() >= target; })) {
      if (is_stuck_) return StuckStatus();
      return Status::Ok();
    }
  }
  if (Status s = CatchUpLocked(target); !s.ok()) return is_stuck_ ? StuckStatus() : s;
  return Status::Ok();
}

Status Projector::FoldLocked(uint64_t up_to) {
  bool damaged = false;
  Status s = Replay(*store_, up_to, &projection_, &damaged);
  assert(!s.ok() || projection_.seq() >= up_to);  // Replay is Ok only at its end
  if (s.code() != Status::Code::kCorruption) return s;
  return FoldFailed(s, damaged);
}

Status Projector::FoldFailed(const Status& s, bool damaged) {
  assert(s.code() == Status::Code::kCorruption || !damaged);  // a throw is a corruption
  assert(!s.ok());
  uint64_t good = projection_.seq();
  if (damaged) {
    // Apply threw half-way: rebuild the state after the last good event.
    auto rebuilt = Rebuild(*store_, good, options_.load_snapshot);
    if (rebuilt.ok()) {
      projection_ = std::move(rebuilt.value());
      ++generation_;  // ReadPaused's readers hold pointers into the old one
    }
  }
  MarkStuck(good + 1, s);
  return StuckStatus();
}

std::optional<StuckAt> Projector::stuck() const {
  std::lock_guard<std::mutex> lock(stuck_mu_);
  return stuck_;
}

Status Projector::StuckStatus() const {
  auto at = stuck();
  if (!at) return Status::Ok();
  return Status::IOError("okrd is stuck: event " + std::to_string(at->seq) +
                         " could not be folded (" + at->reason +
                         "); reads answer the state before it, writes are refused");
}

void Projector::MarkStuck(uint64_t seq, const Status& why) {
  assert(seq > 0 && !why.ok());  // the first seq that could not be folded, and why
  {
    std::lock_guard<std::mutex> lock(stuck_mu_);
    if (stuck_) return;
    stuck_ = StuckAt{seq, why.message()};
  }
  is_stuck_ = true;
  if (options_.on_stuck) options_.on_stuck(seq, why);
  { std::lock_guard<std::mutex> lock(projected_mu_); }
  projected_cv_.notify_all();
}

std::optional<Projection> Projector::LoadSnapshot(const EventStore& store, uint64_t up_to) {
  // Decoded while it is read, a part at a time.
  SnapshotDecoder decoder;
  auto seq =
      store.ReadSnapshot(up_to, [&decoder](std::string_view part) { return decoder.Add(part); });
  Hash hash{};
  auto projection = decoder.Finish(&hash);
  if (!seq.ok() || !projection.ok() || projection->seq() != *seq || *seq == 0) return std::nullopt;
  auto event = store.Read(*seq - 1, 1);
  if (!event.ok() || event->size() != 1 || Sha256(event->front().bytes) != hash) {
    return std::nullopt;
  }
  return std::move(projection.value());
}

Result<Projection> Projector::Rebuild(const EventStore& store, uint64_t up_to, bool use_snapshot) {
  Projection p;
  if (use_snapshot) {
    if (auto snap = LoadSnapshot(store, up_to)) p = std::move(*snap);
  }
  OKR_RETURN_IF_ERROR(Replay(store, up_to, &p));
  return p;
}

uint64_t Projector::seq() const {
  std::shared_lock lock(mu_);
  return projection_.seq();
}

Status Projector::CatchUp() { return CatchUpLocked(store_->head().seq); }

Status Projector::CatchUpLocked(uint64_t up_to) {
  uint64_t before, after;
  {
    std::unique_lock lock(mu_);
    before = projection_.seq();
    if (up_to <= before || is_stuck_) return StuckStatus();
    OKR_RETURN_IF_ERROR(FoldLocked(up_to));
    after = projection_.seq();
    assert(after >= up_to && after > before);  // FoldLocked was Ok
    // Owed before the fold is visible, so a caller that sees the new seq
    // (WaitForSnapshots after a write) also sees the snapshot owed. The
    // snapshot thread never takes mu_ while it holds snapshot_mu_.
    MaybeSnapshot(after);
  }
  return Status::Ok();
}

void Projector::MaybeSnapshot(uint64_t after) {
  if (options_.snapshot_every_events == 0) return;
  {
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    // A rebuilt projection (FoldFailed) may stand before the last owed.
    if (after <= snapshot_base_ || after - snapshot_base_ < SnapshotSpacing(after)) return;
    snapshot_base_ = after;
    snapshot_owed_ = std::max(snapshot_owed_, after);
  }
  snapshot_cv_.notify_all();
}

void Projector::WaitForSnapshots() {
  std::unique_lock<std::mutex> lock(snapshot_mu_);
  snapshot_cv_.wait(lock, [&] { return stopping_ || (snapshot_owed_ == 0 && !snapshot_busy_); });
}

void Projector::SnapshotLoop() {
  // At the process's own priority: the fold waits on locks this thread
  // takes (the text interner's, RocksDB's write queue), so a lower one
  // would stall every request behind a preempted snapshot. Spacing by time
  // (below) is what bounds its share of the CPU.
  std::chrono::steady_clock::duration last{0};
  std::unique_lock<std::mutex> lock(snapshot_mu_);
  while (!stopping_) {
    snapshot_cv_.wait(lock, [&] { return stopping_ || snapshot_owed_ != 0; });
    // Spaced by time as well as by count: what was owed meanwhile is
    // written once, at the seq reached by then.
    snapshot_cv_.wait_for(lock, last * kSnapshotIdleFactor, [&] { return stopping_.load(); });
    // And not in the middle of a bulk copy: at its end, at the seq reached.
    for (auto quiet = BulkQuietFor(); !stopping_ && quiet > decltype(quiet)::zero();
         quiet = BulkQuietFor()) {
      snapshot_cv_.wait_for(lock, quiet, [&] { return stopping_.load(); });
    }
    if (stopping_) break;
    snapshot_owed_ = 0;
    snapshot_busy_ = true;
    lock.unlock();
    auto started = std::chrono::steady_clock::now();
    const bool stored = WriteSnapshot(seq());
    last = std::chrono::steady_clock::now() - started;
    if (options_.after_snapshot) options_.after_snapshot();
    lock.lock();
    // Not stored: the spacing counts again from the newest one that was,
    // so the next fold past it owes one (no sooner than the idle wait).
    if (!stored) snapshot_base_ = std::min(snapshot_base_, store_->NewestSnapshotSeq());
    snapshot_busy_ = false;
    snapshot_cv_.notify_all();
  }
  snapshot_busy_ = false;
  snapshot_cv_.notify_all();
}

std::chrono::steady_clock::duration Projector::BulkQuietFor() const {
  const std::chrono::steady_clock::time_point last{
      std::chrono::steady_clock::duration(last_bulk_batch_.load(std::memory_order_relaxed))};
  return std::max(std::chrono::steady_clock::duration::zero(),
                  last + kSnapshotAfterBulkQuiet - std::chrono::steady_clock::now());
}

bool Projector::WriteSnapshot(uint64_t seq) {
  assert(seq > 0);  // a snapshot is owed only once the projection has moved
  // Rebuilt from the log, which the live projection is a fold of: the same
  // state (the determinism test holds the two equal), and no lock shared
  // with the writers while it is encoded. A failure costs only start-up
  // time; the log is untouched.
  auto projection = Rebuild(*store_, seq, options_.load_snapshot);
  auto last = store_->Read(seq - 1, 1);
  if (!projection.ok() || !last.ok() || last->size() != 1) return false;
  return store_->PutSnapshot(seq, SnapshotCodec::Encode(*projection, Sha256(last->front().bytes)))
      .ok();
}

void Projector::WriteGate::Lock(bool exclusive) {
  std::unique_lock<std::mutex> lock(mu_);
  if (exclusive) {
    ++exclusive_waiting_;
    cv_.wait(lock, [&] { return !exclusive_ && shared_ == 0; });
    --exclusive_waiting_;
    exclusive_ = true;
  } else {
    cv_.wait(lock, [&] { return !exclusive_ && exclusive_waiting_ == 0; });
    ++shared_;
  }
}

void Projector::WriteGate::Unlock(bool exclusive) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (exclusive) {
      assert(exclusive_ && shared_ == 0);
      exclusive_ = false;
    } else {
      assert(shared_ > 0 && !exclusive_);
      --shared_;
    }
  }
  cv_.notify_all();
}

namespace {

// Adds an expectation of `id`'s current version unless one is there.
void ExpectVersion(const Projection& p, const std::string& id, std::vector<ExpectedVersion>* out) {
  for (const auto& e : *out) {
    if (e.entity == id) return;
  }
  out->push_back({id, p.Version(id)});
}

}  // namespace

Result<WriteResult> Projector::Answer(const std::string& entity, uint64_t last_seq, bool replayed,
                                      bool changed) {
  OKR_RETURN_IF_ERROR(WaitProjected(last_seq));
  std::shared_lock lock(mu_);
  assert(projection_.seq() >= last_seq);  // WaitProjected returned Ok
  WriteResult r{entity, 0, last_seq, replayed, changed};
  if (const auto* seqs = projection_.EventSeqs(entity)) {
    r.version = static_cast<uint64_t>(std::upper_bound(seqs->begin(), seqs->end(), last_seq) -
                                      seqs->begin());
  }
  return r;
}

Result<std::optional<WriteResult>> Projector::ReplayedAnswer(const WriteRequest& request) {
  if (request.idempotency_key.empty()) return std::optional<WriteResult>();
  OKR_ASSIGN_OR_RETURN(auto seen,
                       store_->FindIdempotent(request.idempotency_key, request.fingerprint));
  if (!seen.has_value()) return std::optional<WriteResult>();
  assert(seen->last_seq > 0);  // the store keeps keys of written events only
  // The answer names the subject of the write's first event.
  auto first = store_->Read(seen->last_seq - 1, 1);
  if (!first.ok() || first->empty()) return Status::Corruption("idempotent answer missing");
  OKR_ASSIGN_OR_RETURN(auto decoded, DecodedEvent::Decode(first->front().bytes));
  OKR_ASSIGN_OR_RETURN(WriteResult r,
                       Answer(decoded->event().getEntity().cStr(), seen->last_seq, true, true));
  return std::optional<WriteResult>(std::move(r));
}

Result<Projector::Attempt> Projector::DecideOnce(const WriteRequest& request) {
  std::shared_lock lock(mu_);
  std::vector<std::string> read;
  if (request.authorize)
    OKR_RETURN_IF_ERROR(request.authorize(projection_, request.command, &read));
  CommandContext ctx{request.actor, request.subject, request.reason, options_.clock_us()};
  OKR_ASSIGN_OR_RETURN(Decision decision, Decide(projection_, request.command, ctx));
  Attempt a;
  a.entity = decision.entity;
  if (request.if_match && projection_.Version(a.entity) != *request.if_match) {
    return Status::VersionMismatch(a.entity + " is at version " +
                                       std::to_string(projection_.Version(a.entity)) + ", not " +
                                       std::to_string(*request.if_match),
                                   "If-Match");
  }
  if (decision.events.empty()) {
    // Nothing changes: answer with the entity's own last event.
    const auto* seqs = projection_.EventSeqs(a.entity);
    a.unchanged_at = seqs && !seqs->empty() ? seqs->back() : projection_.seq();
    return a;
  }
  a.append.events = std::move(decision.events);
  a.append.expected = std::move(decision.expected);
  for (const std::string& id : read) ExpectVersion(projection_, id, &a.append.expected);
  auto subject = std::find_if(a.append.expected.begin(), a.append.expected.end(),
                              [&](const ExpectedVersion& e) { return e.entity == a.entity; });
  a.needs_turn = subject != a.append.expected.end();
  // The store re-checks If-Match atomically with the append.
  if (request.if_match && !a.needs_turn) a.append.expected.push_back({a.entity, *request.if_match});
  assert(!a.append.events.empty());
  return a;
}

Result<WriteResult> Projector::Write(const WriteRequest& request) {
  if (is_stuck_) return StuckStatus();
  OKR_ASSIGN_OR_RETURN(std::optional<WriteResult> replayed, ReplayedAnswer(request));
  if (replayed) return std::move(*replayed);
  // Held while a change of one entity's fields is decided and appended, so
  // concurrent changes of the same entity take turns instead of conflicting.
  std::unique_lock<std::mutex> turn;
  for (int attempt = 0; attempt < kMaxDecideAttempts; ++attempt) {
    // After kSharedDecideAttempts lost races the write holds the gate
    // alone: with the projection at the head and no other writer, its
    // expectations hold and the append cannot conflict.
    const bool alone = attempt >= kSharedDecideAttempts;
    WriteGate::Hold gate(&gate_, alone);
    if (alone) OKR_RETURN_IF_ERROR(WaitProjected(store_->head().seq));
    OKR_ASSIGN_OR_RETURN(Attempt a, DecideOnce(request));
    if (a.unchanged_at) {
      gate.Release();
      return Answer(a.entity, *a.unchanged_at, false, false);
    }
    if (a.needs_turn && !turn.owns_lock()) {
      // Take the entity's turn (never while holding the gate), then decide
      // again on the state as it is now.
      gate.Release();
      turn =
          std::unique_lock<std::mutex>(turns_[std::hash<std::string>{}(a.entity) % turns_.size()]);
      OKR_RETURN_IF_ERROR(WaitProjected(store_->head().seq));
      continue;
    }
    a.append.idempotency_key = request.idempotency_key;
    a.append.fingerprint = request.fingerprint;
    auto appended = store_->Append(std::move(a.append));
    gate.Release();
    if (appended.ok()) return Answer(a.entity, appended->last_seq, appended->replayed, true);
    // A log found damaged refuses writes (kCorruption): to a client okrd
    // is unavailable, as when stuck (SPEC §6), and the message says why.
    if (appended.status().code() == Status::Code::kCorruption) {
      return Status::IOError(appended.status().message());
    }
    if (appended.status().code() != Status::Code::kVersionMismatch) return appended.status();
    // Someone changed what we decided on, or took an id we create: catch
    // up and decide again.
    OKR_RETURN_IF_ERROR(WaitProjected(store_->head().seq));
  }
  // Unreachable while the gate works: a write alone at the head cannot
  // conflict. Kept so a bug cannot spin forever.
  return Status::IOError("the write could not be decided; try again");
}

}  // namespace okr
