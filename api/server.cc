#include "api/server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cassert>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <vector>

#include "api/routes/request.h"
#include "api/response_cache.h"
#include "eventstore/event_json.h"
#include "eventstore/base/time.h"
#include "projections/read/views.h"

namespace okr::api {

using nlohmann::json;

namespace {

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int HttpStatus(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk: return 200;
    case Status::Code::kNotFound: return 404;
    case Status::Code::kConflict: return 412;
    case Status::Code::kAlreadyExists: return 409;
    case Status::Code::kFailedPrecondition: return 409;
    case Status::Code::kPermissionDenied: return 403;
    case Status::Code::kInvalid: return 422;
    case Status::Code::kCorruption: return 500;
    case Status::Code::kIOError: return 503;
  }
  return 500;
}

const char* ErrorCode(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk: return "ok";
    case Status::Code::kNotFound: return "not_found";
    case Status::Code::kConflict: return "version_mismatch";
    case Status::Code::kAlreadyExists: return "already_exists";
    case Status::Code::kFailedPrecondition: return "conflict";
    case Status::Code::kPermissionDenied: return "forbidden";
    case Status::Code::kInvalid: return "invalid";
    case Status::Code::kCorruption: return "internal";
    case Status::Code::kIOError: return "unavailable";
  }
  return "internal";
}

const char* DefaultErrorCode(int status) {
  switch (status) {
    case 400: return "malformed";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 408: return "request_timeout";
    case 409: return "conflict";
    case 412: return "version_mismatch";
    case 413: return "too_large";
    case 414: return "uri_too_long";
    case 415: return "unsupported_encoding";
    case 422: return "invalid";
    case 431: return "headers_too_large";
    case 503: return "unavailable";
    default: return status >= 500 ? "internal" : "error";
  }
}

json ErrorBody(const std::string& code, const std::string& message, const std::string& field) {
  return {{"error", {{"code", code}, {"message", message}, {"field", field.empty() ? json(nullptr) : json(field)}}}};
}

bool CreatesSomething(WriteRoute r) {
  switch (r) {
    case WriteRoute::kCreateUnit:
    case WriteRoute::kCreateCycle:
    case WriteRoute::kCreateObjective:
    case WriteRoute::kCreateKeyResult:
    case WriteRoute::kCheckIn:
    case WriteRoute::kCorrection:
    case WriteRoute::kComment:
    case WriteRoute::kReview:
      return true;
    default:
      return false;
  }
}

// Units and cycles are the organisation's frame: admins only.
bool AdminOnly(WriteRoute r) {
  switch (r) {
    case WriteRoute::kCreateUnit:
    case WriteRoute::kUpdateUnit:
    case WriteRoute::kRetireUnit:
    case WriteRoute::kCreateCycle:
    case WriteRoute::kUpdateCycle:
    case WriteRoute::kCloseCycle:
    case WriteRoute::kReopenCycle:
      return true;
    default:
      return false;
  }
}

enum class Access {
  kPublic,
  kStateRead,
  kCachedStateRead,  // a state read whose answer depends only on route, query and seq
  kAuditRead,
  kWrite,
};

// A diff page reads the log this many events at a time and takes the
// projection's lock once per batch, so a follower folding new events
// waits for one batch, never for a whole page.
constexpr uint64_t kDiffEventsPerLock = 1024;

// A page cursor: "<as_of>.<position>". It pins the state the first page
// answered from (lists: its as_of; diff: its `to`), so every page of one
// listing answers from the same state however the log grows, and says
// where the previous page ended (an id, a position in a series, or a
// diff's "<seq>.<rows of that event shown>"). Opaque to clients.
struct PageCursor {
  uint64_t as_of = 0;
  std::string position;
};

std::optional<PageCursor> ParsePageCursor(std::string_view text) {
  auto dot = text.find('.');
  if (dot == std::string_view::npos || dot + 1 == text.size()) return std::nullopt;
  auto as_of = ParseUnsigned(text.substr(0, dot));
  if (!as_of) return std::nullopt;
  return PageCursor{*as_of, std::string(text.substr(dot + 1))};
}

std::string PageCursorText(uint64_t as_of, const std::string& position) {
  return std::to_string(as_of) + "." + position;
}

// The threads serving connections. cpp-httplib holds one thread for a
// connection's whole life, idle seconds and slow clients included, so a
// fixed pool of N threads stops serving anyone while N clients sit idle or
// trickle a request in byte by byte. This keeps `ready` threads and starts
// more whenever a connection would otherwise wait, up to `max`; a thread
// beyond `ready` ends after kSpareThreadIdleSeconds without work. With
// `max` threads busy, at most `max_queued` connections wait for one:
// Submit() refuses the next. On shutdown it serves what is queued, then
// joins every thread. Thread-safe.
class ConnectionThreads {
 public:
  ConnectionThreads(size_t ready, size_t max, size_t max_queued)
      : ready_(ready), max_(std::max(ready, max)), max_queued_(max_queued) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < ready_; ++i) StartLocked();
  }
  ~ConnectionThreads() { Shutdown(); }

  // Queues `job` for a thread; false (and `job` dropped unrun) when every
  // thread is busy, no more may start, and `max_queued` jobs wait already.
  bool Submit(std::function<void()> job) {
    std::lock_guard<std::mutex> lock(mu_);
    for (std::thread& t : ended_) t.join();
    ended_.clear();
    if (stopping_) return false;
    // Jobs beyond the idle threads wait, unless a thread may yet start.
    size_t waiting = jobs_.size() > idle_ ? jobs_.size() - idle_ : 0;
    if (jobs_.size() >= idle_ && threads_.size() >= max_ && waiting >= max_queued_) return false;
    jobs_.push_back(std::move(job));
    if (idle_ < jobs_.size() && threads_.size() < max_) StartLocked();
    cv_.notify_one();
    return true;
  }

  void Shutdown() {
    std::map<std::thread::id, std::thread> running;
    std::vector<std::thread> ended;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      running.swap(threads_);
      ended.swap(ended_);
    }
    cv_.notify_all();
    for (auto& [id, t] : running) t.join();
    for (std::thread& t : ended) t.join();
  }

 private:
  // A thread counts as idle from its start until it takes a job, so that
  // Submit() never counts a job as waiting that a starting thread will take.
  void StartLocked() {
    ++idle_;
    std::thread t([this] { Work(); });
    auto id = t.get_id();
    threads_.emplace(id, std::move(t));
  }

  void Work() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      bool woken = cv_.wait_for(lock, std::chrono::seconds(kSpareThreadIdleSeconds),
                                [&] { return stopping_ || !jobs_.empty(); });
      if (!jobs_.empty()) {
        std::function<void()> job = std::move(jobs_.front());
        jobs_.pop_front();
        --idle_;
        lock.unlock();
        job();
        lock.lock();
        ++idle_;
        continue;
      }
      if (stopping_) break;
      if (!woken && threads_.size() > ready_) {
        // A spare thread without work: it ends, and the next Submit joins it.
        auto self = threads_.find(std::this_thread::get_id());
        assert(self != threads_.end());
        ended_.push_back(std::move(self->second));
        threads_.erase(self);
        break;
      }
    }
    --idle_;
  }

  const size_t ready_, max_, max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::map<std::thread::id, std::thread> threads_;
  std::vector<std::thread> ended_;  // spare threads that ended, to be joined
  size_t idle_ = 0;                 // threads without a job
  bool stopping_ = false;
};

using SteadyClock = std::chrono::steady_clock;

int MillisUntil(SteadyClock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, INT32_MAX));
}

// A connection as cpp-httplib reads and writes it, with the limits its
// own stream lacks. A request — line, headers and body — must arrive
// within kRequestReceiveSeconds of its first byte (a client trickling one
// byte a second is cut off), its line and headers within
// kMaxHeaderBlockBytes (cpp-httplib limits each header line, not how many
// there are). Hands cpp-httplib the line and headers only: the body is
// read by ReceiveBody (from cpp-httplib's setup-request hook), after which
// EndRequest() makes reads answer end-of-stream until the next request,
// so cpp-httplib never reads a body itself.
class GuardedStream final : public httplib::Stream {
 public:
  GuardedStream(int sock, time_t write_timeout_s)
      : sock_(sock), write_timeout_ms_(static_cast<int>(write_timeout_s * 1000)) {}

  // Waits up to `idle` for the next request (or for bytes already here);
  // false when none comes or `stopping` turns true. Starts the request's
  // receive deadline.
  bool WaitForRequest(std::chrono::seconds idle, const std::function<bool()>& stopping) {
    assert(state_ == State::kBetween || state_ == State::kReceived);
    auto until = SteadyClock::now() + idle;
    while (off_ == len_) {
      if (stopping()) return false;
      int wait = std::min(MillisUntil(until), 100);
      int ready = Poll(POLLIN, wait);
      if (ready < 0) return false;
      if (ready > 0) break;
      if (MillisUntil(until) == 0) return false;
    }
    state_ = State::kReceiving;
    in_headers_ = true;
    header_bytes_ = 0;
    tail_ = 0;
    deadline_ = SteadyClock::now() + std::chrono::seconds(kRequestReceiveSeconds);
    return true;
  }
  // The request is in (`refused`: okrd refused it, perhaps before its body).
  void EndRequest(bool refused) {
    assert(state_ == State::kReceiving && !in_headers_);
    state_ = refused ? State::kRefused : State::kReceived;
  }
  // The request was read to its end and served: the connection may carry another.
  bool reusable() const { return state_ == State::kReceived && !broken_; }
  // The request missed its receive deadline.
  bool timed_out() const { return timed_out_; }
  // The client may still be sending a request okrd has not read (and
  // will not): it is refused, or broke a limit while it still sends.
  bool unread_input() const {
    return (state_ == State::kReceiving || state_ == State::kRefused) && !timed_out_ && !peer_closed_;
  }

