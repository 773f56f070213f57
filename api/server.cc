#include "api/server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cassert>
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
#include <vector>

#include "api/request.h"
#include "api/response_cache.h"
#include "eventstore/event_json.h"
#include "projections/time_util.h"
#include "projections/views.h"

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
    case 409: return "conflict";
    case 412: return "version_mismatch";
    case 413: return "too_large";
    case 414: return "uri_too_long";
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

int64_t WallClockUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The threads serving connections. cpp-httplib holds one thread for a
// connection's whole life, idle seconds and slow clients included, so a
// fixed pool of N threads stops serving anyone while N clients sit idle or
// trickle a request in byte by byte. This keeps `ready` threads and starts
// more whenever a connection would otherwise wait, up to `max`; a thread
// beyond `ready` ends after kSpareThreadIdleSeconds without work. On
// shutdown it serves what is queued, then joins every thread.
class ConnectionThreads final : public httplib::TaskQueue {
 public:
  ConnectionThreads(size_t ready, size_t max) : ready_(ready), max_(std::max(ready, max)) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < ready_; ++i) StartLocked();
  }
  ~ConnectionThreads() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (std::thread& t : ended_) t.join();
    ended_.clear();
    jobs_.push_back(std::move(fn));
    if (idle_ < jobs_.size() && threads_.size() < max_) StartLocked();
    cv_.notify_one();
  }

  void shutdown() override {
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
  void StartLocked() {
    std::thread t([this] { Work(); });
    auto id = t.get_id();
    threads_.emplace(id, std::move(t));
  }

  void Work() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      ++idle_;
      bool woken = cv_.wait_for(lock, std::chrono::seconds(kSpareThreadIdleSeconds),
                                [&] { return stopping_ || !jobs_.empty(); });
      --idle_;
      if (!jobs_.empty()) {
        std::function<void()> fn = std::move(jobs_.front());
        jobs_.pop_front();
        lock.unlock();
        fn();
        lock.lock();
        continue;
      }
      if (stopping_) return;
      if (!woken && threads_.size() > ready_) {
        // A spare thread without work: it ends, and the next enqueue joins it.
        auto self = threads_.find(std::this_thread::get_id());
        ended_.push_back(std::move(self->second));
        threads_.erase(self);
        return;
      }
    }
  }

  const size_t ready_, max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::map<std::thread::id, std::thread> threads_;
  std::vector<std::thread> ended_;  // spare threads that ended, to be joined
  size_t idle_ = 0;
  bool stopping_ = false;
};

using SteadyClock = std::chrono::steady_clock;

int MillisUntil(SteadyClock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, INT32_MAX));
}

// A connection as cpp-httplib reads and writes it, with the limits its
// own stream lacks: a request's line and headers must arrive within
// kReadTimeoutSeconds (a client trickling one byte a second is cut off)
// and within kMaxHeaderBlockBytes (cpp-httplib limits each header line,
// not how many there are). The body is read under the per-read timeout
// and cpp-httplib's own body limit.
class GuardedStream final : public httplib::Stream {
 public:
  GuardedStream(int sock, time_t read_timeout_s, time_t write_timeout_s)
      : sock_(sock), read_timeout_ms_(static_cast<int>(read_timeout_s * 1000)),
        write_timeout_ms_(static_cast<int>(write_timeout_s * 1000)) {}

  // Waits up to `idle` for the next request (or for bytes already here);
  // false when none comes or `stopping` turns true.
  bool WaitForRequest(std::chrono::seconds idle, const std::function<bool()>& stopping) {
    auto until = SteadyClock::now() + idle;
    while (off_ == len_) {
      if (stopping()) return false;
      int wait = std::min(MillisUntil(until), 100);
      int ready = Poll(POLLIN, wait);
      if (ready < 0) return false;
      if (ready > 0) break;
      if (MillisUntil(until) == 0) return false;
    }
    in_headers_ = true;
    header_bytes_ = 0;
    tail_ = 0;
    header_deadline_ = SteadyClock::now() + std::chrono::seconds(kReadTimeoutSeconds);
    return true;
  }
  // The last request broke a limit; the connection is to be closed.
  bool refused() const { return refused_; }

  bool is_readable() const override {
    return off_ < len_ || Poll(POLLIN, ReadWaitMs()) > 0;
  }
  bool is_writable() const override { return Poll(POLLOUT, write_timeout_ms_) > 0; }

