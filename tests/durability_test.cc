// Durability of the event log: an append the store acknowledged survives a
// SIGKILL of the writing process and a power loss, and no append is ever half
// written.
//
// Every append in these tests carries the idempotency key "g<k>-...", where
// k is the number of events in it; the store copies the key into each event,
// so a scan of the log shows whether an append was torn.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/options.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "eventstore/event_codec.h"
#include "eventstore/event_store.h"
#include "tests/test_support.h"

#ifndef CRASH_WRITER_PATH
#error "CRASH_WRITER_PATH must name the crash_writer binary (set by tests/CMakeLists.txt)"
#endif

extern char** environ;

namespace okr {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::CheckInDraft;
using testing::TempDir;
using testing::UnitCreatedDraft;

// seq -> SHA-256 of the stored bytes, for every event a writer was told is durable.
using Acknowledged = std::map<uint64_t, Hash>;

// --- Checking a log against what its writers were told. ---

struct LogStats {
  uint64_t events = 0;
  uint64_t appends = 0;
  uint64_t multi_event_appends = 0;
};

// The group size k of an idempotency key "g<k>-...", 0 when it has no such prefix.
size_t GroupSize(std::string_view key) {
  if (key.size() < 3 || key[0] != 'g') return 0;
  size_t dash = key.find('-');
  if (dash == std::string_view::npos || dash == 1) return 0;
  size_t k = 0;
  for (char c : key.substr(1, dash - 1)) {
    if (c < '0' || c > '9') return 0;
    k = k * 10 + static_cast<size_t>(c - '0');
  }
  return k;
}

// The log must be a dense, intact chain (Verify), hold every acknowledged
// event with the acknowledged bytes, and consist of whole appends only: the
// events of one append are contiguous, complete, and appear once.
::testing::AssertionResult LogIsIntact(const EventStore& store, const Acknowledged& acknowledged,
                                       LogStats* stats = nullptr) {
  VerifyReport report = store.Verify();
  if (!report.ok) {
    return ::testing::AssertionFailure()
           << "Verify fails at seq " << report.first_bad_seq << ": " << report.problem;
  }
  const Head head = store.head();
  if (report.events != head.seq) {
    return ::testing::AssertionFailure()
           << "Verify passed " << report.events << " events but the head is " << head.seq;
  }

  std::vector<Hash> hashes;
  hashes.reserve(head.seq);
  std::set<std::string> seen_keys;
  std::string open_key;  // the append whose events are being read
  size_t open_remaining = 0;
  LogStats local;
  std::string problem;
  Status scanned = store.Scan(1, UINT64_MAX, [&](uint64_t seq, std::string_view bytes) {
    if (seq != hashes.size() + 1) {
      problem =
          "scan returned seq " + std::to_string(seq) + " after " + std::to_string(hashes.size());
      return false;
    }
    hashes.push_back(Sha256(bytes));
    auto decoded = DecodedEvent::Decode(bytes);
    if (!decoded.ok()) {
      problem = "seq " + std::to_string(seq) + " does not decode";
      return false;
    }
    std::string key = (*decoded)->event().getIdempotencyKey().cStr();
    if (open_remaining > 0) {
      if (key != open_key) {
        problem = "append " + open_key + " is torn: seq " + std::to_string(seq) + " belongs to '" +
                  key + "' but " + std::to_string(open_remaining) +
                  " more events of the append were expected";
        return false;
      }
      --open_remaining;
      return true;
    }
    const size_t k = GroupSize(key);
    if (k == 0) {
      problem = "seq " + std::to_string(seq) + " has key '" + key + "' without a group size";
      return false;
    }
    if (!seen_keys.insert(key).second) {
      problem = "append " + key + " appears twice (again at seq " + std::to_string(seq) + ")";
      return false;
    }
    open_key = key;
    open_remaining = k - 1;
    ++local.appends;
    if (k > 1) ++local.multi_event_appends;
    return true;
  });
  if (!scanned.ok()) return ::testing::AssertionFailure() << "scan: " << scanned.ToString();
  if (!problem.empty()) return ::testing::AssertionFailure() << problem;
  if (open_remaining > 0) {
    return ::testing::AssertionFailure() << "the log ends inside append " << open_key << ", "
                                         << open_remaining << " events short";
  }
  if (hashes.size() != head.seq) {
    return ::testing::AssertionFailure()
           << "scan found " << hashes.size() << " events, the head is " << head.seq;
  }
  for (const auto& [seq, hash] : acknowledged) {
    if (seq == 0 || seq > head.seq) {
      return ::testing::AssertionFailure()
             << "acknowledged seq " << seq << " is lost: the log ends at " << head.seq;
    }
    if (hashes[seq - 1] != hash) {
      return ::testing::AssertionFailure()
             << "acknowledged seq " << seq << " has other bytes now: acknowledged " << ToHex(hash)
             << ", stored " << ToHex(hashes[seq - 1]);
    }
  }
  local.events = head.seq;
  if (stats != nullptr) *stats = local;
  return ::testing::AssertionSuccess();
}

// Adds `hash` as the acknowledged bytes of `seq`; false if the seq was already
// acknowledged with other bytes (it was lost and handed out again).
bool AddAcknowledged(Acknowledged* acknowledged, uint64_t seq, const Hash& hash) {
  auto [it, inserted] = acknowledged->emplace(seq, hash);
  return inserted || it->second == hash;
}

// --- SIGKILL: a writer process killed at a random moment. ---

struct KilledRun {
  int spawn_error = 0;  // errno of posix_spawn, 0 when it started
  std::string output;   // everything the child wrote to stdout
  int wait_status = 0;
  bool timed_out = false;  // no acknowledgement came within the limit
};

// Runs crash_writer on `dir` and SIGKILLs it `delay` after its start, or
// after its first acknowledged append when `delay_from_first_ack`. Reads
// the child's stdout the whole time, so the pipe never fills up and blocks it.
KilledRun RunAndKill(const std::string& dir, int threads, uint64_t seed, milliseconds delay,
                     bool delay_from_first_ack) {
  KilledRun run;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    run.spawn_error = errno;
    return run;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);  // clears CLOEXEC on 1
  std::vector<std::string> args = {testing::BuildFile(CRASH_WRITER_PATH), dir,
                                   std::to_string(threads), std::to_string(seed)};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, args[0].c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    run.spawn_error = rc;
    return run;
  }

  const auto start = steady_clock::now();
  // Generous, for a loaded machine: the child starts, opens and verifies the
  // log before its first acknowledgement.
  const auto limit = start + std::chrono::seconds(30);
  std::optional<steady_clock::time_point> kill_at;
  if (!delay_from_first_ack) kill_at = start + delay;
  bool killed = false;
  char buf[1 << 16];
  for (;;) {
    if (!killed) {
      const auto now = steady_clock::now();
      const auto deadline = kill_at ? std::min(*kill_at, limit) : limit;
      if (now >= deadline) {
        run.timed_out = !kill_at.has_value();
        kill(pid, SIGKILL);
        killed = true;
        continue;  // drain what it wrote before it died
      }
      pollfd p{fds[0], POLLIN, 0};
      int wait_ms = static_cast<int>(std::chrono::ceil<milliseconds>(deadline - now).count());
      int ready = poll(&p, 1, wait_ms);
      if (ready == 0 || (ready < 0 && errno == EINTR)) continue;
    }
    ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child is gone, killed or on its own
    run.output.append(buf, static_cast<size_t>(n));
    if (!kill_at && run.output.find('\n') != std::string::npos) {
      kill_at = steady_clock::now() + delay;
    }
  }
  close(fds[0]);
  if (!killed) kill(pid, SIGKILL);  // it exited by itself; a zombie ignores this
  waitpid(pid, &run.wait_status, 0);
  return run;
}

