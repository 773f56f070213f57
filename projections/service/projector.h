// Projector: the one write path and the live projection okrd serves.
//
//   Write:  idempotency check → decide against the current projection →
//           durable append with the versions decided against → answer.
//           The store's writer thread folds each durable batch into the
//           projection (from the bytes it just stored) before it answers
//           the batch's appends, so a write is woken once, with its events
//           visible. A concurrent change to any entity the decision read
//           makes the append conflict; the command is then decided again
//           on the newer state (bounded retries).
//   Read:   Read(fn) runs fn on the projection under a shared lock.
//   Follow: when the writer's thread cannot take the projection's lock
//           within kFoldWaitForReaders, or the batch is a bulk one, one
//           thread folds that batch instead (a bulk one from the events
//           the writer handed over, any other from the log) and wakes the
//           writers waiting for it.
//   Snapshot: another thread writes snapshots from its own rebuilt copy
//           of the projection, so encoding one never holds the live
//           projection's lock (writes would wait behind it).
//
// Thread-safe. Owns the projection; borrows the store, which must outlive it.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "eventstore/event_store.h"
#include "projections/domain/commands.h"
#include "projections/domain/projection.h"

namespace okr {

struct ProjectorOptions {
  // A snapshot is owed once the projection is this many events past the
  // last one owed, or a kSnapshotLogFraction-th of the log when that is
  // more (0: never write snapshots); it is written in the background, no
  // sooner than kSnapshotIdleFactor times the last one's duration after it.
  uint64_t snapshot_every_events = 10'000;
  bool load_snapshot = true;          // start from the newest snapshot
  std::function<int64_t()> clock_us;  // default: system clock
  // Called once, from the thread that found it, when a stored event cannot
  // be folded (the projection stops there; see Projector::stuck()). Must
  // be quick and must not call the projector.
  std::function<void(uint64_t seq, const Status& why)> on_stuck;
  // Called on the snapshot thread after each snapshot, once the state it
  // rebuilt for it is freed (okrd gives that memory back to the system).
  std::function<void()> after_snapshot;
};

// Where and why folding stopped: the first seq the projection could not
// fold. The projection keeps the state after seq - 1.
struct StuckAt {
  uint64_t seq = 0;
  std::string reason;
};

struct WriteRequest {
  Command command;
  std::string actor;
  std::string subject;  // the person the actor is: its texts are sealed under that key (SPEC §10)
  std::string reason;
  std::optional<uint64_t> if_match;  // the subject's version the writer saw
  std::string idempotency_key;       // empty: none; scoped by the caller
  Hash fingerprint{};                // identifies the request for that key
  // Checked against the same state the command is decided on. It adds to
  // `read` every entity whose state it relied on (an owner, the units
  // between it and the writer's scope); the append expects their versions,
  // so a change that would alter the verdict cannot land between the check
  // and the write (the command is then decided and checked again).
  std::function<Status(const Projection&, const Command&, std::vector<std::string>* read)>
      authorize;
};

struct WriteResult {
  std::string entity;     // the command's subject
  uint64_t version = 0;   // its version after the write
  uint64_t seq = 0;       // the write's last event (the entity's last event when nothing changed)
  bool replayed = false;  // an idempotent retry: nothing was written now
  bool changed = true;    // false: the command changed nothing, no event
};

// Attempts a write makes alongside other writers before it takes the
// write gate alone (then it cannot lose a race, so it always ends).
inline constexpr int kSharedDecideAttempts = 3;
// A bound that the gate makes unreachable, kept as a last guard.
inline constexpr int kMaxDecideAttempts = 16;
// How long the store's writer thread waits for the projection's lock to
// fold a batch it made durable before it leaves the batch to the follower
// (and goes on to the next batch): the fold itself takes microseconds.
inline constexpr std::chrono::milliseconds kFoldWaitForReaders{2};
// A durable batch of at least this many events (only a replica's copy of
// a page makes one) is folded by the follower while the writer's thread
// goes on to the next batch: from the events the writer hands over (their
// bytes moved, not copied), or from the log when more than
// kMostHandedBatches wait already.
inline constexpr size_t kFoldBesideWriterAtEvents = 8192;
inline constexpr size_t kMostHandedBatches = 2;
// After a snapshot that took d, the next one starts no sooner than this
// many d later: snapshots take at most a tenth of one core, however large
// the projection grows (at 1M events one takes seconds).
inline constexpr int kSnapshotIdleFactor = 9;
// A snapshot costs in proportion to the state, which grows with the log:
// spaced by at least this fraction of the log, its cost per event stays
// the same at any size, and a start-up replays at most about this
// fraction of the log after the snapshot it loads.
inline constexpr uint64_t kSnapshotLogFraction = 4;
// A snapshot owed while bulk batches come in (a replica catching up)
// waits until none has come for this long: one written mid-copy would
// rebuild and encode a state the copy leaves behind within seconds.
inline constexpr std::chrono::milliseconds kSnapshotAfterBulkQuiet{3000};

class Projector {
 public:
  // Loads the newest usable snapshot (if any) and replays the rest of the
  // log, then folds every batch the store makes durable (its durable
  // listener, which this projector owns while it lives).
  static Result<std::unique_ptr<Projector>> Open(EventStore* store, ProjectorOptions options = {});
  // Stops folding the log's new batches.
  ~Projector();

