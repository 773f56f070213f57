#include "api/auth.h"

#include <fcntl.h>
#include <grp.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "eventstore/base/named.h"
#include "projections/domain/commands.h"

namespace okr::api {

namespace {

// The roles as tokens files and answers spell them.
constexpr Named<Role> kRoleNames[] = {
    {Role::kViewer, "viewer"}, {Role::kEditor, "editor"},   {Role::kAuditor, "auditor"},
    {Role::kAdmin, "admin"},   {Role::kReplica, "replica"},
};

}  // namespace

std::optional<Role> ParseRole(std::string_view role) { return ValueNamed(kRoleNames, role); }

const char* RoleName(Role role) {
  // Every Role has a row; the fallback only guards a corrupted value.
  assert(NameIn(kRoleNames, role, nullptr) != nullptr);
  return NameIn(kRoleNames, role, "viewer");
}

namespace {

// Upper bound on a tokens file: far above any real organisation's list.
constexpr size_t kMaxTokensFileBytes = 16 * 1024 * 1024;

// True when group id `gid` is named kTokensGroup.
bool IsTokensGroup(gid_t gid) {
  std::vector<char> buf(16 * 1024);
  struct group grp {};
  struct group* found = nullptr;
  if (getgrgid_r(gid, &grp, buf.data(), buf.size(), &found) != 0 || found == nullptr) return false;
  return std::string_view(found->gr_name) == kTokensGroup;
}

// The checks SPEC §4 asks of the open tokens file.
Status CheckTokensFile(const std::string& path, const struct stat& st) {
  if (!S_ISREG(st.st_mode))
    return Status::Invalid("tokens file " + path + " is not a regular file");
  if (st.st_uid != 0 && st.st_uid != geteuid()) {
    return Status::Invalid("tokens file " + path +
                           " must be owned by root or by okrd's user (uid " +
                           std::to_string(geteuid()) + "), not uid " + std::to_string(st.st_uid));
  }
  const unsigned mode = st.st_mode & 07777;
  if ((mode & ~kTokensMaxMode) != 0) {
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", mode);
    return Status::Invalid("tokens file " + path + " has mode " + octal +
                           "; tokens are credentials: chmod 600 it (or 640 with group " +
                           kTokensGroup + ")");
  }
  if ((mode & S_IRGRP) != 0 && !IsTokensGroup(st.st_gid)) {
    return Status::Invalid("tokens file " + path + " is readable by its group, which is not " +
                           kTokensGroup + ": chmod 600 it, or chgrp " + kTokensGroup + " it");
  }
  return Status::Ok();
}

// Reads what is left of `fd`, at most kMaxTokensFileBytes.
Result<std::string> ReadAll(int fd, const std::string& what, const std::string& path) {
  std::string text;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return Status::IOError("cannot read " + what + " " + path + ": " + std::strerror(errno));
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxTokensFileBytes)
      return Status::Invalid(what + " " + path + " is too large");
  }
}

}  // namespace

Result<std::string> ReadCredentialsFile(const std::string& path, const std::string& what,
                                        const std::function<Status(const struct stat&)>& check) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ELOOP)
      return Status::Invalid(what + " " + path + " is a symlink; name the file itself");
    if (errno == ENOENT) return Status::NotFound(what + " " + path + " not found");
    return Status::IOError("cannot open " + what + " " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  Status checked =
      ::fstat(fd, &st) == 0 ? check(st) : Status::IOError("cannot stat " + what + " " + path);
  Result<std::string> text = checked.ok() ? ReadAll(fd, what, path) : Result<std::string>(checked);
  ::close(fd);
  return text;
}

Result<std::string> ReadTokensFile(const std::string& path, struct stat* judged) {
  return ReadCredentialsFile(path, "tokens file", [&](const struct stat& st) {
    if (judged != nullptr) *judged = st;
    return CheckTokensFile(path, st);
  });
}

Result<TokenTable> TokenTable::Load(const std::string& path) {
  OKR_ASSIGN_OR_RETURN(std::string text, ReadTokensFile(path));
  return FromJson(text);
}

namespace {

// The optional fields of one entry: units (editor scope) and subject.
Status ParseOptional(const nlohmann::json& item, Principal* p) {
  if (item.contains("units")) {
    if (!item["units"].is_array())
      return Status::Invalid("units of " + p->actor + " must be a list");
    for (const auto& u : item["units"]) {
      if (!u.is_string()) return Status::Invalid("units of " + p->actor + " must be strings");
      p->units.push_back(u.get<std::string>());
    }
  }
  if (item.contains("subject")) {
    const auto& subject = item["subject"];
    if (!subject.is_string() || !ValidId(subject.get<std::string>())) {
      return Status::Invalid("subject of " + p->actor + " must be a person unit id (" + kIdRule +
                             ")");
    }
    p->subject = subject.get<std::string>();
  }
  return Status::Ok();
}

}  // namespace

Result<TokenTable> TokenTable::FromJson(const std::string& text) {
  nlohmann::json list = nlohmann::json::parse(text, nullptr, false);
  if (list.is_discarded() || !list.is_array()) {
    return Status::Invalid(
        "tokens file must be a JSON list of {actor, role, units, token_sha256, subject}");
  }
  TokenTable table;
  std::set<std::string> actors;
  std::map<Hash, std::string> hashes;  // token_sha256 -> the actor holding it
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
    if (Status s = ParseOptional(item, &e.principal); !s.ok()) return s;
    if (!FromHex(item["token_sha256"].get<std::string>(), &e.token_sha256)) {
      return Status::Invalid("token_sha256 of " + e.principal.actor + " is not 64 hex digits");
    }
    // One token for two principals would make who acted depend on the
    // file's order: refuse it.
    auto [at, fresh] = hashes.emplace(e.token_sha256, e.principal.actor);
    if (!fresh) {
      return Status::Invalid("actors " + at->second + " and " + e.principal.actor +
                             " have the same token_sha256; give each its own token");
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
