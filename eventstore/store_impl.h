// Private to okr_eventstore: EventStore's implementation, shared by the
// files that each hold one of its jobs —
//   event_store.cc   opening, reading, streams, Verify, the public API
//   writer.cc        the group-commit writer thread and its batches
//   append_stored.cc a replica's appends: another log's events, checked
//   table_files.cc   table files ingested: snapshots, bulk batches
//   idempotency.cc   idempotency records: lookups, expiry, pruning
//   ids_index.cc     the `ids` column family: ids taken, indexing at open
//   snapshots.cc     the snapshots column family (a cache)
//   tree_store.cc    the `tree` column family: nodes, roots, proofs
//   backup.cc        RocksDB BackupEngine backups and restores
// Nothing outside eventstore/ includes this header.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "eventstore/chain.h"
#include "eventstore/checkpoint.h"
#include "eventstore/event_store.h"
#include "eventstore/merkle.h"

namespace okr {

// RocksDB's status as ours: NotFound, Corruption and InvalidArgument keep
// their meaning; everything else is an I/O failure.
Status FromRocks(const rocksdb::Status& s);

inline std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// The writer drains at most this many appends into one batch and one sync.
inline constexpr size_t kMaxAppendsPerBatch = 1024;
// A batch of at least this many events, all copied (a replica's), is
// ingested as table files (IngestBatch) instead of written through the
// memtables.
inline constexpr size_t kIngestAtEvents = 8192;
// While bulk batches come in, each column family but `events` merges its
// level-0 tables once this many have gathered (DeferCompactions)...
inline constexpr int kDeferredLevel0Tables = 32;
// ...until no bulk batch has come for this long, or a batch that is not
// one comes.
inline constexpr std::chrono::milliseconds kBulkCopyPause{1000};
// The most a buffer the writer keeps from one batch to the next may hold.
inline constexpr size_t kMostKeptBytes = size_t{64} << 20;

// One operation of a batch being ingested (IngestBatch), as the batch
// holds it, with its place in the batch.
struct TableEntry {
  uint32_t cf = 0;
  uint32_t order = 0;
  rocksdb::Slice key, value;
  bool deletes = false;
};

// `from`, emptied, becomes `*to` when its buffer is within kMostKeptBytes
// (else `*to` stays empty): the next user starts with the capacity.
template <typename T>
void Keep(std::vector<T>* from, std::vector<T>* to) {
  from->clear();
  if (from->capacity() * sizeof(T) <= kMostKeptBytes) *to = std::move(*from);
}

// A kept vector taken for one use, and kept again (Keep) however the use
// ends.
template <typename T>
class Borrowed {
 public:
  explicit Borrowed(std::vector<T>* kept) : kept_(kept), vector_(std::move(*kept)) {}
  ~Borrowed() { Keep(&vector_, kept_); }
  Borrowed(const Borrowed&) = delete;
  Borrowed& operator=(const Borrowed&) = delete;
  std::vector<T>& operator*() { return vector_; }