  // Errors: those of Decide(), kVersionMismatch when if_match does not match,
  // kInvalid for a reused Idempotency-Key, kIOError when the log cannot be
  // written or the projection is stuck. Without if_match, concurrent
  // writers never get kVersionMismatch: changes of one entity's fields take
  // turns, and a write that lost a race to an unrelated change is decided
  // again on the newer state — after kSharedDecideAttempts, with the write
  // gate to itself.
  Result<WriteResult> Write(const WriteRequest& request);

  // Runs `fn` with the projection under a shared lock; returns what it returns.
  template <typename Fn>
  auto Read(Fn&& fn) const {
    std::shared_lock lock(mu_);
    return fn(projection_);
  }

  // Thrown by a pause of ReadPaused when the projection was rebuilt while
  // it was let go (after a damaged event): no entity the reader held is
  // there any more, so its read must stop.
  struct ProjectionReplaced {};
  // Lets a long read go of the lock: pause(during) releases it, runs
  // `during` (a socket write, say) and takes it back.
  using Pause = std::function<void(const std::function<void()>& during)>;
  // Runs `fn(projection, pause)` under a shared lock, like Read, for reads
  // too long to hold it throughout. Entities keep their addresses while
  // the projection grows, so `fn` may keep pointers to them across a
  // pause, but must read their fields again after it (their histories may
  // have grown); `pause` throws ProjectionReplaced when even that is void.
  template <typename Fn>
  auto ReadPaused(Fn&& fn) const {
    std::shared_lock lock(mu_);
    const uint64_t generation = generation_;
    Pause pause = [&](const std::function<void()>& during) {
      lock.unlock();
      during();
      lock.lock();
      if (generation_ != generation) throw ProjectionReplaced{};
    };
    return fn(projection_, pause);
  }

  // Folds in every event the log has beyond the projection.
  Status CatchUp();
  // Returns once no snapshot is owed or being written: the snapshots the
  // projection's seq so far calls for are stored (or failed, which costs
  // only start-up time).
  void WaitForSnapshots();
  uint64_t seq() const;
  // Set once a stored event could not be folded; nullopt while healthy.
  // Reads keep answering the last good state; writes answer kIOError.
  std::optional<StuckAt> stuck() const;
  bool is_stuck() const { return is_stuck_; }  // lock-free, for every answer
  // Durable batches the writer's thread left to the follower since Open
  // (readers held the lock beyond kFoldWaitForReaders): each cost its
  // writers a thread hand-off and a re-read of the log.
  uint64_t batches_left_to_follower() const { return batches_left_to_follower_; }
  // The wall clock writes are judged by.
  int64_t NowUs() const { return options_.clock_us(); }

  // The projection after exactly the events up to `up_to`: from the newest
  // snapshot at or before it (when use_snapshot) plus the tail, else by a
  // full replay. Used to check the live projection and snapshots agree.
  static Result<Projection> Rebuild(const EventStore& store, uint64_t up_to, bool use_snapshot);
  // The newest snapshot at or before `up_to` that belongs to this log (the
  // head hash it carries is the hash of the stored event at its seq),
  // decoded as its parts are read; nullopt when none is usable.
  static std::optional<Projection> LoadSnapshot(const EventStore& store, uint64_t up_to);

 private:
  // Many writers decide and append at once (shared); one that keeps losing
  // races holds it alone (exclusive). A waiting exclusive holder lets no
  // new shared holder in, so it cannot be starved.
  class WriteGate {
   public:
    void Lock(bool exclusive);
    void Unlock(bool exclusive);

    // Holds the gate from construction until Release() or destruction,
    // so every way out of a write attempt lets go of it.
    class Hold {
     public:
      Hold(WriteGate* gate, bool exclusive) : gate_(gate), exclusive_(exclusive) {
        gate_->Lock(exclusive_);
      }
      ~Hold() { Release(); }
      Hold(const Hold&) = delete;
      Hold& operator=(const Hold&) = delete;
      void Release() {
        if (held_) gate_->Unlock(exclusive_);
        held_ = false;
      }

     private:
      WriteGate* gate_;
      bool exclusive_;
      bool held_ = true;
    };

   private:
    std::mutex mu_;
    std::condition_variable cv_;
    int shared_ = 0;
    int exclusive_waiting_ = 0;
    bool exclusive_ = false;
  };

