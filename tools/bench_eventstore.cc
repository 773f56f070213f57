// bench_eventstore: throughput of the okrd event store, side by side with
// plain RocksDB doing the same work, in one run.
//
//   bench_eventstore [--seconds S] [--events N] [--threads 1,16,64] [--dir PARENT] [--quick]
//                    [--merkle-only] [--tree-model] [--sealing]
//
// Measures, on real RocksDB on disk:
//   a) raw RocksDB: N threads each Put one stored-event-sized value with
//      sync = true (RocksDB's own group commit);
//   b) EventStore::Append with N threads, one check-in event per append;
//      a) and b) run in alternating rounds of about 0.5 s, so both see the
//      same disk and the same neighbours;
//   c) raw RocksDB, one thread, synced WriteBatches of 128 values;
//   d) replay of an N-event log (built with appends of 1000 events): a
//      minimal reader (plain iterator over the events column family + Cap'n
//      Proto reader over an aligned copy) versus EventStore::Scan +
//      DecodedEvent::Decode;
//   e) EventStore::Verify over the same log;
// --sealing measures instead what sealing personal fields (SPEC §10) costs
// the append: each check-in's note sealed under one of 5,000 subjects'
// keys, against the same check-ins plain, in alternating rounds, on logs
// of --events events built first (each the same way, plain or sealed).
// then "what-if" rows (the replay and the verify loop with a cheaper but
// equally strict decode check, see below) and, in memory, the cost per event
// of each step of decoding and hashing, and of the Merkle tree: LeafHash +
// Frontier::Append per event, proofs and their verification at N leaves
// (nodes in memory: the math, without RocksDB's reads).
//
// The raw writes store the very bytes of a stored check-in event, so both
// sides move the same number of bytes per event. The output says how much
// CPU other processes took meanwhile: on a shared machine, figures taken
// while that is high are noise.
//
// Everything happens in a fresh directory under PARENT ($TMPDIR or /tmp by
// default), removed at the end. This is a program, not a test: it never
// fails on slow figures, it prints them (docs/BENCHMARKS.md).
#include <capnp/dynamic.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <openssl/evp.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/statistics.h>
#include <rocksdb/write_batch.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "eventstore/event_codec.h"
#include "eventstore/event_store.h"
#include "eventstore/format.h"
#include "eventstore/keystore.h"
#include "eventstore/merkle.h"
#include "eventstore/sealing.h"

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

[[noreturn]] void Fail(const std::string& what) { throw std::runtime_error(what); }

void Check(const okr::Status& s, const char* what) {
  if (!s.ok()) Fail(std::string(what) + ": " + s.ToString());
}

void Check(const rocksdb::Status& s, const char* what) {
  if (!s.ok()) Fail(std::string(what) + ": " + s.ToString());
}

// ---------------------------------------------------------------------------
// Options and the scratch directory.

struct Config {
  double seconds = 3.0;
  uint64_t events = 1'000'000;
  std::vector<int> threads = {1, 16, 64};
  std::string parent;
  bool quick = false;
  bool merkle_only = false;
  bool tree_model = false;
  bool sealing = false;
};

void Usage(FILE* out) {
  std::fprintf(out,
               "usage: bench_eventstore [--seconds S] [--events N] [--threads 1,16,64]\n"
               "                        [--dir PARENT] [--quick] [--merkle-only] [--tree-model]\n"
               "                        [--sealing]\n"
               "  --seconds S   duration of each write measurement (default 3)\n"
               "  --events N    events in the replay/verify log (default 1000000)\n"
               "  --threads L   writer concurrencies, comma-separated (default 1,16,64)\n"
               "  --dir PARENT  where the scratch directory goes (default $TMPDIR or /tmp)\n"
               "  --quick       smoke run: 0.5 s per measurement, 50000 events\n"
               "  --merkle-only only the Merkle tree figures (in memory, N leaves)\n"
               "  --tree-model  only the RocksDB-only model of the writer's batch, with\n"
               "                the tree's nodes stored from each lowest level (N events)\n");
}

Config ParseArgs(int argc, char** argv) {
  Config config;
  bool seconds_set = false, events_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto next = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= argc) {
        Usage(stderr);
        std::exit(2);
      }
      return argv[++i];
    };
    try {
      if (arg == "--seconds") {
        config.seconds = std::stod(next());
        seconds_set = true;
      } else if (arg == "--events") {
        config.events = std::stoull(next());
        events_set = true;
      } else if (arg == "--threads") {
        config.threads.clear();
        std::string list = next();
        size_t pos = 0;
        while (pos <= list.size()) {
          size_t comma = list.find(',', pos);
          if (comma == std::string::npos) comma = list.size();
          int n = std::stoi(list.substr(pos, comma - pos));
          if (n < 1) throw std::invalid_argument("threads");
          config.threads.push_back(n);
          pos = comma + 1;
        }
      } else if (arg == "--dir") {
        config.parent = next();
      } else if (arg == "--quick") {
        config.quick = true;
      } else if (arg == "--merkle-only") {
        config.merkle_only = true;
      } else if (arg == "--tree-model") {
        config.tree_model = true;
      } else if (arg == "--sealing") {
        config.sealing = true;
      } else if (arg == "--help" || arg == "-h") {
        Usage(stdout);
        std::exit(0);
      } else {
        std::fprintf(stderr, "bench_eventstore: unknown argument %s\n", argv[i]);
        Usage(stderr);
        std::exit(2);
      }
    } catch (const std::logic_error&) {
      std::fprintf(stderr, "bench_eventstore: bad value for %s\n", arg.c_str());
      std::exit(2);
    }
  }
  if (config.quick) {
    if (!seconds_set) config.seconds = 0.5;
    if (!events_set) config.events = 50'000;
  }
  if (config.seconds <= 0 || config.events == 0 || config.threads.empty()) {
    Usage(stderr);
    std::exit(2);
  }
  if (config.parent.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    config.parent = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  }
  return config;
}

// A fresh directory, removed with everything in it when the object goes away.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& parent) {
    std::string tmpl = parent + "/okrd-bench-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      Fail("cannot create a directory under " + parent + ": " + std::strerror(errno));
    }
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  // A fresh, empty subdirectory path (the previous one of that name is removed).
  std::string Fresh(const std::string& name) const {
    std::string p = path_ + "/" + name;
    std::error_code ec;
    std::filesystem::remove_all(p, ec);
    return p;
  }
  void Remove(const std::string& p) const {
    std::error_code ec;
    std::filesystem::remove_all(p, ec);
  }

 private:
  std::string path_;
};

std::string FilesystemType(const std::string& path) {
  struct statfs st {};
  if (statfs(path.c_str(), &st) != 0) return "unknown";
  switch (static_cast<unsigned long>(st.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs";
    case 0x794C7630:
      return "overlayfs";
    case 0x2FC12FC1:
      return "zfs";
    case 0x6969:
      return "nfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(st.f_type));
      return buf;
    }
  }
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown";
}

// How much of the machine other processes used while we measured: on a
// shared machine the figures mean little when this is high.
class CpuMeter {
 public:
  CpuMeter() : start_(Sample()) {}
  // Fraction of all CPU time, busy in other processes, since construction.
  double OthersBusy() const {
    Point now = Sample();
    double total = now.total - start_.total;
    if (total <= 0) return NAN;
    double busy = (now.busy - start_.busy) - (now.self - start_.self);
    return std::clamp(busy / total, 0.0, 1.0);
  }
  // CPU seconds this process (every thread: callers, the store's writer,
  // RocksDB's flushes) used since construction.
  double SelfSeconds() const { return Sample().self - start_.self; }

