// EventStore: the append-only, hash-chained, durable log of okrd events.
//
// The log is the ground truth; everything else in okrd is derived from it.
// On-disk layout: docs/FORMAT.md (constants in eventstore/format.h).
//
// Thread safety: every method may be called from any thread. Appends are
// serialised by one writer thread that drains all waiting appends into a
// single RocksDB WriteBatch and a single WAL sync (group commit); each
// caller blocks until its own events are durable.
#pragma once

#include <capnp/message.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eventstore/base/status.h"
#include "eventstore/chain.h"
#include "eventstore/event_codec.h"
#include "schemas/okr.capnp.h"

namespace rocksdb {
class Env;
}

namespace okr {

class SigningKey;  // eventstore/checkpoint.h
class KeyRing;     // eventstore/sealing.h

// An event about to be appended. The caller sets actor, entity, reason and
// exactly one union member on event(); the store sets seq, recordedAt,
// version, idempotencyKey and prevHash, overwriting whatever is there.
class EventDraft {
 public:
  EventDraft(std::string_view actor, std::string_view entity, std::string_view reason = "");
  schema::Event::Builder event() { return message_->getRoot<schema::Event>(); }
  capnp::MallocMessageBuilder& message() { return *message_; }
  const std::string& entity() const { return entity_; }

  // A personal text (SPEC §10) for `field` of the event, whose union
  // member is already chosen. With a subject it is held aside and the
  // store seals it under that subject's key once the event has its seq
  // (written as it is when the store has no key ring); without one, or
  // when empty, it goes into the body now.
  void SetPersonal(schema::PersonalField field, std::string_view text, std::string_view subject);
  struct Personal {
    schema::PersonalField field;
    std::string subject;
    std::string text;
  };
  const std::vector<Personal>& personal() const { return personal_; }

