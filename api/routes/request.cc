#include "api/routes/request.h"

#include <cassert>
#include <charconv>
#include <iterator>
#include <set>
#include <vector>

#include "eventstore/base/time.h"

namespace okr::api {

using nlohmann::json;

namespace {

ApiError Malformed(std::string message, std::string field = "") {
  return ApiError{400, "malformed", std::move(message), std::move(field)};
}

// Depth of the deepest nesting, counted outside strings, stopping early.
bool TooDeep(const std::string& body) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

// Reads fields of one body object, remembering which it has seen, so that
// any other field is refused at Finish().
class Fields {
 public:
  Fields(const json& body, ApiError* error) : body_(body), error_(error) {}

  bool Str(const char* name, std::string* out, bool required = false) {
    seen_.insert(name);
    auto it = body_.find(name);
    if (it == body_.end() || it->is_null()) {
      if (required) return Fail(std::string(name) + " is required", name);
      return true;
    }
    if (!it->is_string()) return Fail(std::string(name) + " must be a string", name);
    *out = it->get<std::string>();
    return true;
  }
  // Absent leaves *out unset; null sets "" (the update clears the field).
  bool OptStr(const char* name, std::optional<std::string>* out) {
    if (!body_.contains(name)) {
      seen_.insert(name);
      return true;
    }
    std::string v;  // Str reads null as absent: v stays ""
    if (!Str(name, &v)) return false;
    assert(seen_.count(name) == 1);
    *out = std::move(v);
    return true;
  }
  bool Num(const char* name, double* out, bool required = false) {
    std::optional<double> v;
    if (!OptNum(name, &v)) return false;
    if (!v) return required ? Fail(std::string(name) + " is required", name) : true;
    *out = *v;
    return true;
  }
  bool OptNum(const char* name, std::optional<double>* out) {
    seen_.insert(name);
    auto it = body_.find(name);
    if (it == body_.end() || it->is_null()) return true;
    if (it->is_boolean()) {
      *out = it->get<bool>() ? 1.0 : 0.0;
      return true;
    }
    if (!it->is_number()) return Fail(std::string(name) + " must be a number", name);
    *out = it->get<double>();  // finite: ParseBody refuses 1e400 (422)
    return true;
  }
  bool StrList(const char* name, std::optional<std::vector<std::string>>* out) {
    seen_.insert(name);
    auto it = body_.find(name);
    if (it == body_.end()) return true;
    if (it->is_null()) {
      *out = std::vector<std::string>{};
      return true;
    }
    if (!it->is_array()) return Fail(std::string(name) + " must be a list of ids", name);
    std::vector<std::string> v;
    for (const auto& item : *it) {
      if (!item.is_string()) return Fail(std::string(name) + " must be a list of ids", name);
      v.push_back(item.get<std::string>());
    }
    *out = std::move(v);
    return true;
  }
  bool Time(const char* name, std::optional<int64_t>* out) {
    std::string text;
    if (!Str(name, &text)) return false;
    if (text.empty()) return true;
    auto us = ParseRfc3339(text);
    if (!us) return Fail(std::string(name) + " must be " + kRfc3339Accepted, name);
    *out = *us;
    return true;
  }
  // Refuses any field not read above.
  bool Finish() {
    for (auto it = body_.begin(); it != body_.end(); ++it) {
      if (!seen_.count(it.key())) {
        return Fail("unknown field " + it.key().substr(0, 64), it.key().substr(0, 64));
      }
    }
    return true;
  }

 private:
  bool Fail(std::string message, std::string field) {
    *error_ = Malformed(std::move(message), std::move(field));
    return false;
  }
  const json& body_;
  ApiError* error_;
  std::set<std::string> seen_;
};

// nlohmann refuses a number too large for a double (1e400) as it refuses
// a syntax error. Such a number is well-formed JSON that is not finite:
// a broken rule (422), named by the key it is the value of. This finds
// whether a failed parse stopped on one, and under which key.
class OverflowFinder : public nlohmann::json_sax<json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    keys_.emplace_back();
    return true;
  }
  bool key(string_t& k) override {
    if (!keys_.empty()) keys_.back() = k;
    return true;
  }
  bool end_object() override {
    if (!keys_.empty()) keys_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    overflow_ = e.id == 406;  // out_of_range.406: number overflow
    return false;
  }
  bool overflow() const { return overflow_; }
  std::string field() const { return keys_.empty() ? "" : keys_.back().substr(0, 64); }

