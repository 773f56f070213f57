// Planning a JSON import (docs/IMPORT.md): units, cycles, objectives with
// their key results and check-ins, each object parsed by the API's own
// body rules; and finding a JSON pointer's line and column in the text,
// so that a refusal names where the file has it.
#include <algorithm>
#include <cassert>
#include <cctype>
#include <functional>
#include <set>
#include <unordered_map>

#include "api/routes/request.h"
#include "tools/ctl/import_internal.h"

namespace okr::ctl::import_internal {
namespace {

using nlohmann::json;

// --- Locating a JSON pointer in the text it was parsed from ---

// Walks valid JSON text to the value a pointer names; stops at the deepest
// part of the pointer that exists.
class JsonLocator {
 public:
  explicit JsonLocator(std::string_view text) : t_(text) {}

  size_t Find(const std::vector<std::string>& tokens) {
    p_ = 0;
    return Find(tokens, 0);
  }

 private:
  size_t Find(const std::vector<std::string>& tokens, size_t k) {
    Ws();
    if (k == tokens.size() || p_ >= t_.size()) return p_;
    if (t_[p_] == '{') return FindInObject(tokens, k);
    if (t_[p_] == '[') return FindInArray(tokens, k);
    return p_;
  }

  size_t FindInObject(const std::vector<std::string>& tokens, size_t k) {
    assert(t_[p_] == '{');
    const size_t here = p_++;
    for (;;) {
      Ws();
      if (p_ >= t_.size() || t_[p_] != '"') return here;
      std::string key = ReadString();
      Ws();
      if (p_ < t_.size() && t_[p_] == ':') ++p_;
      Ws();
      if (key == tokens[k]) return Find(tokens, k + 1);
      if (!SkipToNext()) return here;
    }
  }

  size_t FindInArray(const std::vector<std::string>& tokens, size_t k) {
    assert(t_[p_] == '[');
    const size_t here = p_++;
    const std::string& token = tokens[k];
    bool numeric = !token.empty() && std::all_of(token.begin(), token.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c));
    });
    if (!numeric) return here;
    size_t wanted = std::stoul(token);
    for (size_t index = 0;; ++index) {
      Ws();
      if (p_ >= t_.size() || t_[p_] == ']') return here;
      if (index == wanted) return Find(tokens, k + 1);
      if (!SkipToNext()) return here;
    }
  }

  // Past the value here and the comma after it; false at the container's end.
  bool SkipToNext() {
    SkipValue();
    Ws();
    if (p_ < t_.size() && t_[p_] == ',') {
      ++p_;
      return true;
    }
    return false;
  }

  void Ws() {
    while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\t' || t_[p_] == '\n' || t_[p_] == '\r'))
      ++p_;
  }

  // At a quote: the string's text with simple escapes undone (enough to
  // compare keys).
  std::string ReadString() {
    assert(t_[p_] == '"');
    std::string out;
    ++p_;
    while (p_ < t_.size() && t_[p_] != '"') {
      if (t_[p_] == '\\' && p_ + 1 < t_.size()) {
        out.push_back(t_[p_ + 1]);
        p_ += 2;
        continue;
      }
      out.push_back(t_[p_++]);
    }
    ++p_;
    return out;
  }

  void SkipValue() {
    if (p_ >= t_.size()) return;
    if (t_[p_] == '"') {
      ReadString();
      return;
    }
    if (t_[p_] == '{' || t_[p_] == '[') return SkipContainer();
    while (p_ < t_.size() && t_[p_] != ',' && t_[p_] != '}' && t_[p_] != ']' && t_[p_] != ' ' &&
           t_[p_] != '\n' && t_[p_] != '\r' && t_[p_] != '\t') {
      ++p_;
    }
  }

  // Past the object or array here, strings and all.
  void SkipContainer() {
    int depth = 0;
    while (p_ < t_.size()) {
      char c = t_[p_];
      if (c == '"') {
        ReadString();
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth == 0) {
          ++p_;
          return;
        }
      }
      ++p_;
    }
  }

  std::string_view t_;
  size_t p_ = 0;
};

std::vector<std::string> PointerTokens(const std::string& pointer) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < pointer.size() && pointer[at] == '/') {
    size_t next = pointer.find('/', at + 1);
    std::string token =
        pointer.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
    // RFC 6901 escapes.
    for (size_t i = 0; (i = token.find('~', i)) != std::string::npos; ++i) {
      if (i + 1 < token.size()) token.replace(i, 2, token[i + 1] == '1' ? "/" : "~");
    }
    out.push_back(std::move(token));
    if (next == std::string::npos) break;
    at = next;
  }
  return out;
}

