// Hostile clients against the real okrd: idle and slow connections by the
// hundred, oversize request lines, headers and header blocks, tokens
// where they do not belong, a tokens file others can read — and the
// headers every answer must carry whatever the request was.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/okrd_harness.h"
#include "tests/raw_http.h"

namespace okr::testing {
namespace {

const Token kAdmin{"tok-hostile-admin-5e0c2f9b81", "root", "admin", {}};
const Token kEditor{"tok-hostile-editor-a7d36c04e2", "eddie", "editor", {"hr"}};
const Token kAuditor{"tok-hostile-auditor-19bf7e6d53", "audrey", "auditor", {}};
const Token kViewer{"tok-hostile-viewer-c2e85a71f0", "vic", "viewer", {}};
// Known to nobody: refused, and still never logged.
const std::string kUnknownToken = "tok-hostile-unknown-8f41d0b7c9";

OkrdOptions WithTokens(std::vector<std::string> extra = {}) {
  return OkrdOptions{std::vector<Token>{kAdmin, kEditor, kAuditor, kViewer}, std::move(extra)};
}

// Reads until the peer closes or `timeout_ms` passes; "" when nothing came.
std::string ReadAll(int fd, int timeout_ms) {
  std::string out;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[4096];
  while (true) {
    int left = MillisLeft(deadline);
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Sends `raw` on a fresh connection and returns everything okrd answers
// before it closes the connection (or 5 s pass).
std::string RawExchange(int port, const std::string& raw) {
  int fd = ConnectLoopback(port);
  if (fd < 0) return "";
  SendAll(fd, raw);  // okrd may close before it has read everything
  ::shutdown(fd, SHUT_WR);
  std::string answer = ReadAll(fd, 5000);
  ::close(fd);
  return answer;
}

long ThreadsOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::atol(line.c_str() + 8);
  }
  return -1;
}

// --- idle and slow connections ---

TEST(Hostile, HundredsOfIdleAndSlowConnectionsDoNotStopOtherClients) {
  constexpr int kIdle = 300;
  constexpr int kSlow = 50;
  constexpr auto kBound = std::chrono::milliseconds(2000);  // the longest a normal request may take
  // All from one address: lift its cap (256 by default) above the 350 here.
  Okrd s(WithTokens({"--dashboard", "", "--max-connections-per-address", "1000"}));
  ASSERT_TRUE(s.Start());
  ASSERT_EQ(
      s.Post("/v1/units", {{"id", "acme"}, {"kind", "company"}, {"name", "Acme"}}, kAdmin.token)
          .status,
      201);

  std::vector<int> idle;
  for (int i = 0; i < kIdle; ++i) {
    int fd = ConnectLoopback(s.port());
    ASSERT_GE(fd, 0) << "connection " << i << ": " << std::strerror(errno);
    idle.push_back(fd);
  }
  // Slow loris: a request that never ends, one byte a second.
  std::atomic<bool> stop{false};
  std::atomic<int> slow_cut{0};
  std::vector<std::thread> slow;
  for (int i = 0; i < kSlow; ++i) {
    slow.emplace_back([&] {
      int fd = ConnectLoopback(s.port());
      if (fd < 0) return;
      bool open = SendAll(fd, "GET /v1/units HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
      while (open && !stop) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        open = SendAll(fd, "a");
      }
      if (!open) ++slow_cut;
      ::close(fd);
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // all of them accepted and waiting
  long threads_under_attack = ThreadsOf(s.pid());

  // Meanwhile everyone else is served, promptly.
  Clock::duration worst{};
  for (int i = 0; i < 30; ++i) {
    auto started = Clock::now();
    Reply r;
    switch (i % 3) {
      case 0:
        r = s.Get("/healthz");
        break;
      case 1:
        r = s.Get("/v1/units");
        break;
      default:
        r = s.Post("/v1/units",
                   {{"id", "team-" + std::to_string(i)},
                    {"kind", "team"},
                    {"name", "T"},
                    {"parent", "acme"}},
                   kAdmin.token);
    }
    auto took = Clock::now() - started;
    worst = std::max(worst, took);
    EXPECT_EQ(r.status, i % 3 == 2 ? 201 : 200) << r;
    EXPECT_LT(took, kBound) << "request " << i << " waited behind idle and slow clients";
  }
  std::printf(
      "hostile: %d idle + %d slow connections: okrd threads %ld; slowest of 30 requests %lld ms\n",
      kIdle, kSlow, threads_under_attack,
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(worst).count()));

  // okrd closes the idle connections after kIdleTimeoutSeconds (5 s) and
  // cuts the slow ones off once a request has taken kRequestReceiveSeconds
  // (10 s) to arrive.
  auto deadline = Clock::now() + std::chrono::seconds(15);
  int closed = 0;
  for (int fd : idle) {
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    pollfd p{fd, POLLIN, 0};
    char c;
    if (::poll(&p, 1, std::max(left, 0)) > 0 && ::recv(fd, &c, 1, 0) <= 0) ++closed;
    ::close(fd);
  }
  EXPECT_EQ(closed, kIdle) << "idle connections okrd left open";
  while (slow_cut < kSlow && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(slow_cut, kSlow) << "slow connections okrd still waits for";
  stop = true;
  for (auto& t : slow) t.join();
  EXPECT_EQ(s.Get("/healthz").status, 200);
  EXPECT_TRUE(s.Stop());
}

// --- oversize requests ---

TEST(Hostile, OversizeRequestLinesHeadersAndHeaderBlocksAreRefused) {
  Okrd s(WithTokens({"--dashboard", ""}));
  ASSERT_TRUE(s.Start());
  struct Case {
    const char* name;
    std::string raw;
    int status;
  };
  std::string many_headers;
  for (int i = 0; i < 20'000; ++i)
    many_headers += "X-Flood-" + std::to_string(i) + ": " + std::string(100, 'f') + "\r\n";
  std::string big_header_block;
  for (int i = 0; i < 10; ++i)
    big_header_block += "X-Big-" + std::to_string(i) + ": " + std::string(8000, 'b') + "\r\n";
  const std::vector<Case> cases = {
      {"URI of 9 000 bytes",
       "GET /v1/units?cursor=" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
      {"one header of 9 000 bytes",
       "GET /v1/units HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'h') + "\r\n\r\n", 400},
      {"20 000 headers (2 MB)", "GET /v1/units HTTP/1.1\r\nHost: x\r\n" + many_headers + "\r\n",
       400},
      {"ten 8 000-byte headers (80 KB)",
       "GET /v1/units HTTP/1.1\r\nHost: x\r\n" + big_header_block + "\r\n", 400},
      {"malformed request line", "GARBAGE\r\n\r\n", 400},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string answer = RawExchange(s.port(), c.raw);
    EXPECT_EQ(StatusOf(answer), c.status) << answer.substr(0, 300);
    EXPECT_TRUE(HasHeader(answer, "X-Content-Type-Options")) << answer.substr(0, 300);
    EXPECT_TRUE(HasHeader(answer, "X-Request-Id")) << answer.substr(0, 300);
    ASSERT_EQ(s.Get("/healthz").status, 200) << "okrd stopped answering";
  }
  // A header block just under the limit is served.
  std::string fine;
  for (int i = 0; i < 7; ++i)
    fine += "X-Fine-" + std::to_string(i) + ": " + std::string(8000, 'f') + "\r\n";
  EXPECT_EQ(
      StatusOf(RawExchange(
          s.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + fine + "\r\n")),
      200);

  // Floods of headers cost okrd no memory: 50 clients sending 2 MB of
  // headers each leave its resident memory where it was.
  auto rss = [&] {
    std::ifstream in("/proc/" + std::to_string(s.pid()) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    }
    return -1L;
  };
  long before = rss();
  std::vector<std::thread> flooders;
  for (int i = 0; i < 50; ++i) {
    flooders.emplace_back([&] {
      RawExchange(s.port(), "GET /v1/units HTTP/1.1\r\nHost: x\r\n" + many_headers + "\r\n");
    });
  }
  for (auto& t : flooders) t.join();
  long after = rss();
  std::printf("hostile: resident memory before and after 50 × 2 MB header floods: %ld kB, %ld kB\n",
              before, after);
  // Judged in the plain build only: AddressSanitizer's allocator holds every
  // freed block in quarantine and gives each thread a fake stack, so there
  // resident memory grows with everything okrd allocated, freed or not.
  if (!UnderSanitizers()) {
    EXPECT_LT(after - before, 64 * 1024)
        << "header floods grew okrd by " << (after - before) << " kB";
  }
  EXPECT_TRUE(s.Stop());
}

// --- tokens never reach a log ---

TEST(Hostile, TokensNeverAppearInTheLog) {
  for (const char* format : {"text", "json"}) {
    SCOPED_TRACE(format);
    Okrd s(WithTokens({"--log-format", format}));
    ASSERT_TRUE(s.Start());
    const std::vector<std::string> tokens = {kAdmin.token, kEditor.token, kAuditor.token,
                                             kViewer.token, kUnknownToken};
    ASSERT_EQ(s.Post("/v1/units", {{"id", "hr"}, {"kind", "company"}, {"name", "HR"}}, kAdmin.token)
                  .status,
              201);
    for (const std::string& t : tokens) {
      // Where a token belongs, valid or not …
      s.Get("/v1/units", t);
      s.Get("/v1/events", t);
      s.Get("/v1/audit/verify", t);
      s.Post("/v1/units",
             {{"id", "u-" + std::to_string(t.size())},
              {"kind", "team"},
              {"name", "U"},
              {"parent", "hr"}},
             t);
      s.Get("/v1/units", "", {{"Authorization", "Basic " + t}});
      s.Get("/v1/units", "", {{"Authorization", t}});
      // … and where it does not: query strings, paths, bodies, headers.
      s.Get("/v1/units?token=" + t + "&access_token=" + t);
      s.Get("/v1/units/" + t);
      s.Get("/" + t);
      s.Post("/v1/units?token=" + t, {{"id", "x"}, {"kind", "team"}, {"name", t}, {"token", t}},
             kAdmin.token);
      s.Request("POST", "/v1/units", "{\"token\":\"" + t, kAdmin.token);  // malformed JSON
      s.Get("/v1/units", "", {{"X-Api-Key", t}, {"Cookie", "session=" + t}});
      RawExchange(s.port(), "GET /v1/units?token=" + t + " HTTP/1.1\r\nAuthorization: Bearer " + t +
                                "\r\nX-Big: " + std::string(9000, 'x') + "\r\n\r\n");
      RawExchange(s.port(), "GET /" + t + std::string(9000, 'u') + " HTTP/1.1\r\nHost: x\r\n\r\n");
      RawExchange(s.port(), t + "\r\n\r\n");
    }
    ASSERT_TRUE(s.Stop());
    std::string log = s.LogTail(SIZE_MAX);
    ASSERT_GT(log.size(), 1000u) << "okrd logged next to nothing";
    std::string rocksdb_log = ReadFile(s.data_dir() + "/LOG");
    auto line_at = [](const std::string& text, size_t at) {
      size_t from = text.rfind('\n', at);
      from = from == std::string::npos ? 0 : from + 1;
      return text.substr(from, std::min<size_t>(text.find('\n', at) - from, 400));
    };
    for (const std::string& t : tokens) {
      size_t at = log.find(t);
      EXPECT_EQ(at, std::string::npos)
          << "token " << t << " is in okrd's log: " << line_at(log, at);
      EXPECT_EQ(rocksdb_log.find(t), std::string::npos) << "token " << t << " is in RocksDB's LOG";
    }
  }
}

// --- the tokens file ---

TEST(Hostile, TokensFileOthersCanReadIsRefused) {
  for (mode_t mode : {0640, 0604, 0660, 0644, 0666}) {
    SCOPED_TRACE(mode);
    Okrd s(WithTokens());
    ASSERT_EQ(::chmod(s.tokens_path().c_str(), mode), 0);
    std::string out;
    // Under `timeout`: an okrd that accepted the file would serve on.
    int status = RunCommand("timeout 20 " + BuildFile(OKRD_PATH) + " --data '" + s.data_dir() +
                                "' --listen 127.0.0.1:0 --tokens '" + s.tokens_path() + "' 2>&1",
                            &out);
    EXPECT_EQ(status, 2) << "okrd's exit status for a refused set-up: " << out;
    EXPECT_EQ(out.find("listening"), std::string::npos) << out;
    EXPECT_NE(out.find(s.tokens_path()), std::string::npos)
        << "the message names the file: " << out;
    EXPECT_NE(out.find("chmod 600"), std::string::npos) << "the message says what to do: " << out;
  }
  // 0600 and 0400 are accepted.
  for (mode_t mode : {0600, 0400}) {
    Okrd s(WithTokens());
    ASSERT_EQ(::chmod(s.tokens_path().c_str(), mode), 0);
    EXPECT_TRUE(s.Start());
    EXPECT_TRUE(s.Stop());
  }
}

// --- headers on every answer ---

TEST(Hostile, EveryAnswerCarriesNosniffAndARequestId) {
  Okrd s(WithTokens());  // with the dashboard: static files too
  ASSERT_TRUE(s.Start());
  struct Call {
    std::string method, path, body, token;
    httplib::Headers headers;
  };
  const std::string& admin = kAdmin.token;
  const std::vector<Call> calls = {
      {"GET", "/", "", "", {}},
      {"GET", "/index.html", "", "", {}},
      {"GET", "/app.js", "", "", {}},
      {"GET", "/style.css", "", "", {}},
      {"GET", "/healthz", "", "", {}},
      {"GET", "/metrics", "", "", {}},
      {"GET", "/v1/openapi.json", "", "", {}},
      {"POST", "/v1/units", R"({"id":"acme","kind":"company","name":"Acme"})", admin, {}},
      {"POST", "/v1/units", R"({"id":"acme","kind":"company","name":"Acme"})", admin, {}},  // 409
      {"GET", "/v1/units", "", "", {}},
      {"GET", "/v1/units/acme", "", "", {}},
      {"HEAD", "/v1/units", "", "", {}},
      {"GET", "/v1/units/nope", "", "", {}},         // 404
      {"GET", "/v1/units?limit=0", "", "", {}},      // 400
      {"GET", "/v1/events", "", "", {}},             // 401
      {"GET", "/v1/events", "", kViewer.token, {}},  // 403
      {"GET", "/v1/events", "", kAuditor.token, {}},
      {"GET", "/v1/audit/verify", "", kAuditor.token, {}},
      {"POST", "/v1/units", "{", admin, {}},                               // 400
      {"POST", "/v1/units", "", kUnknownToken, {}},                        // 401
      {"POST", "/v1/units", std::string((1u << 20) + 1, ' '), admin, {}},  // 413
      {"PUT", "/v1/units/acme", "{}", admin, {}},                          // no such route
      {"OPTIONS", "/v1/units", "", "", {}},
      {"DELETE", "/v1/units/acme", "", admin, {{"If-Match", "7"}}},  // 412
      {"GET", "/no/such/file.js", "", "", {}},
      {"GET", "/v1/units?cursor=" + std::string(9000, 'a'), "", "", {}},  // 414
      {"GET", "/v1/units", "", "", {{"X-Big", std::string(9000, 'b')}}},  // 400
  };
  std::set<int> statuses;
  std::set<std::string> ids;
  for (const Call& c : calls) {
    SCOPED_TRACE(c.method + " " + c.path.substr(0, 60));
    Reply r = s.Request(c.method, c.path, c.body, c.token, c.headers);
    ASSERT_NE(r.status, 0) << r;
    statuses.insert(r.status);
    EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff") << r;
    EXPECT_FALSE(r.header("X-Request-Id").empty()) << r;
    ids.insert(r.header("X-Request-Id"));
  }
  EXPECT_EQ(ids.size(), calls.size()) << "request ids repeat";
  // A static file's name cut short by a NUL is no file: not app.js typed
  // by what follows the NUL.
  for (const char* path : {"/app.js%00.html", "/index.html%00.js", "/style.css%0A"}) {
    SCOPED_TRACE(path);
    Reply r = s.Get(path);
    EXPECT_EQ(r.status, 400) << r;
    EXPECT_EQ(r.code(), "malformed") << r;
  }
  EXPECT_GE(statuses.size(), 9u);  // 200 201 400 401 403 404 409 412 413 414 …
  // A client's own well-formed request id is kept.
  EXPECT_EQ(s.Get("/healthz", "", {{"X-Request-Id", "trace-abc.123"}}).header("X-Request-Id"),
            "trace-abc.123");
  EXPECT_TRUE(s.Stop());
}

}  // namespace
}  // namespace okr::testing
