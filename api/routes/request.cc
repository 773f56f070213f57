#include "api/routes/request.h"

#include <cassert>
#include <charconv>
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
  bool OptStr(const char* name, std::optional<std::string>* out) {
    seen_.insert(name);
    auto it = body_.find(name);
    if (it == body_.end()) return true;
    if (it->is_null()) {
      *out = "";
      return true;
    }
    if (!it->is_string()) return Fail(std::string(name) + " must be a string", name);
    *out = it->get<std::string>();
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
    if (!us) return Fail(std::string(name) + " must be an RFC 3339 date-time", name);
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

// The commands on units; nullopt (and *error set) on a refusal.
std::optional<Command> ParseUnitCommand(WriteRoute route, const std::string& id, Fields& f,
                                        ApiError* error) {
  switch (route) {
    case WriteRoute::kCreateUnit: {
      CreateUnit c;
      if (!f.Str("id", &c.id, true) || !f.Str("kind", &c.kind, true) ||
          !f.Str("name", &c.name, true) || !f.Str("parent", &c.parent) ||
          !f.Str("email", &c.email)) {
        return std::nullopt;
      }
      return c;
    }
    case WriteRoute::kUpdateUnit: {
      UpdateUnit c{id, {}, {}, {}};
      if (!f.OptStr("name", &c.name) || !f.OptStr("parent", &c.parent) ||
          !f.OptStr("email", &c.email)) {
        return std::nullopt;
      }
      return c;
    }
    case WriteRoute::kRetireUnit:
      return RetireUnit{id};
    default:
      break;
  }
  assert(false && "ParseUnitCommand takes only its own routes");
  *error = Malformed("unknown route");
  return std::nullopt;
}

// The commands on cycles; nullopt (and *error set) on a refusal.
std::optional<Command> ParseCycleCommand(WriteRoute route, const std::string& id, Fields& f,
                                         ApiError* error) {
  switch (route) {
    case WriteRoute::kCreateCycle: {
      CreateCycle c;
      if (!f.Str("id", &c.id, true) || !f.Str("name", &c.name, true) ||
          !f.Str("starts", &c.starts, true) || !f.Str("ends", &c.ends, true) ||
          !f.Str("parent", &c.parent)) {
        return std::nullopt;
      }
      return c;
    }
    case WriteRoute::kUpdateCycle: {
      UpdateCycle c{id, {}, {}, {}, {}};
      if (!f.OptStr("name", &c.name) || !f.OptStr("starts", &c.starts) ||
          !f.OptStr("ends", &c.ends) || !f.OptStr("parent", &c.parent)) {
        return std::nullopt;
      }
      return c;
    }
    case WriteRoute::kCloseCycle:
      return CloseCycle{id};
    case WriteRoute::kReopenCycle:
      return ReopenCycle{id};
    default:
      break;
  }
  assert(false && "ParseCycleCommand takes only its own routes");
  *error = Malformed("unknown route");
  return std::nullopt;
}

// The commands on objectives; nullopt (and *error set) on a refusal.
std::optional<Command> ParseObjectiveCommand(WriteRoute route, const std::string& id, Fields& f,
                                             ApiError* error) {
  switch (route) {
    case WriteRoute::kCreateObjective: {
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
    case WriteRoute::kUpdateObjective: {
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
    case WriteRoute::kArchiveObjective:
      return ArchiveObjective{id};
    default:
      break;
  }
  assert(false && "ParseObjectiveCommand takes only its own routes");
  *error = Malformed("unknown route");
  return std::nullopt;
}

// The commands on key results; nullopt (and *error set) on a refusal.
std::optional<Command> ParseKeyResultCommand(WriteRoute route, const std::string& id, Fields& f,
                                             ApiError* error) {
  switch (route) {
    case WriteRoute::kCreateKeyResult: {
      CreateKeyResult c;
      if (!f.Str("id", &c.id, true) || !f.Str("objective", &c.objective, true) ||
          !f.Str("title", &c.title, true) || !f.Str("owner", &c.owner) ||
          !f.Str("metric", &c.metric) || !f.Num("start", &c.start) ||
          !f.Num("target", &c.target, true) || !f.Str("unit", &c.unit) ||
          !f.Num("weight", &c.weight)) {
        return std::nullopt;
      }
      if (c.metric.empty()) c.metric = "number";
      return c;
    }
    case WriteRoute::kUpdateKeyResult: {
      UpdateKeyResult c{id, {}, {}, {}, {}, {}, {}, {}};
      if (!f.OptStr("title", &c.title) || !f.OptStr("owner", &c.owner) ||
          !f.OptStr("metric", &c.metric) || !f.OptStr("unit", &c.unit) ||
          !f.OptNum("start", &c.start) || !f.OptNum("target", &c.target) ||
          !f.OptNum("weight", &c.weight)) {
        return std::nullopt;
      }
      return c;
    }
    case WriteRoute::kRemoveKeyResult:
      return RemoveKeyResult{id};
    default:
      break;
  }
  assert(false && "ParseKeyResultCommand takes only its own routes");
  *error = Malformed("unknown route");
  return std::nullopt;
}

// The commands on check-ins, corrections, comments and reviews; nullopt (and *error set) on a
// refusal.
std::optional<Command> ParseNoteCommand(WriteRoute route, const std::string& id, Fields& f,
                                        ApiError* error) {
  switch (route) {
    case WriteRoute::kCheckIn: {
      RecordCheckIn c;
      c.key_result = id;
      if (!f.Str("id", &c.id) || !f.Num("value", &c.value, true) ||
          !f.OptNum("confidence", &c.confidence) || !f.Str("status", &c.status) ||
          !f.Str("note", &c.note) || !f.Time("measured_at", &c.measured_at_us)) {
        return std::nullopt;
      }
      return c;
    }
    case WriteRoute::kCorrection: {
      CorrectCheckIn c;
      c.key_result = id;
      if (!f.Str("corrects", &c.corrects, true) || !f.Num("value", &c.value, true) ||
          !f.Str("note", &c.note)) {
        return std::nullopt;
      }
      return c;
    }
    case WriteRoute::kComment: {
      AddComment c;
      c.target = id;
      if (!f.Str("text", &c.text, true)) return std::nullopt;
      return c;
    }
    case WriteRoute::kReview: {
      ReviewObjective c;
      c.objective = id;
      if (!f.Num("score", &c.score, true) || !f.Str("outcome", &c.outcome, true) ||
          !f.Str("reflection", &c.reflection) || !f.Str("lessons", &c.lessons)) {
        return std::nullopt;
      }
      return c;
    }
    default:
      break;
  }
  assert(false && "ParseNoteCommand takes only its own routes");
  *error = Malformed("unknown route");
  return std::nullopt;
}

}  // namespace

std::optional<json> ParseBody(const std::string& body, ApiError* error) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  if (TooDeep(body)) {
    *error = Malformed("body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return std::nullopt;
  }
  json parsed = json::parse(body, nullptr, false);
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
  std::optional<Command> command;
  switch (route) {
    case WriteRoute::kCreateUnit:
    case WriteRoute::kUpdateUnit:
    case WriteRoute::kRetireUnit:
      command = ParseUnitCommand(route, id, f, error);
      break;
    case WriteRoute::kCreateCycle:
    case WriteRoute::kUpdateCycle:
    case WriteRoute::kCloseCycle:
    case WriteRoute::kReopenCycle:
      command = ParseCycleCommand(route, id, f, error);
      break;
    case WriteRoute::kCreateObjective:
    case WriteRoute::kUpdateObjective:
    case WriteRoute::kArchiveObjective:
      command = ParseObjectiveCommand(route, id, f, error);
      break;
    case WriteRoute::kCreateKeyResult:
    case WriteRoute::kUpdateKeyResult:
    case WriteRoute::kRemoveKeyResult:
      command = ParseKeyResultCommand(route, id, f, error);
      break;
    case WriteRoute::kCheckIn:
    case WriteRoute::kCorrection:
    case WriteRoute::kComment:
    case WriteRoute::kReview:
      command = ParseNoteCommand(route, id, f, error);
      break;
    default:
      *error = Malformed("unknown route");
      return std::nullopt;
  }
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

std::optional<size_t> ParseLimit(const std::string* text, ApiError* error) {
  if (text == nullptr) return kDefaultPageSize;
  auto v = ParseUnsigned(*text);
  if (!v || *v == 0 || *v > kMaxPageSize) {
    *error = Malformed("limit must be a whole number from 1 to " + std::to_string(kMaxPageSize),
                       "limit");
    return std::nullopt;
  }
  return static_cast<size_t>(*v);
}

}  // namespace okr::api
