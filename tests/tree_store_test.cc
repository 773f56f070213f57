// The log's Merkle tree as the store keeps it (the `tree` column family,
// docs/FORMAT.md): roots equal to ones recomputed from the raw values,
// proofs that verify, nothing left behind by a failed batch, and a lost
// tree built again at open.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "eventstore/checkpoint.h"
#include "eventstore/event_store.h"
#include "eventstore/format.h"
#include "eventstore/merkle.h"
#include "tests/test_support.h"

namespace okr {
namespace {

using testing::CheckInDraft;
using testing::OneEvent;
using testing::TempDir;

// The roots of every prefix of the log, recomputed from its raw values.
std::vector<Hash> RecomputedRoots(const EventStore& store) {
  std::vector<Hash> roots{merkle::EmptyRoot()};
  merkle::Frontier frontier;
  Status st = store.Scan(1, UINT64_MAX, [&](uint64_t seq, std::string_view bytes) {
    EXPECT_EQ(seq, frontier.size() + 1);
    frontier.Append(merkle::LeafHash(bytes), nullptr);
    roots.push_back(frontier.Root());
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return roots;
}

// The RocksDB files behind a closed store, every column family by name.
using Families = std::map<std::string, rocksdb::ColumnFamilyHandle*>;
void WithRawFamilies(const std::string& dir,
                     const std::function<void(rocksdb::DB*, const Families&)>& fn) {
  rocksdb::Options options;
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(options, dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (auto& n : names) cfs.push_back({n, rocksdb::ColumnFamilyOptions()});
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir, cfs, &handles, &db).ok());
  Families families;
  for (size_t i = 0; i < names.size(); ++i) families[names[i]] = handles[i];
  fn(db, families);
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
}

// Every key of the `tree` column family (none when it is missing).
std::vector<std::string> TreeKeys(const std::string& dir) {
  std::vector<std::string> keys;
  WithRawFamilies(dir, [&](rocksdb::DB* db, const Families& f) {
    if (!f.contains(format::kTreeCf)) return;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, f.at(format::kTreeCf)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) keys.push_back(it->key().ToString());
  });
  return keys;
}

class TreeStoreTest : public ::testing::Test {
 protected:
  void Open(OpenOptions options = {}) {
    store_.reset();
    auto opened = EventStore::Open(dir_.path(), options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened.value());
  }
  void SetUp() override { Open(); }
  // `n` events in appends of 1, 2, 3... events each.
  void AppendEvents(uint64_t n) {
    uint64_t done = 0;
    for (size_t size = 1; done < n; ++size) {
      AppendRequest request;
      for (size_t i = 0; i < size && done < n; ++i, ++done) {
        std::string id = "ci-" + std::to_string(store_->head().seq + request.events.size() + 1);
        request.events.push_back(CheckInDraft("alice", "kr-" + std::to_string(done % 3), id, 1));
      }
      ASSERT_TRUE(store_->Append(std::move(request)).ok());
    }
  }

