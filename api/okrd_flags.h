// okrd's command line: every flag, its checks, and the exit codes okrd
// ends with. Part of the okrd program, not of the API library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "api/okrd_live.h"
#include "api/server.h"
#include "eventstore/checkpoint.h"

namespace okr::api {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// Every flag, as given (or defaulted), and the listen address split.
struct Flags {
  std::string data_dir = "data";
  std::string listen = "127.0.0.1:8080";
  std::string host;
  int port = -1;
  std::string tokens_path;
  std::string backup_root;
  std::string log_format = "text";
  std::string dashboard_dir;     // set by ParseFlags's default
  std::string signing_key_path;  // empty: DefaultSigningKeyPath(data_dir)
  std::string origin;            // empty: the recorded one, or NewOrigin() for a new log
  bool private_reads = false;
  bool demo = false;
  bool forensics = false;
  uint64_t snapshot_every = 10'000;
  size_t threads = 16;
  size_t max_threads = kMaxConnectionThreads;
  size_t max_connections_per_address = kDefaultMaxConnectionsPerAddress;
  StreamFlags streams;
  WebhookFlags webhooks;
  // A read replica (SPEC §9): the primary's base URL, the file holding the
  // replica token, and that token once read.
  std::string replica_of;
  std::string replica_token_path;
  std::string replica_token;
  std::string log_key;                       // --log-key: a vkey, or @FILE holding one
  std::optional<NoteVerifier> log_verifier;  // log_key parsed

  bool replica() const { return !replica_of.empty(); }
};

// Parses and checks the command line into *f; an exit code when okrd must
// not go on (kExitOk after --help).
std::optional<int> ParseFlags(int argc, char** argv, Flags* f);

// The bearer token on the first line of `path`, which only its owner may
// read or write (mode 0600 or stricter); an error that says what is wrong.
Result<std::string> ReadReplicaToken(const std::string& path);

}  // namespace okr::api
