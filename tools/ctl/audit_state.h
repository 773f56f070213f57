// What `okrctl audit` trusts between runs (docs/OPERATIONS.md, "Auditing
// the log"): the last signed checkpoint it verified, the right edge of
// that tree, and the last event of it, so the next run checks only what
// was appended since. Kept in one JSON file the auditor owns.
#pragma once

#include <sys/stat.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "eventstore/base/status.h"
#include "eventstore/format.h"

namespace okr::ctl {

// The trusted state. Tree hashes are base64 as in checkpoints and proofs;
// the event hash is hex as in /v1/events and `okrctl verify`.
struct AuditState {
  std::string origin;               // the log's origin, the key's name
  std::string vkey;                 // the verifier key the notes were checked with
  uint64_t size = 0;                // the trusted tree size (events 1..size)
  format::Hash root{};              // its root, as signed in `note`
  std::string note;                 // the signed checkpoint, verbatim
  std::vector<format::Hash> peaks;  // merkle::Frontier::peaks() of that tree
  format::Hash last_hash{};         // SHA-256 of event `size`'s stored bytes
  int64_t last_recorded_at_us = 0;  // its recordedAt
};

nlohmann::json AuditStateJson(const AuditState& state);
// kInvalid naming the field when `j` is not a state AuditStateJson wrote.
Result<AuditState> AuditStateFromJson(const nlohmann::json& j);

// The state in `path`; nullopt when there is no such file (a first run).
// kInvalid when the file is not a state file; kIOError when unreadable.
Result<std::optional<AuditState>> LoadAuditState(const std::string& path);

// Writes `text` to `path` so that a crash leaves the old file or the new
// one, never a mix: a temporary file beside it, fsync, rename, fsync of
// the directory. Mode 0600, or the owner, group and mode of `like` (the
// file it replaces) when given.
Status WriteFileAtomically(const std::string& path, const std::string& text,
                           const struct stat* like = nullptr);

// Two signed checkpoints for one tree size with different roots: the
// proof that the log forked, kept for whoever the auditor reports to.
struct ForkEvidence {
  std::string server;
  uint64_t size = 0;
  std::string trusted_note;  // the note the auditor verified earlier
  std::string served_note;   // the note the server signs for the same size now
};
// The path the evidence of a fork is kept at: `state_path` + ".fork-evidence".
std::string ForkEvidencePath(const std::string& state_path);
// Writes `evidence` as JSON to ForkEvidencePath(state_path), never over an
// earlier file (a second fork goes to ".fork-evidence.2" and so on); the
// path written goes to `*written`.
Status KeepForkEvidence(const std::string& state_path, const ForkEvidence& evidence,
                        std::string* written);

}  // namespace okr::ctl
