#include "eventstore/event_store.h"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/backup_engine.h>
#include <rocksdb/write_batch.h>

#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "eventstore/base/clock.h"
#include "eventstore/format.h"

namespace okr {

EventDraft::EventDraft(std::string_view actor, std::string_view entity, std::string_view reason)
    : message_(std::make_unique<capnp::MallocMessageBuilder>()), entity_(entity) {
  auto ev = message_->initRoot<schema::Event>();
  ev.setActor(std::string(actor));
  ev.setEntity(std::string(entity));
  if (!reason.empty()) ev.setReason(std::string(reason));
  ev.initPrevHash(format::kHashSize);
}

namespace {

Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::Ok();
  if (s.IsNotFound()) return Status::NotFound(s.ToString());
  if (s.IsCorruption()) return Status::Corruption(s.ToString());
  if (s.IsInvalidArgument()) return Status::Invalid(s.ToString());
  return Status::IOError(s.ToString());
}

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// RocksDB's own diagnostic log, the LOG file of the data directory (the
// previous run's is kept as LOG.old), written through stdio. RocksDB's
// default logger writes through its checked file writer, which after one
// failed write (a full disk) aborts the process on its next line in
// builds with assertions, as Debian's are; here a failed write only loses
// that line.
class InfoLog : public rocksdb::Logger {
 public:
  static std::shared_ptr<rocksdb::Logger> Open(const std::string& dir, bool create_if_missing) {
    std::error_code ec;
    if (create_if_missing) std::filesystem::create_directories(dir, ec);
    if (!std::filesystem::is_directory(dir, ec)) return nullptr;
    std::filesystem::rename(dir + "/LOG", dir + "/LOG.old", ec);
    FILE* f = std::fopen((dir + "/LOG").c_str(), "we");
    if (f == nullptr) return nullptr;  // RocksDB then opens its own
    return std::make_shared<InfoLog>(f);
  }
  explicit InfoLog(FILE* f) : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL), f_(f) {}
  ~InfoLog() override { std::fclose(f_); }

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    struct timeval now {};
    ::gettimeofday(&now, nullptr);
    struct tm t {};
    ::localtime_r(&now.tv_sec, &t);
    std::lock_guard<std::mutex> lock(mu_);
    std::fprintf(f_, "%04d/%02d/%02d-%02d:%02d:%02d.%06ld %ld ", t.tm_year + 1900, t.tm_mon + 1,
                 t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, static_cast<long>(now.tv_usec),
                 static_cast<long>(::syscall(SYS_gettid)));
    std::vfprintf(f_, format, ap);
    std::fputc('\n', f_);
    std::fflush(f_);
    std::clearerr(f_);  // a failed line is lost; the next one tries again
  }
  void Flush() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::fflush(f_);
  }

 private:
  std::mutex mu_;
  FILE* f_;
};

// The writer drains at most this many appends into one batch and one sync.
constexpr size_t kMaxAppendsPerBatch = 1024;

// A backup reports progress after each this many bytes copied.
constexpr uint64_t kBackupProgressBytes = 1 << 20;

rocksdb::BackupEngineOptions BackupOptions(const std::string& backup_dir) {
  rocksdb::BackupEngineOptions options(backup_dir);
  options.callback_trigger_interval_size = kBackupProgressBytes;
  return options;
}

// Fills a summary of backup `id`, reading its head from the backup itself
// (opened read-only where it lies), so the answer is what a restore gives.
Result<BackupSummary> DescribeBackup(const rocksdb::BackupEngineReadOnlyBase& engine,
                                     rocksdb::BackupID id) {
  rocksdb::BackupInfo info;
  rocksdb::Status s = engine.GetBackupInfo(id, &info, /*include_file_details=*/true);
  if (s.IsNotFound()) return Status::NotFound("no backup " + std::to_string(id));
  if (!s.ok()) return FromRocks(s);
  BackupSummary out;
  out.backup_id = info.backup_id;
  out.created_at_s = info.timestamp;
  out.size_bytes = info.size;
  out.files = info.number_files;
  OpenOptions options;
  options.read_only = true;
  options.create_if_missing = false;
  options.env = info.env_for_open.get();
  auto store = EventStore::Open(info.name_for_open, options);
  if (!store.ok()) {
    return Status::Corruption("backup " + std::to_string(id) + " cannot be opened: " +
                              store.status().ToString());
  }
  Head head = (*store)->head();
  out.head_seq = head.seq;
  out.head_hash = head.hash;
  return out;
}

Result<std::unique_ptr<rocksdb::BackupEngineReadOnly>> OpenBackupsForReading(
    const std::string& backup_dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(backup_dir, ec)) {
    return Status::NotFound("no backup directory " + backup_dir);
  }
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  rocksdb::IOStatus s =
      rocksdb::BackupEngineReadOnly::Open(BackupOptions(backup_dir), rocksdb::Env::Default(), &raw);
  if (!s.ok()) return Status::Invalid("cannot read backups in " + backup_dir + ": " + s.ToString());
  return std::unique_ptr<rocksdb::BackupEngineReadOnly>(raw);
}

}  // namespace

