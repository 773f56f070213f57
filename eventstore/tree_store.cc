// The `tree` column family (docs/FORMAT.md, "tree"): the log's Merkle tree
// as the perfect nodes merkle::Frontier completes, written with their
// events; roots and proofs of any size from O(log n) of them.
#include <rocksdb/write_batch.h>

#include <cassert>
#include <cstring>

#include "eventstore/format.h"
#include "eventstore/store_impl.h"

namespace okr {

namespace {

// A tree built at open is written this many events at a time, each part
// one synced batch, so a large log's build survives being stopped midway.
constexpr uint64_t kTreeBuildEvents = 65536;

std::string NodeName(const merkle::NodeId& id) { return format::TreeNodeName(id.level, id.index); }

}  // namespace

// The values of `keys` in `cf`, all in one MultiGet; `what(i)` names key
// i in the error when one is missing.
Result<std::vector<std::string>> EventStore::Impl::MultiRead(
    rocksdb::ColumnFamilyHandle* cf, const std::vector<std::string>& keys,
    const rocksdb::Snapshot* snapshot, const std::function<std::string(size_t)>& what) const {
  if (keys.empty()) return std::vector<std::string>();
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  db_->MultiGet(ro, cf, slices.size(), slices.data(), values.data(), statuses.data());
  std::vector<std::string> out(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) return Status::NotFound(what(i) + " is missing");
    if (!statuses[i].ok()) return FromRocks(statuses[i]);
    out[i] = values[i].ToString();
  }
  return out;
}

// Nodes at or above format::kTreeLowestStoredLevel come from `tree`; the
// ones below it are computed from their 2^level (at most 8) events.
Result<std::vector<Hash>> EventStore::Impl::ReadNodes(const std::vector<merkle::NodeId>& ids,
                                                      const rocksdb::Snapshot* snapshot) const {
  if (tree_ == nullptr) return Status::NotFound("the log has no tree");
  std::vector<size_t> stored, computed;  // positions in `ids`
  std::vector<std::string> node_keys, event_keys;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i].level >= format::kTreeLowestStoredLevel) {
      stored.push_back(i);
      node_keys.push_back(format::TreeKey(ids[i].level, ids[i].index));
      continue;
    }
    computed.push_back(i);
    const uint64_t first = ids[i].index << ids[i].level;
    for (uint64_t leaf = first; leaf < first + (uint64_t{1} << ids[i].level); ++leaf) {
      event_keys.push_back(format::SeqKey(leaf + 1));
    }
  }
  OKR_ASSIGN_OR_RETURN(auto nodes, MultiRead(tree_, node_keys, snapshot,
                                             [&](size_t k) { return NodeName(ids[stored[k]]); }));
  OKR_ASSIGN_OR_RETURN(auto events, MultiRead(events_, event_keys, snapshot, [&](size_t k) {
                         uint64_t seq = 0;
                         format::ParseSeqKey(event_keys[k], &seq);
                         return "event seq " + std::to_string(seq) + " (a leaf of the tree)";
                       }));
  std::vector<Hash> out(ids.size());
  for (size_t k = 0; k < stored.size(); ++k) {
    if (nodes[k].size() != format::kHashSize) {
      return Status::Corruption(NodeName(ids[stored[k]]) + " is not 32 bytes");
    }
    std::memcpy(out[stored[k]].data(), nodes[k].data(), format::kHashSize);
  }
  auto event = events.begin();
  for (size_t i : computed) {
    merkle::Frontier subtree;
    while (subtree.size() < (uint64_t{1} << ids[i].level)) {
      subtree.Append(merkle::LeafHash(*event++), nullptr);
    }
    out[i] = subtree.Root();
  }
  return out;
}

merkle::NodeReader EventStore::Impl::NodeReaderAt(const rocksdb::Snapshot* snapshot) const {
  return
      [this, snapshot](const std::vector<merkle::NodeId>& ids) { return ReadNodes(ids, snapshot); };
}