std::string DescribeWaitStatus(int status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "wait status " + std::to_string(status);
}

// Adds every acknowledgement in the complete lines of crash_writer's output
// to *acknowledged. A last line without its newline was cut by the kill and
// is ignored: the append may or may not be durable, nobody was told.
::testing::AssertionResult ParseAcknowledgements(const std::string& output,
                                                 Acknowledged* acknowledged, int* appends) {
  size_t begin = 0;
  for (size_t end; (end = output.find('\n', begin)) != std::string::npos; begin = end + 1) {
    std::istringstream line(output.substr(begin, end - begin));
    uint64_t first = 0, last = 0;
    if (!(line >> first >> last) || first == 0 || last < first || last - first >= 3) {
      return ::testing::AssertionFailure()
             << "malformed line: " << output.substr(begin, end - begin);
    }
    for (uint64_t seq = first; seq <= last; ++seq) {
      std::string hex;
      Hash hash{};
      if (!(line >> hex) || !FromHex(hex, &hash)) {
        return ::testing::AssertionFailure()
               << "line lacks the hash of seq " << seq << ": " << output.substr(begin, end - begin);
      }
      if (!AddAcknowledged(acknowledged, seq, hash)) {
        return ::testing::AssertionFailure()
               << "seq " << seq << " was acknowledged twice with different bytes";
      }
    }
    ++*appends;
  }
  return ::testing::AssertionSuccess();
}