 private:
  struct Point {
    double total = 0, busy = 0, self = 0;  // seconds of CPU
  };
  static Point Sample() {
    Point p;
    std::ifstream in("/proc/stat");
    std::string cpu;
    double v[8] = {};
    in >> cpu;
    for (double& x : v) in >> x;
    double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    for (double x : v) p.total += x / tick;
    p.busy = p.total - (v[3] + v[4]) / tick;  // minus idle and iowait
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    p.self = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
             static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    return p;
  }
  Point start_;
};

// ---------------------------------------------------------------------------
// The event: the same checkInRecorded draft as the tests' CheckInDraft
// (tests/test_support.cc), with fixed-width ids (key results "kr-0042",
// check-ins "ci07-0000001234") so every event has the same size.

// With a `subject`, the note is sealed under that subject's key (when the
// store has a key ring; SPEC §10), as okrd seals what a person writes.
okr::EventDraft CheckInDraft(std::string_view actor, std::string_view kr, std::string_view check_in,
                             double value, std::string_view subject = "") {
  okr::EventDraft draft(actor, kr);
  auto body = draft.event().initCheckInRecorded();
  body.setCheckIn(std::string(check_in));
  body.setValue(value);
  body.setHasConfidence(true);
  body.setConfidence(0.8);
  body.setStatus(okr::schema::CheckInStatus::ON_TRACK);
  draft.SetPersonal(okr::schema::PersonalField::NOTE, "weekly check-in", subject);
  body.setMeasuredAt(1782900000000000);
  return draft;
}

// The subjects whose keys seal the notes with --sealing: an organisation
// of 5,000 people, "p-0000" to "p-4999".
constexpr uint64_t kSubjects = 5000;
std::string SubjectId(uint64_t n) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "p-%04llu", static_cast<unsigned long long>(n % kSubjects));
  return buf;
}

std::string KrId(uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "kr-%04llu", static_cast<unsigned long long>(n % 10000));
  return buf;
}

std::string CheckInId(uint64_t thread, uint64_t n) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "ci%02llu-%010llu", static_cast<unsigned long long>(thread % 100),
                static_cast<unsigned long long>(n));
  return buf;
}

okr::AppendRequest OneEvent(okr::EventDraft draft) {
  okr::AppendRequest request;
  request.events.push_back(std::move(draft));
  return request;
}

// ---------------------------------------------------------------------------
// Results.

struct Row {
  std::string what;
  std::string threads;
  double rate = 0;     // events/s
  double ratio = NAN;  // to the raw figure named in `ratio_to`
  std::string ratio_to;
  double p50_ms = NAN, p99_ms = NAN;  // per call, when measured
  std::string target;                 // "", "met", "MISSED" with what
  std::string spread;                 // slowest .. fastest round
  double cpu_us = NAN;                // CPU of the whole process per event
};

std::vector<Row> g_rows;

std::string Rate(double r) {
  char buf[32];
  if (r >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f M", r / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", r);
  }
  return buf;
}

void PrintRow(const Row& r, FILE* out) {
  char ratio[32] = "", p50[32] = "", p99[32] = "", cpu[32] = "";
  if (!std::isnan(r.ratio)) std::snprintf(ratio, sizeof ratio, "%.2f", r.ratio);
  if (!std::isnan(r.cpu_us)) std::snprintf(cpu, sizeof cpu, "%.2f", r.cpu_us);
  if (!std::isnan(r.p50_ms)) std::snprintf(p50, sizeof p50, "%.2f", r.p50_ms);
  if (!std::isnan(r.p99_ms)) std::snprintf(p99, sizeof p99, "%.2f", r.p99_ms);
  std::fprintf(out, "| %-44s | %7s | %10s | %6s %-12s | %6s | %6s | %7s | %-19s | %s\n",
               r.what.c_str(), r.threads.c_str(), Rate(r.rate).c_str(), ratio, r.ratio_to.c_str(),
               p50, p99, cpu, r.spread.c_str(), r.target.c_str());
}

void PrintHeader(FILE* out) {
  std::fprintf(out, "| %-44s | %7s | %10s | %-19s | %6s | %6s | %7s | %-19s | %s\n", "measurement",
               "threads", "events/s", "ratio (to)", "p50 ms", "p99 ms", "CPU us",
               "rounds (min .. max)", "target");
}

void Add(Row row) {
  PrintRow(row, stderr);
  g_rows.push_back(std::move(row));
}

std::string Target(bool met, const std::string& what) {
  return (met ? "met (" : "MISSED (") + what + ")";
}

// ---------------------------------------------------------------------------
// Running N threads for a fixed time.

struct RunResult {
  uint64_t events = 0;
  double seconds = 0;
  std::vector<float> latencies_ms;  // per call
  std::vector<double> round_rates;  // events/s of each round
  double cpu_seconds = 0;           // of the whole process
  double rate() const { return static_cast<double>(events) / seconds; }
  double CpuUsPerEvent() const { return cpu_seconds * 1e6 / static_cast<double>(events); }
  void Merge(RunResult other) {
    events += other.events;
    seconds += other.seconds;
    cpu_seconds += other.cpu_seconds;
    latencies_ms.insert(latencies_ms.end(), other.latencies_ms.begin(), other.latencies_ms.end());
    round_rates.push_back(other.rate());
  }
  double Percentile(int p) {
    if (latencies_ms.empty()) return NAN;
    std::sort(latencies_ms.begin(), latencies_ms.end());
    return latencies_ms[std::min(latencies_ms.size() - 1, latencies_ms.size() * p / 100)];
  }
  std::string Spread() const {
    if (round_rates.size() < 2) return "";
    auto [lo, hi] = std::minmax_element(round_rates.begin(), round_rates.end());
    return Rate(*lo) + " .. " + Rate(*hi);
  }
};

// Calls op(thread) in a loop on `threads` threads for `seconds`; op returns
// the number of events it made durable.
RunResult RunFor(int threads, double seconds, const std::function<uint64_t(int)>& op) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false}, stop{false};
  std::mutex error_mu;
  std::string error;
  std::vector<uint64_t> counts(threads, 0);
  std::vector<std::vector<float>> latencies(threads);
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      latencies[t].reserve(1 << 14);
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      uint64_t n = 0;
      try {
        while (!stop.load(std::memory_order_relaxed)) {
          auto t0 = Clock::now();
          n += op(t);
          latencies[t].push_back(static_cast<float>(SecondsSince(t0) * 1e3));
        }
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (error.empty()) error = e.what();
        stop.store(true);
      }
      counts[t] = n;
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  auto start = Clock::now();
  const CpuMeter cpu;
  go.store(true);
  while (!stop.load() && SecondsSince(start) < seconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  stop.store(true);
  for (auto& w : workers) w.join();
  RunResult result;
  result.seconds = SecondsSince(start);
  result.cpu_seconds = cpu.SelfSeconds();
  if (!error.empty()) Fail(error);
  for (int t = 0; t < threads; ++t) {
    result.events += counts[t];
    result.latencies_ms.insert(result.latencies_ms.end(), latencies[t].begin(), latencies[t].end());
  }
  return result;
}