  TempDir dir_;
  std::unique_ptr<EventStore> store_;
};

TEST_F(TreeStoreTest, EmptyLogHasTheEmptyRoot) {
  EXPECT_EQ(store_->head().root, merkle::EmptyRoot());
  EXPECT_EQ(*store_->TreeRoot(0), merkle::EmptyRoot());
  EXPECT_EQ(store_->TreeRoot(1).status().code(), Status::Code::kInvalid);
}

TEST_F(TreeStoreTest, RootsEqualRootsRecomputedFromTheValues) {
  AppendEvents(70);
  std::vector<Hash> roots = RecomputedRoots(*store_);
  ASSERT_EQ(roots.size(), 71u);
  EXPECT_EQ(store_->head().root, roots.back());
  for (uint64_t size = 0; size <= 70; ++size) {
    auto root = store_->TreeRoot(size);
    ASSERT_TRUE(root.ok()) << root.status().ToString();
    EXPECT_EQ(*root, roots[size]) << "size " << size;
  }
  Open();  // the head's root comes back from the stored nodes
  EXPECT_EQ(store_->head().root, roots.back());
  AppendEvents(5);
  EXPECT_EQ(store_->head().root, RecomputedRoots(*store_).back());
}

TEST_F(TreeStoreTest, ProofsFromTheStoreVerify) {
  AppendEvents(37);
  std::vector<Hash> roots = RecomputedRoots(*store_);
  for (uint64_t size : {1, 2, 7, 16, 31, 37}) {
    for (uint64_t seq = 1; seq <= size; ++seq) {
      auto proof = store_->InclusionProof(seq, size);
      ASSERT_TRUE(proof.ok()) << proof.status().ToString();
      auto leaf = store_->LeafHash(seq);
      ASSERT_TRUE(leaf.ok());
      EXPECT_TRUE(merkle::VerifyInclusion(seq - 1, size, *leaf, *proof, roots[size]))
          << "seq " << seq << " size " << size;
    }
    for (uint64_t from = 1; from <= size; ++from) {
      auto proof = store_->ConsistencyProof(from, size);
      ASSERT_TRUE(proof.ok()) << proof.status().ToString();
      EXPECT_TRUE(merkle::VerifyConsistency(from, size, roots[from], roots[size], *proof))
          << "from " << from << " to " << size;
    }
  }
  std::string first;
  ASSERT_TRUE(store_
                  ->Scan(1, 1,
                         [&](uint64_t, std::string_view b) {
                           first = b;
                           return false;
                         })
                  .ok());
  EXPECT_EQ(*store_->LeafHash(1), merkle::LeafHash(first));
}

TEST_F(TreeStoreTest, ParametersOutOfRangeAreRefused) {
  AppendEvents(4);
  const auto code = Status::Code::kInvalid;
  EXPECT_EQ(store_->TreeRoot(5).status().code(), code);
  EXPECT_EQ(store_->LeafHash(0).status().code(), code);
  EXPECT_EQ(store_->LeafHash(5).status().code(), code);
  EXPECT_EQ(store_->InclusionProof(0, 4).status().code(), code);
  EXPECT_EQ(store_->InclusionProof(3, 2).status().code(), code);
  EXPECT_EQ(store_->InclusionProof(1, 5).status().code(), code);
  EXPECT_EQ(store_->ConsistencyProof(0, 4).status().code(), code);
  EXPECT_EQ(store_->ConsistencyProof(3, 2).status().code(), code);
  EXPECT_EQ(store_->ConsistencyProof(1, 5).status().code(), code);
  EXPECT_TRUE(store_->ConsistencyProof(4, 4)->empty());
}

// A file system whose appends to write-ahead logs fail while `failing`:
// a batch that never reaches the log.
class FailingWalFs : public rocksdb::FileSystemWrapper {
 public:
  explicit FailingWalFs(const std::shared_ptr<rocksdb::FileSystem>& base)
      : rocksdb::FileSystemWrapper(base) {}
  const char* Name() const override { return "FailingWalFs"; }
  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    auto s = target()->NewWritableFile(name, options, result, dbg);
    if (s.ok() && name.ends_with(".log")) {
      *result = std::make_unique<File>(std::move(*result), &failing);
    }
    return s;
  }
  std::atomic<bool> failing{false};

 private:
  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> f, std::atomic<bool>* failing)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(f)), failing_(failing) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      if (*failing_) return rocksdb::IOStatus::IOError("injected");
      return target()->Append(data, options, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (*failing_) return rocksdb::IOStatus::IOError("injected");
      return target()->Append(data, options, info, dbg);
    }

   private:
    std::atomic<bool>* failing_;
  };
};