  // One decision of a write on the projection as it is now, under a
  // shared lock: what to append, or that nothing changes.
  struct Attempt {
    std::string entity;  // the command's subject
    AppendRequest append;
    bool needs_turn = false;               // the append expects the subject's own version
    std::optional<uint64_t> unchanged_at;  // set: nothing to append; the subject's last event
  };
  Result<Attempt> DecideOnce(const WriteRequest& request);
  // The answer to a write once `last_seq` is folded in: the entity's
  // version as of that seq.
  Result<WriteResult> Answer(const std::string& entity, uint64_t last_seq, bool replayed,
                             bool changed);
  // The answer to a retry of an idempotent write already in the log;
  // nullopt when the request's key is new (or it has none).
  Result<std::optional<WriteResult>> ReplayedAnswer(const WriteRequest& request);

  Projector(EventStore* store, ProjectorOptions options);
  Status CatchUpLocked(uint64_t up_to);
  // Folds the log up to `up_to` into projection_; the caller holds mu_
  // exclusively (or is Open, alone). A fold failure marks the projector
  // stuck and answers StuckStatus().
  Status FoldLocked(uint64_t up_to);
  // After fold failure `s` (a corruption) under mu_: rebuilds the state
  // before the failed event when Apply threw half-way (`damaged`), marks
  // the projector stuck and answers StuckStatus().
  Status FoldFailed(const Status& s, bool damaged);
  // The store's durable listener: folds a batch the writer thread has just
  // made durable, under mu_, then wakes writers waiting in WaitProjected.
  void FoldDurable(std::vector<StoredEvent>& events);
  // Folds `events` (dense, from at most the projection's next seq on)
  // under mu_, held exclusively by the caller; stops at the first that
  // fails (a corruption marks the projector stuck).
  void FoldEventsLocked(const std::vector<StoredEvent>& events);
  // Wakes the follower to fold what the writer's thread left: `handed`,
  // when not empty, or else from the log.
  void LeaveToFollower(std::vector<StoredEvent> handed = {});
  // Folds what the writer's thread left (and, every 100 ms, anything the
  // log has beyond the projection).
  void FollowLoop();
  // Records the first fold failure (once) and tells options_.on_stuck.
  void MarkStuck(uint64_t seq, const Status& why);
  Status StuckStatus() const;
  // Owes a snapshot at `after` when it is SnapshotSpacing(after) or more
  // past the last one owed; the snapshot thread writes it.
  void MaybeSnapshot(uint64_t after);
  uint64_t SnapshotSpacing(uint64_t seq) const {
    return std::max(options_.snapshot_every_events, seq / kSnapshotLogFraction);
  }
  void SnapshotLoop();
  // How long until kSnapshotAfterBulkQuiet has passed since the last bulk
  // batch (zero when it has).
  std::chrono::steady_clock::duration BulkQuietFor() const;
  // Writes the snapshot at `seq` from a projection rebuilt for it (the
  // newest stored snapshot plus the log after it), never touching mu_;
  // whether it was stored.
  bool WriteSnapshot(uint64_t seq);
  // Returns once the projection has folded in `seq` (the writer's thread
  // does it; after a grace period the caller does it itself).
  Status WaitProjected(uint64_t seq);

  EventStore* store_;
  ProjectorOptions options_;
  mutable std::shared_timed_mutex mu_;
  Projection projection_;    // guarded by mu_
  uint64_t generation_ = 0;  // guarded by mu_; counts replacements of projection_

  std::array<std::mutex, 64> turns_;  // by hash of the entity being changed
  WriteGate gate_;
  std::atomic<bool> is_stuck_{false};
  mutable std::mutex stuck_mu_;
  std::optional<StuckAt> stuck_;  // guarded by stuck_mu_; set once
  std::mutex projected_mu_;       // only for projected_cv_
  std::condition_variable projected_cv_;
  std::atomic<bool> stopping_{false};
  std::mutex follow_mu_;  // guards follow_owed_ and handed_
  std::condition_variable follow_cv_;
  bool follow_owed_ = false;                     // the writer's thread left a batch unfolded
  std::deque<std::vector<StoredEvent>> handed_;  // bulk batches handed over, oldest first
  std::atomic<uint64_t> batches_left_to_follower_{0};
  std::thread follower_;

  std::mutex snapshot_mu_;  // guards the three below
  std::condition_variable snapshot_cv_;
  uint64_t snapshot_owed_ = 0;  // the seq a snapshot is owed at; 0: none
  uint64_t snapshot_base_ = 0;  // the last seq a snapshot was owed at (or stored, at Open)
  bool snapshot_busy_ = false;  // the snapshot thread is writing one
  // When the writer's thread last left a bulk batch to the follower.
  std::atomic<std::chrono::steady_clock::rep> last_bulk_batch_{0};
  std::thread snapshotter_;
};

}  // namespace okr
