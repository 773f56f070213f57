#include "eventstore/event_store.h"

#include <rocksdb/env.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>

#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <filesystem>

#include "eventstore/base/clock.h"
#include "eventstore/base/thread_name.h"
#include "eventstore/format.h"
#include "eventstore/read_ahead.h"
#include "eventstore/sealing.h"
#include "eventstore/store_impl.h"

namespace okr {

EventDraft::EventDraft(std::string_view actor, std::string_view entity, std::string_view reason)
    : message_(std::make_unique<capnp::MallocMessageBuilder>()), entity_(entity) {
  auto ev = message_->initRoot<schema::Event>();
  ev.setActor(std::string(actor));
  ev.setEntity(std::string(entity));
  if (!reason.empty()) ev.setReason(std::string(reason));
  ev.initPrevHash(format::kHashSize);
}

void EventDraft::SetPersonal(schema::PersonalField field, std::string_view text,
                             std::string_view subject) {
  if (text.empty()) return;
  if (subject.empty()) {
    [[maybe_unused]] bool set = SetBodyText(event(), field, text);
    assert(set && "the event's type has this field");
    return;
  }
  personal_.push_back({field, std::string(subject), std::string(text)});
}

Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::Ok();
  if (s.IsNotFound()) return Status::NotFound(s.ToString());
  if (s.IsCorruption()) return Status::Corruption(s.ToString());
  if (s.IsInvalidArgument()) return Status::Invalid(s.ToString());
  return Status::IOError(s.ToString());
}

namespace {

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

bool HasColumnFamily(const rocksdb::Options& options, const std::string& dir,
                     const std::string& name) {
  std::vector<std::string> names;
  if (!rocksdb::DB::ListColumnFamilies(options, dir, &names).ok()) return false;
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Verify reports progress after each this many events.
constexpr uint64_t kVerifyProgressEvents = 65536;

int64_t MicrosSince(std::chrono::steady_clock::time_point started) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                               started)
      .count();
}

// For a column family whose keys are appended in order within each first
// byte (`events`: one BE64 seq range; `tree`: one per level): the memtable
// keeps where it inserted last for each first byte and inserts the next
// key from there, instead of searching its skip list from the top.
rocksdb::ColumnFamilyOptions AppendOrderedOptions() {
  rocksdb::ColumnFamilyOptions options;
  options.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(1));
  return options;
}

// The log is read front to back (replays, checks, bulk readers) and
// almost never one event alone: 32 KiB blocks in LZ4 scan about 1.8 times
// as fast as RocksDB's 4 KiB in Snappy and take less disk (docs/BENCHMARKS.md).
// Tables written before keep their blocks until compaction rewrites them.
rocksdb::ColumnFamilyOptions EventsOptions() {
  constexpr size_t kEventsBlockBytes = 32 << 10;
  rocksdb::ColumnFamilyOptions options = AppendOrderedOptions();
  rocksdb::BlockBasedTableOptions table;
  table.block_size = kEventsBlockBytes;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  options.compression = rocksdb::kLZ4Compression;
  return options;
}

}  // namespace

// The meta/head record as stored; nullopt when it is missing or malformed
// (Verify reports either as a problem when the log is not empty).
std::optional<Head> EventStore::Impl::ReadHeadRecord(const rocksdb::ReadOptions& ro) const {
  std::string value;
  Head head;
  if (!db_->Get(ro, meta_, format::kHeadKey, &value).ok()) return std::nullopt;
  if (!format::DecodeHead(value, &head.seq, &head.hash, &head.recorded_at_us)) return std::nullopt;
  return head;
}

EventStore::Impl::~Impl() {
  StopBackgroundCheck();
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) {
    writer_.join();
    StoreFinalCheckpoint();
    // A clean stop leaves the next open nothing to replay: the memtables
    // (tens of MB of events and tree nodes on a busy log, seconds of WAL
    // replay at the next start) go to table files now. A failure only
    // leaves the WAL to be replayed.
    rocksdb::FlushOptions flush;
    flush.wait = true;
    db_->Flush(flush, handles_).PermitUncheckedError();
  }
  assert(queue_.empty() && "the writer answers every queued append before it stops");
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  handles_.clear();
  if (db_ != nullptr) db_->Close();
}

