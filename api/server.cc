// The server's wiring: the route table bound to its handlers, and what
// every request passes through on the way — one value of each header and
// parameter (RefuseRepeated), admission (Admit), the answer cache (Cached),
// request ids and the log line and metrics (Finish).
#include "api/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <set>
#include <thread>

#include "api/handler.h"
#include "api/transport.h"

namespace okr::api {

using nlohmann::json;

const std::string* Call::Param(const char* name) const {
  if (keyed_params && unkeyed_param.empty() &&
      std::find(keyed_params->begin(), keyed_params->end(), name) == keyed_params->end()) {
    unkeyed_param = name;
  }
  auto it = req.params.find(name);
  return it == req.params.end() ? nullptr : &it->second;
}

// The streams' options as the server's: its log format, and checkpoints
// signed with its key (none on a replica, which signs nothing).
StreamOptions Server::Routes::StreamsOptions() {
  StreamOptions options = options_.streams;
  options.log_format = options_.log_format;
  if (options_.signing_key != nullptr && !options_.replica) {
    options.checkpoint = [this](uint64_t size) -> std::optional<std::string> {
      auto checkpoint = CheckpointJson(size);
      if (!checkpoint.ok() || !checkpoint->is_object()) return std::nullopt;
      return Dump(*checkpoint);
    };
  }
  return options;
}

Server::Routes::Routes(EventStore* store, Projector* projector, std::optional<TokenTable> tokens,
                       ServerOptions options, Metrics* metrics, std::shared_ptr<spdlog::logger> log)
    : store_(store),
      projector_(projector),
      tokens_(tokens ? std::make_shared<const TokenTable>(std::move(*tokens)) : nullptr),
      options_(std::move(options)),
      metrics_(metrics),
      log_(std::move(log)),
      streams_(store, projector, StreamsOptions(), metrics, log_) {
  assert(store_ != nullptr && projector_ != nullptr);
  assert(metrics_ != nullptr && log_ != nullptr);
}

void Server::Routes::ReplaceTokens(TokenTable tokens) {
  if (tokens_.load() == nullptr) return;  // read-only stays read-only
  tokens_.store(std::make_shared<const TokenTable>(std::move(tokens)));
  // A stream keeps the principal it opened with: every follower is ended
  // (it reconnects, and is admitted by the new table).
  streams_.EndAll();
}

void Server::Routes::Install(httplib::Server& http) {
  for (const Route& route : AllRoutes()) {
    httplib::Server::Handler handler = Wrap(route, HandlerFor(route));
    if (route.method == "GET")
      http.Get(route.pattern, std::move(handler));
    else if (route.method == "POST")
      http.Post(route.pattern, std::move(handler));
    else if (route.method == "PATCH")
      http.Patch(route.pattern, std::move(handler));
    else if (route.method == "DELETE")
      http.Delete(route.pattern, std::move(handler));
    else
      assert(false && "a route's method is GET, POST, PATCH or DELETE");
  }
  if (!options_.dashboard_dir.empty()) http.set_mount_point("/", options_.dashboard_dir);
  InstallHooks(http);
}

// The handler of each kind of route in the table.
Server::Routes::Handler Server::Routes::HandlerFor(const Route& route) {
  using Member = void (Routes::*)(Call&);
  static const std::map<RouteKind, Member> kHandlers = {
      {RouteKind::kHealth, &Routes::Health},
      {RouteKind::kMetrics, &Routes::MetricsText},
      {RouteKind::kOpenApi, &Routes::OpenApi},
      {RouteKind::kListUnits, &Routes::ListUnits},
      {RouteKind::kGetUnit, &Routes::GetUnit},
      {RouteKind::kListCycles, &Routes::ListCycles},
      {RouteKind::kGetCycle, &Routes::GetCycle},
      {RouteKind::kGetReview, &Routes::GetReview},
      {RouteKind::kListObjectives, &Routes::ListObjectives},
      {RouteKind::kGetObjective, &Routes::GetObjective},
      {RouteKind::kGetKeyResult, &Routes::GetKeyResult},
      {RouteKind::kListCheckIns, &Routes::ListCheckIns},
      {RouteKind::kCascade, &Routes::GetCascade},
      {RouteKind::kDiff, &Routes::GetDiff},
      {RouteKind::kLint, &Routes::GetLint},
      {RouteKind::kEvents, &Routes::ListEvents},
      {RouteKind::kRawEvents, &Routes::ListRawEvents},
      {RouteKind::kEventStream, &Routes::EventStream},
      {RouteKind::kChangeStream, &Routes::ChangeStream},
      {RouteKind::kHistory, &Routes::GetHistory},
      {RouteKind::kVerify, &Routes::Verify},
      {RouteKind::kLogKey, &Routes::GetLogKey},
      {RouteKind::kCheckpoint, &Routes::GetCheckpoint},
      {RouteKind::kInclusionProof, &Routes::GetInclusionProof},
      {RouteKind::kConsistencyProof, &Routes::GetConsistencyProof},
      {RouteKind::kBackup, &Routes::Backup},
      {RouteKind::kErase, &Routes::Erase},
      {RouteKind::kReplicationKeys, &Routes::GetReplicationKeys},
      {RouteKind::kListWebhooks, &Routes::ListWebhooks},
      {RouteKind::kRegisterWebhook, &Routes::RegisterWebhook},
      {RouteKind::kRemoveWebhook, &Routes::RemoveWebhook},
      {RouteKind::kWebhookDeliveries, &Routes::WebhookDeliveries},
  };
  if (route.kind == RouteKind::kCommand) {
    assert(route.write.has_value());
    WriteRoute write = *route.write;
    return [this, write](Call& c) { HandleWrite(c, write); };
  }
  auto it = kHandlers.find(route.kind);
  assert(it != kHandlers.end());
  Member member = it->second;
  return [this, member](Call& c) { (this->*member)(c); };
}

// What reaches no route: static files, requests the transport refused,
// routing misses and cpp-httplib's own refusals, exceptions.
void Server::Routes::InstallHooks(httplib::Server& http) {
  // Static files (the dashboard) reach no route: stamp and log them here,
  // just before cpp-httplib writes any response out.
  http.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (res.has_header("X-Request-Id")) return;
    Finish(req, res, "static", NextRequestId(req), "", std::chrono::steady_clock::now(),
           /*cache_control=*/nullptr);
  });

  // A request the transport refused while receiving it (ReceiveBody:
  // its body too large, its framing ambiguous, its deadline passed) is
  // answered here, before routing; its connection then closes. So is a
  // path that decodes to a control character, which names no route and
  // no file: a NUL cut a static file's name short where its type was read
  // from the whole name (`/app.js%00.html` answered app.js as HTML).
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    auto refuse = [&](int status, const std::string& message, const std::string& field) {
      res.status = status;
      res.set_content(Dump(ErrorBody(DefaultErrorCode(status), message, field)),
                      "application/json; charset=utf-8");
      Finish(req, res, "unrouted", NextRequestId(req), "", std::chrono::steady_clock::now());
      return httplib::Server::HandlerResponse::Handled;
    };
    if (req.has_header(kRefusedStatusHeader)) {
      const int status = std::atoi(req.get_header_value(kRefusedStatusHeader).c_str());
      assert(status >= 400);
      return refuse(status, req.get_header_value(kRefusedMessageHeader),
                    req.get_header_value(kRefusedFieldHeader));
    }
    if (std::any_of(req.path.begin(), req.path.end(),
                    [](char ch) { return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f; })) {
      return refuse(400, "the path holds a control character", "");
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        // cpp-httplib calls this for every status >= 400, routed or not. A
        // routed handler has already answered (and stamped X-Request-Id):
        // keep its error body, with its code and field.
        if (res.has_header("X-Request-Id")) return httplib::Server::HandlerResponse::Handled;
        // Routing misses, 413 and other refusals cpp-httplib makes itself.
        int status = res.status < 400 ? 404 : res.status;
        std::string message =
            status == 404   ? "no such route: " + req.method + " " + req.path.substr(0, 200)
            : status == 413 ? "body larger than " + std::to_string(kMaxBodyBytes) + " bytes"
                            : "request refused";
        res.status = status;
        res.set_content(Dump(ErrorBody(DefaultErrorCode(status), message, "")),
                        "application/json; charset=utf-8");
        Finish(req, res, "unrouted", NextRequestId(req), "", std::chrono::steady_clock::now());
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        res.status = 500;
        res.set_content(Dump(ErrorBody("internal", "internal error", "")),
                        "application/json; charset=utf-8");
      });
}