class EventStore::Impl {
 public:
  struct Pending {
    AppendRequest request;
    std::promise<Result<AppendResult>> done;
  };

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      stopping_ = true;
    }
    queue_cv_.notify_all();
    if (writer_.joinable()) writer_.join();
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    handles_.clear();
    if (db_ != nullptr) db_->Close();
  }

  Status Open(const std::string& dir, const OpenOptions& options) {
    options_ = options;
    if (!options_.clock_us) options_.clock_us = SystemClockUs;
    rocksdb::Options db_options;
    db_options.create_if_missing = options.create_if_missing;
    db_options.create_missing_column_families = true;
    if (options.env != nullptr) db_options.env = options.env;
    // Only for the real file system: tests that inject faults through
    // `env` keep RocksDB's own logger on it.
    if (!options.read_only && options.env == nullptr) {
      db_options.info_log = InfoLog::Open(dir, options.create_if_missing);
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
        {format::kEventsCf, rocksdb::ColumnFamilyOptions()},
        {format::kStreamsCf, rocksdb::ColumnFamilyOptions()},
        {format::kIdempotencyCf, rocksdb::ColumnFamilyOptions()},
        {format::kMetaCf, rocksdb::ColumnFamilyOptions()},
        {format::kSnapshotsCf, rocksdb::ColumnFamilyOptions()},
        {format::kIdsCf, IdsOptions()},
    };
    rocksdb::DB* db = nullptr;
    rocksdb::Status s =
        options.read_only
            ? rocksdb::DB::OpenForReadOnly(db_options, dir, cfs, &handles_, &db)
            : rocksdb::DB::Open(db_options, dir, cfs, &handles_, &db);
    if (!s.ok()) return FromRocks(s);
    db_.reset(db);
    events_ = handles_[1];
    streams_ = handles_[2];
    idempotency_ = handles_[3];
    meta_ = handles_[4];
    snapshots_ = handles_[5];
    ids_ = handles_[6];

    if (Status st = CheckFormat(); !st.ok()) return st;
    if (Status st = RecoverHead(); !st.ok() && !options.read_only) return st;
    RecoverNewestSnapshotSeq();
    if (Status st = RecoverPrunePosition(); !st.ok() && !options.read_only) return st;
    if (options.verify_on_open && !options.read_only) {
      VerifyReport report = Verify({});
      if (!report.ok) {
        return Status::Corruption("log is broken at seq " + std::to_string(report.first_bad_seq) +
                                  ": " + report.problem);
      }
    }
    if (!options.read_only) {
      if (Status st = IndexIds(); !st.ok()) return st;
    }
    writer_head_ = head_;
    if (!options.read_only) writer_ = std::thread([this] { WriterLoop(); });
    return Status::Ok();
  }

  Result<AppendResult> Append(AppendRequest request) {
    if (options_.read_only) return Status::Invalid("the log is open read-only");
    if (request.events.empty()) return Status::Invalid("an append needs at least one event");
    if (request.events.size() > kMaxEventsPerAppend) {
      return Status::Invalid("an append holds at most " + std::to_string(kMaxEventsPerAppend) +
                             " events");
    }
    if (request.idempotency_key.size() > kMaxIdempotencyKeyBytes) {
      return Status::Invalid("idempotency key longer than " +
                                 std::to_string(kMaxIdempotencyKeyBytes) + " bytes",
                             "Idempotency-Key");
    }
    for (auto& draft : request.events) {
      if (draft.entity().empty()) return Status::Invalid("an event needs an entity", "entity");
      if (draft.entity().find(format::kStreamSeparator) != std::string::npos) {
        return Status::Invalid("entity id contains NUL", "entity");
      }
    }
    Pending pending{std::move(request), {}};
    auto future = pending.done.get_future();
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      if (stopping_) return Status::IOError("the log is closing");
      queue_.push_back(&pending);
    }
    queue_cv_.notify_one();
    return future.get();
  }

  Head head() const {
    std::lock_guard<std::mutex> lock(head_mu_);
    return head_;
  }

  Status Scan(uint64_t from_seq, uint64_t to_seq,
              const std::function<bool(uint64_t, std::string_view)>& fn) const {
    rocksdb::ReadOptions ro;
    std::string upper;
    rocksdb::Slice upper_slice;
    if (to_seq < UINT64_MAX) {
      upper = format::SeqKey(to_seq + 1);
      upper_slice = upper;
      ro.iterate_upper_bound = &upper_slice;
    }
    ro.readahead_size = 2 << 20;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, events_));
    for (it->Seek(format::SeqKey(from_seq)); it->Valid(); it->Next()) {
      uint64_t seq = 0;
      if (!format::ParseSeqKey(View(it->key()), &seq)) {
        return Status::Corruption("malformed key in the events column family");
      }
      if (!fn(seq, View(it->value()))) return Status::Ok();
    }
    return FromRocks(it->status());
  }

  Result<std::vector<StoredEvent>> Read(uint64_t after_seq, size_t limit) const {
    std::vector<StoredEvent> out;
    if (limit == 0 || after_seq == UINT64_MAX) return out;
    Status s = Scan(after_seq + 1, UINT64_MAX, [&](uint64_t seq, std::string_view bytes) {
      out.push_back({seq, std::string(bytes)});
      return out.size() < limit;
    });
    if (!s.ok()) return s;
    return out;
  }

  Result<std::vector<StoredEvent>> ReadStream(std::string_view entity, uint64_t after_version,
                                              size_t limit) const {
    std::vector<StoredEvent> out;
    std::string prefix = format::StreamPrefix(entity);
    rocksdb::ReadOptions ro;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, streams_));
    std::vector<std::string> keys;
    for (it->Seek(format::StreamKey(entity, after_version + 1));
         it->Valid() && it->key().starts_with(prefix) && keys.size() < limit; it->Next()) {
      keys.emplace_back(it->value().data(), it->value().size());
    }
    if (!it->status().ok()) return FromRocks(it->status());
    for (const auto& key : keys) {
      std::string value;
      rocksdb::Status s = db_->Get(ro, events_, key, &value);
      uint64_t seq = 0;
      if (!format::ParseSeqKey(key, &seq)) return Status::Corruption("malformed stream entry");
      if (s.IsNotFound()) {
        return Status::Corruption("stream of " + std::string(entity) + " names missing seq " +
                                  std::to_string(seq));
      }
      if (!s.ok()) return FromRocks(s);
      out.push_back({seq, std::move(value)});
    }
    return out;
  }

  Result<uint64_t> Version(std::string_view entity) const {
    return StoredVersion(entity, rocksdb::ReadOptions());
  }

  VerifyReport Verify(const std::function<void(uint64_t, uint64_t)>& progress) const {
    VerifyReport report;
    const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    ro.fill_cache = false;
    ro.readahead_size = 4 << 20;
    uint64_t stored_head_seq = 0;
    Hash stored_head_hash{};
    int64_t stored_head_time = 0;
    std::string head_value;
    rocksdb::Status hs = db_->Get(ro, meta_, format::kHeadKey, &head_value);
    bool have_head_record = hs.ok() && format::DecodeHead(head_value, &stored_head_seq,
                                                         &stored_head_hash, &stored_head_time);
    uint64_t total = have_head_record ? stored_head_seq : 0;

    auto fail = [&](uint64_t seq, std::string problem) {
      report.ok = false;
      report.first_bad_seq = seq;
      report.problem = std::move(problem);
    };
    Hash prev = kZeroHash;
    int64_t last_time = INT64_MIN;
    std::unordered_map<std::string, uint64_t> versions;
    uint64_t expected = 1;
    EventScratch scratch;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, events_));
    for (it->SeekToFirst(); it->Valid(); it->Next(), ++expected) {
      uint64_t seq = 0;
      if (!format::ParseSeqKey(View(it->key()), &seq)) {
        fail(expected, "malformed key");
        break;
      }
      if (seq != expected) {
        fail(expected, seq > expected ? "event missing (next stored seq is " +
                                            std::to_string(seq) + ")"
                                      : "seq out of order");
        break;
      }
      std::string_view bytes = View(it->value());
      auto decoded = scratch.Read(bytes, DecodeCheck::kFull);
      if (!decoded.ok()) {
        fail(seq, decoded.status().message());
        break;
      }
      auto ev = *decoded;
      if (ev.getSeq() != seq) {
        fail(seq, "stored under seq " + std::to_string(seq) + " but says seq " +
                      std::to_string(ev.getSeq()));
        break;
      }
      auto prev_field = ev.getPrevHash();
      if (prev_field.size() != prev.size() ||
          std::memcmp(prev_field.begin(), prev.data(), prev.size()) != 0) {
        fail(seq, "prevHash does not match the previous event");
        break;
      }
      if (ev.getRecordedAt() < last_time) {
        fail(seq, "recordedAt goes back in time");
        break;
      }
      auto entity = ev.getEntity();
      uint64_t& version = versions[std::string(entity.begin(), entity.size())];
      if (ev.getVersion() != version + 1) {
        fail(seq, "entity version " + std::to_string(ev.getVersion()) + " follows " +
                      std::to_string(version));
        break;
      }
      version = ev.getVersion();
      last_time = ev.getRecordedAt();
      prev = Sha256(bytes);
      report.events = seq;
      report.head_hash = prev;
      if (progress && seq % 65536 == 0) progress(seq, std::max(total, seq));
    }
    if (report.ok && !it->status().ok()) {
      fail(expected, "storage error: " + it->status().ToString());
    }
    if (report.ok) {
      if (report.events > 0 && !have_head_record) {
        fail(report.events, "head record missing");
      } else if (have_head_record && stored_head_seq != report.events) {
        fail(std::min(stored_head_seq, report.events) + 1,
             "head record says seq " + std::to_string(stored_head_seq) + " but the log ends at " +
                 std::to_string(report.events));
      } else if (have_head_record && stored_head_hash != report.head_hash) {
        fail(report.events, "head record hash does not match the last event");
      }
    }
    if (progress) progress(report.events, std::max(total, report.events));
    db_->ReleaseSnapshot(snapshot);
    return report;
  }

  uint64_t WaitForEvents(uint64_t after_seq, std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(head_mu_);
    head_cv_.wait_for(lock, timeout, [&] { return head_.seq > after_seq; });
    return head_.seq;
  }

  Status PutSnapshot(uint64_t seq, std::string_view bytes, size_t keep) {
    if (options_.read_only) return Status::Invalid("the log is open read-only");
    rocksdb::WriteBatch batch;
    batch.Put(snapshots_, format::SeqKey(seq), rocksdb::Slice(bytes.data(), bytes.size()));
    // Older snapshots only cost space: keep the newest `keep`.
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), snapshots_));
    size_t kept = 1;
    for (it->SeekForPrev(format::SeqKey(seq)); it->Valid(); it->Prev()) {
      if (it->key() == rocksdb::Slice(format::SeqKey(seq))) continue;
      if (kept++ >= keep) batch.Delete(snapshots_, it->key());
    }
    if (!it->status().ok()) return FromRocks(it->status());
    // Not synced: a snapshot lost in a crash is rebuilt from the log.
    Status written = FromRocks(db_->Write(rocksdb::WriteOptions(), &batch));
    if (written.ok()) {
      uint64_t newest = newest_snapshot_seq_.load();
      while (seq > newest && !newest_snapshot_seq_.compare_exchange_weak(newest, seq)) {
      }
    }
    return written;
  }

  uint64_t NewestSnapshotSeq() const { return newest_snapshot_seq_.load(); }

  Result<std::optional<AppendResult>> FindIdempotent(const std::string& key,
                                                     const Hash& fingerprint) const {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), idempotency_, key, &value);
    if (s.IsNotFound()) return std::optional<AppendResult>();
    if (!s.ok()) return FromRocks(s);
    Hash seen_fp{};
    AppendResult seen;
    if (!DecodeIdempotency(value, &seen_fp, &seen)) {
      return Status::Corruption("malformed idempotency record");
    }
    auto expired = Expired(seen);
    if (!expired.ok()) return expired.status();
    if (*expired) return std::optional<AppendResult>();
    if (seen_fp != fingerprint) return IdempotencyMismatch();
    seen.replayed = true;
    return std::optional<AppendResult>(seen);
  }

  Result<StoredEvent> SnapshotAtOrBefore(uint64_t at_seq) const {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), snapshots_));
    it->SeekForPrev(format::SeqKey(at_seq));
    if (!it->Valid()) {
      if (!it->status().ok()) return FromRocks(it->status());
      return Status::NotFound("no snapshot at or before seq " + std::to_string(at_seq));
    }
    StoredEvent out;
    if (!format::ParseSeqKey(View(it->key()), &out.seq)) {
      return Status::Corruption("malformed snapshot key");
    }
    out.bytes.assign(it->value().data(), it->value().size());
    return out;
  }

  Status DeleteSnapshots() {
    if (options_.read_only) return Status::Invalid("the log is open read-only");
    rocksdb::WriteBatch batch;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), snapshots_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) batch.Delete(snapshots_, it->key());
    if (!it->status().ok()) return FromRocks(it->status());
    rocksdb::WriteOptions wo;
    wo.sync = true;
    Status written = FromRocks(db_->Write(wo, &batch));
    if (written.ok()) newest_snapshot_seq_ = 0;
    return written;
  }

  Result<BackupSummary> Backup(const std::string& backup_dir,
                               const std::function<void(uint64_t, uint64_t)>& progress) {
    // BackupEngine needs to hold file deletions and read the live WAL,
    // which a read-only database cannot do.
    if (options_.read_only) return Status::Invalid("the log is open read-only");
    if (backup_dir.empty()) return Status::Invalid("no backup directory given");
    // Two engines writing the same directory at once may trash it.
    std::lock_guard<std::mutex> lock(backup_mu_);
    std::error_code ec;
    std::filesystem::create_directories(backup_dir, ec);
    if (ec) return Status::Invalid("cannot create " + backup_dir + ": " + ec.message());
    rocksdb::BackupEngine* raw = nullptr;
    rocksdb::IOStatus opened = rocksdb::BackupEngine::Open(BackupOptions(backup_dir), db_->GetEnv(), &raw);
    if (!opened.ok()) {
      return Status::Invalid("cannot keep backups in " + backup_dir + ": " + opened.ToString());
    }
    std::unique_ptr<rocksdb::BackupEngine> engine(raw);
    uint64_t total = 0;
    std::vector<rocksdb::LiveFileStorageInfo> files;
    if (db_->GetLiveFilesStorageInfo(rocksdb::LiveFilesStorageInfoOptions(), &files).ok()) {
      for (const auto& f : files) total += f.size;
    }
    std::atomic<uint64_t> copied{0};
    rocksdb::CreateBackupOptions create;
    // The live WAL is copied as it stands, so appends never wait for a flush.
    create.flush_before_backup = false;
    create.progress_callback = [&] {
      uint64_t done = copied.fetch_add(kBackupProgressBytes) + kBackupProgressBytes;
      if (progress) progress(std::min(done, total), total);
    };
    rocksdb::BackupID id = 0;
    rocksdb::IOStatus s = engine->CreateNewBackup(create, db_.get(), &id);
    if (!s.ok()) return Status::IOError("backup into " + backup_dir + " failed: " + s.ToString());
    if (progress) progress(total, total);
    return DescribeBackup(*engine, id);
  }

 private:
  // Most id lookups are for ids not taken yet: a Bloom filter answers those
  // without reading a block.
  static rocksdb::ColumnFamilyOptions IdsOptions() {
    rocksdb::ColumnFamilyOptions o;
    rocksdb::BlockBasedTableOptions table;
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    return o;
  }

  // Brings the `ids` column family up to the head: once for a log written
  // before it existed, and for any events appended by such a writer since.
  // An id already indexed keeps its first seq (a log holding an id twice
  // is refused by the fold, which reports it; the index only needs to know
  // the id is taken).
  Status IndexIds() {
    std::string value;
    uint64_t through = 0;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, format::kIdsThroughKey, &value);
    if (s.ok() && value.size() == format::kSeqKeySize) {
      through = format::GetBigEndian64(value.data());
    } else if (!s.ok() && !s.IsNotFound()) {
      return FromRocks(s);
    }
    if (through >= head_.seq) return Status::Ok();
    rocksdb::WriteBatch wb;
    std::unordered_map<std::string, uint64_t> seen;
    EventScratch scratch;
    Status failed = Status::Ok();
    Status scanned = Scan(through + 1, head_.seq, [&](uint64_t seq, std::string_view bytes) {
      auto event = scratch.Read(bytes, DecodeCheck::kFull);
      if (!event.ok()) {
        failed = Status::Corruption("seq " + std::to_string(seq) + ": " + event.status().message());
        return false;
      }
      std::string id(CreatedId(*event));
      if (id.empty() || seen.count(id)) return true;
      std::string ignored;
      rocksdb::Status got = db_->Get(rocksdb::ReadOptions(), ids_, id, &ignored);
      if (got.IsNotFound()) {
        wb.Put(ids_, id, format::SeqKey(seq));
        seen.emplace(id, seq);
      } else if (!got.ok()) {
        failed = FromRocks(got);
        return false;
      }
      return true;
    });
    if (!scanned.ok()) return scanned;
    if (!failed.ok()) return failed;
    wb.Put(meta_, format::kIdsThroughKey, format::SeqKey(head_.seq));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return FromRocks(db_->Write(wo, &wb));
  }

  // Writer thread only. kConflict when an id that `drafts` create is taken,
  // by the log or by an earlier append of this batch (`batch_ids`), or is
  // created twice by `drafts` itself. The Projector decides the command
  // again on the newer state, where it is refused as taken.
  Status CheckNewIds(std::vector<EventDraft>& drafts,
                     const std::unordered_set<std::string>& batch_ids,
                     std::vector<std::string>* created) {
    for (EventDraft& draft : drafts) {
      std::string id(CreatedId(draft.event().asReader()));
      if (id.empty()) continue;
      bool taken = batch_ids.count(id) > 0 ||
                   std::find(created->begin(), created->end(), id) != created->end();
      if (!taken) {
        std::string ignored;
        rocksdb::Status got = db_->Get(rocksdb::ReadOptions(), ids_, id, &ignored);
        if (!got.ok() && !got.IsNotFound()) return FromRocks(got);
        taken = got.ok();
      }
      if (taken) return Status::Conflict("id " + id + " is already taken", "id");
      created->push_back(std::move(id));
    }
    return Status::Ok();
  }

  Status CheckFormat() {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, format::kFormatKey, &value);
    if (s.IsNotFound()) {
      if (options_.read_only) return Status::Ok();
      std::string v;
      format::PutBigEndian64(&v, format::kFormatVersion);
      rocksdb::WriteOptions wo;
      wo.sync = true;
      return FromRocks(db_->Put(wo, meta_, format::kFormatKey, v));
    }
    if (!s.ok()) return FromRocks(s);
    if (value.size() != 8 || format::GetBigEndian64(value.data()) != format::kFormatVersion) {
      return Status::Invalid("unknown log format version");
    }
    return Status::Ok();
  }

  static bool DecodeIdempotency(std::string_view value, Hash* fingerprint, AppendResult* result) {
    if (value.size() != format::kIdempotencyValueSize) return false;
    std::memcpy(fingerprint->data(), value.data(), format::kHashSize);
    result->first_seq = format::GetBigEndian64(value.data() + format::kHashSize);
    result->last_seq = format::GetBigEndian64(value.data() + format::kHashSize + 8);
    return true;
  }

  static Status IdempotencyMismatch() {
    return Status::Invalid("this Idempotency-Key was already used with a different request",
                           "Idempotency-Key");
  }

  // The recordedAt of stored event `seq`.
  Result<int64_t> RecordedAt(uint64_t seq) const {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), events_, format::SeqKey(seq), &value);
    if (!s.ok()) return s.IsNotFound() ? Status::Corruption("idempotency record names a missing seq") : FromRocks(s);
    auto decoded = DecodedEvent::Decode(value);
    if (!decoded.ok()) return decoded.status();
    return (*decoded)->event().getRecordedAt();
  }

  // True when the record's append is older than kIdempotencyRetentionUs: its
  // age is its first event's recordedAt, so the record needs no clock of its own.
  Result<bool> Expired(const AppendResult& record) const {
    auto at = RecordedAt(record.first_seq);
    if (!at.ok()) return at.status();
    return *at <= options_.clock_us() - kIdempotencyRetentionUs;
  }

  // Idempotency keys written by a batch, with their fingerprints and answers.
  using IdempotencyAnswers = std::unordered_map<std::string, std::pair<Hash, AppendResult>>;

  // Writer thread only. Adds to `wb` the deletes of the idempotency records
  // of appends older than the retention, walking the log from where the
  // last pass stopped (meta/idempotency_pruned) for at most
  // kMaxEventsPrunedPerPass events, and the new position; returns that
  // position, which holds once `wb` is written. Reads `events`, never writes
  // them. `now` is the batch's own time (its last event's recordedAt), so
  // pruning takes no extra reading of the clock; a key in `written` (an
  // append of this batch reused it after expiry) keeps its new record.
  uint64_t PruneIdempotency(int64_t now, const IdempotencyAnswers& written,
                            rocksdb::WriteBatch* wb) {
    if (now < prune_not_before_us_) return pruned_through_;
    const int64_t cutoff = now - kIdempotencyRetentionUs;
    uint64_t through = pruned_through_;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), events_));
    size_t walked = 0;
    for (it->Seek(format::SeqKey(through + 1)); it->Valid() && walked < kMaxEventsPrunedPerPass;
         it->Next(), ++walked) {
      uint64_t seq = 0;
      auto decoded = DecodedEvent::Decode(View(it->value()));
      if (!format::ParseSeqKey(View(it->key()), &seq) || !decoded.ok()) break;  // Verify's to report
      auto ev = (*decoded)->event();
      if (ev.getRecordedAt() > cutoff) {
        prune_not_before_us_ = ev.getRecordedAt() + kIdempotencyRetentionUs;
        break;
      }
      if (ev.hasIdempotencyKey() && ev.getIdempotencyKey().size() > 0) {
        std::string key(ev.getIdempotencyKey().cStr());
        if (!written.count(key)) PruneRecord(key, seq, wb);
      }
      through = seq;
    }
    if (through != pruned_through_) {
      std::string position;
      format::PutBigEndian64(&position, through);
      wb->Put(meta_, format::kIdempotencyPrunedKey, position);
    }
    return through;
  }

  // When the writer starts: one pass on its own, judged by the newest
  // event's time (unsynced: a pass lost in a crash is simply redone).
  void PruneIdempotencyAlone() {
    rocksdb::WriteBatch wb;
    uint64_t through = PruneIdempotency(head_.recorded_at_us, {}, &wb);
    if (through != pruned_through_ && db_->Write(rocksdb::WriteOptions(), &wb).ok()) {
      pruned_through_ = through;
    }
  }

  // Deletes the record of `key` if it is the one event `seq`'s append left;
  // a newer append that reused the key after expiry keeps its own.
  void PruneRecord(const std::string& key, uint64_t seq, rocksdb::WriteBatch* wb) {
    std::string value;
    Hash fingerprint{};
    AppendResult record;
    if (!db_->Get(rocksdb::ReadOptions(), idempotency_, key, &value).ok()) return;
    if (!DecodeIdempotency(value, &fingerprint, &record)) return;
    if (record.first_seq <= seq && seq <= record.last_seq) wb->Delete(idempotency_, key);
  }

  // At open: where the last prune stopped (0 when none ever ran).
  Status RecoverPrunePosition() {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, format::kIdempotencyPrunedKey, &value);
    if (s.IsNotFound()) return Status::Ok();
    if (!s.ok()) return FromRocks(s);
    if (value.size() != 8) return Status::Corruption("malformed meta/idempotency_pruned");
    pruned_through_ = format::GetBigEndian64(value.data());
    return Status::Ok();
  }

  // Once, at open: the newest snapshot's key (its value, often many MB, is
  // read along with it, which is why this is remembered, not looked up).
  // Snapshots are a cache: one that cannot be read counts as none, and
  // never stops the log from opening.
  void RecoverNewestSnapshotSeq() {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), snapshots_));
    it->SeekToLast();
    uint64_t seq = 0;
    if (it->Valid() && format::ParseSeqKey(View(it->key()), &seq)) newest_snapshot_seq_ = seq;
  }

  // The head comes from the data itself: the last stored event.
  Status RecoverHead() {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), events_));
    it->SeekToLast();
    if (!it->Valid()) return FromRocks(it->status());
    Head head;
    if (!format::ParseSeqKey(View(it->key()), &head.seq)) {
      return Status::Corruption("malformed key at the end of the log");
    }
    head.hash = Sha256(View(it->value()));
    auto decoded = DecodedEvent::Decode(View(it->value()));
    if (!decoded.ok()) {
      return Status::Corruption("log is broken at seq " + std::to_string(head.seq) + ": " +
                                decoded.status().message());
    }
    head.recorded_at_us = (*decoded)->event().getRecordedAt();
    head_ = head;
    return Status::Ok();
  }

  Result<uint64_t> StoredVersion(std::string_view entity, const rocksdb::ReadOptions& ro) const {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, streams_));
    it->SeekForPrev(format::StreamKey(entity, UINT64_MAX));
    if (!it->Valid()) {
      if (!it->status().ok()) return FromRocks(it->status());
      return uint64_t{0};
    }
    std::string prefix = format::StreamPrefix(entity);
    if (!it->key().starts_with(prefix) || it->key().size() != prefix.size() + 8) {
      return uint64_t{0};
    }
    return format::GetBigEndian64(it->key().data() + prefix.size());
  }

  // Writer thread only.
  Result<uint64_t> CurrentVersion(const std::string& entity,
                                  const std::unordered_map<std::string, uint64_t>& overlay) {
    if (auto it = overlay.find(entity); it != overlay.end()) return it->second;
    if (auto it = versions_.find(entity); it != versions_.end()) return it->second;
    auto stored = StoredVersion(entity, rocksdb::ReadOptions());
    if (stored.ok()) versions_.emplace(entity, *stored);
    return stored;
  }

  void WriterLoop() {
    std::vector<Pending*> batch;
    PruneIdempotencyAlone();
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(queue_mu_);
        queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and everything queued is done
        while (!queue_.empty() && batch.size() < kMaxAppendsPerBatch) {
          batch.push_back(queue_.front());
          queue_.pop_front();
        }
      }
      ProcessBatch(batch);
      batch.clear();
    }
  }

  // Turns every acceptable append of `batch` into one WriteBatch and one
  // synced write, then answers each caller.
  void ProcessBatch(const std::vector<Pending*>& batch) {
    struct Outcome {
      Result<AppendResult> result = Status::IOError("not processed");
      bool needs_write = false;  // answered only if the batch becomes durable
    };
    std::vector<Outcome> outcomes(batch.size());
    rocksdb::WriteBatch wb;
    Head head = writer_head_;
    std::unordered_map<std::string, uint64_t> overlay;
    IdempotencyAnswers batch_keys;
    std::unordered_set<std::string> batch_ids;  // ids created by this batch so far
    bool any_write = false;
    uint64_t pruned = pruned_through_;

    for (size_t i = 0; i < batch.size(); ++i) {
      AppendRequest& req = batch[i]->request;
      Outcome& out = outcomes[i];
      if (!req.idempotency_key.empty()) {
        Hash seen_fp{};
        AppendResult seen;
        bool found = false;
        if (auto it = batch_keys.find(req.idempotency_key); it != batch_keys.end()) {
          std::tie(seen_fp, seen) = it->second;
          found = true;
          out.needs_write = true;
        } else {
          std::string value;
          rocksdb::Status s =
              db_->Get(rocksdb::ReadOptions(), idempotency_, req.idempotency_key, &value);
          if (s.ok()) {
            if (!DecodeIdempotency(value, &seen_fp, &seen)) {
              out.result = Status::Corruption("malformed idempotency record");
              continue;
            }
            auto expired = Expired(seen);
            if (!expired.ok()) {
              out.result = expired.status();
              continue;
            }
            found = !*expired;  // an expired record is a new request's to overwrite
          } else if (!s.IsNotFound()) {
            out.result = FromRocks(s);
            continue;
          }
        }
        if (found) {
          if (seen_fp != req.fingerprint) {
            out.result = IdempotencyMismatch();
          } else {
            seen.replayed = true;
            out.result = seen;
          }
          continue;
        }
      }

      bool refused = false;
      for (const auto& exp : req.expected) {
        auto current = CurrentVersion(exp.entity, overlay);
        if (!current.ok()) {
          out.result = current.status();
          refused = true;
          break;
        }
        if (*current != exp.version) {
          out.result = Status::Conflict(exp.entity + " is at version " +
                                            std::to_string(*current) + ", not " +
                                            std::to_string(exp.version),
                                        "version");
          refused = true;
          break;
        }
      }
      if (refused) continue;
      // Every id the events create must be new: the fold refuses an id
      // used twice, so the writer refuses it first (docs/DECISIONS.md,
      // "A total projection").
      std::vector<std::string> created;
      if (Status st = CheckNewIds(req.events, batch_ids, &created); !st.ok()) {
        out.result = st;
        continue;
      }
      // Versions go into a local map first, so a failed lookup leaves the
      // batch's overlay as it was.
      std::unordered_map<std::string, uint64_t> assigned;
      std::vector<uint64_t> versions;
      for (auto& draft : req.events) {
        auto it = assigned.find(draft.entity());
        uint64_t current = 0;
        if (it != assigned.end()) {
          current = it->second;
        } else {
          auto stored = CurrentVersion(draft.entity(), overlay);
          if (!stored.ok()) {
            out.result = stored.status();
            refused = true;
            break;
          }
          current = *stored;
        }
        assigned[draft.entity()] = current + 1;
        versions.push_back(current + 1);
      }
      if (refused) continue;
      for (auto& [entity, version] : assigned) overlay[entity] = version;

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
        std::memcpy(prev.begin(), head.hash.data(), format::kHashSize);
        std::string bytes = EncodeMessage(draft.message());
        head.hash = Sha256(bytes);
        std::string key = format::SeqKey(head.seq);
        wb.Put(events_, key, bytes);
        wb.Put(streams_, format::StreamKey(draft.entity(), versions[k]), key);
        if (std::string_view id = CreatedId(ev.asReader()); !id.empty()) wb.Put(ids_, id, key);
      }
      result.last_seq = head.seq;
      for (std::string& id : created) batch_ids.insert(std::move(id));
      if (!req.idempotency_key.empty()) {
        std::string value(reinterpret_cast<const char*>(req.fingerprint.data()),
                          format::kHashSize);
        format::PutBigEndian64(&value, result.first_seq);
        format::PutBigEndian64(&value, result.last_seq);
        wb.Put(idempotency_, req.idempotency_key, value);
        batch_keys[req.idempotency_key] = {req.fingerprint, result};
      }
      out.result = result;
      out.needs_write = true;
      any_write = true;
    }

    Status written = Status::Ok();
    if (any_write) {
      // Expired idempotency records go with the batch.
      pruned = PruneIdempotency(head.recorded_at_us, batch_keys, &wb);
      wb.Put(meta_, format::kHeadKey, format::EncodeHead(head.seq, head.hash, head.recorded_at_us));
      wb.Put(meta_, format::kIdsThroughKey, format::SeqKey(head.seq));
      rocksdb::WriteOptions wo;
      wo.sync = true;
      auto started = std::chrono::steady_clock::now();
      written = FromRocks(db_->Write(wo, &wb));
      if (options_.on_batch) {
        size_t appends = 0;
        for (const auto& o : outcomes) appends += o.needs_write && o.result.ok() && !o.result->replayed;
        options_.on_batch(appends, head.seq - writer_head_.seq,
                          written.ok() ? head.seq : writer_head_.seq,
                          std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - started)
                              .count(),
                          written);
      }
      if (written.ok()) {
        pruned_through_ = pruned;
        for (auto& [entity, version] : overlay) versions_[entity] = version;
        writer_head_ = head;
        {
          std::lock_guard<std::mutex> lock(head_mu_);
          head_ = head;
        }
        head_cv_.notify_all();
      } else {
        // Nothing is known to be durable: forget the overlay, keep the old head.
        written = Status::IOError("append not durable: " + written.message());
      }
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (outcomes[i].needs_write && !written.ok()) outcomes[i].result = written;
      batch[i]->done.set_value(std::move(outcomes[i].result));
    }
  }

  OpenOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* events_ = nullptr;
  rocksdb::ColumnFamilyHandle* streams_ = nullptr;
  rocksdb::ColumnFamilyHandle* idempotency_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* snapshots_ = nullptr;
  rocksdb::ColumnFamilyHandle* ids_ = nullptr;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Pending*> queue_;
  bool stopping_ = false;
  std::thread writer_;

  // Writer thread only: the head as the writer has made it durable, and the
  // committed version of every entity it has looked at.
  Head writer_head_;
  std::unordered_map<std::string, uint64_t> versions_;
  uint64_t pruned_through_ = 0;       // meta/idempotency_pruned
  int64_t prune_not_before_us_ = 0;   // no record expires before this

  mutable std::mutex head_mu_;
  mutable std::condition_variable head_cv_;
  Head head_;  // guarded by head_mu_: the last durable event

  std::atomic<uint64_t> newest_snapshot_seq_{0};  // 0: none

  std::mutex backup_mu_;  // one backup at a time
};