 private:
  std::vector<std::string> keys_;
  bool overflow_ = false;
};

// One parser per write route: the command from the path's id and the body's
// fields, or nullopt with *error set (by Fields, or here for a rule of the
// route's own). Each reads its fields in the order the refusals name them.
using Parser = std::optional<Command> (*)(const std::string& id, Fields& f, ApiError* error);

// `c` once every field read into it (`read`), else nullopt (Fields set the error). Takes
// `c` by reference so that the reads, evaluated first, fill the command that is returned.
template <typename C>
std::optional<Command> IfRead(bool read, C& c) {
  if (!read) return std::nullopt;
  return std::optional<Command>(std::move(c));
}

std::optional<Command> ParseCreateUnit(const std::string&, Fields& f, ApiError*) {
  CreateUnit c;
  return IfRead(f.Str("id", &c.id, true) && f.Str("kind", &c.kind, true) &&
                    f.Str("name", &c.name, true) && f.Str("parent", &c.parent) &&
                    f.Str("email", &c.email),
                c);
}

std::optional<Command> ParseUpdateUnit(const std::string& id, Fields& f, ApiError*) {
  UpdateUnit c{id, {}, {}, {}};
  return IfRead(
      f.OptStr("name", &c.name) && f.OptStr("parent", &c.parent) && f.OptStr("email", &c.email), c);
}

std::optional<Command> ParseCreateCycle(const std::string&, Fields& f, ApiError*) {
  CreateCycle c;
  return IfRead(f.Str("id", &c.id, true) && f.Str("name", &c.name, true) &&
                    f.Str("starts", &c.starts, true) && f.Str("ends", &c.ends, true) &&
                    f.Str("parent", &c.parent),
                c);
}

std::optional<Command> ParseUpdateCycle(const std::string& id, Fields& f, ApiError*) {
  UpdateCycle c{id, {}, {}, {}, {}};
  return IfRead(f.OptStr("name", &c.name) && f.OptStr("starts", &c.starts) &&
                    f.OptStr("ends", &c.ends) && f.OptStr("parent", &c.parent),
                c);
}

std::optional<Command> ParseCreateObjective(const std::string&, Fields& f, ApiError*) {
  CreateObjective c;
  std::optional<std::vector<std::string>> parents;
  if (!f.Str("id", &c.id, true) || !f.Str("cycle", &c.cycle, true) ||
      !f.Str("owner", &c.owner, true) || !f.Str("title", &c.title, true) ||
      !f.Str("description", &c.description) || !f.StrList("parents", &parents)) {
    return std::nullopt;
  }
  c.parents = parents.value_or(std::vector<std::string>{});
  return c;
}

std::optional<Command> ParseUpdateObjective(const std::string& id, Fields& f, ApiError* error) {
  UpdateObjective c{id, {}, {}, {}, {}, {}};
  std::optional<std::string> state;
  if (!f.OptStr("title", &c.title) || !f.OptStr("description", &c.description) ||
      !f.OptStr("owner", &c.owner) || !f.StrList("parents", &c.parents) ||
      !f.OptStr("state", &state)) {
    return std::nullopt;
  }
  if (state) {
    if (*state != "active" && *state != "archived") {
      *error = ApiError{422, "invalid", "state must be active or archived", "state"};
      return std::nullopt;
    }
    c.archived = *state == "archived";
  }
  return c;
}

std::optional<Command> ParseCreateKeyResult(const std::string&, Fields& f, ApiError*) {
  CreateKeyResult c;
  if (!f.Str("id", &c.id, true) || !f.Str("objective", &c.objective, true) ||
      !f.Str("title", &c.title, true) || !f.Str("owner", &c.owner) || !f.Str("metric", &c.metric) ||
      !f.Num("start", &c.start) || !f.Num("target", &c.target, true) || !f.Str("unit", &c.unit) ||
      !f.Num("weight", &c.weight)) {
    return std::nullopt;
  }
  if (c.metric.empty()) c.metric = "number";
  return c;
}