TEST(DurabilityTest, AcknowledgedAppendsSurviveSigkill) {
  constexpr uint32_t kSeed = 20260611;
  constexpr int kRounds = 24;
  std::mt19937 rng(kSeed);
  TempDir dir;
  const std::string log_dir = dir.Sub("log");
  Acknowledged acknowledged;  // over all rounds: the log accumulates
  int rounds_counted_from_ack = 0, rounds_with_acks = 0, acknowledged_appends = 0;
  LogStats stats;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("seed " + std::to_string(kSeed) + ", round " + std::to_string(round));
    const int threads = 2 + static_cast<int>(rng() % 5);
    const milliseconds delay(20 + rng() % 281);
    // Every fourth kill is timed from the start instead, so some land while
    // the writer is still opening (recovering and verifying) the log.
    const bool from_first_ack = round % 4 != 3;
    const uint64_t child_seed = (uint64_t{rng()} << 8) | static_cast<uint64_t>(round);

    KilledRun run = RunAndKill(log_dir, threads, child_seed, delay, from_first_ack);
    ASSERT_EQ(run.spawn_error, 0) << "cannot start " << CRASH_WRITER_PATH << ": "
                                  << std::strerror(run.spawn_error);
    ASSERT_FALSE(run.timed_out) << "crash_writer acknowledged nothing within 30 s";
    ASSERT_TRUE(WIFSIGNALED(run.wait_status) && WTERMSIG(run.wait_status) == SIGKILL)
        << "crash_writer was not killed, it " << DescribeWaitStatus(run.wait_status);
    const int appends_before = acknowledged_appends;
    ASSERT_TRUE(ParseAcknowledgements(run.output, &acknowledged, &acknowledged_appends));
    if (from_first_ack) ++rounds_counted_from_ack;
    if (acknowledged_appends > appends_before) ++rounds_with_acks;

    // Open verifies the whole chain by default; a torn or gapped log fails here.
    auto opened = EventStore::Open(log_dir);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    ASSERT_TRUE(LogIsIntact(**opened, acknowledged, &stats));
  }
  // The test proves something only if kills landed among acknowledged appends.
  EXPECT_GE(rounds_with_acks, rounds_counted_from_ack);
  EXPECT_GT(stats.multi_event_appends, 0u);
  EXPECT_GE(stats.events, acknowledged.size());
  std::printf(
      "durability sigkill: %d acknowledged appends (%zu events) survived %d SIGKILLs; log of %llu "
      "events\n",
      acknowledged_appends, acknowledged.size(), kRounds,
      static_cast<unsigned long long>(stats.events));
}

// --- Power loss: a file system that forgets what was never synced. ---

