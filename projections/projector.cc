#include "projections/projector.h"

#include <chrono>
#include <mutex>

#include "projections/snapshot.h"

namespace okr {

namespace {

int64_t SystemClockUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Folds events (from, up_to] of `store` into `p`; *head_hash follows.
Status Replay(const EventStore& store, uint64_t up_to, Projection* p, Hash* head_hash) {
  if (up_to <= p->seq()) return Status::Ok();
  Status failed = Status::Ok();
  Status s = store.Scan(p->seq() + 1, up_to, [&](uint64_t seq, std::string_view bytes) {
    auto decoded = DecodedEvent::Decode(bytes);
    if (!decoded.ok()) {
      failed = Status::Corruption("seq " + std::to_string(seq) + ": " + decoded.status().message());
      return false;
    }
    failed = p->Apply((*decoded)->event());
    if (!failed.ok()) return false;
    *head_hash = Sha256(bytes);
    return true;
  });
  if (!s.ok()) return s;
  if (!failed.ok()) return failed;
  if (p->seq() != up_to) {
    return Status::Corruption("log ends at seq " + std::to_string(p->seq()) + ", expected " +
                              std::to_string(up_to));
  }
  return Status::Ok();
}

// The newest snapshot at or before `up_to` that belongs to this log
// (its head hash matches the stored event); nullopt when none is usable.
std::optional<std::pair<Projection, Hash>> LoadSnapshot(const EventStore& store, uint64_t up_to) {
  auto stored = store.SnapshotAtOrBefore(up_to);
  if (!stored.ok()) return std::nullopt;
  Hash hash{};
  auto projection = SnapshotCodec::Decode(stored->bytes, &hash);
  if (!projection.ok() || projection->seq() != stored->seq || stored->seq == 0) return std::nullopt;
  auto event = store.Read(stored->seq - 1, 1);
  if (!event.ok() || event->size() != 1 || Sha256(event->front().bytes) != hash) {
    return std::nullopt;
  }
  return std::make_pair(std::move(projection.value()), hash);
}

}  // namespace

Projector::Projector(EventStore* store, ProjectorOptions options)
    : store_(store), options_(std::move(options)) {
  if (!options_.clock_us) options_.clock_us = SystemClockUs;
}

Result<std::unique_ptr<Projector>> Projector::Open(EventStore* store, ProjectorOptions options) {
  std::unique_ptr<Projector> p(new Projector(store, std::move(options)));
  uint64_t head = store->head().seq;
  if (p->options_.load_snapshot) {
    if (auto snap = LoadSnapshot(*store, head)) {
      p->projection_ = std::move(snap->first);
      p->head_hash_ = snap->second;
    }
  }
  if (Status s = Replay(*store, head, &p->projection_, &p->head_hash_); !s.ok()) return s;
  return p;
}

Result<Projection> Projector::Rebuild(const EventStore& store, uint64_t up_to, bool use_snapshot) {
  Projection p;
  Hash hash{};
  if (use_snapshot) {
    if (auto snap = LoadSnapshot(store, up_to)) {
      p = std::move(snap->first);
      hash = snap->second;
    }
  }
  if (Status s = Replay(store, up_to, &p, &hash); !s.ok()) return s;
  return p;
}

uint64_t Projector::seq() const {
  std::shared_lock lock(mu_);
  return projection_.seq();
}

Status Projector::CatchUp() { return CatchUpLocked(store_->head().seq); }

Status Projector::CatchUpLocked(uint64_t up_to) {
  uint64_t before, after;
  {
    std::unique_lock lock(mu_);
    before = projection_.seq();
    if (up_to <= before) return Status::Ok();
    if (Status s = Replay(*store_, up_to, &projection_, &head_hash_); !s.ok()) return s;
    after = projection_.seq();
  }
  MaybeSnapshot(before, after);
  return Status::Ok();
}

void Projector::MaybeSnapshot(uint64_t before, uint64_t after) {
  uint64_t every = options_.snapshot_every_events;
  if (every == 0 || before / every == after / every) return;
  std::string bytes;
  uint64_t seq;
  {
    std::shared_lock lock(mu_);
    seq = projection_.seq();
    bytes = SnapshotCodec::Encode(projection_, head_hash_);
  }
  // A failed snapshot costs only start-up time; the log is untouched.
  (void)store_->PutSnapshot(seq, bytes);
}

Result<WriteResult> Projector::Write(const WriteRequest& request) {
  auto answer = [&](const std::string& entity, uint64_t last_seq, bool replayed,
                    bool changed) -> Result<WriteResult> {
    if (Status s = CatchUpLocked(last_seq); !s.ok()) return s;
    std::shared_lock lock(mu_);
    WriteResult r{entity, 0, last_seq, replayed, changed};
    if (const Unit* u = projection_.unit(entity)) r.version = u->VersionAt(last_seq);
    if (const Cycle* c = projection_.cycle(entity)) r.version = c->VersionAt(last_seq);
    if (const Objective* o = projection_.objective(entity)) r.version = o->VersionAt(last_seq);
    if (const KeyResult* k = projection_.key_result(entity)) r.version = k->VersionAt(last_seq);
    return r;
  };

  if (!request.idempotency_key.empty()) {
    auto seen = store_->FindIdempotent(request.idempotency_key, request.fingerprint);
    if (!seen.ok()) return seen.status();
    if (seen->has_value()) {
      auto first = store_->Read((*seen)->last_seq - 1, 1);
      if (!first.ok() || first->empty()) return Status::Corruption("idempotent answer missing");
      auto decoded = DecodedEvent::Decode(first->front().bytes);
      if (!decoded.ok()) return decoded.status();
      return answer((*decoded)->event().getEntity().cStr(), (*seen)->last_seq, true, true);
    }
  }

  for (int attempt = 0; attempt < kMaxDecideAttempts; ++attempt) {
    AppendRequest append;
    std::string entity;
    uint64_t head_seq;
    {
      std::shared_lock lock(mu_);
      head_seq = projection_.seq();
      if (request.authorize) {
        if (Status s = request.authorize(projection_, request.command); !s.ok()) return s;
      }
      CommandContext ctx{request.actor, request.reason, options_.clock_us()};
      auto decision = Decide(projection_, request.command, ctx);
      if (!decision.ok()) return decision.status();
      entity = decision->entity;
      if (request.if_match && projection_.Version(entity) != *request.if_match) {
        return Status::Conflict(entity + " is at version " +
                                    std::to_string(projection_.Version(entity)) + ", not " +
                                    std::to_string(*request.if_match),
                                "If-Match");
      }
      if (decision->events.empty()) {
        lock.unlock();
        return answer(entity, head_seq, false, false);
      }
      append.events = std::move(decision->events);
      append.expected = std::move(decision->expected);
    }
    append.idempotency_key = request.idempotency_key;
    append.fingerprint = request.fingerprint;
    auto appended = store_->Append(std::move(append));
    if (appended.ok()) return answer(entity, appended->last_seq, appended->replayed, true);
    if (appended.status().code() != Status::Code::kConflict) return appended.status();
    // Someone changed what we decided on: catch up and decide again.
    if (Status s = CatchUp(); !s.ok()) return s;
  }
  return Status::Conflict("the entity kept changing; try again", "version");
}

}  // namespace okr