Status EventStore::Impl::Open(const std::string& dir, const OpenOptions& options) {
  options_ = options;
  if (!options_.clock_us) options_.clock_us = SystemClockUs;
  OKR_RETURN_IF_ERROR(OpenDatabase(dir, options));
  OKR_RETURN_IF_ERROR(CheckFormat());
  // Read-only opens are for forensics: a log whose head or prune position
  // cannot be read still opens, to be looked at.
  if (Status st = RecoverHead(); !st.ok() && !options.read_only) return st;
  RecoverNewestSnapshotSeq();
  if (Status st = RecoverPrunePosition(); !st.ok() && !options.read_only) return st;
  if (!options.read_only) {
    OKR_RETURN_IF_ERROR(CheckOnOpen());
    OKR_RETURN_IF_ERROR(IndexIds());
  } else {
    RecoverRootReadOnly();
  }
  writer_head_ = head_;
  if (!options.read_only) writer_ = NamedThread("okr:writer", [this] { WriterLoop(); });
  if (CurrentCheck().state == LogCheck::State::kChecking) StartBackgroundCheck();
  return Status::Ok();
}

// A writer checks the log before it appends to it: with a signing key and
// a stored checkpoint only the events after the checkpoint now, and the
// whole log in the background; else the whole chain now. The tree is
// built (once, for an older log) from events the check covers.
Status EventStore::Impl::CheckOnOpen() {
  std::optional<std::string> note;
  if (options_.signing_key && options_.verify_on_open) {
    OKR_ASSIGN_OR_RETURN(note, StoredCheckpoint());
  }
  if (note && CheckpointByOurKey(*note)) {
    OKR_RETURN_IF_ERROR(BuildTree());
    OKR_RETURN_IF_ERROR(CheckTailOnOpen(*note));
    std::lock_guard<std::mutex> lock(check_mu_);
    check_.state = LogCheck::State::kChecking;
    return Status::Ok();
  }
  if (options_.verify_on_open) OKR_RETURN_IF_ERROR(VerifyOnOpen());
  return BuildTree();
}

Status EventStore::Impl::OpenDatabase(const std::string& dir, const OpenOptions& options) {
  assert(db_ == nullptr && handles_.empty());
  rocksdb::Options db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = true;
  if (options.env != nullptr) db_options.env = options.env;
  // Only for the real file system: tests that inject faults through
  // `env` keep RocksDB's own logger on it.
  if (!options.read_only && options.env == nullptr) {
    db_options.info_log = InfoLog::Open(dir, options.create_if_missing);
  }
  // The order of this list is the order of handles_ below.
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {format::kEventsCf, EventsOptions()},
      {format::kStreamsCf, rocksdb::ColumnFamilyOptions()},
      {format::kIdempotencyCf, rocksdb::ColumnFamilyOptions()},
      {format::kMetaCf, rocksdb::ColumnFamilyOptions()},
      {format::kSnapshotsCf, rocksdb::ColumnFamilyOptions()},
      {format::kIdsCf, IdsOptions()},
      {format::kTreeCf, AppendOrderedOptions()},
  };
  // A read-only open cannot create the `tree` of a log written before it.
  if (options.read_only && !HasColumnFamily(db_options, dir, format::kTreeCf)) cfs.pop_back();
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = options.read_only
                          ? rocksdb::DB::OpenForReadOnly(db_options, dir, cfs, &handles_, &db)
                          : rocksdb::DB::Open(db_options, dir, cfs, &handles_, &db);
  if (!s.ok()) return FromRocks(s);
  assert(db != nullptr && handles_.size() == cfs.size());
  db_.reset(db);
  events_ = handles_[1];
  streams_ = handles_[2];
  idempotency_ = handles_[3];
  meta_ = handles_[4];
  snapshots_ = handles_[5];
  ids_ = handles_[6];
  tree_ = handles_.size() > 7 ? handles_[7] : nullptr;
  return Status::Ok();
}

Status EventStore::Impl::CheckFormat() {
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

// The head comes from the data itself: the last stored event.
Status EventStore::Impl::RecoverHead() {
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

// A writer refuses a broken log: appending to it would chain new events to
// a head that is not what the log says it is.
Status EventStore::Impl::VerifyOnOpen() {
  auto started = std::chrono::steady_clock::now();
  VerifyReport report = Verify({});
  if (report.ok) {
    std::lock_guard<std::mutex> lock(check_mu_);
    check_.state = LogCheck::State::kVerified;
    check_.checked = check_.total = check_.open_checked = report.events;
    check_.took_us = MicrosSince(started);
    return Status::Ok();
  }
  return Status::Corruption("log is broken at seq " + std::to_string(report.first_bad_seq) + ": " +
                            report.problem);
}

VerifyReport EventStore::Impl::Verify(
    const std::function<void(uint64_t, uint64_t)>& progress) const {
  // One snapshot for the head record and every event: appends made during
  // the check are neither half seen nor compared with a newer head.
  const BulkRead bulk(db_.get());
  const rocksdb::ReadOptions& ro = bulk.options();
  const std::optional<Head> stored_head = ReadHeadRecord(ro);
  const uint64_t total = stored_head ? stored_head->seq : 0;
  ChainChecker chain(ChainSource::kStored);
  SizeForWholeLog(&chain);
  // The log is read on a thread of its own while this one hashes; what
  // ended the reading early is told once the events before it are checked.
  bool malformed_key = false;
  std::string storage_error;
  auto read = [&](const EventSink& sink) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, events_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      uint64_t seq = 0;
      malformed_key = !format::ParseSeqKey(View(it->key()), &seq);
      if (malformed_key || !sink(seq, View(it->value()))) return Status::Ok();
    }
    if (!it->status().ok()) storage_error = it->status().ToString();
    return Status::Ok();
  };
  (void)ReadAhead(read, [&](uint64_t seq, std::string_view bytes) {
    if (!chain.Add(seq, bytes)) return false;
    if (progress && seq % kVerifyProgressEvents == 0) progress(seq, std::max(total, seq));
    return true;
  });
  if (chain.report().ok && malformed_key) chain.Fail(chain.next_seq(), "malformed key");
  if (chain.report().ok && !storage_error.empty()) {
    chain.Fail(chain.next_seq(), "storage error: " + storage_error);
  }
  CheckHeadRecord(stored_head, &chain);
  CheckedWholeLog(chain);
  const VerifyReport& report = chain.report();
  assert(report.ok == (report.first_bad_seq == 0));
  if (progress) progress(report.events, std::max(total, report.events));
  return report;
}

