// okrctl's commands, one function each, as tools/okrctl.cc calls them
// after parsing the command line (docs/IMPORT.md, docs/OPERATIONS.md).
//
// Each returns the process's exit code and writes its outcome to stdout
// (text, or one JSON object with --json) and its complaints to stderr,
// prefixed "okrctl: ". Offline commands open a data directory themselves
// and close it before returning; client commands borrow the Client the
// caller connected. None is thread-safe: main calls one, once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "eventstore/base/status.h"
#include "tools/ctl/client.h"

namespace okr::ctl::cmd {

// Exit codes: a check failed or the work was refused (nothing written,
// unless the command says otherwise) is 1; a usage mistake is 2.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// "okrctl: <message>" on stderr; returns kExitUsage.
int Usage(const std::string& message);
// A client for `url` with the bearer token of $OKR_TOKEN (may be empty);
// kInvalid for a malformed URL. The caller owns the client.
Result<std::unique_ptr<Client>> Connect(const std::string& url);

// --- verify, dump, head (the log) ---

// The whole chain of data directory `dir` (opened read-only); with `deep`,
// also every stored snapshot against a full replay.
int VerifyOffline(const std::string& dir, bool json_out, bool deep);
// The chain of the okrd at `url`, checked here from the stored bytes it
// serves, compared with what okrd claims of itself.
int VerifyServer(const std::string& url, bool json_out);
// The log okrd at `url` signs, against what the auditor trusted before
// (state file `state_path`; none: trust on first use): the checkpoint's
// signature by `key` (a vkey, or @FILE holding one), no rollback, no
// fork, the consistency proof, the chain and tree of every new event and
// an inclusion proof; then the new trusted state, written atomically.
// Exit 1 naming what failed; a fork's two notes are kept beside the state.
int Audit(const std::string& url, const std::string& key, const std::string& state_path);
// Events after seq `after` as NDJSON, at most `limit` of them.
int Dump(const std::string& dir, uint64_t after, uint64_t limit);
// The head seq, hash and time as one JSON object.
int PrintHead(const std::string& dir);

// --- import, export ---

struct ImportOptions {
  std::string file;
  std::string data_dir;  // exactly one of data_dir and server is set
  std::string server;
  std::string as;  // offline only: the actor is import:<as>
  bool dry_run = false;
  bool json = false;
};
// All or nothing offline; through okrd, validated in full before the
// first write (docs/IMPORT.md says what a refusal midway leaves).
int Import(const ImportOptions& options);

struct ExportOptions {
  std::string cycle;
  std::string format = "csv";  // or "json"
  std::optional<uint64_t> as_of;
  std::string data_dir;  // exactly one of data_dir and server is set
  std::string server;
  std::string output;  // empty or "-": stdout
};
int Export(const ExportOptions& options);

// --- backup, restore, backups ---

// Into backup directory `to`: offline from `data_dir`, or (when `server`
// is set) by asking that okrd to back itself up on its own host.
int Backup(const std::string& data_dir, const std::string& server, const std::string& to,
           bool json_out);
// Backup `backup_id` (0: the latest) of `from` into the new `data_dir`,
// then its chain verified.
int Restore(const std::string& from, const std::string& data_dir, uint32_t backup_id,
            bool json_out);
int ListBackups(const std::string& from, bool json_out);

// --- erase, and the key store's backups (SPEC §10) ---

struct EraseOptions {
  std::string data_dir, server;  // exactly one
  std::string keystore;          // offline: the key store (default <data dir>.keys)
  std::string subject, reason;
  std::string actor = "okrctl";  // offline: who the subject.erased event names
  bool json_out = false;
};
// Deletes the subject's key and appends subject.erased: offline on a data
// directory (okrd stopped) or through okrd (admin token in OKR_TOKEN).
int Erase(const EraseOptions& options);
// A copy of the key store (`keystore`, default <data dir>.keys; okrd
// stopped) in the new directory `to`.
int BackupKeys(const std::string& data_dir, const std::string& keystore, const std::string& to);
// The copy `from` put in place of the missing key store of `data_dir`.
int RestoreKeys(const std::string& from, const std::string& data_dir, const std::string& keystore);

// --- token new, list, revoke (the tokens file, SPEC §4) ---

struct TokenOptions {
  std::string file;  // created (0600) when missing
  std::string actor, role;
  std::vector<std::string> units;  // an editor's scope
  std::string subject;             // the person unit the holder is, or empty
  bool json = false;
};
// A new random token for a new actor: its hash appended to the file, the
// token printed once (stdout), never stored.
int TokenNew(const TokenOptions& options);
// Actors, roles, units, subjects and the first digits of each hash.
int TokenList(const std::string& path, bool json_out);
// Removes the actor's entry.
int TokenRevoke(const std::string& path, const std::string& actor);

// --- client commands (a running okrd) ---

struct CheckInOptions {
  std::string key_result;
  double value = 0;
  std::string note, status, measured_at;
  std::optional<double> confidence;
};
int CheckIn(Client& client, const CheckInOptions& options, bool json_out);
// Every page of the cycle's objectives, all as of the first page's seq.
int Objectives(Client& client, const std::string& cycle, const std::string& owner,
               const std::optional<uint64_t>& as_of, bool json_out);
int Cascade(Client& client, const std::string& cycle, const std::string& root,
            const std::optional<uint64_t>& as_of, bool json_out);
// `format`: md, csv or json, printed as okrd renders it.
int Review(Client& client, const std::string& cycle, const std::string& format,
           const std::optional<uint64_t>& as_of);
int History(Client& client, const std::string& id, bool json_out);

}  // namespace okr::ctl::cmd
