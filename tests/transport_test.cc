// okrd's HTTP transport against the real binary, spoken to over raw
// sockets: request bodies bounded however they arrive (Content-Length,
// chunked, neither), a deadline for receiving a whole request, a bounded
// queue in front of the worker threads, a cap on connections per client
// address, and an answer cache whose keys cannot collide (SPEC §6
// "Bounded requests"; docs/RELIABILITY.md "Hostile input: transport").
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <utility>

#include "api/transport.h"
#include "tests/okrd_harness.h"
#include "tests/raw_http.h"

namespace okr::testing {
namespace {

const Token kAdmin{"tok-transport-admin-3c9e51d0a7", "root", "admin", {}};

// The limits under test, as api/server.h and api/routes/request.h name them.
constexpr size_t kMaxBodyBytes = 1u << 20;
constexpr int kRequestReceiveSeconds = 10;

OkrdOptions WithAdmin(std::vector<std::string> extra = {}) {
  extra.insert(extra.end(), {"--dashboard", ""});
  return OkrdOptions{std::vector<Token>{kAdmin}, std::move(extra)};
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// One raw connection to okrd: bytes out exactly as written, answers read
// back as they come.
class Raw {
 public:
  explicit Raw(int port) : fd_(ConnectLoopback(port)) {}
  ~Raw() { Close(); }
  Raw(const Raw&) = delete;
  Raw& operator=(const Raw&) = delete;

  bool connected() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool Send(const std::string& data) { return SendAll(fd_, data); }
  // Something to read (an answer, or the end of the connection) within `ms`.
  bool Readable(int ms) const {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, ms) > 0;
  }
  // One answer: its head and as many body bytes as its Content-Length
  // says; "" when nothing came within `ms`.
  std::string ReadAnswer(int ms) {
    auto deadline = Clock::now() + std::chrono::milliseconds(ms);
    while (true) {
      size_t head_end = pending_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t length = ContentLength(pending_.substr(0, head_end));
        if (pending_.size() >= head_end + 4 + length) {
          std::string answer = pending_.substr(0, head_end + 4 + length);
          pending_.erase(0, answer.size());
          return answer;
        }
      }
      if (!Fill(MillisLeft(deadline))) return "";
    }
  }
  // What one read takes once something arrives within `ms` ("" when nothing does).
  std::string ReadOnce(int ms) {
    if (pending_.empty()) Fill(ms);
    return std::exchange(pending_, "");
  }
  // Whether okrd closed the connection within `ms` (anything it sent first is dropped).
  bool ClosedWithin(int ms) {
    auto deadline = Clock::now() + std::chrono::milliseconds(ms);
    while (MillisLeft(deadline) > 0) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, MillisLeft(deadline)) <= 0) return false;
      char buf[4096];
      if (::recv(fd_, buf, sizeof buf, 0) <= 0) return true;
    }
    return false;
  }

 private:
  static size_t ContentLength(std::string head) {
    std::transform(head.begin(), head.end(), head.begin(), ::tolower);
    size_t at = head.find("\r\ncontent-length:");
    return at == std::string::npos ? 0 : std::strtoul(head.c_str() + at + 17, nullptr, 10);
  }
  bool Fill(int ms) {
    if (ms <= 0 || !Readable(ms)) return false;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    pending_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string pending_;
};

std::string CodeOf(const std::string& answer) {
  size_t body = answer.find("\r\n\r\n");
  if (body == std::string::npos) return "";
  json j = json::parse(answer.substr(body + 4), nullptr, false);
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) return "";
  return j["error"].value("code", "");
}

// A line of /proc/PID/status in kB (VmRSS, VmHWM).
long ProcStatusKb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::atol(line.c_str() + field.size() + 1);
  }
  return -1;
}

std::string Head(const std::string& request_line, const std::vector<std::string>& headers) {
  std::string out =
      request_line + "\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + kAdmin.token + "\r\n";
  for (const std::string& h : headers) out += h + "\r\n";
  return out + "\r\n";
}

std::string Hex(size_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%zx", n);
  return buf;
}

