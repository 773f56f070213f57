// Private to the API library: what a route handler is handed (Call) and
// the class that holds every handler (Server::Routes). Its members are
// defined by job: the wiring in server.cc, state reads in read_routes.cc,
// reads that walk the log in log_routes.cc, writes in write_routes.cc,
// health and metrics in health_routes.cc, a replica's own answers in
// replica_routes.cc; answers sent as they are written (StreamText) in
// streamed.cc.
#pragma once

#include <httplib.h>
#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "api/errors.h"
#include "api/response_cache.h"
#include "api/routes/request.h"
#include "api/routes/routes.h"
#include "api/server.h"
#include "api/streams.h"
#include "projections/domain/commands.h"
#include "projections/read/views.h"

namespace okr::api {

// Everything a handler needs about its request. Lives for one request, on
// the thread serving it; borrows the request and response.
struct Call {
  const httplib::Request& req;
  httplib::Response& res;
  std::optional<Principal> principal;
  std::string request_id;
  // While a cached read computes its answer: the query parameters its
  // cache key holds. Reading another makes the answer uncacheable.
  const std::vector<std::string>* keyed_params = nullptr;
  mutable std::string unkeyed_param = {};  // the first such parameter read

  // The query parameter `name`, or null; notes a parameter a cached read's
  // key lacks.
  const std::string* Param(const char* name) const;
  std::string ParamOr(const char* name, std::string fallback = "") const {
    const std::string* p = Param(name);
    return p ? *p : fallback;
  }
  // Set when the answer streams: no body to keep in the answer cache.
  bool streamed = false;
  // Set when the answer depends on more than the projection's seq (a
  // replica's kept checkpoint): the answer cache does not keep it.
  bool uncacheable = false;

  // Answers `body` as JSON with `status`.
  void Send(int status, const nlohmann::json& body) { SendJsonText(status, Dump(body)); }
  // Answers `text`, which is JSON, with `status`.
  void SendJsonText(int status, std::string text) {
    res.status = status;
    res.set_content(std::move(text), "application/json; charset=utf-8");
  }
  // Gives the answer the ETag of a state read at `seq` (StateTag); every
  // 200 of a cached state read carries one.
  void TagState(uint64_t seq, std::optional<uint64_t> version = std::nullopt) {
    res.set_header("ETag", StateTag(seq, version));
  }
  // Answers the error body of a refusal.
  void Fail(const ApiError& e) { Send(e.status, ErrorBody(e.code, e.message, e.field)); }
  void Fail(const Status& s) {
    Send(HttpStatus(s), ErrorBody(ErrorCode(s), s.message(), s.field()));
  }
  void Fail(int status, const std::string& message, const std::string& field = "") {
    Send(status, ErrorBody(DefaultErrorCode(status), message, field));
  }
};

// Answers with `status` the JSON `write` produces, sent (chunked) a piece
// each time `write` flushes its JsonOut, so the answer is never in memory
// at once; what is left is sent at the end. `write` must own what it
// reads: it runs after the handler returns, on the same thread. It may
// take locks, but must not hold one while it flushes (a slow client would
// hold it too). The answer is not kept by the answer cache.
void StreamJson(Call& c, int status, std::function<void(JsonOut&)> write);
// Receives an answer's text in order, a piece at a time.
using TextSink = JsonOut::Sink;
// The same for any text: `write` hands the answer to its TextSink in
// pieces, under the same terms.
void StreamText(Call& c, int status, const std::string& content_type,
                std::function<void(const TextSink&)> write);

// The page size a list asks for (`limit=`, ParseLimit: `fallback` when
// absent, at most `max`); answers 400 and returns nullopt when it is out
// of range.
inline std::optional<size_t> LimitParam(Call& c, size_t fallback = kDefaultPageSize,
                                        size_t max = kMaxPageSize) {
  ApiError e;
  auto limit = ParseLimit(c.Param("limit"), &e, fallback, max);
  if (!limit) c.Fail(e);
  return limit;
}

// The id a query parameter names (`cycle=`, `owner=`, `root=`): empty
// when it is absent or empty (no filter). Answers 400 and returns nullopt
// when it is not an id: no entity can have it, and a refusal never echoes
// a control character back.
inline std::optional<std::string> IdParam(Call& c, const char* name) {
  std::string id = c.ParamOr(name);
  if (!id.empty() && !ValidId(id)) {
    c.Fail(ApiError{400, "malformed", std::string(name) + " must be an id: " + kIdRule, name});
    return std::nullopt;
  }
  return id;
}

// Ok when `cycle`, a filter (empty: none), names a cycle `p` knows; else
// 404 "no cycle …" on the field `cycle`. Looked up at the head by the
// routes that filter by cycle (the cascade looks at its as_of instead).
inline Status CycleKnown(const Projection& p, const std::string& cycle) {
  if (cycle.empty() || p.cycle(cycle) != nullptr) return Status::Ok();
  return Status::NotFound("no cycle " + cycle, "cycle");
}

// A diff page reads the log this many events at a time and takes the
// projection's lock once per batch, so a follower folding new events
// waits for one batch, never for a whole page.
inline constexpr uint64_t kDiffEventsPerLock = 1024;

// A page cursor: "<as_of>.<position>". It pins the state the first page
// answered from (lists: its as_of; diff: its `to`), so every page of one
// listing answers from the same state however the log grows, and says
// where the previous page ended (an id, a position in a series, or a
// diff's "<seq>.<rows of that event shown>"). Opaque to clients.
struct PageCursor {
  uint64_t as_of = 0;
  std::string position;
};
std::optional<PageCursor> ParsePageCursor(std::string_view text);
std::string PageCursorText(uint64_t as_of, const std::string& position);

// The state a read answers from: the seq (as_of), the business time (at)
// and the clock progress is judged by (now).
struct Point {
  uint64_t as_of;
  int64_t at;
  int64_t now;
};

// Where a diff page starts and what it covers: rows of (from, to] from
// event `seq` on, its first `skip` rows already shown.
struct DiffQuery {
  uint64_t from = 0, to = 0;
  std::string cycle;
  uint64_t seq = 0;
  uint64_t skip = 0;
};

// Every route's handler, bound to the server's store, projector, tokens
// and options. Handlers run on many threads at once: the members they
// share are the (thread-safe) projector, store, cache and metrics, and
// the token table, swapped whole.
class Server::Routes {
 public:
  Routes(EventStore* store, Projector* projector, std::optional<TokenTable> tokens,
         ServerOptions options, Metrics* metrics, std::shared_ptr<spdlog::logger> log);