EventStore::EventStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EventStore::~EventStore() = default;

Result<std::unique_ptr<EventStore>> EventStore::Open(const std::string& dir,
                                                     const OpenOptions& options) {
  auto impl = std::make_unique<Impl>();
  if (Status s = impl->Open(dir, options); !s.ok()) return s;
  return std::unique_ptr<EventStore>(new EventStore(std::move(impl)));
}

Result<AppendResult> EventStore::Append(AppendRequest request) {
  return impl_->Append(std::move(request));
}
Head EventStore::head() const { return impl_->head(); }
Status EventStore::Scan(uint64_t from_seq, uint64_t to_seq,
                        const std::function<bool(uint64_t, std::string_view)>& fn) const {
  return impl_->Scan(from_seq, to_seq, fn);
}
Result<std::vector<StoredEvent>> EventStore::Read(uint64_t after_seq, size_t limit) const {
  return impl_->Read(after_seq, limit);
}
Result<std::vector<StoredEvent>> EventStore::ReadStream(std::string_view entity,
                                                        uint64_t after_version,
                                                        size_t limit) const {
  return impl_->ReadStream(entity, after_version, limit);
}
Result<uint64_t> EventStore::Version(std::string_view entity) const {
  return impl_->Version(entity);
}
VerifyReport EventStore::Verify(const std::function<void(uint64_t, uint64_t)>& progress) const {
  return impl_->Verify(progress);
}
uint64_t EventStore::WaitForEvents(uint64_t after_seq, std::chrono::milliseconds timeout) const {
  return impl_->WaitForEvents(after_seq, timeout);
}
Status EventStore::PutSnapshot(uint64_t seq, std::string_view bytes, size_t keep) {
  return impl_->PutSnapshot(seq, bytes, keep);
}
Result<std::optional<AppendResult>> EventStore::FindIdempotent(const std::string& key,
                                                              const Hash& fingerprint) const {
  return impl_->FindIdempotent(key, fingerprint);
}
Result<StoredEvent> EventStore::SnapshotAtOrBefore(uint64_t at_seq) const {
  return impl_->SnapshotAtOrBefore(at_seq);
}
Status EventStore::DeleteSnapshots() { return impl_->DeleteSnapshots(); }
uint64_t EventStore::NewestSnapshotSeq() const { return impl_->NewestSnapshotSeq(); }

