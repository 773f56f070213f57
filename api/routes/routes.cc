#include "api/routes/routes.h"

#include <array>
#include <cassert>
#include <type_traits>
#include <variant>

#include "eventstore/base/time.h"

namespace okr::api {

using nlohmann::json;

namespace {

constexpr char kId[] = "([^/]+)";

Route Read(std::string pattern, std::string openapi_path, Access access, RouteKind kind) {
  assert(access != Access::kCachedStateRead && access != Access::kWrite);
  return Route{"GET", std::move(pattern), std::move(openapi_path), access, kind, {}, std::nullopt};
}

Route Cached(std::string pattern, std::string openapi_path, RouteKind kind,
             std::vector<std::string> cache_by) {
  assert(!cache_by.empty());
  return Route{"GET",
               std::move(pattern),
               std::move(openapi_path),
               Access::kCachedStateRead,
               kind,
               std::move(cache_by),
               std::nullopt};
}

Route Write(std::string method, std::string pattern, std::string openapi_path, WriteRoute write) {
  assert(method == "POST" || method == "PATCH" || method == "DELETE");
  return Route{std::move(method),
               std::move(pattern),
               std::move(openapi_path),
               Access::kWrite,
               RouteKind::kCommand,
               {},
               write};
}

std::vector<Route> ReadRoutes() {
  using K = RouteKind;
  const std::string id = kId;
  return {
      Read("/healthz", "/healthz", Access::kPublic, K::kHealth),
      Read("/metrics", "/metrics", Access::kStateRead, K::kMetrics),
      Read("/v1/openapi.json", "/v1/openapi.json", Access::kPublic, K::kOpenApi),
      Cached("/v1/units", "/v1/units", K::kListUnits, {"as_of", "at", "limit", "cursor"}),
      Cached("/v1/units/" + id, "/v1/units/{id}", K::kGetUnit, {"as_of", "at"}),
      Cached("/v1/cycles", "/v1/cycles", K::kListCycles, {"as_of", "at", "limit", "cursor"}),
      Cached("/v1/cycles/" + id, "/v1/cycles/{id}", K::kGetCycle, {"as_of", "at"}),
      Cached("/v1/cycles/" + id + "/review", "/v1/cycles/{id}/review", K::kGetReview,
             {"format", "as_of", "at"}),
      Cached("/v1/objectives", "/v1/objectives", K::kListObjectives,
             {"include_archived", "as_of", "at", "cycle", "owner", "limit", "cursor", "q"}),
      Cached("/v1/objectives/" + id, "/v1/objectives/{id}", K::kGetObjective, {"as_of", "at"}),
      Cached("/v1/key-results/" + id, "/v1/key-results/{id}", K::kGetKeyResult, {"as_of", "at"}),
      Cached("/v1/key-results/" + id + "/check-ins", "/v1/key-results/{id}/check-ins",
             K::kListCheckIns, {"limit", "cursor", "as_of", "at"}),
      Cached("/v1/cascade", "/v1/cascade", K::kCascade, {"as_of", "at", "cycle", "depth", "root"}),
      Cached("/v1/diff", "/v1/diff", K::kDiff, {"as_of", "from", "to", "cycle", "limit", "cursor"}),
      Read("/v1/lint", "/v1/lint", Access::kStateRead, K::kLint),
      Read("/v1/events", "/v1/events", Access::kAuditRead, K::kEvents),
      Read("/v1/events/raw", "/v1/events/raw", Access::kReplicationRead, K::kRawEvents),
      // The subjects' keys (SPEC §10), for the replica role alone.
      Read("/v1/replication/keys", "/v1/replication/keys", Access::kReplicationRead,
           K::kReplicationKeys),
      // Live feeds (SPEC §8): Server-Sent Events that hold no worker thread.
      Read("/v1/events/stream", "/v1/events/stream", Access::kReplicationRead, K::kEventStream),
      Read("/v1/changes/stream", "/v1/changes/stream", Access::kStateRead, K::kChangeStream),
      Read("/v1/history/" + id, "/v1/history/{id}", Access::kAuditRead, K::kHistory),
      Read("/v1/audit/verify", "/v1/audit/verify", Access::kAuditRead, K::kVerify),
      // The log's Merkle tree (SPEC §7): hashes only, so readers may ask.
      // An answer for a given size never changes; without one it is the head's.
      Read("/v1/log/key", "/v1/log/key", Access::kStateRead, K::kLogKey),
      Cached("/v1/log/checkpoint", "/v1/log/checkpoint", K::kCheckpoint, {"size"}),
      Cached("/v1/log/proof/inclusion", "/v1/log/proof/inclusion", K::kInclusionProof,
             {"seq", "size"}),
      Cached("/v1/log/proof/consistency", "/v1/log/proof/consistency", K::kConsistencyProof,
             {"from", "to"}),
  };
}

std::vector<Route> CommandRoutes() {
  using R = WriteRoute;
  const std::string id = kId;
  return {
      Write("POST", "/v1/units", "/v1/units", R::kCreateUnit),
      Write("PATCH", "/v1/units/" + id, "/v1/units/{id}", R::kUpdateUnit),
      Write("DELETE", "/v1/units/" + id, "/v1/units/{id}", R::kRetireUnit),
      Write("POST", "/v1/cycles", "/v1/cycles", R::kCreateCycle),
      Write("PATCH", "/v1/cycles/" + id, "/v1/cycles/{id}", R::kUpdateCycle),
      Write("POST", "/v1/cycles/" + id + "/close", "/v1/cycles/{id}/close", R::kCloseCycle),
      Write("POST", "/v1/cycles/" + id + "/reopen", "/v1/cycles/{id}/reopen", R::kReopenCycle),
      Write("POST", "/v1/objectives", "/v1/objectives", R::kCreateObjective),
      Write("PATCH", "/v1/objectives/" + id, "/v1/objectives/{id}", R::kUpdateObjective),
      Write("DELETE", "/v1/objectives/" + id, "/v1/objectives/{id}", R::kArchiveObjective),
      Write("POST", "/v1/objectives/" + id + "/comments", "/v1/objectives/{id}/comments",
            R::kComment),
      Write("POST", "/v1/objectives/" + id + "/review", "/v1/objectives/{id}/review", R::kReview),
      Write("POST", "/v1/key-results", "/v1/key-results", R::kCreateKeyResult),
      Write("PATCH", "/v1/key-results/" + id, "/v1/key-results/{id}", R::kUpdateKeyResult),
      Write("DELETE", "/v1/key-results/" + id, "/v1/key-results/{id}", R::kRemoveKeyResult),
      Write("POST", "/v1/key-results/" + id + "/check-ins", "/v1/key-results/{id}/check-ins",
            R::kCheckIn),
      Write("POST", "/v1/key-results/" + id + "/corrections", "/v1/key-results/{id}/corrections",
            R::kCorrection),
      Write("POST", "/v1/key-results/" + id + "/comments", "/v1/key-results/{id}/comments",
            R::kComment),
  };
}

std::vector<Route> BuildRoutes() {
  std::vector<Route> routes = ReadRoutes();
  // The backup is a POST an admin makes, but no command: it has its own handler.
  routes.push_back(Route{"POST",
                         "/v1/admin/backup",
                         "/v1/admin/backup",
                         Access::kWrite,
                         RouteKind::kBackup,
                         {},
                         std::nullopt});
  // An erasure (SPEC §10) is no command either: it deletes a key first.
  routes.push_back(Route{"POST",
                         "/v1/admin/erasures",
                         "/v1/admin/erasures",
                         Access::kWrite,
                         RouteKind::kErase,
                         {},
                         std::nullopt});
  // Webhooks (SPEC §8): admins only, each with its own handler. Their
  // reads show no state of the organisation, so they are audit reads.
  const std::string id = kId;
  routes.push_back(
      Read("/v1/webhooks", "/v1/webhooks", Access::kAuditRead, RouteKind::kListWebhooks));
  routes.push_back(Read("/v1/webhooks/" + id + "/deliveries", "/v1/webhooks/{id}/deliveries",
                        Access::kAuditRead, RouteKind::kWebhookDeliveries));
  routes.push_back(Route{"POST",
                         "/v1/webhooks",
                         "/v1/webhooks",
                         Access::kWrite,
                         RouteKind::kRegisterWebhook,
                         {},
                         std::nullopt});
  routes.push_back(Route{"DELETE",
                         "/v1/webhooks/" + id,
                         "/v1/webhooks/{id}",
                         Access::kWrite,
                         RouteKind::kRemoveWebhook,
                         {},
                         std::nullopt});
  for (Route& r : CommandRoutes()) routes.push_back(std::move(r));
  for ([[maybe_unused]] const Route& r : routes) {
    assert(r.write.has_value() == (r.kind == RouteKind::kCommand));
    assert(r.cache_by.empty() == (r.access != Access::kCachedStateRead));
  }
  return routes;
}

// --- rendering commands ---
//
// One BodyOf per command kind, each the mirror of its case in ParseCommand:
// the fields ParseCommand reads, under the same names; *subject gets the
// path id the route carries (empty for creates, whose path has none).

// A request body built field by field: an optional field only when it is
// set, a defaultable string only when it is not empty (ParseCommand reads
// an absent one and "" alike).
class Body {
 public:
  explicit Body(json fields = json::object()) : json_(std::move(fields)) {
    assert(json_.is_object());
  }
  template <typename T>
  Body& Set(const char* name, const std::optional<T>& value) {
    if (value) json_[name] = *value;
    return *this;
  }
  Body& NonEmpty(const char* name, const std::string& value) {
    if (!value.empty()) json_[name] = value;
    return *this;
  }
  json Take() { return std::move(json_); }

