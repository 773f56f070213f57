// Checking the log at start-up in O(tail) and the whole of it behind the
// writer's back (SPEC §7): a signed checkpoint vouches for the events up
// to its size, so a writable open checks only those after it; a thread of
// the store then re-hashes everything, and damage it finds stops appends.
#include <rocksdb/write_batch.h>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cassert>
#include <chrono>
#include <cstring>

#include "eventstore/base/thread_name.h"
#include "eventstore/event_json.h"
#include "eventstore/format.h"
#include "eventstore/store_impl.h"

namespace okr {

namespace {

// The background check publishes its progress after each this many events
// and looks at the stop flag as often.
constexpr uint64_t kCheckProgressEvents = 4096;
// The background check's nice value (0 is the default, 19 the lowest).
constexpr int kCheckNice = 10;

int64_t MicrosSince(std::chrono::steady_clock::time_point started) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                               started)
      .count();
}

// Whether `note` has a signature line by `verifier`'s name and key id,
// whatever its signature: a note by another key says nothing about the
// log, only that the key file is not the one that signed it.
bool HasLineByKey(std::string_view note, const NoteVerifier& verifier) {
  const std::string prefix = "\xE2\x80\x94 " + verifier.name + " ";
  const size_t blank = note.find("\n\n");
  if (blank == std::string_view::npos) return false;
  std::string_view rest = note.substr(blank + 2);
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    const std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (!line.starts_with(prefix)) continue;
    auto blob = Base64Decode(line.substr(prefix.size()));
    if (blob && blob->size() >= 4 && format::GetBigEndian32(blob->data()) == verifier.key_id()) {
      return true;
    }
  }
  return false;
}

// The stored node (level, index) under `it`, which walks one level in
// order, into *out, and `it` moved past it; false when the entry there is
// another node or not a 32-byte hash.
bool NextNode(rocksdb::Iterator* it, uint8_t level, uint64_t index, Hash* out) {
  uint8_t got_level = 0;
  uint64_t got_index = 0;
  if (!it->Valid() || !format::ParseTreeKey(View(it->key()), &got_level, &got_index) ||
      got_level != level || got_index != index || it->value().size() != format::kHashSize) {
    return false;
  }
  std::memcpy(out->data(), it->value().data(), format::kHashSize);
  it->Next();
  return true;
}

}  // namespace

// One pass over the events after `resume.after_seq` (to the end of what
// `ro` sees): the chain, the tree's edge moved past each event, and each
// node of the lowest stored level against the one its events make. Stops
// at the first problem, or when `progress` says so (then the report is
// still ok but short of the end).
void EventStore::Impl::WalkEvents(const rocksdb::ReadOptions& ro, const WalkProgress& progress,
                                  TreeWalk* walk) const {
  ChainChecker& chain = walk->chain;
  const uint64_t after = chain.next_seq() - 1;
  constexpr uint8_t kLowest = format::kTreeLowestStoredLevel;
  const std::string first = format::SeqKey(after + 1);
  std::unique_ptr<rocksdb::Iterator> events(db_->NewIterator(ro, events_));
  std::unique_ptr<rocksdb::Iterator> nodes(db_->NewIterator(ro, tree_));
  // The first node of that level the walk completes.
  nodes->Seek(format::TreeKey(kLowest, after >> kLowest));
  std::vector<std::pair<merkle::NodeId, Hash>> completed;
  for (events->Seek(first); events->Valid(); events->Next()) {
    uint64_t seq = 0;
    if (!format::ParseSeqKey(View(events->key()), &seq)) {
      chain.Fail(chain.next_seq(), "malformed key");
      break;
    }
    // A gap is the chain's to name. Else the tree first: a node that does
    // not match is reported at the event that completed it, with the
    // events before it counted as sound.
    if (seq == chain.next_seq()) {
      completed.clear();
      walk->frontier.Append(merkle::LeafHash(View(events->value())), &completed);
      if (completed.size() > kLowest) {
        const auto& [id, hash] = completed[kLowest];
        Hash stored{};
        if (!NextNode(nodes.get(), id.level, id.index, &stored)) {
          chain.Fail(seq, format::TreeNodeName(id.level, id.index) + " is missing or malformed");
          break;
        }
        if (stored != hash) {
          chain.Fail(seq, format::TreeNodeName(id.level, id.index) +
                              " does not match the events it covers");
          break;
        }
      }
    }
    if (!chain.Add(seq, View(events->value()))) break;
    if (seq % kCheckProgressEvents == 0 && progress && !progress(seq)) {
      walk->stopped = true;
      return;
    }
  }
  if (chain.report().ok && !events->status().ok()) {
    chain.Fail(chain.next_seq(), "storage error: " + events->status().ToString());
  }
}

