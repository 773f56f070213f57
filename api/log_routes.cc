// The reads that walk the log itself: the diff between two seqs (events
// from the log, rows from the projection), and the audit reads — events,
// an entity's history, the hash chain's verification.
#include <algorithm>
#include <cassert>
#include <chrono>
#include <iterator>

#include "api/handler.h"
#include "api/transport.h"
#include "eventstore/base/time.h"
#include "eventstore/event_json.h"
#include "eventstore/format.h"
#include "eventstore/sealing.h"

namespace okr::api {

using nlohmann::json;

// Moves the rows of `events` (consecutive, from q->seq on) into `rows`
// until it holds `limit`, and advances q's position past what it took.
static void TakeDiffRows(const Projection& p,
                         const std::vector<std::pair<uint64_t, std::string>>& events, size_t limit,
                         DiffQuery* q, std::vector<DiffRow>* rows) {
  std::vector<DiffRow> event_rows;
  for (const auto& [seq, entity] : events) {
    assert(seq == q->seq);
    event_rows.clear();
    AppendDiffRows(p, seq, entity, q->cycle, &event_rows);
    size_t first = std::min<size_t>(q->skip, event_rows.size());
    size_t take = std::min(event_rows.size() - first, limit - rows->size());
    std::move(event_rows.begin() + first, event_rows.begin() + first + take,
              std::back_inserter(*rows));
    if (first + take < event_rows.size()) {
      q->skip = first + take;  // the page is full inside this event
      return;
    }
    q->seq = seq + 1;
    q->skip = 0;
    if (rows->size() == limit) return;
  }
}

// Parses from=, to=, as_of=, cycle= and cursor= against `p`; answers
// and returns nullopt on a refusal. A cursor pins `to`.
std::optional<DiffQuery> Server::Routes::ParseDiffQuery(Call& c, const Projection& p) {
  std::optional<PageCursor> cursor;
  std::optional<uint64_t> cursor_seq, cursor_skip;
  if (const std::string* text = c.Param("cursor")) {
    cursor = ParsePageCursor(*text);
    if (cursor) {
      auto dot = cursor->position.find('.');
      cursor_seq = ParseUnsigned(std::string_view(cursor->position).substr(0, dot));
      if (dot != std::string::npos)
        cursor_skip = ParseUnsigned(std::string_view(cursor->position).substr(dot + 1));
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
  if (q.to > as_of)
    return c.Fail(ApiError{422, "invalid", "to is after as_of", "to"}), std::nullopt;
  if (cursor) {
    if ((c.Param("to") || c.Param("as_of")) && q.to != cursor->as_of) {
      c.Fail(ApiError{400, "malformed", "cursor belongs to to=" + std::to_string(cursor->as_of),
                      "cursor"});
      return std::nullopt;
    }
    q.to = cursor->as_of;
  }
  if (q.from > q.to)
    return c.Fail(ApiError{422, "invalid", "from is after to", "from"}), std::nullopt;
  auto cycle = IdParam(c, "cycle");
  if (!cycle) return std::nullopt;
  q.cycle = *std::move(cycle);
  if (Status known = CycleKnown(p, q.cycle); !known.ok()) return c.Fail(known), std::nullopt;
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
void Server::Routes::GetDiff(Call& c) {
  auto limit = LimitParam(c);
  if (!limit) return;
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
        failed =
            Status::Corruption("seq " + std::to_string(seq) + ": " + decoded.status().message());
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
  body["next"] =
      q->seq <= q->to
          ? json(PageCursorText(q->to, std::to_string(q->seq) + "." + std::to_string(q->skip)))
          : json(nullptr);
  c.Send(200, body);
  c.TagState(q->to);
}

// --- audit reads ---

namespace {

// Which events a page of /v1/events keeps (every one by default).
struct EventFilter {
  std::optional<int64_t> from, to;  // recorded between, inclusive
  std::string entity, actor;
  std::optional<schema::Event::Which> type;
  // raw=true adds each event's exact stored bytes (base64), so a client
  // can check the hash chain itself instead of trusting this JSON.
  bool raw = false;

  bool Keeps(schema::Event::Reader ev) const {
    if (!entity.empty() && entity != ev.getEntity().cStr()) return false;
    if (!actor.empty() && actor != ev.getActor().cStr()) return false;
    if (type && ev.which() != *type) return false;
    if (from && ev.getRecordedAt() < *from) return false;
    if (to && ev.getRecordedAt() > *to) return false;
    return true;
  }
};

// Parses from=, to=, entity=, actor=, type= and raw=; answers and returns
// nullopt on a refusal.
std::optional<EventFilter> ParseEventFilter(Call& c) {
  EventFilter f;
  for (auto [name, slot] : {std::pair{"from", &f.from}, std::pair{"to", &f.to}}) {
    if (const std::string* text = c.Param(name)) {
      *slot = ParseRfc3339(*text);
      if (!*slot) {
        c.Fail(
            ApiError{400, "malformed", std::string(name) + " must be " + kRfc3339Accepted, name});
        return std::nullopt;
      }
    }
  }
  if (f.from && f.to && *f.from > *f.to) {
    c.Fail(ApiError{422, "invalid", "from is after to", "from"});  // as a diff's
    return std::nullopt;
  }
  f.entity = c.ParamOr("entity");
  f.actor = c.ParamOr("actor");
  if (std::string type = c.ParamOr("type"); !type.empty()) {
    // A misspelt type would match no event: refused, not answered empty.
    f.type = EventTypeNamed(type);
    if (!f.type) {
      c.Fail(ApiError{400, "malformed", "type must be an event type, such as check_in.recorded",
                      "type"});
      return std::nullopt;
    }
  }
  std::string raw = c.ParamOr("raw", "false");
  if (raw != "true" && raw != "false") {
    c.Fail(ApiError{400, "malformed", "raw is true or false", "raw"});
    return std::nullopt;
  }
  f.raw = raw == "true";
  return f;
}

}  // namespace

// `after=` or, as every list takes it, `cursor=` (the same value: the
// previous page's `next`), a seq or a version (`what`); 0 when neither is
// given. Both and different, or not a number: answers 400 and returns nullopt.
std::optional<uint64_t> Server::Routes::ParseAfter(Call& c, const char* what) {
  const std::string* after = c.Param("after");
  const std::string* cursor = c.Param("cursor");
  if (after && cursor && *after != *cursor) {
    c.Fail(ApiError{400, "malformed", "after and cursor disagree; pass one", "cursor"});
    return std::nullopt;
  }
  const std::string* text = after ? after : cursor;
  if (!text) return uint64_t{0};
  auto parsed = ParseUnsigned(*text);
  if (!parsed) c.Fail(ApiError{400, "malformed", std::string("after must be a ") + what, "after"});
  return parsed;
}

void Server::Routes::ListEvents(Call& c) {
  auto limit = LimitParam(c);
  if (!limit) return;
  auto after = ParseAfter(c, "seq");
  if (!after) return;
  auto filter = ParseEventFilter(c);
  if (!filter) return;
  json items = json::array();
  uint64_t scanned_to = *after, scanned = 0;
  bool more = false;
  Status failed = Status::Ok();
  uint64_t head = store_->head().seq;
  uint64_t first = *after == UINT64_MAX ? *after : *after + 1;
  Status s = store_->Scan(first, head, [&](uint64_t seq, std::string_view bytes) {
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
    if (!filter->Keeps(ev)) return true;
    items.push_back(AuditEventJson(ev));
    if (filter->raw) AddStoredBytes(bytes, &items.back());
    return true;
  });
  if (!s.ok()) return c.Fail(s);
  if (!failed.ok()) return c.Fail(failed);
  assert(items.size() <= *limit && scanned <= kMaxEventsScannedPerRequest);
  c.Send(200, {{"items", std::move(items)},
               {"next", more ? json(std::to_string(scanned_to)) : json(nullptr)},
               {"as_of_seq", head}});
}

namespace {

// GET /v1/events/raw frames this many bytes (or one event more) per call
// of cpp-httplib's provider, and writes them as one chunk (WriteChunk): a
// request holds one batch whatever its limit. A request's batches read
// through one EventCursor while its client keeps up (RawFrames).
constexpr size_t kRawBatchBytes = 2u << 20;
// How long a raw answer keeps one RocksDB iterator, and how long sending a
// batch may take before its client counts as slow (RawFrames).
constexpr auto kRawCursorLifetime = std::chrono::seconds(1);
constexpr auto kRawSlowWrite = std::chrono::milliseconds(100);

// One frame (SPEC §8): the seq as 8 bytes and the length as 4 bytes, both
// big-endian, then the stored bytes exactly.
void AppendFrame(uint64_t seq, std::string_view bytes, std::string* out) {
  assert(bytes.size() <= format::kMaxEventBytes);
  format::PutBigEndian64(out, seq);
  format::PutBigEndian32(out, static_cast<uint32_t>(bytes.size()));
  out->append(bytes);
}

// The frames of seqs [next, last] as cpp-httplib pulls them, a batch a
// call, read from the store (never the projection, never under its lock).
// A store error or a hole in the log aborts the answer: the client sees
// it cut short (no final chunk), never a page that skips an event.
class RawFrames {
 public:
  using OnFailure = std::function<void(uint64_t seq, const std::string& why)>;
  RawFrames(const EventStore* store, uint64_t first, uint64_t last, OnFailure on_failure)
      : store_(store), next_(first), last_(last), on_failure_(std::move(on_failure)) {
    assert(first >= 1 && first <= last);
  }

  bool operator()(size_t /*offset*/, httplib::DataSink& sink) {
    assert(next_ <= last_);
    buffer_.clear();
    uint64_t expected = next_;
    // Opened on the first call, so an answer not yet sent holds no files.
    if (!cursor_) {
      cursor_ = std::shared_ptr<EventCursor>(store_->OpenCursor(next_, last_));
      opened_ = std::chrono::steady_clock::now();
    }
    Status s = cursor_->Next([&](uint64_t seq, std::string_view bytes) {
      if (seq != expected) return false;
      AppendFrame(seq, bytes, &buffer_);
      ++expected;
      return buffer_.size() < kRawBatchBytes;
    });
    if (!s.ok() || expected == next_) {
      on_failure_(expected, s.ok() ? "the log has no event at this seq" : s.ToString());
      return false;
    }
    next_ = expected;
    // An open iterator pins the memtables and files it reads: it is kept
    // between batches only for a client that keeps up, and at most
    // kRawCursorLifetime; a slow client's answer opens one per batch and
    // holds none while it writes to it.
    const auto now = std::chrono::steady_clock::now();
    if (slow_client_ || now - opened_ > kRawCursorLifetime) cursor_.reset();
    if (!WriteChunk(sink, buffer_)) return false;  // the client went away
    slow_client_ = std::chrono::steady_clock::now() - now > kRawSlowWrite;
    if (next_ > last_) sink.done();
    return true;
  }

 private:
  const EventStore* store_;
  uint64_t next_, last_;
  OnFailure on_failure_;
  // Shared: cpp-httplib copies the provider; only one copy ever reads.
  std::shared_ptr<EventCursor> cursor_;
  std::chrono::steady_clock::time_point opened_;  // of cursor_
  bool slow_client_ = false;  // the last batch took longer than kRawSlowWrite to send
  std::string buffer_;        // the chunk being framed
};

}  // namespace

// GET /v1/events/raw: up to `limit` frames after `after`, streamed in
// chunks (RawFrames); Okrd-Head-Seq is the head when the answer began,
// and no frame goes past it; Okrd-Head-Hash and Okrd-Head-Recorded-At
// are that head's hash and recordedAt (µs since the epoch): a replica
// checks the newest event it copies against the one, and tells its lag
// from the other.
void Server::Routes::ListRawEvents(Call& c) {
  auto limit = LimitParam(c, kDefaultRawEvents, kMaxRawEvents);
  if (!limit) return;
  auto after = ParseAfter(c, "seq");
  if (!after) return;
  const Head at_start = store_->head();
  const uint64_t head = at_start.seq;
  c.res.status = 200;
  c.res.set_header("Okrd-Head-Seq", std::to_string(head));
  c.res.set_header("Okrd-Head-Recorded-At", std::to_string(at_start.recorded_at_us));
  c.res.set_header("Okrd-Head-Hash", ToHex(at_start.hash));
  // Read after the head: every key an event up to it is sealed with was
  // made before the event was stored, so this version holds them all.
  if (options_.key_ring != nullptr) {
    c.res.set_header("Okrd-Keys-Version", options_.key_ring->version());
  }
  if (*after >= head) return c.res.set_content("", "application/octet-stream");
  const uint64_t last = std::min<uint64_t>(head, *after + *limit);
  auto on_failure = [this, request_id = c.request_id](uint64_t seq, const std::string& why) {
    LogLine(*log_, options_.log_format, spdlog::level::err, "raw_events_cut_short",
            {{"id", request_id}, {"seq", seq}, {"problem", why}});
  };
  c.res.set_chunked_content_provider("application/octet-stream",
                                     RawFrames(store_, *after + 1, last, std::move(on_failure)));
}

// One entity's events, oldest first, paged by version (`after`).
void Server::Routes::GetHistory(Call& c) {
  auto id = PathId(c);
  if (!id) return;
  auto limit = LimitParam(c);
  if (!limit) return;
  auto after = ParseAfter(c, "version");
  if (!after) return;
  uint64_t head = store_->head().seq;
  auto stream = store_->ReadStream(*id, *after, *limit + 1);
  if (!stream.ok()) return c.Fail(stream.status());
  if (stream->empty() && *after == 0) return c.Fail(404, "no entity " + *id, "id");
  bool more = stream->size() > *limit;
  if (more) stream->pop_back();
  assert(stream->size() <= *limit);
  json items = json::array();
  for (const StoredEvent& stored : *stream) {
    auto decoded = DecodedEvent::Decode(stored.bytes);
    if (!decoded.ok()) return c.Fail(decoded.status());
    items.push_back(AuditEventJson((*decoded)->event()));
  }
  json next = more ? json(std::to_string(*after + items.size())) : json(nullptr);
  c.Send(200, {{"items", std::move(items)}, {"next", std::move(next)}, {"as_of_seq", head}});
}

void Server::Routes::Verify(Call& c) {
  VerifyReport r = store_->Verify();
  c.Send(200, {{"ok", r.ok},
               {"events", r.events},
               {"head_hash", ToHex(r.head_hash)},
               {"first_bad_seq", r.ok ? json(nullptr) : json(r.first_bad_seq)},
               {"problem", r.ok ? json(nullptr) : json(r.problem)}});
}

}  // namespace okr::api
