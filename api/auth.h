// Bearer tokens and roles.
//
// The tokens file is a JSON list of {actor, role, units, token_sha256,
// subject}: only the SHA-256 of each token is stored, and a presented token
// is compared against every entry in constant time. Tokens never appear in
// logs or error messages.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "eventstore/base/status.h"
#include "projections/domain/projection.h"

namespace okr::api {

// kReplica: a read replica's token, for what replication reads (the raw
// log, its stream, the log's key, checkpoints and proofs) and nothing else.
enum class Role { kViewer, kEditor, kAuditor, kAdmin, kReplica };

struct Principal {
  std::string actor;
  Role role = Role::kViewer;
  std::vector<std::string> units;  // editor scope: these units and everything under them
  std::string subject;             // the person unit this principal is (SPEC §10); empty when none
};

// The group that may read a tokens file of mode 0640 (SPEC §4).
inline constexpr char kTokensGroup[] = "okrd";
// The most a tokens file's mode may allow: owner read/write, group read
// (only when the group is kTokensGroup), nothing for others.
inline constexpr unsigned kTokensMaxMode = 0640;

class TokenTable {
 public:
  // Loads a tokens file. The file is opened once, without following a
  // symlink, and judged by fstat on that open file before it is read from
  // the same descriptor (nothing can swap it in between). Refuses (kInvalid,
  // naming the path and the fix) a symlink, anything but a regular file, an
  // owner other than root or okrd's own user, a mode beyond 0640, group
  // read unless the group is kTokensGroup; then every refusal of FromJson.
  static Result<TokenTable> Load(const std::string& path);
  // Parses the list. Refuses an unknown role, a malformed hash, an actor
  // twice, one token_sha256 twice (two principals behind one token) and a
  // subject that is not a valid id.
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

// The whole of a file of credentials (`what` names it in errors: "tokens
// file"), opened without following a symlink and judged by `check` on the
// open file before anything is read, so the file checked is the file read.
// kInvalid for a symlink or what `check` refuses; at most 16 MiB.
Result<std::string> ReadCredentialsFile(const std::string& path, const std::string& what,
                                        const std::function<Status(const struct stat&)>& check);

// The text of the tokens file `path`, read as Load reads it (every check
// of the file before its first byte); *judged (optional) gets the stat of
// the open file the checks judged. kNotFound when there is no such file.
Result<std::string> ReadTokensFile(const std::string& path, struct stat* judged = nullptr);

// True when `unit` is one of `scope` or below one of them, as of now.
// `read` (optional) gets the units walked, whose moves could change the
// answer.
bool InScope(const Projection& projection, const std::vector<std::string>& scope,
             const std::string& unit, std::vector<std::string>* read = nullptr);

}  // namespace okr::api