 private:
  json json_;
};

// Retiring, closing, reopening, archiving, removing: the route names the
// subject, and the body carries nothing but a reason.
template <typename T>
requires std::is_same_v<T, RetireUnit> || std::is_same_v<T, CloseCycle> ||
    std::is_same_v<T, ReopenCycle> || std::is_same_v<T, ArchiveObjective> ||
    std::is_same_v<T, RemoveKeyResult>
        json BodyOf(const T& c, std::string* subject) {
  assert(!c.id.empty());
  *subject = c.id;
  return json::object();
}
json BodyOf(const CreateUnit& c, std::string*) {
  return Body(json{{"id", c.id}, {"kind", c.kind}, {"name", c.name}})
      .NonEmpty("parent", c.parent)
      .NonEmpty("email", c.email)
      .Take();
}
json BodyOf(const UpdateUnit& c, std::string* subject) {
  *subject = c.id;
  return Body().Set("name", c.name).Set("parent", c.parent).Set("email", c.email).Take();
}
json BodyOf(const CreateCycle& c, std::string*) {
  return Body(json{{"id", c.id}, {"name", c.name}, {"starts", c.starts}, {"ends", c.ends}})
      .NonEmpty("parent", c.parent)
      .Take();
}
json BodyOf(const UpdateCycle& c, std::string* subject) {
  *subject = c.id;
  return Body()
      .Set("name", c.name)
      .Set("starts", c.starts)
      .Set("ends", c.ends)
      .Set("parent", c.parent)
      .Take();
}
json BodyOf(const CreateObjective& c, std::string*) {
  return {{"id", c.id},
          {"cycle", c.cycle},
          {"owner", c.owner},
          {"title", c.title},
          {"description", c.description},
          {"parents", c.parents}};
}
json BodyOf(const UpdateObjective& c, std::string* subject) {
  *subject = c.id;
  std::optional<std::string> state;
  if (c.archived) state = *c.archived ? "archived" : "active";
  return Body()
      .Set("title", c.title)
      .Set("description", c.description)
      .Set("owner", c.owner)
      .Set("parents", c.parents)
      .Set("state", state)
      .Take();
}
json BodyOf(const CreateKeyResult& c, std::string*) {
  return Body(json{{"id", c.id},
                   {"objective", c.objective},
                   {"title", c.title},
                   {"metric", c.metric},
                   {"start", c.start},
                   {"target", c.target},
                   {"unit", c.unit},
                   {"weight", c.weight}})
      .NonEmpty("owner", c.owner)
      .Take();
}
json BodyOf(const UpdateKeyResult& c, std::string* subject) {
  *subject = c.id;
  return Body()
      .Set("title", c.title)
      .Set("owner", c.owner)
      .Set("metric", c.metric)
      .Set("unit", c.unit)
      .Set("start", c.start)
      .Set("target", c.target)
      .Set("weight", c.weight)
      .Take();
}
json BodyOf(const RecordCheckIn& c, std::string* subject) {
  *subject = c.key_result;
  std::optional<std::string> measured_at;
  if (c.measured_at_us) measured_at = FormatTimeUs(*c.measured_at_us);
  return Body(json{{"value", c.value}})
      .NonEmpty("id", c.id)
      .Set("confidence", c.confidence)
      .NonEmpty("status", c.status)
      .NonEmpty("note", c.note)
      .Set("measured_at", measured_at)
      .Take();
}
json BodyOf(const CorrectCheckIn& c, std::string* subject) {
  *subject = c.key_result;
  return Body(json{{"corrects", c.corrects}, {"value", c.value}}).NonEmpty("note", c.note).Take();
}
json BodyOf(const AddComment& c, std::string* subject) {
  *subject = c.target;
  return {{"text", c.text}};
}
json BodyOf(const ReviewObjective& c, std::string* subject) {
  *subject = c.objective;
  return Body(json{{"score", c.score}, {"outcome", c.outcome}})
      .NonEmpty("reflection", c.reflection)
      .NonEmpty("lessons", c.lessons)
      .Take();
}

// The route of each Command alternative, in the variant's order.
constexpr std::array kRouteOfAlternative = {
    WriteRoute::kCreateUnit,       WriteRoute::kUpdateUnit,      WriteRoute::kRetireUnit,
    WriteRoute::kCreateCycle,      WriteRoute::kUpdateCycle,     WriteRoute::kCloseCycle,
    WriteRoute::kReopenCycle,      WriteRoute::kCreateObjective, WriteRoute::kUpdateObjective,
    WriteRoute::kArchiveObjective, WriteRoute::kCreateKeyResult, WriteRoute::kUpdateKeyResult,
    WriteRoute::kRemoveKeyResult,  WriteRoute::kCheckIn,         WriteRoute::kCorrection,
    WriteRoute::kComment,          WriteRoute::kReview,
};
static_assert(kRouteOfAlternative.size() == std::variant_size_v<Command>,
              "every command kind needs its route");

// The path template `path` with its {id} (if any) replaced by `subject`.
std::string FillPath(const std::string& path, const std::string& subject) {
  static constexpr std::string_view kIdTemplate = "{id}";
  auto at = path.find(kIdTemplate);
  assert((at == std::string::npos) == subject.empty());
  if (at == std::string::npos) return path;
  return path.substr(0, at) + subject + path.substr(at + kIdTemplate.size());
}

}  // namespace

const std::vector<Route>& AllRoutes() {
  static const std::vector<Route> routes = BuildRoutes();
  return routes;
}

WriteRoute WriteRouteOf(const Command& command) {
  assert(command.index() < kRouteOfAlternative.size());
  return kRouteOfAlternative[command.index()];
}

RenderedCommand RenderCommand(const Command& command, const std::string& reason) {
  const WriteRoute write = WriteRouteOf(command);
  const Route* route = nullptr;
  for (const Route& r : AllRoutes()) {
    if (r.write == write) {
      route = &r;
      break;
    }
  }
  assert(route != nullptr);  // BuildRoutes lists a route for every WriteRoute
  std::string subject;
  json body = std::visit([&](const auto& c) { return BodyOf(c, &subject); }, command);
  if (!reason.empty()) body["reason"] = reason;
  return RenderedCommand{route->method, FillPath(route->openapi_path, subject), std::move(body)};
}

}  // namespace okr::api