 private:
  std::unique_ptr<capnp::MallocMessageBuilder> message_;
  std::string entity_;
  std::vector<Personal> personal_;
};

struct ExpectedVersion {
  std::string entity;
  uint64_t version = 0;  // the entity's current version; 0 = it must not exist yet
};

struct StoredEvent {
  uint64_t seq = 0;
  std::string bytes;  // the exact stored value
};

struct AppendRequest {
  std::vector<EventDraft> events;         // appended in this order, 1..kMaxEventsPerAppend
  std::vector<ExpectedVersion> expected;  // checked before anything is written
  // With a key, the first successful append is remembered for
  // kIdempotencyRetentionUs: a later request with the same key and
  // fingerprint writes nothing and answers the same seqs; the same key with
  // another fingerprint is refused (kInvalid). After the retention the key
  // is forgotten and a request with it is a new one.
  std::string idempotency_key;
  Hash fingerprint{};
};

struct AppendResult {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  bool replayed = false;  // an idempotent retry: nothing was written now
};

struct Head {
  uint64_t seq = 0;  // 0 for an empty log
  Hash hash{};       // SHA-256 of the last stored value; zeros when empty
  int64_t recorded_at_us = 0;
  // The Merkle tree root of events 1..seq (SPEC §7; merkle::EmptyRoot()
  // when empty). Kept in memory by the writer, not in the meta/head record.
  Hash root{};
};

// A snapshot as stored: the seq it reflects and its parts, in order.
struct StoredSnapshot {
  uint64_t seq = 0;
  std::vector<std::string> parts;
};

struct OpenOptions {
  bool create_if_missing = true;
  // Forensics: opens whatever is there without refusing a broken chain and
  // never writes. Append answers kInvalid.
  bool read_only = false;
  // Full chain check at open; a writer refuses a broken log (kCorruption,
  // naming the first bad seq). Turning it off only skips the check.
  bool verify_on_open = true;
  rocksdb::Env* env = nullptr;  // tests inject faults here
  // Called by the writer thread after each batch write (durable or not):
  // appends and events in it, the head after it, how long the synced write
  // took, and its status. Must be quick and must not call the store.
  std::function<void(size_t appends, size_t events, uint64_t head_seq, int64_t write_us,
                     const Status& status)>
      on_batch;
  std::function<int64_t()> clock_us;  // default: system clock, µs UTC
  // Called during a writable open that builds the missing part of the
  // tree (a log written before it existed): (events done, events to do),
  // before each synced part and once at the end.
  std::function<void(uint64_t done, uint64_t total)> on_tree_progress;
  // The key that signed the stored checkpoint (meta/checkpoint). With it, a
  // writable open verifies that checkpoint and checks only the events after
  // it, and a thread of the store re-hashes the whole log afterwards
  // (BackgroundCheck); without it, or without a checkpoint, the open checks
  // the whole chain itself (verify_on_open).
  std::shared_ptr<const SigningKey> signing_key;
  // Seals the drafts' personal texts (EventDraft::SetPersonal); borrowed,
  // must outlive the store. Without it they are written as they are.
  KeyRing* key_ring = nullptr;
};

// The state of the log's check (SPEC §7): done by the open itself, or by
// the store's thread afterwards over a snapshot of the log.
struct LogCheck {
  enum class State {
    kNotChecked,  // read-only, or verify_on_open off: nothing checks the log
    kChecking,    // the background check is under way
    kVerified,    // the chain, every leaf and the root of `total` events are right
    kDamaged,     // first_bad_seq is wrong; appends are refused
  };
  State state = State::kNotChecked;
  uint64_t checked = 0;        // events checked so far, from seq 1
  uint64_t total = 0;          // events to check: the head when the check began
  uint64_t first_bad_seq = 0;  // 0 unless damaged
  std::string problem;         // what is wrong at first_bad_seq
  int64_t took_us = 0;         // how long the whole check took, once done
  uint64_t open_checked = 0;   // events the open itself checked (the tail, or all)
};

// One backup of the database (RocksDB BackupEngine), docs/OPERATIONS.md.
struct BackupSummary {
  uint32_t backup_id = 0;
  int64_t created_at_s = 0;  // when it was taken, seconds since the epoch (UTC)
  uint64_t size_bytes = 0;   // the backup's files, some shared with earlier backups
  uint32_t files = 0;
  uint64_t head_seq = 0;  // the log inside the backup ends here
  Hash head_hash{};
};

// Limits on one append, so one request cannot monopolise the writer.
inline constexpr size_t kMaxEventsPerAppend = 1000;
// A replica's append (AppendStored) may hold half a page it copied: large
// enough to be ingested (docs/DECISIONS.md, "A replica's catch-up is
// ingested"), small enough to keep the memory it takes while staged low.
inline constexpr size_t kMaxStoredEventsPerAppend = 50'000;
inline constexpr size_t kMaxIdempotencyKeyBytes = 256;

// An idempotency record answers retries for this long after its append's
// recordedAt (24 hours, as Stripe keeps its keys); a retry after that is a
// new request. Expired records are deleted by the writer, so their storage
// is bounded by one retention's worth of keyed appends.
inline constexpr int64_t kIdempotencyRetentionUs = int64_t{24} * 3600 * 1'000'000;
// The writer's prune walks at most this many events after a batch, so it
// never holds appends up for long; it catches up over later batches.
inline constexpr size_t kMaxEventsPrunedPerPass = 10'000;

// How far a bulk reader's iterator reads ahead in a file.
inline constexpr size_t kCursorReadahead = 2u << 20;

// A reader's place in the log: one RocksDB iterator over seqs
// [from_seq, to_seq], kept between calls, so a reader that takes the log
// a batch at a time (GET /v1/events/raw) pays for one iterator and its
// readahead buffers, not one per batch. Holds the files it reads from
// until it is destroyed; not thread-safe; must not outlive its store.
class EventCursor {
 public:
  ~EventCursor();
  EventCursor(const EventCursor&) = delete;
  EventCursor& operator=(const EventCursor&) = delete;

  // Calls `fn` for each stored event from the cursor's place on, in
  // order, until it returns false or the range ends. The event `fn`
  // returned false for is taken all the same: the next call starts after
  // it. The view is valid only during the call.
  Status Next(const std::function<bool(uint64_t seq, std::string_view bytes)>& fn);

  // The iterator and its bounds, opaque outside eventstore/ (which makes
  // them: EventStore::OpenCursor).
  struct State;
  explicit EventCursor(std::unique_ptr<State> state);

 private:
  std::unique_ptr<State> state_;
};

// A replica's append, checked as far as it can be without the writer
// (EventStore::PrepareStored): each event decoded in full and hashed, each
// after the first linked to the one before it, and the ids they create
// looked up in the log as it stood. Prepared on the thread that read the
// events, so the writer, storing the append before, is left with only
// what needs the head: the first event's link to it, versions, and the
// ids of the batches stored since.
class PreparedStored {
 public:
  ~PreparedStored();
  PreparedStored(PreparedStored&&) noexcept;
  PreparedStored& operator=(PreparedStored&&) noexcept;
  // The seq of its last event.
  uint64_t last_seq() const;

