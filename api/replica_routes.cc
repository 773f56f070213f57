// What a read replica (SPEC §9) answers its own way: writes, webhooks and
// checkpoints refused naming the primary, and its role, lag and
// connection in /healthz and /metrics.
#include <cassert>
#include <string>

#include "api/handler.h"
#include "eventstore/event_json.h"
#include "eventstore/sealing.h"

namespace okr::api {

using nlohmann::json;

void Server::Routes::FailOnReplica(Call& c, int status, const char* code, const std::string& why) {
  assert(options_.replica != nullptr);
  const std::string& primary = options_.replica->primary();
  json body = ErrorBody(code, "this okrd is a read replica of " + primary + ": " + why, "");
  body["error"]["primary"] = primary;
  c.Send(status, body);
}

// GET /v1/replication/keys (replica role): the subjects' keys and erasure
// marks (SPEC §10), so a replica shows the sealed fields its primary
// shows and erases what it erased. ETag: the key ring's version, which the
// raw events' Okrd-Keys-Version names too.
void Server::Routes::GetReplicationKeys(Call& c) {
  if (c.principal->role != Role::kReplica) {
    return c.Fail(403, "the subjects' keys go to the replica role only");
  }
  if (options_.key_ring == nullptr) return c.Fail(503, "this okrd has no key store");
  KeyRing::Copy copy = options_.key_ring->Export();
  c.uncacheable = true;
  c.res.set_header("ETag", "\"" + copy.version + "\"");
  c.res.set_header("Cache-Control", "no-store");
  if (c.req.get_header_value("If-None-Match") == "\"" + copy.version + "\"") {
    c.res.status = 304;
    return;
  }
  json keys = json::array();
  for (const auto& [subject, key] : copy.keys) {
    keys.push_back({{"subject", subject}, {"key", Base64Encode(key)}});
  }
  c.Send(200, {{"version", copy.version}, {"keys", std::move(keys)}, {"erased", copy.erased}});
}

void Server::Routes::ServeKeptCheckpoint(Call& c, uint64_t size) {
  auto kept = options_.replica->checkpoint();
  c.uncacheable = true;  // a newer one may be kept while the seq stands still
  if (!kept || (size != 0 && kept->size != size)) {
    return FailOnReplica(c, 404, "not_signed_here",
                         size != 0 ? "it holds no checkpoint of size " + std::to_string(size) +
                                         " signed by the primary (it keeps the newest only); "
                                         "ask the primary"
                                   : "it holds no checkpoint signed by the primary yet; ask the "
                                     "primary");
  }
  c.res.status = 200;
  c.res.set_content(kept->note, "text/plain; charset=utf-8");
  c.TagState(kept->size);
}

void Server::Routes::AddRoleHealth(json* body) const {
  if (options_.replica == nullptr) {
    (*body)["role"] = "primary";
    return;
  }
  const ReplicaFollower::State state = options_.replica->state();
  const ReplicaFollower::Lag lag = options_.replica->lag();
  (*body)["role"] = "replica";
  (*body)["primary"] = options_.replica->primary();
  (*body)["primary_head_seq"] = state.primary_head;
  (*body)["lag_events"] = lag.events;
  (*body)["lag_seconds"] = lag.seconds;
  (*body)["connected"] = state.connected;
  (*body)["problem"] = state.problem.empty() ? json(nullptr) : json(state.problem);
}

std::string Server::Routes::RoleMetrics() const {
  std::string out =
      "# HELP okrd_role 1 for this okrd's role (a replica names its primary).\n"
      "# TYPE okrd_role gauge\n";
  if (options_.replica == nullptr) return out + "okrd_role{role=\"primary\"} 1\n";
  const ReplicaFollower::State state = options_.replica->state();
  const ReplicaFollower::Lag lag = options_.replica->lag();
  // A label value escapes '\', '"' and newlines; a URL flag holds none of
  // the latter, but the text format's rule is cheap to keep.
  std::string primary;
  for (char ch : options_.replica->primary()) {
    if (ch == '\\' || ch == '"') primary.push_back('\\');
    primary.push_back(ch == '\n' ? 'n' : ch);
  }
  auto gauge = [&out](const char* name, const char* help, const std::string& value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name +
           " " + value + "\n";
  };
  out += "okrd_role{role=\"replica\",primary=\"" + primary + "\"} 1\n";
  gauge("okrd_replica_primary_head_seq", "The primary's head as this replica last heard it.",
        std::to_string(state.primary_head));
  gauge("okrd_replica_lag_events", "Events of the primary's head this replica does not hold yet.",
        std::to_string(lag.events));
  gauge("okrd_replica_lag_seconds",
        "recordedAt of the primary's head minus that of this replica's head (0: caught up).",
        std::to_string(lag.seconds));
  gauge("okrd_replica_connected", "1 when the last request to the primary succeeded.",
        state.connected ? "1" : "0");
  return out;
}

}  // namespace okr::api