void EventStore::Impl::CheckedWholeLog(const ChainChecker& chain) const {
  size_t seen = entities_checked_.load(std::memory_order_relaxed);
  while (chain.entities() > seen && !entities_checked_.compare_exchange_weak(
                                        seen, chain.entities(), std::memory_order_relaxed)) {
  }
}

void EventStore::Impl::CheckHeadRecord(const std::optional<Head>& stored, ChainChecker* chain) {
  const VerifyReport& report = chain->report();
  if (!report.ok) return;  // the chain's own problem comes first
  if (!stored) {
    if (report.events > 0) chain->Fail(report.events, "head record missing");
  } else if (stored->seq != report.events) {
    chain->Fail(std::min(stored->seq, report.events) + 1,
                "head record says seq " + std::to_string(stored->seq) + " but the log ends at " +
                    std::to_string(report.events));
  } else if (stored->hash != report.head_hash) {
    chain->Fail(report.events, "head record hash does not match the last event");
  }
}

Head EventStore::Impl::head() const {
  std::lock_guard<std::mutex> lock(head_mu_);
  return head_;
}

uint64_t EventStore::Impl::WaitForEvents(uint64_t after_seq,
                                         std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(head_mu_);
  head_cv_.wait_for(lock, timeout, [&] { return head_.seq > after_seq; });
  return head_.seq;
}

Result<uint64_t> EventStore::Impl::Version(std::string_view entity) const {
  return StoredVersion(entity, rocksdb::ReadOptions());
}

struct EventCursor::State {
  std::string upper;  // the key after to_seq; upper_slice points into it
  rocksdb::Slice upper_slice;
  std::string first;  // the key of from_seq, sought on the first Next
  std::unique_ptr<rocksdb::Iterator> it;
  bool started = false;
};

EventCursor::EventCursor(std::unique_ptr<State> state) : state_(std::move(state)) {
  assert(state_ && state_->it);
}
EventCursor::~EventCursor() = default;

Status EventCursor::Next(const std::function<bool(uint64_t, std::string_view)>& fn) {
  rocksdb::Iterator* it = state_->it.get();
  if (!state_->started) {
    it->Seek(state_->first);
    state_->started = true;
  }
  for (; it->Valid();) {
    uint64_t seq = 0;
    if (!format::ParseSeqKey(View(it->key()), &seq)) {
      return Status::Corruption("malformed key in the events column family");
    }
    const bool more = fn(seq, View(it->value()));
    it->Next();  // the event is taken whatever fn answered
    if (!more) return Status::Ok();
  }
  return FromRocks(it->status());
}

std::unique_ptr<EventCursor> EventStore::Impl::OpenCursor(uint64_t from_seq, uint64_t to_seq,
                                                          bool fill_cache, size_t readahead) const {
  auto state = std::make_unique<EventCursor::State>();
  rocksdb::ReadOptions ro;
  ro.fill_cache = fill_cache;
  if (to_seq < UINT64_MAX) {
    state->upper = format::SeqKey(to_seq + 1);
    state->upper_slice = state->upper;
    ro.iterate_upper_bound = &state->upper_slice;  // lives as long as the iterator
  }
  ro.readahead_size = readahead;
  state->first = format::SeqKey(from_seq);
  state->it.reset(db_->NewIterator(ro, events_));
  return std::make_unique<EventCursor>(std::move(state));
}

Status EventStore::Impl::Scan(uint64_t from_seq, uint64_t to_seq,
                              const std::function<bool(uint64_t, std::string_view)>& fn) const {
  return OpenCursor(from_seq, to_seq, /*fill_cache=*/true)->Next(fn);
}

