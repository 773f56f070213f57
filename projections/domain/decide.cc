// Decide's entry point and what every family of commands shares: the
// field rules (text, numbers, ids) and the building of a Decision. The
// commands themselves are decided in decide_units.cc,
// decide_objectives.cc and decide_key_results.cc.
#include <algorithm>
#include <cassert>
#include <cmath>

#include "projections/domain/commands.h"
#include "projections/domain/decider.h"

namespace okr {

bool ValidId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdChars) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

namespace decide {

namespace {

// Code points in valid UTF-8, or -1 when `s` is not valid UTF-8.
long Utf8Length(std::string_view s) {
  long n = 0;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xe  ? 3
                 : (c >> 3) == 0x1e ? 4
                                    : 0;
    if (len == 0 || i + len > s.size()) return -1;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return -1;
    }
    // RFC 3629: no overlong forms, no UTF-16 surrogates, nothing past
    // U+10FFFF (a JSON encoder refuses to write any of them).
    const unsigned char c1 = len > 1 ? static_cast<unsigned char>(s[i + 1]) : 0;
    if (len == 2 && c < 0xc2) return -1;                                // overlong
    if (len == 3 && c == 0xe0 && c1 < 0xa0) return -1;                  // overlong
    if (len == 3 && c == 0xed && c1 > 0x9f) return -1;                  // surrogate
    if (len == 4 && c == 0xf0 && c1 < 0x90) return -1;                  // overlong
    if (len == 4 && (c > 0xf4 || (c == 0xf4 && c1 > 0x8f))) return -1;  // past U+10FFFF
    i += len;
    ++n;
  }
  return n;
}

// A control character at s[i] that `multiline` text may not hold.
bool IsControlAt(std::string_view s, size_t i, bool multiline) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  bool allowed_space = multiline && (c == '\n' || c == '\r' || c == '\t');
  // C1 controls U+0080–U+009F are 0xC2 0x80–0x9F (the UTF-8 is valid here).
  bool c1 = c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xa0;
  return (c < 0x20 && !allowed_space) || c == 0x7f || c1;
}

}  // namespace

Status CheckString(std::string_view s, const char* field, size_t max_chars, bool multiline,
                   bool required) {
  long n = Utf8Length(s);
  if (n < 0) return Status::Invalid(std::string(field) + " is not valid UTF-8", field);
  assert(static_cast<size_t>(n) <= s.size());  // a code point takes at least a byte
  if (required && s.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return Status::Invalid(std::string(field) + " must not be empty", field);
  }
  if (static_cast<size_t>(n) > max_chars) {
    return Status::Invalid(
        std::string(field) + " is longer than " + std::to_string(max_chars) + " characters", field);
  }
  for (size_t i = 0; i < s.size(); ++i) {
    if (IsControlAt(s, i, multiline)) {
      return Status::Invalid(std::string(field) + " contains a control character", field);
    }
  }
  return Status::Ok();
}

Status CheckTitle(std::string_view s, const char* field) {
  return CheckString(s, field, kMaxTitleChars, false, true);
}
Status CheckText(std::string_view s, const char* field) {
  return CheckString(s, field, kMaxTextChars, true, false);
}

Status CheckBounded(double v, const char* field) {
  if (!std::isfinite(v))
    return Status::Invalid(std::string(field) + " must be a finite number", field);
  if (std::fabs(v) > kMaxAbsValue) {
    return Status::Invalid(std::string(field) + " must lie between -1e15 and 1e15", field);
  }
  return Status::Ok();
}

Status CheckConfidence(double v, const char* field) {
  if (!std::isfinite(v) || v < 0 || v > 1) {
    return Status::Invalid(std::string(field) + " must be between 0 and 1", field);
  }
  return Status::Ok();
}

Status CheckNewId(const Projection& state, const std::string& id, const char* field) {
  if (!ValidId(id)) {
    return Status::Invalid(std::string(field) + " must be " + kIdRule, field);
  }
  if (state.KindOf(id)) return Status::AlreadyExists("id " + id + " is already taken", field);
  return Status::Ok();
}

bool IsOneOf(const std::string& v, std::initializer_list<const char*> options) {
  return std::any_of(options.begin(), options.end(), [&](const char* o) { return v == o; });
}

