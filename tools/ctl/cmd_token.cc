// okrctl token new, list and revoke: the tokens file (SPEC §4) edited as
// okrd reads it. The file is read with okrd's own checks (api/auth.h),
// the new list must pass okrd's parser before it is written, and it is
// written atomically with the owner, group and mode it had, so a running
// okrd's SIGHUP sees the old file or the new one and accepts either; two
// okrctl changing it at once take turns (DirectoryLock).
#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "api/auth.h"
#include "eventstore/event_codec.h"
#include "tools/ctl/audit_state.h"
#include "tools/ctl/cmd_common.h"

namespace okr::ctl::cmd {
namespace {

using nlohmann::json;

constexpr size_t kTokenBytes = 32;  // 256 random bits
constexpr char kTokenPrefix[] = "okr_";
constexpr size_t kShownHashDigits = 12;  // of token_sha256, in a listing

// The file's entries and how it stands on disk; an absent file is an
// empty list (only `new` may create it).
struct TokensFile {
  json entries = json::array();
  std::optional<struct stat> judged;  // none: the file does not exist yet
};

Result<TokensFile> ReadTokens(const std::string& path) {
  TokensFile file;
  struct stat st {};
  auto text = api::ReadTokensFile(path, &st);
  if (!text.ok()) {
    if (text.status().code() == Status::Code::kNotFound) return file;
    return text.status();
  }
  // The file okrd would refuse is refused here too, before any change.
  if (auto table = api::TokenTable::FromJson(*text); !table.ok()) {
    return Status::Invalid(path + ": " + table.status().message());
  }
  file.entries = json::parse(*text);
  file.judged = st;
  return file;
}

// An exclusive lock on the directory holding the tokens file, held from
// reading the file to renaming its replacement: two okrctl changing it at
// once would otherwise each write the list they read, and the later
// rename would drop the other's entry. (The file itself is replaced, so
// a lock on it would not outlive the rename.)
class DirectoryLock {
 public:
  static Result<DirectoryLock> Of(const std::string& path) {
    std::string dir = std::filesystem::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    DirectoryLock lock;
    lock.fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lock.fd_ < 0 || ::flock(lock.fd_, LOCK_EX) != 0) {
      return Status::IOError("cannot lock " + dir + ": " + std::strerror(errno));
    }
    return lock;
  }
  DirectoryLock(DirectoryLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DirectoryLock& operator=(DirectoryLock&&) = delete;
  ~DirectoryLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }

 private:
  DirectoryLock() = default;
  int fd_ = -1;
};

// Checks the new list as okrd will, then replaces the file.
Status WriteTokens(const std::string& path, const TokensFile& file) {
  std::string text = file.entries.dump(2) + "\n";
  if (auto table = api::TokenTable::FromJson(text); !table.ok()) return table.status();
  return WriteFileAtomically(path, text, file.judged ? &*file.judged : nullptr);
}

Result<std::string> NewToken() {
  unsigned char bytes[kTokenBytes];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return Status::IOError("no random bytes from OpenSSL");
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string token = kTokenPrefix;
  for (unsigned char b : bytes) {
    token.push_back(kDigits[b >> 4]);
    token.push_back(kDigits[b & 15]);
  }
  return token;
}

}  // namespace

int TokenNew(const TokenOptions& o) {
  if (!api::ParseRole(o.role)) {
    return Usage("--role is viewer, editor, auditor, admin or replica, not " + o.role);
  }
  auto lock = DirectoryLock::Of(o.file);
  if (!lock.ok()) return Fail(lock.status().message());
  auto file = ReadTokens(o.file);
  if (!file.ok()) return Fail(file.status().message());
  for (const json& entry : file->entries) {
    if (entry["actor"] == o.actor) {
      return Fail(o.file + " already has a token for " + o.actor +
                  "; revoke it first (okrctl token revoke)");
    }
  }
  auto token = NewToken();
  if (!token.ok()) return Fail(token.status().message());
  json entry = {{"actor", o.actor},
                {"role", o.role},
                {"units", o.units},
                {"token_sha256", ToHex(Sha256(*token))}};
  if (!o.subject.empty()) entry["subject"] = o.subject;
  file->entries.push_back(entry);
  if (Status written = WriteTokens(o.file, *file); !written.ok()) {
    return Fail("nothing written to " + o.file + ": " + written.message());
  }
  if (o.json) {
    std::cout << json{{"actor", o.actor}, {"file", o.file}, {"role", o.role}, {"token", *token}}
              << "\n";
  } else {
    std::cout << *token << "\n";
    std::cerr << "okrctl: the token of " << o.actor << " (" << o.role << ") is shown this once; "
              << o.file << " keeps only its hash. okrd reads it on SIGHUP.\n";
  }
  return kExitOk;
}

int TokenList(const std::string& path, bool json_out) {
  auto file = ReadTokens(path);
  if (!file.ok()) return Fail(file.status().message());
  if (!file->judged) return Fail("tokens file " + path + " not found");
  json items = json::array();
  for (const json& entry : file->entries) {
    json item = {{"actor", entry["actor"]},
                 {"role", entry["role"]},
                 {"units", entry.value("units", json::array())},
                 {"subject", entry.value("subject", json(nullptr))},
                 {"token_sha256_prefix",
                  entry["token_sha256"].get<std::string>().substr(0, kShownHashDigits)}};
    items.push_back(std::move(item));
  }
  if (json_out) {
    std::cout << json{{"items", items}} << "\n";
    return kExitOk;
  }
  for (const json& item : items) {
    std::string units;
    for (const json& u : item["units"]) units += (units.empty() ? "" : ",") + u.get<std::string>();
    std::cout << item["actor"].get<std::string>() << "\t" << item["role"].get<std::string>() << "\t"
              << (units.empty() ? "-" : units) << "\t"
              << (item["subject"].is_string() ? item["subject"].get<std::string>() : "-") << "\t"
              << item["token_sha256_prefix"].get<std::string>() << "…\n";
  }
  return kExitOk;
}

int TokenRevoke(const std::string& path, const std::string& actor) {
  auto lock = DirectoryLock::Of(path);
  if (!lock.ok()) return Fail(lock.status().message());
  auto file = ReadTokens(path);
  if (!file.ok()) return Fail(file.status().message());
  json kept = json::array();
  for (const json& entry : file->entries) {
    if (entry["actor"] != actor) kept.push_back(entry);
  }
  if (kept.size() == file->entries.size()) return Fail(path + " has no token for " + actor);
  file->entries = std::move(kept);
  if (Status written = WriteTokens(path, *file); !written.ok()) {
    return Fail("nothing written to " + path + ": " + written.message());
  }
  std::cerr << "okrctl: the token of " << actor << " is gone from " << path
            << "; okrd stops accepting it on SIGHUP.\n";
  return kExitOk;
}

}  // namespace okr::ctl::cmd
