// Table files written beside the log and ingested into it: a projection's
// snapshot (snapshots.cc), and a bulk append's batch (IngestBatch).
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <iterator>
#include <thread>
#include <tuple>

#include "eventstore/base/thread_name.h"
#include "eventstore/store_impl.h"

namespace okr {
namespace {

// Not a name RocksDB gives its own files, so a crash between writing and
// ingesting leaves one that RocksDB ignores and the next writable open
// removes.
constexpr std::string_view kPendingTableSuffix = ".sst.pending";

// A WriteBatch's puts and deletes (all the writer's batches hold), in the
// batch's order. Any other operation fails the iteration.
class Operations : public rocksdb::WriteBatch::Handler {
 public:
  explicit Operations(std::vector<TableEntry>* entries) : entries_(entries) {}

  rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key,
                        const rocksdb::Slice& value) override {
    entries_->push_back({cf, Order(), key, value, false});
    return rocksdb::Status::OK();
  }
  rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
    entries_->push_back({cf, Order(), key, rocksdb::Slice(), true});
    return rocksdb::Status::OK();
  }

 private:
  uint32_t Order() const { return static_cast<uint32_t>(entries_->size()); }
  std::vector<TableEntry>* entries_;
};

// By column family, in key order, each key once: the last of a key's
// operations wins, as it does when the batch is written. Grouped first by
// column family in the batch's order (integers only), then each family's
// run is sorted by key only if it is not in strict key order already: the
// events' seq keys are, and so are the streams and ids entries, which the
// writer puts in key order (PutIndexEntries), so a copied batch's keys are
// compared once each instead of sorted again. In place, so no buffer is
// allocated for it.
void SortTables(std::vector<TableEntry>* entries) {
  std::sort(entries->begin(), entries->end(), [](const TableEntry& a, const TableEntry& b) {
    return std::tie(a.cf, a.order) < std::tie(b.cf, b.order);
  });
  auto out = entries->begin();
  for (auto from = entries->begin(); from != entries->end();) {
    const auto to = std::find_if(from, entries->end(),
                                 [cf = from->cf](const TableEntry& e) { return e.cf != cf; });
    const bool strictly_ordered =
        std::adjacent_find(from, to, [](const TableEntry& a, const TableEntry& b) {
          return a.key.compare(b.key) >= 0;
        }) == to;
    if (strictly_ordered) {
      out = out == from ? to : std::move(from, to, out);
    } else {
      std::sort(from, to, [](const TableEntry& a, const TableEntry& b) {
        const int c = a.key.compare(b.key);
        return c != 0 ? c < 0 : a.order < b.order;
      });
      for (auto i = from; i != to; ++i) {
        if (std::next(i) != to && std::next(i)->key == i->key) continue;  // a later one wins
        *out++ = *i;
      }
    }
    from = to;
  }
  entries->erase(out, entries->end());
}

}  // namespace

std::string EventStore::Impl::PendingTablePath(std::string_view kind, uint64_t seq) const {
  static std::atomic<uint64_t> written{0};  // two files of one seq never share a name
  return db_->GetName() + "/" + std::string(kind) + "-" + std::to_string(seq) + "-" +
         std::to_string(written.fetch_add(1)) + std::string(kPendingTableSuffix);
}

Status EventStore::Impl::WriteTableFile(
    rocksdb::ColumnFamilyHandle* cf, const std::string& path,
    const std::function<rocksdb::Status(rocksdb::SstFileWriter&)>& fill) const {
  const rocksdb::Options table_options = db_->GetOptions(cf);
  rocksdb::EnvOptions env_options(table_options);
  env_options.bytes_per_sync = 1 << 20;  // written back as it goes, not in one burst at the end
  rocksdb::SstFileWriter file(env_options, table_options, cf);
  rocksdb::Status st = file.Open(path);
  if (st.ok()) st = fill(file);
  if (st.ok()) st = file.Finish();
  if (!st.ok()) db_->GetEnv()->DeleteFile(path).PermitUncheckedError();
  return FromRocks(st);
}

void EventStore::Impl::RemovePendingTables() const {
  rocksdb::Env* env = db_->GetEnv();
  std::vector<std::string> children;
  if (!env->GetChildren(db_->GetName(), &children).ok()) return;
  for (const std::string& name : children) {
    if (name.ends_with(kPendingTableSuffix)) {
      env->DeleteFile(db_->GetName() + "/" + name).PermitUncheckedError();
    }
  }
}