// 1-based line and column (in characters) of byte `offset`.
SourceLocation LineColumn(std::string_view text, size_t offset) {
  SourceLocation at{1, 1, ""};
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++at.line;
      at.column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xc0) != 0x80) {
      ++at.column;
    }
  }
  assert(at.line >= 1 && at.column >= 1);
  return at;
}

// --- JSON planning ---

// The objects of one top-level list, parsed, in file order.
template <typename T>
struct ParsedList {
  std::vector<T> items;
  std::vector<std::string> reasons, ids;
};

class JsonPlanner {
 public:
  JsonPlanner(ImportPlan* plan, ImportError* error, const std::string& text)
      : plan_(plan), error_(error), text_(text) {}

  bool Plan() {
    json doc;
    try {
      doc = json::parse(text_);
    } catch (const json::parse_error& e) {
      std::string what = e.what();
      // "[json.exception.parse_error.101] parse error at line 3, column 5: syntax error …"
      if (auto colon = what.find(": "); colon != std::string::npos) what = what.substr(colon + 2);
      SourceLocation at = LineColumn(text_, e.byte > 0 ? e.byte - 1 : 0);
      return Fail(at, "not valid JSON: " + what);
    }
    if (!CheckDocument(doc)) return false;
    std::vector<size_t> closes;  // cycles to close at the end, by their pointer index
    if (!Units(doc) || !Cycles(doc, &closes) || !Objectives(doc) || !TopLevelCheckIns(doc)) {
      return false;
    }
    for (size_t index : closes) {
      const auto& created = plan_->commands[index];
      assert(created.part == Part::kCycle);
      PlannedCommand c{Part::kCloseCycle,
                       CloseCycle{std::get<CreateCycle>(created.command).id},
                       0,
                       created.pointer + "/state",
                       "",
                       index};
      plan_->commands.push_back(std::move(c));
    }
    return true;
  }

 private:
  // The top level: one object, known keys, the format and version this
  // okrctl reads, lists where lists belong.
  bool CheckDocument(const json& doc) {
    if (!doc.is_object()) return FailAt("", "the file must hold one JSON object (docs/IMPORT.md)");
    for (auto it = doc.begin(); it != doc.end(); ++it) {
      static const std::set<std::string> kKeys = {"format", "version",    "units",
                                                  "cycles", "objectives", "check_ins"};
      if (!kKeys.count(it.key())) return FailAt("/" + it.key(), "unknown key " + Quoted(it.key()));
    }
    if (doc.contains("format") && doc["format"] != "okrd-okrs") {
      return FailAt("/format", "format must be \"okrd-okrs\"");
    }
    if (doc.contains("version") && doc["version"] != 1) {
      return FailAt("/version", "this okrctl reads version 1");
    }
    for (const char* list : {"units", "cycles", "objectives", "check_ins"}) {
      if (doc.contains(list) && !doc[list].is_array()) {
        return FailAt(std::string("/") + list, std::string(list) + " must be a list");
      }
    }
    return true;
  }

  bool Fail(SourceLocation at, std::string reason) {
    *error_ = {plan_->file, std::move(at), std::move(reason)};
    return false;
  }
  bool FailAt(const std::string& pointer, std::string reason) {
    return Fail(LocateJsonPointer(text_, pointer), std::move(reason));
  }

  // Parses one object with the API's own body rules, minus `nested` keys.
  std::optional<Command> Parse(api::WriteRoute route, const std::string& path_id, json object,
                               const std::string& pointer, std::string* reason,
                               const std::vector<std::string>& nested = {}) {
    if (!object.is_object()) {
      FailAt(pointer, "must be an object");
      return std::nullopt;
    }
    for (const auto& key : nested) object.erase(key);
    api::ApiError e;
    auto command = api::ParseCommand(route, path_id, object, reason, &e);
    if (!command) FailAt(e.field.empty() ? pointer : pointer + "/" + e.field, e.message);
    return command;
  }

  bool NewId(const std::string& id, const std::string& pointer) {
    if (id.empty()) return true;  // a check-in without id: assigned by okrd
    if (auto [it, fresh] = ids_.emplace(id, pointer); !fresh) {
      return FailAt(pointer + "/id", "duplicate id " + id + " (first at " + it->second + ")");
    }
    return true;
  }

  size_t Add(Part part, Command command, const std::string& pointer, std::string reason) {
    PlannedCommand c{part, std::move(command), 0, pointer, std::move(reason), std::nullopt};
    plan_->commands.push_back(std::move(c));
    ++plan_->records;
    return plan_->commands.size() - 1;
  }