 private:
  std::vector<T>* kept_;
  std::vector<T> vector_;
};

// One consistent read through the whole log (a check, a verify): a RocksDB
// snapshot, so appends made meanwhile are neither half seen nor compared
// with a newer head, and block reads that skip the cache (each block is
// read once) with a large readahead. Released when it goes.
class BulkRead {
 public:
  explicit BulkRead(rocksdb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {
    options_.snapshot = snapshot_;
    options_.fill_cache = false;
    options_.readahead_size = 4 << 20;
  }
  ~BulkRead() { db_->ReleaseSnapshot(snapshot_); }
  BulkRead(const BulkRead&) = delete;
  BulkRead& operator=(const BulkRead&) = delete;
  const rocksdb::ReadOptions& options() const { return options_; }
  const rocksdb::Snapshot* snapshot() const { return snapshot_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
  rocksdb::ReadOptions options_;
};

// A live idempotency record: the request's fingerprint and its answer.
struct IdempotencyRecord {
  Hash fingerprint{};
  AppendResult answer;
};

// idempotency.cc: a record's stored value (docs/FORMAT.md), and back;
// Decode is false for a value of the wrong size.
std::string EncodeIdempotency(const IdempotencyRecord& record);
bool DecodeIdempotency(std::string_view value, IdempotencyRecord* record);

// Idempotency keys written by a batch, with their records.
using IdempotencyAnswers = std::unordered_map<std::string, IdempotencyRecord>;

// A streams (`ids` false) or ids entry of a batch: key → the event's seq
// key. In a batch, in the order PutIndexEntries writes them.
struct IndexPut {
  std::string key, seq_key;
  bool ids = false;
  bool operator<(const IndexPut& other) const;
};
// Adds to `puts` the streams entry of the event `seq_key`, and the ids
// entry of the id it creates.
void AddIndexPuts(std::string seq_key, std::string_view entity, uint64_t version,
                  std::string_view created_id, std::vector<IndexPut>* puts);

// A replica's append as EventStore::PrepareStored leaves it
// (append_stored.cc).
struct PreparedStored::State {
  // What staging an event needs, found without the log.
  struct Link {
    std::string entity;
    uint64_t version = 0;
    int64_t recorded_at_us = 0;
    std::string created_id;  // empty when it creates none
    bool erases = false;     // a subject.erased: the entity's key goes once it is durable
    Hash hash{};             // of its bytes: the head's once it is stored
    Hash leaf{};             // its leaf in the log's tree
  };
  std::vector<StoredEvent> events;
  std::vector<Link> links;       // of the events before the first found broken
  Status broken = Status::Ok();  // kCorruption naming that one, if any
  // The streams and ids entries of `links`' events, in order (IndexPut's <).
  std::vector<IndexPut> index_puts;
  // The ids `links`' events create, looked up in the log of the store
  // `ids_looked_up_in` (its EventStore::Impl) whose head was
  // `ids_looked_up_at`: the first of them it holds is links[first_id_taken]
  // (links.size(): none). Null when the lookup failed: the writer looks
  // them all up itself, as it does for an append prepared by another store.
  const void* ids_looked_up_in = nullptr;
  uint64_t ids_looked_up_at = 0;
  size_t first_id_taken = 0;
};

// Thread safety: the public methods (those EventStore forwards to) may be
// called from any thread; members marked "writer thread only" are touched
// by the writer thread alone once Open has started it.
class EventStore::Impl {
 public:
  struct Pending {
    AppendRequest request;
    std::unique_ptr<PreparedStored::State> stored;  // a replica's append instead (AppendStored)
    std::promise<Result<AppendResult>> done;
  };

  // Stops the writer after the queued appends, then closes the database.
  ~Impl();

  // event_store.cc
  Status Open(const std::string& dir, const OpenOptions& options);
  Head head() const;
  Status Scan(uint64_t from_seq, uint64_t to_seq,
              const std::function<bool(uint64_t, std::string_view)>& fn) const;
  // `fill_cache` false for a bulk reader, which reads each block once.
  std::unique_ptr<EventCursor> OpenCursor(uint64_t from_seq, uint64_t to_seq, bool fill_cache,
                                          size_t readahead = kCursorReadahead) const;
  Result<std::vector<StoredEvent>> Read(uint64_t after_seq, size_t limit) const;
  Result<std::vector<StoredEvent>> ReadStream(std::string_view entity, uint64_t after_version,
                                              size_t limit) const;
  Result<uint64_t> Version(std::string_view entity) const;
  VerifyReport Verify(const std::function<void(uint64_t, uint64_t)>& progress) const;
  uint64_t WaitForEvents(uint64_t after_seq, std::chrono::milliseconds timeout) const;

  // writer.cc
  Result<AppendResult> Append(AppendRequest request);
  Result<AppendResult> AppendStored(std::unique_ptr<PreparedStored::State> events);
  void SetDurableListener(DurableListener listener);

  // append_stored.cc: the first of `links`' first `count` whose created id
  // the log holds (`count`: none).
  Result<size_t> FirstIdInLog(const std::vector<PreparedStored::State::Link>& links,
                              size_t count) const;

  // idempotency.cc
  Result<std::optional<AppendResult>> FindIdempotent(const std::string& key,
                                                     const Hash& fingerprint) const;

  // snapshots.cc
  Status PutSnapshot(uint64_t seq, const std::vector<std::string>& parts, size_t keep);
  Result<uint64_t> ReadSnapshot(uint64_t at_seq,
                                const std::function<bool(std::string_view part)>& part) const;
  Status DeleteSnapshots();
  uint64_t NewestSnapshotSeq() const { return newest_snapshot_seq_.load(); }

  // tree_store.cc
  Status SetSigningKey(std::shared_ptr<const SigningKey> key, std::string origin);
  Result<std::optional<std::string>> StoredCheckpoint() const;
  Result<Hash> TreeRoot(uint64_t size) const;
  Result<Hash> LeafHash(uint64_t seq) const;
  Result<std::vector<Hash>> InclusionProof(uint64_t seq, uint64_t size) const;
  Result<std::vector<Hash>> ConsistencyProof(uint64_t from, uint64_t to) const;

  // log_check.cc
  LogCheck CurrentCheck() const;
  VerifyReport VerifyTree(const std::function<void(uint64_t, uint64_t)>& progress) const;

  // backup.cc
  Result<BackupSummary> Backup(const std::string& backup_dir,
                               const std::function<void(uint64_t, uint64_t)>& progress);

 private:
  // What the writer has decided so far for the batch it is building.
  struct BatchState {
    rocksdb::WriteBatch wb;
    Head head;  // the head once the batch is durable
    // Entities' versions after the batch's appends so far.
    std::unordered_map<std::string, uint64_t> overlay;
    IdempotencyAnswers keys;              // keys the batch's appends write
    std::unordered_set<std::string> ids;  // ids the batch's appends create
    std::vector<StoredEvent> events;      // the staged events, for the listener
    merkle::Frontier frontier;            // the tree's right edge after the staged events
    std::vector<std::pair<merkle::NodeId, Hash>> completed;  // scratch for PutEvent
    std::vector<std::string> erased;   // subjects a copied subject.erased erases (a replica's)
    std::vector<IndexPut> index_puts;  // the streams and ids entries (PutIndexEntries)
    size_t copied = 0;                 // of `events`, those a replica's appends brought
  };
  using StoredLink = PreparedStored::State::Link;
  // One caller's answer; `needs_write`: valid only if the batch becomes durable.
  struct Outcome {
    Result<AppendResult> result = Status::IOError("not processed");
    bool needs_write = false;
  };

  // event_store.cc: opening.
  Status OpenDatabase(const std::string& dir, const OpenOptions& options);
  Status CheckFormat();
  Status RecoverHead();
  Status CheckOnOpen();
  Status VerifyOnOpen();
  std::optional<Head> ReadHeadRecord(const rocksdb::ReadOptions& ro) const;
  Result<uint64_t> StoredVersion(std::string_view entity, const rocksdb::ReadOptions& ro) const;
  // Verify's last check: the head record against the chain checked.
  static void CheckHeadRecord(const std::optional<Head>& stored, ChainChecker* chain);

  // writer.cc: the writer thread.
  void WriterLoop();
  void ProcessBatch(const std::vector<Pending*>& batch);
  Outcome ProcessAppend(AppendRequest& req, BatchState* state);
  std::optional<Outcome> ReplayIdempotent(const AppendRequest& req, const BatchState& state) const;
  Status CheckExpected(const std::vector<ExpectedVersion>& expected, const BatchState& state);
  Result<std::vector<uint64_t>> AssignVersions(const std::vector<EventDraft>& drafts,
                                               BatchState* state);
  Status SealPersonal(std::vector<EventDraft>& drafts, uint64_t first_seq) const;
  AppendResult StageEvents(AppendRequest& req, const std::vector<uint64_t>& versions,
                           BatchState* state);
  void PutEvent(uint64_t seq, std::string bytes, const Hash& leaf, BatchState* state);
  Status AdmitAppend(size_t events, size_t most) const;
  Result<AppendResult> Enqueue(AppendRequest request,
                               std::unique_ptr<PreparedStored::State> stored);

  // append_stored.cc: a replica's appends.
  Outcome ProcessStored(PreparedStored::State& stored, BatchState* state);
  static void ReserveBatch(const std::vector<StoredEvent>& stored, BatchState* state);
  static Status ContinuesHead(const StoredEvent& first, const Head& head);
  Status CheckStored(uint64_t seq, const StoredLink& link, const BatchState& state,
                     const std::unordered_map<std::string, uint64_t>& versions,
                     const std::unordered_set<std::string>& created);
  Status CheckIdsNotInLog(const PreparedStored::State& prepared, size_t count) const;
  std::optional<size_t> FirstIdCreatedAfter(const std::vector<StoredLink>& links, size_t count,
                                            uint64_t seq) const;
  Status CommitBatch(BatchState* state, const std::vector<Outcome>& outcomes);
  void PutIndexEntries(BatchState* state);
  void ReportBatch(const BatchState& state, const std::vector<Outcome>& outcomes, int64_t write_us,
                   const Status& written) const;
  Result<uint64_t> CurrentVersion(const std::string& entity,
                                  const std::unordered_map<std::string, uint64_t>& overlay);

  // idempotency.cc
  Result<std::optional<IdempotencyRecord>> LiveIdempotencyRecord(const std::string& key) const;
  static Result<AppendResult> AnswerIdempotent(const IdempotencyRecord& record,
                                               const Hash& fingerprint);
  Result<int64_t> RecordedAt(uint64_t seq) const;
  Result<bool> Expired(const AppendResult& record) const;
  uint64_t PruneIdempotency(int64_t now, const IdempotencyAnswers& written,
                            rocksdb::WriteBatch* wb);
  void PruneIdempotencyAlone();
  void PruneRecord(const std::string& key, uint64_t seq, rocksdb::WriteBatch* wb);
  Status RecoverPrunePosition();

  // ids_index.cc
  static rocksdb::ColumnFamilyOptions IdsOptions();
  Status IndexIds();
  Status CheckNewIds(std::vector<EventDraft>& drafts,
                     const std::unordered_set<std::string>& batch_ids,
                     std::unordered_set<std::string>* created);
  Result<bool> IdTaken(const std::string& id, const std::unordered_set<std::string>& batch_ids,
                       const std::unordered_set<std::string>& created) const;

  // tree_store.cc
  // The stored nodes `ids`, in order, in one MultiGet (at `snapshot`, or
  // the latest when null); kNotFound naming a missing node.
  Result<std::vector<Hash>> ReadNodes(const std::vector<merkle::NodeId>& ids,
                                      const rocksdb::Snapshot* snapshot) const;
  merkle::NodeReader NodeReaderAt(const rocksdb::Snapshot* snapshot) const;
  Result<uint64_t> TreeThrough() const;  // meta/tree_through, 0 when absent
  Status BuildTree();
  void RecoverRootReadOnly();
  Status DropUnstoredLevels();
  void PutNodes(rocksdb::WriteBatch* wb,
                const std::vector<std::pair<merkle::NodeId, Hash>>& nodes) const;
  Result<std::vector<std::string>> MultiRead(rocksdb::ColumnFamilyHandle* cf,
                                             const std::vector<std::string>& keys,
                                             const rocksdb::Snapshot* snapshot,
                                             const std::function<std::string(size_t)>& what) const;
  // With commit_mu_ held: the signed note of `head`, and whether one is due.
  std::string CheckpointNote(const Head& head) const;
  bool CheckpointDue(const Head& head) const;
  void CheckpointStored(const Head& head);
  void StoreFinalCheckpoint();

  // log_check.cc
  struct TreeWalk {
    TreeWalk(const ChainResume& resume, merkle::Frontier edge)
        : chain(resume.after_seq == 0 ? ChainChecker(ChainSource::kStored)
                                      : ChainChecker(ChainSource::kStored, resume)),
          frontier(std::move(edge)) {}
    ChainChecker chain;
    merkle::Frontier frontier;
    bool stopped = false;
  };
  using WalkProgress = std::function<bool(uint64_t seq)>;  // false: stop
  void WalkEvents(const rocksdb::ReadOptions& ro, const WalkProgress& progress,
                  TreeWalk* walk) const;
  void FinishWalk(const std::optional<Head>& stored_head, const rocksdb::Snapshot* snapshot,
                  TreeWalk* walk) const;
  Result<ChainResume> ResumeAfter(uint64_t size) const;
  Result<uint64_t> CheckStoredCheckpoint(const std::string& note) const;
  bool CheckpointByOurKey(const std::string& note) const;
  Status CheckTailOnOpen(const std::string& note);
  void StartBackgroundCheck();
  void BackgroundCheck();
  void StopBackgroundCheck();
  Status RefuseIfDamaged() const;
  void CheckTreeLevel(const rocksdb::ReadOptions& ro, uint8_t level, uint64_t size,
                      ChainChecker* chain) const;

  // snapshots.cc
  void RecoverNewestSnapshotSeq();

  // table_files.cc: table files written beside the log, then ingested.
  // A name of `kind` and `seq` for one, unique within the process; ignored
  // by RocksDB until ingested, and removed by RemovePendingTables.
  std::string PendingTablePath(std::string_view kind, uint64_t seq) const;
  // Writes `path` for `cf` with `fill`'s keys (in order); removed again
  // when anything fails.
  Status WriteTableFile(rocksdb::ColumnFamilyHandle* cf, const std::string& path,
                        const std::function<rocksdb::Status(rocksdb::SstFileWriter&)>& fill) const;
  // Writable opens: the files a crash kept from being ingested.
  void RemovePendingTables() const;
  Status IngestBatch(const rocksdb::WriteBatch& wb, uint64_t head_seq);
  // Writer thread: defers (or resumes) merging the ingested index tables.
  void DeferCompactions(bool defer);

  OpenOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* events_ = nullptr;
  rocksdb::ColumnFamilyHandle* streams_ = nullptr;
  rocksdb::ColumnFamilyHandle* idempotency_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* snapshots_ = nullptr;
  rocksdb::ColumnFamilyHandle* ids_ = nullptr;
  rocksdb::ColumnFamilyHandle* tree_ = nullptr;  // null: a read-only open of a log without one

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Pending*> queue_;
  bool stopping_ = false;
  std::thread writer_;

  // Writer thread only: the head as the writer has made it durable, and the
  // committed version of every entity it has looked at.
  Head writer_head_;
  merkle::Frontier frontier_;  // the right edge of the tree of writer_head_
  // The last batch's buffers, emptied, kept for the next (ProcessBatch):
  // a bulk batch's are larger than the heap's mmap threshold, and new ones
  // would be mapped and faulted in again, page by page, for every batch.
  struct KeptBuffers {
    rocksdb::WriteBatch wb;
    std::vector<IndexPut> index_puts;
    std::vector<StoredEvent> events;
    std::vector<TableEntry> tables;  // IngestBatch's
  } kept_;
  std::unordered_map<std::string, uint64_t> versions_;
  // The ids each of the last kRecentBatches durable batches created, oldest
  // first (writer thread only): an append prepared at an earlier head has
  // only these checked here (FirstIdCreatedAfter), the rest where it was
  // prepared.
  struct CreatedIds {
    uint64_t after_seq = 0;    // the head before the batch
    uint64_t through_seq = 0;  // and after it
    std::unordered_set<std::string> ids;
  };
  static constexpr size_t kRecentBatches = 4;
  std::deque<CreatedIds> recent_ids_;
  // DeferCompactions: each deferred column family's level-0 settings as
  // they were; empty when none is deferred.
  std::vector<std::pair<rocksdb::ColumnFamilyHandle*, std::unordered_map<std::string, std::string>>>
      level0_before_;
  uint64_t pruned_through_ = 0;      // meta/idempotency_pruned
  int64_t prune_not_before_us_ = 0;  // no record expires before this

  mutable std::mutex head_mu_;
  mutable std::condition_variable head_cv_;
  Head head_;  // guarded by head_mu_: the last durable event

  std::atomic<uint64_t> newest_snapshot_seq_{0};  // 0: none

  std::mutex listener_mu_;    // held while the listener runs
  DurableListener listener_;  // guarded by listener_mu_

  std::mutex backup_mu_;  // one backup at a time

  // Held by the writer from a batch's write until the head has moved, and
  // by SetSigningKey: checkpoints are stored in the order of their heads.
  std::mutex commit_mu_;
  std::shared_ptr<const SigningKey> signing_key_;          // guarded by commit_mu_; null: none
  std::string origin_;                                     // guarded by commit_mu_
  std::chrono::steady_clock::time_point checkpoint_at_{};  // guarded by commit_mu_
  uint64_t checkpoint_size_ = UINT64_MAX;  // guarded by commit_mu_: the stored one's

  mutable std::mutex check_mu_;
  LogCheck check_;           // guarded by check_mu_
  bool stop_check_ = false;  // guarded by check_mu_: the store is closing
  std::atomic<bool> damaged_{false};
  std::thread checker_;  // the background check, when one runs
  // The most entities a check of the whole log has met: the next one sizes
  // its table for them at once (the log only grows).
  mutable std::atomic<size_t> entities_checked_{0};
  void SizeForWholeLog(ChainChecker* chain) const {
    chain->Reserve(entities_checked_.load(std::memory_order_relaxed));
  }
  void CheckedWholeLog(const ChainChecker& chain) const;
};

}  // namespace okr
