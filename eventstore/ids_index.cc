// The `ids` column family (docs/FORMAT.md, "ids"): every id an event has
// created, so the writer can refuse an append that would create one again
// without replaying the log.
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cassert>

#include "eventstore/format.h"
#include "eventstore/store_impl.h"

namespace okr {

// Most id lookups are for ids not taken yet: a Bloom filter answers those
// without reading a block, and one over each memtable's keys without
// searching its skip list.
rocksdb::ColumnFamilyOptions EventStore::Impl::IdsOptions() {
  rocksdb::ColumnFamilyOptions o;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  o.memtable_whole_key_filtering = true;
  o.memtable_prefix_bloom_size_ratio = 0.02;  // of the memtable's 64 MiB: 1.3 MiB of filter
  return o;
}

// Brings the `ids` column family up to the head: once for a log written
// before it existed, and for any events appended by such a writer since.
// An id already indexed keeps its first seq (a log holding an id twice
// is refused by the fold, which reports it; the index only needs to know
// the id is taken).
Status EventStore::Impl::IndexIds() {
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
  std::unordered_set<std::string> seen;
  EventScratch scratch;
  Status failed = Status::Ok();
  OKR_RETURN_IF_ERROR(Scan(through + 1, head_.seq, [&](uint64_t seq, std::string_view bytes) {
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
      seen.insert(std::move(id));
    } else if (!got.ok()) {
      failed = FromRocks(got);
      return false;
    }
    return true;
  }));
  OKR_RETURN_IF_ERROR(failed);
  wb.Put(meta_, format::kIdsThroughKey, format::SeqKey(head_.seq));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db_->Write(wo, &wb));
}

// Writer thread only. kVersionMismatch when an id that `drafts` create is taken,
// by the log or by an earlier append of this batch (`batch_ids`), or is
// created twice by `drafts` itself. The Projector decides the command
// again on the newer state, where it is refused as taken.
Status EventStore::Impl::CheckNewIds(std::vector<EventDraft>& drafts,
                                     const std::unordered_set<std::string>& batch_ids,
                                     std::unordered_set<std::string>* created) {
  assert(created->empty());
  for (EventDraft& draft : drafts) {
    std::string id(CreatedId(draft.event().asReader()));
    if (id.empty()) continue;
    OKR_ASSIGN_OR_RETURN(const bool taken, IdTaken(id, batch_ids, *created));
    if (taken) return Status::VersionMismatch("id " + id + " is already taken", "id");
    created->insert(std::move(id));
  }
  assert(created->size() <= drafts.size());
  return Status::Ok();
}

// Whether `id` is taken: by the log, by an earlier append of the batch
// (`batch_ids`) or by an earlier event of this one (`created`).
Result<bool> EventStore::Impl::IdTaken(const std::string& id,
                                       const std::unordered_set<std::string>& batch_ids,
                                       const std::unordered_set<std::string>& created) const {
  if (batch_ids.count(id) > 0 || created.count(id) > 0) return true;
  std::string ignored;
  rocksdb::Status got = db_->Get(rocksdb::ReadOptions(), ids_, id, &ignored);
  if (!got.ok() && !got.IsNotFound()) return FromRocks(got);
  return got.ok();
}

}  // namespace okr