  // The events and what was found of them, opaque outside eventstore/.
  struct State;
  explicit PreparedStored(std::unique_ptr<State> state);

 private:
  friend class EventStore;
  std::unique_ptr<State> state_;
};

class EventStore {
 public:
  // Opens (or creates) the log in `dir`, recovering the head from the data.
  static Result<std::unique_ptr<EventStore>> Open(const std::string& dir,
                                                  const OpenOptions& options = {});
  // Finishes the appends already queued, then closes.
  ~EventStore();
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;

  // Appends all events of `request` atomically, after checking expected
  // versions and the idempotency key; returns once they are durable.
  // kVersionMismatch: a version did not match. kInvalid: bad request. In both,
  // nothing was written. kIOError: the storage failed; the append may or
  // may not be stored (a failed sync cannot take back bytes the disk may
  // already hold), never half of it: retry with the same idempotency key,
  // which answers the original seqs if it was stored.
  Result<AppendResult> Append(AppendRequest request);

  // A replica's append: events exactly as another log stored them. Each
  // must decode in full and continue this log (the next seq, the head's
  // hash as its prevHash, a recordedAt not before the head's, its entity's
  // next version, an id not taken yet); otherwise nothing is stored and
  // the answer is kCorruption naming the first that does not. At most
  // kMaxStoredEventsPerAppend events, made durable with the batch they
  // join and handed to the durable listener, as Append's are.
  Result<AppendResult> AppendStored(std::vector<StoredEvent> events);
  // The same in two steps: the checks that need no log, and the ids the
  // events create looked up in the log as it stands, on the calling thread;
  // then the append, which answers what either found first.
  PreparedStored PrepareStored(std::vector<StoredEvent> events) const;
  Result<AppendResult> AppendStored(PreparedStored events);

  Head head() const;

  // Calls `fn` for each stored event with from_seq <= seq <= to_seq, in
  // order, until it returns false. The view is valid only during the call.
  Status Scan(uint64_t from_seq, uint64_t to_seq,
              const std::function<bool(uint64_t seq, std::string_view bytes)>& fn) const;
  // The events with from_seq <= seq <= to_seq, read a batch at a time
  // through one iterator (EventCursor); Scan is one call of it. The
  // iterator reads `readahead` bytes of a file ahead of it: a reader that
  // takes a little at a time and keeps many cursors open (the live
  // feeds) asks for less than a bulk reader.
  std::unique_ptr<EventCursor> OpenCursor(uint64_t from_seq, uint64_t to_seq,
                                          size_t readahead = kCursorReadahead) const;
  // Up to `limit` events with seq > after_seq.
  Result<std::vector<StoredEvent>> Read(uint64_t after_seq, size_t limit) const;
  // One entity's events with version > after_version, oldest first.
  Result<std::vector<StoredEvent>> ReadStream(std::string_view entity, uint64_t after_version = 0,
                                              size_t limit = SIZE_MAX) const;
  // The entity's current version, 0 when it has no events.
  Result<uint64_t> Version(std::string_view entity) const;

  // Checks the whole chain from seq 1 (ChainChecker's rules over the stored
  // values, on one consistent snapshot of the log), then the head record.
  // `progress` (optional) gets (checked, total).
  VerifyReport Verify(const std::function<void(uint64_t, uint64_t)>& progress = {}) const;
  // Verify's checks and the stored tree's (docs/FORMAT.md, "What a verifier
  // checks"): every leaf against its event, every inner node against its
  // children, the root of the head from them. A bad node is reported at the
  // seq that completed it. Open for writing once to have a tree.
  VerifyReport VerifyTree(const std::function<void(uint64_t, uint64_t)>& progress = {}) const;

  // Blocks until the head passes after_seq or the timeout expires; returns
  // the head seq then.
  uint64_t WaitForEvents(uint64_t after_seq, std::chrono::milliseconds timeout) const;

