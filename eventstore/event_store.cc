#include "eventstore/event_store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cassert>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "eventstore/format.h"

namespace okr {

std::string Status::ToString() const {
  static const char* const kNames[] = {"ok",      "not found",  "conflict", "already exists",
                                       "failed precondition", "permission denied", "invalid",
                                       "corruption",
                                       "io error"};
  std::string out = kNames[static_cast<int>(code_)];
  if (!message_.empty()) out += ": " + message_;
  return out;
}

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

int64_t SystemClockUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// The writer drains at most this many appends into one batch and one sync.
constexpr size_t kMaxAppendsPerBatch = 1024;

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
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
        {format::kEventsCf, rocksdb::ColumnFamilyOptions()},
        {format::kStreamsCf, rocksdb::ColumnFamilyOptions()},
        {format::kIdempotencyCf, rocksdb::ColumnFamilyOptions()},
        {format::kMetaCf, rocksdb::ColumnFamilyOptions()},
        {format::kSnapshotsCf, rocksdb::ColumnFamilyOptions()},
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

    if (Status st = CheckFormat(); !st.ok()) return st;
    if (Status st = RecoverHead(); !st.ok() && !options.read_only) return st;
    if (options.verify_on_open && !options.read_only) {
      VerifyReport report = Verify({});
      if (!report.ok) {
        return Status::Corruption("log is broken at seq " + std::to_string(report.first_bad_seq) +
                                  ": " + report.problem);
      }
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
      auto decoded = DecodedEvent::Decode(bytes);
      if (!decoded.ok()) {
        fail(seq, decoded.status().message());
        break;
      }
      auto ev = (*decoded)->event();
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
    return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch));
  }

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
    return FromRocks(db_->Write(wo, &batch));
  }

 private:
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
    std::unordered_map<std::string, std::pair<Hash, AppendResult>> batch_keys;
    bool any_write = false;

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
            found = true;
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
      // Versions are read before any is assigned, so a failed lookup leaves
      // the overlay untouched.
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
        ev.setEntity(draft.entity());
        ev.setVersion(versions[k]);
        ev.setIdempotencyKey(req.idempotency_key);
        auto prev = ev.getPrevHash();
        if (prev.size() != format::kHashSize) prev = ev.initPrevHash(format::kHashSize);
        std::memcpy(prev.begin(), head.hash.data(), format::kHashSize);
        std::string bytes = EncodeMessage(draft.message());
        head.hash = Sha256(bytes);
        std::string key = format::SeqKey(head.seq);
        wb.Put(events_, key, bytes);
        wb.Put(streams_, format::StreamKey(draft.entity(), versions[k]), key);
      }
      result.last_seq = head.seq;
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
      wb.Put(meta_, format::kHeadKey, format::EncodeHead(head.seq, head.hash, head.recorded_at_us));
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

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Pending*> queue_;
  bool stopping_ = false;
  std::thread writer_;

  // Writer thread only: the head as the writer has made it durable, and the
  // committed version of every entity it has looked at.
  Head writer_head_;
  std::unordered_map<std::string, uint64_t> versions_;

  mutable std::mutex head_mu_;
  mutable std::condition_variable head_cv_;
  Head head_;  // guarded by head_mu_: the last durable event
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

}  // namespace okr