// The last check of a walk: the head record, then the root of the size
// walked from the stored nodes against the one the walk computed.
void EventStore::Impl::FinishWalk(const std::optional<Head>& stored_head,
                                  const rocksdb::Snapshot* snapshot, TreeWalk* walk) const {
  CheckHeadRecord(stored_head, &walk->chain);
  const VerifyReport& report = walk->chain.report();
  if (!report.ok) return;
  auto root = merkle::RootAt(report.events, NodeReaderAt(snapshot));
  if (!root.ok()) {
    walk->chain.Fail(std::max<uint64_t>(report.events, 1), "the tree: " + root.status().message());
  } else if (*root != walk->frontier.Root()) {
    walk->chain.Fail(std::max<uint64_t>(report.events, 1), "the stored tree's root at size " +
                                                               std::to_string(report.events) +
                                                               " does not match its leaves");
  }
}

// Where a check resumes after the first `size` events, trusted: event
// size's hash and recordedAt, and the tree's edge there.
Result<ChainResume> EventStore::Impl::ResumeAfter(uint64_t size) const {
  ChainResume resume;
  resume.after_seq = size;
  if (size == 0) return resume;
  std::string value;
  OKR_RETURN_IF_ERROR(
      FromRocks(db_->Get(rocksdb::ReadOptions(), events_, format::SeqKey(size), &value)));
  resume.prev_hash = Sha256(value);
  auto decoded = DecodedEvent::Decode(value);
  if (!decoded.ok()) {
    return Status::Corruption("log is broken at seq " + std::to_string(size) + ": " +
                              decoded.status().message());
  }
  resume.recorded_at_us = (*decoded)->event().getRecordedAt();
  return resume;
}

// The signed checkpoint the store kept, verified with the key it is given:
// the events up to its size are vouched for by the signature, the tree's
// nodes by its root.
Result<uint64_t> EventStore::Impl::CheckStoredCheckpoint(const std::string& note) const {
  const std::string origin = note.substr(0, note.find('\n'));
  auto checkpoint = VerifyCheckpoint(note, options_.signing_key->Verifier(origin));
  if (!checkpoint.ok()) {
    return Status::Corruption(
        "the stored checkpoint (meta/checkpoint) does not verify with the signing key: " +
        checkpoint.status().message());
  }
  const uint64_t size = checkpoint->size;
  if (size > head_.seq) {
    return Status::Corruption("the log ends at seq " + std::to_string(head_.seq) +
                              ", before the signed checkpoint's size " + std::to_string(size));
  }
  auto root = merkle::RootAt(size, NodeReaderAt(nullptr));
  if (!root.ok() || *root != checkpoint->root) {
    return Status::Corruption("the stored tree does not match the signed checkpoint at size " +
                              std::to_string(size) +
                              (root.ok() ? "" : " (" + root.status().message() + ")"));
  }
  return size;
}

// A writable open with a signing key and a stored checkpoint: the
// checkpoint's signature and root, then only the events after it.
// Whether the stored checkpoint was signed by the key the open was given
// (by key id): else the open checks the whole log instead, and okrd's
// check of its key file refuses the start, saying which key it wants.
bool EventStore::Impl::CheckpointByOurKey(const std::string& note) const {
  const std::string origin = note.substr(0, note.find('\n'));
  return HasLineByKey(note, options_.signing_key->Verifier(origin));
}

Status EventStore::Impl::CheckTailOnOpen(const std::string& note) {
  OKR_ASSIGN_OR_RETURN(uint64_t size, CheckStoredCheckpoint(note));
  OKR_ASSIGN_OR_RETURN(ChainResume resume, ResumeAfter(size));
  OKR_ASSIGN_OR_RETURN(merkle::Frontier frontier,
                       merkle::Frontier::Load(size, NodeReaderAt(nullptr)));
  rocksdb::ReadOptions ro;
  TreeWalk walk(resume, std::move(frontier));
  WalkEvents(ro, {}, &walk);
  FinishWalk(ReadHeadRecord(ro), nullptr, &walk);
  const VerifyReport& report = walk.chain.report();
  if (!report.ok) {
    return Status::Corruption("log is broken at seq " + std::to_string(report.first_bad_seq) +
                              ": " + report.problem);
  }
  std::lock_guard<std::mutex> lock(check_mu_);
  check_.open_checked = head_.seq - size;
  return Status::Ok();
}

void EventStore::Impl::StartBackgroundCheck() {
  {
    std::lock_guard<std::mutex> lock(check_mu_);
    check_.state = LogCheck::State::kChecking;
  }
  checker_ = NamedThread("okr:log-check", [this] { BackgroundCheck(); });
}

