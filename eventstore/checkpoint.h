// Signed checkpoints of the log (SPEC §7): C2SP tlog-checkpoint bodies in
// C2SP signed notes, signed with Ed25519 through OpenSSL.
//
//   body      := <origin> "\n" <tree size, decimal> "\n" <base64 root> "\n"
//   note      := body "\n" "— " <key name> " " base64(key id (4) | signature (64)) "\n"
//   key id    := SHA-256(key name | 0x0A | 0x01 | public key)[0:4]
//   vkey      := <key name> "+" <key id, 8 lower-case hex> "+" base64(0x01 | public key)
//
// The key name is the log's origin. okrd signs; okrctl audit and the tests
// verify with only a vkey, as any C2SP verifier would.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "eventstore/base/status.h"
#include "eventstore/format.h"

namespace okr {

using Ed25519PublicKey = std::array<uint8_t, 32>;

// A checkpoint's body (C2SP tlog-checkpoint, no extension lines).
struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  format::Hash root{};
  bool operator==(const Checkpoint&) const = default;
};
std::string CheckpointBody(const Checkpoint& checkpoint);

// A note verifier: the key name and public key of a vkey.
struct NoteVerifier {
  std::string name;
  Ed25519PublicKey public_key{};
  uint32_t key_id() const;  // big-endian first 4 bytes of the SHA-256 above
  std::string vkey() const;
};
// kInvalid naming what is wrong when `vkey` is not a well-formed Ed25519
// vkey whose key id matches its name and key.
Result<NoteVerifier> ParseVkey(std::string_view vkey);
// A vkey as a command line gives it: `arg` itself, or, when it starts with
// '@', the first line of the file it names (trailing CR and spaces
// dropped); kInvalid when that file cannot be read. Then ParseVkey.
Result<std::string> VkeyArgument(const std::string& arg);

// Verifies `note` against `verifier`: a signature line by its name and key
// id whose Ed25519 signature over the body verifies; lines by other keys
// are ignored. Then parses the body as a checkpoint whose origin is the
// verifier's name. kInvalid naming the problem (malformed note, no
// signature by this key, bad signature, malformed body, another origin);
// the text is an auditor's evidence, so it says which.
Result<Checkpoint> VerifyCheckpoint(std::string_view note, const NoteVerifier& verifier);

// The Ed25519 private key that signs a log's checkpoints, kept in a PKCS#8
// PEM file (what `openssl genpkey -algorithm ed25519` writes) outside the
// data directory. Thread-safe after construction.
class SigningKey {
 public:
  ~SigningKey();
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;

  // Reads the key in `path`. kNotFound when the file is missing; kInvalid
  // when it is not an Ed25519 PKCS#8 PEM private key, or when its mode
  // lets anyone but its owner and group read it (more than 0640).
  static Result<std::unique_ptr<SigningKey>> Load(const std::string& path);
  // Makes a new key and writes it to `path` with mode 0600, never
  // replacing a file (kAlreadyExists), synced with its directory.
  static Result<std::unique_ptr<SigningKey>> Create(const std::string& path);

  Ed25519PublicKey public_key() const;
  // This key as a verifier named `name` (the log's origin).
  NoteVerifier Verifier(std::string name) const;
  // The signed note of `checkpoint`, named checkpoint.origin. Ed25519 is
  // deterministic, so one checkpoint always gets the same note.
  std::string Sign(const Checkpoint& checkpoint) const;

 private:
  struct Impl;
  explicit SigningKey(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace okr