  // Swaps in a new token table (SIGHUP); a server without tokens stays read-only.
  void ReplaceTokens(TokenTable tokens);
  // Binds every route of AllRoutes() to its handler on `http`, and the
  // hooks that answer what no route does. Once, before serving.
  void Install(httplib::Server& http);
  // Ends every stream; later stream requests answer 503. Idempotent.
  void StopStreams() { streams_.Stop(); }

 private:
  using Handler = std::function<void(Call&)>;

  // --- wiring (server.cc) ---
  Handler HandlerFor(const Route& route);
  void InstallHooks(httplib::Server& http);
  std::string NextRequestId(const httplib::Request& req);
  // "corrupt", "stuck" (SPEC §6) or, on a replica, "diverged" (SPEC §9);
  // null when okrd is healthy.
  const char* UnhealthyStatus() const;
  void Finish(const httplib::Request& req, httplib::Response& res, const std::string& route,
              const std::string& request_id, const std::string& actor,
              std::chrono::steady_clock::time_point started,
              const char* cache_control = "no-store");
  bool Admit(Call& c, const Route& route);
  bool Authenticate(Call& c, const TokenTable* tokens);
  bool AdmitWrite(Call& c, const TokenTable* tokens);
  httplib::Server::Handler Wrap(const Route& route, Handler fn);
  void Cached(Call& c, const Route& route, const Handler& fn);
  void ServeStateRead(Call& c, const Route& route, const Handler& fn);

  // --- state reads (read_routes.cc) ---
  std::optional<Point> ParsePoint(Call& c, const Projection& p, const char* as_of_name = "as_of");
  std::optional<uint64_t> ResolvePoint(Call& c, const Projection& p, const std::string& text,
                                       const char* name);
  std::optional<uint64_t> AnswerSeq(const Call& c, const Route& route);
  std::optional<std::string> PathId(Call& c);
  std::optional<Point> ParsePagedPoint(Call& c, const Projection& p,
                                       std::optional<PageCursor>* cursor);
  // The entities a page may hold, in id order (a superset of those `keep`
  // keeps at any seq), or nullopt for every entity of the map.
  template <typename E>
  using Listed = std::function<std::optional<std::vector<const E*>>(const Projection&)>;
  template <typename E, typename Keep, typename RowOf, typename Render>
  void Page(Call& c, const std::map<std::string, E>& (Projection::*all)() const, Keep keep,
            RowOf row_of, Render render, size_t max_scan = SIZE_MAX,
            const std::type_identity_t<Listed<E>>& listed = {});
  template <typename E, typename Render>
  void GetAsOf(Call& c, const char* kind, const E* (Projection::*find)(const std::string&) const,
               Render render);
  void OpenApi(Call& c);
  void ListUnits(Call& c);
  void GetUnit(Call& c);
  void ListCycles(Call& c);
  void GetCycle(Call& c);
  void ListObjectives(Call& c);
  void GetObjective(Call& c);
  void GetKeyResult(Call& c);
  void ListCheckIns(Call& c);
  void GetCascade(Call& c);
  void GetReview(Call& c);
  void GetLint(Call& c);