TEST_F(TreeStoreTest, AFailedBatchLeavesNoNodeAndTheRootUnchanged) {
  auto fs = std::make_shared<FailingWalFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  OpenOptions options;
  options.env = env.get();
  Open(options);
  AppendEvents(30);
  const Head before = store_->head();
  const size_t nodes_before = 1;  // the first 16 leaves' node: lower levels are not stored
  fs->failing = true;
  AppendRequest request;
  // Seqs 31 and 32 would complete the nodes (4, 1) and (5, 0).
  request.events.push_back(CheckInDraft("alice", "kr-0", "ci-failed-1", 1));
  request.events.push_back(CheckInDraft("alice", "kr-0", "ci-failed-2", 2));
  auto failed = store_->Append(std::move(request));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), Status::Code::kIOError);
  EXPECT_EQ(store_->head().seq, before.seq);
  EXPECT_EQ(store_->head().root, before.root);
  EXPECT_EQ(store_->TreeRoot(before.seq).value(), before.root);
  EXPECT_EQ(store_->TreeRoot(31).status().code(), Status::Code::kInvalid);
  store_.reset();
  EXPECT_EQ(TreeKeys(dir_.path()).size(), nodes_before);
  Open();
  EXPECT_EQ(store_->head().root, before.root);
  AppendEvents(3);
  EXPECT_EQ(store_->head().root, RecomputedRoots(*store_).back());
  store_.reset();
  EXPECT_EQ(TreeKeys(dir_.path()).size(), 2u + 1);  // (4, 0), (4, 1), (5, 0)
}

TEST_F(TreeStoreTest, NodesBelowLevelFourAreComputedFromTheEvents) {
  AppendEvents(40);
  const Head head = store_->head();
  store_.reset();
  const std::vector<std::string> stored = TreeKeys(dir_.path());
  ASSERT_EQ(stored.size(), 2u + 1);  // (4, 0), (4, 1), (5, 0)
  // A tree written when every level was stored: the leaves, pairs, fours
  // and eights of the 40 events added beside the nodes above them.
  std::vector<std::pair<merkle::NodeId, Hash>> lower;
  Open();
  merkle::Frontier frontier;
  ASSERT_TRUE(store_
                  ->Scan(1, UINT64_MAX,
                         [&](uint64_t, std::string_view bytes) {
                           std::vector<std::pair<merkle::NodeId, Hash>> completed;
                           frontier.Append(merkle::LeafHash(bytes), &completed);
                           for (auto& node : completed) {
                             if (node.first.level < 4) lower.push_back(node);
                           }
                           return true;
                         })
                  .ok());
  store_.reset();
  ASSERT_EQ(lower.size(), 40u + 20 + 10 + 5);
  WithRawFamilies(dir_.path(), [&](rocksdb::DB* db, const Families& f) {
    for (const auto& [id, hash] : lower) {
      const std::string value(reinterpret_cast<const char*>(hash.data()), hash.size());
      ASSERT_TRUE(
          db->Put({}, f.at(format::kTreeCf), format::TreeKey(id.level, id.index), value).ok());
    }
  });
  ASSERT_EQ(TreeKeys(dir_.path()).size(), stored.size() + lower.size());
  Open();  // a writable open drops them: nothing reads them
  EXPECT_EQ(store_->head().root, head.root);
  EXPECT_TRUE(store_->VerifyTree().ok);
  store_.reset();
  EXPECT_EQ(TreeKeys(dir_.path()), stored);
  // A node below level 4 is as good as the events under it.
  WithRawFamilies(dir_.path(), [&](rocksdb::DB* db, const Families& f) {
    ASSERT_TRUE(db->Delete({}, f.at(format::kEventsCf), format::SeqKey(38)).ok());
  });
  OpenOptions read_only;
  read_only.read_only = true;
  Open(read_only);
  EXPECT_TRUE(store_->TreeRoot(32).ok());
  auto root = store_->TreeRoot(40);  // (5, 0), (3, 4): seqs 33 to 40
  EXPECT_EQ(root.status().code(), Status::Code::kNotFound);
  EXPECT_NE(root.status().message().find("event seq 38"), std::string::npos)
      << root.status().ToString();
}

// The tree's nodes and tree_through gone, as in a log written before the
// tree existed: its column family emptied, or missing altogether.
class LostTreeTest : public TreeStoreTest, public ::testing::WithParamInterface<bool> {
 protected:
  void LoseTree(bool drop_family) {
    store_.reset();
    WithRawFamilies(dir_.path(), [&](rocksdb::DB* db, const Families& f) {
      rocksdb::ColumnFamilyHandle* tree = f.at(format::kTreeCf);
      if (drop_family) {
        ASSERT_TRUE(db->DropColumnFamily(tree).ok());
      } else {
        const std::string end(format::kTreeKeySize + 1, '\xff');
        ASSERT_TRUE(db->DeleteRange({}, tree, "", end).ok());
      }
      ASSERT_TRUE(db->Delete({}, f.at(format::kMetaCf), format::kTreeThroughKey).ok());
    });
  }
};