// Two workloads measured in alternating rounds of about half a second
// (A B, B A, A B, ...), so that both see the same machine: on a shared disk
// the cost of a sync changes by 10x from one second to the next.
std::pair<RunResult, RunResult> Alternate(int threads, double seconds,
                                          const std::function<uint64_t(int)>& a,
                                          const std::function<uint64_t(int)>& b) {
  int rounds = std::max(1, static_cast<int>(std::lround(seconds / 0.5)));
  double each = seconds / rounds;
  RunResult ra, rb;
  for (int r = 0; r < rounds; ++r) {
    if (r % 2 == 0) {
      ra.Merge(RunFor(threads, each, a));
      rb.Merge(RunFor(threads, each, b));
    } else {
      rb.Merge(RunFor(threads, each, b));
      ra.Merge(RunFor(threads, each, a));
    }
  }
  return {std::move(ra), std::move(rb)};
}

RunResult Rounds(int threads, double seconds, const std::function<uint64_t(int)>& op) {
  int rounds = std::max(1, static_cast<int>(std::lround(seconds / 0.5)));
  RunResult out;
  for (int r = 0; r < rounds; ++r) out.Merge(RunFor(threads, seconds / rounds, op));
  return out;
}

// ---------------------------------------------------------------------------
// Raw RocksDB, configured as the store configures it (default options).

class RawWriter {
 public:
  RawWriter(const std::string& path, std::string value, size_t per_batch)
      : path_(path), value_(std::move(value)), per_batch_(per_batch) {
    stats_ = rocksdb::CreateDBStatistics();
    rocksdb::Options options;
    options.create_if_missing = true;
    options.statistics = stats_;
    rocksdb::DB* db = nullptr;
    Check(rocksdb::DB::Open(options, path, &db), "open raw rocksdb");
    db_.reset(db);
    wo_.sync = true;
  }
  ~RawWriter() {
    db_->Close();
    db_.reset();
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }

  uint64_t Op(int) {
    if (per_batch_ == 1) {
      std::string key = okr::format::SeqKey(next_seq_.fetch_add(1));
      Check(db_->Put(wo_, key, value_), "raw put");
      return 1;
    }
    rocksdb::WriteBatch batch;
    uint64_t first = next_seq_.fetch_add(per_batch_);
    for (size_t i = 0; i < per_batch_; ++i) batch.Put(okr::format::SeqKey(first + i), value_);
    Check(db_->Write(wo_, &batch), "raw write");
    return per_batch_;
  }

  // Events written per WAL sync: the size of RocksDB's commit groups.
  double EventsPerSync() const {
    uint64_t syncs = stats_->getTickerCount(rocksdb::WAL_FILE_SYNCED);
    return syncs == 0 ? NAN : static_cast<double>(next_seq_.load() - 1) / syncs;
  }

 private:
  std::string path_;
  std::string value_;
  size_t per_batch_;
  std::shared_ptr<rocksdb::Statistics> stats_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions wo_;
  std::atomic<uint64_t> next_seq_{1};
};

// ---------------------------------------------------------------------------
// The store.

std::unique_ptr<okr::EventStore> OpenStore(const std::string& path, bool read_only = false,
                                           okr::KeyRing* ring = nullptr) {
  okr::OpenOptions options;
  options.read_only = read_only;
  options.create_if_missing = !read_only;
  options.key_ring = ring;
  auto store = okr::EventStore::Open(path, options);
  Check(store.status(), "open event store");
  return std::move(*store);
}

// One check-in appended and read back: the stored bytes the raw side writes.
std::string ProbeStoredEvent(const ScratchDir& scratch) {
  std::string path = scratch.Fresh("probe");
  std::string bytes;
  {
    auto store = OpenStore(path);
    auto r = store->Append(OneEvent(CheckInDraft("bench", KrId(0), CheckInId(0, 0), 42.5)));
    Check(r.status(), "probe append");
    auto read = store->Read(0, 1);
    Check(read.status(), "probe read");
    if (read->size() != 1) Fail("probe read found no event");
    bytes = (*read)[0].bytes;
  }
  scratch.Remove(path);
  return bytes;
}

// A key store beside `path` (path + ".keys") and its ring, holding the
// keys of every subject (made when their person units are, in okrd).
struct Keys {
  explicit Keys(const std::string& path) : path_(path + ".keys") {
    auto store = okr::KeyStore::Open(path_);
    Check(store.status(), "open key store");
    store_ = std::move(*store);
    auto ring = okr::KeyRing::Open(store_.get());
    Check(ring.status(), "open key ring");
    ring_ = std::move(*ring);
    std::vector<std::string> ids;
    for (uint64_t n = 0; n < kSubjects; ++n) ids.push_back(SubjectId(n));
    Check(ring_->Prepare(std::vector<std::string_view>(ids.begin(), ids.end())), "make keys");
  }
  ~Keys() {
    ring_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  okr::KeyRing* ring() { return ring_.get(); }

 private:
  std::string path_;
  std::unique_ptr<okr::KeyStore> store_;
  std::unique_ptr<okr::KeyRing> ring_;
};

// N threads, each appending check-ins to its own key result, one per
// append; with a key ring, each note sealed under a subject's key.
class StoreWriter {
 public:
  StoreWriter(const std::string& path, int threads, okr::KeyRing* ring = nullptr)
      : path_(path), sealed_(ring != nullptr) {
    store_ = OpenStore(path, false, ring);
    // Check-in ids new to the log: numbered from its head on.
    counters_.assign(static_cast<size_t>(threads), store_->head().seq);
    for (int t = 0; t < threads; ++t) krs_.push_back(KrId(t));
  }
  ~StoreWriter() {
    store_.reset();
    std::error_code ec;
    if (remove_) std::filesystem::remove_all(path_, ec);
  }
  void KeepLog() { remove_ = false; }

  uint64_t Op(int t) {
    const uint64_t n = counters_[t]++;
    auto draft = CheckInDraft("bench", krs_[t], CheckInId(t, n), 42.5,
                              sealed_ ? SubjectId(n * 64 + static_cast<uint64_t>(t)) : "");
    Check(store_->Append(OneEvent(std::move(draft))).status(), "append");
    return 1;
  }
  uint64_t head() const { return store_->head().seq; }