// The client's X-Request-Id when it is a short plain token, so a client
// can follow its request through the log; else a counter of this server.
std::string Server::Routes::NextRequestId(const httplib::Request& req) {
  std::string given = req.get_header_value("X-Request-Id");
  bool usable =
      !given.empty() && given.size() <= 64 && std::all_of(given.begin(), given.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
      });
  if (usable) return given;
  char buf[32];
  std::snprintf(buf, sizeof buf, "req-%012llx",
                static_cast<unsigned long long>(request_counter_.fetch_add(1) + 1));
  return buf;
}

const char* Server::Routes::UnhealthyStatus() const {
  if (store_->BackgroundCheck().state == LogCheck::State::kDamaged) return "corrupt";
  if (projector_->is_stuck()) return "stuck";
  if (Diverged()) return "diverged";
  return nullptr;
}

void Server::Routes::Finish(const httplib::Request& req, httplib::Response& res,
                            const std::string& route, const std::string& request_id,
                            const std::string& actor, std::chrono::steady_clock::time_point started,
                            const char* cache_control) {
  assert(!request_id.empty());
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Request-Id", request_id);
  // Every answer says when okrd is not healthy (SPEC §6).
  if (const char* status = UnhealthyStatus()) res.set_header("Okrd-Status", status);
  if (cache_control) res.set_header("Cache-Control", cache_control);
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
          {{"method", method},
           {"route", route},
           {"status", res.status},
           {"us", micros},
           {"actor", actor.empty() ? "-" : actor},
           {"id", request_id}});
}

