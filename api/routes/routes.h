// Every route okrd serves, as one table: its method, the path regex the
// server matches, the path template docs/openapi.json names it by, who may
// call it, and what it does. The server binds each entry to a handler,
// okrctl renders commands onto the write entries, and the OpenAPI check
// compares the description with the table: a route exists once, here.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "api/routes/request.h"
#include "projections/domain/commands.h"

namespace okr::api {

// Who may call a route (the server's Admit enforces it).
enum class Access {
  kPublic,
  kStateRead,
  kCachedStateRead,  // a state read whose answer depends only on route, query and seq
  kAuditRead,
  kReplicationRead,  // what a read replica copies: the auditor's, the admin's and the replica's
  kWrite,
};

// What a route does. Every kind but kCommand has one handler of its own;
// kCommand routes carry a command, named by Route::write.
enum class RouteKind {
  kHealth,
  kMetrics,
  kOpenApi,
  kListUnits,
  kGetUnit,
  kListCycles,
  kGetCycle,
  kGetReview,
  kListObjectives,
  kGetObjective,
  kGetKeyResult,
  kListCheckIns,
  kCascade,
  kDiff,
  kLint,
  kEvents,
  kRawEvents,
  kEventStream,
  kChangeStream,
  kHistory,
  kVerify,
  kLogKey,
  kCheckpoint,
  kInclusionProof,
  kConsistencyProof,
  kBackup,
  kErase,
  kReplicationKeys,
  kListWebhooks,
  kRegisterWebhook,
  kRemoveWebhook,
  kWebhookDeliveries,
  kCommand,
};

struct Route {
  std::string method;        // "GET", "POST", "PATCH" or "DELETE"
  std::string pattern;       // the regex the server matches; ([^/]+) captures the path id
  std::string openapi_path;  // the same path as docs/openapi.json names it: ([^/]+) is {id}
  Access access = Access::kPublic;
  RouteKind kind = RouteKind::kHealth;
  // kCachedStateRead only: the query parameters the handler reads. Its
  // answers are kept under the path and these parameters' values, so a
  // handler that comes to read another parameter must have it added here.
  std::vector<std::string> cache_by;
  std::optional<WriteRoute> write;  // kCommand only: the command the route carries

  // "GET /v1/units/([^/]+)": how metrics and the log name the route.
  std::string Name() const { return method + " " + pattern; }
};

// Every route, in the order the server registers them. Built once, never
// changed: safe to read from any thread.
const std::vector<Route>& AllRoutes();

// A command as an HTTP request: what a client sends to have okrd run it.
struct RenderedCommand {
  std::string method;
  std::string path;  // the route's openapi_path with the command's subject as {id}
  nlohmann::json body;
};

// The route `command` travels by: the first kCommand entry of AllRoutes()
// whose WriteRoute carries the command's kind (a comment goes to its
// objective's route, which takes key results' ids as well).
WriteRoute WriteRouteOf(const Command& command);

// The request that ParseCommand turns back into `command` (and `reason`,
// when not empty): the exact inverse of ParseCommand for every kind.
// Unset optional fields are left out of the body; a create's defaulted
// fields are written out.
RenderedCommand RenderCommand(const Command& command, const std::string& reason);

}  // namespace okr::api