 private:
  std::string path_;
  bool sealed_;
  bool remove_ = true;
  std::unique_ptr<okr::EventStore> store_;
  std::vector<std::string> krs_;
  std::vector<uint64_t> counters_;
};

// Builds an `events`-event log with appends of kMaxEventsPerAppend events,
// spread over 1000 key results, from two threads.
struct BuildResult {
  double rate = 0;    // events/s
  double cpu_us = 0;  // of the whole process, per event
};
BuildResult BuildLog(const std::string& path, uint64_t events, okr::KeyRing* ring = nullptr) {
  auto store = OpenStore(path, false, ring);
  constexpr uint64_t kEntities = 1000;
  const uint64_t per_append = okr::kMaxEventsPerAppend;
  std::atomic<uint64_t> next{0};
  std::mutex error_mu;
  std::string error;
  auto start = Clock::now();
  const CpuMeter cpu;
  auto worker = [&](uint64_t t) {
    try {
      for (;;) {
        uint64_t first = next.fetch_add(per_append);
        if (first >= events) return;
        uint64_t n = std::min(per_append, events - first);
        okr::AppendRequest request;
        request.events.reserve(n);
        for (uint64_t i = first; i < first + n; ++i) {
          request.events.push_back(CheckInDraft("bench", KrId(i % kEntities), CheckInId(t, i),
                                                static_cast<double>(i % 100),
                                                ring != nullptr ? SubjectId(i) : ""));
        }
        Check(store->Append(std::move(request)).status(), "build append");
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (error.empty()) error = e.what();
    }
  };
  std::thread a(worker, 0), b(worker, 1);
  a.join();
  b.join();
  double secs = SecondsSince(start);
  if (!error.empty()) Fail(error);
  if (store->head().seq != events) Fail("built log has the wrong length");
  const double n = static_cast<double>(events);
  return {n / secs, cpu.SelfSeconds() * 1e6 / n};
}

// Proofs from the stored tree of the built log, as the proof routes ask
// for them: a random event's inclusion in the head's tree, and the head's
// consistency with a random earlier size. Figures are proofs per second.
void MeasureProofs(const okr::EventStore& store, double seconds) {
  const uint64_t head = store.head().seq;
  std::mt19937_64 random(42);
  auto pick = [&] { return std::uniform_int_distribution<uint64_t>(1, head)(random); };
  auto inclusion = Rounds(1, seconds, [&](int) -> uint64_t {
    Check(store.InclusionProof(pick(), head).status(), "inclusion proof");
    return 1;
  });
  Add({"EventStore::InclusionProof, random seq, head", "1", inclusion.rate(), NAN, "",
       inclusion.Percentile(50), inclusion.Percentile(99), "(proofs/s)", inclusion.Spread()});
  auto consistency = Rounds(1, seconds, [&](int) -> uint64_t {
    Check(store.ConsistencyProof(pick(), head).status(), "consistency proof");
    return 1;
  });
  Add({"EventStore::ConsistencyProof, random from, head", "1", consistency.rate(), NAN, "",
       consistency.Percentile(50), consistency.Percentile(99), "(proofs/s)", consistency.Spread()});
}

// The writer's batch as RocksDB alone sees it, without the store's own
// work (decisions, encoding): per event a Put to `events` (the stored
// value), `streams` and `ids`, its leaf hash, and the tree's nodes it
// completes from `lowest` up (none when lowest < 0); 32 events per batch,
// not synced, one thread. The figure is that thread's CPU per event: what
// storing the tree's levels costs the writer, with and without the
// memtable's insert hint for the append-ordered families.
double TreeModelCpuUs(const std::string& dir, const std::string& event, uint64_t events, int lowest,
                      bool hint) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  rocksdb::ColumnFamilyOptions ordered;
  if (hint) {
    ordered.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(1));
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {{rocksdb::kDefaultColumnFamilyName, {}},
                                                      {"events", ordered},
                                                      {"streams", {}},
                                                      {"ids", {}},
                                                      {"tree", ordered},
                                                      {"meta", {}}};
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  rocksdb::DB* raw = nullptr;
  Check(rocksdb::DB::Open(options, dir, cfs, &h, &raw), "open model");
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value = event;
  okr::merkle::Frontier frontier;
  std::vector<std::pair<okr::merkle::NodeId, okr::Hash>> completed;
  timespec t0{}, t1{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  for (uint64_t seq = 1; seq <= events;) {
    rocksdb::WriteBatch wb;
    for (int k = 0; k < 32 && seq <= events; ++k, ++seq) {
      const std::string key = okr::format::SeqKey(seq);
      std::memcpy(value.data() + value.size() - 8, key.data(), 8);  // distinct values
      wb.Put(h[1], key, value);
      wb.Put(h[2], okr::format::StreamKey(KrId(seq % 1000), seq / 1000 + 1), key);
      wb.Put(h[3], CheckInId(0, seq), key);
      completed.clear();
      frontier.Append(okr::merkle::LeafHash(value), &completed);
      for (const auto& [id, hash] : completed) {
        if (lowest < 0 || id.level < lowest) continue;
        wb.Put(h[4], okr::format::TreeKey(id.level, id.index),
               rocksdb::Slice(reinterpret_cast<const char*>(hash.data()), hash.size()));
      }
    }
    wb.Put(h[5], "head", okr::format::SeqKey(seq - 1));
    Check(db->Write(rocksdb::WriteOptions(), &wb), "model write");
  }
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
  for (auto* handle : h) db->DestroyColumnFamilyHandle(handle);
  const double cpu = static_cast<double>(t1.tv_sec - t0.tv_sec) +
                     static_cast<double>(t1.tv_nsec - t0.tv_nsec) / 1e9;
  return cpu * 1e6 / static_cast<double>(events);
}

void TreeModel(const ScratchDir& scratch, const std::string& event, uint64_t events) {
  std::printf(
      "bench_eventstore --tree-model: %u cores, %s; %llu events of %zu bytes, 32 per "
      "batch; writer thread CPU, us per event, best of 3\n\n",
      std::thread::hardware_concurrency(), CpuModel().c_str(),
      static_cast<unsigned long long>(events), event.size());
  std::printf("| tree nodes stored | no hint | with hint |\n|---|---:|---:|\n");
  for (int lowest : {-1, 0, 1, 2, 4}) {
    double best[2] = {INFINITY, INFINITY};
    for (int round = 0; round < 3; ++round) {
      for (int hint = 0; hint < 2; ++hint) {
        const std::string dir = scratch.Fresh("model");
        best[hint] = std::min(best[hint], TreeModelCpuUs(dir, event, events, lowest, hint == 1));
        scratch.Remove(dir);
      }
    }
    const std::string what = lowest < 0 ? "none" : "from level " + std::to_string(lowest);
    std::printf("| %s | %.2f | %.2f |\n", what.c_str(), best[0], best[1]);
  }
}

// ---------------------------------------------------------------------------
// Replay.

// What a minimal reader does: iterate the events column family, copy each
// value into an aligned buffer, read it with Cap'n Proto (framing and root
// pointer checked, fields lazily bounds-checked on access) and read a few
// fields.
struct RawReader {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* events = nullptr;

  explicit RawReader(const std::string& path) {
    rocksdb::Options options;
    std::vector<std::string> names;
    Check(rocksdb::DB::ListColumnFamilies(options, path, &names), "list column families");
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    rocksdb::DB* raw = nullptr;
    Check(rocksdb::DB::OpenForReadOnly(options, path, cfs, &handles, &raw), "open read-only");
    db.reset(raw);
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == okr::format::kEventsCf) events = handles[i];
    }
    if (events == nullptr) Fail("no events column family");
  }
  ~RawReader() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    db->Close();
  }

  // Returns the number of events read; *sink gets something from each.
  uint64_t Scan(uint64_t* sink) const {
    rocksdb::ReadOptions ro;
    ro.readahead_size = 2 << 20;  // as EventStore::Scan
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, events));
    std::vector<capnp::word> buf;
    uint64_t n = 0, acc = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      rocksdb::Slice v = it->value();
      buf.resize((v.size() + 7) / 8);
      std::memcpy(buf.data(), v.data(), v.size());
      capnp::FlatArrayMessageReader reader(kj::arrayPtr(buf.data(), buf.size()));
      auto ev = reader.getRoot<okr::schema::Event>();
      acc += ev.getSeq() + ev.getEntity().size() + static_cast<uint64_t>(ev.which());
      ++n;
    }
    Check(it->status(), "raw scan");
    *sink += acc;
    return n;
  }
};