// Sets c.principal from the Authorization header, if any; on a malformed
// header or an unknown token answers 401 and returns false.
bool Server::Routes::Authenticate(Call& c, const TokenTable* tokens) {
  std::string auth = c.req.get_header_value("Authorization");
  if (auth.empty()) return true;
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
  return true;
}

bool Server::Routes::AdmitWrite(Call& c, const TokenTable* tokens) {
  if (options_.replica) {
    FailOnReplica(c, 403, "read_only_replica", "send writes to the primary");
    return false;
  }
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
  if (c.principal->role != Role::kEditor && c.principal->role != Role::kAdmin) {
    c.Fail(403, std::string("the ") + RoleName(c.principal->role) + " role cannot write");
    return false;
  }
  return true;
}

// What a replica's token may read besides kReplicationRead routes: the
// log's key, checkpoints and proofs (public ones, unless --private).
static bool ReplicaMayRead(const Route& route) {
  return route.access == Access::kPublic || route.access == Access::kReplicationRead ||
         route.kind == RouteKind::kLogKey || route.kind == RouteKind::kCheckpoint ||
         route.kind == RouteKind::kInclusionProof || route.kind == RouteKind::kConsistencyProof;
}

// Authenticates and authorises a call of `route`; on refusal answers and
// returns false.
bool Server::Routes::Admit(Call& c, const Route& route) {
  // One load: the whole request sees one token table, however SIGHUP swaps it.
  const std::shared_ptr<const TokenTable> tokens = tokens_.load();
  if (!Authenticate(c, tokens.get())) return false;
  const bool replica = c.principal && c.principal->role == Role::kReplica;
  if (replica && !ReplicaMayRead(route)) {
    c.Fail(403, "the replica role reads only what replication copies");
    return false;
  }
  switch (route.access) {
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
    case Access::kReplicationRead:
      if (!c.principal) {
        c.Fail(401, "this read needs an auditor, admin or replica token");
        c.res.set_header("WWW-Authenticate", "Bearer");
        return false;
      }
      if (c.principal->role != Role::kAuditor && c.principal->role != Role::kAdmin && !replica) {
        c.Fail(403, "this read needs the auditor, admin or replica role");
        return false;
      }
      return true;
    case Access::kWrite:
      return AdmitWrite(c, tokens.get());
  }
  return false;
}

// Refuses (400, naming it) a request header okrd reads as one value given
// more than once, or a query parameter given twice with different values,
// and returns true; false when there is none. No route takes one twice:
// which value it read would be a guess (cpp-httplib finds the first), and
// a proxy in front that checked another (a token, a unit filter) would
// have passed a request okrd reads another way.
static bool RefuseRepeated(Call& c) {
  for (const char* name : {"Authorization", "If-Match", "Idempotency-Key", "Last-Event-ID"}) {
    if (c.req.get_header_value_count(name) > 1) {
      c.Fail(400, std::string("the header ") + name + " is given more than once", name);
      return true;
    }
  }
  const auto& params = c.req.params;  // a multimap: equal names are adjacent
  const auto repeated =
      std::adjacent_find(params.begin(), params.end(),
                         [](const auto& a, const auto& b) { return a.first == b.first; });
  if (repeated == params.end()) return false;
  c.Fail(400, "the query parameter " + repeated->first + " is given more than once",
         repeated->first);
  return true;
}

httplib::Server::Handler Server::Routes::Wrap(const Route& route, Handler fn) {
  assert(fn);
  // `route` is an entry of AllRoutes(), which lives as long as the process.
  return [this, route = &route, fn = std::move(fn)](const httplib::Request& req,
                                                    httplib::Response& res) {
    auto started = std::chrono::steady_clock::now();
    Call c{req, res, std::nullopt, NextRequestId(req)};
    const bool state_read = route->access == Access::kCachedStateRead;
    if (!RefuseRepeated(c) && Admit(c, *route)) {
      if (state_read) {
        ServeStateRead(c, *route, fn);
      } else {
        fn(c);
      }
    }
    // A state read's answer may be kept if revalidated (its ETag); every
    // other answer, refusals included, is not to be kept at all.
    const bool revalidate = state_read && (res.status == 200 || res.status == 304);
    Finish(req, res, route->Name(), c.request_id, c.principal ? c.principal->actor : "", started,
           revalidate ? "no-cache" : "no-store");
  };
}