Result<uint64_t> EventStore::Impl::TreeThrough() const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, format::kTreeThroughKey, &value);
  if (s.IsNotFound()) return uint64_t{0};
  if (!s.ok()) return FromRocks(s);
  uint64_t through = 0;
  if (!format::ParseSeqKey(value, &through)) return Status::Corruption("malformed tree_through");
  return through;
}

// Brings the tree up to the head: once for a log written before it
// existed (or whose tree was lost), in synced parts, reporting progress.
// The frontier ends as the head's, and the head gets its root.
Status EventStore::Impl::BuildTree() {
  OKR_RETURN_IF_ERROR(DropUnstoredLevels());
  OKR_ASSIGN_OR_RETURN(uint64_t through, TreeThrough());
  through = std::min(through, head_.seq);
  OKR_ASSIGN_OR_RETURN(frontier_, merkle::Frontier::Load(through, NodeReaderAt(nullptr)));
  const uint64_t total = head_.seq;
  auto cursor = OpenCursor(through + 1, head_.seq, /*fill_cache=*/false);
  std::vector<std::pair<merkle::NodeId, Hash>> completed;
  while (frontier_.size() < total) {
    if (options_.on_tree_progress) options_.on_tree_progress(frontier_.size(), total);
    rocksdb::WriteBatch wb;
    const uint64_t part_end = std::min(total, frontier_.size() + kTreeBuildEvents);
    merkle::Frontier part = frontier_;
    OKR_RETURN_IF_ERROR(cursor->Next([&](uint64_t seq, std::string_view bytes) {
      if (seq != part.size() + 1) return false;  // a gap: reported below
      completed.clear();
      part.Append(merkle::LeafHash(bytes), &completed);
      PutNodes(&wb, completed);
      return seq < part_end;
    }));
    if (part.size() != part_end) {
      return Status::Corruption("the log has no event at seq " + std::to_string(part.size() + 1));
    }
    wb.Put(meta_, format::kTreeThroughKey, format::SeqKey(part_end));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    OKR_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &wb)));
    frontier_ = std::move(part);
  }
  if (options_.on_tree_progress && total > through) options_.on_tree_progress(total, total);
  head_.root = frontier_.Root();
  return Status::Ok();
}

// A tree written when every level was stored keeps its nodes below
// format::kTreeLowestStoredLevel until its first writable open drops them:
// one range deletion, then a compaction of that range, so later opens'
// first key is not behind two million deleted ones. Nothing reads them.
Status EventStore::Impl::DropUnstoredLevels() {
  std::unique_ptr<rocksdb::Iterator> first(db_->NewIterator(rocksdb::ReadOptions(), tree_));
  first->SeekToFirst();
  OKR_RETURN_IF_ERROR(FromRocks(first->status()));
  if (!first->Valid() || static_cast<uint8_t>(first->key()[0]) >= format::kTreeLowestStoredLevel) {
    return Status::Ok();
  }
  const std::string begin = format::TreeKey(0, 0);
  const std::string end = format::TreeKey(format::kTreeLowestStoredLevel, 0);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  OKR_RETURN_IF_ERROR(FromRocks(db_->DeleteRange(wo, tree_, begin, end)));
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  const rocksdb::Slice from(begin), to(end);
  return FromRocks(db_->CompactRange(compact, tree_, &from, &to));
}

// Only the nodes at or above format::kTreeLowestStoredLevel are stored:
// one Put per 8 events instead of two per event (docs/DECISIONS.md, "Tree
// nodes from level 4 up").
void EventStore::Impl::PutNodes(rocksdb::WriteBatch* wb,
                                const std::vector<std::pair<merkle::NodeId, Hash>>& nodes) const {
  for (const auto& [id, hash] : nodes) {
    if (id.level < format::kTreeLowestStoredLevel) continue;
    wb->Put(tree_, format::TreeKey(id.level, id.index),
            rocksdb::Slice(reinterpret_cast<const char*>(hash.data()), hash.size()));
  }
}

// A read-only open serves whatever tree is stored: the head's root when
// the tree reaches it, else none (the empty root's zeros stay).
void EventStore::Impl::RecoverRootReadOnly() {
  auto root = merkle::RootAt(head_.seq, NodeReaderAt(nullptr));
  if (root.ok()) head_.root = *root;
}