Result<BackupSummary> EventStore::Backup(const std::string& backup_dir,
                                         const std::function<void(uint64_t, uint64_t)>& progress) {
  return impl_->Backup(backup_dir, progress);
}

Result<std::vector<BackupSummary>> EventStore::ListBackups(const std::string& backup_dir) {
  auto engine = OpenBackupsForReading(backup_dir);
  if (!engine.ok()) return engine.status();
  std::vector<rocksdb::BackupInfo> infos;
  (*engine)->GetBackupInfo(&infos);
  std::vector<BackupSummary> out;
  for (const auto& info : infos) {
    auto summary = DescribeBackup(**engine, info.backup_id);
    if (!summary.ok()) return summary.status();
    out.push_back(*summary);
  }
  return out;
}

Result<BackupSummary> EventStore::Restore(const std::string& backup_dir, const std::string& data_dir,
                                          uint32_t backup_id) {
  std::error_code ec;
  if (std::filesystem::exists(data_dir, ec) && !std::filesystem::is_empty(data_dir, ec)) {
    return Status::Invalid(data_dir + " is not empty: restore into a new directory");
  }
  auto engine = OpenBackupsForReading(backup_dir);
  if (!engine.ok()) return engine.status();
  if (backup_id == 0) {
    rocksdb::BackupInfo latest;
    if (!(*engine)->GetLatestBackupInfo(&latest).ok()) {
      return Status::NotFound("no usable backup in " + backup_dir);
    }
    backup_id = latest.backup_id;
  }
  rocksdb::BackupInfo info;
  if (!(*engine)->GetBackupInfo(backup_id, &info).ok()) {
    return Status::NotFound("no usable backup " + std::to_string(backup_id) + " in " + backup_dir);
  }
  // Every file against the checksum taken when it was backed up, before
  // anything is written into data_dir.
  if (rocksdb::IOStatus s = (*engine)->VerifyBackup(backup_id, /*verify_with_checksum=*/true);
      !s.ok()) {
    return Status::Corruption("backup " + std::to_string(backup_id) + " is damaged: " +
                              s.ToString());
  }
  rocksdb::IOStatus s =
      (*engine)->RestoreDBFromBackup(rocksdb::RestoreOptions(), backup_id, data_dir, data_dir);
  if (!s.ok()) return Status::IOError("restore into " + data_dir + " failed: " + s.ToString());
  return DescribeBackup(**engine, backup_id);
}

}  // namespace okr