  ssize_t read(char* ptr, size_t size) override {
    if (refused_) return -1;
    if (off_ == len_) {
      int wait = ReadWaitMs();
      if (wait == 0 || Poll(POLLIN, wait) <= 0) {
        if (in_headers_) refused_ = true;  // too slow
        return -1;
      }
      ssize_t n;
      do {
        n = ::recv(sock_, buf_, sizeof buf_, 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
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
        refused_ = true;
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

 private:
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
  // How long the next read may wait: the per-read timeout, and no later
  // than the header deadline while the headers are still coming.
  int ReadWaitMs() const {
    return in_headers_ ? std::min(read_timeout_ms_, MillisUntil(header_deadline_)) : read_timeout_ms_;
  }
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
  int read_timeout_ms_, write_timeout_ms_;
  char buf_[4096];
  size_t off_ = 0, len_ = 0;
  bool in_headers_ = false, refused_ = false;
  size_t header_bytes_ = 0;
  uint32_t tail_ = 0;
  SteadyClock::time_point header_deadline_{};
};

// cpp-httplib's server, serving each connection through a GuardedStream
// (the keep-alive loop cpp-httplib runs, on that stream).
class GuardedHttpServer final : public httplib::Server {
 private:
  bool process_and_close_socket(socket_t sock) override {
    bool ok = false;
    {
      GuardedStream stream(sock, read_timeout_sec_, write_timeout_sec_);
      auto stopping = [this] { return svr_sock_ == INVALID_SOCKET; };
      for (size_t left = keep_alive_max_count_; left > 0; --left) {
        if (!stream.WaitForRequest(std::chrono::seconds(keep_alive_timeout_sec_), stopping)) break;
        bool closed = false;
        ok = process_request(stream, /*close_connection=*/left == 1, closed, nullptr);
        if (!ok || closed || stream.refused()) break;
      }
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ok;
  }
};

}  // namespace

// Everything a handler needs about its request.
struct Call {
  const httplib::Request& req;
  httplib::Response& res;
  std::optional<Principal> principal;
  std::string request_id;

  const std::string* Param(const char* name) const {
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
    Get(http, "/v1/units", Access::kCachedStateRead, [this](Call& c) { ListUnits(c); });
    Get(http, R"(/v1/units/([^/]+))", Access::kCachedStateRead, [this](Call& c) { GetUnit(c); });
    Get(http, "/v1/cycles", Access::kCachedStateRead, [this](Call& c) { ListCycles(c); });
    Get(http, R"(/v1/cycles/([^/]+))", Access::kCachedStateRead, [this](Call& c) { GetCycle(c); });
    Get(http, R"(/v1/cycles/([^/]+)/review)", Access::kCachedStateRead, [this](Call& c) { GetReview(c); });
    Get(http, "/v1/objectives", Access::kCachedStateRead, [this](Call& c) { ListObjectives(c); });
    Get(http, R"(/v1/objectives/([^/]+))", Access::kCachedStateRead, [this](Call& c) { GetObjective(c); });
    Get(http, R"(/v1/key-results/([^/]+))", Access::kCachedStateRead, [this](Call& c) { GetKeyResult(c); });
    Get(http, R"(/v1/key-results/([^/]+)/check-ins)", Access::kCachedStateRead, [this](Call& c) { ListCheckIns(c); });
    Get(http, "/v1/cascade", Access::kCachedStateRead, [this](Call& c) { GetCascade(c); });
    Get(http, "/v1/diff", Access::kCachedStateRead, [this](Call& c) { GetDiff(c); });
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

  httplib::Server::Handler Wrap(std::string route, Access access, Handler fn) {
    return [this, route = std::move(route), access, fn = std::move(fn)](
               const httplib::Request& req, httplib::Response& res) {
      auto started = std::chrono::steady_clock::now();
      Call c{req, res, std::nullopt, NextRequestId(req)};
      if (Admit(c, access)) {
        if (access == Access::kCachedStateRead) {
          Cached(c, fn);
        } else {
          fn(c);
        }
      }
      Finish(req, res, route, c.request_id, c.principal ? c.principal->actor : "", started);
    };
  }

  // Serves a state read from the cache while the projection has not moved
  // since the answer was computed; computes and keeps it otherwise. Only
  // 200 answers computed while the seq stood still are kept.
  void Cached(Call& c, const Handler& fn) {
    std::string key = c.req.path;
    for (const auto& [name, value] : c.req.params) {  // a multimap: sorted by name
      key += '\n' + name + '=' + value;
    }
    uint64_t before = projector_->seq();
    if (auto hit = cache_.Get(key, before)) {
      c.res.status = hit->status;
      for (const auto& [name, value] : hit->headers) c.res.set_header(name, value);
      c.res.set_content(std::move(hit->body), hit->content_type);
      return;
    }
    fn(c);
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
    Point point{p.seq(), INT64_MAX, WallClockUs()};
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
    if (*us > WallClockUs()) {
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
      View v(p, result->seq, INT64_MAX, WallClockUs());
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
    : http_(std::make_unique<GuardedHttpServer>()) {
  size_t threads = std::max<size_t>(1, options.threads);
  routes_ = std::make_unique<Routes>(store, projector, std::move(tokens), std::move(options),
                                     metrics, std::move(log));
  // Without TCP_NODELAY keep-alive answers wait ~40 ms for delayed ACKs.
  http_->set_tcp_nodelay(true);
  http_->set_payload_max_length(kMaxBodyBytes);
  http_->set_read_timeout(kReadTimeoutSeconds, 0);
  http_->set_write_timeout(kWriteTimeoutSeconds, 0);
  http_->set_keep_alive_timeout(kIdleTimeoutSeconds);
  http_->set_keep_alive_max_count(kMaxKeepAliveRequests);
  http_->new_task_queue = [threads] { return new ConnectionThreads(threads, kMaxConnectionThreads); };
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