uint64_t StoreScan(const okr::EventStore& store, uint64_t* sink) {
  uint64_t n = 0, acc = 0;
  Check(store.Scan(1, UINT64_MAX,
                   [&](uint64_t, std::string_view bytes) {
                     auto decoded = okr::DecodedEvent::Decode(bytes);
                     if (!decoded.ok()) Fail("decode: " + decoded.status().ToString());
                     auto ev = (*decoded)->event();
                     acc += ev.getSeq() + ev.getEntity().size() + static_cast<uint64_t>(ev.which());
                     ++n;
                     return true;
                   }),
        "store scan");
  *sink += acc;
  return n;
}

// ---------------------------------------------------------------------------
// Where decode time goes: the same bytes, in memory, decoded several ways.

// A copy of the dynamic-API walk of eventstore/event_codec.cc.
void WalkStruct(capnp::DynamicStruct::Reader s, int depth);

void WalkValue(capnp::DynamicValue::Reader v, int depth) {
  switch (v.getType()) {
    case capnp::DynamicValue::TEXT:
      v.as<capnp::Text>();
      break;
    case capnp::DynamicValue::DATA:
      v.as<capnp::Data>();
      break;
    case capnp::DynamicValue::LIST:
      for (auto item : v.as<capnp::DynamicList>()) WalkValue(item, depth + 1);
      break;
    case capnp::DynamicValue::STRUCT:
      WalkStruct(v.as<capnp::DynamicStruct>(), depth + 1);
      break;
    default:
      break;
  }
}

void WalkStruct(capnp::DynamicStruct::Reader s, int depth) {
  KJ_REQUIRE(depth < 16, "event nested too deeply");
  for (auto field : s.getSchema().getNonUnionFields()) {
    if (s.has(field)) WalkValue(s.get(field), depth);
  }
  KJ_IF_MAYBE (member, s.which()) {
    WalkValue(s.get(*member), depth);
  } else {
    KJ_REQUIRE(s.getSchema().getUnionFields().size() == 0, "unknown union member");
  }
}

// The schema plan is the store's own field check (okr::CheckEventFields);
// the rows named "plan" measure it on its own.

enum class Validation { kNone, kStructure, kDynamicWalk, kPlan, kPlanAndStructure };

// The steps of DecodedEvent::Decode (heap copy, reader, trailing-bytes
// check, shared ownership) with the validation step chosen by the caller.
struct Holder {
  kj::Array<capnp::word> words;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader;
  okr::schema::Event::Reader root;
};

std::shared_ptr<const Holder> DecodeLike(std::string_view bytes, Validation validation) {
  std::shared_ptr<Holder> h(new Holder());
  h->words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(h->words.begin(), bytes.data(), bytes.size());
  capnp::ReaderOptions options;
  options.traversalLimitInWords = h->words.size() * 2 + 64;
  options.nestingLimit = 16;
  try {
    h->reader = std::make_unique<capnp::FlatArrayMessageReader>(h->words.asPtr(), options);
    if (h->reader->getEnd() != h->words.end()) return nullptr;
    auto root = h->reader->getRoot<okr::schema::Event>();
    switch (validation) {
      case Validation::kNone:
        break;
      // Every pointer of the message followed and bounds-checked, no schema.
      case Validation::kStructure:
        root.totalSize();
        break;
      case Validation::kDynamicWalk:
        WalkStruct(capnp::DynamicStruct::Reader(root), 0);
        break;
      case Validation::kPlan:
        okr::CheckEventFields(root);
        break;
      case Validation::kPlanAndStructure:
        root.totalSize();
        okr::CheckEventFields(root);
        break;
    }
    h->root = root;
  } catch (const kj::Exception&) {
    return nullptr;
  }
  return h;
}

template <class Fn>
double NsPerEvent(const std::vector<std::string>& values, Fn fn, uint64_t* sink) {
  // Enough passes to run for about 0.2 s, best of five rounds: the best
  // round is the one least disturbed by other processes.
  double best = INFINITY;
  size_t passes = 1;
  for (int round = 0; round < 5; ++round) {
    auto start = Clock::now();
    uint64_t acc = 0;
    for (size_t p = 0; p < passes; ++p) {
      for (const auto& v : values) acc += fn(v);
    }
    double secs = SecondsSince(start);
    *sink += acc;
    best = std::min(best, secs * 1e9 / static_cast<double>(values.size() * passes));
    if (round == 0 && secs < 0.2) passes = std::max<size_t>(1, static_cast<size_t>(0.2 / secs));
  }
  return best;
}

struct DecodeCost {
  const char* what;
  double ns;
};

std::vector<DecodeCost> MeasureDecode(const std::vector<std::string>& values, uint64_t* sink) {
  std::vector<DecodeCost> out;
  auto fields = [](okr::schema::Event::Reader ev) -> uint64_t {
    return ev.getSeq() + ev.getEntity().size() + static_cast<uint64_t>(ev.which());
  };
  // Copies v into the reused, word-aligned buffer and hands its root to `use`.
  std::vector<capnp::word> buf;
  auto minimal = [&](auto use) {
    return NsPerEvent(
        values,
        [&buf, use](const std::string& v) -> uint64_t {
          buf.resize(v.size() / 8);
          std::memcpy(buf.data(), v.data(), v.size());
          capnp::FlatArrayMessageReader r(kj::arrayPtr(buf.data(), buf.size()));
          return use(r.getRoot<okr::schema::Event>());
        },
        sink);
  };
  out.push_back({"minimal reader (reused buffer, no validation)", minimal(fields)});
  out.push_back({"minimal reader + structure check (totalSize)",
                 minimal([&fields](okr::schema::Event::Reader ev) -> uint64_t {
                   return ev.totalSize().wordCount + fields(ev);
                 })});
  out.push_back({"minimal reader + schema plan (no allocation)",
                 minimal([&fields](okr::schema::Event::Reader ev) -> uint64_t {
                   okr::CheckEventFields(ev);
                   return fields(ev);
                 })});
  auto like = [&](Validation val) {
    return [&fields, val](const std::string& v) -> uint64_t {
      auto h = DecodeLike(v, val);
      if (!h) Fail("decode failed");
      return fields(h->root);
    };
  };
  out.push_back({"Decode's steps, no validation (allocations)",
                 NsPerEvent(values, like(Validation::kNone), sink)});
  out.push_back({"Decode's steps + structure check (totalSize)",
                 NsPerEvent(values, like(Validation::kStructure), sink)});
  out.push_back({"Decode's steps + dynamic walk (the old Decode)",
                 NsPerEvent(values, like(Validation::kDynamicWalk), sink)});
  out.push_back({"Decode's steps + schema plan (= Decode)",
                 NsPerEvent(values, like(Validation::kPlan), sink)});
  out.push_back({"Decode's steps + plan + structure check",
                 NsPerEvent(values, like(Validation::kPlanAndStructure), sink)});
  out.push_back({"DecodedEvent::Decode itself", NsPerEvent(
                                                    values,
                                                    [&](const std::string& v) -> uint64_t {
                                                      auto d = okr::DecodedEvent::Decode(v);
                                                      if (!d.ok()) Fail("decode failed");
                                                      return fields((*d)->event());
                                                    },
                                                    sink)});
  out.push_back(
      {"okr::Sha256 (OpenSSL SHA256(), as Verify does)",
       NsPerEvent(
           values, [&](const std::string& v) -> uint64_t { return okr::Sha256(v)[0]; }, sink)});
  // OpenSSL 3's one-shot SHA256() looks the algorithm up on every call; a
  // digest fetched once and a reused context skip that.
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  out.push_back({"SHA-256, fetched EVP_MD + reused EVP_MD_CTX",
                 NsPerEvent(
                     values,
                     [&](const std::string& v) -> uint64_t {
                       unsigned char digest[EVP_MAX_MD_SIZE];
                       unsigned int len = 0;
                       if (EVP_DigestInit_ex2(ctx, md, nullptr) != 1 ||
                           EVP_DigestUpdate(ctx, v.data(), v.size()) != 1 ||
                           EVP_DigestFinal_ex(ctx, digest, &len) != 1) {
                         Fail("sha256 failed");
                       }
                       return digest[0];
                     },
                     sink)});
  EVP_MD_CTX_free(ctx);
  EVP_MD_free(md);
  return out;
}

