#include "api/okrd_flags.h"

#include <sys/stat.h>
#include <CLI/CLI.hpp>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "api/auth.h"
#include "api/log_key.h"

namespace okr::api {

namespace {

// The dashboard served at / unless --dashboard says otherwise: the source
// tree's api/dashboard/, when that directory exists.
std::string DefaultDashboardDir() {
#ifdef OKRD_DEFAULT_DASHBOARD_DIR
  std::error_code ec;
  if (std::filesystem::is_directory(OKRD_DEFAULT_DASHBOARD_DIR, ec))
    return OKRD_DEFAULT_DASHBOARD_DIR;
#endif
  return "";
}

void AddOptions(CLI::App& app, Flags& f) {
  app.add_option("--data", f.data_dir, "Data directory (created when missing)")
      ->capture_default_str();
  app.add_option("--listen", f.listen, "HOST:PORT to listen on (port 0: any free port)")
      ->capture_default_str();
  app.add_option(
      "--tokens", f.tokens_path,
      "Tokens file: JSON list of {actor, role, units, token_sha256, subject}, owned by root "
      "or okrd's user, mode 0600 (or 0640, group okrd), re-read on SIGHUP. "
      "Without it okrd is read-only");
  app.add_option("--backup-root", f.backup_root,
                 "Directory POST /v1/admin/backup writes under (created 0700 when missing). "
                 "Without it that route answers 403");
  app.add_flag("--private", f.private_reads, "Every read needs a token too");
  app.add_option("--snapshot-every", f.snapshot_every,
                 "Write a snapshot every N events, or every quarter of the log when that is more "
                 "(0: never)")
      ->capture_default_str();
  app.add_option("--threads", f.threads, "Worker threads serving connections")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--max-threads", f.max_threads,
                 "Worker threads at most: connections served at once. With all busy, as many more "
                 "wait; beyond them a connection is answered 503 with Retry-After")
      ->check(CLI::Range(size_t{1}, size_t{16384}))
      ->capture_default_str();
  app.add_option(
         "--max-connections-per-address", f.max_connections_per_address,
         "Connections open at once from one client address; more are answered 503 with Retry-After")
      ->check(CLI::Range(size_t{1}, size_t{1'000'000}))
      ->capture_default_str();
  AddStreamOptions(app, f.streams);
  app.add_flag(
      "--demo", f.demo,
      "Fill an empty data directory with the demo company and print tokens and example requests");
  app.add_flag("--read-only-forensics", f.forensics,
               "Serve DIR as it is, opened read-only and not verified (a copy of a broken log): "
               "reads and audit reads answer, writes answer 403, nothing in DIR is written");
  app.add_option("--signing-key", f.signing_key_path,
                 "Ed25519 private key (PKCS#8 PEM, mode 0600 or 0640) that signs the log's "
                 "checkpoints; created with a new log. Default: the data directory's path plus "
                 "'.signing.key'. Once the log records its key, another key or none refuses start");
  app.add_option("--origin", f.origin,
                 "The log's name in its checkpoints, fixed when the log records its key "
                 "(default: okrd/<16 random hex digits>); a different one later refuses start");
  app.add_option("--log-format", f.log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("--dashboard", f.dashboard_dir,
                 "Directory of the dashboard's files, served at / ('' serves none)")
      ->capture_default_str();
  AddWebhookOptions(app, f.webhooks);
  app.add_option("--replica-of", f.replica_of,
                 "Serve a read replica of the okrd at this URL (http://HOST:PORT or https://…): "
                 "copy its log, checking every event, and answer writes 403");
  app.add_option("--replica-token", f.replica_token_path,
                 "With --replica-of: a file (mode 0600) whose first line is a token of the "
                 "primary's replica role");
  app.add_option("--log-key", f.log_key,
                 "With --replica-of: the primary's verifier key (a vkey, or @FILE holding one), "
                 "given out of band; the copied log must record it and the primary's checkpoints "
                 "must verify with it");
}

// --log-key's vkey, from the flag or the file it names; an error that
// says what is wrong.
Result<NoteVerifier> ReadLogKey(const std::string& flag) {
  OKR_ASSIGN_OR_RETURN(std::string vkey, VkeyArgument(flag));
  auto parsed = ParseVkey(vkey);
  if (!parsed.ok()) return Status::Invalid("not a vkey: " + parsed.status().message());
  return parsed;
}

// A replica copies its log from the primary and writes nothing of its
// own: it needs the token, and takes no flag that writes or signs. An
// exit code when the flags do not go together.
std::optional<int> CheckReplicaFlags(Flags* f) {
  if (!f->replica()) {
    if (f->replica_token_path.empty() && f->log_key.empty()) return std::nullopt;
    std::cerr << "okrd: --replica-token and --log-key go only with --replica-of\n";
    return kExitUsage;
  }
  if (f->replica_of.rfind("http://", 0) != 0 && f->replica_of.rfind("https://", 0) != 0) {
    std::cerr << "okrd: --replica-of must be the primary's URL, http://HOST:PORT or https://…\n";
    return kExitUsage;
  }
  if (f->demo || f->forensics || !f->backup_root.empty() || !f->origin.empty()) {
    std::cerr << "okrd: a replica (--replica-of) writes and signs nothing of its own: it cannot go "
                 "with --demo, --read-only-forensics, --backup-root or --origin\n";
    return kExitUsage;
  }
  auto token = ReadReplicaToken(f->replica_token_path);
  if (!token.ok()) {
    std::cerr << "okrd: --replica-token: " << token.status().message() << "\n";
    return kExitUsage;
  }
  f->replica_token = std::move(token.value());
  if (f->log_key.empty()) return std::nullopt;
  auto verifier = ReadLogKey(f->log_key);
  if (!verifier.ok()) {
    std::cerr << "okrd: --log-key: " << verifier.status().message() << "\n";
    return kExitUsage;
  }
  f->log_verifier = std::move(verifier.value());
  return std::nullopt;
}

}  // namespace

Result<std::string> ReadReplicaToken(const std::string& path) {
  if (path.empty()) return Status::Invalid("a replica needs --replica-token FILE");
  auto text = ReadCredentialsFile(path, "token file", [&path](const struct stat& st) {
    if (!S_ISREG(st.st_mode)) return Status::Invalid(path + " is not a regular file");
    if ((st.st_mode & 077) == 0) return Status::Ok();
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::Invalid(path + " has mode " + mode +
                           ": a token file must be readable by its owner only (0600)");
  });
  if (!text.ok()) return text.status();
  std::string line = text->substr(0, text->find('\n'));
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  if (line.empty()) return Status::Invalid(path + " holds no token on its first line");
  return line;
}

std::optional<int> ParseFlags(int argc, char** argv, Flags* f) {
  CLI::App app{
      "okrd: an event-sourced OKR server. Every change is a hash-chained event in RocksDB."};
  app.set_version_flag("--version", std::string("okrd ") + OKRD_VERSION);
  f->dashboard_dir = DefaultDashboardDir();
  AddOptions(app, *f);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (f->max_threads < f->threads) {
    std::cerr << "okrd: --max-threads must be at least --threads\n";
    return kExitUsage;
  }
  if (f->forensics && f->demo) {
    std::cerr << "okrd: --demo writes; it cannot go with --read-only-forensics\n";
    return kExitUsage;
  }
  if (auto rc = CheckReplicaFlags(f)) return rc;
  auto colon = f->listen.rfind(':');
  if (colon != std::string::npos) {
    try {
      f->port = std::stoi(f->listen.substr(colon + 1));
    } catch (...) {
      f->port = -1;
    }
  }
  if (colon == std::string::npos || f->port < 0 || f->port > 65535) {
    std::cerr << "okrd: --listen must be HOST:PORT\n";
    return kExitUsage;
  }
  f->host = f->listen.substr(0, colon);
  if (!f->origin.empty() && !ValidOrigin(f->origin)) {
    std::cerr << "okrd: --origin must be 1 to " << kMaxOriginBytes
              << " printable ASCII characters without spaces or '+'\n";
    return kExitUsage;
  }
  if (f->signing_key_path.empty()) {
    f->signing_key_path = DefaultSigningKeyPath(f->data_dir);
  }
  if (!ParseDigestAt(f->webhooks.digest_at)) {
    std::cerr << "okrd: --digest-at must be HH:MM (UTC)\n";
    return kExitUsage;
  }
  return std::nullopt;
}

}  // namespace okr::api