// Wraps a FileSystem and records, per file written through it, how many
// bytes were appended and how many are durable. SimulateCrash() cuts the
// power: from then on nothing reaches the disk (writes, syncs, creates,
// renames and deletes fail). After the DB is closed, DropUnsyncedData()
// makes the disk look as it would after the reboot.
//
// The model, and why:
// - File data is durable up to the size at the last successful Sync/Fsync.
//   Close, Flush and RangeSync make nothing durable (RangeSync is
//   sync_file_range, which does not flush the disk cache or metadata).
// - A file created through this FS is on disk only once its directory was
//   fsynced after the creation. A power loss before that removes the file,
//   synced data and all, as on a real file system; RocksDB fsyncs the
//   directory after creating each file it depends on, so this is fair, and
//   stricter than truncating such files to zero.
// - A rename is durable at once, and with it every entry created earlier in
//   its directory: journaling file systems commit metadata operations in
//   order, and undoing a rename would need the replaced file's old contents.
//   RocksDB fsyncs the directory after each rename anyway.
// - Files that existed before this FS saw them (earlier runs, the info LOG
//   which RocksDB opens through NewLogger) are left alone, as are deletes:
//   RocksDB ignores leftover obsolete files.
class PowerLossFs : public rocksdb::FileSystemWrapper {
 public:
  struct DropReport {
    uint64_t bytes_dropped = 0;      // all files
    uint64_t wal_bytes_dropped = 0;  // write-ahead logs (*.log) only
    int files_removed = 0;
  };

  explicit PowerLossFs(const std::shared_ptr<rocksdb::FileSystem>& base)
      : rocksdb::FileSystemWrapper(base) {}
  const char* Name() const override { return "PowerLossFs"; }