// Does the plan reject exactly what Decode rejects? Damaged copies of real
// events, a few random bytes each, go through both.
struct CrossCheckResult {
  uint64_t tried = 0, decode_rejects = 0, plan_rejects = 0, disagreements = 0;
};

CrossCheckResult CrossCheck(const std::vector<std::string>& values, uint64_t count) {
  CrossCheckResult r;
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto rnd = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (uint64_t i = 0; i < count && !values.empty(); ++i) {
    std::string v = values[i % values.size()];
    int flips = 1 + static_cast<int>(rnd() % 3);
    for (int k = 0; k < flips; ++k) v[rnd() % v.size()] = static_cast<char>(rnd());
    bool decode_ok = okr::DecodedEvent::Decode(v).ok();
    bool plan_ok = DecodeLike(v, Validation::kPlan) != nullptr;
    ++r.tried;
    r.decode_rejects += !decode_ok;
    r.plan_rejects += !plan_ok;
    r.disagreements += decode_ok != plan_ok;
  }
  return r;
}

// What Verify would cost with the plan instead of the dynamic walk and a
// reused SHA-256 context: the same checks as EventStore::Verify, in order.
uint64_t WhatIfVerify(const RawReader& raw) {
  const rocksdb::Snapshot* snapshot = raw.db->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  ro.fill_cache = false;
  ro.readahead_size = 4 << 20;
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  okr::Hash prev{};
  int64_t last_time = INT64_MIN;
  std::unordered_map<std::string, uint64_t> versions;
  uint64_t expected = 1;
  std::unique_ptr<rocksdb::Iterator> it(raw.db->NewIterator(ro, raw.events));
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++expected) {
    uint64_t seq = 0;
    if (!okr::format::ParseSeqKey({it->key().data(), it->key().size()}, &seq) || seq != expected) {
      Fail("what-if verify: bad key");
    }
    std::string_view bytes(it->value().data(), it->value().size());
    if (bytes.empty() || bytes.size() % 8 != 0 || bytes.size() > okr::format::kMaxEventBytes) {
      Fail("what-if verify: bad size");
    }
    auto h = DecodeLike(bytes, Validation::kPlan);
    if (!h) Fail("what-if verify: undecodable");
    auto ev = h->root;
    if (ev.getSeq() != seq || !okr::NamesAsPrev(ev, prev) || ev.getRecordedAt() < last_time) {
      Fail("what-if verify: broken chain");
    }
    auto entity = ev.getEntity();
    uint64_t& version = versions[std::string(entity.begin(), entity.size())];
    if (ev.getVersion() != version + 1) Fail("what-if verify: bad version");
    version = ev.getVersion();
    last_time = ev.getRecordedAt();
    unsigned int len = 0;
    if (EVP_DigestInit_ex2(ctx, md, nullptr) != 1 ||
        EVP_DigestUpdate(ctx, bytes.data(), bytes.size()) != 1 ||
        EVP_DigestFinal_ex(ctx, prev.data(), &len) != 1) {
      Fail("sha256 failed");
    }
  }
  Check(it->status(), "what-if verify");
  it.reset();
  EVP_MD_CTX_free(ctx);
  EVP_MD_free(md);
  raw.db->ReleaseSnapshot(snapshot);
  return expected - 1;
}

// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// The Merkle tree, in memory: what a writer adds per event, and what a proof
// costs to make (from a vector of nodes per level, as the tree column family
// keys them) and to check.

struct MerkleCost {
  std::string what;
  double per_second;
};

// Calls op() (one unit of work, returning something to keep) for about
// 0.5 s; the rate per second.
double PerSecond(const std::function<uint64_t()>& op, uint64_t* sink) {
  auto start = Clock::now();
  uint64_t n = 0;
  double secs = 0;
  do {
    for (int i = 0; i < 64; ++i, ++n) *sink += op();
    secs = SecondsSince(start);
  } while (secs < 0.5);
  return static_cast<double>(n) / secs;
}

std::vector<MerkleCost> MeasureMerkle(const std::string& event, uint64_t leaves, uint64_t* sink) {
  namespace merkle = okr::merkle;
  std::vector<MerkleCost> out;
  std::vector<std::vector<merkle::Hash>> levels(64);
  std::vector<std::pair<merkle::NodeId, merkle::Hash>> completed;
  double best = 0;
  for (int round = 0; round < 3; ++round) {
    merkle::Frontier frontier;
    auto start = Clock::now();
    for (uint64_t i = 0; i < leaves; ++i) {
      completed.clear();
      frontier.Append(merkle::LeafHash(event), &completed);
      if (round > 0) continue;
      for (const auto& [id, hash] : completed) levels[id.level].push_back(hash);
    }
    best = std::max(best, static_cast<double>(leaves) / SecondsSince(start));
    *sink += frontier.Root()[0];
  }
  out.push_back({"LeafHash of a stored event + Frontier::Append", best});

  merkle::NodeReader read =
      [&levels](const std::vector<merkle::NodeId>& ids) -> okr::Result<std::vector<merkle::Hash>> {
    std::vector<merkle::Hash> hashes;
    hashes.reserve(ids.size());
    for (const auto& id : ids) {
      if (id.index >= levels[id.level].size()) return okr::Status::NotFound("no node");
      hashes.push_back(levels[id.level][id.index]);
    }
    return hashes;
  };
  auto value = [](auto result) {
    if (!result.ok()) Fail("merkle: " + result.status().ToString());
    return std::move(result).value();
  };
  std::mt19937_64 rng(13);
  merkle::Hash root = value(merkle::RootAt(leaves, read));
  merkle::Hash leaf = merkle::LeafHash(event);
  auto below = [&rng](uint64_t n) { return rng() % n; };
  std::string at = " (" + std::to_string(leaves) + " leaves)";
  out.push_back(
      {"RootAt" + at, PerSecond([&] { return value(merkle::RootAt(leaves, read))[0]; }, sink)});
  out.push_back(
      {"InclusionProof, random leaf" + at,
       PerSecond([&] { return value(merkle::InclusionProof(below(leaves), leaves, read)).size(); },
                 sink)});
  std::vector<merkle::Hash> path = value(merkle::InclusionProof(leaves / 3, leaves, read));
  if (!merkle::VerifyInclusion(leaves / 3, leaves, leaf, path, root)) Fail("inclusion rejected");
  out.push_back(
      {"VerifyInclusion" + at,
       PerSecond([&] { return merkle::VerifyInclusion(leaves / 3, leaves, leaf, path, root); },
                 sink)});
  out.push_back(
      {"ConsistencyProof, random from, to = all" + at,
       PerSecond(
           [&] { return value(merkle::ConsistencyProof(1 + below(leaves), leaves, read)).size(); },
           sink)});
  uint64_t from = leaves / 3 + 1;
  merkle::Hash from_root = value(merkle::RootAt(from, read));
  std::vector<merkle::Hash> proof = value(merkle::ConsistencyProof(from, leaves, read));
  if (!merkle::VerifyConsistency(from, leaves, from_root, root, proof))
    Fail("consistency rejected");
  out.push_back(
      {"VerifyConsistency" + at,
       PerSecond([&] { return merkle::VerifyConsistency(from, leaves, from_root, root, proof); },
                 sink)});
  return out;
}

