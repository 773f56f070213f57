// The snapshots column family: projected state keyed by the seq it
// reflects. A cache: losing or deleting snapshots changes no answer.
#include <rocksdb/write_batch.h>

#include <cassert>

#include "eventstore/format.h"
#include "eventstore/store_impl.h"

namespace okr {

Status EventStore::Impl::PutSnapshot(uint64_t seq, const std::vector<std::string>& parts,
                                     size_t keep) {
  if (options_.read_only) return Status::Invalid("the log is open read-only");
  if (parts.empty() || parts.size() > UINT32_MAX) return Status::Invalid("a snapshot needs parts");
  rocksdb::WriteBatch batch;
  for (size_t i = 0; i < parts.size(); ++i) {
    batch.Put(snapshots_, format::SnapshotKey(seq, static_cast<uint32_t>(i)),
              rocksdb::Slice(parts[i].data(), parts[i].size()));
  }
  // Parts a snapshot stored earlier under this seq had beyond these go.
  batch.Delete(snapshots_, format::SeqKey(seq));
  batch.DeleteRange(snapshots_, format::SnapshotKey(seq, static_cast<uint32_t>(parts.size())),
                    format::SeqKey(seq + 1));
  // Older snapshots only cost space: keep the newest `keep`, counting this
  // one. Each step back reads one part, not every part of every snapshot.
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), snapshots_));
  uint64_t oldest_kept = seq;
  for (size_t kept = 1; oldest_kept > 0; ++kept) {
    it->SeekForPrev(format::SnapshotKey(oldest_kept - 1, UINT32_MAX));
    uint64_t before = 0;
    if (!it->Valid() || !format::ParseSnapshotKey(View(it->key()), &before)) break;
    if (kept >= keep) {
      batch.DeleteRange(snapshots_, format::SeqKey(0), format::SeqKey(oldest_kept));
      break;
    }
    oldest_kept = before;
  }
  if (!it->status().ok()) return FromRocks(it->status());
  // Not logged: a snapshot lost in a crash is rebuilt from the log. Through
  // the WAL, its tens of megabytes would be synced by the next append's
  // sync, and every append in that batch would wait for them.
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  OKR_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &batch)));
  uint64_t newest = newest_snapshot_seq_.load();
  while (seq > newest && !newest_snapshot_seq_.compare_exchange_weak(newest, seq)) {
  }
  return Status::Ok();
}

Result<uint64_t> EventStore::Impl::ReadSnapshot(
    uint64_t at_seq, const std::function<bool(std::string_view part)>& part) const {
  // Each part is read, handed over and dropped: tens of MB at a million
  // events pass through without being held, or cached, at once.
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, snapshots_));
  it->SeekForPrev(format::SnapshotKey(at_seq, UINT32_MAX));
  uint64_t seq = 0;
  if (!it->Valid()) {
    if (!it->status().ok()) return FromRocks(it->status());
    return Status::NotFound("no snapshot at or before seq " + std::to_string(at_seq));
  }
  if (!format::ParseSnapshotKey(View(it->key()), &seq)) {
    return Status::Corruption("malformed snapshot key");
  }
  assert(seq <= at_seq);
  const std::string prefix = format::SeqKey(seq);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    // A snapshot in one value is the whole snapshot, even beside parts of
    // the same seq (only an older okrd run in between writes both).
    if (!part(View(it->value())) || it->key().size() == format::kSeqKeySize) break;
  }
  if (!it->status().ok()) return FromRocks(it->status());
  return seq;
}

Status EventStore::Impl::DeleteSnapshots() {
  if (options_.read_only) return Status::Invalid("the log is open read-only");
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), snapshots_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) batch.Delete(snapshots_, it->key());
  if (!it->status().ok()) return FromRocks(it->status());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  OKR_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &batch)));
  newest_snapshot_seq_ = 0;
  return Status::Ok();
}

// Once, at open. Snapshots are a cache: one that cannot be read counts as
// none, and never stops the log from opening.
void EventStore::Impl::RecoverNewestSnapshotSeq() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), snapshots_));
  it->SeekToLast();
  uint64_t seq = 0;
  if (it->Valid() && format::ParseSnapshotKey(View(it->key()), &seq)) newest_snapshot_seq_ = seq;
}

}  // namespace okr