void SetTexts(capnp::List<capnp::Text>::Builder list, const std::vector<std::string>& v) {
  assert(list.size() == v.size());
  for (size_t i = 0; i < v.size(); ++i) list.set(static_cast<unsigned>(i), v[i]);
}

Status RefuseIf(bool in_state, const char* noun, const std::string& id, const char* state,
                const char* field) {
  if (!in_state) return Status::Ok();
  return Status::Conflict(std::string(noun) + " " + id + " " + state, field);
}

void Decider::Begin(const std::string& entity) {
  assert(decision_.entity.empty() || decision_.entity == entity);  // one subject per command
  decision_.entity = entity;
  Expect(entity);
}

void Decider::BeginAppend(const std::string& entity) {
  assert(decision_.events.empty());
  decision_.entity = entity;
}

void Decider::Expect(const std::string& id) {
  for (const auto& e : decision_.expected) {
    if (e.entity == id) return;
  }
  decision_.expected.push_back({id, s_.Version(id)});
}

Decision Decider::Done() {
  // Every event is about the subject: the answer names it.
  assert(!decision_.entity.empty());
  return std::move(decision_);
}

}  // namespace decide

Status CheckReason(std::string_view reason) { return decide::CheckText(reason, "reason"); }

Result<Decision> Decide(const Projection& state, const Command& command,
                        const CommandContext& context) {
  OKR_RETURN_IF_ERROR(CheckReason(context.reason));
  decide::Decider decider(state, context);
  return std::visit(decider, command);
}

std::vector<std::string> OwningUnits(const Projection& state, const Command& command,
                                     std::vector<std::string>* read) {
  auto note = [&](const std::string& id) {
    if (read != nullptr) read->push_back(id);
  };
  auto objective_owner = [&](const std::string& id) -> std::vector<std::string> {
    const Objective* o = state.objective(id);
    if (!o) return {};
    note(id);
    return {o->current().owner};
  };
  auto kr_owners = [&](const std::string& id) -> std::vector<std::string> {
    const KeyResult* kr = state.key_result(id);
    if (!kr) return {};
    note(id);
    if (!kr->current().owner.empty()) return {kr->current().owner};
    return objective_owner(kr->current().objective);
  };
  // A key result's owner after an update: cleared, it falls back to its
  // objective's, which must be in scope too.
  auto kr_owner_after = [&](const UpdateKeyResult& c) -> std::vector<std::string> {
    if (!c.owner) return {};
    if (!c.owner->empty()) return {*c.owner};
    const KeyResult* kr = state.key_result(c.id);
    return kr ? objective_owner(kr->current().objective) : std::vector<std::string>{};
  };
  auto join = [](std::vector<std::string> a, std::vector<std::string> b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  return std::visit(
      [&](const auto& c) -> std::vector<std::string> {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, CreateObjective>) {
          return {c.owner};
        } else if constexpr (std::is_same_v<T, UpdateObjective>) {
          // An objective always has an owner: an empty one is refused by
          // Decide, and is named here so it cannot pass as "no change".
          auto out = objective_owner(c.id);
          if (c.owner) out.push_back(*c.owner);
          return out;
        } else if constexpr (std::is_same_v<T, ArchiveObjective>) {
          return objective_owner(c.id);
        } else if constexpr (std::is_same_v<T, ReviewObjective>) {
          return objective_owner(c.objective);
        } else if constexpr (std::is_same_v<T, CreateKeyResult>) {
          auto out = objective_owner(c.objective);
          if (!c.owner.empty()) out.push_back(c.owner);
          return out;
        } else if constexpr (std::is_same_v<T, UpdateKeyResult>) {
          return join(kr_owners(c.id), kr_owner_after(c));
        } else if constexpr (std::is_same_v<T, RemoveKeyResult>) {
          return kr_owners(c.id);
        } else if constexpr (std::is_same_v<T, RecordCheckIn> ||
                             std::is_same_v<T, CorrectCheckIn>) {
          return kr_owners(c.key_result);
        } else if constexpr (std::is_same_v<T, AddComment>) {
          return state.objective(c.target) ? objective_owner(c.target) : kr_owners(c.target);
        } else {
          return {};
        }
      },
      command);
}

}  // namespace okr