void PrintMerkle(const std::vector<MerkleCost>& costs, FILE* out) {
  std::fprintf(out, "\nMerkle tree (in memory; Append: best of 3 passes, the rest: 0.5 s each):\n");
  for (const auto& c : costs) {
    std::fprintf(out, "  %-58s %10s /s\n", c.what.c_str(), Rate(c.per_second).c_str());
  }
}

// --sealing: the append of sealed check-ins beside plain ones, on two logs
// of `config.events` events, built first (that build's rate: the bulk
// append, 1,000 events per append), then extended by 1-event appends at
// each concurrency, the two alternating round by round.
void SealingSection(const ScratchDir& scratch, const Config& config) {
  const std::string plain_log = scratch.Fresh("plain"), sealed_log = scratch.Fresh("sealed");
  Keys keys(sealed_log);
  const BuildResult plain_build = BuildLog(plain_log, config.events);
  const BuildResult sealed_build = BuildLog(sealed_log, config.events, keys.ring());
  Add({"bulk append, 1000 events, plain", "2", plain_build.rate, NAN, "", NAN, NAN, "", "",
       plain_build.cpu_us});
  const double bulk = sealed_build.rate / plain_build.rate;
  Add({"bulk append, 1000 events, sealed", "2", sealed_build.rate, bulk, "plain", NAN, NAN,
       Target(bulk >= 0.85, "cost <= 15 %"), "", sealed_build.cpu_us});
  for (int n : config.threads) {
    StoreWriter plain(plain_log, n), sealed(sealed_log, n, keys.ring());
    plain.KeepLog();
    sealed.KeepLog();
    auto [p, s] = Alternate(
        n, config.seconds, [&](int t) { return plain.Op(t); }, [&](int t) { return sealed.Op(t); });
    Add({"EventStore::Append, 1 event, plain", std::to_string(n), p.rate(), NAN, "",
         p.Percentile(50), p.Percentile(99), "", p.Spread(), p.CpuUsPerEvent()});
    const double ratio = s.rate() / p.rate();
    Add({"EventStore::Append, 1 event, sealed", std::to_string(n), s.rate(), ratio, "plain",
         s.Percentile(50), s.Percentile(99), Target(ratio >= 0.85, "cost <= 15 %"), s.Spread(),
         s.CpuUsPerEvent()});
  }
}