TEST_P(LostTreeTest, ALostTreeIsBuiltAgainAtOpen) {
  AppendEvents(100);
  const Head before = store_->head();
  store_.reset();
  const std::vector<std::string> stored = TreeKeys(dir_.path());
  ASSERT_EQ(stored.size(), 6u + 3 + 1);  // levels 4, 5 and 6
  LoseTree(GetParam());
  ASSERT_TRUE(TreeKeys(dir_.path()).empty());
  // A forensics open serves what is stored: no tree.
  OpenOptions read_only;
  read_only.read_only = true;
  Open(read_only);
  EXPECT_EQ(store_->TreeRoot(100).status().code(), Status::Code::kNotFound);
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  OpenOptions options;
  options.on_tree_progress = [&](uint64_t done, uint64_t total) {
    progress.emplace_back(done, total);
  };
  Open(options);
  EXPECT_EQ(store_->head().root, before.root);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.front(), std::make_pair(uint64_t{0}, uint64_t{100}));
  EXPECT_EQ(progress.back(), std::make_pair(uint64_t{100}, uint64_t{100}));
  store_.reset();
  EXPECT_EQ(TreeKeys(dir_.path()), stored);
  progress.clear();
  Open(options);  // built once: the next open has nothing to build
  EXPECT_TRUE(progress.empty());
  EXPECT_EQ(store_->head().root, before.root);
}

INSTANTIATE_TEST_SUITE_P(EmptiedOrDropped, LostTreeTest, ::testing::Bool());

// --- Checkpoints stored, start-up in O(tail), the background check. ---

