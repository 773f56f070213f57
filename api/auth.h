// Bearer tokens and roles.
//
// The tokens file is a JSON list of {actor, role, units, token_sha256}: only
// the SHA-256 of each token is stored, and a presented token is compared
// against every entry in constant time. Tokens never appear in logs or
// error messages.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "eventstore/status.h"
#include "projections/projection.h"

namespace okr::api {

enum class Role { kViewer, kEditor, kAuditor, kAdmin };

struct Principal {
  std::string actor;
  Role role = Role::kViewer;
  std::vector<std::string> units;  // editor scope: these units and everything under them
};

class TokenTable {
 public:
  // Loads a tokens file. Refuses a file that group or others may read
  // (tokens are credentials), an unknown role, a malformed hash, or an
  // actor twice.
  static Result<TokenTable> Load(const std::string& path);
  static Result<TokenTable> FromJson(const std::string& text);

  // The principal holding `token`, or nullopt. Constant time in the token.
  std::optional<Principal> Authenticate(std::string_view token) const;
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    Principal principal;
    Hash token_sha256;
  };
  std::vector<Entry> entries_;
};

std::optional<Role> ParseRole(std::string_view role);
const char* RoleName(Role role);

// True when `unit` is one of `scope` or below one of them, as of now.
// `read` (optional) gets the units walked, whose moves could change the
// answer.
bool InScope(const Projection& projection, const std::vector<std::string>& scope,
             const std::string& unit, std::vector<std::string>* read = nullptr);

}  // namespace okr::api
