// Idempotency records (docs/FORMAT.md, "idempotency"): the first answer to
// a keyed append, kept for kIdempotencyRetentionUs after its recordedAt,
// then deleted by the writer as it walks the log behind the retention.
#include <rocksdb/write_batch.h>

#include <cassert>
#include <cstring>

#include "eventstore/format.h"
#include "eventstore/store_impl.h"

namespace okr {

std::string EncodeIdempotency(const IdempotencyRecord& record) {
  assert(record.answer.first_seq > 0 && record.answer.first_seq <= record.answer.last_seq);
  std::string value(reinterpret_cast<const char*>(record.fingerprint.data()), format::kHashSize);
  format::PutBigEndian64(&value, record.answer.first_seq);
  format::PutBigEndian64(&value, record.answer.last_seq);
  assert(value.size() == format::kIdempotencyValueSize);
  return value;
}

bool DecodeIdempotency(std::string_view value, IdempotencyRecord* record) {
  if (value.size() != format::kIdempotencyValueSize) return false;
  std::memcpy(record->fingerprint.data(), value.data(), format::kHashSize);
  record->answer.first_seq = format::GetBigEndian64(value.data() + format::kHashSize);
  record->answer.last_seq = format::GetBigEndian64(value.data() + format::kHashSize + 8);
  return true;
}

Result<std::optional<AppendResult>> EventStore::Impl::FindIdempotent(
    const std::string& key, const Hash& fingerprint) const {
  OKR_ASSIGN_OR_RETURN(std::optional<IdempotencyRecord> record, LiveIdempotencyRecord(key));
  if (!record) return std::optional<AppendResult>();
  OKR_ASSIGN_OR_RETURN(AppendResult answer, AnswerIdempotent(*record, fingerprint));
  return std::optional<AppendResult>(answer);
}

Result<AppendResult> EventStore::Impl::AnswerIdempotent(const IdempotencyRecord& record,
                                                        const Hash& fingerprint) {
  if (record.fingerprint != fingerprint) {
    return Status::Invalid("this Idempotency-Key was already used with a different request",
                           "Idempotency-Key");
  }
  AppendResult answer = record.answer;
  answer.replayed = true;
  return answer;
}

// The stored record of `key`; nullopt when there is none or it has expired
// (a new request may then use the key).
Result<std::optional<IdempotencyRecord>> EventStore::Impl::LiveIdempotencyRecord(
    const std::string& key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), idempotency_, key, &value);
  if (s.IsNotFound()) return std::optional<IdempotencyRecord>();
  if (!s.ok()) return FromRocks(s);
  IdempotencyRecord record;
  if (!DecodeIdempotency(value, &record)) {
    return Status::Corruption("malformed idempotency record");
  }
  OKR_ASSIGN_OR_RETURN(bool expired, Expired(record.answer));
  if (expired) return std::optional<IdempotencyRecord>();
  return std::optional<IdempotencyRecord>(record);
}

// The recordedAt of stored event `seq`.
Result<int64_t> EventStore::Impl::RecordedAt(uint64_t seq) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), events_, format::SeqKey(seq), &value);
  if (s.IsNotFound()) return Status::Corruption("idempotency record names a missing seq");
  if (!s.ok()) return FromRocks(s);
  OKR_ASSIGN_OR_RETURN(auto decoded, DecodedEvent::Decode(value));
  return decoded->event().getRecordedAt();
}

// True when the record's append is older than kIdempotencyRetentionUs: its
// age is its first event's recordedAt, so the record needs no clock of its own.
Result<bool> EventStore::Impl::Expired(const AppendResult& record) const {
  OKR_ASSIGN_OR_RETURN(int64_t at, RecordedAt(record.first_seq));
  return at <= options_.clock_us() - kIdempotencyRetentionUs;
}

// Writer thread only. Adds to `wb` the deletes of the idempotency records
// of appends older than the retention, walking the log from where the
// last pass stopped (meta/idempotency_pruned) for at most
// kMaxEventsPrunedPerPass events, and the new position; returns that
// position, which holds once `wb` is written. Reads `events`, never writes
// them. `now` is the batch's own time (its last event's recordedAt), so
// pruning takes no extra reading of the clock; a key in `written` (an
// append of this batch reused it after expiry) keeps its new record.
uint64_t EventStore::Impl::PruneIdempotency(int64_t now, const IdempotencyAnswers& written,
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
    assert(seq > through && "the log is walked forward");
    through = seq;
  }
  if (through != pruned_through_) {
    std::string position;
    format::PutBigEndian64(&position, through);
    wb->Put(meta_, format::kIdempotencyPrunedKey, position);
  }
  assert(through >= pruned_through_);
  return through;
}

// When the writer starts: one pass on its own, judged by the newest
// event's time (unsynced: a pass lost in a crash is simply redone).
void EventStore::Impl::PruneIdempotencyAlone() {
  rocksdb::WriteBatch wb;
  uint64_t through = PruneIdempotency(head_.recorded_at_us, {}, &wb);
  if (through != pruned_through_ && db_->Write(rocksdb::WriteOptions(), &wb).ok()) {
    pruned_through_ = through;
  }
}

// Deletes the record of `key` if it is the one event `seq`'s append left;
// a newer append that reused the key after expiry keeps its own.
void EventStore::Impl::PruneRecord(const std::string& key, uint64_t seq, rocksdb::WriteBatch* wb) {
  std::string value;
  IdempotencyRecord record;
  if (!db_->Get(rocksdb::ReadOptions(), idempotency_, key, &value).ok()) return;
  if (!DecodeIdempotency(value, &record)) return;
  if (record.answer.first_seq <= seq && seq <= record.answer.last_seq) {
    wb->Delete(idempotency_, key);
  }
}

// At open: where the last prune stopped (0 when none ever ran).
Status EventStore::Impl::RecoverPrunePosition() {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), meta_, format::kIdempotencyPrunedKey, &value);
  if (s.IsNotFound()) return Status::Ok();
  if (!s.ok()) return FromRocks(s);
  if (value.size() != 8) return Status::Corruption("malformed meta/idempotency_pruned");
  pruned_through_ = format::GetBigEndian64(value.data());
  return Status::Ok();
}

}  // namespace okr