std::optional<Command> ParseUpdateKeyResult(const std::string& id, Fields& f, ApiError*) {
  UpdateKeyResult c{id, {}, {}, {}, {}, {}, {}, {}};
  return IfRead(f.OptStr("title", &c.title) && f.OptStr("owner", &c.owner) &&
                    f.OptStr("metric", &c.metric) && f.OptStr("unit", &c.unit) &&
                    f.OptNum("start", &c.start) && f.OptNum("target", &c.target) &&
                    f.OptNum("weight", &c.weight),
                c);
}

std::optional<Command> ParseCheckIn(const std::string& id, Fields& f, ApiError*) {
  RecordCheckIn c;
  c.key_result = id;
  return IfRead(f.Str("id", &c.id) && f.Num("value", &c.value, true) &&
                    f.OptNum("confidence", &c.confidence) && f.Str("status", &c.status) &&
                    f.Str("note", &c.note) && f.Time("measured_at", &c.measured_at_us),
                c);
}

std::optional<Command> ParseCorrection(const std::string& id, Fields& f, ApiError*) {
  CorrectCheckIn c;
  c.key_result = id;
  return IfRead(f.Str("corrects", &c.corrects, true) && f.Num("value", &c.value, true) &&
                    f.Str("note", &c.note),
                c);
}

std::optional<Command> ParseComment(const std::string& id, Fields& f, ApiError*) {
  AddComment c;
  c.target = id;
  return IfRead(f.Str("text", &c.text, true), c);
}

std::optional<Command> ParseReview(const std::string& id, Fields& f, ApiError*) {
  ReviewObjective c;
  c.objective = id;
  return IfRead(f.Num("score", &c.score, true) && f.Str("outcome", &c.outcome, true) &&
                    f.Str("reflection", &c.reflection) && f.Str("lessons", &c.lessons),
                c);
}

// The routes whose command is the path's id alone (the body has only "reason").
template <typename C>
std::optional<Command> ParseIdOnly(const std::string& id, Fields&, ApiError*) {
  return C{id};
}

// Indexed by WriteRoute: rows in the enum's order, one line per entity as
// request.h lists them.
// clang-format off
constexpr Parser kParsers[] = {
    ParseCreateUnit, ParseUpdateUnit, ParseIdOnly<RetireUnit>,
    ParseCreateCycle, ParseUpdateCycle, ParseIdOnly<CloseCycle>, ParseIdOnly<ReopenCycle>,
    ParseCreateObjective, ParseUpdateObjective, ParseIdOnly<ArchiveObjective>,
    ParseCreateKeyResult, ParseUpdateKeyResult, ParseIdOnly<RemoveKeyResult>,
    ParseCheckIn, ParseCorrection, ParseComment, ParseReview,
};
// clang-format on
// Every route has its row; kReview is the last enumerator.
static_assert(std::size(kParsers) == static_cast<size_t>(WriteRoute::kReview) + 1);

// The parser of `route`, or nullptr for a value outside WriteRoute.
Parser ParserOf(WriteRoute route) {
  const auto i = static_cast<size_t>(route);
  return i < std::size(kParsers) ? kParsers[i] : nullptr;
}

}  // namespace

std::optional<json> ParseBody(const std::string& body, ApiError* error) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  if (TooDeep(body)) {
    *error = Malformed("body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return std::nullopt;
  }
  // Each open object's names so far: a name given twice in one object is
  // refused, as an unknown one is (which value counted would be a guess;
  // nlohmann keeps the last, another reader of the same body the first).
  std::vector<std::set<std::string, std::less<>>> names;
  std::string repeated;
  json parsed = json::parse(
      body,
      [&](int, json::parse_event_t event, json& value) {
        if (event == json::parse_event_t::object_start) names.emplace_back();
        if (event == json::parse_event_t::object_end) names.pop_back();
        if (event == json::parse_event_t::key && repeated.empty() &&
            !names.back().insert(value.get_ref<const std::string&>()).second) {
          repeated = value.get_ref<const std::string&>().substr(0, 64);
        }
        return true;
      },
      false);
  if (!parsed.is_discarded() && !repeated.empty()) {
    *error = Malformed(repeated + " is given more than once", repeated);
    return std::nullopt;
  }
  if (parsed.is_discarded()) {
    OverflowFinder finder;
    json::sax_parse(body, &finder);
    if (finder.overflow()) {
      std::string field = finder.field();
      *error = ApiError{
          422, "invalid",
          (field.empty() ? std::string("a number") : field) + " must be a finite number", field};
    } else {
      *error = Malformed("body is not valid JSON");
    }
    return std::nullopt;
  }
  if (!parsed.is_object()) {
    *error = Malformed("body must be a JSON object");
    return std::nullopt;
  }
  return parsed;
}

