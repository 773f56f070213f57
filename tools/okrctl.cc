// okrctl: tools for okrd data directories and for a running okrd.
//
// Offline, on a data directory (okrd stopped for writes; reads open the
// log read-only, so they also read a broken log):
//   verify, dump, head, import, export, backup, restore, backups, erase
// On a tokens file (okrd reads it again on SIGHUP):
//   token new, token list, token revoke
// Against a running okrd (--server URL, token from $OKR_TOKEN):
//   verify, audit, import, export, backup, erase, checkin, objectives, cascade,
//   review, history
//
// Exit codes: 0 ok, 1 a check failed or the work was refused (nothing
// written), 2 usage. docs/IMPORT.md and docs/OPERATIONS.md describe each
// command. This file only wires the command line to the commands
// (tools/ctl/commands.h); the order of the subcommands and of their
// options is the order --help prints.
#include <CLI/CLI.hpp>

#include <cassert>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "projections/domain/decider.h"
#include "tools/ctl/commands.h"

namespace {

using namespace okr::ctl::cmd;

// Every value the command line can set. Subcommands share a field where
// they share an option (--data, --server, --json): only one runs.
struct Args {
  std::string dir, server;
  bool json_out = false;
  bool deep = false;
  uint64_t after = 0, limit = UINT64_MAX;
  ImportOptions import;
  ExportOptions exp;
  uint64_t export_as_of = 0;
  std::string audit_key, audit_state;
  std::string backup_to, restore_from;
  uint32_t backup_id = 0;
  bool keys = false;
  std::string keystore;
  EraseOptions erase;
  // The client commands' --server, defaulting to $OKR_SERVER.
  const char* env_server = std::getenv("OKR_SERVER");
  std::string client_server = env_server ? env_server : "";
  uint64_t as_of_value = 0;
  CheckInOptions checkin;
  double confidence = 0;
  std::string cycle, owner, root, review_format = "md", history_id;
  TokenOptions token;
};

// The parsed subcommands, and the options whose presence matters.
struct Commands {
  CLI::App *verify, *audit, *dump, *head, *import, *exp, *backup, *restore, *backups, *erase;
  CLI::App *checkin, *objectives, *cascade, *review, *history;
  CLI::App *token_new, *token_list, *token_revoke;
  CLI::Option *export_as_of, *confidence, *objectives_as_of, *cascade_as_of, *review_as_of;
};

void AddVerify(CLI::App& app, Args& a, Commands* c) {
  c->verify = app.add_subcommand(
      "verify",
      "Check the whole hash chain: of a data directory, or of a running okrd from the "
      "stored bytes it serves; exit 1 naming the first bad seq");
  c->verify->add_option("--data", a.dir, "okrd data directory (opened read-only)");
  c->verify->add_option("--server", a.server,
                        "okrd URL; needs an auditor or admin token in OKR_TOKEN");
  c->verify->add_flag("--json", a.json_out, "print {ok, events, head_hash, first_bad_seq}");
  c->verify->add_flag(
      "--deep", a.deep,
      "with --data: also compare every stored snapshot with a full replay of the log "
      "(one replay per snapshot), naming the first difference");

  c->audit = app.add_subcommand(
      "audit",
      "Check the log a running okrd signs against what this auditor trusted before: signature, "
      "no rollback or fork, consistency, the chain and tree of every new event; then trust it");
  c->audit
      ->add_option("--server", a.server, "okrd URL; needs an auditor or admin token in OKR_TOKEN")
      ->required();
  c->audit
      ->add_option("--key", a.audit_key,
                   "the log's verifier key (GET /v1/log/key, name+id+key), or @FILE holding it")
      ->required();
  c->audit
      ->add_option("--state", a.audit_state,
                   "the trusted state (JSON; created on first use, replaced after each audit "
                   "that passes; a fork's evidence goes beside it)")
      ->required();

  c->dump = app.add_subcommand("dump", "Print events as NDJSON, one readable event per line");
  c->dump->add_option("--data", a.dir, "okrd data directory")->required();
  c->dump->add_option("--after", a.after, "start after this seq (default 0)");
  c->dump->add_option("--limit", a.limit, "print at most this many events");

  c->head = app.add_subcommand("head", "Print the head seq and hash as JSON");
  c->head->add_option("--data", a.dir, "okrd data directory")->required();
}

void AddImportExport(CLI::App& app, Args& a, Commands* c) {
  c->import = app.add_subcommand(
      "import",
      "Import OKRs from a CSV (one row per key result) or JSON file, all or nothing: every row is "
      "validated first and a bad row stops the import naming file, line, column and reason");
  c->import->add_option("file", a.import.file, "the .csv or .json file (docs/IMPORT.md)")
      ->required();
  c->import->add_option("--data", a.import.data_dir,
                        "data directory to import into, okrd stopped (created when missing)");
  c->import->add_option("--server", a.import.server,
                        "import through a running okrd instead; needs an admin token in OKR_TOKEN");
  c->import->add_option(
      "--as", a.import.as,
      "offline: record the events as actor import:NAME (default: the file's base name)");
  c->import->add_flag("--dry-run", a.import.dry_run, "validate everything, write nothing");
  c->import->add_flag("--json", a.import.json, "print the outcome as one JSON object");

  c->exp = app.add_subcommand(
      "export",
      "Export one cycle's objectives and key results as CSV or JSON, the formats import "
      "reads; the same state always gives the same bytes");
  c->exp->add_option("--cycle", a.exp.cycle, "the cycle id")->required();
  c->exp->add_option("--format", a.exp.format, "csv or json")
      ->check(CLI::IsMember({"csv", "json"}))
      ->capture_default_str();
  c->export_as_of =
      c->exp->add_option("--as-of", a.export_as_of, "the state after this seq (default: the head)");
  c->exp->add_option("--data", a.exp.data_dir, "okrd data directory (opened read-only)");
  c->exp->add_option("--server", a.exp.server, "okrd URL instead of --data");
  c->exp->add_option("-o,--output", a.exp.output, "write here instead of standard output");
}

void AddBackups(CLI::App& app, Args& a, Commands* c) {
  c->backup = app.add_subcommand(
      "backup", "Back the database up with RocksDB's BackupEngine (incremental, checksummed)");
  c->backup
      ->add_option("--to", a.backup_to,
                   "backup directory; with --server, a directory under okrd's --backup-root")
      ->required();
  c->backup->add_option("--data", a.dir, "okrd data directory, okrd stopped");
  c->backup->add_option("--server", a.server,
                        "ask a running okrd to back itself up (admin token in OKR_TOKEN)");
  c->backup->add_flag("--json", a.json_out, "print the backup as JSON");
  c->backup->add_flag("--keys", a.keys,
                      "back up the key store instead (with --data, okrd stopped): a copy in the "
                      "new directory --to, kept apart from the log's backups");
  c->backup->add_option("--keystore", a.keystore, "with --keys: the key store (default DATA.keys)");

  c->restore = app.add_subcommand(
      "restore",
      "Restore a backup into a new data directory, then verify its chain (exit 1 if broken)");
  c->restore->add_option("--from", a.restore_from, "backup directory")->required();
  c->restore->add_option("--data", a.dir, "new data directory (must be missing or empty)")
      ->required();
  c->restore->add_option("--backup-id", a.backup_id, "which backup (default: the latest)");
  c->restore->add_flag("--json", a.json_out, "print the outcome as JSON");
  c->restore->add_flag("--keys", a.keys,
                       "restore a key-store backup (backup --keys) as the missing key store of "
                       "--data; okrd deletes again the keys its log records as erased");
  c->restore->add_option("--keystore", a.keystore,
                         "with --keys: where the key store goes (default DATA.keys)");

  c->backups = app.add_subcommand("backups", "List the backups in a backup directory");
  c->backups->add_option("--from", a.restore_from, "backup directory")->required();
  c->backups->add_flag("--json", a.json_out, "print the list as JSON");

  c->erase = app.add_subcommand(
      "erase",
      "Erase a person's personal data (SPEC §10): delete their key, so every sealed field of "
      "theirs reads as erased, and record subject.erased in the log");
  c->erase->add_option("--subject", a.erase.subject, "the person unit's id")->required();
  c->erase->add_option("--reason", a.erase.reason, "why (recorded, never sealed)")->required();
  c->erase->add_option("--data", a.erase.data_dir, "okrd data directory, okrd stopped");
  c->erase->add_option("--server", a.erase.server,
                       "ask a running okrd to erase (admin token in OKR_TOKEN)");
  c->erase->add_option("--keystore", a.erase.keystore,
                       "with --data: the key store (default DATA.keys)");
  c->erase->add_option("--as", a.erase.actor, "with --data: the actor the event names")
      ->default_str("okrctl");
  c->erase->add_flag("--json", a.erase.json_out, "print {subject, seq, erased} as JSON");
}

void AddTokens(CLI::App& app, Args& a, Commands* c) {
  CLI::App* token = app.add_subcommand(
      "token", "Make, list and revoke the bearer tokens of okrd's tokens file (okrd: SIGHUP)");
  token->require_subcommand(1);
  c->token_new = token->add_subcommand(
      "new", "Make a random token for a new actor: prints it once, stores only its hash");
  c->token_new->add_option("--actor", a.token.actor, "who the token acts as")->required();
  c->token_new->add_option("--role", a.token.role, "viewer, editor, auditor, admin or replica")
      ->required();
  c->token_new->add_option("--units", a.token.units, "an editor's units (comma-separated)")
      ->delimiter(',');
  c->token_new->add_option("--subject", a.token.subject, "the person unit the holder is");
  c->token_new
      ->add_option("--file", a.token.file,
                   "the tokens file (created 0600 when missing; else its owner and mode kept)")
      ->required();
  c->token_new->add_flag("--json", a.token.json, "print {actor, role, token, file}");

  c->token_list = token->add_subcommand(
      "list", "List the actors, roles, units and subjects (never a whole hash)");
  c->token_list->add_option("--file", a.token.file, "the tokens file")->required();
  c->token_list->add_flag("--json", a.json_out, "print {items}");

  c->token_revoke = token->add_subcommand("revoke", "Remove an actor's token");
  c->token_revoke->add_option("--actor", a.token.actor, "whose token")->required();
  c->token_revoke->add_option("--file", a.token.file, "the tokens file")->required();
}

// A client command's --server: required unless $OKR_SERVER gives it.
void AddServer(CLI::App* sub, Args& a) {
  auto* opt = sub->add_option("--server", a.client_server, "okrd URL (default: $OKR_SERVER)");
  if (!a.env_server) opt->required();
}

// A number checked here by okrd's own rule for `field`, since JSON has no
// 1e400, inf or nan: sent, each became null, which okrd took for a value
// not given (a check-in without its confidence, or "value is required").
CLI::Validator OkrdRule(okr::Status (*rule)(double, const char*), const char* field) {
  return CLI::Validator(
      [rule, field](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0') return "";  // not a number: CLI11 says so
        const okr::Status kept = rule(v, field);
        return kept.ok() ? "" : kept.message();
      },
      "NUMBER");
}

void AddCheckIn(CLI::App& app, Args& a, Commands* c) {
  c->checkin = app.add_subcommand("checkin", "Record a check-in on a key result");
  c->checkin->add_option("kr", a.checkin.key_result, "key result id")->required();
  c->checkin->add_option("value", a.checkin.value, "the measured value")
      ->required()
      ->check(OkrdRule(okr::decide::CheckBounded, "value"));
  c->checkin->add_option("--note", a.checkin.note, "what happened");
  c->confidence = c->checkin->add_option("--confidence", a.confidence, "0..1")
                      ->check(OkrdRule(okr::decide::CheckConfidence, "confidence"));
  c->checkin->add_option("--status", a.checkin.status, "on_track, at_risk or off_track")
      ->check(CLI::IsMember({"on_track", "at_risk", "off_track"}));
  c->checkin->add_option("--measured-at", a.checkin.measured_at,
                         "when it was measured (RFC 3339 or YYYY-MM-DD; default now)");
  c->checkin->add_flag("--json", a.json_out, "print okrd's answer as JSON");
  AddServer(c->checkin, a);
}

// A view of one cycle (objectives, cascade): --cycle, one narrowing
// option, --as-of, --json and --server, in the order --help shows them.
CLI::App* AddCycleView(CLI::App& app, Args& a, const char* name, const char* about,
                       std::pair<const char*, std::string*> narrow, const char* narrow_about,
                       const char* json_about, CLI::Option** as_of) {
  CLI::App* sub = app.add_subcommand(name, about);
  sub->add_option("--cycle", a.cycle, "the cycle id")->required();
  sub->add_option(narrow.first, *narrow.second, narrow_about);
  *as_of = sub->add_option("--as-of", a.as_of_value, "as of this seq");
  sub->add_flag("--json", a.json_out, json_about);
  AddServer(sub, a);
  assert(*as_of != nullptr);
  return sub;
}

void AddReads(CLI::App& app, Args& a, Commands* c) {
  c->objectives = AddCycleView(
      app, a, "objectives", "List a cycle's objectives with their key results",
      {"--owner", &a.owner}, "only this unit's", "print {items, as_of_seq}", &c->objectives_as_of);
  c->cascade = AddCycleView(
      app, a, "cascade", "Show a cycle's cascade: units, their objectives, progress",
      {"--root", &a.root}, "start at this unit", "print okrd's answer as JSON", &c->cascade_as_of);

  c->review = app.add_subcommand("review", "Print a cycle's end-of-cycle review");
  c->review->add_option("cycle", a.cycle, "the cycle id")->required();
  c->review->add_option("--format", a.review_format, "md, csv or json")
      ->check(CLI::IsMember({"md", "csv", "json"}))
      ->capture_default_str();
  c->review_as_of = c->review->add_option("--as-of", a.as_of_value, "as of this seq");
  AddServer(c->review, a);

  c->history = app.add_subcommand("history", "Every event of one entity (auditor or admin token)");
  c->history->add_option("id", a.history_id, "unit, cycle, objective or key result id")->required();
  c->history->add_flag("--json", a.json_out, "print okrd's answer as JSON");
  AddServer(c->history, a);
}

// Exactly one of --data DIR and --server URL; else a usage exit code.
std::optional<int> OneOf(const std::string& data, const std::string& url) {
  if (data.empty() == url.empty()) {
    return Usage("give exactly one of --data DIR and --server URL");
  }
  return std::nullopt;
}

// The commands on a data directory (and those taking either); nullopt
// when the parsed subcommand is a client command.
std::optional<int> RunOffline(const Commands& c, Args& a) {
  if (*c.verify) {
    if (auto rc = OneOf(a.dir, a.server)) return *rc;
    if (a.deep && !a.server.empty())
      return Usage("--deep reads the snapshots of a data directory: use --data");
    return a.server.empty() ? VerifyOffline(a.dir, a.json_out, a.deep)
                            : VerifyServer(a.server, a.json_out);
  }
  if (*c.audit) return Audit(a.server, a.audit_key, a.audit_state);
  if (*c.dump) return Dump(a.dir, a.after, a.limit);
  if (*c.head) return PrintHead(a.dir);
  if (*c.import) {
    if (auto rc = OneOf(a.import.data_dir, a.import.server)) return *rc;
    if (!a.import.server.empty() && !a.import.as.empty()) {
      return Usage("--as is for offline imports: through okrd the events carry the token's actor");
    }
    return Import(a.import);
  }
  if (*c.exp) {
    if (auto rc = OneOf(a.exp.data_dir, a.exp.server)) return *rc;
    if (*c.export_as_of) a.exp.as_of = a.export_as_of;
    return Export(a.exp);
  }
  if (*c.backup) {
    if (auto rc = OneOf(a.dir, a.server)) return *rc;
    if (a.keys) {
      if (!a.server.empty()) return Usage("--keys backs up a stopped okrd's key store: use --data");
      return BackupKeys(a.dir, a.keystore, a.backup_to);
    }
    return Backup(a.dir, a.server, a.backup_to, a.json_out);
  }
  if (*c.restore) {
    if (a.keys) return RestoreKeys(a.restore_from, a.dir, a.keystore);
    return Restore(a.restore_from, a.dir, a.backup_id, a.json_out);
  }
  if (*c.erase) {
    if (auto rc = OneOf(a.erase.data_dir, a.erase.server)) return *rc;
    return Erase(a.erase);
  }
  if (*c.backups) return ListBackups(a.restore_from, a.json_out);
  if (*c.token_new) return TokenNew(a.token);
  if (*c.token_list) return TokenList(a.token.file, a.json_out);
  if (*c.token_revoke) return TokenRevoke(a.token.file, a.token.actor);
  return std::nullopt;
}

int RunClient(const Commands& c, Args& a) {
  auto client = Connect(a.client_server);
  if (!client.ok()) return Usage(client.status().message());
  // --as-of is one field for three subcommands: it counts only when the
  // parsed subcommand's own option was given.
  std::optional<uint64_t> as_of;
  if ((*c.objectives_as_of && *c.objectives) || (*c.cascade_as_of && *c.cascade) ||
      (*c.review_as_of && *c.review)) {
    as_of = a.as_of_value;
  }
  okr::ctl::Client& http = **client;
  if (*c.checkin) {
    if (*c.confidence) a.checkin.confidence = a.confidence;
    return CheckIn(http, a.checkin, a.json_out);
  }
  if (*c.objectives) return Objectives(http, a.cycle, a.owner, as_of, a.json_out);
  if (*c.cascade) return Cascade(http, a.cycle, a.root, as_of, a.json_out);
  if (*c.review) return Review(http, a.cycle, a.review_format, as_of);
  if (*c.history) return History(http, a.history_id, a.json_out);
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "okrctl: tools for okrd data directories and for a running okrd.\n\n"
      "Offline commands take --data DIR (the directory okrd serves; writes need okrd stopped).\n"
      "Client commands take --server URL (http://HOST:PORT) and read the bearer token from the\n"
      "OKR_TOKEN environment variable (OKR_SERVER, when set, is the default URL of the client\n"
      "commands).\n\n"
      "Exit codes: 0 ok; 1 a check failed, the server or the log refused, nothing imported;\n"
      "2 usage (unknown option, missing argument, conflicting options)."};
  app.set_version_flag("--version", std::string("okrctl ") + OKRD_VERSION);
  app.require_subcommand(1);
  app.footer(
      "docs/IMPORT.md: import and export formats. docs/OPERATIONS.md: backup, restore, verify, "
      "audit, tokens.");
  Args args;
  Commands commands{};
  AddVerify(app, args, &commands);
  AddImportExport(app, args, &commands);
  AddBackups(app, args, &commands);
  AddTokens(app, args, &commands);
  AddCheckIn(app, args, &commands);
  AddReads(app, args, &commands);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  // require_subcommand(1): exactly one subcommand got past the parser.
  assert(app.get_subcommands().size() == 1);
  if (std::optional<int> rc = RunOffline(commands, args)) return *rc;
  return RunClient(commands, args);
}