class CheckpointTest : public TreeStoreTest {
 protected:
  void SetUp() override {
    auto key = SigningKey::Create(dir_.Sub("signing.key"));
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    key_ = std::move(key.value());
    TreeStoreTest::SetUp();
  }
  // Opens with the signing key, as okrd does.
  Status OpenSigned() {
    store_.reset();
    OpenOptions options;
    options.signing_key = key_;
    auto opened = EventStore::Open(dir_.path(), options);
    if (!opened.ok()) return opened.status();
    store_ = std::move(opened.value());
    return store_->SetSigningKey(key_, kOrigin);
  }
  Checkpoint Stored() {
    auto note = store_->StoredCheckpoint();
    EXPECT_TRUE(note.ok() && note->has_value());
    auto checkpoint = VerifyCheckpoint(note->value_or(""), key_->Verifier(kOrigin));
    EXPECT_TRUE(checkpoint.ok()) << checkpoint.status().ToString();
    return checkpoint.ok() ? *checkpoint : Checkpoint{};
  }
  LogCheck WaitForCheck() {
    for (int i = 0; i < 1000; ++i) {
      LogCheck check = store_->BackgroundCheck();
      if (check.state != LogCheck::State::kChecking) return check;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "the background check did not end";
    return store_->BackgroundCheck();
  }
  // A log of 50 events whose checkpoint is at 50, then 20 more appended
  // by a writer without the key: the checkpoint stays at 50, and the
  // tail completes the tree node (4, 3) at seq 64.
  void CheckpointAt50Then70() {
    AppendEvents(50);
    ASSERT_TRUE(OpenSigned().ok());
    EXPECT_EQ(Stored().size, 50u);
    Open();
    AppendEvents(20);
    store_.reset();
  }
  void WithRaw(const std::function<void(rocksdb::DB*, const Families&)>& fn) {
    store_.reset();
    WithRawFamilies(dir_.path(), fn);
  }

  static constexpr char kOrigin[] = "okrd/0123456789abcdef";
  std::shared_ptr<const SigningKey> key_;
};

TEST_F(CheckpointTest, TheWriterStoresTheHeadsCheckpoint) {
  AppendEvents(5);
  EXPECT_FALSE(store_->StoredCheckpoint()->has_value());  // no key yet
  ASSERT_TRUE(store_->SetSigningKey(key_, kOrigin).ok());
  Checkpoint stored = Stored();
  EXPECT_EQ(stored, (Checkpoint{kOrigin, 5, store_->head().root}));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  AppendEvents(3);  // a second later: the first write (of 1) stores it, not the next (of 2)
  EXPECT_EQ(Stored().size, 6u);
  AppendEvents(2);
  EXPECT_EQ(Stored().size, 6u);
  const Hash root = store_->head().root;
  store_.reset();  // at close, the head's
  Open();
  EXPECT_EQ(Stored(), (Checkpoint{kOrigin, 10, root}));
  OpenOptions read_only;
  read_only.read_only = true;
  Open(read_only);
  EXPECT_EQ(store_->SetSigningKey(key_, kOrigin).code(), Status::Code::kInvalid);
}

TEST_F(CheckpointTest, StartUpChecksOnlyTheEventsAfterTheCheckpoint) {
  CheckpointAt50Then70();
  ASSERT_TRUE(OpenSigned().ok());
  LogCheck check = store_->BackgroundCheck();
  EXPECT_EQ(check.open_checked, 20u);
  check = WaitForCheck();
  EXPECT_EQ(check.state, LogCheck::State::kVerified) << check.problem;
  EXPECT_EQ(check.checked, 70u);
  EXPECT_EQ(check.total, 70u);
  EXPECT_EQ(check.first_bad_seq, 0u);
  AppendEvents(1);
  // Without the key the open checks the whole chain itself.
  Open();
  check = store_->BackgroundCheck();
  EXPECT_EQ(check.state, LogCheck::State::kVerified);
  EXPECT_EQ(check.open_checked, 71u);
}

TEST_F(CheckpointTest, AnEventChangedBeforeTheCheckpointIsFoundInTheBackground) {
  CheckpointAt50Then70();
  WithRaw([](rocksdb::DB* db, const Families& f) {
    std::string value;
    ASSERT_TRUE(db->Get({}, f.at(format::kEventsCf), format::SeqKey(20), &value).ok());
    size_t note = value.find("weekly check-in");
    ASSERT_NE(note, std::string::npos);
    value[note + 2] ^= 0x01;  // still decodes
    ASSERT_TRUE(db->Put({}, f.at(format::kEventsCf), format::SeqKey(20), value).ok());
  });
  ASSERT_TRUE(OpenSigned().ok());  // the tail after 50 is sound
  LogCheck check = WaitForCheck();
  EXPECT_EQ(check.state, LogCheck::State::kDamaged);
  // The chain names the event after the changed one: its prevHash no
  // longer matches (docs/FORMAT.md, "What a verifier checks").
  EXPECT_EQ(check.first_bad_seq, 21u) << check.problem;
  EXPECT_EQ(check.checked, 20u);
  const uint64_t head = store_->head().seq;
  auto refused = store_->Append(OneEvent(CheckInDraft("alice", "kr-0", "ci-after-damage", 1)));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kCorruption);
  EXPECT_NE(refused.status().message().find("the log is damaged at seq 21"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(store_->head().seq, head);
  EXPECT_TRUE(store_->Read(0, 100).ok());  // reads go on
}

TEST_F(CheckpointTest, AChangedTreeNodeRefusesTheOpen) {
  CheckpointAt50Then70();
  WithRaw([](rocksdb::DB* db, const Families& f) {
    std::string node;
    // 50 = 32 + 16 + 2: the root of size 50 is made of (5, 0), (4, 2), (1, 24).
    ASSERT_TRUE(db->Get({}, f.at(format::kTreeCf), format::TreeKey(4, 2), &node).ok());
    node[0] ^= 0x01;
    ASSERT_TRUE(db->Put({}, f.at(format::kTreeCf), format::TreeKey(4, 2), node).ok());
  });
  Status opened = OpenSigned();
  EXPECT_EQ(opened.code(), Status::Code::kCorruption);
  EXPECT_NE(
      opened.message().find("the stored tree does not match the signed checkpoint at size 50"),
      std::string::npos)
      << opened.message();
}

TEST_F(CheckpointTest, AChangedTailNodeRefusesTheOpen) {
  CheckpointAt50Then70();
  WithRaw([](rocksdb::DB* db, const Families& f) {
    ASSERT_TRUE(
        db->Put({}, f.at(format::kTreeCf), format::TreeKey(4, 3), std::string(32, 'x')).ok());
  });
  Status opened = OpenSigned();
  EXPECT_EQ(opened.code(), Status::Code::kCorruption);
  EXPECT_NE(opened.message().find("seq 64: tree node (4, 3) does not match the events it covers"),
            std::string::npos)
      << opened.message();
}

TEST_F(CheckpointTest, AFlippedSignatureByteRefusesTheOpen) {
  CheckpointAt50Then70();
  WithRaw([](rocksdb::DB* db, const Families& f) {
    std::string note;
    ASSERT_TRUE(db->Get({}, f.at(format::kMetaCf), format::kCheckpointKey, &note).ok());
    // The signature's base64 ends the note: change a character in its middle.
    const size_t at = note.size() - 20;
    note[at] = note[at] == 'A' ? 'B' : 'A';
    ASSERT_TRUE(db->Put({}, f.at(format::kMetaCf), format::kCheckpointKey, note).ok());
  });
  Status opened = OpenSigned();
  EXPECT_EQ(opened.code(), Status::Code::kCorruption);
  EXPECT_NE(opened.message().find("the stored checkpoint (meta/checkpoint) does not verify"),
            std::string::npos)
      << opened.message();
}

TEST_F(CheckpointTest, ACheckpointByAnotherKeyIsNotTrustedAndTheOpenChecksEverything) {
  CheckpointAt50Then70();
  auto other = SigningKey::Create(dir_.Sub("other.key"));
  ASSERT_TRUE(other.ok());
  key_ = std::move(other.value());
  store_.reset();
  OpenOptions options;
  options.signing_key = key_;
  Open(options);  // okrd then refuses the key file itself, naming the recorded key
  LogCheck check = store_->BackgroundCheck();
  EXPECT_EQ(check.state, LogCheck::State::kVerified);
  EXPECT_EQ(check.open_checked, 70u);
}

// --- The verifier's check of the stored tree (okrctl verify --data). ---

TEST_F(TreeStoreTest, VerifyTreePassesOnASoundLog) {
  AppendEvents(77);
  VerifyReport report = store_->VerifyTree();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.events, 77u);
}

TEST_F(TreeStoreTest, VerifyTreeNamesTheSeqThatWroteABadNode) {
  AppendEvents(100);
  struct Case {
    uint8_t level;
    uint64_t index;
    uint64_t seq;  // the event whose append completed the node
  };
  for (const Case& c : {Case{4, 1, 32}, Case{4, 5, 96}, Case{5, 2, 96}, Case{6, 0, 64}}) {
    SCOPED_TRACE("node (" + std::to_string(c.level) + ", " + std::to_string(c.index) + ")");
    std::string original;
    auto flip = [&](bool restore) {
      store_.reset();
      WithRawFamilies(dir_.path(), [&](rocksdb::DB* db, const Families& f) {
        const std::string key = format::TreeKey(c.level, c.index);
        if (!restore) {
          ASSERT_TRUE(db->Get({}, f.at(format::kTreeCf), key, &original).ok());
        }
        std::string value = original;
        if (!restore) value[5] ^= 0x40;
        ASSERT_TRUE(db->Put({}, f.at(format::kTreeCf), key, value).ok());
      });
      OpenOptions read_only;
      read_only.read_only = true;
      Open(read_only);
    };
    flip(false);
    VerifyReport report = store_->VerifyTree();
    EXPECT_FALSE(report.ok);
    EXPECT_EQ(report.first_bad_seq, c.seq) << report.problem;
    EXPECT_TRUE(store_->Verify().ok);  // the chain itself is sound
    std::string out;
    EXPECT_EQ(testing::RunCommand(testing::BuildFile(OKRCTL_PATH) + " verify --json --data " +
                                      dir_.path() + " 2>&1",
                                  &out),
              1)
        << out;
    EXPECT_NE(out.find("\"first_bad_seq\":" + std::to_string(c.seq)), std::string::npos) << out;
    flip(true);
    EXPECT_TRUE(store_->VerifyTree().ok);
  }
}

}  // namespace
}  // namespace okr
