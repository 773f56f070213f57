// okrd's live feeds under load (docs/BENCHMARKS.md, "Live feeds"); run by
// tools/bench_streams.sh beside the raw ceilings:
//   bench_streams scan --data DIR
//       RocksDB alone: every event read and decoded (Cap'n Proto), events/s
//   bench_streams drain --port P --token T
//       one SSE client reads /v1/events/stream from the log's start to the
//       head it was told: events/s and MB/s
//   bench_streams latency --port P --token T --kr ID [--rate N] [--seconds S]
//       check-ins posted at N/s; for each, the time from its acknowledgement
//       to its arrival at an events-stream and at a changes-stream client
//   bench_streams hook --port P --token ADMIN --kr ID [--rate N] [--seconds S]
//       a webhook to a receiver in this process: each check-in's time from
//       acknowledgement to arrival, then the events/s one webhook delivers
//       from a burst, beside a bare client posting to the same receiver
//   bench_streams hold --port P --streams N
//       N change streams open and read until stdin closes; prints events read
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "eventstore/event_codec.h"
#include "eventstore/event_store.h"

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string Arg(int argc, char** argv, const std::string& name, const std::string& fallback = "") {
  for (int i = 2; i + 1 < argc; ++i) {
    if (argv[i] == name) return argv[i + 1];
  }
  return fallback;
}

// An SSE stream read off a raw socket: hands each event's id to `on_id`
// as its frame completes.
class SseReader {
 public:
  bool Open(int port, const std::string& path, const std::string& token) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return false;
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
    req += "\r\n";
    if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
      return false;
    while (buf_.find("\r\n\r\n") == std::string::npos) {
      if (!Receive(10'000)) return false;
    }
    size_t end = buf_.find("\r\n\r\n");
    head_ = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    return head_.rfind("HTTP/1.1 200", 0) == 0;
  }
  ~SseReader() {
    if (fd_ >= 0) ::close(fd_);
  }
  // The value of a header of the answer's head ("" when absent).
  std::string Header(const std::string& name) const {
    size_t at = head_.find("\r\n" + name + ": ");
    if (at == std::string::npos) return "";
    at += name.size() + 4;
    return head_.substr(at, head_.find("\r\n", at) - at);
  }
  // Reads what arrives within `timeout_ms`, calling on_id for each event;
  // false when the stream ended or nothing came.
  template <typename OnId>
  bool Pump(int timeout_ms, OnId on_id) {
    if (!Receive(timeout_ms)) return false;
    size_t at = 0, end;
    while ((end = buf_.find("\n\n", at)) != std::string::npos) {
      if (buf_.compare(at, 4, "id: ") == 0) on_id(std::stoull(buf_.substr(at + 4, 20)));
      at = end + 2;
    }
    bytes_ += at;
    buf_.erase(0, at);
    return true;
  }
  uint64_t bytes() const { return bytes_; }

 private:
  bool Receive(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    char chunk[1 << 16];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string head_, buf_;
  uint64_t bytes_ = 0;
};

int Scan(const std::string& dir) {
  okr::OpenOptions options;
  options.read_only = true;
  options.verify_on_open = false;
  auto store = okr::EventStore::Open(dir, options);
  if (!store.ok()) {
    std::cerr << store.status().ToString() << "\n";
    return 1;
  }
  const uint64_t head = (*store)->head().seq;
  auto start = Clock::now();
  uint64_t decoded = 0;
  (*store)->Scan(1, head, [&](uint64_t, std::string_view bytes) {
    auto ev = okr::DecodedEvent::Decode(bytes);
    decoded += ev.ok() && (*ev)->event().getSeq() > 0;
    return true;
  });
  double s = SecondsSince(start);
  std::printf("{\"events\":%llu,\"seconds\":%.3f,\"events_per_s\":%.0f}\n",
              static_cast<unsigned long long>(decoded), s, decoded / s);
  return 0;
}

int Drain(int port, const std::string& token) {
  SseReader sse;
  auto start = Clock::now();
  if (!sse.Open(port, "/v1/events/stream?after=0", token)) return 1;
  const uint64_t head = std::stoull(sse.Header("Okrd-Head-Seq"));
  uint64_t last = 0, events = 0;
  while (last < head && sse.Pump(10'000, [&](uint64_t id) {
    last = id;
    ++events;
  })) {
  }
  double s = SecondsSince(start);
  std::printf("{\"events\":%llu,\"seconds\":%.3f,\"events_per_s\":%.0f,\"mb_per_s\":%.1f}\n",
              static_cast<unsigned long long>(events), s, events / s, sse.bytes() / s / 1e6);
  return last == head ? 0 : 1;
}

// p50 and p99 of `ms`, sorted in place.
std::pair<double, double> Percentiles(std::vector<double>& ms) {
  if (ms.empty()) return {0, 0};
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 99 / 100)]};
}