  bool is_readable() const override {
    return off_ < len_ || state_ != State::kReceiving || Poll(POLLIN, MillisUntil(deadline_)) > 0;
  }
  bool is_writable() const override { return Poll(POLLOUT, write_timeout_ms_) > 0; }

  ssize_t read(char* ptr, size_t size) override {
    if (state_ == State::kReceived || state_ == State::kRefused) return 0;  // the body was read (or never will be)
    if (broken_ || state_ != State::kReceiving) return -1;
    if (off_ == len_) {
      int wait = MillisUntil(deadline_);
      int ready = wait == 0 ? 0 : Poll(POLLIN, wait);
      if (ready <= 0) {
        timed_out_ = ready == 0;
        broken_ = true;
        return -1;
      }
      ssize_t n;
      do {
        n = ::recv(sock_, buf_, sizeof buf_, 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) {
        peer_closed_ = true;
        broken_ = true;
        return n;
      }
      off_ = 0;
      len_ = static_cast<size_t>(n);
    }
    size_t n = std::min(size, len_ - off_);
    if (in_headers_) {
      // Hand out the headers up to the blank line that ends them.
      for (size_t i = 0; i < n; ++i) {
        tail_ = (tail_ << 8) | static_cast<unsigned char>(buf_[off_ + i]);
        if (tail_ == 0x0d0a0d0a) {  // CR LF CR LF
          in_headers_ = false;
          n = i + 1;
          break;
        }
      }
      header_bytes_ += n;
      if (in_headers_ && header_bytes_ > kMaxHeaderBlockBytes) {
        broken_ = true;
        return -1;
      }
    }
    std::memcpy(ptr, buf_ + off_, n);
    off_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do {
      n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getpeername(sock_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) Describe(addr, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(sock_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) Describe(addr, ip, port);
  }
  socket_t socket() const override { return sock_; }

  static void Describe(const sockaddr_storage& addr, std::string& ip, int& port) {
    char text[INET6_ADDRSTRLEN] = {};
    if (addr.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
      ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
      port = ntohs(a->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
      ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
      port = ntohs(a->sin6_port);
    }
    ip = text;
  }

 private:
  enum class State {
    kBetween,    // no request yet
    kReceiving,  // a request's line, headers or body are arriving
    kReceived,   // the request is in; reads answer end-of-stream
    kRefused,    // the request was refused; reads answer end-of-stream
  };

  int Poll(short events, int timeout_ms) const {
    pollfd p{sock_, events, 0};
    int r;
    do {
      r = ::poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r > 0 && (p.revents & (POLLERR | POLLNVAL))) return -1;
    return r;
  }

  int sock_;
  int write_timeout_ms_;
  char buf_[4096];
  size_t off_ = 0, len_ = 0;
  State state_ = State::kBetween;
  bool in_headers_ = false;
  bool broken_ = false;       // a limit broken, or the peer gone: the connection closes
  bool timed_out_ = false;    // the receive deadline passed
  bool peer_closed_ = false;  // the peer closed or reset the connection
  size_t header_bytes_ = 0;
  uint32_t tail_ = 0;
  SteadyClock::time_point deadline_{};
};

// --- request bodies ---
//
// okrd reads every request body itself, whatever its framing, under
// kMaxBodyBytes and the receive deadline: cpp-httplib (0.11) enforces its
// payload limit only on a Content-Length, reads chunked bodies and bodies
// without a length (until the client closes) without limit, inflates
// gzip, deflate and br bodies without limit, and reads a too-large
// Content-Length body to its end before answering 413.

// A request refused while it was received; the pre-routing handler
// (Routes) answers it, and the connection closes.
struct Refusal {
  int status;
  std::string field;  // the header at fault
  std::string message;
};

// The refusal travels to the pre-routing handler inside the request, under
// header names no client can send (a header's name ends at its first ':').
constexpr char kRefusedStatusHeader[] = "okrd:refused-status";
constexpr char kRefusedFieldHeader[] = "okrd:refused-field";
constexpr char kRefusedMessageHeader[] = "okrd:refused-message";

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

struct BodyFraming {
  bool chunked = false;
  uint64_t length = 0;  // when not chunked; 0: no body
};

Refusal TooLarge() {
  return {413, "", "body larger than " + std::to_string(kMaxBodyBytes) + " bytes"};
}

// How the body of `req` arrives (RFC 9112 §6), from the headers as
// cpp-httplib parsed them. Neither Content-Length nor Transfer-Encoding:
// no body, whatever the method (RFC 9112 §6.3) — okrd never reads until
// the client closes. Refused: framing that reads two ways (both headers,
// or either twice), a transfer coding but chunked, a Content-Length that
// is not a number or is over kMaxBodyBytes, and a compressed body.
std::optional<Refusal> FrameBody(const httplib::Request& req, BodyFraming* framing) {
  size_t codings = req.get_header_value_count("Transfer-Encoding");
  size_t lengths = req.get_header_value_count("Content-Length");
  if (codings + lengths > 1) {
    return Refusal{400, codings > 0 ? "Transfer-Encoding" : "Content-Length",
                   "at most one Content-Length or one Transfer-Encoding header"};
  }
  if (codings == 1) {
    if (!EqualsIgnoreCase(req.get_header_value("Transfer-Encoding"), "chunked")) {
      return Refusal{400, "Transfer-Encoding", "the only transfer coding okrd takes is chunked"};
    }
    framing->chunked = true;
  } else if (lengths == 1) {
    std::string text = req.get_header_value("Content-Length");
    bool digits = !text.empty() && text.size() <= 19 &&
                  std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    if (!digits) return Refusal{400, "Content-Length", "Content-Length must be a number of bytes"};
    framing->length = std::stoull(text);
    if (framing->length > kMaxBodyBytes) return TooLarge();
  }
  if (framing->chunked || framing->length > 0) {
    auto [from, to] = req.headers.equal_range("Content-Encoding");
    for (auto it = from; it != to; ++it) {
      if (!EqualsIgnoreCase(it->second, "identity")) {
        return Refusal{415, "Content-Encoding", "okrd takes request bodies uncompressed (no Content-Encoding)"};
      }
    }
  }
  return std::nullopt;
}

// What a body that stopped arriving is refused with.
Refusal Unfinished(const GuardedStream& stream) {
  if (stream.timed_out()) {
    return {408, "", "the request did not arrive within " + std::to_string(kRequestReceiveSeconds) + " s"};
  }
  return {400, "", "the body ended early or broke a limit"};
}

// Appends `n` bytes from `stream` to *body.
bool ReadBytes(GuardedStream& stream, size_t n, std::string* body) {
  size_t at = body->size();
  body->resize(at + n);
  while (n > 0) {
    ssize_t got = stream.read(body->data() + at, n);
    if (got <= 0) return false;
    at += static_cast<size_t>(got);
    n -= static_cast<size_t>(got);
  }
  return true;
}

int HexValue(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

// One line of chunked framing into *line, without its CR LF (which it
// must end with); false beyond kMaxChunkLineBytes or when the stream ends.
bool ReadChunkLine(GuardedStream& stream, std::string* line) {
  line->clear();
  char ch;
  while (line->size() <= kMaxChunkLineBytes && stream.read(&ch, 1) == 1) {
    if (ch == '\n') {
      if (line->empty() || line->back() != '\r') return false;
      line->pop_back();
      return true;
    }
    line->push_back(ch);
  }
  return false;
}

// A chunked body (RFC 9112 §7.1) into *body: chunk sizes in hex,
// extensions ignored, trailers read and dropped (kMaxHeaderBlockBytes at
// most). Refused the moment a chunk would take the body over kMaxBodyBytes.
std::optional<Refusal> ReadChunked(GuardedStream& stream, std::string* body) {
  const Refusal malformed{400, "Transfer-Encoding", "the chunked body is malformed"};
  std::string line;
  while (true) {
    if (!ReadChunkLine(stream, &line)) return stream.timed_out() ? Unfinished(stream) : malformed;
    size_t digits = 0;
    uint64_t size = 0;
    for (int v; digits < line.size() && (v = HexValue(line[digits])) >= 0; ++digits) {
      size = std::min<uint64_t>(size * 16 + v, kMaxBodyBytes + 1);  // saturates: over the limit is over
    }
    bool rest_ok = digits == line.size() || line[digits] == ';' || line[digits] == ' ' || line[digits] == '\t';
    if (digits == 0 || !rest_ok) return malformed;
    if (size > kMaxBodyBytes - body->size()) return TooLarge();
    if (size == 0) break;
    if (!ReadBytes(stream, size, body)) return Unfinished(stream);
    if (!ReadChunkLine(stream, &line)) return stream.timed_out() ? Unfinished(stream) : malformed;
    if (!line.empty()) return malformed;
  }
  for (size_t trailers = 0;; trailers += line.size() + 2) {
    if (trailers > kMaxHeaderBlockBytes) return Refusal{400, "Transfer-Encoding", "trailers over 64 KiB"};
    if (!ReadChunkLine(stream, &line)) return stream.timed_out() ? Unfinished(stream) : malformed;
    if (line.empty()) return std::nullopt;
  }
}

// Called (as cpp-httplib's setup-request hook) once a request's line and
// headers are in: reads its body, as FrameBody frames it, into req.body,
// then leaves `req` without a length, so that cpp-httplib reads no more.
// Answers Expect: 100-continue itself, and only for a body it will read.
std::optional<Refusal> ReceiveBody(GuardedStream& stream, httplib::Request& req) {
  bool invited = EqualsIgnoreCase(req.get_header_value("Expect"), "100-continue");
  req.headers.erase("Expect");
  BodyFraming framing;
  if (auto refused = FrameBody(req, &framing)) return refused;
  req.headers.erase("Content-Length");
  req.headers.erase("Transfer-Encoding");
  if (!framing.chunked && framing.length == 0) return std::nullopt;
  if (invited) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    if (stream.write(kContinue.data(), kContinue.size()) != static_cast<ssize_t>(kContinue.size())) {
      return Unfinished(stream);
    }
  }
  if (framing.chunked) return ReadChunked(stream, &req.body);
  req.body.reserve(framing.length);
  if (!ReadBytes(stream, framing.length, &req.body)) return Unfinished(stream);
  return std::nullopt;
}

// cpp-httplib's server, serving each connection through a GuardedStream
// (the keep-alive loop cpp-httplib runs, on that stream), behind two
// limits checked as each connection is accepted: connections per client
// address, and the bounded queue of ConnectionThreads. A connection over
// either is answered 503 with Retry-After and closed.
class GuardedHttpServer final : public httplib::Server {
 public:
  GuardedHttpServer(const ServerOptions& options, Metrics* metrics)
      : ready_threads_(std::max<size_t>(1, options.threads)),
        max_threads_(std::max(ready_threads_, options.max_threads)),
        max_per_address_(std::max<size_t>(1, options.max_connections_per_address)),
        metrics_(metrics) {
    new_task_queue = [this] {
      threads_ = std::make_unique<ConnectionThreads>(ready_threads_, max_threads_,
                                                     max_threads_ * kQueuedConnectionsPerThread);
      return new AdmitOnAcceptingThread(threads_.get());
    };
  }
  ~GuardedHttpServer() override {
    if (threads_) threads_->Shutdown();
  }

 private:
  // cpp-httplib hands each accepted socket to a TaskQueue; this one runs the
  // hand-over at once, on the accepting thread (process_and_close_socket
  // below admits the connection there), and at shutdown waits for the
  // connections being served.
  class AdmitOnAcceptingThread final : public httplib::TaskQueue {
   public:
    explicit AdmitOnAcceptingThread(ConnectionThreads* threads) : threads_(threads) {}
    void enqueue(std::function<void()> fn) override { fn(); }
    void shutdown() override { threads_->Shutdown(); }

   private:
    ConnectionThreads* threads_;
  };

  // On the accepting thread: admits `sock` to a worker thread, or refuses it.
  bool process_and_close_socket(socket_t sock) override {
    std::string address = PeerAddress(sock);
    if (!TakeAddressSlot(address)) {
      Refuse(sock, "per_address", "too many connections from this address; retry after one closes");
      return false;
    }
    bool queued = threads_->Submit([this, sock, address] {
      Serve(sock);
      ReleaseAddressSlot(address);
    });
    if (!queued) {
      ReleaseAddressSlot(address);
      Refuse(sock, "threads_busy", "every worker thread is busy; retry shortly");
    }
    return queued;
  }

  // On a worker thread: the connection's requests, one after another.
  void Serve(socket_t sock) {
    GuardedStream stream(sock, write_timeout_sec_);
    auto stopping = [this] { return svr_sock_ == INVALID_SOCKET; };
    auto receive_body = [&stream](httplib::Request& req) {
      std::optional<Refusal> refused = ReceiveBody(stream, req);
      stream.EndRequest(refused.has_value());
      if (refused) {
        req.headers.erase("Connection");
        req.set_header("Connection", "close");
        req.set_header(kRefusedStatusHeader, std::to_string(refused->status));
        req.set_header(kRefusedFieldHeader, refused->field);
        req.set_header(kRefusedMessageHeader, refused->message);
      }
    };
    for (size_t left = keep_alive_max_count_; left > 0; --left) {
      if (!stream.WaitForRequest(std::chrono::seconds(keep_alive_timeout_sec_), stopping)) break;
      bool closed = false;
      bool ok = process_request(stream, /*close_connection=*/left == 1, closed, receive_body);
      if (!ok || closed || !stream.reusable()) break;
    }
    if (stream.timed_out()) metrics_->RequestTimedOut();
    if (stream.unread_input()) Linger(sock);
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
  }

  // Stops sending (the answer is out) and reads away what the client still
  // sends, for at most kLingerMillis.
  static void Linger(socket_t sock) {
    ::shutdown(sock, SHUT_WR);
    auto until = SteadyClock::now() + std::chrono::milliseconds(kLingerMillis);
    char buf[16384];
    for (int left = MillisUntil(until); left > 0; left = MillisUntil(until)) {
      pollfd p{sock, POLLIN, 0};
      if (::poll(&p, 1, left) <= 0 || ::recv(sock, buf, sizeof buf, 0) <= 0) break;
    }
  }

  // Answers 503 with Retry-After and closes, without waiting: this is the
  // accepting thread. The answer fits an empty send buffer.
  void Refuse(socket_t sock, const char* reason, const std::string& message) {
    metrics_->ConnectionRefused(reason);
    std::string body = Dump(ErrorBody("unavailable", message, ""));
    char id[40];
    std::snprintf(id, sizeof id, "conn-%012llx", static_cast<unsigned long long>(++refused_connections_));
    std::string answer = "HTTP/1.1 503 Service Unavailable\r\n"
                         "Retry-After: " + std::to_string(kRetryAfterSeconds) + "\r\n"
                         "Content-Type: application/json; charset=utf-8\r\n"
                         "Content-Length: " + std::to_string(body.size()) + "\r\n"
                         "Connection: close\r\n"
                         "Cache-Control: no-store\r\n"
                         "X-Content-Type-Options: nosniff\r\n"
                         "X-Request-Id: " + id + "\r\n\r\n" + body;
    ::send(sock, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    // Reads away what already arrived (the request, usually): closing with
    // unread bytes resets the connection, and the client could lose the answer.
    char buf[16384];
    for (int i = 0; i < 8 && ::recv(sock, buf, sizeof buf, MSG_DONTWAIT) > 0; ++i) {
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
  }

  static std::string PeerAddress(socket_t sock) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    std::string ip;
    int port = 0;
    if (::getpeername(sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0) GuardedStream::Describe(addr, ip, port);
    return ip;
  }
  bool TakeAddressSlot(const std::string& address) {
    std::lock_guard<std::mutex> lock(addresses_mu_);
    size_t& open = connections_per_address_[address];
    if (open >= max_per_address_) return false;
    ++open;
    return true;
  }
  void ReleaseAddressSlot(const std::string& address) {
    std::lock_guard<std::mutex> lock(addresses_mu_);
    auto it = connections_per_address_.find(address);
    assert(it != connections_per_address_.end() && it->second > 0);
    if (--it->second == 0) connections_per_address_.erase(it);
  }

  const size_t ready_threads_, max_threads_, max_per_address_;
  Metrics* metrics_;
  std::unique_ptr<ConnectionThreads> threads_;  // made when serving starts (new_task_queue)
  std::mutex addresses_mu_;
  std::unordered_map<std::string, size_t> connections_per_address_;  // open (or queued) ones
  std::atomic<uint64_t> refused_connections_{0};
};

}  // namespace

// Everything a handler needs about its request.
struct Call {
  const httplib::Request& req;
  httplib::Response& res;
  std::optional<Principal> principal;
  std::string request_id;
  // While a cached read computes its answer: the query parameters its
  // cache key holds. Reading another makes the answer uncacheable.
  const std::vector<std::string>* keyed_params = nullptr;
  mutable std::string unkeyed_param = {};  // the first such parameter read

  const std::string* Param(const char* name) const {
    if (keyed_params && unkeyed_param.empty() &&
        std::find(keyed_params->begin(), keyed_params->end(), name) == keyed_params->end()) {
      unkeyed_param = name;
    }
    auto it = req.params.find(name);
    return it == req.params.end() ? nullptr : &it->second;
  }
  std::string ParamOr(const char* name, std::string fallback = "") const {
    const std::string* p = Param(name);
    return p ? *p : fallback;
  }
  void Send(int status, const json& body) {
    res.status = status;
    res.set_content(Dump(body), "application/json; charset=utf-8");
  }
  void Fail(const ApiError& e) { Send(e.status, ErrorBody(e.code, e.message, e.field)); }
  void Fail(const Status& s) { Send(HttpStatus(s), ErrorBody(ErrorCode(s), s.message(), s.field())); }
  void Fail(int status, const std::string& message, const std::string& field = "") {
    Send(status, ErrorBody(DefaultErrorCode(status), message, field));
  }
};

class Server::Routes {
 public:
  Routes(EventStore* store, Projector* projector, std::optional<TokenTable> tokens,
         ServerOptions options, Metrics* metrics, std::shared_ptr<spdlog::logger> log)
      : store_(store),
        projector_(projector),
        tokens_(tokens ? std::make_shared<const TokenTable>(std::move(*tokens)) : nullptr),
        options_(std::move(options)),
        metrics_(metrics),
        log_(std::move(log)) {}

  void ReplaceTokens(TokenTable tokens) {
    if (tokens_.load() == nullptr) return;  // read-only stays read-only
    tokens_.store(std::make_shared<const TokenTable>(std::move(tokens)));
  }

  void Install(httplib::Server& http) {
    using R = WriteRoute;
    Get(http, "/healthz", Access::kPublic, [this](Call& c) { Health(c); });
    Get(http, "/metrics", Access::kStateRead, [this](Call& c) { MetricsText(c); });
    Get(http, "/v1/openapi.json", Access::kPublic, [this](Call& c) {
      c.res.status = 200;
      c.res.set_content(options_.openapi_json, "application/json; charset=utf-8");
    });
    // Cached reads name the query parameters they read: their answers are
    // kept under the path and those parameters' values (CacheKey), so a
    // handler that comes to read another must have it added here.
    Get(http, "/v1/units", CacheBy{"as_of", "at", "limit", "cursor"}, [this](Call& c) { ListUnits(c); });
    Get(http, R"(/v1/units/([^/]+))", CacheBy{"as_of", "at"}, [this](Call& c) { GetUnit(c); });
    Get(http, "/v1/cycles", CacheBy{"as_of", "at", "limit", "cursor"}, [this](Call& c) { ListCycles(c); });
    Get(http, R"(/v1/cycles/([^/]+))", CacheBy{"as_of", "at"}, [this](Call& c) { GetCycle(c); });
    Get(http, R"(/v1/cycles/([^/]+)/review)", CacheBy{"format", "as_of", "at"}, [this](Call& c) { GetReview(c); });
    Get(http, "/v1/objectives", CacheBy{"include_archived", "as_of", "at", "cycle", "owner", "limit", "cursor"},
              [this](Call& c) { ListObjectives(c); });
    Get(http, R"(/v1/objectives/([^/]+))", CacheBy{"as_of", "at"}, [this](Call& c) { GetObjective(c); });
    Get(http, R"(/v1/key-results/([^/]+))", CacheBy{"as_of", "at"}, [this](Call& c) { GetKeyResult(c); });
    Get(http, R"(/v1/key-results/([^/]+)/check-ins)", CacheBy{"limit", "cursor", "as_of", "at"},
              [this](Call& c) { ListCheckIns(c); });
    Get(http, "/v1/cascade", CacheBy{"as_of", "at", "cycle", "root"}, [this](Call& c) { GetCascade(c); });
    Get(http, "/v1/diff", CacheBy{"as_of", "from", "to", "cycle", "limit", "cursor"},
        [this](Call& c) { GetDiff(c); });
    Get(http, "/v1/lint", Access::kStateRead, [this](Call& c) { GetLint(c); });
    Get(http, "/v1/events", Access::kAuditRead, [this](Call& c) { ListEvents(c); });
    Get(http, R"(/v1/history/([^/]+))", Access::kAuditRead, [this](Call& c) { GetHistory(c); });
    Get(http, "/v1/audit/verify", Access::kAuditRead, [this](Call& c) { Verify(c); });
    http.Post("/v1/admin/backup", Wrap("POST /v1/admin/backup", Access::kWrite, [this](Call& c) { Backup(c); }));

    Write(http, "POST", "/v1/units", R::kCreateUnit);
    Write(http, "PATCH", R"(/v1/units/([^/]+))", R::kUpdateUnit);
    Write(http, "DELETE", R"(/v1/units/([^/]+))", R::kRetireUnit);
    Write(http, "POST", "/v1/cycles", R::kCreateCycle);
    Write(http, "PATCH", R"(/v1/cycles/([^/]+))", R::kUpdateCycle);
    Write(http, "POST", R"(/v1/cycles/([^/]+)/close)", R::kCloseCycle);
    Write(http, "POST", R"(/v1/cycles/([^/]+)/reopen)", R::kReopenCycle);
    Write(http, "POST", "/v1/objectives", R::kCreateObjective);
    Write(http, "PATCH", R"(/v1/objectives/([^/]+))", R::kUpdateObjective);
    Write(http, "DELETE", R"(/v1/objectives/([^/]+))", R::kArchiveObjective);
    Write(http, "POST", R"(/v1/objectives/([^/]+)/comments)", R::kComment);
    Write(http, "POST", R"(/v1/objectives/([^/]+)/review)", R::kReview);
    Write(http, "POST", "/v1/key-results", R::kCreateKeyResult);
    Write(http, "PATCH", R"(/v1/key-results/([^/]+))", R::kUpdateKeyResult);
    Write(http, "DELETE", R"(/v1/key-results/([^/]+))", R::kRemoveKeyResult);
    Write(http, "POST", R"(/v1/key-results/([^/]+)/check-ins)", R::kCheckIn);
    Write(http, "POST", R"(/v1/key-results/([^/]+)/corrections)", R::kCorrection);
    Write(http, "POST", R"(/v1/key-results/([^/]+)/comments)", R::kComment);

    if (!options_.dashboard_dir.empty()) http.set_mount_point("/", options_.dashboard_dir);
    // Static files (the dashboard) reach no route: stamp and log them here,
    // just before cpp-httplib writes any response out.
    http.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (res.has_header("X-Request-Id")) return;
      Finish(req, res, "static", NextRequestId(req), "", std::chrono::steady_clock::now(),
             /*no_store=*/false);
    });

    // A request the transport refused while receiving it (ReceiveBody:
    // its body too large, its framing ambiguous, its deadline passed) is
    // answered here, before routing; its connection then closes.
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!req.has_header(kRefusedStatusHeader)) return httplib::Server::HandlerResponse::Unhandled;
      res.status = std::atoi(req.get_header_value(kRefusedStatusHeader).c_str());
      res.set_content(Dump(ErrorBody(DefaultErrorCode(res.status), req.get_header_value(kRefusedMessageHeader),
                                     req.get_header_value(kRefusedFieldHeader))),
                      "application/json; charset=utf-8");
      Finish(req, res, "unrouted", NextRequestId(req), "", std::chrono::steady_clock::now());
      return httplib::Server::HandlerResponse::Handled;
    });

    http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                       httplib::Response& res) {
      // cpp-httplib calls this for every status >= 400, routed or not. A
      // routed handler has already answered (and stamped X-Request-Id):
      // keep its error body, with its code and field.
      if (res.has_header("X-Request-Id")) return httplib::Server::HandlerResponse::Handled;
      // Routing misses, 413 and other refusals cpp-httplib makes itself.
      int status = res.status < 400 ? 404 : res.status;
      std::string message = status == 404 ? "no such route: " + req.method + " " + req.path.substr(0, 200)
                            : status == 413 ? "body larger than " + std::to_string(kMaxBodyBytes) + " bytes"
                                            : "request refused";
      res.status = status;
      res.set_content(Dump(ErrorBody(DefaultErrorCode(status), message, "")),
                      "application/json; charset=utf-8");
      Finish(req, res, "unrouted", NextRequestId(req), "", std::chrono::steady_clock::now());
      return httplib::Server::HandlerResponse::Handled;
    }));
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      res.status = 500;
      res.set_content(Dump(ErrorBody("internal", "internal error", "")), "application/json; charset=utf-8");
    });
  }

 private:
  using Handler = std::function<void(Call&)>;

  std::string NextRequestId(const httplib::Request& req) {
    std::string given = req.get_header_value("X-Request-Id");
    bool usable = !given.empty() && given.size() <= 64 &&
                  std::all_of(given.begin(), given.end(), [](char ch) {
                    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
                  });
    if (usable) return given;
    char buf[32];
    std::snprintf(buf, sizeof buf, "req-%012llx",
                  static_cast<unsigned long long>(request_counter_.fetch_add(1) + 1));
    return buf;
  }

  void Finish(const httplib::Request& req, httplib::Response& res, const std::string& route,
              const std::string& request_id, const std::string& actor,
              std::chrono::steady_clock::time_point started, bool no_store = true) {
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("X-Request-Id", request_id);
    // Every answer says when okrd is not healthy (SPEC §6).
    if (projector_->is_stuck()) res.set_header("Okrd-Status", "stuck");
    if (no_store) res.set_header("Cache-Control", "no-store");
    int64_t micros = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::steady_clock::now() - started)
                         .count();
    // The method as a client wrote it is any text, a token pasted by
    // mistake included: only the standard ones reach the log and metrics.
    static const std::set<std::string, std::less<>> kMethods = {
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"};
    const std::string method = kMethods.count(req.method) ? req.method : "other";
    metrics_->Request(method, route, res.status, micros);
    // Never the path's query or headers: tokens must not reach the log.
    LogLine(*log_, options_.log_format, spdlog::level::info, "request",
            {{"method", method}, {"route", route}, {"status", res.status}, {"us", micros},
             {"actor", actor.empty() ? "-" : actor}, {"id", request_id}});
  }

  // Authenticates and authorises `access`; on refusal answers and returns false.
  bool Admit(Call& c, Access access) {
    const std::shared_ptr<const TokenTable> tokens = tokens_.load();
    std::string auth = c.req.get_header_value("Authorization");
    if (!auth.empty()) {
      static constexpr std::string_view kBearer = "Bearer ";
      if (auth.size() <= kBearer.size() || auth.compare(0, kBearer.size(), kBearer) != 0 || !tokens) {
        c.Fail(401, "Authorization must be 'Bearer <token>' with a valid token");
        c.res.set_header("WWW-Authenticate", "Bearer");
        return false;
      }
      c.principal = tokens->Authenticate(std::string_view(auth).substr(kBearer.size()));
      if (!c.principal) {
        c.Fail(401, "unknown token");
        c.res.set_header("WWW-Authenticate", "Bearer");
        return false;
      }
    }
    switch (access) {
      case Access::kPublic:
        return true;
      case Access::kStateRead:
      case Access::kCachedStateRead:
        if (options_.private_reads && !c.principal) {
          c.Fail(401, "this okrd is private: reads need a token");
          c.res.set_header("WWW-Authenticate", "Bearer");
          return false;
        }
        return true;
      case Access::kAuditRead:
        if (!c.principal) {
          c.Fail(401, "audit reads need an auditor or admin token");
          c.res.set_header("WWW-Authenticate", "Bearer");
          return false;
        }
        if (c.principal->role != Role::kAuditor && c.principal->role != Role::kAdmin) {
          c.Fail(403, "audit reads need the auditor or admin role");
          return false;
        }
        return true;
      case Access::kWrite:
        if (!tokens || options_.refuse_writes) {
          c.Fail(403, options_.refuse_writes ? "this okrd serves a log read-only (--read-only-forensics)"
                                             : "this okrd is read-only (started without --tokens)");
          return false;
        }
        if (!c.principal) {
          c.Fail(401, "writes need a token");
          c.res.set_header("WWW-Authenticate", "Bearer");
          return false;
        }
        if (c.principal->role == Role::kViewer || c.principal->role == Role::kAuditor) {
          c.Fail(403, std::string("the ") + RoleName(c.principal->role) + " role cannot write");
          return false;
        }
        return true;
    }
    return false;
  }

  // `cache_params`: for Access::kCachedStateRead, the query parameters the
  // handler reads (CacheBy).
  httplib::Server::Handler Wrap(std::string route, Access access, Handler fn,
                                std::vector<std::string> cache_params = {}) {
    return [this, route = std::move(route), access, fn = std::move(fn), cache_params = std::move(cache_params)](
               const httplib::Request& req, httplib::Response& res) {
      auto started = std::chrono::steady_clock::now();
      Call c{req, res, std::nullopt, NextRequestId(req)};
      if (Admit(c, access)) {
        if (access == Access::kCachedStateRead) {
          Cached(c, route, cache_params, fn);
        } else {
          fn(c);
        }
      }
      Finish(req, res, route, c.request_id, c.principal ? c.principal->actor : "", started);
    };
  }

  // The cache key of a read (AnswerKey): its path and the values of the
  // query parameters it reads — the values cpp-httplib's params.find()
  // gives, the ones Call::Param hands the handler.
  static std::string CacheKey(const httplib::Request& req, const std::vector<std::string>& params) {
    std::vector<const std::string*> values;
    values.reserve(params.size());
    for (const std::string& name : params) {
      auto it = req.params.find(name);
      values.push_back(it == req.params.end() ? nullptr : &it->second);
    }
    return AnswerKey(req.path, values);
  }

  // Serves a state read from the cache while the projection has not moved
  // since the answer was computed; computes and keeps it otherwise. Only
  // 200 answers computed while the seq stood still, by a handler that read
  // no query parameter outside `params`, are kept.
  void Cached(Call& c, const std::string& route, const std::vector<std::string>& params, const Handler& fn) {
    std::string key = CacheKey(c.req, params);
    uint64_t before = projector_->seq();
    if (auto hit = cache_.Get(key, before)) {
      c.res.status = hit->status;
      for (const auto& [name, value] : hit->headers) c.res.set_header(name, value);
      c.res.set_content(std::move(hit->body), hit->content_type);
      return;
    }
    c.keyed_params = &params;
    fn(c);
    c.keyed_params = nullptr;
    if (!c.unkeyed_param.empty()) {
      // A programming error (the route's CacheBy lacks a parameter): served, never kept.
      LogLine(*log_, options_.log_format, spdlog::level::err, "uncacheable_read",
              {{"route", route}, {"param", c.unkeyed_param}});
      return;
    }
    if (c.res.status != 200 || projector_->seq() != before) return;
    CachedAnswer answer{c.res.status, c.res.get_header_value("Content-Type"), c.res.body, {}};
    for (const char* name : {"ETag", "Content-Disposition"}) {
      if (c.res.has_header(name)) answer.headers.emplace_back(name, c.res.get_header_value(name));
    }
    cache_.Put(key, before, std::move(answer));
  }

  void Get(httplib::Server& http, const std::string& pattern, Access access, Handler fn) {
    http.Get(pattern, Wrap("GET " + pattern, access, std::move(fn)));
  }
  // A cached state read (Access::kCachedStateRead) and the query parameters it reads.
  struct CacheBy {
    CacheBy(std::initializer_list<std::string> names) : params(names) {}
    std::vector<std::string> params;
  };
  void Get(httplib::Server& http, const std::string& pattern, CacheBy cache_by, Handler fn) {
    http.Get(pattern, Wrap("GET " + pattern, Access::kCachedStateRead, std::move(fn), std::move(cache_by.params)));
  }

  void Write(httplib::Server& http, const std::string& method, const std::string& pattern,
             WriteRoute route) {
    auto handler = Wrap(method + " " + pattern, Access::kWrite,
                        [this, route](Call& c) { HandleWrite(c, route); });
    if (method == "POST") http.Post(pattern, handler);
    else if (method == "PATCH") http.Patch(pattern, handler);
    else http.Delete(pattern, handler);
  }

  // --- read helpers ---

  struct Point {
    uint64_t as_of;
    int64_t at;
    int64_t now;
  };

  // Parses as_of= (a seq or an RFC 3339 time) and at= against `p`.
  std::optional<Point> ParsePoint(Call& c, const Projection& p, const char* as_of_name = "as_of") {
    Point point{p.seq(), INT64_MAX, projector_->NowUs()};
    if (const std::string* text = c.Param(as_of_name)) {
      auto resolved = ResolvePoint(c, p, *text, as_of_name);
      if (!resolved) return std::nullopt;
      point.as_of = *resolved;
      if (point.as_of < p.seq()) point.now = p.TimeOfSeq(point.as_of);
    }
    if (const std::string* text = c.Param("at")) {
      auto at = ParseRfc3339(*text);
      if (!at) {
        c.Fail(ApiError{400, "malformed", "at must be an RFC 3339 date-time", "at"});
        return std::nullopt;
      }
      point.at = *at;
    }
    return point;
  }

  std::optional<uint64_t> ResolvePoint(Call& c, const Projection& p, const std::string& text,
                                       const char* name) {
    if (auto seq = ParseUnsigned(text)) {
      if (*seq > p.seq()) {
        c.Fail(ApiError{422, "invalid", std::string(name) + " is beyond the head seq " +
                                            std::to_string(p.seq()), name});
        return std::nullopt;
      }
      return *seq;
    }
    auto us = ParseRfc3339(text);
    if (!us) {
      c.Fail(ApiError{400, "malformed", std::string(name) + " must be a seq or an RFC 3339 date-time", name});
      return std::nullopt;
    }
    if (*us > projector_->NowUs()) {
      c.Fail(ApiError{422, "invalid", std::string(name) + " is in the future", name});
      return std::nullopt;
    }
    return p.SeqAtTime(*us);
  }

  std::optional<std::string> PathId(Call& c) {
    std::string id = c.req.matches.size() > 1 ? std::string(c.req.matches[1]) : "";
    if (!ValidId(id)) {
      c.Fail(ApiError{400, "malformed", "ids are 1-64 characters of a-z, 0-9, '.', '_', '-'", "id"});
      return std::nullopt;
    }
    return id;
  }

  // The state a page answers from: a cursor's pinned as_of (and where the
  // previous page ended), or as_of= / the head for a first page. An as_of=
  // that disagrees with the cursor's is refused (400), like a cursor this
  // server did not give.
  std::optional<Point> ParsePagedPoint(Call& c, const Projection& p, std::optional<PageCursor>* cursor) {
    if (const std::string* text = c.Param("cursor")) {
      *cursor = ParsePageCursor(*text);
      if (!*cursor || (*cursor)->as_of > p.seq()) {
        c.Fail(ApiError{400, "malformed", "cursor is not one this server gave", "cursor"});
        return std::nullopt;
      }
    }
    auto point = ParsePoint(c, p);
    if (!point || !*cursor) return point;
    if (c.Param("as_of") && point->as_of != (*cursor)->as_of) {
      c.Fail(ApiError{400, "malformed", "cursor belongs to as_of " + std::to_string((*cursor)->as_of), "cursor"});
      return std::nullopt;
    }
    point->as_of = (*cursor)->as_of;
    if (point->as_of < p.seq()) point->now = p.TimeOfSeq(point->as_of);
    return point;
  }

  // A page of a sorted id-keyed map as it stood at the page's as_of: rows
  // of the kept entities after the cursor's id, at most `limit`, copied
  // out under the projection's lock and rendered after it is released.
  template <typename E, typename Keep, typename RowOf, typename Render>
  void Page(Call& c, const std::map<std::string, E>& (Projection::*all)() const, Keep keep,
            RowOf row_of, Render render) {
    ApiError e;
    auto limit = ParseLimit(c.Param("limit"), &e);
    if (!limit) return c.Fail(e);
    using Row = decltype(row_of(std::declval<View&>(), std::declval<const E&>()));
    std::vector<Row> rows;
    std::string last;
    bool more = false;
    std::optional<uint64_t> as_of = projector_->Read([&](const Projection& p) -> std::optional<uint64_t> {
      std::optional<PageCursor> cursor;
      auto point = ParsePagedPoint(c, p, &cursor);
      if (!point) return std::nullopt;
      if (cursor && !ValidId(cursor->position)) {
        c.Fail(ApiError{400, "malformed", "cursor is not one this server gave", "cursor"});
        return std::nullopt;
      }
      View v(p, point->as_of, point->at, point->now);
      const auto& map = (p.*all)();
      for (auto it = cursor ? map.upper_bound(cursor->position) : map.begin(); it != map.end(); ++it) {
        if (!it->second.At(point->as_of) || !keep(it->second, point->as_of)) continue;
        if (rows.size() == *limit) {
          more = true;
          break;
        }
        rows.push_back(row_of(v, it->second));
        last = it->first;
      }
      return point->as_of;
    });
    if (!as_of) return;
    json items = json::array();
    for (const Row& row : rows) items.push_back(render(row));
    c.Send(200, {{"items", std::move(items)},
                 {"next", more ? json(PageCursorText(*as_of, last)) : json(nullptr)},
                 {"as_of_seq", *as_of}});
  }

  void SendEntity(Call& c, json body, uint64_t as_of) {
    c.res.set_header("ETag", "\"" + std::to_string(body.value("version", uint64_t{0})) + "\"");
    body["as_of_seq"] = as_of;
    c.Send(200, body);
  }

  // --- reads ---

  // Liveness stays open for probes; under --private only a token holder
  // learns anything about the log.
  // 200 "ok", or 503 with the status and why (SPEC §6), so a load
  // balancer stops routing to an okrd that cannot take writes.
  void Health(Call& c) {
    auto stuck = projector_->stuck();
    int status = stuck ? 503 : 200;
    json body = {{"status", stuck ? "stuck" : "ok"}};
    if (options_.private_reads && !c.principal) return c.Send(status, body);
    body["head_seq"] = store_->head().seq;
    body["projected_seq"] = projector_->seq();
    if (stuck) {
      body["stuck_seq"] = stuck->seq;
      body["reason"] = stuck->reason;
    }
    c.Send(status, body);
  }

  // An event as the audit routes show it; the idempotency key without the
  // actor scope okrd stores it under.
  static json AuditEventJson(schema::Event::Reader ev) {
    json out = EventToJson(ev);
    std::string key = out["idempotency_key"].get<std::string>();
    if (auto nl = key.find('\n'); nl != std::string::npos) out["idempotency_key"] = key.substr(nl + 1);
    return out;
  }

  void MetricsText(Call& c) {
    uint64_t head = store_->head().seq;
    uint64_t snapshot_seq = store_->NewestSnapshotSeq();
    int64_t age = snapshot_seq > 0 ? static_cast<int64_t>(head - snapshot_seq) : -1;
    c.res.status = 200;
    auto stuck = projector_->stuck();
    c.res.set_content(metrics_->Render(head, projector_->seq(), age, stuck ? "stuck" : "ok",
                                       stuck ? stuck->seq : 0),
                      "text/plain; version=0.0.4");
  }

  // One entity as it stood at as_of, with its version as ETag.
  template <typename E, typename Render>
  void GetAsOf(Call& c, const char* kind, const E* (Projection::*find)(const std::string&) const,
               Render render) {
    auto id = PathId(c);
    if (!id) return;
    projector_->Read([&](const Projection& p) {
      auto point = ParsePoint(c, p);
      if (!point) return;
      const E* e = (p.*find)(*id);
      if (!e || !e->At(point->as_of)) return c.Fail(404, std::string("no ") + kind + " " + *id, "id");
      View v(p, point->as_of, point->at, point->now);
      SendEntity(c, render(v, *e), point->as_of);
    });
  }

  void ListUnits(Call& c) {
    Page(c, &Projection::units, [](const Unit&, uint64_t) { return true; },
         [](View& v, const Unit& u) { return v.UnitRowOf(u); }, RenderUnit);
  }
  void GetUnit(Call& c) {
    GetAsOf(c, "unit", &Projection::unit, [](View& v, const Unit& u) { return v.UnitJson(u); });
  }
  void ListCycles(Call& c) {
    Page(c, &Projection::cycles, [](const Cycle&, uint64_t) { return true; },
         [](View& v, const Cycle& x) { return v.CycleRowOf(x); }, RenderCycle);
  }
  void GetCycle(Call& c) {
    GetAsOf(c, "cycle", &Projection::cycle, [](View& v, const Cycle& x) { return v.CycleJson(x); });
  }

  void ListObjectives(Call& c) {
    std::string include = c.ParamOr("include_archived", "false");
    if (include != "true" && include != "false") {
      return c.Fail(ApiError{400, "malformed", "include_archived is true or false", "include_archived"});
    }
    std::string cycle = c.ParamOr("cycle"), owner = c.ParamOr("owner");
    Page(c, &Projection::objectives,
         [&](const Objective& o, uint64_t as_of) {
           const ObjectiveFields* f = o.FieldsAt(as_of);
           return (include == "true" || !f->archived) && (cycle.empty() || f->cycle == cycle) &&
                  (owner.empty() || f->owner == owner);
         },
         [](View& v, const Objective& o) { return v.ObjectiveRowOf(o); }, RenderObjective);
  }

  static json CommentsJson(const std::vector<Comment>& comments, uint64_t as_of) {
    json out = json::array();
    for (const Comment& cm : comments) {
      if (cm.meta.seq > as_of) break;
      out.push_back({{"author", cm.meta.actor}, {"text", cm.text},
                     {"recorded_at", FormatTimeUs(cm.meta.recorded_at_us)}, {"seq", cm.meta.seq}});
    }
    return out;
  }

  void GetObjective(Call& c) {
    GetAsOf(c, "objective", &Projection::objective, [](View& v, const Objective& o) {
      json body = v.ObjectiveJson(o);
      body["comments"] = CommentsJson(o.comments, v.as_of());
      return body;
    });
  }

  void GetKeyResult(Call& c) {
    GetAsOf(c, "key result", &Projection::key_result, [](View& v, const KeyResult& kr) {
      json body = v.KeyResultJson(kr);
      body["comments"] = CommentsJson(kr.comments, v.as_of());
      return body;
    });
  }

  // The series, oldest measurement first, paged by position in the series
  // as it stood at the cursor's as_of. Only the page's check-ins are
  // copied out under the lock.
  void ListCheckIns(Call& c) {
    auto id = PathId(c);
    if (!id) return;
    ApiError e;
    auto limit = ParseLimit(c.Param("limit"), &e);
    if (!limit) return c.Fail(e);
    std::vector<CheckIn> page;
    bool more = false;
    uint64_t next = 0;
    std::optional<uint64_t> as_of = projector_->Read([&](const Projection& p) -> std::optional<uint64_t> {
      std::optional<PageCursor> cursor;
      auto point = ParsePagedPoint(c, p, &cursor);
      if (!point) return std::nullopt;
      std::optional<uint64_t> offset = cursor ? ParseUnsigned(cursor->position) : uint64_t{0};
      if (!offset) {
        c.Fail(ApiError{400, "malformed", "cursor is not one this server gave", "cursor"});
        return std::nullopt;
      }
      const KeyResult* kr = p.key_result(*id);
      if (!kr || !kr->At(point->as_of)) {
        c.Fail(404, "no key result " + *id, "id");
        return std::nullopt;
      }
      auto series = CheckInOrder(*kr, point->as_of);
      size_t i = std::min<uint64_t>(*offset, series.size());
      for (; i < series.size() && page.size() < *limit; ++i) {
        const CheckIn& ci = kr->check_ins[series[i].index];
        if (ci.measured_at_us > point->at) break;
        page.push_back(ci);
        page.back().value = series[i].value;  // as corrected
      }
      next = i;
      more = i < series.size() && kr->check_ins[series[i].index].measured_at_us <= point->at;
      return point->as_of;
    });
    if (!as_of) return;
    json items = json::array();
    for (const CheckIn& ci : page) items.push_back(RenderCheckIn(ci));
    c.Send(200, {{"items", std::move(items)},
                 {"next", more ? json(PageCursorText(*as_of, std::to_string(next))) : json(nullptr)},
                 {"as_of_seq", *as_of}});
  }

  // The cascade's rows are copied out under the lock; JSON is built after.
  void GetCascade(Call& c) {
    std::vector<CascadeNode> nodes;
    std::optional<uint64_t> as_of = projector_->Read([&](const Projection& p) -> std::optional<uint64_t> {
      auto point = ParsePoint(c, p);
      if (!point) return std::nullopt;
      View v(p, point->as_of, point->at, point->now);
      auto cascade = v.CascadeNodes(c.ParamOr("cycle"), c.ParamOr("root"));
      if (!cascade.ok()) {
        c.Fail(cascade.status());
        return std::nullopt;
      }
      nodes = std::move(*cascade);
      return point->as_of;
    });
    if (!as_of) return;
    json body = RenderCascade(nodes);
    body["as_of_seq"] = *as_of;
    c.Send(200, body);
  }

  // Where a diff page starts and what it covers: rows of (from, to] from
  // event `seq` on, its first `skip` rows already shown.
  struct DiffQuery {
    uint64_t from = 0, to = 0;
    std::string cycle;
    uint64_t seq = 0;
    uint64_t skip = 0;
  };

  // Parses from=, to=, as_of=, cycle= and cursor= against `p`; answers
  // and returns nullopt on a refusal. A cursor pins `to`.
  std::optional<DiffQuery> ParseDiffQuery(Call& c, const Projection& p) {
    std::optional<PageCursor> cursor;
    std::optional<uint64_t> cursor_seq, cursor_skip;
    if (const std::string* text = c.Param("cursor")) {
      cursor = ParsePageCursor(*text);
      if (cursor) {
        auto dot = cursor->position.find('.');
        cursor_seq = ParseUnsigned(std::string_view(cursor->position).substr(0, dot));
        if (dot != std::string::npos) cursor_skip = ParseUnsigned(std::string_view(cursor->position).substr(dot + 1));
      }
      if (!cursor_seq || !cursor_skip || cursor->as_of > p.seq()) {
        c.Fail(ApiError{400, "malformed", "cursor is not one this server gave", "cursor"});
        return std::nullopt;
      }
    }
    // as_of, like every state read: what was known then; `to` defaults to it.
    uint64_t as_of = p.seq();
    DiffQuery q;
    for (auto [name, slot] : {std::pair{"as_of", &as_of}, std::pair{"from", &q.from}}) {
      if (const std::string* text = c.Param(name)) {
        auto r = ResolvePoint(c, p, *text, name);
        if (!r) return std::nullopt;
        *slot = *r;
      }
    }
    q.to = as_of;
    if (const std::string* text = c.Param("to")) {
      auto r = ResolvePoint(c, p, *text, "to");
      if (!r) return std::nullopt;
      q.to = *r;
    }
    if (q.to > as_of) return c.Fail(ApiError{422, "invalid", "to is after as_of", "to"}), std::nullopt;
    if (cursor) {
      if ((c.Param("to") || c.Param("as_of")) && q.to != cursor->as_of) {
        c.Fail(ApiError{400, "malformed", "cursor belongs to to=" + std::to_string(cursor->as_of), "cursor"});
        return std::nullopt;
      }
      q.to = cursor->as_of;
    }
    if (q.from > q.to) return c.Fail(ApiError{422, "invalid", "from is after to", "from"}), std::nullopt;
    q.cycle = c.ParamOr("cycle");
    if (!q.cycle.empty() && !p.cycle(q.cycle)) return c.Fail(404, "no cycle " + q.cycle, "cycle"), std::nullopt;
    q.seq = q.from + 1;
    if (cursor) {
      if (*cursor_seq <= q.from || *cursor_seq > q.to + 1) {
        c.Fail(ApiError{400, "malformed", "cursor lies outside from..to", "cursor"});
        return std::nullopt;
      }
      q.seq = *cursor_seq;
      q.skip = *cursor_skip;
    }
    return q;
  }

  // GET /v1/diff: one page of the rows of (from, to]. Events come from the
  // log (no lock), kDiffEventsPerLock at a time; the projection, under its
  // lock, gives only those events' rows; JSON is built after. O(page):
  // at most `limit` rows and kMaxEventsScannedPerRequest events.
  void GetDiff(Call& c) {
    ApiError e;
    auto limit = ParseLimit(c.Param("limit"), &e);
    if (!limit) return c.Fail(e);
    auto q = projector_->Read([&](const Projection& p) { return ParseDiffQuery(c, p); });
    if (!q) return;
    std::vector<DiffRow> rows;
    size_t scanned = 0;
    while (rows.size() < *limit && q->seq <= q->to && scanned < kMaxEventsScannedPerRequest) {
      uint64_t last = std::min<uint64_t>(q->to, q->seq + kDiffEventsPerLock - 1);
      std::vector<std::pair<uint64_t, std::string>> events;
      Status failed = Status::Ok();
      Status s = store_->Scan(q->seq, last, [&](uint64_t seq, std::string_view bytes) {
        auto decoded = DecodedEvent::Decode(bytes);
        if (!decoded.ok()) {
          failed = Status::Corruption("seq " + std::to_string(seq) + ": " + decoded.status().message());
          return false;
        }
        events.emplace_back(seq, (*decoded)->event().getEntity().cStr());
        return true;
      });
      if (!s.ok()) return c.Fail(s);
      if (!failed.ok()) return c.Fail(failed);
      if (events.size() != last - q->seq + 1 || events.front().first != q->seq) {
        return c.Fail(Status::Corruption("the log has gaps between seq " + std::to_string(q->seq) +
                                         " and " + std::to_string(last)));
      }
      scanned += events.size();
      projector_->Read([&](const Projection& p) { TakeDiffRows(p, events, *limit, &*q, &rows); });
    }
    assert(rows.size() <= *limit);
    json body = RenderDiff(q->from, q->to, rows);
    body["as_of_seq"] = q->to;
    body["next"] = q->seq <= q->to ? json(PageCursorText(q->to, std::to_string(q->seq) + "." +
                                                                    std::to_string(q->skip)))
                                   : json(nullptr);
    c.Send(200, body);
  }

  // Moves the rows of `events` (consecutive, from q->seq on) into `rows`
  // until it holds `limit`, and advances q's position past what it took.
  static void TakeDiffRows(const Projection& p, const std::vector<std::pair<uint64_t, std::string>>& events,
                           size_t limit, DiffQuery* q, std::vector<DiffRow>* rows) {
    std::vector<DiffRow> event_rows;
    for (const auto& [seq, entity] : events) {
      assert(seq == q->seq);
      event_rows.clear();
      AppendDiffRows(p, seq, entity, q->cycle, &event_rows);
      size_t first = std::min<size_t>(q->skip, event_rows.size());
      size_t take = std::min(event_rows.size() - first, limit - rows->size());
      std::move(event_rows.begin() + first, event_rows.begin() + first + take, std::back_inserter(*rows));
      if (first + take < event_rows.size()) {
        q->skip = first + take;  // the page is full inside this event
        return;
      }
      q->seq = seq + 1;
      q->skip = 0;
      if (rows->size() == limit) return;
    }
  }

  void GetReview(Call& c) {
    auto id = PathId(c);
    if (!id) return;
    std::string format = c.ParamOr("format", "json");
    if (format != "json" && format != "md" && format != "csv") {
      return c.Fail(ApiError{400, "malformed", "format is json, md or csv", "format"});
    }
    // Gathered under the lock; Markdown, CSV and JSON text are made after.
    std::optional<json> review = projector_->Read([&](const Projection& p) -> std::optional<json> {
      auto point = ParsePoint(c, p);
      if (!point) return std::nullopt;
      auto r = Review(p, *id, point->as_of);
      if (!r.ok()) {
        c.Fail(r.status());
        return std::nullopt;
      }
      (*r)["as_of_seq"] = point->as_of;
      return std::move(*r);
    });
    if (!review) return;
    c.res.status = 200;
    if (format == "md") {
      c.res.set_content(ReviewMarkdown(*review), "text/markdown; charset=utf-8");
    } else if (format == "csv") {
      c.res.set_content(ReviewCsv(*review), "text/csv; charset=utf-8");
      c.res.set_header("Content-Disposition", "attachment; filename=\"review-" + *id + ".csv\"");
    } else {
      c.Send(200, *review);
    }
  }

  void GetLint(Call& c) {
    std::optional<json> lint = projector_->Read([&](const Projection& p) -> std::optional<json> {
      auto point = ParsePoint(c, p);
      if (!point) return std::nullopt;
      std::string cycle = c.ParamOr("cycle");
      if (!cycle.empty() && !p.cycle(cycle)) return c.Fail(404, "no cycle " + cycle, "cycle"), std::nullopt;
      json out = View(p, point->as_of, point->at, point->now).Lint(cycle);
      out["as_of_seq"] = point->as_of;
      return out;
    });
    if (lint) c.Send(200, *lint);  // serialised outside the lock
  }

  // --- audit reads ---

  // `after=` or, as every list takes it, `cursor=` (the same value: the
  // previous page's `next`). Both and different: answers 400 and returns
  // nullptr.
  const std::string* AfterOrCursor(Call& c) {
    const std::string* after = c.Param("after");
    const std::string* cursor = c.Param("cursor");
    if (after && cursor && *after != *cursor) {
      c.Fail(ApiError{400, "malformed", "after and cursor disagree; pass one", "cursor"});
      return nullptr;
    }
    return after ? after : cursor;
  }

  void ListEvents(Call& c) {
    ApiError e;
    auto limit = ParseLimit(c.Param("limit"), &e);
    if (!limit) return c.Fail(e);
    uint64_t after = 0;
    if (const std::string* text = AfterOrCursor(c)) {
      auto parsed = ParseUnsigned(*text);
      if (!parsed) return c.Fail(ApiError{400, "malformed", "after must be a seq", "after"});
      after = *parsed;
    } else if (c.Param("after")) {
      return;  // refused by AfterOrCursor
    }
    std::optional<int64_t> from, to;
    for (auto [name, slot] : {std::pair{"from", &from}, std::pair{"to", &to}}) {
      if (const std::string* text = c.Param(name)) {
        *slot = ParseRfc3339(*text);
        if (!*slot) return c.Fail(ApiError{400, "malformed", std::string(name) + " must be an RFC 3339 date-time", name});
      }
    }
    std::string entity = c.ParamOr("entity"), actor = c.ParamOr("actor"), type = c.ParamOr("type");
    // raw=true adds each event's exact stored bytes (base64), so a client
    // can check the hash chain itself instead of trusting this JSON.
    std::string raw = c.ParamOr("raw", "false");
    if (raw != "true" && raw != "false") {
      return c.Fail(ApiError{400, "malformed", "raw is true or false", "raw"});
    }
    json items = json::array();
    uint64_t scanned_to = after, scanned = 0;
    bool more = false;
    Status failed = Status::Ok();
    uint64_t head = store_->head().seq;
    Status s = store_->Scan(after == UINT64_MAX ? after : after + 1, head, [&](uint64_t seq, std::string_view bytes) {
      if (items.size() == *limit || scanned == kMaxEventsScannedPerRequest) {
        more = true;
        return false;
      }
      ++scanned;
      scanned_to = seq;
      auto decoded = DecodedEvent::Decode(bytes);
      if (!decoded.ok()) {
        failed = Status::Corruption("seq " + std::to_string(seq) + ": " + decoded.status().message());
        return false;
      }
      auto ev = (*decoded)->event();
      if (!entity.empty() && entity != ev.getEntity().cStr()) return true;
      if (!actor.empty() && actor != ev.getActor().cStr()) return true;
      if (!type.empty() && type != EventTypeName(ev.which())) return true;
      if (from && ev.getRecordedAt() < *from) return true;
      if (to && ev.getRecordedAt() > *to) return true;
      items.push_back(AuditEventJson(ev));
      if (raw == "true") items.back()["raw"] = Base64Encode(bytes);
      return true;
    });
    if (!s.ok()) return c.Fail(s);
    if (!failed.ok()) return c.Fail(failed);
    c.Send(200, {{"items", std::move(items)},
                 {"next", more ? json(std::to_string(scanned_to)) : json(nullptr)},
                 {"as_of_seq", head}});
  }

  // One entity's events, oldest first, paged by version (`after`).
  void GetHistory(Call& c) {
    auto id = PathId(c);
    if (!id) return;
    ApiError e;
    auto limit = ParseLimit(c.Param("limit"), &e);
    if (!limit) return c.Fail(e);
    uint64_t after = 0;
    if (const std::string* text = AfterOrCursor(c)) {
      auto parsed = ParseUnsigned(*text);
      if (!parsed) return c.Fail(ApiError{400, "malformed", "after must be a version", "after"});
      after = *parsed;
    } else if (c.Param("after")) {
      return;  // refused by AfterOrCursor
    }
    uint64_t head = store_->head().seq;
    auto stream = store_->ReadStream(*id, after, *limit + 1);
    if (!stream.ok()) return c.Fail(stream.status());
    if (stream->empty() && after == 0) return c.Fail(404, "no entity " + *id, "id");
    bool more = stream->size() > *limit;
    if (more) stream->pop_back();
    json items = json::array();
    for (const StoredEvent& stored : *stream) {
      auto decoded = DecodedEvent::Decode(stored.bytes);
      if (!decoded.ok()) return c.Fail(decoded.status());
      items.push_back(AuditEventJson((*decoded)->event()));
    }
    json next = more ? json(std::to_string(after + items.size())) : json(nullptr);
    c.Send(200, {{"items", std::move(items)}, {"next", std::move(next)}, {"as_of_seq", head}});
  }

  void Verify(Call& c) {
    VerifyReport r = store_->Verify();
    c.Send(200, {{"ok", r.ok},
                 {"events", r.events},
                 {"head_hash", ToHex(r.head_hash)},
                 {"first_bad_seq", r.ok ? json(nullptr) : json(r.first_bad_seq)},
                 {"problem", r.ok ? json(nullptr) : json(r.problem)}});
  }

  // POST /v1/admin/backup {"to": SUBDIR}: a backup of the live database
  // through okrd's own handle (EventStore::Backup), into SUBDIR of the
  // --backup-root fixed at start ("to" absent: the root itself).
  void Backup(Call& c) {
    if (c.principal->role != Role::kAdmin) return c.Fail(403, "backups need the admin role");
    if (!options_.backup_root) {
      return c.Fail(403, "backups through okrd are off: start okrd with --backup-root DIR");
    }
    ApiError e;
    auto body = ParseBody(c.req.body, &e);
    if (!body) return c.Fail(e);
    for (auto it = body->begin(); it != body->end(); ++it) {
      if (it.key() != "to") return c.Fail(400, "unknown field " + it.key().substr(0, 64), it.key().substr(0, 64));
    }
    if (body->contains("to") && !(*body)["to"].is_string()) {
      return c.Fail(400, "to (a directory under okrd's --backup-root) must be a string", "to");
    }
    const std::string to = body->value("to", "");
    auto dir = options_.backup_root->OpenDir(to);
    if (!dir.ok()) return FailBackup(c, dir.status());
    auto backup = store_->Backup((*dir)->path());
    if (!backup.ok()) return FailBackup(c, backup.status());
    LogLine(*log_, options_.log_format, spdlog::level::info, "backup",
            {{"backup_id", backup->backup_id}, {"head_seq", backup->head_seq}, {"to", to}});
    c.Send(201, {{"backup_id", backup->backup_id},
                 {"to", to},
                 {"head_seq", backup->head_seq},
                 {"head_hash", ToHex(backup->head_hash)},
                 {"size_bytes", backup->size_bytes},
                 {"files", backup->files},
                 {"created_at", FormatTimeUs(backup->created_at_s * 1'000'000)}});
  }

  static void FailBackup(Call& c, const Status& s) {
    if (s.code() == Status::Code::kInvalid) return c.Fail(ApiError{422, "invalid", s.message(), "to"});
    c.Fail(s);
  }

  // --- writes ---

  void HandleWrite(Call& c, WriteRoute route) {
    std::string id;
    if (c.req.matches.size() > 1) {
      auto parsed = PathId(c);
      if (!parsed) return;
      id = *parsed;
    }
    ApiError e;
    auto body = ParseBody(c.req.body, &e);
    if (!body) return c.Fail(e);
    WriteRequest w;
    auto command = ParseCommand(route, id, *body, &w.reason, &e);
    if (!command) return c.Fail(e);
    w.command = std::move(*command);
    w.actor = c.principal->actor;
    if (c.req.has_header("If-Match")) {
      std::string v = c.req.get_header_value("If-Match");
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      auto version = ParseUnsigned(v);
      if (!version) return c.Fail(ApiError{400, "malformed", "If-Match must be a version number", "If-Match"});
      w.if_match = *version;
    }
    if (c.req.has_header("Idempotency-Key")) {
      std::string key = c.req.get_header_value("Idempotency-Key");
      bool printable = std::all_of(key.begin(), key.end(), [](char ch) { return ch > 0x20 && ch < 0x7f; });
      if (key.empty() || key.size() > kMaxIdempotencyKeyChars || !printable) {
        return c.Fail(ApiError{400, "malformed", "Idempotency-Key must be 1-" +
                                                     std::to_string(kMaxIdempotencyKeyChars) +
                                                     " printable characters", "Idempotency-Key"});
      }
      // Keys are per actor, so two people cannot collide or replay each other.
      w.idempotency_key = w.actor + '\n' + key;
      w.fingerprint = Sha256(c.req.method + ' ' + c.req.path + '\n' + c.req.body);
    }
    Principal principal = *c.principal;
    w.authorize = [principal, route](const Projection& p, const Command& cmd,
                                     std::vector<std::string>* read) -> Status {
      if (principal.role == Role::kAdmin) return Status::Ok();
      if (AdminOnly(route)) return Status::PermissionDenied("only admins change units and cycles");
      for (const std::string& unit : OwningUnits(p, cmd, read)) {
        if (!InScope(p, principal.units, unit, read)) {
          return Status::PermissionDenied(principal.actor + " may not change what " + unit + " owns");
        }
      }
      return Status::Ok();
    };
    auto result = projector_->Write(w);
    if (!result.ok()) return c.Fail(result.status());
    projector_->Read([&](const Projection& p) {
      View v(p, result->seq, INT64_MAX, projector_->NowUs());
      json out;
      if (const Unit* u = p.unit(result->entity)) out = v.UnitJson(*u);
      else if (const Cycle* x = p.cycle(result->entity)) out = v.CycleJson(*x);
      else if (const Objective* o = p.objective(result->entity)) out = v.ObjectiveJson(*o);
      else if (const KeyResult* kr = p.key_result(result->entity)) {
        out = v.KeyResultJson(*kr);
        size_t known = kr->CheckInsKnownAt(result->seq);
        if (known > 0 && kr->check_ins[known - 1].meta.seq == result->seq) {
          out["check_in"] = v.CheckInJson(kr->check_ins[known - 1]);
        }
      }
      out["seq"] = result->seq;
      if (result->replayed) c.res.set_header("Idempotent-Replayed", "true");
      c.res.set_header("ETag", "\"" + std::to_string(result->version) + "\"");
      c.Send(CreatesSomething(route) && result->changed ? 201 : 200, out);
    });
  }

  EventStore* store_;
  Projector* projector_;
  // Null when okrd runs without --tokens; swapped whole on SIGHUP.
  std::atomic<std::shared_ptr<const TokenTable>> tokens_;
  ServerOptions options_;
  Metrics* metrics_;
  std::shared_ptr<spdlog::logger> log_;
  std::atomic<uint64_t> request_counter_{0};
  ResponseCache cache_;
};