  // Parses every object of top-level list `name` as `route`, its ids new.
  // `before(i, pointer)` checks what Parse does not see (keys in
  // `nested`) before it runs; `after(i, pointer)` after its id is taken.
  template <typename T>
  bool ParseList(const json& doc, const std::string& name, api::WriteRoute route,
                 const std::vector<std::string>& nested, ParsedList<T>* out,
                 const std::function<bool(size_t, const std::string&)>& before = {},
                 const std::function<bool(size_t, const std::string&)>& after = {}) {
    assert(doc.contains(name));
    const json& list = doc[name];
    for (size_t i = 0; i < list.size(); ++i) {
      std::string pointer = "/" + name + "/" + std::to_string(i), reason;
      if (before && !before(i, pointer)) return false;
      auto c = Parse(route, "", list[i], pointer, &reason, nested);
      if (!c) return false;
      out->items.push_back(std::get<T>(*c));
      if (!NewId(out->items.back().id, pointer)) return false;
      out->reasons.push_back(reason);
      out->ids.push_back(out->items.back().id);
      if (after && !after(i, pointer)) return false;
    }
    assert(out->items.size() == list.size());
    return true;
  }

  // Entities whose parent is in the same list come after that parent.
  template <typename GetParents>
  bool Ordered(size_t count, const std::vector<std::string>& ids, GetParents parents_of,
               const std::string& list, const std::string& field, std::vector<size_t>* order) {
    std::unordered_map<std::string, size_t> at;
    for (size_t i = 0; i < count; ++i) at.emplace(ids[i], i);
    std::vector<int> state(count, 0);  // 0 new, 1 visiting, 2 done
    std::function<bool(size_t)> visit = [&](size_t i) {
      if (state[i] == 2) return true;
      if (state[i] == 1) {
        return FailAt("/" + list + "/" + std::to_string(i) + "/" + field,
                      "following " + field + " from " + ids[i] + " leads back to it");
      }
      state[i] = 1;
      for (const auto& p : parents_of(i)) {
        if (auto it = at.find(p); it != at.end() && !visit(it->second)) return false;
      }
      state[i] = 2;
      order->push_back(i);
      return true;
    };
    for (size_t i = 0; i < count; ++i) {
      if (!visit(i)) return false;
    }
    assert(order->size() == count);
    return true;
  }

  bool Units(const json& doc) {
    if (!doc.contains("units")) return true;
    ParsedList<CreateUnit> units;
    std::vector<size_t> order;
    if (!ParseList(doc, "units", api::WriteRoute::kCreateUnit, {}, &units) ||
        !Ordered(
            units.items.size(), units.ids,
            [&](size_t i) { return std::vector<std::string>{units.items[i].parent}; }, "units",
            "parent", &order)) {
      return false;
    }
    for (size_t i : order)
      Add(Part::kUnit, units.items[i], "/units/" + std::to_string(i), units.reasons[i]);
    return true;
  }

  bool Cycles(const json& doc, std::vector<size_t>* closes) {
    if (!doc.contains("cycles")) return true;
    const json& list = doc["cycles"];
    ParsedList<CreateCycle> cycles;
    std::vector<bool> closed;
    // "state" is the import's own key: open, or closed once all is written.
    auto read_state = [&](size_t i, const std::string& pointer) {
      bool is_closed = false;
      if (list[i].is_object() && list[i].contains("state")) {
        const json& state = list[i]["state"];
        if (state != "open" && state != "closed")
          return FailAt(pointer + "/state", "state must be open or closed");
        is_closed = state == "closed";
      }
      closed.push_back(is_closed);
      return true;
    };
    std::vector<size_t> order;
    if (!ParseList(doc, "cycles", api::WriteRoute::kCreateCycle, {"state"}, &cycles, read_state) ||
        !Ordered(
            cycles.items.size(), cycles.ids,
            [&](size_t i) { return std::vector<std::string>{cycles.items[i].parent}; }, "cycles",
            "parent", &order)) {
      return false;
    }
    for (size_t i : order) {
      size_t index =
          Add(Part::kCycle, cycles.items[i], "/cycles/" + std::to_string(i), cycles.reasons[i]);
      if (closed[i]) closes->push_back(index);
    }
    return true;
  }