  void SimulateCrash() {
    std::lock_guard<std::mutex> lock(mu_);
    crashed_ = true;
  }
  bool crashed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return crashed_;
  }
  // Cuts the power right after the n-th append to a write-ahead log from
  // now on: those bytes reach the OS, but no sync can follow them.
  void CrashAfterWalAppends(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    wal_appends_before_crash_ = n;
  }

  // Call only once nothing uses the FS any more (the DB is closed).
  DropReport DropUnsyncedData() {
    std::lock_guard<std::mutex> lock(mu_);
    DropReport report;
    for (const auto& [path, state] : files_) {
      std::error_code ec;
      const uint64_t size = std::filesystem::file_size(path, ec);
      if (ec) continue;  // gone already
      uint64_t dropped = 0;
      if (!state.entry_durable) {
        std::filesystem::remove(path, ec);
        dropped = size;
        ++report.files_removed;
      } else if (size > state.synced) {
        std::filesystem::resize_file(path, state.synced, ec);
        dropped = size - state.synced;
      }
      EXPECT_FALSE(ec) << "cannot drop unsynced data of " << path << ": " << ec.message();
      report.bytes_dropped += dropped;
      if (IsWal(path)) report.wal_bytes_dropped += dropped;
    }
    files_.clear();
    return report;
  }

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    return OpenTracked(fname, opts, result, dbg, /*reopen=*/false);
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override {
    return OpenTracked(fname, opts, result, dbg, /*reopen=*/true);
  }
  // Through this FS's own rename and create, so the file stays tracked.
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& opts,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = RenameFile(old_fname, fname, rocksdb::IOOptions(), dbg);
    if (!s.ok()) return s;
    return OpenTracked(fname, opts, result, dbg, /*reopen=*/false);
  }

  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& io_opts,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSDirectory> dir;
    rocksdb::IOStatus s = target()->NewDirectory(name, io_opts, &dir, dbg);
    if (!s.ok()) return s;
    *result = std::make_unique<TrackedDir>(std::move(dir), this, NormalDir(name));
    return s;
  }

  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override {
    if (crashed()) return PowerLost();
    rocksdb::IOStatus s = target()->DeleteFile(fname, options, dbg);
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      files_.erase(fname);
    }
    return s;
  }

  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override {
    if (crashed()) return PowerLost();
    rocksdb::IOStatus s = target()->RenameFile(src, dst, options, dbg);
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = files_.find(src);
      if (it != files_.end()) {
        FileState moved = it->second;
        files_.erase(it);
        files_[dst] = moved;
      } else {
        files_.erase(dst);  // now holds an untracked file's data
      }
      const std::string dir = DirOf(dst);
      for (auto& [path, state] : files_) {
        if (DirOf(path) == dir) state.entry_durable = true;
      }
    }
    return s;
  }

  rocksdb::IOStatus LinkFile(const std::string& src, const std::string& dst,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    if (crashed()) return PowerLost();
    return target()->LinkFile(src, dst, options, dbg);
  }

  rocksdb::IOStatus Truncate(const std::string& fname, size_t size,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    if (crashed()) return PowerLost();
    rocksdb::IOStatus s = target()->Truncate(fname, size, options, dbg);
    if (s.ok()) OnTruncate(fname, size);
    return s;
  }

 private:
  struct FileState {
    uint64_t appended = 0;       // bytes written through the FS
    uint64_t synced = 0;         // of those, durable
    bool entry_durable = false;  // the directory entry survives a power loss
  };

  static rocksdb::IOStatus PowerLost() {
    return rocksdb::IOStatus::IOError("simulated power loss");
  }
  static bool IsWal(const std::string& path) {
    return path.size() > 4 && path.compare(path.size() - 4, 4, ".log") == 0;
  }
  static std::string NormalDir(const std::string& dir) {
    std::string s = std::filesystem::path(dir).lexically_normal().string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return s;
  }
  static std::string DirOf(const std::string& path) {
    return NormalDir(std::filesystem::path(path).parent_path().string());
  }

  class TrackedFile : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    TrackedFile(std::unique_ptr<rocksdb::FSWritableFile> file, PowerLossFs* fs, std::string path)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(file)), fs_(fs), path_(std::move(path)) {}

    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->crashed()) return PowerLost();
      rocksdb::IOStatus s = target()->Append(data, options, dbg);
      if (s.ok()) fs_->OnAppend(path_, data.size(), std::nullopt);
      return s;
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->crashed()) return PowerLost();
      rocksdb::IOStatus s = target()->Append(data, options, info, dbg);
      if (s.ok()) fs_->OnAppend(path_, data.size(), std::nullopt);
      return s;
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                       const rocksdb::IOOptions& options,
                                       rocksdb::IODebugContext* dbg) override {
      if (fs_->crashed()) return PowerLost();
      rocksdb::IOStatus s = target()->PositionedAppend(data, offset, options, dbg);
      if (s.ok()) fs_->OnAppend(path_, data.size(), offset);
      return s;
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                       const rocksdb::IOOptions& options,
                                       const rocksdb::DataVerificationInfo& info,
                                       rocksdb::IODebugContext* dbg) override {
      if (fs_->crashed()) return PowerLost();
      rocksdb::IOStatus s = target()->PositionedAppend(data, offset, options, info, dbg);
      if (s.ok()) fs_->OnAppend(path_, data.size(), offset);
      return s;
    }
    rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override {
      if (fs_->crashed()) return PowerLost();
      rocksdb::IOStatus s = target()->Truncate(size, options, dbg);
      if (s.ok()) fs_->OnTruncate(path_, size);
      return s;
    }
    rocksdb::IOStatus Flush(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      if (fs_->crashed()) return PowerLost();
      return target()->Flush(options, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
      return Durable([&] { return target()->Sync(options, dbg); });
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      return Durable([&] { return target()->Fsync(options, dbg); });
    }
    rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const rocksdb::IOOptions& options,
                                rocksdb::IODebugContext* dbg) override {
      if (fs_->crashed()) return PowerLost();
      return target()->RangeSync(offset, nbytes, options, dbg);  // not durable
    }

   private:
    // A sync that starts before the crash and succeeds made everything
    // appended before it durable; the caller is about to rely on that.
    template <typename F>
    rocksdb::IOStatus Durable(F&& sync) {
      if (fs_->crashed()) return PowerLost();
      const uint64_t covered = fs_->Appended(path_);
      rocksdb::IOStatus s = sync();
      if (s.ok()) fs_->OnSync(path_, covered);
      return s;
    }

    PowerLossFs* fs_;
    std::string path_;
  };

  class TrackedDir : public rocksdb::FSDirectoryWrapper {
   public:
    TrackedDir(std::unique_ptr<rocksdb::FSDirectory> dir, PowerLossFs* fs, std::string path)
        : rocksdb::FSDirectoryWrapper(std::move(dir)), fs_(fs), path_(std::move(path)) {}

    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      return Durable([&] { return rocksdb::FSDirectoryWrapper::Fsync(options, dbg); });
    }
    rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& options,
                                          rocksdb::IODebugContext* dbg,
                                          const rocksdb::DirFsyncOptions& dir_options) override {
      return Durable([&] {
        return rocksdb::FSDirectoryWrapper::FsyncWithDirOptions(options, dbg, dir_options);
      });
    }

   private:
    template <typename F>
    rocksdb::IOStatus Durable(F&& sync) {
      if (fs_->crashed()) return PowerLost();
      std::vector<std::string> entries = fs_->NewEntriesIn(path_);
      rocksdb::IOStatus s = sync();
      if (s.ok()) fs_->MarkEntriesDurable(entries);
      return s;
    }

    PowerLossFs* fs_;
    std::string path_;
  };

  rocksdb::IOStatus OpenTracked(const std::string& fname, const rocksdb::FileOptions& opts,
                                std::unique_ptr<rocksdb::FSWritableFile>* result,
                                rocksdb::IODebugContext* dbg, bool reopen) {
    if (crashed()) return PowerLost();
    const bool existed = target()->FileExists(fname, rocksdb::IOOptions(), dbg).ok();
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = reopen ? target()->ReopenWritableFile(fname, opts, &file, dbg)
                                 : target()->NewWritableFile(fname, opts, &file, dbg);
    if (!s.ok()) return s;
    uint64_t size = 0;
    if (reopen) size = file->GetFileSize(rocksdb::IOOptions(), dbg);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = files_.find(fname);
      if (reopen && it != files_.end()) {
        it->second.appended = size;
      } else {
        // What was there before is on disk; a new file's contents are not.
        files_[fname] = FileState{size, size, existed};
      }
    }
    *result = std::make_unique<TrackedFile>(std::move(file), this, fname);
    return s;
  }

  void OnAppend(const std::string& path, size_t n, std::optional<uint64_t> offset) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(path);
    if (it != files_.end()) {
      FileState& f = it->second;
      f.appended = offset ? std::max(f.appended, *offset + n) : f.appended + n;
    }
    if (IsWal(path) && wal_appends_before_crash_ > 0 && --wal_appends_before_crash_ == 0) {
      crashed_ = true;
    }
  }
  void OnTruncate(const std::string& path, uint64_t size) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(path);
    if (it == files_.end()) return;
    it->second.appended = size;
    it->second.synced = std::min(it->second.synced, size);
  }
  uint64_t Appended(const std::string& path) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(path);
    return it == files_.end() ? 0 : it->second.appended;
  }
  void OnSync(const std::string& path, uint64_t covered) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(path);
    if (it != files_.end()) it->second.synced = std::max(it->second.synced, covered);
  }
  std::vector<std::string> NewEntriesIn(const std::string& dir) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> entries;
    for (const auto& [path, state] : files_) {
      if (!state.entry_durable && DirOf(path) == dir) entries.push_back(path);
    }
    return entries;
  }
  void MarkEntriesDurable(const std::vector<std::string>& entries) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& path : entries) {
      auto it = files_.find(path);
      if (it != files_.end()) it->second.entry_durable = true;
    }
  }

  mutable std::mutex mu_;
  bool crashed_ = false;
  int wal_appends_before_crash_ = 0;  // 0: no armed crash
  std::map<std::string, FileState> files_;
};