// Arrival times of the seqs one stream delivered.
struct Arrivals {
  std::mutex mu;
  std::map<uint64_t, Clock::time_point> at;
};

void Follow(int port, const std::string& path, const std::string& token,
            const std::atomic<bool>& done, Arrivals* out) {
  SseReader sse;
  if (!sse.Open(port, path, token)) return;
  while (!done) {
    sse.Pump(100, [&](uint64_t id) {
      std::lock_guard<std::mutex> lock(out->mu);
      out->at.emplace(id, Clock::now());
    });
  }
}

int Latency(int argc, char** argv, int port, const std::string& token) {
  const std::string kr = Arg(argc, argv, "--kr");
  const int rate = std::stoi(Arg(argc, argv, "--rate", "200"));
  const double seconds = std::stod(Arg(argc, argv, "--seconds", "10"));
  httplib::Client client("127.0.0.1", port);
  client.set_tcp_nodelay(true);
  const httplib::Headers auth = {{"Authorization", "Bearer " + token}};
  auto health = client.Get("/healthz");
  const uint64_t head = nlohmann::json::parse(health->body)["head_seq"];
  std::atomic<bool> done{false};
  Arrivals events, changes;
  const std::string after = "?after=" + std::to_string(head);
  std::thread a([&] { Follow(port, "/v1/events/stream" + after, token, done, &events); });
  std::thread b([&] { Follow(port, "/v1/changes/stream" + after, token, done, &changes); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::map<uint64_t, Clock::time_point> acked;
  std::vector<double> post_ms;
  const auto start = Clock::now();
  for (int i = 0; SecondsSince(start) < seconds; ++i) {
    std::this_thread::sleep_until(start + std::chrono::microseconds(i * 1'000'000LL / rate));
    auto sent = Clock::now();
    auto r = client.Post("/v1/key-results/" + kr + "/check-ins", auth, R"({"value": 42})",
                         "application/json");
    auto now = Clock::now();
    if (!r || r->status != 201) continue;
    post_ms.push_back(std::chrono::duration<double, std::milli>(now - sent).count());
    acked.emplace(nlohmann::json::parse(r->body)["seq"].get<uint64_t>(), now);
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  done = true;
  a.join();
  b.join();
  auto delays = [&](Arrivals& got, size_t* missing) {
    std::vector<double> ms;
    std::lock_guard<std::mutex> lock(got.mu);
    for (const auto& [seq, t] : acked) {
      auto it = got.at.find(seq);
      if (it == got.at.end()) {
        ++*missing;
        continue;
      }
      ms.push_back(std::chrono::duration<double, std::milli>(it->second - t).count());
    }
    return ms;
  };
  size_t missing_events = 0, missing_changes = 0;
  auto ev = delays(events, &missing_events);
  auto ch = delays(changes, &missing_changes);
  auto [post50, post99] = Percentiles(post_ms);
  auto [ev50, ev99] = Percentiles(ev);
  auto [ch50, ch99] = Percentiles(ch);
  std::printf(
      "{\"writes\":%zu,\"post_ms\":[%.3f,%.3f],\"events_ack_to_arrival_ms\":[%.3f,%.3f],"
      "\"changes_ack_to_arrival_ms\":[%.3f,%.3f],\"missing\":[%zu,%zu]}\n",
      acked.size(), post50, post99, ev50, ev99, ch50, ch99, missing_events, missing_changes);
  return missing_events + missing_changes == 0 ? 0 : 1;
}

int Hold(int port, int streams) {
  std::atomic<bool> done{false};
  std::atomic<uint64_t> read{0};
  std::vector<std::thread> threads;
  const uint64_t head = [&] {
    httplib::Client client("127.0.0.1", port);
    return nlohmann::json::parse(client.Get("/healthz")->body)["head_seq"].get<uint64_t>();
  }();
  for (int i = 0; i < streams; ++i) {
    threads.emplace_back([&] {
      SseReader sse;
      if (!sse.Open(port, "/v1/changes/stream?after=" + std::to_string(head), "")) return;
      while (!done) sse.Pump(100, [&](uint64_t) { ++read; });
    });
  }
  std::cout << "holding " << streams << " streams" << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  done = true;
  for (auto& t : threads) t.join();
  std::printf("{\"streams\":%d,\"events_read\":%llu}\n", streams,
              static_cast<unsigned long long>(read.load()));
  return 0;
}

// A webhook receiver on a loopback port: answers 200 and notes when each
// Okrd-Seq arrived.
struct Receiver {
  httplib::Server server;
  Arrivals got;
  std::thread thread;
  int port = 0;
  Receiver() {
    server.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      uint64_t seq = std::stoull(req.get_header_value("Okrd-Seq"));
      std::lock_guard<std::mutex> lock(got.mu);
      got.at.emplace(seq, Clock::now());
      res.status = 200;
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~Receiver() {
    server.stop();
    thread.join();
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(got.mu);
    return got.at.size();
  }
};

// Webhook delivery: ack-to-arrival latency at `rate` writes/s, then the
// events/s one webhook delivers when a burst is waiting, beside a bare
// cpp-httplib client posting the same bodies to the same receiver, a new
// connection each (as a delivery makes).
int Hook(int argc, char** argv, int port, const std::string& token) {
  const std::string kr = Arg(argc, argv, "--kr");
  const int rate = std::stoi(Arg(argc, argv, "--rate", "200"));
  const double seconds = std::stod(Arg(argc, argv, "--seconds", "10"));
  const int burst = std::stoi(Arg(argc, argv, "--burst", "3000"));
  Receiver rx;
  httplib::Client client("127.0.0.1", port);
  const httplib::Headers auth = {{"Authorization", "Bearer " + token}};
  const std::string id = "bench-" + std::to_string(::getpid());
  nlohmann::json hook = {{"id", id},
                         {"url", "http://127.0.0.1:" + std::to_string(rx.port) + "/hook"},
                         {"secret", "bench-secret-0123456789abcdef"},
                         {"types", {"*"}}};
  auto reg = client.Post("/v1/webhooks", auth, hook.dump(), "application/json");
  if (!reg || reg->status != 201) return 1;
  const std::string path = "/v1/key-results/" + kr + "/check-ins";
  std::map<uint64_t, Clock::time_point> acked;
  auto start = Clock::now();
  for (int i = 0; SecondsSince(start) < seconds; ++i) {
    std::this_thread::sleep_until(start + std::chrono::microseconds(i * 1'000'000LL / rate));
    auto r = client.Post(path, auth, R"({"value": 42})", "application/json");
    if (r && r->status == 201)
      acked.emplace(nlohmann::json::parse(r->body)["seq"].get<uint64_t>(), Clock::now());
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  size_t missing = 0;
  std::vector<double> ms;
  {
    std::lock_guard<std::mutex> lock(rx.got.mu);
    for (const auto& [seq, t] : acked) {
      auto it = rx.got.at.find(seq);
      if (it == rx.got.at.end()) {
        ++missing;
        continue;
      }
      ms.push_back(std::chrono::duration<double, std::milli>(it->second - t).count());
    }
  }
  auto [p50, p99] = Percentiles(ms);
  // The burst: written while the webhook's receiver is fast, delivered
  // one POST at a time in seq order.
  const size_t before = rx.count();
  std::vector<std::thread> writers;
  for (int w = 0; w < 8; ++w) {
    writers.emplace_back([&] {
      httplib::Client c("127.0.0.1", port);
      for (int i = 0; i < burst / 8; ++i) c.Post(path, auth, R"({"value": 7})", "application/json");
    });
  }
  auto burst_start = Clock::now();
  for (auto& t : writers) t.join();
  const size_t want = before + static_cast<size_t>(burst / 8 * 8);
  while (rx.count() < want && SecondsSince(burst_start) < 120)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const double delivered_per_s = (rx.count() - before) / SecondsSince(burst_start);
  // The ceiling: the same receiver, a bare client, a connection a POST.
  const std::string body(600, 'x');
  auto bare_start = Clock::now();
  int bare = 0;
  for (; SecondsSince(bare_start) < 3; ++bare) {
    httplib::Client c("127.0.0.1", rx.port);
    c.Post("/hook", {{"Okrd-Seq", std::to_string(1'000'000'000 + bare)}}, body, "application/json");
  }
  const double bare_per_s = bare / SecondsSince(bare_start);
  client.Delete("/v1/webhooks/" + id, auth);
  std::printf(
      "{\"writes\":%zu,\"ack_to_receiver_ms\":[%.3f,%.3f],\"missing\":%zu,"
      "\"delivered_per_s\":%.0f,\"bare_posts_per_s\":%.0f}\n",
      acked.size(), p50, p99, missing, delivered_per_s, bare_per_s);
  return missing == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_streams scan|drain|latency|hold ...\n";
    return 2;
  }
  const std::string mode = argv[1];
  if (mode == "scan") return Scan(Arg(argc, argv, "--data"));
  const int port = std::stoi(Arg(argc, argv, "--port", "0"));
  const std::string token = Arg(argc, argv, "--token");
  if (mode == "drain") return Drain(port, token);
  if (mode == "latency") return Latency(argc, argv, port, token);
  if (mode == "hook") return Hook(argc, argv, port, token);
  if (mode == "hold") return Hold(port, std::stoi(Arg(argc, argv, "--streams", "100")));
  std::cerr << "bench_streams: unknown mode " << mode << "\n";
  return 2;
}