Server::Server(EventStore* store, Projector* projector, std::optional<TokenTable> tokens,
               ServerOptions options, Metrics* metrics, std::shared_ptr<spdlog::logger> log)
    : http_(std::make_unique<GuardedHttpServer>(options, metrics)) {
  routes_ = std::make_unique<Routes>(store, projector, std::move(tokens), std::move(options),
                                     metrics, std::move(log));
  // Without TCP_NODELAY keep-alive answers wait ~40 ms for delayed ACKs.
  http_->set_tcp_nodelay(true);
  // cpp-httplib never reads a body itself (ReceiveBody does, and leaves the
  // request without a length); its own limit is set all the same.
  http_->set_payload_max_length(kMaxBodyBytes);
  http_->set_read_timeout(kRequestReceiveSeconds, 0);
  http_->set_write_timeout(kWriteTimeoutSeconds, 0);
  http_->set_keep_alive_timeout(kIdleTimeoutSeconds);
  http_->set_keep_alive_max_count(kMaxKeepAliveRequests);
  // Remember the listening socket so Bind() can widen its backlog.
  http_->set_socket_options([this](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd_ = sock;
  });
  routes_->Install(*http_);
}

Server::~Server() = default;

void Server::ReplaceTokens(TokenTable tokens) { routes_->ReplaceTokens(std::move(tokens)); }

int Server::Bind(const std::string& host, int port) {
  int bound = port == 0 ? http_->bind_to_any_port(host) : (http_->bind_to_port(host, port) ? port : -1);
  // cpp-httplib listens with a backlog of 5: a burst of clients overflows
  // it and connections are reset. Listening again only widens the queue.
  if (bound >= 0 && listen_fd_ >= 0) ::listen(listen_fd_, kListenBacklog);
  return bound;
}

bool Server::Serve() {
  bool ok = stop_requested_ || http_->listen_after_bind();
  serve_done_ = true;
  return ok;
}

// cpp-httplib's stop() does nothing until the server runs, so a stop that
// comes between Bind() and Serve() (a SIGTERM right after start-up) would
// be lost and okrd would serve on: wait for Serve() to run or to end.
void Server::Stop() {
  stop_requested_ = true;
  while (!http_->is_running() && !serve_done_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  http_->stop();
}

}  // namespace okr::api