// Proves the fault injection bites, so that the power-loss test below means
// something: writes RocksDB never synced are gone after the drop, while the
// synced write survives. The same writes on a second directory without the
// drop show they did reach the file system, so it is the drop that removed them.
TEST(DurabilityTest, FaultInjectionDropsUnsyncedWrites) {
  constexpr int kUnsynced = 100;
  for (bool drop : {false, true}) {
    SCOPED_TRACE(drop ? "with the drop" : "without the drop");
    TempDir dir;
    auto fs = std::make_shared<PowerLossFs>(rocksdb::FileSystem::Default());
    std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
    {
      rocksdb::Options options;
      options.create_if_missing = true;
      options.env = env.get();
      rocksdb::DB* raw = nullptr;
      ASSERT_TRUE(rocksdb::DB::Open(options, dir.path(), &raw).ok());
      std::unique_ptr<rocksdb::DB> db(raw);
      rocksdb::WriteOptions synced;
      synced.sync = true;
      ASSERT_TRUE(db->Put(synced, "synced", "1").ok());
      rocksdb::WriteOptions unsynced;  // sync = false: acknowledged from the page cache
      for (int i = 0; i < kUnsynced; ++i) {
        ASSERT_TRUE(db->Put(unsynced, "unsynced-" + std::to_string(i), "1").ok());
      }
      fs->SimulateCrash();
      // After the power is gone nothing becomes durable, not even a synced write.
      EXPECT_FALSE(db->Put(synced, "after-crash", "1").ok());
      db->Close().PermitUncheckedError();
    }
    PowerLossFs::DropReport report;
    if (drop) report = fs->DropUnsyncedData();

    rocksdb::Options options;  // the plain default Env from here on
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir.path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string value;
    EXPECT_TRUE(db->Get({}, "synced", &value).ok());
    EXPECT_TRUE(db->Get({}, "after-crash", &value).IsNotFound());
    int survived = 0;
    for (int i = 0; i < kUnsynced; ++i) {
      if (db->Get({}, "unsynced-" + std::to_string(i), &value).ok()) ++survived;
    }
    if (drop) {
      EXPECT_EQ(survived, 0);
      EXPECT_GT(report.wal_bytes_dropped, 0u);
    } else {
      EXPECT_EQ(survived, kUnsynced);
    }
  }
}