int Run(const Config& config) {
  ScratchDir scratch(config.parent);
  std::string fs = FilesystemType(scratch.path());
  std::fprintf(
      stderr, "bench_eventstore: %u cores (%s), %s filesystem%s\n",
      std::thread::hardware_concurrency(), CpuModel().c_str(), fs.c_str(),
      fs == "tmpfs" ? " -- WARNING: sync is free on tmpfs, write figures mean little" : "");

  std::string event = ProbeStoredEvent(scratch);
  if (config.sealing) {
    std::fprintf(stderr, "sealing: logs of %llu events first; %.1f s per write measurement\n\n",
                 static_cast<unsigned long long>(config.events), config.seconds);
    PrintHeader(stderr);
    SealingSection(scratch, config);
    return 0;
  }
  if (config.tree_model) {
    TreeModel(scratch, event, config.events);
    return 0;
  }
  if (config.merkle_only) {
    uint64_t sink = 0;
    std::printf("bench_eventstore: %u cores, %s; event %zu bytes stored\n",
                std::thread::hardware_concurrency(), CpuModel().c_str(), event.size());
    PrintMerkle(MeasureMerkle(event, config.events, &sink), stdout);
    std::printf("(checksum %llu)\n", static_cast<unsigned long long>(sink & 0xff));
    return 0;
  }
  std::fprintf(stderr,
               "event: checkInRecorded, %zu bytes stored (measured); %.1f s per write "
               "measurement; replay log of %llu events\n\n",
               event.size(), config.seconds, static_cast<unsigned long long>(config.events));
  PrintHeader(stderr);

  // a) + b): raw puts and store appends, concurrency by concurrency, in
  // alternating rounds.
  CpuMeter write_cpu;
  double raw_t1 = NAN;
  int raw_t1_threads = 0;
  for (int n : config.threads) {
    RawWriter raw(scratch.Fresh("raw"), event, 1);
    StoreWriter store(scratch.Fresh("store"), n);
    auto [r, a] = Alternate(
        n, config.seconds, [&](int t) { return raw.Op(t); }, [&](int t) { return store.Op(t); });
    if (store.head() != a.events) Fail("head does not match the appends counted");
    if (std::isnan(raw_t1)) {
      raw_t1 = r.rate();
      raw_t1_threads = n;
    }
    char what[80];
    std::snprintf(what, sizeof what, "raw RocksDB Put, sync (%.1f events/sync)",
                  raw.EventsPerSync());
    Add({what, std::to_string(n), r.rate(), NAN, "", r.Percentile(50), r.Percentile(99), "",
         r.Spread(), r.CpuUsPerEvent()});
    double ratio = a.rate() / r.rate();
    std::string target = n == 64
                             ? Target(ratio >= 0.5 && a.rate() >= 30000, ">= 0.5x raw, >= 30000/s")
                             : Target(ratio >= 0.5, ">= 0.5x raw");
    Add({"EventStore::Append, 1 event per append", std::to_string(n), a.rate(), ratio, "raw Put",
         a.Percentile(50), a.Percentile(99), target, a.Spread(), a.CpuUsPerEvent()});
  }

  // c) raw synced batches of 128, one thread.
  {
    RawWriter raw(scratch.Fresh("batch"), event, 128);
    auto r = Rounds(1, config.seconds, [&](int t) { return raw.Op(t); });
    Add({"raw RocksDB WriteBatch of 128, sync", "1", r.rate(), r.rate() / raw_t1,
         "raw Put t=" + std::to_string(raw_t1_threads), r.Percentile(50), r.Percentile(99), "",
         r.Spread()});
  }
  double write_others = write_cpu.OthersBusy();

  // d) replay.
  std::string log = scratch.Fresh("log");
  const BuildResult build = BuildLog(log, config.events);
  Add({"EventStore::Append, 1000 events per append", "2", build.rate, NAN, "", NAN, NAN,
       "(builds the log)", "", build.cpu_us});

  uint64_t sink = 0;
  double raw_scan = 0, store_scan = 0;
  CpuMeter read_cpu;
  std::vector<std::string> sample;
  {
    RawReader raw(log);
    raw.Scan(&sink);  // warm-up: page cache
    // Keep 50k values in memory for the decode breakdown.
    {
      std::unique_ptr<rocksdb::Iterator> it(
          raw.db->NewIterator(rocksdb::ReadOptions(), raw.events));
      for (it->SeekToFirst(); it->Valid() && sample.size() < 50'000; it->Next()) {
        sample.emplace_back(it->value().data(), it->value().size());
      }
    }
    auto store = OpenStore(log, /*read_only=*/true);

    // Each reader counts the events it saw. Three rounds, each running every
    // reader once (order rotating); a reader's figure is its best round.
    struct Reader {
      std::string what;
      std::function<uint64_t()> run;
      RunResult result;
      double best = 0;
    };
    auto scan_with = [&](Validation validation) {
      return [&, validation]() -> uint64_t {
        uint64_t n = 0, acc = 0;
        Check(store->Scan(1, UINT64_MAX,
                          [&](uint64_t, std::string_view bytes) {
                            auto h = DecodeLike(bytes, validation);
                            if (!h) Fail("decode failed");
                            acc += h->root.getSeq() + h->root.getEntity().size();
                            ++n;
                            return true;
                          }),
              "scan");
        sink += acc;
        return n;
      };
    };
    std::vector<Reader> readers;
    auto reader = [&](std::string what, std::function<uint64_t()> run) {
      Reader r;
      r.what = std::move(what);
      r.run = std::move(run);
      readers.push_back(std::move(r));
    };
    reader("replay: raw iterator + capnp reader", [&] { return raw.Scan(&sink); });
    reader("replay: EventStore::Scan + Decode", [&] { return StoreScan(*store, &sink); });
    reader("EventStore::Verify", [&]() -> uint64_t {
      okr::VerifyReport report = store->Verify();
      if (!report.ok) {
        Fail("verify failed at seq " + std::to_string(report.first_bad_seq) + ": " +
             report.problem);
      }
      return report.events;
    });
    // What-if readers: the suggested decode in the store's own Scan, the same
    // into one reused aligned buffer, and Verify's loop with it plus a
    // reused SHA-256 context.
    reader("what-if: Scan + Decode with schema plan", scan_with(Validation::kPlan));
    reader("what-if: Scan + plan, reused buffer", [&]() -> uint64_t {
      uint64_t n = 0, acc = 0;
      std::vector<capnp::word> buf;
      Check(store->Scan(1, UINT64_MAX,
                        [&](uint64_t, std::string_view bytes) {
                          if (bytes.empty() || bytes.size() % 8 != 0) {
                            Fail("bad size");
                          }
                          buf.resize(bytes.size() / 8);
                          std::memcpy(buf.data(), bytes.data(), bytes.size());
                          capnp::ReaderOptions options;
                          options.traversalLimitInWords = buf.size() * 2 + 64;
                          options.nestingLimit = 16;
                          capnp::FlatArrayMessageReader r(kj::arrayPtr(buf.data(), buf.size()),
                                                          options);
                          if (r.getEnd() != buf.data() + buf.size()) {
                            Fail("trailing bytes");
                          }
                          auto ev = r.getRoot<okr::schema::Event>();
                          okr::CheckEventFields(ev);
                          acc += ev.getSeq() + ev.getEntity().size();
                          ++n;
                          return true;
                        }),
            "reuse scan");
      sink += acc;
      return n;
    });
    reader("what-if: Verify with plan + reused SHA ctx", [&] { return WhatIfVerify(raw); });
    for (int round = 0; round < 3; ++round) {
      for (size_t k = 0; k < readers.size(); ++k) {
        Reader& r = readers[(k + round) % readers.size()];
        auto t0 = Clock::now();
        uint64_t n = r.run();
        RunResult one;
        one.seconds = SecondsSince(t0);
        one.events = n;
        if (n != config.events) {
          Fail(r.what + " saw " + std::to_string(n) + " events, not " +
               std::to_string(config.events));
        }
        r.best = std::max(r.best, one.rate());
        r.result.Merge(std::move(one));
      }
    }
    raw_scan = readers[0].best;
    store_scan = readers[1].best;
    double verify = readers[2].best;
    auto add = [&](const Reader& r, double ratio, const char* to, std::string target) {
      Add({r.what, "1", r.best, ratio, to, NAN, NAN, std::move(target), r.result.Spread()});
    };
    add(readers[0], NAN, "", "");
    double ratio = store_scan / raw_scan;
    add(readers[1], ratio, "raw replay",
        Target(store_scan >= 1e6 && ratio >= 0.5, ">= 1M/s, >= 0.5x raw"));
    add(readers[2], verify / raw_scan, "raw replay", Target(verify >= 1e6, ">= 1M/s"));
    for (size_t k = 3; k < readers.size(); ++k) {
      add(readers[k], readers[k].best / raw_scan, "raw replay", "(suggestion)");
    }
    MeasureProofs(*store, config.seconds);
  }
  scratch.Remove(log);

  auto costs = MeasureDecode(sample, &sink);
  double read_others = read_cpu.OthersBusy();
  auto cross = CrossCheck(sample, 200'000);

  // The table, on stdout.
  std::printf(
      "bench_eventstore: %u cores, %s, %s; event %zu bytes stored; %.1f s per write "
      "measurement; %llu-event log\n\n",
      std::thread::hardware_concurrency(), CpuModel().c_str(), fs.c_str(), event.size(),
      config.seconds, static_cast<unsigned long long>(config.events));
  std::printf(
      "other processes used %.0f%% of the machine's CPU during the write "
      "measurements, %.0f%% during the reads (figures from a busy machine are noisy)\n\n",
      write_others * 100, read_others * 100);
  PrintHeader(stdout);
  for (const auto& r : g_rows) PrintRow(r, stdout);
  std::printf("\ndecode cost per event (in memory, %zu stored events, best of 5):\n",
              sample.size());
  double dynamic_ns = NAN, structure_ns = NAN;
  for (const auto& c : costs) {
    std::printf("  %-48s %8.0f ns  (%s events/s)\n", c.what, c.ns, Rate(1e9 / c.ns).c_str());
    if (std::string_view(c.what).find("dynamic walk") != std::string_view::npos) dynamic_ns = c.ns;
    if (std::string_view(c.what).find("Decode's steps + structure") != std::string_view::npos) {
      structure_ns = c.ns;
    }
  }
  std::printf("  dynamic walk instead of structure check: +%.0f ns per event (%.1fx)\n",
              dynamic_ns - structure_ns, dynamic_ns / structure_ns);
  std::printf(
      "damaged events (1-3 random bytes each): %llu tried, Decode rejects %llu, "
      "plan rejects %llu, disagreements %llu\n",
      static_cast<unsigned long long>(cross.tried),
      static_cast<unsigned long long>(cross.decode_rejects),
      static_cast<unsigned long long>(cross.plan_rejects),
      static_cast<unsigned long long>(cross.disagreements));
  PrintMerkle(MeasureMerkle(event, config.events, &sink), stdout);
  std::printf("(checksum %llu)\n", static_cast<unsigned long long>(sink & 0xff));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config config = ParseArgs(argc, argv);
  try {
    return Run(config);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_eventstore: %s\n", e.what());
    return 1;
  }
}
