// The write routes: every command (HandleWrite, through Projector::Write,
// the one write path) and the admin's online backup.
#include <algorithm>
#include <cassert>
#include <initializer_list>

#include "api/handler.h"
#include "eventstore/base/time.h"
#include "eventstore/sealing.h"

namespace okr::api {

using nlohmann::json;

static bool AnyOf(std::initializer_list<WriteRoute> routes, WriteRoute r) {
  return std::find(routes.begin(), routes.end(), r) != routes.end();
}

static bool CreatesSomething(WriteRoute r) {
  using enum WriteRoute;
  return AnyOf({kCreateUnit, kCreateCycle, kCreateObjective, kCreateKeyResult, kCheckIn,
                kCorrection, kComment, kReview},
               r);
}

// Units and cycles are the organisation's frame: admins only.
static bool AdminOnly(WriteRoute r) {
  using enum WriteRoute;
  return AnyOf({kCreateUnit, kUpdateUnit, kRetireUnit, kCreateCycle, kUpdateCycle, kCloseCycle,
                kReopenCycle},
               r);
}

static void FailBackup(Call& c, const Status& s) {
  if (s.code() == Status::Code::kInvalid)
    return c.Fail(ApiError{422, "invalid", s.message(), "to"});
  c.Fail(s);
}

// POST /v1/admin/backup {"to": SUBDIR}: a backup of the live database
// through okrd's own handle (EventStore::Backup), into SUBDIR of the
// --backup-root fixed at start ("to" absent: the root itself).
void Server::Routes::Backup(Call& c) {
  if (c.principal->role != Role::kAdmin) return c.Fail(403, "backups need the admin role");
  if (!options_.backup_root) {
    return c.Fail(403, "backups through okrd are off: start okrd with --backup-root DIR");
  }
  ApiError e;
  auto body = ParseBody(c.req.body, &e);
  if (!body) return c.Fail(e);
  for (auto it = body->begin(); it != body->end(); ++it) {
    if (it.key() != "to")
      return c.Fail(400, "unknown field " + it.key().substr(0, 64), it.key().substr(0, 64));
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

// POST /v1/admin/erasures {"subject", "reason"} (SPEC §10): erases a
// person's personal data by deleting their key (EraseSubject), then drops
// every cached answer, which may hold what the key revealed (the live
// feeds drop theirs when they meet the erasure in the log).
void Server::Routes::Erase(Call& c) {
  if (c.principal->role != Role::kAdmin) return c.Fail(403, "erasures need the admin role");
  if (options_.key_ring == nullptr) return c.Fail(503, "this okrd has no key store");
  ApiError e;
  auto body = ParseBody(c.req.body, &e);
  if (!body) return c.Fail(e);
  for (auto it = body->begin(); it != body->end(); ++it) {
    if (it.key() != "subject" && it.key() != "reason")
      return c.Fail(400, "unknown field " + it.key().substr(0, 64), it.key().substr(0, 64));
  }
  for (const char* field : {"subject", "reason"}) {
    if (!body->contains(field) || !(*body)[field].is_string() ||
        (*body)[field].get<std::string>().empty()) {
      return c.Fail(
          ApiError{422, "invalid", std::string(field) + " must be a non-empty string", field});
    }
  }
  const std::string subject = (*body)["subject"], reason = (*body)["reason"];
  if (Status s = CheckReason(reason); !s.ok()) return c.Fail(s);
  auto seq = EraseSubject(store_, options_.key_ring, subject, c.principal->actor, reason);
  // Whatever came of it, the key may be gone: no answer kept from before.
  cache_.Clear();
  if (!seq.ok()) return c.Fail(seq.status());
  LogLine(*log_, options_.log_format, spdlog::level::warn, "subject_erased",
          {{"subject", subject}, {"seq", *seq}, {"actor", c.principal->actor}});
  c.Send(201, {{"subject", subject}, {"seq", *seq}, {"erased", true}});
}

// --- writes ---

namespace {

// The If-Match header's version (ParseIfMatch): 400 when it names none.
bool ReadIfMatch(Call& c, WriteRequest* w) {
  if (!c.req.has_header("If-Match")) return true;
  auto version = ParseIfMatch(c.req.get_header_value("If-Match"));
  if (!version) {
    c.Fail(ApiError{400, "malformed",
                    "If-Match must be a version number or an ETag this server gave", "If-Match"});
    return false;
  }
  w->if_match = *version;
  return true;
}

// The Idempotency-Key header, scoped to w->actor, and the fingerprint of
// the request it keys: 400 when the key is empty, too long or unprintable.
bool ParseIdempotencyKey(Call& c, WriteRequest* w) {
  assert(!w->actor.empty());
  if (!c.req.has_header("Idempotency-Key")) return true;
  std::string key = c.req.get_header_value("Idempotency-Key");
  bool printable =
      std::all_of(key.begin(), key.end(), [](char ch) { return ch > 0x20 && ch < 0x7f; });
  if (key.empty() || key.size() > kMaxIdempotencyKeyChars || !printable) {
    c.Fail(ApiError{400, "malformed",
                    "Idempotency-Key must be 1-" + std::to_string(kMaxIdempotencyKeyChars) +
                        " printable characters",
                    "Idempotency-Key"});
    return false;
  }
  // Keys are per actor, so two people cannot collide or replay each other.
  w->idempotency_key = w->actor + '\n' + key;
  w->fingerprint = Sha256(c.req.method + ' ' + c.req.path + '\n' + c.req.body);
  return true;
}

// What `principal` may change, checked by Projector::Write against the
// state the command is decided on: admins anything; editors no units or
// cycles, and only what units in their scope own.
auto Authorizer(const Principal& principal, WriteRoute route) {
  return [principal, route](const Projection& p, const Command& cmd,
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
}

}  // namespace

// Fills *w from the request: the path id, the body's command and reason,
// If-Match and Idempotency-Key. On a refusal answers and returns false.
bool Server::Routes::ParseWrite(Call& c, WriteRoute route, WriteRequest* w) {
  assert(c.principal.has_value());  // Admit let only a writer through
  std::string id;
  if (c.req.matches.size() > 1) {
    auto parsed = PathId(c);
    if (!parsed) return false;
    id = *parsed;
  }
  ApiError e;
  auto body = ParseBody(c.req.body, &e);
  if (!body) return c.Fail(e), false;
  auto command = ParseCommand(route, id, *body, &w->reason, &e);
  if (!command) return c.Fail(e), false;
  w->command = std::move(*command);
  w->actor = c.principal->actor;
  w->subject = c.principal->subject;
  return ReadIfMatch(c, w) && ParseIdempotencyKey(c, w);
}

void Server::Routes::HandleWrite(Call& c, WriteRoute route) {
  WriteRequest w;
  if (!ParseWrite(c, route, &w)) return;
  w.authorize = Authorizer(*c.principal, route);
  auto result = projector_->Write(w);
  if (!result.ok()) return c.Fail(result.status());
  AnswerWrite(c, route, *result);
}

// The written entity as it stands at the write's seq (a check-in's key
// result with the check-in), the seq, and its version as ETag: 201 when
// the write created something, 200 for a change or a replay. A write that
// changed nothing answers the entity as it is now, with its own last
// event's seq, and names no check-in: the one at that seq was another
// write's. A key result (every check-in) is copied out under the lock and
// written as text outside it; the others are small documents.
void Server::Routes::AnswerWrite(Call& c, WriteRoute route, const WriteResult& result) {
  std::optional<KeyResultRow> kr_row;
  KeyResultWrite kr_write{std::nullopt, result.seq};
  json out = projector_->Read([&](const Projection& p) -> json {
    assert(result.seq <= p.seq());
    View v(p, result.changed ? result.seq : p.seq(), INT64_MAX, projector_->NowUs());
    if (const Unit* u = p.unit(result.entity)) return v.UnitJson(*u);
    if (const Cycle* x = p.cycle(result.entity)) return v.CycleJson(*x);
    if (const Objective* o = p.objective(result.entity)) return v.ObjectiveJson(*o);
    if (const KeyResult* kr = p.key_result(result.entity)) {
      kr_row = v.KeyResultRowOf(*kr);
      size_t known = kr->CheckInsKnownAt(result.seq);
      if (result.changed && known > 0 && kr->check_ins[known - 1].meta.seq == result.seq) {
        kr_write.check_in = kr->check_ins[known - 1];
      }
    }
    return json();
  });
  if (result.replayed) c.res.set_header("Idempotent-Replayed", "true");
  c.res.set_header("ETag", "\"" + std::to_string(result.version) + "\"");
  const int status = CreatesSomething(route) && result.changed ? 201 : 200;
  if (kr_row) {
    return c.SendJsonText(status,
                          WriteJson([&](JsonOut& o) { WriteKeyResult(o, *kr_row, &kr_write); }));
  }
  out["seq"] = result.seq;
  c.Send(status, out);
}

}  // namespace okr::api