// An append of 1-3 events keyed "g<k>-<tag>-t<thread>-<n>", on a mix of
// shared key results and fresh units.
AppendRequest MakeAppend(std::mt19937_64& rng, const std::string& tag, int thread, uint64_t n) {
  const size_t size = rng() % 5 < 2 ? 2 + rng() % 2 : 1;
  AppendRequest request;
  request.idempotency_key = "g" + std::to_string(size) + "-" + tag + "-t" + std::to_string(thread) +
                            "-" + std::to_string(n);
  request.fingerprint = Sha256(request.idempotency_key);
  for (size_t i = 0; i < size; ++i) {
    std::string suffix = request.idempotency_key + "-" + std::to_string(i);
    if (rng() % 4 == 0) {
      request.events.push_back(UnitCreatedDraft("power", "unit-" + suffix, "Unit " + suffix));
    } else {
      request.events.push_back(CheckInDraft("power", "kr-" + std::to_string(rng() % 12),
                                            "ci-" + suffix, static_cast<double>(rng() % 1000)));
    }
  }
  return request;
}

TEST(DurabilityTest, AcknowledgedAppendsSurvivePowerLoss) {
  constexpr uint32_t kSeed = 20260612;
  constexpr int kRounds = 8;
  std::mt19937 rng(kSeed);
  TempDir dir;
  Acknowledged acknowledged;  // over all rounds: the log accumulates
  uint64_t unacknowledged_failures = 0;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("seed " + std::to_string(kSeed) + ", round " + std::to_string(round));
    auto fs = std::make_shared<PowerLossFs>(rocksdb::FileSystem::Default());
    std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
    const int threads = 4 + static_cast<int>(rng() % 5);
    // Even rounds cut the power right after a WAL append, i.e. certainly
    // between a write and its sync; odd rounds at a random time after the
    // first acknowledgement. Not before it: RocksDB fsyncs the WAL's
    // directory after the first synced write to a new WAL, and a cut between
    // that write's sync and the directory fsync fails an append whose data
    // is already on disk (see the head check below).
    const bool after_wal_append = round % 2 == 0;
    const int wal_appends = 10 + static_cast<int>(rng() % 150);
    const milliseconds delay(rng() % 150);
    const uint64_t thread_seed_base = rng();

    std::mutex mu;
    Acknowledged acknowledged_now;
    std::vector<std::string> errors;
    std::atomic<int> failed_threads{0};
    std::atomic<uint64_t> appends_acknowledged{0};
    bool trigger_fired = false;
    {
      OpenOptions options;
      options.env = env.get();
      auto opened = EventStore::Open(dir.path(), options);
      ASSERT_TRUE(opened.ok()) << opened.status().ToString();
      std::unique_ptr<EventStore> store = std::move(opened.value());
      if (after_wal_append) fs->CrashAfterWalAppends(wal_appends);

      std::vector<std::thread> workers;
      for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
          std::mt19937_64 thread_rng(thread_seed_base + t);
          const std::string tag = "p" + std::to_string(round);
          for (uint64_t n = 0;; ++n) {
            AppendRequest request = MakeAppend(thread_rng, tag, t, n);
            const size_t size = request.events.size();
            auto result = store->Append(std::move(request));
            if (!result.ok()) {
              // The only way out: once the power is gone every append fails.
              std::lock_guard<std::mutex> lock(mu);
              if (result.status().code() != Status::Code::kIOError) {
                errors.push_back("append: " + result.status().ToString());
              }
              ++failed_threads;
              return;
            }
            auto events = store->Read(result->first_seq - 1, size);
            std::lock_guard<std::mutex> lock(mu);
            if (!events.ok() || events->size() != size || result->replayed) {
              errors.push_back("cannot read back seqs " + std::to_string(result->first_seq) + ".." +
                               std::to_string(result->last_seq));
              return;
            }
            for (const auto& e : *events) acknowledged_now[e.seq] = Sha256(e.bytes);
            ++appends_acknowledged;
          }
        });
      }
      const auto limit = steady_clock::now() + std::chrono::seconds(30);
      if (after_wal_append) {
        while (!fs->crashed() && steady_clock::now() < limit) {
          std::this_thread::sleep_for(milliseconds(1));
        }
        trigger_fired = fs->crashed();
      } else {
        while (appends_acknowledged == 0 && failed_threads == 0 && steady_clock::now() < limit) {
          std::this_thread::sleep_for(milliseconds(1));
        }
        std::this_thread::sleep_for(delay);
      }
      fs->SimulateCrash();
      for (auto& w : workers) w.join();
    }  // the store closes with the power already cut
    const PowerLossFs::DropReport dropped = fs->DropUnsyncedData();

    for (const auto& e : errors) ADD_FAILURE() << e;
    EXPECT_EQ(failed_threads.load(), threads);
    unacknowledged_failures += static_cast<uint64_t>(failed_threads.load());
    if (after_wal_append) {
      ASSERT_TRUE(trigger_fired) << "no WAL append within 30 s";
      // The append that fired the crash was written but never synced.
      EXPECT_GT(dropped.wal_bytes_dropped, 0u);
    }
    for (const auto& [seq, hash] : acknowledged_now) {
      ASSERT_TRUE(AddAcknowledged(&acknowledged, seq, hash))
          << "seq " << seq << " was acknowledged twice with different bytes";
    }

    auto reopened = EventStore::Open(dir.path());  // plain Env, chain verified on open
    ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
    ASSERT_TRUE(LogIsIntact(**reopened, acknowledged));
    // A failed append wrote nothing: the log ends at the last acknowledged
    // event. This holds for a power cut anywhere but between the sync of a
    // new WAL's first write and the directory fsync after it, which the
    // rounds above avoid; there an append answered kIOError does survive.
    const uint64_t last_acknowledged = acknowledged.empty() ? 0 : acknowledged.rbegin()->first;
    EXPECT_EQ((*reopened)->head().seq, last_acknowledged);
  }
  EXPECT_GT(acknowledged.size(), 0u);
  EXPECT_GT(unacknowledged_failures, 0u);
  std::printf(
      "durability power loss: %zu acknowledged events survived %d power cuts; %llu appends failed "
      "and "
      "wrote nothing\n",
      acknowledged.size(), kRounds, static_cast<unsigned long long>(unacknowledged_failures));
}

}  // namespace
}  // namespace okr