Result<std::vector<StoredEvent>> EventStore::Impl::Read(uint64_t after_seq, size_t limit) const {
  std::vector<StoredEvent> out;
  if (limit == 0 || after_seq == UINT64_MAX) return out;
  OKR_RETURN_IF_ERROR(Scan(after_seq + 1, UINT64_MAX, [&](uint64_t seq, std::string_view bytes) {
    out.push_back({seq, std::string(bytes)});
    return out.size() < limit;
  }));
  assert(out.size() <= limit);
  return out;
}

Result<std::vector<StoredEvent>> EventStore::Impl::ReadStream(std::string_view entity,
                                                              uint64_t after_version,
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

Result<uint64_t> EventStore::Impl::StoredVersion(std::string_view entity,
                                                 const rocksdb::ReadOptions& ro) const {
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

EventStore::EventStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EventStore::~EventStore() = default;

Result<std::unique_ptr<EventStore>> EventStore::Open(const std::string& dir,
                                                     const OpenOptions& options) {
  auto impl = std::make_unique<Impl>();
  OKR_RETURN_IF_ERROR(impl->Open(dir, options));
  return std::unique_ptr<EventStore>(new EventStore(std::move(impl)));
}

Result<AppendResult> EventStore::Append(AppendRequest request) {
  return impl_->Append(std::move(request));
}
Result<AppendResult> EventStore::AppendStored(std::vector<StoredEvent> events) {
  return AppendStored(PrepareStored(std::move(events)));
}
Result<AppendResult> EventStore::AppendStored(PreparedStored events) {
  return impl_->AppendStored(std::move(events.state_));
}
Head EventStore::head() const { return impl_->head(); }
Status EventStore::Scan(uint64_t from_seq, uint64_t to_seq,
                        const std::function<bool(uint64_t, std::string_view)>& fn) const {
  return impl_->Scan(from_seq, to_seq, fn);
}
// A cursor serves bulk readers (GET /v1/events/raw, up to 100,000 events
// an answer): the blocks it reads once are kept out of the block cache,
// where they would evict what the other requests read.
std::unique_ptr<EventCursor> EventStore::OpenCursor(uint64_t from_seq, uint64_t to_seq,
                                                    size_t readahead) const {
  return impl_->OpenCursor(from_seq, to_seq, /*fill_cache=*/false, readahead);
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
void EventStore::SetDurableListener(DurableListener listener) {
  impl_->SetDurableListener(std::move(listener));
}
Status EventStore::PutSnapshot(uint64_t seq, const std::vector<std::string>& parts, size_t keep) {
  return impl_->PutSnapshot(seq, parts, keep);
}
Result<std::optional<AppendResult>> EventStore::FindIdempotent(const std::string& key,
                                                               const Hash& fingerprint) const {
  return impl_->FindIdempotent(key, fingerprint);
}
Result<uint64_t> EventStore::ReadSnapshot(
    uint64_t at_seq, const std::function<bool(std::string_view part)>& part) const {
  return impl_->ReadSnapshot(at_seq, part);
}
Result<StoredSnapshot> EventStore::SnapshotAtOrBefore(uint64_t at_seq) const {
  StoredSnapshot out;
  OKR_ASSIGN_OR_RETURN(out.seq, impl_->ReadSnapshot(at_seq, [&out](std::string_view part) {
    out.parts.emplace_back(part);
    return true;
  }));
  return out;
}
Result<Hash> EventStore::TreeRoot(uint64_t size) const { return impl_->TreeRoot(size); }
Result<Hash> EventStore::LeafHash(uint64_t seq) const { return impl_->LeafHash(seq); }
Result<std::vector<Hash>> EventStore::InclusionProof(uint64_t seq, uint64_t size) const {
  return impl_->InclusionProof(seq, size);
}
Result<std::vector<Hash>> EventStore::ConsistencyProof(uint64_t from, uint64_t to) const {
  return impl_->ConsistencyProof(from, to);
}
Status EventStore::SetSigningKey(std::shared_ptr<const SigningKey> key, std::string origin) {
  return impl_->SetSigningKey(std::move(key), std::move(origin));
}
Result<std::optional<std::string>> EventStore::StoredCheckpoint() const {
  return impl_->StoredCheckpoint();
}
VerifyReport EventStore::VerifyTree(const std::function<void(uint64_t, uint64_t)>& progress) const {
  return impl_->VerifyTree(progress);
}
LogCheck EventStore::BackgroundCheck() const { return impl_->CurrentCheck(); }
Status EventStore::DeleteSnapshots() { return impl_->DeleteSnapshots(); }
uint64_t EventStore::NewestSnapshotSeq() const { return impl_->NewestSnapshotSeq(); }

}  // namespace okr
