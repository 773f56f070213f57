// Storage faults under the real okrd: tests/faults/fault_shim.c, preloaded
// into okrd, makes writes and syncs of files in its data directory fail
// with ENOSPC (a full disk) or EIO (a failing one) while a control file
// exists. For each fault okrd must
//   - answer 503 to every write while the fault lasts, and acknowledge
//     nothing it did not persist;
//   - keep answering reads, exactly as before, the audit check included;
//   - log the cause once, not once per refused request;
//   - accept writes again once the fault clears: by itself after a full
//     disk; after a restart when the disk returned EIO (RocksDB treats a
//     failed WAL write or sync with EIO as fatal and refuses to resume);
//   - and leave a log that verifies, after a SIGKILL and a restart too,
//     with every acknowledged write in it and every refused one applied
//     at most once when retried with its Idempotency-Key.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "tests/okrd_harness.h"

#ifndef FAULT_SHIM_PATH
#error "FAULT_SHIM_PATH must name the fault-injection library"
#endif

namespace okr::testing {
namespace {

const Token kAdmin{"tok-fault-admin-41c8e2", "root", "admin", {}};
const Token kAuditor{"tok-fault-auditor-9a03b7", "audrey", "auditor", {}};

// How long okrd may take to accept writes again after a full disk clears
// (RocksDB retries its recovery every 5 s).
constexpr auto kRecoveryBound = std::chrono::seconds(30);

struct Mode {
  const char* name;     // what the control file says
  bool recovers_alone;  // writes come back without a restart
};

void PrintTo(const Mode& mode, std::ostream* os) { *os << '"' << mode.name << '"'; }

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class StorageFault : public ::testing::TestWithParam<Mode> {
 protected:
  StorageFault() : okrd_(Options()) { okrd_.AddEnv("OKR_FAULT_DIR", okrd_.data_dir()); }

  OkrdOptions Options() {
    control_ = dir_.Sub("fault");
    OkrdOptions o{std::vector<Token>{kAdmin, kAuditor}, {"--dashboard", ""}, {}};
    std::string asan = std::getenv("ASAN_OPTIONS") ? std::getenv("ASAN_OPTIONS") : "";
    o.env = {{"LD_PRELOAD", BuildFile(FAULT_SHIM_PATH)},
             {"OKR_FAULT_FILE", control_},
             // A sanitized okrd: the shim is loaded before the ASan runtime.
             {"ASAN_OPTIONS", asan + (asan.empty() ? "" : ":") + "verify_asan_link_order=0"}};
    return o;
  }
  void FaultOn(const std::string& mode) { std::ofstream(control_) << mode << "\n"; }
  void FaultOff() { std::remove(control_.c_str()); }
  std::string Hits() { return ReadFile(control_ + ".hits"); }

  Reply Write(const std::string& key, int value) {
    return okrd_.Request("POST", "/v1/key-results/kr/check-ins", json{{"value", value}}.dump(),
                         kAdmin.token, {{"Idempotency-Key", key}});
  }

  TempDir dir_;
  std::string control_;
  Okrd okrd_;
};

TEST_P(StorageFault, WritesRefusedReadsServedCauseLoggedOnceNothingLost) {
  const Mode mode = GetParam();
  Okrd& s = okrd_;
  ASSERT_TRUE(s.Start());
  auto ok = [](const Reply& r) { return r.status == 200 || r.status == 201; };
  ASSERT_TRUE(ok(
      s.Post("/v1/units", {{"id", "acme"}, {"kind", "company"}, {"name", "Acme"}}, kAdmin.token)));
  ASSERT_TRUE(
      ok(s.Post("/v1/cycles",
                {{"id", "y"}, {"name", "Year"}, {"starts", "2020-01-01"}, {"ends", "2099-12-31"}},
                kAdmin.token)));
  ASSERT_TRUE(
      ok(s.Post("/v1/objectives", {{"id", "o"}, {"cycle", "y"}, {"owner", "acme"}, {"title", "O"}},
                kAdmin.token)));
  ASSERT_TRUE(ok(s.Post("/v1/key-results",
                        {{"id", "kr"}, {"objective", "o"}, {"title", "K"}, {"target", 100}},
                        kAdmin.token)));
  std::map<std::string, uint64_t> acked;  // key → seq of every acknowledged write
  for (int i = 0; i < 5; ++i) {
    Reply r = Write("before-" + std::to_string(i), i);
    ASSERT_EQ(r.status, 201) << r;
    acked["before-" + std::to_string(i)] = r.u("seq");
  }
  const uint64_t head = s.HeadSeq();
  const std::vector<std::string> reads = {"/v1/units",           "/v1/objectives/o",
                                          "/v1/key-results/kr",  "/v1/key-results/kr/check-ins",
                                          "/v1/cascade?cycle=y", "/v1/events?limit=1000"};
  std::map<std::string, std::string> before;
  for (const auto& path : reads) before[path] = s.Get(path, kAuditor.token).body;

  // --- the fault: every write refused, in parallel too ---
  FaultOn(mode.name);
  constexpr int kRefused = 24;
  std::vector<Reply> refused(kRefused);
  {
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        for (int i = t; i < kRefused; i += 4)
          refused[i] = Write("during-" + std::to_string(i), 100 + i);
      });
    }
    for (auto& w : writers) w.join();
  }
  for (int i = 0; i < kRefused; ++i) {
    EXPECT_EQ(refused[i].status, 503) << refused[i];
    EXPECT_EQ(refused[i].code(), "unavailable") << refused[i];
  }
  EXPECT_NE(Hits().find(".log"), std::string::npos) << "the fault never hit the WAL: " << Hits();

  // Reads go on, unchanged, the chain check included.
  EXPECT_EQ(s.HeadSeq(), head);
  for (const auto& path : reads) {
    Reply r = s.Get(path, kAuditor.token);
    EXPECT_EQ(r.status, 200) << path << " " << r;
    EXPECT_EQ(r.body, before[path]) << path;
  }
  Reply verify = s.Get("/v1/audit/verify", kAuditor.token);
  EXPECT_EQ(verify.status, 200) << verify;
  EXPECT_EQ(verify.json["ok"], true) << verify;
  EXPECT_EQ(verify.json["events"], head) << verify;

  // The cause, once.
  std::string log = s.LogTail(SIZE_MAX);
  EXPECT_EQ(Count(log, "append_failed"), 1u)
      << log.substr(log.size() > 4000 ? log.size() - 4000 : 0);
  const char* cause = std::string(mode.name).rfind("eio", 0) == 0 ? "Input/output error"
                                                                  : "No space left on device";
  size_t line = log.find("append_failed");
  ASSERT_NE(line, std::string::npos);
  EXPECT_NE(log.substr(line, log.find('\n', line) - line).find(cause), std::string::npos)
      << log.substr(line, 400);

  // --- the fault clears ---
  FaultOff();
  Clock::time_point cleared = Clock::now();
  if (mode.recovers_alone) {
    Reply r;
    while (Clock::now() - cleared < kRecoveryBound) {
      r = Write("during-0", 100);
      if (r.status != 503) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(r.status, 201) << "writes still refused " << kRecoveryBound.count()
                             << " s after the fault cleared: " << r;
    std::printf(
        "storage_fault %s: writes accepted again %lld ms after the fault cleared\n", mode.name,
        static_cast<long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - cleared).count()));
  } else {
    std::this_thread::sleep_for(
        std::chrono::seconds(6));  // longer than RocksDB's own recovery interval
    Reply r = Write("during-0", 100);
    std::printf("storage_fault %s: without a restart a write answers %d\n", mode.name, r.status);
    EXPECT_TRUE(r.status == 503 || r.status == 201) << r;
    ASSERT_TRUE(s.Kill());
    ASSERT_TRUE(s.Start()) << "okrd does not start again after the fault";
  }
  // Retries settle every refused write exactly once.
  uint64_t head_before_retries = s.HeadSeq();
  uint64_t applied_now = 0;
  for (int i = 0; i < kRefused; ++i) {
    std::string key = "during-" + std::to_string(i);
    Reply r = Write(key, 100 + i);
    ASSERT_EQ(r.status, 201) << r;
    if (r.header("Idempotent-Replayed") != "true") ++applied_now;
    acked[key] = r.u("seq");
  }
  uint64_t head_after = s.HeadSeq();
  std::printf(
      "storage_fault %s: of %d refused writes, %llu were stored anyway (their retry answered as a "
      "replay)\n",
      mode.name, kRefused, static_cast<unsigned long long>(kRefused - applied_now));
  EXPECT_EQ(head_after, head_before_retries + applied_now) << "a retry applied a write twice";
  EXPECT_LE(head_after, head + kRefused);
  EXPECT_EQ(Count(s.LogTail(SIZE_MAX), "append_failed"), 1u);

  // --- SIGKILL and restart: everything acknowledged is there, the chain verifies ---
  ASSERT_TRUE(s.Kill());
  ASSERT_TRUE(s.Start());
  EXPECT_EQ(s.HeadSeq(), head_after);
  Reply events = s.Get("/v1/events?limit=1000", kAuditor.token);
  ASSERT_EQ(events.status, 200) << events;
  std::map<std::string, std::vector<uint64_t>> seqs;
  for (const json& ev : events.json["items"]) {
    seqs[ev["idempotency_key"].get<std::string>()].push_back(ev["seq"].get<uint64_t>());
  }
  for (const auto& [key, seq] : acked) {
    ASSERT_EQ(seqs[key].size(), 1u) << key;
    EXPECT_EQ(seqs[key][0], seq) << key;
  }
  verify = s.Get("/v1/audit/verify", kAuditor.token);
  EXPECT_EQ(verify.json["ok"], true) << verify;
  EXPECT_EQ(verify.json["events"], head_after) << verify;
  EXPECT_TRUE(s.Stop());
}

INSTANTIATE_TEST_SUITE_P(Faults, StorageFault,
                         ::testing::Values(Mode{"enospc", true}, Mode{"enospc sync", true},
                                           Mode{"eio", false}, Mode{"eio sync", false}),
                         [](const ::testing::TestParamInfo<Mode>& info) {
                           std::string name = info.param.name;
                           for (char& c : name) {
                             if (c == ' ') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace okr::testing
