// The key that signs the log's checkpoints, tied to the log by its
// log.signing_key event (SPEC §7; docs/OPERATIONS.md "The signing key").
// okrd start-up uses these once, before it serves; not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "eventstore/base/status.h"
#include "eventstore/checkpoint.h"
#include "eventstore/event_store.h"

namespace okr::api {

// The key file a data directory gets without --signing-key: the sibling
// path "<data dir>.signing.key" (the path without trailing '/'), outside
// the directory and so outside its backups.
std::string DefaultSigningKeyPath(std::string data_dir);

// A new log's origin without --origin: "okrd/" and 16 lower-case hex
// digits from OpenSSL's RAND_bytes.
std::string NewOrigin();

// Whether `origin` may name a log: 1 to kMaxOriginBytes printable ASCII
// characters, none a space or '+' (a C2SP signed-note key name, which the
// origin is).
inline constexpr size_t kMaxOriginBytes = 128;
bool ValidOrigin(const std::string& origin);

// The key file read before the store opens: null when the file does not
// exist (yet); kInvalid or kIOError when it exists but cannot be used.
Result<std::shared_ptr<const SigningKey>> LoadSigningKey(const std::string& path);

// The log's log.signing_key event: where it is and what it records.
struct RecordedKey {
  uint64_t seq = 0;
  NoteVerifier verifier;  // named by the log's origin
};
// nullopt when the log has no such event (a new log, or an older one);
// kCorruption when the okrd:log stream holds something else.
Result<std::optional<RecordedKey>> FindRecordedKey(const EventStore& store);

// The key and origin a log's checkpoints are signed with.
struct LogKey {
  std::shared_ptr<const SigningKey> key;
  std::string origin;
  uint64_t recorded_seq = 0;  // the log.signing_key event
  bool recorded_now = false;  // this start appended it
};

// Ties the key file at `path` (`key`: its content, null when missing) to
// the log. With a recorded key: kInvalid, naming the recorded vkey and its
// seq, when the file is missing or holds another key, or when `origin` is
// given (not empty) and differs. Without one: creates the key file when
// missing, and appends the log.signing_key event (actor system:okrd,
// entity okrd:log, which must not exist yet) with `origin`, or a new one
// (NewOrigin) when it is empty.
Result<LogKey> BindSigningKey(EventStore* store, std::shared_ptr<const SigningKey> key,
                              const std::string& path, const std::string& origin);

}  // namespace okr::api