  // Called by the writer thread with the events of each batch, in seq
  // order, once the batch is durable and the head has moved past it, and
  // before any append of the batch is answered: a caller that gets its
  // seqs back finds whatever the listener did with them done. The events
  // are the writer's, discarded after the call: the listener may move
  // their bytes out (and keep them), but not change the vector's length.
  // It runs on the writer's time, so it must be quick; it may read the
  // store but must not append (the writer would wait for itself).
  using DurableListener = std::function<void(std::vector<StoredEvent>& events)>;
  // Sets the one listener, or clears it with an empty function; clearing
  // returns only once a call under way has returned.
  void SetDurableListener(DurableListener listener);

  // The remembered answer for an idempotency key: nullopt when the key is
  // unused or its record has expired (kIdempotencyRetentionUs); kInvalid
  // when it was used with another fingerprint. Append
  // checks again atomically, so this is only a fast path.
  Result<std::optional<AppendResult>> FindIdempotent(const std::string& key,
                                                     const Hash& fingerprint) const;

  // The log's Merkle tree (SPEC §7, eventstore/merkle.h), from the nodes
  // stored in the `tree` column family with their events. Every size and
  // seq is at most the head's: kInvalid (naming the parameter) beyond it,
  // or for a seq or size of 0 where a proof needs one. O(log n) reads.
  Result<Hash> TreeRoot(uint64_t size) const;
  // SHA-256(0x00 || stored value) of event `seq`, as stored in the tree.
  Result<Hash> LeafHash(uint64_t seq) const;
  // Event seq's audit path in the tree of `size` events (seq <= size).
  Result<std::vector<Hash>> InclusionProof(uint64_t seq, uint64_t size) const;
  // From the tree of `from` events to that of `to` (1 <= from <= to).
  Result<std::vector<Hash>> ConsistencyProof(uint64_t from, uint64_t to) const;

  // From now on the writer stores the signed checkpoint of its head in
  // meta/checkpoint: now, then in the batch of a write at most once a
  // second, and at close. `origin` names the log (SPEC §7). kInvalid when
  // the store is read-only; a storage error when the first one fails.
  Status SetSigningKey(std::shared_ptr<const SigningKey> key, std::string origin);
  // The newest checkpoint note stored (meta/checkpoint); nullopt when none.
  Result<std::optional<std::string>> StoredCheckpoint() const;
  // The state of the log's check; damage found makes every later Append
  // answer kCorruption naming the first bad seq. Thread-safe, cheap.
  LogCheck BackgroundCheck() const;

  // Snapshots: a cache of projected state keyed by the seq it reflects.
  // Deleting them changes no answer. A snapshot is stored in parts, each
  // its own value, so a reader need not hold all of a large one at once.
  // Keeps the newest `keep` snapshots.
  Status PutSnapshot(uint64_t seq, const std::vector<std::string>& parts, size_t keep = 2);
  // Hands the parts of the newest snapshot with seq <= at_seq to `part`,
  // in order, until it returns false; answers that snapshot's seq.
  // kNotFound when there is none.
  Result<uint64_t> ReadSnapshot(uint64_t at_seq,
                                const std::function<bool(std::string_view part)>& part) const;
  // The same snapshot with all its parts.
  Result<StoredSnapshot> SnapshotAtOrBefore(uint64_t at_seq) const;
  Status DeleteSnapshots();
  // The seq of the newest snapshot, 0 when there is none. Kept in memory:
  // cheap enough for every metrics scrape. Thread-safe.
  uint64_t NewestSnapshotSeq() const;

  // Backs the whole database up into `backup_dir` (created when missing)
  // with RocksDB's BackupEngine: incremental (files already in an earlier
  // backup of the same directory are shared, not copied again) and
  // checksummed. Safe while appends continue: the backup holds exactly the
  // appends made durable before one moment during the call, and its
  // head_seq says which. One backup runs at a time per store. `progress`
  // (optional) gets (bytes copied, bytes to copy at most).
  // kInvalid: the directory cannot hold backups, or the store is read-only.
  Result<BackupSummary> Backup(const std::string& backup_dir,
                               const std::function<void(uint64_t, uint64_t)>& progress = {});
  // The backups in `backup_dir`, oldest first, each with its head.
  static Result<std::vector<BackupSummary>> ListBackups(const std::string& backup_dir);
  // Restores backup `backup_id` (0: the latest) into `data_dir`, which
  // must be missing or empty, after checking every file's checksum. The
  // chain is not verified here: open the restored log and Verify() it.
  static Result<BackupSummary> Restore(const std::string& backup_dir, const std::string& data_dir,
                                       uint32_t backup_id = 0);

 private:
  class Impl;
  explicit EventStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace okr