// A connection okrd has no room for: answered 503 unavailable with
// Retry-After: 1, then closed. Returns the answer for further checks.
std::string ExpectTurnedAway(int port) {
  Raw refused(port);
  EXPECT_TRUE(refused.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string answer = refused.ReadAnswer(3000);
  EXPECT_EQ(StatusOf(answer), 503) << answer;
  EXPECT_EQ(CodeOf(answer), "unavailable") << answer;
  EXPECT_EQ(HeaderOf(answer, "Retry-After"), "1") << answer;
  EXPECT_TRUE(refused.ClosedWithin(3000));
  return answer;
}

// GET /metrics, retried for up to 3 s: right after a connection closes
// okrd may still be busy with it and turn the next one away.
Reply MetricsOnceServed(const Okrd& s) {
  auto deadline = Clock::now() + std::chrono::seconds(3);
  Reply r;
  while ((r = s.Get("/metrics")).status != 200 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return r;
}

// --- request bodies ---

// 64 MiB sent chunked: okrd reads no more than its 1 MiB limit, answers
// 413 and closes; its memory does not grow by the body and nothing is written.
TEST(Transport, ChunkedBodyOverTheLimitIsRefusedWithoutGrowingOkrd) {
  Okrd s(WithAdmin());
  ASSERT_TRUE(s.Start());
  uint64_t head = s.HeadSeq();
  long rss_before = ProcStatusKb(s.pid(), "VmRSS"), peak_before = ProcStatusKb(s.pid(), "VmHWM");

  Raw c(s.port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(Head("POST /v1/units HTTP/1.1",
                          {"Content-Type: application/json", "Transfer-Encoding: chunked"})));
  const std::string chunk = Hex(64 * 1024) + "\r\n" + std::string(64 * 1024, ' ') + "\r\n";
  size_t sent = 0;
  auto started = Clock::now();
  // Until okrd answers (or stops reading): 1024 chunks of 64 KiB.
  for (int i = 0; i < 1024 && !c.Readable(0); ++i) {
    if (!c.Send(chunk)) break;
    sent += 64 * 1024;
  }
  if (!c.Readable(0)) c.Send("0\r\n\r\n");
  std::string answer = c.ReadAnswer(10'000);
  std::printf("transport: chunked body: okrd answered after %zu KiB sent, %.2f s\n", sent / 1024,
              SecondsSince(started));
  EXPECT_EQ(StatusOf(answer), 413) << answer.substr(0, 400);
  EXPECT_EQ(CodeOf(answer), "too_large") << answer.substr(0, 400);
  EXPECT_EQ(HeaderOf(answer, "Connection"), "close") << answer.substr(0, 400);
  EXPECT_TRUE(c.ClosedWithin(5000)) << "okrd kept the connection open";

  long rss_after = ProcStatusKb(s.pid(), "VmRSS"), peak_after = ProcStatusKb(s.pid(), "VmHWM");
  std::printf("transport: okrd resident before and after: %ld kB, %ld kB (peak %ld kB, %ld kB)\n",
              rss_before, rss_after, peak_before, peak_after);
  // The plain build only (see hostile_test.cc): ASan's allocator keeps freed memory.
  if (!UnderSanitizers()) {
    EXPECT_LT(rss_after - rss_before, 16 * 1024)
        << "okrd grew by " << (rss_after - rss_before) << " kB";
    EXPECT_LT(peak_after - rss_before, 16 * 1024) << "okrd's peak grew to " << peak_after << " kB";
  }
  EXPECT_EQ(s.HeadSeq(), head) << "the refused request appended";
  EXPECT_EQ(s.Get("/healthz").status, 200);
  EXPECT_TRUE(s.Stop());
}

// A Content-Length over the limit is answered at once: okrd does not wait
// for (or read) the body it will refuse.
TEST(Transport, ContentLengthOverTheLimitIsRefusedBeforeTheBody) {
  Okrd s(WithAdmin());
  ASSERT_TRUE(s.Start());
  uint64_t head = s.HeadSeq();
  for (const char* expect : {"", "Expect: 100-continue"}) {
    SCOPED_TRACE(expect);
    Raw c(s.port());
    std::vector<std::string> headers = {"Content-Type: application/json",
                                        "Content-Length: " + std::to_string(64u << 20)};
    if (*expect) headers.push_back(expect);
    ASSERT_TRUE(c.Send(Head("POST /v1/units HTTP/1.1", headers) + "{\"id\":"));
    auto started = Clock::now();
    std::string answer = c.ReadAnswer(3000);
    EXPECT_EQ(StatusOf(answer), 413) << answer.substr(0, 400);  // never 100 Continue
    EXPECT_EQ(CodeOf(answer), "too_large") << answer.substr(0, 400);
    EXPECT_LT(SecondsSince(started), 2.0);
    EXPECT_TRUE(c.ClosedWithin(5000));
  }
  EXPECT_EQ(s.HeadSeq(), head);
  EXPECT_TRUE(s.Stop());
}

// HTTP/1.1: a request with neither Content-Length nor Transfer-Encoding
// has no body. okrd answers at once (it never reads until the client
// closes), and what follows on the connection is the next request.
TEST(Transport, RequestWithoutLengthOrChunkingHasNoBody) {
  Okrd s(WithAdmin());
  ASSERT_TRUE(s.Start());
  ASSERT_EQ(s.Post("/v1/cycles",
                   {{"id", "q1"}, {"name", "Q1"}, {"starts", "2024-01-01"}, {"ends", "2024-03-31"}},
                   kAdmin.token)
                .status,
            201);
  uint64_t head = s.HeadSeq();
  {
    // A bodiless POST, as `curl -X POST` sends it: served, and the connection goes on.
    Raw c(s.port());
    ASSERT_TRUE(c.Send(Head("POST /v1/cycles/q1/close HTTP/1.1", {})));
    std::string answer = c.ReadAnswer(3000);
    EXPECT_EQ(StatusOf(answer), 200) << answer.substr(0, 400);
    ASSERT_TRUE(c.Send(Head("GET /v1/cycles/q1 HTTP/1.1", {})));
    answer = c.ReadAnswer(3000);
    EXPECT_EQ(StatusOf(answer), 200) << answer.substr(0, 400);
    EXPECT_NE(answer.find("\"closed\""), std::string::npos) << answer.substr(0, 600);
  }
  EXPECT_EQ(s.HeadSeq(), head + 1);
  {
    // A body without a length is not one: the POST has an empty body
    // (400, nothing written), the stray bytes are a malformed next request.
    Raw c(s.port());
    ASSERT_TRUE(c.Send(Head("POST /v1/units HTTP/1.1", {"Content-Type: application/json"}) +
                       R"({"id":"acme","kind":"company","name":"Acme"})" + "\r\n\r\n"));
    std::string answer = c.ReadAnswer(3000);
    EXPECT_EQ(StatusOf(answer), 400) << answer.substr(0, 400);
    EXPECT_EQ(CodeOf(answer), "malformed") << answer.substr(0, 400);
    answer = c.ReadAnswer(3000);
    EXPECT_EQ(StatusOf(answer), 400) << answer.substr(0, 400);
    EXPECT_TRUE(c.ClosedWithin(3000));
  }
  EXPECT_EQ(s.HeadSeq(), head + 1);
  EXPECT_TRUE(s.Stop());
}

// A chunked body within the limit is served, chunk extensions and
// trailers included, and the connection stays open for the next request.
TEST(Transport, ChunkedBodyWithinTheLimitIsServed) {
  Okrd s(WithAdmin());
  ASSERT_TRUE(s.Start());
  const std::string body = R"({"id":"acme","kind":"company","name":"Acme"})";
  Raw c(s.port());
  ASSERT_TRUE(c.Send(Head("POST /v1/units HTTP/1.1",
                          {"Content-Type: application/json", "Transfer-Encoding: chunked"}) +
                     "a;note=first\r\n" + body.substr(0, 10) + "\r\n" + Hex(body.size() - 10) +
                     "\r\n" + body.substr(10) + "\r\n0\r\nX-Trailer: yes\r\n\r\n"));
  std::string answer = c.ReadAnswer(3000);
  EXPECT_EQ(StatusOf(answer), 201) << answer.substr(0, 400);
  ASSERT_TRUE(c.Send(Head("GET /v1/units/acme HTTP/1.1", {})));
  answer = c.ReadAnswer(3000);
  EXPECT_EQ(StatusOf(answer), 200) << answer.substr(0, 400);

  // With Expect: 100-continue okrd invites the body first.
  Raw e(s.port());
  const std::string team = R"({"id":"team","kind":"team","name":"Team","parent":"acme"})";
  ASSERT_TRUE(e.Send(
      Head("POST /v1/units HTTP/1.1", {"Content-Type: application/json", "Expect: 100-continue",
                                       "Content-Length: " + std::to_string(team.size())})));
  answer = e.ReadAnswer(3000);
  EXPECT_EQ(StatusOf(answer), 100) << answer.substr(0, 400);
  ASSERT_TRUE(e.Send(team));
  answer = e.ReadAnswer(3000);
  EXPECT_EQ(StatusOf(answer), 201) << answer.substr(0, 400);
  EXPECT_TRUE(s.Stop());
}

// Each answer leaves okrd in one write: a client's first read after the
// answer starts arriving has all of it, head and body (its event loop
// wakes once per answer, not once for the head and again for the body).
// On one kept-alive connection: answers with bodies, a 304 without one,
// a refusal, and the 100 Continue sent before a body okrd will read.
TEST(Transport, EachAnswerArrivesWholeInTheClientsFirstRead) {
  Okrd s(WithAdmin());
  ASSERT_TRUE(s.Start());
  Raw c(s.port());
  // One answer, whole, in one read.
  auto exchange = [&c](const std::string& request, int status) {
    if (!c.Send(request)) return std::string("(not sent)");
    std::string read = c.ReadOnce(3000);
    size_t head_end = read.find("\r\n\r\n");
    EXPECT_NE(head_end, std::string::npos) << read;
    if (head_end == std::string::npos) return read;
    size_t length = std::strtoul(HeaderOf(read, "Content-Length").c_str(), nullptr, 10);
    EXPECT_EQ(read.size(), head_end + 4 + length) << read;
    EXPECT_EQ(StatusOf(read), status) << read;
    return read;
  };
  const std::string unit = R"({"id":"acme","kind":"company","name":"Acme"})";
  exchange(
      Head("POST /v1/units HTTP/1.1", {"Content-Type: application/json", "Expect: 100-continue",
                                       "Content-Length: " + std::to_string(unit.size())}),
      100);
  exchange(unit, 201);
  const uint64_t head = s.HeadSeq();
  for (int round = 0; round < 25; ++round) {
    exchange(Head("GET /healthz HTTP/1.1", {}), 200);
    std::string units = exchange(Head("GET /v1/units HTTP/1.1", {}), 200);
    exchange(Head("GET /v1/units HTTP/1.1", {"If-None-Match: " + HeaderOf(units, "ETag")}), 304);
    exchange(
        Head("POST /v1/units HTTP/1.1", {"Content-Type: application/json", "Content-Length: 9"}) +
            "{\"id\":42}",
        400);
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_EQ(s.HeadSeq(), head);
  EXPECT_TRUE(s.Stop());
}

// Framing okrd cannot trust is refused, and the connection closes (the
// bytes after it could be read two ways).
TEST(Transport, AmbiguousOrUnsupportedFramingIsRefused) {
  Okrd s(WithAdmin());
  ASSERT_TRUE(s.Start());
  uint64_t head = s.HeadSeq();
  const std::string body = R"({"id":"acme","kind":"company","name":"Acme"})";
  const std::string length = "Content-Length: " + std::to_string(body.size());
  struct Case {
    const char* name;
    std::vector<std::string> headers;
    std::string body;
    int status;
    const char* code;
  };
  const std::vector<Case> cases = {
      {"Content-Length and chunked",
       {length, "Transfer-Encoding: chunked"},
       Hex(body.size()) + "\r\n" + body + "\r\n0\r\n\r\n",
       400,
       "malformed"},
      {"two Content-Lengths", {length, length}, body, 400, "malformed"},
      {"Content-Length not a number", {"Content-Length: 4x"}, body, 400, "malformed"},
      {"a transfer coding but chunked", {"Transfer-Encoding: gzip, chunked"}, "", 400, "malformed"},
      {"compressed body", {length, "Content-Encoding: gzip"}, body, 415, "unsupported_encoding"},
      {"chunk size not hex", {"Transfer-Encoding: chunked"}, "zz\r\n" + body, 400, "malformed"},
      {"one chunk over the limit",
       {"Transfer-Encoding: chunked"},
       Hex(kMaxBodyBytes + 1) + "\r\n" + body,
       413,
       "too_large"},
      {"chunks over the limit",
       {"Transfer-Encoding: chunked"},
       Hex(kMaxBodyBytes) + "\r\n" + std::string(kMaxBodyBytes, ' ') + "\r\n1\r\n ",
       413,
       "too_large"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    Raw c(s.port());
    std::vector<std::string> headers = k.headers;
    headers.insert(headers.begin(), "Content-Type: application/json");
    ASSERT_TRUE(c.Send(Head("POST /v1/units HTTP/1.1", headers) + k.body));
    std::string answer = c.ReadAnswer(3000);
    EXPECT_EQ(StatusOf(answer), k.status) << answer.substr(0, 400);
    EXPECT_EQ(CodeOf(answer), k.code) << answer.substr(0, 400);
    EXPECT_FALSE(HeaderOf(answer, "X-Request-Id").empty()) << answer.substr(0, 400);
    EXPECT_TRUE(c.ClosedWithin(5000)) << "okrd kept the connection open";
  }
  EXPECT_EQ(s.HeadSeq(), head);
  EXPECT_TRUE(s.Stop());
}

// --- the deadline for receiving a request ---

// Clients trickling a byte a second — in the headers, in a body with a
// Content-Length, in a chunked body — are cut off once their request has
// taken kRequestReceiveSeconds; everyone else is served meanwhile.
TEST(Transport, TricklingClientsAreCutOffAtTheReceiveDeadline) {
  Okrd s(WithAdmin());
  ASSERT_TRUE(s.Start());
  uint64_t head = s.HeadSeq();
  const std::string body = R"({"id":"slow","kind":"company","name":"Slowly written"})";
  struct Trickle {
    const char* name;
    std::string start;  // sent at once
    std::string rest;   // then one byte a second
  };
  const std::vector<Trickle> trickles = {
      {"headers", "GET /v1/units HTTP/1.1\r\nHost: x\r\nX-Slow: ", std::string(100, 'a')},
      {"body with Content-Length",
       Head("POST /v1/units HTTP/1.1",
            {"Content-Type: application/json", "Content-Length: " + std::to_string(body.size())}),
       body},
      {"chunked body",
       Head("POST /v1/units HTTP/1.1",
            {"Content-Type: application/json", "Transfer-Encoding: chunked"}),
       Hex(body.size()) + "\r\n" + body + "\r\n0\r\n\r\n"},
  };
  constexpr double kMargin = 3.0;
  std::vector<double> cut_after(trickles.size(), -1);
  std::vector<std::string> answers(trickles.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < trickles.size(); ++i) {
    clients.emplace_back([&, i] {
      Raw c(s.port());
      auto started = Clock::now();
      bool open = c.Send(trickles[i].start);
      for (size_t b = 0; open && b < trickles[i].rest.size(); ++b) {
        if (c.Readable(1000)) break;  // okrd answered or closed
        if (SecondsSince(started) > kRequestReceiveSeconds + 2 * kMargin) return;
        open = c.Send(trickles[i].rest.substr(b, 1));
      }
      answers[i] = c.ReadAnswer(1000);
      if (!answers[i].empty() ? c.ClosedWithin(1000) : true) cut_after[i] = SecondsSince(started);
    });
  }
  // Meanwhile, others are served promptly.
  auto until = Clock::now() + std::chrono::seconds(kRequestReceiveSeconds - 1);
  while (Clock::now() < until) {
    auto asked = Clock::now();
    EXPECT_EQ(s.Get("/v1/units").status, 200);
    EXPECT_LT(SecondsSince(asked), 1.0);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  for (auto& t : clients) t.join();
  for (size_t i = 0; i < trickles.size(); ++i) {
    SCOPED_TRACE(trickles[i].name);
    std::printf("transport: trickled %s: cut off after %.1f s (%s)\n", trickles[i].name,
                cut_after[i], answers[i].substr(0, answers[i].find("\r\n")).c_str());
    EXPECT_GE(cut_after[i], kRequestReceiveSeconds - 1.0) << "cut off before the deadline";
    EXPECT_LE(cut_after[i], kRequestReceiveSeconds + kMargin) << "not cut off at the deadline";
  }
  EXPECT_EQ(StatusOf(answers[1]), 408) << answers[1];
  EXPECT_EQ(CodeOf(answers[1]), "request_timeout") << answers[1];
  EXPECT_EQ(StatusOf(answers[2]), 408) << answers[2];
  EXPECT_EQ(s.HeadSeq(), head) << "a request cut off was written";
  EXPECT_EQ(s.Get("/healthz").status, 200);
  EXPECT_TRUE(s.Stop());
}

// --- connections: the queue in front of the threads, and per address ---

// With every worker thread busy and the queue full, a new connection is
// answered 503 with Retry-After, and closed.
TEST(Transport, ConnectionsBeyondTheThreadsAndTheQueueAreRefused) {
  // 2 threads; 2 connections (one per thread) may wait.
  Okrd s(WithAdmin({"--threads", "1", "--max-threads", "2"}));
  ASSERT_TRUE(s.Start());
  std::vector<std::unique_ptr<Raw>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<Raw>(s.port()));
    ASSERT_TRUE(held.back()->connected());
  }
  std::string answer = ExpectTurnedAway(s.port());
  EXPECT_FALSE(HeaderOf(answer, "X-Request-Id").empty()) << answer;

  // The queued connections are served once a thread is free.
  held[0]->Close();
  ASSERT_TRUE(held[2]->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  answer = held[2]->ReadAnswer(3000);
  EXPECT_EQ(StatusOf(answer), 200) << answer;
  held.clear();
  Reply r = MetricsOnceServed(s);
  EXPECT_NE(r.body.find("okrd_connections_refused_total{reason=\"threads_busy\"} 1"),
            std::string::npos)
      << r.body;
  EXPECT_TRUE(s.Stop());
}

// --max-connections-per-address N: the N+1st connection from one address
// is answered 503 with Retry-After and closed; closing one makes room.
TEST(Transport, ConnectionsPerAddressAreCapped) {
  Okrd s(WithAdmin({"--max-connections-per-address", "3"}));
  ASSERT_TRUE(s.Start());
  std::vector<std::unique_ptr<Raw>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<Raw>(s.port()));
    ASSERT_TRUE(held.back()->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(StatusOf(held.back()->ReadAnswer(3000)), 200);
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    ExpectTurnedAway(s.port());
  }
  // The held connections still work.
  ASSERT_TRUE(held[1]->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(StatusOf(held[1]->ReadAnswer(3000)), 200);

  // One closes: the count drops, and a new connection is served.
  held[0]->Close();
  Reply r = MetricsOnceServed(s);
  EXPECT_EQ(r.status, 200) << r;
  // Two refused above, and perhaps a /metrics or two before okrd saw the close.
  const std::string counter = "okrd_connections_refused_total{reason=\"per_address\"} ";
  size_t at = r.body.find(counter);
  ASSERT_NE(at, std::string::npos) << r.body;
  EXPECT_GE(std::atoi(r.body.c_str() + at + counter.size()), 2) << r.body.substr(at, 80);
  held.clear();
  EXPECT_TRUE(s.Stop());
}

// --- the answer cache ---

// Parameter names and values holding '=', '&' or a line feed (sent as
// %3D, %26, %0A) cannot make two different requests share a cached
// answer: each gets its own.
TEST(Transport, CachedAnswersAreKeptApartWhateverTheParametersHold) {
  Okrd s(WithAdmin());
  ASSERT_TRUE(s.Start());
  for (json unit :
       {json{{"id", "acme"}, {"kind", "company"}, {"name", "Acme"}},
        json{{"id", "hr"}, {"kind", "department"}, {"name", "HR"}, {"parent", "acme"}}}) {
    ASSERT_EQ(s.Post("/v1/units", unit, kAdmin.token).status, 201);
  }
  ASSERT_EQ(s.Post("/v1/cycles",
                   {{"id", "q1"}, {"name", "Q1"}, {"starts", "2024-01-01"}, {"ends", "2024-03-31"}},
                   kAdmin.token)
                .status,
            201);
  for (const char* owner : {"acme", "hr"}) {
    ASSERT_EQ(s.Post("/v1/objectives",
                     {{"id", std::string("o-") + owner},
                      {"cycle", "q1"},
                      {"owner", owner},
                      {"title", "Goal"}},
                     kAdmin.token)
                  .status,
              201);
  }
  auto ids = [&](const std::string& path) {
    Reply r = s.Get(path);
    std::vector<std::string> out;
    if (r.status != 200) return std::vector<std::string>{"HTTP " + std::to_string(r.status)};
    for (const json& item : r.json["items"]) out.push_back(item["id"].get<std::string>());
    return out;
  };
  using Ids = std::vector<std::string>;
  struct Pair {
    std::string a, b;
    Ids want_a, want_b;
  };
  // Each pair's two requests once shared a key ("path\nname=value…").
  const std::vector<Pair> pairs = {
      {"/v1/objectives?cycle=q1&owner=hr",
       "/v1/objectives?cycle=q1%0Aowner%3Dhr",
       {"o-hr"},
       {"HTTP 400"}},
      {"/v1/objectives?cycle%3Dq1=",
       "/v1/objectives?cycle=q1%3D",
       {"o-acme", "o-hr"},
       {"HTTP 400"}},
      {"/v1/objectives?cycle=q1&owner%26=hr",
       "/v1/objectives?cycle=q1%0Aowner%26%3Dhr",
       {"o-acme", "o-hr"},
       {"HTTP 400"}},
      {"/v1/objectives?include_archived=false&owner=acme",
       "/v1/objectives?include_archived=false%0Aowner%3Dacme",
       {"o-acme"},
       {"HTTP 400"}},
  };
  int writes = 0;
  auto move_the_log = [&] {  // a new seq: the cache starts afresh
    ASSERT_EQ(s.Post("/v1/units",
                     {{"id", "t-" + std::to_string(++writes)},
                      {"kind", "team"},
                      {"name", "T"},
                      {"parent", "hr"}},
                     kAdmin.token)
                  .status,
              201);
  };
  for (const Pair& p : pairs) {
    SCOPED_TRACE(p.a + " / " + p.b);
    for (bool a_first : {true, false}) {
      move_the_log();
      for (int round = 0; round < 2; ++round) {  // the second round from the cache
        if (a_first) {
          EXPECT_EQ(ids(p.a), p.want_a);
        }
        EXPECT_EQ(ids(p.b), p.want_b);
        if (!a_first) {
          EXPECT_EQ(ids(p.a), p.want_a);
        }
      }
    }
  }
  // Parameters a route does not read change nothing (and are not kept apart).
  EXPECT_EQ(ids("/v1/objectives?owner=hr&utm=1"), Ids{"o-hr"});
  EXPECT_EQ(ids("/v1/objectives?owner=hr&utm=2"), Ids{"o-hr"});
  EXPECT_TRUE(s.Stop());
}

// Every cached read names each query parameter its handler reads (its
// CacheBy): okrd logs `uncacheable_read` for one that reads another. Each
// cached route is asked, first pages and next pages, and the log checked.
TEST(Transport, EveryCachedReadNamesTheParametersItReads) {
  Okrd s(WithAdmin());
  ASSERT_TRUE(s.Start());
  auto post = [&](const std::string& path, const json& body) {
    Reply r = s.Post(path, body, kAdmin.token);
    ASSERT_EQ(r.status, 201) << path << " " << r;
  };
  const uint64_t acme_seq = s.HeadSeq() + 1;  // after the log's key event
  post("/v1/units", {{"id", "acme"}, {"kind", "company"}, {"name", "Acme"}});
  post("/v1/units", {{"id", "hr"}, {"kind", "department"}, {"name", "HR"}, {"parent", "acme"}});
  post("/v1/cycles",
       {{"id", "q1"}, {"name", "Q1"}, {"starts", "2024-01-01"}, {"ends", "2024-03-31"}});
  post("/v1/cycles",
       {{"id", "q2"}, {"name", "Q2"}, {"starts", "2024-04-01"}, {"ends", "2024-06-30"}});
  for (const char* id : {"o-1", "o-2"}) {
    post("/v1/objectives", {{"id", id}, {"cycle", "q1"}, {"owner", "hr"}, {"title", "Goal"}});
  }
  post("/v1/key-results", {{"id", "kr-1"}, {"objective", "o-1"}, {"title", "KR"}, {"target", 10}});
  for (int v : {3, 5}) post("/v1/key-results/kr-1/check-ins", {{"value", v}});

  const std::vector<std::string> reads = {
      "/v1/units?limit=1",
      "/v1/units/acme?as_of=" + std::to_string(acme_seq),
      "/v1/cycles?limit=1",
      "/v1/cycles/q1",
      "/v1/cycles/q1/review",
      "/v1/cycles/q1/review?format=md",
      "/v1/cycles/q1/review?format=csv",
      "/v1/objectives?limit=1&cycle=q1&owner=hr&include_archived=true",
      "/v1/objectives/o-1",
      "/v1/key-results/kr-1",
      "/v1/key-results/kr-1/check-ins?limit=1",
      "/v1/cascade?cycle=q1&root=hr",
      "/v1/diff?from=1&limit=1&cycle=q1",
      "/v1/log/checkpoint?size=2",
      "/v1/log/proof/inclusion?seq=1&size=2",
      "/v1/log/proof/consistency?from=1&to=2"};
  for (const std::string& path : reads) {
    SCOPED_TRACE(path);
    Reply r = s.Get(path);
    EXPECT_EQ(r.status, 200) << r;
    // The next page, where there is one.
    if (r.json.is_object() && r.json.contains("next") && r.json["next"].is_string()) {
      Reply next = s.Get(path + "&cursor=" + UrlEncode(r.json["next"].get<std::string>()));
      EXPECT_EQ(next.status, 200) << next;
    }
  }
  ASSERT_TRUE(s.Stop());
  std::string log = s.LogTail(SIZE_MAX);
  size_t at = log.find("uncacheable_read");
  EXPECT_EQ(at, std::string::npos) << log.substr(at == std::string::npos ? 0 : at, 200);
}

// --- SendPieces: okrd's writer of answers that go straight to the socket ---

// A connected pair whose sending side buffers only a few KiB, so a write
// of a MiB is taken in many parts.
struct SmallBufferPair {
  SmallBufferPair() {
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    int bytes = 4096;
    ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
    ::setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  }
  ~SmallBufferPair() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  int fds[2] = {-1, -1};
};

TEST(SendPiecesTest, EveryPieceArrivesWholeAndInOrderThroughASmallBuffer) {
  SmallBufferPair pair;
  std::string head = "100000\r\n", body, tail = "\r\n";
  for (int i = 0; body.size() < (1u << 20); ++i) body += std::to_string(i) + ",";
  std::string received;
  std::thread reader([&] {
    char buf[1000];
    int reads = 0;
    while (received.size() < head.size() + body.size() + tail.size()) {
      ssize_t n = ::read(pair.fds[1], buf, sizeof buf);
      if (n <= 0) break;
      received.append(buf, static_cast<size_t>(n));
      if (++reads % 64 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  EXPECT_TRUE(okr::api::SendPieces(pair.fds[0], {head, "", body, tail}, 5000));
  reader.join();
  EXPECT_EQ(received.size(), head.size() + body.size() + tail.size());
  EXPECT_TRUE(received == head + body + tail) << "a piece was lost, repeated or reordered";
}

TEST(SendPiecesTest, AReaderThatNeverReadsIsLeftAfterTheTimeout) {
  SmallBufferPair pair;
  const std::string big(1u << 20, 'x');
  auto start = Clock::now();
  EXPECT_FALSE(okr::api::SendPieces(pair.fds[0], {big}, 200));
  EXPECT_GE(SecondsSince(start), 0.2);
  EXPECT_LT(SecondsSince(start), 5.0);
}

TEST(SendPiecesTest, APeerThatClosedIsAFailureNotASignal) {
  SmallBufferPair pair;
  ::close(pair.fds[1]);
  pair.fds[1] = -1;
  EXPECT_FALSE(okr::api::SendPieces(pair.fds[0], {"answer"}, 1000));
}

}  // namespace
}  // namespace okr::testing