  // --- reads that walk the log (log_routes.cc) ---
  std::optional<DiffQuery> ParseDiffQuery(Call& c, const Projection& p);
  void GetDiff(Call& c);
  std::optional<uint64_t> ParseAfter(Call& c, const char* what);
  void ListEvents(Call& c);
  void ListRawEvents(Call& c);

  // --- live feeds (stream_routes.cc) ---
  void EventStream(Call& c);
  void ChangeStream(Call& c);
  std::optional<uint64_t> StreamAfter(Call& c);
  void OpenStream(Call& c, StreamRequest request);
  void GetHistory(Call& c);
  void Verify(Call& c);

  // --- the log's Merkle tree: key, checkpoints, proofs (tree_routes.cc) ---
  std::optional<uint64_t> PinnedTreeSize(const Call& c, const Route& route);
  Result<std::string> SignedNote(uint64_t size, Hash* root);
  StreamOptions StreamsOptions();
  // A review's checkpoint at `size`: signed here, or on a replica the
  // primary's kept one covering it (null when there is none).
  Result<nlohmann::json> CheckpointJson(uint64_t size);
  Result<nlohmann::json> KeptCheckpointJson(uint64_t size);
  // A review's ETag: its seq on a primary, whose review that fixes. On a
  // replica, whose review's checkpoint changes as newer ones are kept, the
  // tag tells its checkpoints apart too, and the answer cache keeps none.
  void TagReview(Call& c, uint64_t as_of, const nlohmann::json& checkpoint);
  void GetLogKey(Call& c);
  void GetCheckpoint(Call& c);
  void GetInclusionProof(Call& c);
  void GetConsistencyProof(Call& c);

  // --- writes (write_routes.cc) ---
  void Backup(Call& c);
  void Erase(Call& c);
  void GetReplicationKeys(Call& c);
  void HandleWrite(Call& c, WriteRoute route);
  bool ParseWrite(Call& c, WriteRoute route, WriteRequest* w);
  void AnswerWrite(Call& c, WriteRoute route, const WriteResult& result);

  // --- health and metrics (health_routes.cc) ---
  void Health(Call& c);
  void MetricsText(Call& c);
  // The data directory's filesystem: space left and size.
  std::string DiskMetrics() const;

  // --- what a read replica answers its own way (replica_routes.cc) ---
  // Refuses with `status` and `code`, naming the primary, because `why`.
  void FailOnReplica(Call& c, int status, const char* code, const std::string& why);
  // The primary's checkpoint the replica keeps, when it is of `size` (0:
  // of any size); else 404 not_signed_here.
  void ServeKeptCheckpoint(Call& c, uint64_t size);
  // The role, and on a replica its primary, lag and connection, for /healthz.
  void AddRoleHealth(nlohmann::json* body) const;
  // The same for /metrics.
  std::string RoleMetrics() const;
  bool Diverged() const { return options_.replica && options_.replica->state().diverged; }

  // --- webhooks (webhook_routes.cc) ---
  bool AdmitWebhooks(Call& c);
  // The webhooks' gauges for /metrics ("" when okrd delivers none).
  std::string WebhookMetrics(uint64_t head_seq) const;
  void ListWebhooks(Call& c);
  void RegisterWebhook(Call& c);
  void RemoveWebhook(Call& c);
  void WebhookDeliveries(Call& c);

  EventStore* store_;
  Projector* projector_;
  // Null when okrd runs without --tokens; swapped whole on SIGHUP.
  std::atomic<std::shared_ptr<const TokenTable>> tokens_;
  ServerOptions options_;
  Metrics* metrics_;
  std::shared_ptr<spdlog::logger> log_;
  std::atomic<uint64_t> request_counter_{0};
  ResponseCache cache_;
  StreamHub streams_;
};

}  // namespace okr::api
