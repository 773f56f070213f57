// The snapshots column family: projected state keyed by the seq it
// reflects. A cache: losing or deleting snapshots changes no answer.
#include <rocksdb/write_batch.h>

#include <cassert>

#include "eventstore/format.h"
#include "eventstore/store_impl.h"

namespace okr {

Status EventStore::Impl::PutSnapshot(uint64_t seq, std::string_view bytes, size_t keep) {
  if (options_.read_only) return Status::Invalid("the log is open read-only");
  rocksdb::WriteBatch batch;
  const std::string key = format::SeqKey(seq);
  batch.Put(snapshots_, key, rocksdb::Slice(bytes.data(), bytes.size()));
  // Older snapshots only cost space: keep the newest `keep`.
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), snapshots_));
  size_t kept = 1;  // the one being put
  for (it->SeekForPrev(key); it->Valid(); it->Prev()) {
    if (it->key() == rocksdb::Slice(key)) continue;
    if (kept++ >= keep) batch.Delete(snapshots_, it->key());
  }
  if (!it->status().ok()) return FromRocks(it->status());
  // Not logged: a snapshot lost in a crash is rebuilt from the log. Through
  // the WAL, its tens of megabytes would be synced by the next append's
  // sync, and every append in that batch would wait for them.
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  TakeOpenedSnapshot();  // no longer the newest
  OKR_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &batch)));
  uint64_t newest = newest_snapshot_seq_.load();
  while (seq > newest && !newest_snapshot_seq_.compare_exchange_weak(newest, seq)) {
  }
  return Status::Ok();
}

Result<StoredEvent> EventStore::Impl::SnapshotAtOrBefore(uint64_t at_seq) const {
  // The newest snapshot is the answer for any seq at or after its own.
  if (std::optional<StoredEvent> opened = TakeOpenedSnapshot(); opened && opened->seq <= at_seq) {
    return std::move(*opened);
  }
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
  assert(out.seq <= at_seq);
  out.bytes.assign(it->value().data(), it->value().size());
  return out;
}

Status EventStore::Impl::DeleteSnapshots() {
  if (options_.read_only) return Status::Invalid("the log is open read-only");
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), snapshots_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) batch.Delete(snapshots_, it->key());
  if (!it->status().ok()) return FromRocks(it->status());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  TakeOpenedSnapshot();
  OKR_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &batch)));
  newest_snapshot_seq_ = 0;
  return Status::Ok();
}

// Once, at open: the newest snapshot's key (its value, often many MB, is
// read along with it, which is why this is remembered, not looked up, and
// why a writable open keeps the value for the projection's load).
// Snapshots are a cache: one that cannot be read counts as none, and
// never stops the log from opening.
void EventStore::Impl::RecoverNewestSnapshotSeq() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), snapshots_));
  it->SeekToLast();
  uint64_t seq = 0;
  if (!it->Valid() || !format::ParseSeqKey(View(it->key()), &seq)) return;
  newest_snapshot_seq_ = seq;
  if (options_.read_only) return;  // forensics and okrctl: seldom loaded
  std::lock_guard<std::mutex> lock(opened_snapshot_mu_);
  opened_snapshot_ = StoredEvent{seq, std::string(it->value().data(), it->value().size())};
}

std::optional<StoredEvent> EventStore::Impl::TakeOpenedSnapshot() const {
  std::lock_guard<std::mutex> lock(opened_snapshot_mu_);
  std::optional<StoredEvent> out = std::move(opened_snapshot_);
  opened_snapshot_.reset();
  return out;
}

}  // namespace okr