  bool Objectives(const json& doc) {
    if (!doc.contains("objectives")) return true;
    const json& list = doc["objectives"];
    ParsedList<CreateObjective> objectives;
    auto key_results_listed = [&](size_t i, const std::string& pointer) {
      if (list[i].contains("key_results") && !list[i]["key_results"].is_array()) {
        return FailAt(pointer + "/key_results", "key_results must be a list");
      }
      return true;
    };
    std::vector<size_t> order;
    if (!ParseList(doc, "objectives", api::WriteRoute::kCreateObjective, {"key_results"},
                   &objectives, {}, key_results_listed) ||
        !Ordered(
            objectives.items.size(), objectives.ids,
            [&](size_t i) { return objectives.items[i].parents; }, "objectives", "parents",
            &order)) {
      return false;
    }
    // Key results come right after their objective, in file order, so the
    // objective lists them in that order.
    for (size_t i = 0; i < objectives.items.size(); ++i) {
      if (!KeyResults(list[i], objectives.items[i].id, "/objectives/" + std::to_string(i)))
        return false;
    }
    for (size_t i : order) {
      Add(Part::kObjective, objectives.items[i], "/objectives/" + std::to_string(i),
          objectives.reasons[i]);
      for (auto& c : pending_[i]) {
        plan_->commands.push_back(std::move(c));
        ++plan_->records;
      }
    }
    return true;
  }

  // The key results listed under objective `objective_id` (at `pointer`),
  // each followed by its check-ins, kept in pending_ until the objective
  // itself is added.
  bool KeyResults(const json& objective, const std::string& objective_id,
                  const std::string& pointer) {
    size_t index = pending_.size();
    pending_.emplace_back();
    if (!objective.contains("key_results")) return true;
    const json& list = objective["key_results"];
    for (size_t k = 0; k < list.size(); ++k) {
      std::string kp = pointer + "/key_results/" + std::to_string(k), reason;
      json body = list[k];
      if (body.is_object()) {
        if (body.contains("objective") && body["objective"] != objective_id) {
          return FailAt(kp + "/objective", "a key result listed under objective " + objective_id +
                                               " names another objective");
        }
        body["objective"] = objective_id;
        if (body.contains("check_ins") && !body["check_ins"].is_array()) {
          return FailAt(kp + "/check_ins", "check_ins must be a list");
        }
      }
      auto c = Parse(api::WriteRoute::kCreateKeyResult, "", body, kp, &reason, {"check_ins"});
      if (!c) return false;
      const std::string kr_id = std::get<CreateKeyResult>(*c).id;
      if (!NewId(kr_id, kp)) return false;
      pending_[index].push_back({Part::kKeyResult, std::move(*c), 0, kp, reason, std::nullopt});
      if (body.contains("check_ins") &&
          !NestedCheckIns(body["check_ins"], kr_id, kp, &pending_[index])) {
        return false;
      }
    }
    return true;
  }

  bool NestedCheckIns(const json& check_ins, const std::string& kr_id, const std::string& kp,
                      std::vector<PlannedCommand>* out) {
    assert(check_ins.is_array());
    for (size_t n = 0; n < check_ins.size(); ++n) {
      std::string cp = kp + "/check_ins/" + std::to_string(n), reason;
      auto ci = Parse(api::WriteRoute::kCheckIn, kr_id, check_ins[n], cp, &reason);
      if (!ci) return false;
      if (!NewId(std::get<RecordCheckIn>(*ci).id, cp)) return false;
      out->push_back({Part::kCheckIn, std::move(*ci), 0, cp, reason, std::nullopt});
    }
    return true;
  }

  bool TopLevelCheckIns(const json& doc) {
    if (!doc.contains("check_ins")) return true;
    const json& list = doc["check_ins"];
    for (size_t i = 0; i < list.size(); ++i) {
      std::string pointer = "/check_ins/" + std::to_string(i), reason;
      json body = list[i];
      if (!body.is_object() || !body.contains("key_result") || !body["key_result"].is_string()) {
        return FailAt(body.is_object() ? pointer + "/key_result" : pointer,
                      "a check-in here names its key_result");
      }
      std::string kr = body["key_result"].get<std::string>();
      auto c = Parse(api::WriteRoute::kCheckIn, kr, body, pointer, &reason, {"key_result"});
      if (!c) return false;
      if (!NewId(std::get<RecordCheckIn>(*c).id, pointer)) return false;
      Add(Part::kCheckIn, std::move(*c), pointer, reason);
    }
    return true;
  }

  ImportPlan* plan_;
  ImportError* error_;
  const std::string& text_;
  std::unordered_map<std::string, std::string> ids_;  // id → where first defined
  std::vector<std::vector<PlannedCommand>>
      pending_;  // per objective: its key results and check-ins
};

}  // namespace

bool PlanJson(const std::string& text, ImportPlan* plan, ImportError* error) {
  assert(plan->commands.empty() && plan->records == 0);
  JsonPlanner planner(plan, error, text);
  return planner.Plan();
}

SourceLocation LocateJsonPointer(std::string_view text, const std::string& pointer) {
  JsonLocator locator(text);
  SourceLocation at = LineColumn(text, locator.Find(PointerTokens(pointer)));
  at.field = pointer;
  return at;
}

}  // namespace okr::ctl::import_internal
