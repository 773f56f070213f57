// Runs the real okrd binary on a free loopback port and speaks HTTP to it.
//
// Each Okrd owns a temporary directory holding the data directory, the
// tokens file (mode 0600, only token hashes) and okrd's log (stderr).
// Start() forks and execs okrd with --data DIR --listen 127.0.0.1:0 and
// learns the port from the "okrd listening on http://HOST:PORT" line it
// prints on stdout. Every request opens its own connection, so the
// helpers may be called from many threads at once.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/types.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/test_support.h"

// Every end-to-end test runs the okrd its build names (okr_okrd_test in
// tests/CMakeLists.txt defines it); checked once here rather than in each test.
#ifndef OKRD_PATH
#error "OKRD_PATH (the okrd binary under test) must be defined"
#endif

namespace okr::testing {

// The names every end-to-end test speaks in: answers are JSON, deadlines
// are on the steady clock (never the wall clock, which tests may not trust).
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// One entry of the tokens file, with the token itself (the file gets only
// its SHA-256).
struct Token {
  std::string token;
  std::string actor;
  std::string role;  // admin, editor, auditor, viewer
  std::vector<std::string> units;
  std::string subject = {};  // the person unit the holder is (SPEC §10); empty: none
};

// One HTTP answer.
struct Reply {
  int status = 0;         // 0: no answer (connection refused, reset, timed out)
  std::string transport;  // what went wrong when status is 0
  std::string body;
  nlohmann::json json;  // the body parsed; null when it is not JSON
  httplib::Headers headers;

  bool has_header(const std::string& name) const { return headers.find(name) != headers.end(); }
  std::string header(const std::string& name) const;
  // error.code and error.field of an error answer ("" when absent or null).
  std::string code() const;
  std::string field() const;
  // json[key] as an unsigned number (the seq, version, head_seq …); 0 when absent.
  uint64_t u(const char* key) const;
};
std::ostream& operator<<(std::ostream& os, const Reply& r);

struct OkrdOptions {
  // nullopt: okrd starts without --tokens (read-only, or the demo's own).
  std::optional<std::vector<Token>> tokens = std::vector<Token>{};
  std::vector<std::string> extra_args;  // e.g. --private, --snapshot-every 5, --demo
  // Set in okrd's environment on top of the test's own (e.g. LD_PRELOAD).
  std::vector<std::pair<std::string, std::string>> env = {};
};

class Okrd {
 public:
  explicit Okrd(OkrdOptions options);
  ~Okrd();  // kills okrd if it still runs
  Okrd(const Okrd&) = delete;
  Okrd& operator=(const Okrd&) = delete;

  // Starts okrd and waits for its "listening" line.
  ::testing::AssertionResult Start();
  // SIGTERM, then waits for a clean exit with status 0.
  ::testing::AssertionResult Stop();
  // SIGKILL, then reaps it.
  ::testing::AssertionResult Kill();
  // Stop() then Start(); `extra_args` replaces the extra flags when given.
  ::testing::AssertionResult Restart(
      std::optional<std::vector<std::string>> extra_args = std::nullopt);

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& tokens_path() const { return tokens_path_; }
  const std::string& log_path() const { return log_path_; }
  // Adds to okrd's environment from the next Start() on.
  void AddEnv(std::string name, std::string value) {
    options_.env.emplace_back(std::move(name), std::move(value));
  }
  pid_t pid() const { return pid_; }
  // What okrd printed on stdout up to its listening line (and anything
  // after it that had already arrived).
  const std::string& stdout_text() const { return stdout_text_; }
  // The end of okrd's log, for failure messages.
  std::string LogTail(size_t bytes = 3000) const;

  // `path` is sent exactly as written (percent-encode it yourself);
  // `token` non-empty adds "Authorization: Bearer <token>".
  Reply Request(const std::string& method, const std::string& path, const std::string& body = "",
                const std::string& token = "", const httplib::Headers& headers = {}) const;
  Reply Get(const std::string& path, const std::string& token = "",
            const httplib::Headers& headers = {}) const;
  Reply Post(const std::string& path, const nlohmann::json& body, const std::string& token = "",
             const httplib::Headers& headers = {}) const;
  Reply Patch(const std::string& path, const nlohmann::json& body, const std::string& token = "",
              const httplib::Headers& headers = {}) const;
  // A null `body` sends none.
  Reply Delete(const std::string& path, const std::string& token = "",
               const httplib::Headers& headers = {}, const nlohmann::json& body = nullptr) const;

  // GET /healthz → head_seq. Records a test failure (and answers
  // UINT64_MAX) when okrd does not answer.
  uint64_t HeadSeq() const;
  // Snapshots are written in the background: polls GET /metrics until
  // okrd reports one at most `max_age` events behind its head, for up to
  // `timeout_ms`; answers the last age it read (-1: no snapshot yet).
  long WaitForSnapshot(long max_age, int timeout_ms) const;

 private:
  ::testing::AssertionResult WaitForExit(int* status, int timeout_ms);
  // Sends `signal` to the running okrd and reaps it into `*status`; fails
  // when okrd is not running or outlives the stop timeout.
  ::testing::AssertionResult SignalAndWait(int signal, int* status);
  void WriteTokens() const;

  OkrdOptions options_;
  TempDir dir_;
  std::string data_dir_, tokens_path_, log_path_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int port_ = 0;
  std::string stdout_text_;
};

// Polls `done` every 50 ms until it holds or `seconds` pass; true when it
// held. How end-to-end tests wait for what okrd does in the background.
template <typename Fn>
bool WaitFor(Fn done, int seconds = 60) {
  auto deadline = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

// Today ± `days`, as a cycle date YYYY-MM-DD (UTC).
std::string DateIn(int days);

// Checks the status and hands the reply on, so a read can be checked and
// used in one expression. Records a test failure on a mismatch.
Reply Want(const Reply& r, int status);

// What the plan-level end-to-end tests start from, written with `admin_token`
// on the running `s`: the company unit "acme" and the cycle "q" that began 30
// days ago and ends `cycle_ends_in_days` from today (dates around today, so
// check-ins can be measured in the past). Records a test failure for any
// write okrd refuses.
void PlanAcmeAndCycle(const Okrd& s, const std::string& admin_token, int cycle_ends_in_days);

// Percent-encodes a query value or path segment (everything but A-Z a-z 0-9 - . _ ~).
std::string UrlEncode(const std::string& s);

}  // namespace okr::testing