// The whole log from seq 1, on one snapshot, so appends go on meanwhile.
void EventStore::Impl::BackgroundCheck() {
  // Below the threads that serve and write (Linux nices threads one by
  // one): on a busy machine the check takes longer, not the requests.
  setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), kCheckNice);
  auto started = std::chrono::steady_clock::now();
  const BulkRead bulk(db_.get());
  const rocksdb::ReadOptions& ro = bulk.options();
  const std::optional<Head> stored_head = ReadHeadRecord(ro);
  {
    std::lock_guard<std::mutex> lock(check_mu_);
    check_.total = stored_head ? stored_head->seq : 0;
  }
  TreeWalk walk(ChainResume{}, merkle::Frontier());
  SizeForWholeLog(&walk.chain);
  WalkEvents(
      ro,
      [this](uint64_t seq) {
        std::lock_guard<std::mutex> lock(check_mu_);
        check_.checked = seq;
        return !stop_check_;
      },
      &walk);
  if (!walk.stopped) FinishWalk(stored_head, bulk.snapshot(), &walk);
  if (walk.stopped) return;  // closing: the state stays kChecking
  CheckedWholeLog(walk.chain);
  const VerifyReport& report = walk.chain.report();
  std::lock_guard<std::mutex> lock(check_mu_);
  check_.checked = report.ok ? report.events : report.first_bad_seq - 1;
  check_.took_us = MicrosSince(started);
  if (report.ok) {
    check_.state = LogCheck::State::kVerified;
    return;
  }
  check_.state = LogCheck::State::kDamaged;
  check_.first_bad_seq = report.first_bad_seq;
  check_.problem = report.problem;
  damaged_ = true;
}

void EventStore::Impl::StopBackgroundCheck() {
  {
    std::lock_guard<std::mutex> lock(check_mu_);
    stop_check_ = true;
  }
  if (checker_.joinable()) checker_.join();
}

LogCheck EventStore::Impl::CurrentCheck() const {
  std::lock_guard<std::mutex> lock(check_mu_);
  return check_;
}

// Appends stop once the log is known damaged: chaining new events to it
// would sign and serve a history that is not what happened.
Status EventStore::Impl::RefuseIfDamaged() const {
  if (!damaged_) return Status::Ok();
  std::lock_guard<std::mutex> lock(check_mu_);
  return Status::Corruption("the log is damaged at seq " + std::to_string(check_.first_bad_seq) +
                            ": " + check_.problem);
}

// Every node of level `level` (above the lowest stored) of the tree of
// `size` leaves against the hash of its two children, one sequential pass
// over each.
void EventStore::Impl::CheckTreeLevel(const rocksdb::ReadOptions& ro, uint8_t level, uint64_t size,
                                      ChainChecker* chain) const {
  std::unique_ptr<rocksdb::Iterator> parents(db_->NewIterator(ro, tree_));
  std::unique_ptr<rocksdb::Iterator> children(db_->NewIterator(ro, tree_));
  parents->Seek(format::TreeKey(level, 0));
  children->Seek(format::TreeKey(level - 1, 0));
  const uint64_t count = size >> level;
  for (uint64_t i = 0; i < count; ++i) {
    Hash parent{}, left{}, right{};
    const std::string node = format::TreeNodeName(level, i);
    // The node was written with the event that completed it: the last it covers.
    const uint64_t seq = (i + 1) << level;
    if (!NextNode(children.get(), level - 1, 2 * i, &left) ||
        !NextNode(children.get(), level - 1, 2 * i + 1, &right)) {
      chain->Fail(seq, "a child of " + node + " is missing or malformed");
      return;
    }
    if (!NextNode(parents.get(), level, i, &parent)) {
      chain->Fail(seq, node + " is missing or malformed");
      return;
    }
    if (parent != merkle::NodeHash(left, right)) {
      chain->Fail(seq, node + " does not equal the hash of its children");
      return;
    }
  }
}

// The chain and the whole stored tree, on one snapshot: every node of the
// lowest stored level against its events, every node above against its
// children, and the root.
VerifyReport EventStore::Impl::VerifyTree(
    const std::function<void(uint64_t, uint64_t)>& progress) const {
  const BulkRead bulk(db_.get());
  const rocksdb::ReadOptions& ro = bulk.options();
  const std::optional<Head> stored_head = ReadHeadRecord(ro);
  const uint64_t total = stored_head ? stored_head->seq : 0;
  TreeWalk walk(ChainResume{}, merkle::Frontier());
  if (tree_ == nullptr) {
    walk.chain.Fail(1, "the log has no tree");
  } else {
    SizeForWholeLog(&walk.chain);
    WalkEvents(
        ro,
        [&](uint64_t seq) {
          if (progress) progress(seq, std::max(seq, total));
          return true;
        },
        &walk);
    for (uint8_t level = format::kTreeLowestStoredLevel + 1;
         walk.chain.report().ok && (walk.frontier.size() >> level) > 0; ++level) {
      CheckTreeLevel(ro, level, walk.frontier.size(), &walk.chain);
    }
    FinishWalk(stored_head, bulk.snapshot(), &walk);
    CheckedWholeLog(walk.chain);
  }
  if (progress) progress(walk.chain.report().events, total);
  return walk.chain.report();
}

}  // namespace okr
