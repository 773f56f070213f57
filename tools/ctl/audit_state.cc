#include "tools/ctl/audit_state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "eventstore/event_codec.h"
#include "eventstore/event_json.h"

namespace okr::ctl {

namespace {

using nlohmann::json;

constexpr int kStateVersion = 1;

std::string B64(const format::Hash& h) {
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
}

// A base64 hash field; false when it is not 32 bytes of base64.
bool HashFromBase64(const json& v, format::Hash* out) {
  if (!v.is_string()) return false;
  auto bytes = Base64Decode(v.get<std::string>());
  if (!bytes || bytes->size() != out->size()) return false;
  std::memcpy(out->data(), bytes->data(), out->size());
  return true;
}

Status Bad(const std::string& field) {
  return Status::Invalid("not an okrctl audit state: field " + field + " is missing or malformed");
}

Status SyncDirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Status::IOError("open " + dir + ": " + std::strerror(errno));
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok ? Status::Ok() : Status::IOError("fsync " + dir + ": " + std::strerror(errno));
}

}  // namespace

json AuditStateJson(const AuditState& s) {
  assert(s.root != format::Hash{} && "a trusted tree is never empty");
  json peaks = json::array();
  for (const auto& p : s.peaks) peaks.push_back(B64(p));
  return {
      {"okrctl_audit_state", kStateVersion},
      {"origin", s.origin},
      {"vkey", s.vkey},
      {"size", s.size},
      {"root", B64(s.root)},
      {"note", s.note},
      {"peaks", peaks},
      {"last_event",
       {{"seq", s.size}, {"hash", ToHex(s.last_hash)}, {"recorded_at_us", s.last_recorded_at_us}}}};
}

Result<AuditState> AuditStateFromJson(const json& j) {
  if (!j.is_object() || j.value("okrctl_audit_state", 0) != kStateVersion) {
    return Bad("okrctl_audit_state");
  }
  AuditState s;
  if (!j.contains("origin") || !j["origin"].is_string()) return Bad("origin");
  s.origin = j["origin"].get<std::string>();
  if (!j.contains("vkey") || !j["vkey"].is_string()) return Bad("vkey");
  s.vkey = j["vkey"].get<std::string>();
  if (!j.contains("size") || !j["size"].is_number_unsigned()) return Bad("size");
  s.size = j["size"].get<uint64_t>();
  if (!j.contains("root") || !HashFromBase64(j["root"], &s.root)) return Bad("root");
  if (!j.contains("note") || !j["note"].is_string()) return Bad("note");
  s.note = j["note"].get<std::string>();
  if (!j.contains("peaks") || !j["peaks"].is_array()) return Bad("peaks");
  for (const auto& p : j["peaks"]) {
    if (!HashFromBase64(p, &s.peaks.emplace_back())) return Bad("peaks");
  }
  const json last = j.value("last_event", json());
  if (!last.is_object() || last.value("seq", uint64_t{0}) != s.size) return Bad("last_event.seq");
  if (!last.contains("hash") || !last["hash"].is_string() ||
      !FromHex(last["hash"].get<std::string>(), &s.last_hash)) {
    return Bad("last_event.hash");
  }
  if (!last.contains("recorded_at_us") || !last["recorded_at_us"].is_number_integer()) {
    return Bad("last_event.recorded_at_us");
  }
  s.last_recorded_at_us = last["recorded_at_us"].get<int64_t>();
  return s;
}

Result<std::optional<AuditState>> LoadAuditState(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) && !ec) return std::optional<AuditState>();
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot read " + path + ": " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, false);
  if (j.is_discarded()) return Status::Invalid(path + " is not JSON");
  auto state = AuditStateFromJson(j);
  if (!state.ok()) return Status::Invalid(path + ": " + state.status().message());
  return std::optional<AuditState>(std::move(state.value()));
}

Status WriteFileAtomically(const std::string& path, const std::string& text,
                           const struct stat* like) {
  const std::string temp = path + ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError("cannot create " + temp + ": " + std::strerror(errno));
  // Owner first: a change of owner may clear bits the mode sets. The mode
  // always: a temporary file left by an earlier crash keeps its own.
  bool ok = like == nullptr || ((like->st_uid == ::geteuid() && like->st_gid == ::getegid()) ||
                                ::fchown(fd, like->st_uid, like->st_gid) == 0);
  ok = ok && ::fchmod(fd, like != nullptr ? like->st_mode & 07777 : 0600) == 0;
  ok = ok && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(temp.c_str(), path.c_str()) != 0) {
    Status failed = Status::IOError("cannot write " + path + ": " + std::strerror(errno));
    ::unlink(temp.c_str());
    return failed;
  }
  return SyncDirectoryOf(path);
}

std::string ForkEvidencePath(const std::string& state_path) {
  return state_path + ".fork-evidence";
}

Status KeepForkEvidence(const std::string& state_path, const ForkEvidence& e,
                        std::string* written) {
  assert(e.trusted_note != e.served_note);
  const json j = {{"fork", "two signed checkpoints for one tree size with different roots"},
                  {"server", e.server},
                  {"size", e.size},
                  {"trusted_note", e.trusted_note},
                  {"served_note", e.served_note}};
  std::string path = ForkEvidencePath(state_path);
  for (int n = 2; std::filesystem::exists(path); ++n) {
    path = ForkEvidencePath(state_path) + "." + std::to_string(n);
  }
  *written = path;
  return WriteFileAtomically(path, j.dump(2) + "\n");
}

}  // namespace okr::ctl
