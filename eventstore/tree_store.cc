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

std::string NodeName(const merkle::NodeId& id) {
  return "tree node (" + std::to_string(id.level) + ", " + std::to_string(id.index) + ")";
}

}  // namespace

Result<std::vector<Hash>> EventStore::Impl::ReadNodes(const std::vector<merkle::NodeId>& ids,
                                                      const rocksdb::Snapshot* snapshot) const {
  if (tree_ == nullptr) return Status::NotFound("the log has no tree");
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (const auto& id : ids) keys.push_back(format::TreeKey(id.level, id.index));
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(ids.size());
  std::vector<rocksdb::Status> statuses(ids.size());
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  db_->MultiGet(ro, tree_, slices.size(), slices.data(), values.data(), statuses.data());
  std::vector<Hash> out(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (statuses[i].IsNotFound()) return Status::NotFound(NodeName(ids[i]) + " is missing");
    if (!statuses[i].ok()) return FromRocks(statuses[i]);
    if (values[i].size() != format::kHashSize) {
      return Status::Corruption(NodeName(ids[i]) + " is not 32 bytes");
    }
    std::memcpy(out[i].data(), values[i].data(), format::kHashSize);
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
      for (const auto& [id, hash] : completed) PutNode(&wb, id, hash);
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

void EventStore::Impl::PutNode(rocksdb::WriteBatch* wb, const merkle::NodeId& id,
                               const Hash& hash) const {
  wb->Put(tree_, format::TreeKey(id.level, id.index),
          rocksdb::Slice(reinterpret_cast<const char*>(hash.data()), hash.size()));
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
