// The snapshots column family: projected state keyed by the seq it
// reflects. A cache: losing or deleting snapshots changes no answer.
#include <rocksdb/write_batch.h>

#include <cassert>

#include "eventstore/format.h"
#include "eventstore/store_impl.h"

namespace okr {

// A snapshot at a million events is hundreds of megabytes. Put through the
// write path in one batch it held RocksDB's write queue for seconds, and
// every append waited behind it; in several batches it would fill the
// column family's memtables faster than they are flushed, and RocksDB
// stalls every write when they are full. So it is written as a table file
// beside the log, off the write path, and ingested: the appends wait only
// for the ingestion's few milliseconds, and a reader sees the snapshot
// whole or not at all, also after a crash.
Status EventStore::Impl::PutSnapshot(uint64_t seq, const std::vector<std::string>& parts,
                                     size_t keep) {
  if (options_.read_only) return Status::Invalid("the log is open read-only");
  if (parts.empty() || parts.size() > UINT32_MAX) return Status::Invalid("a snapshot needs parts");
  // Anything stored under this seq before (parts beyond these, or an older
  // okrd's one-value snapshot) goes first: the table file holds only parts.
  rocksdb::WriteBatch before;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), snapshots_));
  it->Seek(format::SeqKey(seq));
  if (it->Valid() && it->key().starts_with(format::SeqKey(seq))) {
    before.DeleteRange(snapshots_, format::SeqKey(seq), format::SeqKey(seq + 1));
  }
  if (!it->status().ok()) return FromRocks(it->status());
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;  // a cache: nothing here needs the log's sync
  if (before.Count() > 0) OKR_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &before)));

  const std::string path = PendingTablePath("snapshot", seq);
  OKR_RETURN_IF_ERROR(WriteTableFile(snapshots_, path, [&](rocksdb::SstFileWriter& file) {
    rocksdb::Status st;
    for (size_t i = 0; st.ok() && i < parts.size(); ++i) {
      st = file.Put(format::SnapshotKey(seq, static_cast<uint32_t>(i)),
                    rocksdb::Slice(parts[i].data(), parts[i].size()));
    }
    return st;
  }));
  rocksdb::IngestExternalFileOptions ingest;
  ingest.move_files = true;  // linked into the database, not copied
  if (Status st = FromRocks(db_->IngestExternalFile(snapshots_, {path}, ingest)); !st.ok()) {
    db_->GetEnv()->DeleteFile(path).PermitUncheckedError();
    return st;
  }
  uint64_t newest = newest_snapshot_seq_.load();
  while (seq > newest && !newest_snapshot_seq_.compare_exchange_weak(newest, seq)) {
  }

  // Older snapshots only cost space: keep the newest `keep`, counting this
  // one. Each step back reads one part, not every part of every snapshot.
  it.reset(db_->NewIterator(rocksdb::ReadOptions(), snapshots_));
  uint64_t oldest_kept = seq;
  for (size_t kept = 1; oldest_kept > 0; ++kept) {
    it->SeekForPrev(format::SnapshotKey(oldest_kept - 1, UINT32_MAX));
    uint64_t older = 0;
    if (!it->Valid() || !format::ParseSnapshotKey(View(it->key()), &older)) break;
    if (kept >= keep) {
      rocksdb::WriteBatch drop;
      drop.DeleteRange(snapshots_, format::SeqKey(0), format::SeqKey(oldest_kept));
      return FromRocks(db_->Write(wo, &drop));
    }
    oldest_kept = older;
  }
  return FromRocks(it->status());
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
// none, and never stops the log from opening. A writable open also removes
// the table files of snapshots a crash kept from being ingested.
void EventStore::Impl::RecoverNewestSnapshotSeq() {
  if (!options_.read_only) RemovePendingTables();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), snapshots_));
  it->SeekToLast();
  uint64_t seq = 0;
  if (it->Valid() && format::ParseSnapshotKey(View(it->key()), &seq)) newest_snapshot_seq_ = seq;
}

}  // namespace okr