Status EventStore::Impl::SetSigningKey(std::shared_ptr<const SigningKey> key, std::string origin) {
  if (options_.read_only) return Status::Invalid("the log is open read-only");
  if (key == nullptr) return Status::Invalid("no signing key");
  std::lock_guard<std::mutex> lock(commit_mu_);
  signing_key_ = std::move(key);
  origin_ = std::move(origin);
  const Head now = head();  // the writer's head: it cannot move while commit_mu_ is held
  rocksdb::WriteOptions wo;
  wo.sync = true;
  OKR_RETURN_IF_ERROR(FromRocks(db_->Put(wo, meta_, format::kCheckpointKey, CheckpointNote(now))));
  CheckpointStored(now);
  return Status::Ok();
}

Result<std::optional<std::string>> EventStore::Impl::StoredCheckpoint() const {
  std::string note;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, format::kCheckpointKey, &note);
  if (s.IsNotFound()) return std::optional<std::string>();
  OKR_RETURN_IF_ERROR(FromRocks(s));
  return std::optional<std::string>(std::move(note));
}

std::string EventStore::Impl::CheckpointNote(const Head& head) const {
  assert(signing_key_ != nullptr);
  return signing_key_->Sign(Checkpoint{origin_, head.seq, head.root});
}

// A checkpoint goes with a write at most once a second: signing costs
// about 50 µs, and start-up checks at most a second's events more.
bool EventStore::Impl::CheckpointDue(const Head& head) const {
  return signing_key_ != nullptr && head.seq != checkpoint_size_ &&
         std::chrono::steady_clock::now() - checkpoint_at_ >= std::chrono::seconds(1);
}

void EventStore::Impl::CheckpointStored(const Head& head) {
  checkpoint_size_ = head.seq;
  checkpoint_at_ = std::chrono::steady_clock::now();
}

// At close, once the writer has stopped: the head's checkpoint, so the
// next start checks no tail. A failure only makes that start check more.
void EventStore::Impl::StoreFinalCheckpoint() {
  std::lock_guard<std::mutex> lock(commit_mu_);
  if (signing_key_ == nullptr || checkpoint_size_ == writer_head_.seq || damaged_) return;
  rocksdb::WriteOptions wo;
  wo.sync = true;
  db_->Put(wo, meta_, format::kCheckpointKey, CheckpointNote(writer_head_)).PermitUncheckedError();
}

Result<Hash> EventStore::Impl::TreeRoot(uint64_t size) const {
  if (size > head().seq) return Status::Invalid("size is beyond the head of the log", "size");
  return merkle::RootAt(size, NodeReaderAt(nullptr));
}

Result<Hash> EventStore::Impl::LeafHash(uint64_t seq) const {
  if (seq == 0) return Status::Invalid("seq must be at least 1", "seq");
  if (seq > head().seq) return Status::Invalid("seq is beyond the head of the log", "seq");
  OKR_ASSIGN_OR_RETURN(auto nodes, ReadNodes({{0, seq - 1}}, nullptr));
  return nodes[0];
}

Result<std::vector<Hash>> EventStore::Impl::InclusionProof(uint64_t seq, uint64_t size) const {
  if (seq == 0) return Status::Invalid("seq must be at least 1", "seq");
  if (size < seq) return Status::Invalid("size must be at least seq", "size");
  if (size > head().seq) return Status::Invalid("size is beyond the head of the log", "size");
  return merkle::InclusionProof(seq - 1, size, NodeReaderAt(nullptr));
}

Result<std::vector<Hash>> EventStore::Impl::ConsistencyProof(uint64_t from, uint64_t to) const {
  if (from == 0) return Status::Invalid("from must be at least 1", "from");
  if (to < from) return Status::Invalid("to must be at least from", "to");
  if (to > head().seq) return Status::Invalid("to is beyond the head of the log", "to");
  return merkle::ConsistencyProof(from, to, NodeReaderAt(nullptr));
}

}  // namespace okr
