#include "api/auth.h"

#include <openssl/crypto.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace okr::api {

std::optional<Role> ParseRole(std::string_view role) {
  if (role == "viewer") return Role::kViewer;
  if (role == "editor") return Role::kEditor;
  if (role == "auditor") return Role::kAuditor;
  if (role == "admin") return Role::kAdmin;
  return std::nullopt;
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kViewer: return "viewer";
    case Role::kEditor: return "editor";
    case Role::kAuditor: return "auditor";
    case Role::kAdmin: return "admin";
  }
  return "viewer";
}

Result<TokenTable> TokenTable::Load(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return Status::NotFound("tokens file " + path + " not found");
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return Status::Invalid("tokens file " + path +
                           " may be read by group or others; chmod 600 it");
  }
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (!in) return Status::IOError("cannot read tokens file " + path);
  return FromJson(buffer.str());
}

Result<TokenTable> TokenTable::FromJson(const std::string& text) {
  nlohmann::json list = nlohmann::json::parse(text, nullptr, false);
  if (list.is_discarded() || !list.is_array()) {
    return Status::Invalid("tokens file must be a JSON list of {actor, role, units, token_sha256}");
  }
  TokenTable table;
  std::set<std::string> actors;
  for (const auto& item : list) {
    if (!item.is_object() || !item.contains("actor") || !item["actor"].is_string() ||
        !item.contains("role") || !item["role"].is_string() || !item.contains("token_sha256") ||
        !item["token_sha256"].is_string()) {
      return Status::Invalid("each token needs string actor, role and token_sha256");
    }
    Entry e;
    e.principal.actor = item["actor"].get<std::string>();
    if (e.principal.actor.empty() || !actors.insert(e.principal.actor).second) {
      return Status::Invalid("token actor empty or listed twice: " + e.principal.actor);
    }
    auto role = ParseRole(item["role"].get<std::string>());
    if (!role) return Status::Invalid("unknown role for " + e.principal.actor);
    e.principal.role = *role;
    if (item.contains("units")) {
      if (!item["units"].is_array()) return Status::Invalid("units of " + e.principal.actor + " must be a list");
      for (const auto& u : item["units"]) {
        if (!u.is_string()) return Status::Invalid("units of " + e.principal.actor + " must be strings");
        e.principal.units.push_back(u.get<std::string>());
      }
    }
    if (!FromHex(item["token_sha256"].get<std::string>(), &e.token_sha256)) {
      return Status::Invalid("token_sha256 of " + e.principal.actor + " is not 64 hex digits");
    }
    table.entries_.push_back(std::move(e));
  }
  return table;
}

std::optional<Principal> TokenTable::Authenticate(std::string_view token) const {
  Hash presented = Sha256(token);
  std::optional<Principal> found;
  // Compare with every entry, in constant time each, so neither timing nor
  // position reveals which (if any) matched.
  for (const Entry& e : entries_) {
    if (CRYPTO_memcmp(presented.data(), e.token_sha256.data(), presented.size()) == 0) {
      found = e.principal;
    }
  }
  return found;
}

bool InScope(const Projection& projection, const std::vector<std::string>& scope,
             const std::string& unit, std::vector<std::string>* read) {
  std::string at = unit;
  for (size_t depth = 0; !at.empty() && depth <= projection.units().size(); ++depth) {
    for (const auto& s : scope) {
      if (s == at) return true;
    }
    const Unit* u = projection.unit(at);
    if (u == nullptr) return false;
    if (read != nullptr) read->push_back(at);
    at = u->current().parent;
  }
  return false;
}

}  // namespace okr::api