// An ingested batch's table of a column family whose keys it spreads over
// the whole range (streams, ids, tree, meta) overlaps every table before
// it, so it lands a level above them, and once levels 6 to 1 hold one
// each, in level 0. RocksDB's default merges level 0 into level 1 once 4
// tables gather there, rewriting all of level 1 each time, which holds
// every entry copied so far: a copy of N batches rewrote about N²/8
// batches' entries, most of the replica's compaction work at 1M events.
// While bulk batches come in they are merged once kDeferredLevel0Tables
// gather; once the copy pauses (kBulkCopyPause) the settings are restored
// and one merge takes in what gathered. `events` is left alone: its tables
// follow each other in key order and go below the others, never merged.
// The settings live in this process only (an open sets its own).
void EventStore::Impl::DeferCompactions(bool defer) {
  if (defer == !level0_before_.empty()) return;
  if (!defer) {
    for (auto& [handle, before] : level0_before_) {
      db_->SetOptions(handle, before).PermitUncheckedError();
    }
    level0_before_.clear();
    return;
  }
  auto settings = [](int merge_at, int slow_at, int stop_at) {
    return std::unordered_map<std::string, std::string>{
        {"level0_file_num_compaction_trigger", std::to_string(merge_at)},
        {"level0_slowdown_writes_trigger", std::to_string(slow_at)},
        {"level0_stop_writes_trigger", std::to_string(stop_at)}};
  };
  // Each trigger kept above the one before it, as RocksDB requires.
  const auto deferred =
      settings(kDeferredLevel0Tables, 2 * kDeferredLevel0Tables, 3 * kDeferredLevel0Tables);
  for (auto* handle : handles_) {
    if (handle == events_) continue;
    const rocksdb::Options now = db_->GetOptions(handle);
    auto before = settings(now.level0_file_num_compaction_trigger,
                           now.level0_slowdown_writes_trigger, now.level0_stop_writes_trigger);
    // A failure only leaves this family merged as before.
    if (db_->SetOptions(handle, deferred).ok()) level0_before_.emplace_back(handle, before);
  }
}

// A bulk append's batch as one table file per column family, ingested in
// one step: RocksDB records the files in its manifest together (a crash
// leaves all of them or none) and syncs them first, so the batch is as
// durable as a synced write once this returns. On failure nothing of the
// batch is in the log.
Status EventStore::Impl::IngestBatch(const rocksdb::WriteBatch& wb, uint64_t head_seq) {
  Borrowed<TableEntry> borrowed(&kept_.tables);
  std::vector<TableEntry>& entries = *borrowed;
  entries.reserve(wb.Count());
  Operations operations(&entries);
  if (rocksdb::Status st = wb.Iterate(&operations); !st.ok()) return FromRocks(st);
  SortTables(&entries);
  // One file for each column family's run of entries.
  struct Table {
    rocksdb::ColumnFamilyHandle* handle;
    size_t from, to;
    std::string path;
    Status written;
  };
  std::vector<Table> tables;
  for (size_t from = 0, to = 0; from < entries.size(); from = to) {
    const uint32_t cf_id = entries[from].cf;
    while (to < entries.size() && entries[to].cf == cf_id) ++to;
    auto handle = std::find_if(handles_.begin(), handles_.end(),
                               [cf_id](auto* h) { return h->GetID() == cf_id; });
    assert(handle != handles_.end());
    tables.push_back({*handle, from, to, PendingTablePath("append", head_seq), Status::Ok()});
  }
  auto write = [&](Table& table) {
    table.written = WriteTableFile(table.handle, table.path, [&](rocksdb::SstFileWriter& file) {
      rocksdb::Status s;
      for (size_t i = table.from; s.ok() && i < table.to; ++i) {
        s = entries[i].deletes ? file.Delete(entries[i].key)
                               : file.Put(entries[i].key, entries[i].value);
      }
      return s;
    });
  };
  // The events' table (most of the batch's bytes, each block compressed)
  // is written on a second thread while this one writes the others: a
  // replica's catch-up waits for the writer's thread.
  auto events = std::find_if(tables.begin(), tables.end(),
                             [this](const Table& t) { return t.handle == events_; });
  std::thread aside;
  if (events != tables.end() && tables.size() > 1) {
    aside = NamedThread("okr:tables", [&write, &table = *events] { write(table); });
  }
  for (auto it = tables.begin(); it != tables.end(); ++it) {
    if (!aside.joinable() || it != events) write(*it);
  }
  if (aside.joinable()) aside.join();
  std::vector<rocksdb::IngestExternalFileArg> args;
  auto remove_written = [&] {
    for (const Table& table : tables) {
      if (table.written.ok()) db_->GetEnv()->DeleteFile(table.path).PermitUncheckedError();
    }
  };
  for (const Table& table : tables) {
    if (!table.written.ok()) {
      remove_written();  // a table that failed was removed as it failed
      return table.written;
    }
    rocksdb::IngestExternalFileArg arg;
    arg.column_family = table.handle;
    arg.external_files = {table.path};
    arg.options.move_files = true;  // linked into the database, not copied
    args.push_back(std::move(arg));
  }
  Status ingested = FromRocks(db_->IngestExternalFiles(args));
  if (!ingested.ok()) remove_written();
  return ingested;
}

}  // namespace okr