std::optional<Command> ParseCommand(WriteRoute route, const std::string& id, const json& body,
                                    std::string* reason, ApiError* error) {
  assert(reason != nullptr && error != nullptr);
  Fields f(body, error);
  if (!f.Str("reason", reason)) return std::nullopt;
  const Parser parse = ParserOf(route);
  if (parse == nullptr) {
    *error = Malformed("unknown route");
    return std::nullopt;
  }
  std::optional<Command> command = parse(id, f, error);
  assert(command.has_value() || !error->message.empty());  // a refusal always says why
  // Any field the command's parser did not read is refused.
  if (!command || !f.Finish()) return std::nullopt;
  return command;
}

std::optional<uint64_t> ParseUnsigned(std::string_view text) {
  uint64_t v = 0;
  if (text.empty() || text.size() > 20) return std::nullopt;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<uint64_t> ParseWholeInRange(std::string_view text, const std::string& name,
                                          uint64_t min, uint64_t max, ApiError* error) {
  assert(min <= max);
  auto v = ParseUnsigned(text);
  if (!v || *v < min || *v > max) {
    *error = Malformed(
        name + " must be a whole number from " + std::to_string(min) + " to " + std::to_string(max),
        name);
    return std::nullopt;
  }
  return v;
}

std::optional<size_t> ParseLimit(const std::string* text, ApiError* error, size_t fallback,
                                 size_t max) {
  assert(fallback >= 1 && fallback <= max);
  if (text == nullptr) return fallback;
  return ParseWholeInRange(*text, "limit", 1, max, error);
}

std::string StateTag(uint64_t seq, std::optional<uint64_t> version) {
  std::string tag = "\"";
  if (version) tag += std::to_string(*version) + ".";
  return tag + std::to_string(seq) + "\"";
}

namespace {

// The version and seq of an opaque tag "<version>.<seq>", or the seq of "<seq>".
struct TagParts {
  std::optional<uint64_t> version;
  uint64_t seq = 0;
};
std::optional<TagParts> ParseTagParts(std::string_view opaque) {
  auto dot = opaque.find('.');
  if (dot == std::string_view::npos) {
    auto seq = ParseUnsigned(opaque);
    if (!seq) return std::nullopt;
    return TagParts{std::nullopt, *seq};
  }
  auto version = ParseUnsigned(opaque.substr(0, dot));
  auto seq = ParseUnsigned(opaque.substr(dot + 1));
  if (!version || !seq) return std::nullopt;
  return TagParts{version, *seq};
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<uint64_t> ParseIfMatch(std::string_view header) {
  std::string_view v = TrimOws(header);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  auto parts = ParseTagParts(v);
  if (!parts) return std::nullopt;
  // A bare number is the version; in "<version>.<seq>" the version is the first part.
  return parts->version ? *parts->version : parts->seq;
}

bool IfNoneMatchAny(std::string_view header) { return TrimOws(header) == "*"; }

bool IfNoneMatchNames(std::string_view header, std::string_view tag) {
  assert(tag.size() >= 2 && tag.front() == '"' && tag.back() == '"');
  std::string_view rest = header;
  for (size_t tags = 0; tags < kMaxIfNoneMatchTags; ++tags) {
    rest = TrimOws(rest);
    while (!rest.empty() && rest.front() == ',') rest = TrimOws(rest.substr(1));
    if (rest.empty()) return false;
    if (rest.substr(0, 2) == "W/") rest.remove_prefix(2);
    if (rest.empty() || rest.front() != '"') return false;  // malformed: no match
    auto close = rest.find('"', 1);
    if (close == std::string_view::npos) return false;
    if (rest.substr(0, close + 1) == tag) return true;
    rest.remove_prefix(close + 1);
  }
  return false;
}

}  // namespace okr::api
