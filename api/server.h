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
#include "eventstore/event_store.h"
#include "projections/projector.h"

namespace httplib {
class Server;
}

namespace okr::api {

// Limits on connections (each tested).
inline constexpr time_t kReadTimeoutSeconds = 10;   // a request's line and headers must arrive within this
inline constexpr size_t kMaxHeaderBlockBytes = 64 * 1024;  // a request's line and headers together
inline constexpr time_t kWriteTimeoutSeconds = 10;
inline constexpr time_t kIdleTimeoutSeconds = 5;    // keep-alive connections idle longer close
inline constexpr size_t kMaxKeepAliveRequests = 10'000;
inline constexpr size_t kMaxEventsScannedPerRequest = 100'000;
inline constexpr int kListenBacklog = 1024;  // connections waiting to be accepted
// Connections served at once (each holds a thread, idle or not); beyond
// this they wait. ServerOptions::threads stay ready; the rest start on
// demand and end after this long without work.
inline constexpr size_t kMaxConnectionThreads = 1024;
inline constexpr int kSpareThreadIdleSeconds = 10;

struct ServerOptions {
  bool private_reads = false;  // every read needs a token
  bool refuse_writes = false;  // forensics: every write answers 403
  size_t threads = 16;         // worker threads serving connections
  std::string openapi_json;    // served at /v1/openapi.json
  std::string dashboard_dir;   // static files served at / (empty: none)
  LogFormat log_format = LogFormat::kText;
  // Where POST /v1/admin/backup may write (--backup-root); null: the route
  // answers 403 and says how to enable it.
  std::shared_ptr<const BackupRoot> backup_root;
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