// Routes answering one entity: their ETags carry its version (StateTag).
static bool AnswersVersion(RouteKind kind) {
  return kind == RouteKind::kGetUnit || kind == RouteKind::kGetCycle ||
         kind == RouteKind::kGetObjective || kind == RouteKind::kGetKeyResult;
}

// Answers 304 Not Modified with `tag` (quoted) and no body.
static void NotModified(Call& c, const std::string& tag) {
  c.res = httplib::Response{};
  c.res.status = 304;
  c.res.set_header("ETag", tag);
}

// A state read: 304 when If-None-Match names the answer's tag. For most
// reads the tag is the seq alone, so it is decided before the answer is
// looked up or built (AnswerSeq). A read of one entity also carries its
// version, known only under the lock: it is compared once the answer is
// found (usually in the cache). "*" matches any answer, so it too waits
// for the answer.
void Server::Routes::ServeStateRead(Call& c, const Route& route, const Handler& fn) {
  assert(route.access == Access::kCachedStateRead);
  const std::string if_none_match = c.req.get_header_value("If-None-Match");
  // A replica's checkpoint, and its review's, change without its seq.
  const bool versioned =
      AnswersVersion(route.kind) || (options_.replica && (route.kind == RouteKind::kGetReview ||
                                                          route.kind == RouteKind::kCheckpoint));
  if (!if_none_match.empty() && !versioned) {
    if (auto seq = AnswerSeq(c, route)) {
      const std::string tag = StateTag(*seq, std::nullopt);
      if (IfNoneMatchNames(if_none_match, tag)) return NotModified(c, tag);
    }
  }
  Cached(c, route, fn);
  assert(c.res.status != 200 || c.res.has_header("ETag"));
  if (c.res.status != 200 || if_none_match.empty()) return;
  const std::string tag = c.res.get_header_value("ETag");
  if (IfNoneMatchAny(if_none_match) || (versioned && IfNoneMatchNames(if_none_match, tag))) {
    NotModified(c, tag);
  }
}

namespace {

// The cache key of a read (AnswerKey): its path and the values of the
// query parameters it reads — the values cpp-httplib's params.find()
// gives, the ones Call::Param hands the handler.
std::string CacheKey(const httplib::Request& req, const std::vector<std::string>& params) {
  std::vector<const std::string*> values;
  values.reserve(params.size());
  for (const std::string& name : params) {
    auto it = req.params.find(name);
    values.push_back(it == req.params.end() ? nullptr : &it->second);
  }
  return AnswerKey(req.path, values);
}

}  // namespace

// Serves a state read from the cache while the projection has not moved
// since the answer was computed; computes and keeps it otherwise. Only
// 200 answers computed while the seq stood still, by a handler that read
// no query parameter outside the route's cache_by, are kept.
void Server::Routes::Cached(Call& c, const Route& route, const Handler& fn) {
  assert(route.access == Access::kCachedStateRead && !route.cache_by.empty());
  std::string key = CacheKey(c.req, route.cache_by);
  uint64_t before = projector_->seq();
  if (auto hit = cache_.Get(key, before)) {
    c.res.status = hit->status;
    for (const auto& [name, value] : hit->headers) c.res.set_header(name, value);
    c.res.set_content(std::move(hit->body), hit->content_type);
    return;
  }
  c.keyed_params = &route.cache_by;
  fn(c);
  c.keyed_params = nullptr;
  if (!c.unkeyed_param.empty()) {
    // A programming error (the route's cache_by lacks a parameter): served, never kept.
    LogLine(*log_, options_.log_format, spdlog::level::err, "uncacheable_read",
            {{"route", route.Name()}, {"param", c.unkeyed_param}});
    return;
  }
  if (c.res.status != 200 || c.streamed || c.uncacheable || projector_->seq() != before) return;
  CachedAnswer answer{c.res.status, c.res.get_header_value("Content-Type"), c.res.body, {}};
  for (const char* name : {"ETag", "Content-Disposition"}) {
    if (c.res.has_header(name)) answer.headers.emplace_back(name, c.res.get_header_value(name));
  }
  cache_.Put(key, before, std::move(answer));
}

Server::Server(EventStore* store, Projector* projector, std::optional<TokenTable> tokens,
               ServerOptions options, Metrics* metrics, std::shared_ptr<spdlog::logger> log)
    : http_(MakeGuardedHttpServer(options, metrics)) {
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
  int bound =
      port == 0 ? http_->bind_to_any_port(host) : (http_->bind_to_port(host, port) ? port : -1);
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
  routes_->StopStreams();
  while (!http_->is_running() && !serve_done_)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  http_->stop();
}

}  // namespace okr::api
