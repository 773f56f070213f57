// The okrd HTTP API (SPEC §3; docs/openapi.json describes every route).
//
// State reads answer from the projection as of any seq; audit reads come
// from the log itself; writes go through Projector::Write, the one write
// path. The server borrows the store and projector, which outlive it.
#pragma once

#include <spdlog/logger.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "api/auth.h"
#include "api/backup_root.h"
#include "api/log.h"
#include "api/metrics.h"
#include "api/replica.h"
#include "api/streams.h"
#include "eventstore/checkpoint.h"
#include "eventstore/event_store.h"
#include "projections/service/projector.h"

namespace httplib {
class Server;
}
namespace okr {
class KeyRing;  // eventstore/sealing.h
}
namespace okr::webhooks {
class Webhooks;
}

namespace okr::api {

// Limits on connections (each tested; SPEC §6 "Bounded requests").
// A request's line, headers and body must all arrive within this, counted
// from its first byte: a client trickling a byte a second is cut off (400
// while the headers come, 408 during the body), whatever the body's framing.
inline constexpr time_t kRequestReceiveSeconds = 10;
inline constexpr size_t kMaxHeaderBlockBytes = 64 * 1024;  // a request's line and headers together
inline constexpr size_t kMaxChunkLineBytes =
    1024;  // a chunk-size line (with extensions) or a trailer line
inline constexpr time_t kWriteTimeoutSeconds = 10;
inline constexpr time_t kIdleTimeoutSeconds = 5;  // keep-alive connections idle longer close
inline constexpr size_t kMaxKeepAliveRequests = 10'000;
inline constexpr size_t kMaxEventsScannedPerRequest = 100'000;
inline constexpr int kListenBacklog = 1024;  // connections waiting to be accepted
// Connections served at once (each holds a thread, idle or not), by
// default: ServerOptions::max_threads. ServerOptions::threads stay ready;
// the rest start on demand and end after kSpareThreadIdleSeconds without work.
inline constexpr size_t kMaxConnectionThreads = 1024;
inline constexpr int kSpareThreadIdleSeconds = 10;
// With every thread busy, this many connections per thread wait for one;
// beyond them a connection is answered 503 with Retry-After and closed.
inline constexpr size_t kQueuedConnectionsPerThread = 1;
inline constexpr size_t kDefaultMaxConnectionsPerAddress = 256;
inline constexpr int kRetryAfterSeconds = 1;  // in every 503 refusing a connection
// After refusing a request whose body it did not read (413, 415, …), okrd
// reads away what the client still sends for at most this long before it
// closes: closing with unread bytes resets the connection, and the client
// could lose the answer.
inline constexpr int kLingerMillis = 2000;

struct ServerOptions {
  bool private_reads = false;  // every read needs a token
  bool refuse_writes = false;  // forensics: every write answers 403
  size_t threads = 16;         // worker threads kept ready
  size_t max_threads =
      kMaxConnectionThreads;  // worker threads at most (connections served at once)
  size_t max_connections_per_address = kDefaultMaxConnectionsPerAddress;  // beyond: 503
  std::string openapi_json;   // served at /v1/openapi.json
  std::string dashboard_dir;  // static files served at / (empty: none)
  std::string data_dir;       // the log's directory: /metrics reports its filesystem's space
  LogFormat log_format = LogFormat::kText;
  // Where POST /v1/admin/backup may write (--backup-root); null: the route
  // answers 403 and says how to enable it.
  std::shared_ptr<const BackupRoot> backup_root;
  // The key that signs checkpoints and the log's origin (the one its
  // log.signing_key event records). Null only under --read-only-forensics
  // without the log's key file: then the key and checkpoint routes answer
  // 503, a review carries no checkpoint, and proofs are served as ever.
  std::shared_ptr<const SigningKey> signing_key;
  std::string origin;
  // The live feeds (SPEC §8); their log_format is log_format's.
  StreamOptions streams;
  // The webhooks' registry and deliveries (SPEC §8), which outlive the
  // server; null (forensics): the webhook routes answer 503.
  webhooks::Webhooks* webhooks = nullptr;
  // The subjects' keys (SPEC §10), which outlive the server; null: POST
  // /v1/admin/erasures answers 503.
  KeyRing* key_ring = nullptr;
  // A read replica's copy of its primary's log (SPEC §9), which outlives
  // the server; null on a primary. On a replica writes and the webhook
  // routes answer 403 read_only_replica naming the primary, checkpoints
  // 404 not_signed_here (signing_key is null), and the log's key is the
  // one its log.signing_key event records.
  const ReplicaFollower* replica = nullptr;
};

class Server {
 public:
  // `tokens` empty (nullopt): okrd is read-only and writes answer 403.
  Server(EventStore* store, Projector* projector, std::optional<TokenTable> tokens,
         ServerOptions options, Metrics* metrics, std::shared_ptr<spdlog::logger> log);
  ~Server();

  // Binds host:port (port 0: any free port); returns the bound port or -1.
  int Bind(const std::string& host, int port);
  // Serves until Stop(); returns false when the socket failed.
  bool Serve();
  // Stops accepting, lets in-flight requests finish, and returns.
  void Stop();
  // Swaps in a new token table (SIGHUP): requests already admitted keep the
  // principal they had; every later one sees only `tokens`. Thread-safe. A
  // server started without tokens stays read-only.
  void ReplaceTokens(TokenTable tokens);

 private:
  class Routes;
  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<Routes> routes_;
  int listen_fd_ = -1;  // the listening socket, once bound
  std::atomic<bool> stop_requested_{false}, serve_done_{false};
};

}  // namespace okr::api
