// The state reads: entities, lists and series as they stood at any seq,
// the cascade, an end-of-cycle review and the lint; health and metrics.
// Each copies what it needs out under the projection's lock and renders
// JSON after releasing it.
#include <algorithm>
#include <cassert>
#include <functional>
#include <type_traits>
#include <variant>

#include "api/handler.h"
#include "eventstore/base/time.h"
#include "projections/read/shown.h"

namespace okr::api {

using nlohmann::json;

std::optional<PageCursor> ParsePageCursor(std::string_view text) {
  auto dot = text.find('.');
  if (dot == std::string_view::npos || dot + 1 == text.size()) return std::nullopt;
  auto as_of = ParseUnsigned(text.substr(0, dot));
  if (!as_of) return std::nullopt;
  return PageCursor{*as_of, std::string(text.substr(dot + 1))};
}

std::string PageCursorText(uint64_t as_of, const std::string& position) {
  return std::to_string(as_of) + "." + position;
}

// Parses as_of= (a seq or an RFC 3339 time) and at= against `p`.
std::optional<Point> Server::Routes::ParsePoint(Call& c, const Projection& p,
                                                const char* as_of_name) {
  Point point{p.seq(), INT64_MAX, projector_->NowUs()};
  if (const std::string* text = c.Param(as_of_name)) {
    auto resolved = ResolvePoint(c, p, *text, as_of_name);
    if (!resolved) return std::nullopt;
    point.as_of = *resolved;
    if (point.as_of < p.seq()) point.now = p.TimeOfSeq(point.as_of);
  }
  if (const std::string* text = c.Param("at")) {
    auto at = ParseRfc3339(*text);
    if (!at) {
      c.Fail(ApiError{400, "malformed", std::string("at must be ") + kRfc3339Accepted, "at"});
      return std::nullopt;
    }
    point.at = *at;
  }
  assert(point.as_of <= p.seq());
  return point;
}

// The seq `text` (a seq, or an RFC 3339 time not after `now_us`) names
// in `p`, or why it names none.
static std::variant<uint64_t, ApiError> PointSeq(const Projection& p, const std::string& text,
                                                 const char* name, int64_t now_us) {
  if (auto seq = ParseUnsigned(text)) {
    if (*seq <= p.seq()) return *seq;
    return ApiError{422, "invalid",
                    std::string(name) + " is beyond the head seq " + std::to_string(p.seq()), name};
  }
  auto us = ParseRfc3339(text);
  if (!us) {
    return ApiError{400, "malformed", std::string(name) + " must be a seq or " + kRfc3339Accepted,
                    name};
  }
  if (*us > now_us) return ApiError{422, "invalid", std::string(name) + " is in the future", name};
  return p.SeqAtTime(*us);
}

std::optional<uint64_t> Server::Routes::ResolvePoint(Call& c, const Projection& p,
                                                     const std::string& text, const char* name) {
  auto seq = PointSeq(p, text, name, projector_->NowUs());
  if (const ApiError* e = std::get_if<ApiError>(&seq)) {
    c.Fail(*e);
    return std::nullopt;
  }
  return std::get<uint64_t>(seq);
}

// The seq a state read's answer reflects, from its query alone, before
// anything is built — what ParsePagedPoint and ParseDiffQuery settle on:
// a cursor's as_of; else `to` (the diff), else `as_of`, resolved; else the
// head. Only parameters the route reads count. nullopt when one of them
// is refused: the handler then answers the refusal.
std::optional<uint64_t> Server::Routes::AnswerSeq(const Call& c, const Route& route) {
  assert(route.access == Access::kCachedStateRead);
  if (route.kind == RouteKind::kCheckpoint || route.kind == RouteKind::kInclusionProof ||
      route.kind == RouteKind::kConsistencyProof) {
    return PinnedTreeSize(c, route);
  }
  auto param = [&](const char* name) -> const std::string* {
    const auto& keyed = route.cache_by;
    if (std::find(keyed.begin(), keyed.end(), name) == keyed.end()) return nullptr;
    auto it = c.req.params.find(name);
    return it == c.req.params.end() ? nullptr : &it->second;
  };
  if (const std::string* text = param("cursor")) {
    auto cursor = ParsePageCursor(*text);
    if (!cursor || cursor->as_of > projector_->seq()) return std::nullopt;
    return cursor->as_of;
  }
  const std::string* pin = param("to");
  if (!pin) pin = param("as_of");
  if (!pin) return projector_->seq();
  return projector_->Read([&](const Projection& p) -> std::optional<uint64_t> {
    auto seq = PointSeq(p, *pin, "as_of", projector_->NowUs());
    const uint64_t* resolved = std::get_if<uint64_t>(&seq);
    return resolved ? std::optional<uint64_t>(*resolved) : std::nullopt;
  });
}

std::optional<std::string> Server::Routes::PathId(Call& c) {
  std::string id = c.req.matches.size() > 1 ? std::string(c.req.matches[1]) : "";
  if (!ValidId(id)) {
    c.Fail(ApiError{400, "malformed", std::string("ids are ") + kIdRule, "id"});
    return std::nullopt;
  }
  return id;
}

// The state a page answers from: a cursor's pinned as_of (and where the
// previous page ended), or as_of= / the head for a first page. An as_of=
// that disagrees with the cursor's is refused (400), like a cursor this
// server did not give.
std::optional<Point> Server::Routes::ParsePagedPoint(Call& c, const Projection& p,
                                                     std::optional<PageCursor>* cursor) {
  if (const std::string* text = c.Param("cursor")) {
    *cursor = ParsePageCursor(*text);
    if (!*cursor || (*cursor)->as_of > p.seq()) {
      c.Fail(ApiError{400, "malformed", "cursor is not one this server gave", "cursor"});
      return std::nullopt;
    }
  }
  auto point = ParsePoint(c, p);
  if (!point || !*cursor) return point;
  if (c.Param("as_of") && point->as_of != (*cursor)->as_of) {
    c.Fail(ApiError{400, "malformed", "cursor belongs to as_of " + std::to_string((*cursor)->as_of),
                    "cursor"});
    return std::nullopt;
  }
  point->as_of = (*cursor)->as_of;
  if (point->as_of < p.seq()) point->now = p.TimeOfSeq(point->as_of);
  assert(point->as_of == (*cursor)->as_of && point->as_of <= p.seq());
  return point;
}

// A page of a sorted id-keyed map as it stood at the page's as_of: rows
// of the kept entities after the cursor's id, at most `limit`, copied
// out under the projection's lock and rendered after it is released. At
// most `max_scan` entities are looked at: a page that stops there has a
// `next` however few rows it holds. Where `listed` gives the entities
// the page can hold, only those are looked at.
template <typename E, typename Keep, typename RowOf, typename Render>
void Server::Routes::Page(Call& c, const std::map<std::string, E>& (Projection::*all)() const,
                          Keep keep, RowOf row_of, Render render, size_t max_scan,
                          const std::type_identity_t<Listed<E>>& listed) {
  auto limit = LimitParam(c);
  if (!limit) return;
  using Row = std::invoke_result_t<RowOf, View&, const E&>;
  std::vector<Row> rows;
  std::string last;
  bool more = false;
  std::optional<uint64_t> as_of =
      projector_->Read([&](const Projection& p) -> std::optional<uint64_t> {
        std::optional<PageCursor> cursor;
        auto point = ParsePagedPoint(c, p, &cursor);
        if (!point) return std::nullopt;
        if (cursor && !ValidId(cursor->position)) {
          c.Fail(ApiError{400, "malformed", "cursor is not one this server gave", "cursor"});
          return std::nullopt;
        }
        View v(p, point->as_of, point->at, point->now);
        size_t scanned = 0;
        // False once the page is done: out of budget, or a row past it
        // (the next page starts at `e`).
        auto look_at = [&](const E& e) {
          more = scanned++ == max_scan;
          if (more) return false;
          if (e.At(point->as_of) && keep(v, e)) {
            more = rows.size() == *limit;
            if (more) return false;
            rows.push_back(std::invoke(row_of, v, e));
          }
          last = e.id;  // answered up to here: a row, or left out
          return true;
        };
        if (auto some = listed ? listed(p) : std::nullopt) {
          auto it = some->begin();
          if (cursor) {
            it = std::upper_bound(it, some->end(), cursor->position,
                                  [](const std::string& id, const E* e) { return id < e->id; });
          }
          while (it != some->end() && look_at(**it)) ++it;
        } else {
          const auto& map = (p.*all)();
          auto it = cursor ? map.upper_bound(cursor->position) : map.begin();
          while (it != map.end() && look_at(it->second)) ++it;
        }
        assert(rows.size() <= *limit && point->as_of <= p.seq() && (!more || !last.empty()));
        return point->as_of;
      });
  if (!as_of) return;
  json items = json::array();
  for (const Row& row : rows) items.push_back(render(row));
  c.Send(200, {{"items", std::move(items)},
               {"next", more ? json(PageCursorText(*as_of, last)) : json(nullptr)},
               {"as_of_seq", *as_of}});
  c.TagState(*as_of);
}

static void SendEntity(Call& c, json body, uint64_t as_of) {
  c.TagState(as_of, body.value("version", uint64_t{0}));
  body["as_of_seq"] = as_of;
  c.Send(200, body);
}

// --- reads ---

// One entity as it stood at as_of, its version and as_of in its ETag.
template <typename E, typename Render>
void Server::Routes::GetAsOf(Call& c, const char* kind,
                             const E* (Projection::*find)(const std::string&) const,
                             Render render) {
  auto id = PathId(c);
  if (!id) return;
  projector_->Read([&](const Projection& p) {
    auto point = ParsePoint(c, p);
    if (!point) return;
    const E* e = (p.*find)(*id);
    if (!e || !e->At(point->as_of)) return c.Fail(404, std::string("no ") + kind + " " + *id, "id");
    View v(p, point->as_of, point->at, point->now);
    SendEntity(c, std::invoke(render, v, *e), point->as_of);
  });
}

// Units and cycles list every one that exists at the page's as_of.
static bool KeepAll(const View&, const auto&) { return true; }

void Server::Routes::ListUnits(Call& c) {
  Page(c, &Projection::units, KeepAll<Unit>, &View::UnitRowOf<>, RenderUnit);
}
void Server::Routes::ListCycles(Call& c) {
  Page(c, &Projection::cycles, KeepAll<Cycle>, &View::CycleRowOf<>, RenderCycle);
}
void Server::Routes::GetUnit(Call& c) { GetAsOf(c, "unit", &Projection::unit, &View::UnitJson); }
void Server::Routes::GetCycle(Call& c) {
  GetAsOf(c, "cycle", &Projection::cycle, &View::CycleJson);
}

void Server::Routes::ListObjectives(Call& c) {
  std::string include = c.ParamOr("include_archived", "false");
  if (include != "true" && include != "false") {
    return c.Fail(
        ApiError{400, "malformed", "include_archived is true or false", "include_archived"});
  }
  auto cycle = IdParam(c, "cycle");
  if (!cycle) return;
  auto owner = IdParam(c, "owner");
  if (!owner) return;
  // Unknown, they are refused as the cascade's and lint's are, not
  // answered with an empty list a typo would also get.
  const Status known = projector_->Read([&](const Projection& p) {
    if (Status known = CycleKnown(p, *cycle); !known.ok()) return known;
    if (!owner->empty() && !p.unit(*owner)) return Status::NotFound("no unit " + *owner, "owner");
    return Status::Ok();
  });
  if (!known.ok()) return c.Fail(known);
  ObjectiveFilter filter{*std::move(cycle), *std::move(owner), include == "true"};
  auto query = TextQuery::Parse(c.ParamOr("q"));
  if (!query.ok()) {
    return c.Fail(ApiError{400, "malformed", query.status().message(), "q"});
  }
  // A search costs about a microsecond per objective, under the lock the
  // follower needs: a page looks at a bounded number of them.
  constexpr size_t kSearchScanPerPage = 10'000;
  Page(
      c, &Projection::objectives,
      [&](const View& v, const Objective& o) {
        return filter.Keeps(*o.FieldsAt(v.as_of())) && query->Matches(v, o);
      },
      &View::ObjectiveRowOf<>, RenderObjective, query->empty() ? SIZE_MAX : kSearchScanPerPage,
      [&](const Projection& p) { return ListedObjectives(p, filter); });
}

static json CommentsJson(const std::vector<Comment>& comments, uint64_t as_of) {
  json out = json::array();
  for (const Comment& cm : comments) {
    if (cm.meta.seq > as_of) break;
    ShownFlags flags;
    json comment = {{"author", cm.meta.actor},
                    {"text", ShownJson({cm.text, cm.meta.seq, PersonalField::TEXT}, &flags)},
                    {"recorded_at", FormatTimeUs(cm.meta.recorded_at_us)},
                    {"seq", cm.meta.seq}};
    flags.AddTo(&comment);
    out.push_back(std::move(comment));
  }
  return out;
}

// The entity's JSON (View::ObjectiveJson or KeyResultJson) with its
// comments known at the view's as_of.
template <typename E>
static json WithComments(View& v, const E& e, json (View::*render)(const E&)) {
  json body = (v.*render)(e);
  body["comments"] = CommentsJson(e.comments, v.as_of());
  return body;
}

void Server::Routes::GetObjective(Call& c) {
  GetAsOf(c, "objective", &Projection::objective,
          [](View& v, const Objective& o) { return WithComments(v, o, &View::ObjectiveJson); });
}

void Server::Routes::GetKeyResult(Call& c) {
  GetAsOf(c, "key result", &Projection::key_result,
          [](View& v, const KeyResult& kr) { return WithComments(v, kr, &View::KeyResultJson); });
}

// The series, oldest measurement first, paged by position in the series
// as it stood at the cursor's as_of. Only the page's check-ins are
// copied out under the lock.
void Server::Routes::ListCheckIns(Call& c) {
  auto id = PathId(c);
  if (!id) return;
  auto limit = LimitParam(c);
  if (!limit) return;
  std::vector<CheckIn> page;
  bool more = false;
  uint64_t next = 0;
  std::optional<uint64_t> as_of =
      projector_->Read([&](const Projection& p) -> std::optional<uint64_t> {
        std::optional<PageCursor> cursor;
        auto point = ParsePagedPoint(c, p, &cursor);
        if (!point) return std::nullopt;
        std::optional<uint64_t> offset = cursor ? ParseUnsigned(cursor->position) : uint64_t{0};
        if (!offset) {
          c.Fail(ApiError{400, "malformed", "cursor is not one this server gave", "cursor"});
          return std::nullopt;
        }
        const KeyResult* kr = p.key_result(*id);
        if (!kr || !kr->At(point->as_of)) {
          c.Fail(404, "no key result " + *id, "id");
          return std::nullopt;
        }
        auto series = CheckInOrder(*kr, point->as_of);
        size_t i = std::min<uint64_t>(*offset, series.size());
        for (; i < series.size() && page.size() < *limit; ++i) {
          const CheckIn& ci = kr->check_ins[series[i].index];
          if (ci.measured_at_us > point->at) break;
          page.push_back(ci);
          page.back().value = series[i].value;  // as corrected
        }
        assert(page.size() <= *limit && i <= series.size());
        next = i;
        more = i < series.size() && kr->check_ins[series[i].index].measured_at_us <= point->at;
        return point->as_of;
      });
  if (!as_of) return;
  json items = json::array();
  for (const CheckIn& ci : page) items.push_back(RenderCheckIn(ci));
  c.Send(200, {{"items", std::move(items)},
               {"next", more ? json(PageCursorText(*as_of, std::to_string(next))) : json(nullptr)},
               {"as_of_seq", *as_of}});
  c.TagState(*as_of);
}

namespace {

// `depth`: absent → the whole tree; 0..kMaxCascadeDepth levels below the
// roots, else 400.
constexpr uint64_t kMaxCascadeDepth = 1000;
// A cascade, review or lint showing more objectives than this streams
// (chunked, never whole in memory, not kept by the answer cache); a
// smaller one is sent whole (and cached, but the lint).
constexpr size_t kStreamedObjectives = 1000;

// A streamed answer hands its text on in pieces of about this size, with
// the projection let go meanwhile.
constexpr size_t kStreamedPiece = 64 * 1024;

// What a streamed JSON answer's writer calls between its parts: when a
// piece is waiting, hands it on with the projection let go.
std::function<void()> FlushPieces(JsonOut& out, const Projector::Pause& pause) {
  return [&out, &pause] {
    if (out.waiting() >= kStreamedPiece) pause([&] { out.Flush(); });
  };
}

// What a cascade or lint writes into `out` with the view at its point,
// calling `flush` between its parts.
using ViewAnswer = std::function<void(View& v, JsonOut& out, const std::function<void()>& flush)>;

// Sends `whole`, the answer written under the lock, unless it was `big`:
// then streams `write`'s answer at `at`, written again as it is sent, the
// projection let go between pieces.
void SendWholeOrStream(Call& c, const Projector* projector, const Point& at, std::string whole,
                       bool big, ViewAnswer write) {
  if (!big) return c.SendJsonText(200, std::move(whole));
  StreamJson(c, 200, [projector, at, write = std::move(write)](JsonOut& out) {
    projector->ReadPaused([&](const Projection& p, const Projector::Pause& pause) {
      View v(p, at.as_of, at.at, at.now);
      write(v, out, FlushPieces(out, pause));
    });
  });
}

// For an answer written whole under the lock: nothing to let go.
const Projector::Pause kNoPause = [](const std::function<void()>& during) { during(); };

// Writes `plan` as `format` to `hand` in pieces of about kStreamedPiece,
// each handed on with the projection let go (`pause`).
void WriteReviewPieces(ReviewPlan& plan, ReviewFormat format, uint64_t as_of,
                       const json& checkpoint, const TextSink& hand,
                       const Projector::Pause& pause) {
  if (format == ReviewFormat::kJson) {
    JsonOut out(hand, SIZE_MAX);
    plan.WriteJson(out, as_of, &checkpoint, FlushPieces(out, pause));
    out.Flush();
    return;
  }
  std::string text;
  auto flush = [&] {
    if (!text.empty()) hand(text);
    text.clear();
  };
  plan.WriteText(format, &text, &checkpoint, [&] {
    if (text.size() >= kStreamedPiece) pause(flush);
  });
  flush();
}

// The review's forms (format=).
struct ReviewForm {
  const char* name;
  ReviewFormat format;
  const char* content_type;
};
constexpr ReviewForm kReviewForms[] = {
    {"json", ReviewFormat::kJson, "application/json; charset=utf-8"},
    {"md", ReviewFormat::kMarkdown, "text/markdown; charset=utf-8"},
    {"csv", ReviewFormat::kCsv, "text/csv; charset=utf-8"},
};

// `depth=`: nullopt and true when absent; false after answering 400.
bool ParseDepth(Call& c, std::optional<int>* depth) {
  const std::string* text = c.Param("depth");
  if (!text) return true;
  ApiError e;
  auto v = ParseWholeInRange(*text, "depth", 0, kMaxCascadeDepth, &e);
  if (!v) {
    c.Fail(e);
    return false;
  }
  *depth = static_cast<int>(*v);
  return true;
}

}  // namespace

// A small cascade is written whole under the lock (and cached); a big one
// is written again as it is sent, the lock let go between pieces, so its
// size costs neither memory nor other requests' waiting.
void Server::Routes::GetCascade(Call& c) {
  std::optional<int> depth;
  if (!ParseDepth(c, &depth)) return;
  const auto cycle = IdParam(c, "cycle");
  if (!cycle) return;
  const auto root = IdParam(c, "root");
  if (!root) return;
  std::optional<Point> point;
  std::string whole;
  bool big = false;
  projector_->Read([&](const Projection& p) {
    point = ParsePoint(c, p);
    if (!point) return;
    View v(p, point->as_of, point->at, point->now);
    auto plan = CascadePlan::Make(v, *cycle, *root, depth);
    if (!plan.ok()) {
      point.reset();
      return c.Fail(plan.status());
    }
    assert(point->as_of <= p.seq());
    big = plan->shown_objectives() > kStreamedObjectives;
    if (!big) whole = WriteJson([&](JsonOut& out) { plan->Write(v, out, point->as_of); });
  });
  if (!point) return;
  c.TagState(point->as_of);
  SendWholeOrStream(c, projector_, *point, std::move(whole), big,
                    [cycle = *cycle, root = *root, depth](View& v, JsonOut& out,
                                                          const std::function<void()>& flush) {
                      auto plan = CascadePlan::Make(v, cycle, root, depth);
                      if (!plan.ok()) throw std::runtime_error(plan.status().message());
                      plan->Write(v, out, v.as_of(), flush);
                    });
}

// Like the cascade: a small review (or lint) is written whole under the
// lock; a big one is written again as it is sent, the lock let go between
// pieces.
void Server::Routes::GetReview(Call& c) {
  auto id = PathId(c);
  if (!id) return;
  const std::string format = c.ParamOr("format", "json");
  const ReviewForm* form = nullptr;
  for (const ReviewForm& f : kReviewForms) {
    if (format == f.name) form = &f;
  }
  if (!form) return c.Fail(ApiError{400, "malformed", "format is json, md or csv", "format"});
  std::optional<uint64_t> as_of;
  std::string whole;
  bool big = false;
  json checkpoint;
  projector_->Read([&](const Projection& p) {
    auto point = ParsePoint(c, p);
    if (!point) return;
    auto plan = ReviewPlan::Make(p, *id, point->as_of);
    if (!plan.ok()) return c.Fail(plan.status());
    // The log's checkpoint at as_of (SPEC §7): the review can be proved
    // against the log later. O(log n) tree reads and one signature.
    auto signed_at = CheckpointJson(point->as_of);
    if (!signed_at.ok()) return c.Fail(signed_at.status());
    checkpoint = std::move(signed_at.value());
    as_of = point->as_of;
    big = plan->objectives() > kStreamedObjectives;
    if (!big) {
      WriteReviewPieces(
          *plan, form->format, *as_of, checkpoint, [&](std::string_view piece) { whole += piece; },
          kNoPause);
    }
  });
  if (!as_of) return;
  TagReview(c, *as_of, checkpoint);
  if (form->format == ReviewFormat::kCsv) {
    c.res.set_header("Content-Disposition", "attachment; filename=\"review-" + *id + ".csv\"");
  }
  if (!big) {
    c.res.status = 200;
    c.res.set_content(std::move(whole), form->content_type);
    return;
  }
  StreamText(c, 200, form->content_type,
             [projector = projector_, cycle = *id, as_of = *as_of, format = form->format,
              checkpoint = std::move(checkpoint)](const TextSink& hand) {
               projector->ReadPaused([&](const Projection& p, const Projector::Pause& pause) {
                 auto plan = ReviewPlan::Make(p, cycle, as_of);
                 if (!plan.ok()) throw std::runtime_error(plan.status().message());
                 WriteReviewPieces(*plan, format, as_of, checkpoint, hand, pause);
               });
             });
}

void Server::Routes::GetLint(Call& c) {
  const auto cycle_param = IdParam(c, "cycle");
  if (!cycle_param) return;
  const std::string& cycle = *cycle_param;
  std::optional<Point> point;
  std::string whole;
  bool big = false;
  projector_->Read([&](const Projection& p) {
    point = ParsePoint(c, p);
    if (!point) return;
    if (Status known = CycleKnown(p, cycle); !known.ok()) {
      point.reset();
      return c.Fail(known);
    }
    View v(p, point->as_of, point->at, point->now);
    big = v.Objectives({cycle, "", false}).size() > kStreamedObjectives;
    if (!big) whole = WriteJson([&](JsonOut& out) { v.WriteLint(out, cycle, point->as_of); });
  });
  if (!point) return;
  SendWholeOrStream(c, projector_, *point, std::move(whole), big,
                    [cycle](View& v, JsonOut& out, const std::function<void()>& flush) {
                      v.WriteLint(out, cycle, v.as_of(), flush);
                    });
}

void Server::Routes::OpenApi(Call& c) {
  c.res.status = 200;
  c.res.set_content(options_.openapi_json, "application/json; charset=utf-8");
}

}  // namespace okr::api
