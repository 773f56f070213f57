// okrctl: tools for okrd data directories and for a running okrd.
//
// Offline, on a data directory (okrd stopped for writes; reads open the
// log read-only, so they also read a broken log):
//   verify, dump, head, import, export, backup, restore, backups
// Against a running okrd (--server URL, token from $OKR_TOKEN):
//   verify, import, export, backup, checkin, objectives, cascade, review,
//   history
//
// Exit codes: 0 ok, 1 a check failed or the work was refused (nothing
// written), 2 usage. docs/IMPORT.md and docs/OPERATIONS.md describe each
// command.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "eventstore/base/clock.h"
#include "eventstore/event_json.h"
#include "eventstore/event_store.h"
#include "projections/service/projector.h"
#include "projections/service/snapshot.h"
#include "eventstore/base/time.h"
#include "eventstore/chain.h"
#include "tools/ctl/raw_events.h"
#include "tools/ctl/client.h"
#include "tools/ctl/csv.h"
#include "tools/ctl/export.h"
#include "tools/ctl/import.h"
#include "tools/ctl/progress.h"
#include "tools/ctl/snapshot_check.h"

namespace {

using nlohmann::json;
using okr::ctl::Client;
using okr::ctl::HttpAnswer;
using okr::ctl::ProgressBar;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// A backup through okrd copies the whole database before it answers.
constexpr int kBackupReadTimeoutSeconds = 3600;
// Ids okrd accepts: what --as may name (the actor becomes import:<name>).
constexpr size_t kMaxImportNameChars = 64;

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int Fail(const std::string& message) {
  std::cerr << "okrctl: " << message << "\n";
  return kExitFailed;
}

int Usage(const std::string& message) {
  std::cerr << "okrctl: " << message << "\n";
  return kExitUsage;
}

std::string OpenHint(const okr::Status& s) {
  // RocksDB's LOCK: another process (okrd) has the directory open for writing.
  if (s.message().find("lock") != std::string::npos || s.message().find("LOCK") != std::string::npos) {
    return " (is okrd running on it? stop it, or use --server URL)";
  }
  return "";
}

okr::Result<std::unique_ptr<okr::EventStore>> OpenForReading(const std::string& dir) {
  okr::OpenOptions options;
  options.read_only = true;
  options.create_if_missing = false;
  return okr::EventStore::Open(dir, options);
}

// The token for --server commands.
std::string Token() {
  const char* token = std::getenv("OKR_TOKEN");
  return token ? token : "";
}

okr::Result<std::unique_ptr<Client>> Connect(const std::string& url) {
  return Client::Connect(url, Token());
}

bool Interactive(bool json) { return !json && ProgressBar::Terminal(); }

std::string Percent(const json& v) {
  if (!v.is_number()) return "-";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.0f%%", v.get<double>() * 100);
  return buf;
}

std::string Str(const json& v) { return v.is_string() ? v.get<std::string>() : ""; }

std::string Number(const json& v) { return v.is_number() ? okr::ctl::FormatNumber(v.get<double>()) : ""; }

// Display width of UTF-8 text (one column per code point).
size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

// Columns padded to their widest cell; the last column is not padded.
void PrintTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(header.size(), 0);
  for (size_t i = 0; i < header.size(); ++i) widths[i] = Width(header[i]);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], Width(row[i]));
  }
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - Width(row[i]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  };
  print(header);
  for (const auto& row : rows) print(row);
}

// --- verify ---

// --deep: every stored snapshot against a full replay of the log, after
// the chain passed (a broken chain is reported on its own).
okr::Result<okr::ctl::SnapshotCheckReport> VerifySnapshots(const okr::EventStore& store, bool json_out) {
  ProgressBar bar("replaying for each snapshot", 0, Interactive(json_out), "snapshots");
  auto report = okr::ctl::CheckSnapshots(store, [&](size_t done, size_t total) {
    bar.set_total(total);
    bar.Update(done);
  });
  bar.Finish();
  return report;
}

json SnapshotsJson(const okr::ctl::SnapshotCheckReport& r) {
  json out = {{"ok", r.ok}, {"seqs", r.seqs}, {"checked", r.checked},
              {"first_bad_seq", r.ok ? json(nullptr) : json(r.first_bad_seq)}};
  if (!r.ok) out["problem"] = r.problem;
  return out;
}

std::string SnapshotsText(const okr::ctl::SnapshotCheckReport& r) {
  if (!r.ok) {
    return "SNAPSHOT at seq " + std::to_string(r.first_bad_seq) +
           " differs from a full replay of the log: " + r.problem +
           " (snapshots are a cache okrd starts from; the log itself verifies)\n";
  }
  std::string seqs;
  for (uint64_t seq : r.seqs) seqs += (seqs.empty() ? "" : ", ") + std::to_string(seq);
  return "snapshots: " + std::to_string(r.checked) + " agree with a full replay of the log" +
         (seqs.empty() ? "" : " (seq " + seqs + ")") + "\n";
}

int VerifyOffline(const std::string& dir, bool json_out, bool deep) {
  auto store = OpenForReading(dir);
  if (!store.ok()) return Fail("cannot open " + dir + ": " + store.status().ToString());
  ProgressBar bar("verifying", (*store)->head().seq, Interactive(json_out), "events");
  auto started = Clock::now();
  okr::VerifyReport report = (*store)->Verify([&](uint64_t done, uint64_t total) {
    bar.set_total(total);
    bar.Update(done);
  });
  bar.Finish();
  std::optional<okr::ctl::SnapshotCheckReport> snapshots;
  if (deep && report.ok) {
    auto checked = VerifySnapshots(**store, json_out);
    if (!checked.ok()) return Fail("checking snapshots: " + checked.status().ToString());
    snapshots = std::move(checked.value());
  }
  const bool ok = report.ok && (!snapshots || snapshots->ok);
  double secs = SecondsSince(started);
  if (json_out) {
    json out = {{"ok", ok},
                {"events", report.events},
                {"head_hash", okr::ToHex(report.head_hash)},
                {"first_bad_seq", report.ok ? json(nullptr) : json(report.first_bad_seq)}};
    if (!report.ok) out["problem"] = report.problem;
    if (snapshots) out["snapshots"] = SnapshotsJson(*snapshots);
    std::cout << out.dump() << "\n";
  } else if (report.ok) {
    std::cout << "ok: " << report.events << " events, head hash " << okr::ToHex(report.head_hash)
              << " (" << secs << " s)\n";
    if (snapshots) std::cout << SnapshotsText(*snapshots);
  } else {
    std::cout << "BROKEN at seq " << report.first_bad_seq << ": " << report.problem << " ("
              << report.events << " events before it verify)\n";
  }
  return ok ? kExitOk : kExitFailed;
}

// Checks okrd's chain from the stored bytes it serves: every event's raw
// value is decoded and hashed here, never taken from okrd's JSON.
int VerifyServer(const std::string& url, bool json_out) {
  auto client = Connect(url);
  if (!client.ok()) return Usage(client.status().message());
  auto started = Clock::now();
  HttpAnswer audit = (*client)->Get("/v1/audit/verify");
  if (!audit.ok()) return Fail("GET /v1/audit/verify: " + audit.Describe());
  bool server_ok = audit.json.value("ok", false);
  uint64_t server_events = audit.json.value("events", uint64_t{0});
  std::string server_hash = Str(audit.json["head_hash"]);
  // A healthy log is checked up to what okrd verified (events appended
  // meanwhile are not its claim); a broken one up to its head.
  uint64_t up_to = server_events;
  if (!server_ok) {
    HttpAnswer health = (*client)->Get("/healthz");
    if (!health.ok()) return Fail("GET /healthz: " + health.Describe());
    up_to = health.json.value("head_seq", server_events);
  }
  okr::ChainChecker chain(okr::ChainSource::kServed);
  ProgressBar bar("verifying", up_to, Interactive(json_out), "events");
  okr::Status fetched = okr::ctl::FetchRawEvents(
      **client, up_to, [&](uint64_t seq, const std::string& bytes) { return chain.Add(seq, bytes); },
      [&](uint64_t seq) { bar.Update(seq); });
  bar.Finish();
  if (!fetched.ok()) return Fail(fetched.message());
  okr::VerifyReport report = chain.report();
  if (report.ok && report.events != up_to) {
    report.ok = false;
    report.first_bad_seq = report.events + 1;
    report.problem = "okrd served " + std::to_string(report.events) + " events but claims " +
                     std::to_string(up_to);
  }
  bool hash_matches = report.ok && server_ok && okr::ToHex(report.head_hash) == server_hash;
  if (report.ok && server_ok && !hash_matches) {
    report.ok = false;
    report.first_bad_seq = report.events;
    report.problem = "the head hash computed from the stored bytes differs from okrd's " + server_hash;
  }
  if (report.ok && !server_ok) {
    // okrd's own check sees more than the events (the head record).
    report.ok = false;
    report.first_bad_seq = audit.json.value("first_bad_seq", uint64_t{0});
    report.problem = "okrd's own check fails: " + Str(audit.json["problem"]);
  }
  double secs = SecondsSince(started);
  if (json_out) {
    json out = {{"ok", report.ok},
                {"events", report.events},
                {"head_hash", okr::ToHex(report.head_hash)},
                {"first_bad_seq", report.ok ? json(nullptr) : json(report.first_bad_seq)},
                {"server", {{"ok", server_ok}, {"events", server_events}, {"head_hash", server_hash}}}};
    if (!report.ok) out["problem"] = report.problem;
    std::cout << out.dump() << "\n";
  } else if (report.ok) {
    std::cout << "ok: " << report.events << " events checked from their stored bytes, head hash "
              << okr::ToHex(report.head_hash) << " (matches okrd's /v1/audit/verify; " << secs
              << " s)\n";
  } else {
    std::cout << "BROKEN at seq " << report.first_bad_seq << ": " << report.problem << "\n";
    std::cout << "okrd's own check: "
              << (server_ok ? std::string("claims the chain is intact")
                            : "broken at seq " + std::to_string(audit.json.value("first_bad_seq", uint64_t{0})))
              << "\n";
  }
  return report.ok ? kExitOk : kExitFailed;
}

// --- dump, head ---

int Dump(const std::string& dir, uint64_t after, uint64_t limit) {
  auto store = OpenForReading(dir);
  if (!store.ok()) return Fail("cannot open " + dir + ": " + store.status().ToString());
  int rc = kExitOk;
  uint64_t written = 0;
  okr::Status s = (*store)->Scan(after + 1, UINT64_MAX, [&](uint64_t seq, std::string_view bytes) {
    auto decoded = okr::DecodedEvent::Decode(bytes);
    if (!decoded.ok()) {
      std::cerr << "okrctl: seq " << seq << ": " << decoded.status().message() << "\n";
      rc = kExitFailed;
      return false;
    }
    json line = okr::EventToJson((*decoded)->event());
    line["hash"] = okr::ToHex(okr::Sha256(bytes));
    std::cout << line.dump() << "\n";
    return ++written < limit;
  });
  if (!s.ok()) return Fail(s.ToString());
  return rc;
}

int HeadCmd(const std::string& dir) {
  auto store = OpenForReading(dir);
  if (!store.ok()) return Fail("cannot open " + dir + ": " + store.status().ToString());
  okr::Head head = (*store)->head();
  std::cout << json{{"seq", head.seq},
                    {"head_hash", okr::ToHex(head.hash)},
                    {"recorded_at", head.seq ? okr::FormatTimeUs(head.recorded_at_us) : std::string()}}
                   .dump()
            << "\n";
  return kExitOk;
}

// --- import ---

struct ImportOptions {
  std::string file;
  std::string data_dir;
  std::string server;
  std::string as;
  bool dry_run = false;
  bool json = false;
};

// import:<name>: --as, else the file's base name without extension, made
// into an id.
std::string ImportName(const ImportOptions& o) {
  if (!o.as.empty()) return o.as;
  std::string base = std::filesystem::path(o.file).stem().string();
  std::string out;
  for (char c : base) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool ok = (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '.' || l == '_' || l == '-';
    out.push_back(ok ? l : '-');
  }
  if (out.size() > kMaxImportNameChars) out.resize(kMaxImportNameChars);
  return out.empty() ? "file" : out;
}

int ReportImportError(const okr::ctl::ImportError& e, bool json_out, size_t written, bool wrote_any) {
  if (json_out) {
    std::cout << json{{"ok", false},
                      {"error",
                       {{"file", e.file},
                        {"line", e.at.line},
                        {"column", e.at.column},
                        {"field", e.at.field},
                        {"reason", e.reason}}},
                      {"written", written}}
                     .dump()
              << "\n";
  }
  std::cerr << "okrctl: " << e.ToString() << "\n";
  if (!wrote_any) std::cerr << "okrctl: import refused; nothing was written\n";
  return kExitFailed;
}

bool ReadFile(const std::string& path, std::string* out, std::string* why) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    *why = "cannot read " + path + ": " + ec.message();
    return false;
  }
  if (size > okr::ctl::kMaxImportFileBytes) {
    *why = path + " is larger than " + std::to_string(okr::ctl::kMaxImportFileBytes >> 20) + " MiB";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (!in.good() && !in.eof()) {
    *why = "cannot read " + path;
    return false;
  }
  *out = buffer.str();
  return true;
}

void PrintImportSummary(const okr::ctl::ImportPlan& plan, const okr::ctl::Validation& v,
                        const okr::ctl::ImportWriteResult& w, const std::string& actor, bool dry_run,
                        double secs, bool json_out) {
  size_t skipped = 0;
  for (bool s : v.skip) skipped += s;
  if (json_out) {
    std::cout << json{{"ok", true},
                      {"file", plan.file},
                      {"format", plan.format == okr::ctl::ImportFormat::kCsv ? "csv" : "json"},
                      {"records", plan.records},
                      {"commands", plan.commands.size()},
                      {"skipped", skipped},
                      {"events", v.events},
                      {"written", w.written},
                      {"first_seq", w.first_seq},
                      {"last_seq", w.last_seq},
                      {"actor", actor},
                      {"dry_run", dry_run},
                      {"seconds", secs}}
                     .dump()
              << "\n";
    return;
  }
  const char* what = plan.format == okr::ctl::ImportFormat::kCsv ? " rows" : " entries";
  if (dry_run) {
    std::cout << "dry run: " << plan.file << " is valid: " << plan.records << what << ", "
              << v.to_write << " commands would append " << v.events << " events (" << skipped
              << " already present); nothing written\n";
    return;
  }
  std::cout << "imported " << plan.file << ": " << plan.records << what << ", " << w.written
            << " commands";
  if (w.written > 0) std::cout << " (seq " << w.first_seq << ".." << w.last_seq << ")";
  if (skipped > 0) std::cout << ", " << skipped << " already present";
  if (!actor.empty()) std::cout << ", as " << actor;
  std::cout << " in " << secs << " s\n";
}

// Writes a snapshot of the projection at the head, tied to the log by the
// hash of its last event (as okrd's own snapshots are).
okr::Status SnapshotAtHead(okr::EventStore* store, okr::Projector* projector) {
  if (okr::Status s = projector->CatchUp(); !s.ok()) return s;
  std::string bytes;
  uint64_t seq = 0;
  okr::Status failed = okr::Status::Ok();
  projector->Read([&](const okr::Projection& p) {
    seq = p.seq();
    auto last = store->Read(seq - 1, 1);
    if (!last.ok() || last->size() != 1) {
      failed = last.ok() ? okr::Status::NotFound("no event at seq " + std::to_string(seq)) : last.status();
      return;
    }
    bytes = okr::SnapshotCodec::Encode(p, okr::Sha256(last->front().bytes));
  });
  if (!failed.ok()) return failed;
  return store->PutSnapshot(seq, bytes);
}

int Import(const ImportOptions& o) {
  auto started = Clock::now();
  std::string text, why;
  if (!ReadFile(o.file, &text, &why)) return Fail(why);
  okr::ctl::ImportPlan plan;
  okr::ctl::ImportError error;
  if (!okr::ctl::PlanImport(o.file, std::move(text), &plan, &error)) {
    return ReportImportError(error, o.json, 0, false);
  }
  bool tty = Interactive(o.json);
  okr::ctl::Validation validation;
  okr::ctl::ImportWriteResult written;

  if (!o.server.empty()) {
    auto client = Connect(o.server);
    if (!client.ok()) return Usage(client.status().message());
    if (!(*client)->has_token()) return Usage("set OKR_TOKEN to an admin token to import through okrd");
    // The server's state, rebuilt here from its stored events, is what the
    // rows are validated against before anything is sent.
    HttpAnswer health = (*client)->Get("/healthz");
    if (!health.ok()) return Fail("GET /healthz: " + health.Describe());
    uint64_t head = health.json.value("head_seq", uint64_t{0});
    okr::Projection state;
    okr::ChainChecker chain(okr::ChainSource::kServed);
    okr::Status applied = okr::Status::Ok();
    {
      ProgressBar bar("reading okrd's log", head, tty, "events");
      okr::Status s = okr::ctl::FetchRawEvents(
          **client, head,
          [&](uint64_t seq, const std::string& bytes) {
            if (!chain.Add(seq, bytes)) return false;
            auto decoded = okr::DecodedEvent::Decode(bytes);
            applied = decoded.ok() ? state.Apply((*decoded)->event()) : decoded.status();
            return applied.ok();
          },
          [&](uint64_t seq) { bar.Update(seq); });
      if (!s.ok()) return Fail(s.message() + " (importing through okrd needs an admin token)");
    }
    if (!chain.report().ok) {
      return Fail("okrd's log is broken at seq " + std::to_string(chain.report().first_bad_seq) +
                  ": " + chain.report().problem + "; nothing imported");
    }
    if (!applied.ok()) return Fail("cannot fold okrd's log: " + applied.ToString());
    int64_t now = okr::SystemClockUs();
    {
      ProgressBar bar("validating", plan.commands.size(), tty, "commands");
      if (!okr::ctl::ValidateImport(plan, std::move(state), "import", now, {},
                                    [&](size_t i) { bar.Update(i); }, &validation, &error)) {
        bar.Finish();
        return ReportImportError(error, o.json, 0, false);
      }
    }
    if (!o.dry_run) {
      ProgressBar bar("importing", validation.to_write, tty, "commands");
      auto connect = [&] { return Connect(o.server); };
      if (!okr::ctl::WriteOnline(plan, validation, connect, okr::ctl::kOnlineImportWriters,
                                 [&](size_t i) { bar.Update(i); }, &written, &error)) {
        bar.Finish();
        ReportImportError(error, o.json, written.written, written.written > 0);
        if (written.written > 0) {
          std::cerr << "okrctl: " << written.written
                    << " commands were written before the refusal (an import through okrd is "
                       "not atomic; see docs/IMPORT.md)\n";
        }
        return kExitFailed;
      }
    }
    PrintImportSummary(plan, validation, written, "", o.dry_run, SecondsSince(started), o.json);
    return kExitOk;
  }

  std::string name = ImportName(o);
  if (!okr::ValidId(name)) return Usage("--as must be 1-64 characters of a-z, 0-9, '.', '_', '-'");
  const std::string actor = "import:" + name;
  std::error_code ec;
  bool existed = std::filesystem::exists(o.data_dir, ec);
  okr::OpenOptions open_options;
  auto store = okr::EventStore::Open(o.data_dir, open_options);
  if (!store.ok()) {
    return Fail("cannot open " + o.data_dir + ": " + store.status().ToString() + OpenHint(store.status()));
  }
  // No snapshots while importing: each encodes the whole projection, and
  // one every 10 000 events makes a large import quadratic. One snapshot
  // is written at the end instead, so okrd starts from it.
  okr::ProjectorOptions projector_options;
  projector_options.snapshot_every_events = 0;
  auto projector = okr::Projector::Open(store->get(), projector_options);
  if (!projector.ok()) return Fail("cannot load " + o.data_dir + ": " + projector.status().ToString());
  // Nothing was written: a directory this run created goes again.
  auto discard = [&] {
    projector->reset();
    store->reset();
    if (!existed) std::filesystem::remove_all(o.data_dir, ec);
  };
  okr::Projection state = (*projector)->Read([](const okr::Projection& p) { return p; });
  okr::EventStore* raw_store = store->get();
  auto already_written = [&](size_t i) {
    std::string key = plan.IdempotencyKey(i);
    auto seen = raw_store->FindIdempotent(key, okr::Sha256(key));
    return seen.ok() && seen->has_value();
  };
  {
    ProgressBar bar("validating", plan.commands.size(), tty, "commands");
    if (!okr::ctl::ValidateImport(plan, std::move(state), actor, (*projector)->NowUs(),
                                  already_written, [&](size_t i) { bar.Update(i); }, &validation,
                                  &error)) {
      bar.Finish();
      discard();
      return ReportImportError(error, o.json, 0, false);
    }
  }
  if (o.dry_run) {
    PrintImportSummary(plan, validation, written, actor, true, SecondsSince(started), o.json);
    discard();
    return kExitOk;
  }
  {
    ProgressBar bar("importing", validation.to_write, tty, "commands");
    if (!okr::ctl::WriteOffline(plan, validation, projector->get(), actor,
                                okr::ctl::kOfflineImportWriters, [&](size_t i) { bar.Update(i); },
                                &written, &error)) {
      bar.Finish();
      ReportImportError(error, o.json, written.written, written.written > 0);
      if (written.written > 0) {
        std::cerr << "okrctl: " << written.written
                  << " commands were written before the failure; run the same import again to "
                     "resume after them\n";
      }
      return kExitFailed;
    }
  }
  if (written.written > 0) {
    if (okr::Status s = SnapshotAtHead(raw_store, projector->get()); !s.ok()) {
      std::cerr << "okrctl: imported, but no snapshot was written (okrd replays the log instead): "
                << s.ToString() << "\n";
    }
  }
  PrintImportSummary(plan, validation, written, actor, false, SecondsSince(started), o.json);
  return kExitOk;
}

// --- export ---

// The projection as of `as_of` (0: the head): the newest snapshot that
// belongs to this log, then the events after it, with progress.
okr::Result<okr::Projection> LoadProjection(const okr::EventStore& store, uint64_t as_of, bool tty) {
  okr::Projection p;
  if (auto snap = store.SnapshotAtOrBefore(as_of); snap.ok() && snap->seq > 0) {
    okr::Hash hash{};
    auto decoded = okr::SnapshotCodec::Decode(snap->bytes, &hash);
    auto event = store.Read(snap->seq - 1, 1);
    // A snapshot counts only when its head hash is this log's event there.
    if (decoded.ok() && decoded->seq() == snap->seq && event.ok() && event->size() == 1 &&
        okr::Sha256(event->front().bytes) == hash) {
      p = std::move(decoded.value());
    }
  }
  ProgressBar bar("reading the log", as_of, tty, "events");
  okr::Status failed = okr::Status::Ok();
  okr::Status s = store.Scan(p.seq() + 1, as_of, [&](uint64_t seq, std::string_view bytes) {
    auto decoded = okr::DecodedEvent::Decode(bytes);
    failed = decoded.ok() ? p.Apply((*decoded)->event()) : decoded.status();
    if (seq % 4096 == 0) bar.Update(seq);
    return failed.ok();
  });
  bar.Update(p.seq());
  bar.Finish();
  if (!s.ok()) return s;
  if (!failed.ok()) return failed;
  if (p.seq() != as_of) return okr::Status::Corruption("the log ends at seq " + std::to_string(p.seq()));
  return p;
}

struct ExportOptions {
  std::string cycle;
  std::string format = "csv";
  std::optional<uint64_t> as_of;
  std::string data_dir;
  std::string server;
  std::string output;
};

int Export(const ExportOptions& o) {
  bool tty = ProgressBar::Terminal();
  bool with_check_ins = o.format == "json";
  okr::Result<okr::ctl::ExportInput> input = okr::Status::NotFound("nothing collected");
  if (!o.server.empty()) {
    auto client = Connect(o.server);
    if (!client.ok()) return Usage(client.status().message());
    ProgressBar bar("reading check-ins", 0, tty, "key results");
    input = okr::ctl::CollectFromServer(**client, o.cycle, o.as_of, with_check_ins,
                                        [&](size_t done, size_t total) {
                                          bar.set_total(total);
                                          bar.Update(done);
                                        });
  } else {
    auto store = OpenForReading(o.data_dir);
    if (!store.ok()) return Fail("cannot open " + o.data_dir + ": " + store.status().ToString());
    uint64_t head = (*store)->head().seq;
    uint64_t as_of = o.as_of.value_or(head);
    if (as_of > head) {
      return Fail("--as-of " + std::to_string(as_of) + " is beyond the head seq " + std::to_string(head));
    }
    auto p = LoadProjection(**store, as_of, tty);
    if (!p.ok()) return Fail("cannot read " + o.data_dir + ": " + p.status().ToString());
    input = okr::ctl::CollectFromProjection(*p, o.cycle, as_of, with_check_ins);
  }
  if (!input.ok()) return Fail(input.status().message());
  std::string text = o.format == "json" ? okr::ctl::RenderJson(*input) : okr::ctl::RenderCsv(*input);
  if (o.output.empty() || o.output == "-") {
    std::cout << text;
    std::cout.flush();
    return std::cout.good() ? kExitOk : kExitFailed;
  }
  std::ofstream out(o.output, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Fail("cannot write " + o.output);
  std::cerr << "exported cycle " << o.cycle << " as of seq " << input->as_of_seq << " ("
            << input->objectives.size() << " objectives) to " << o.output << "\n";
  return kExitOk;
}

// --- backup, restore ---

json BackupJson(const okr::BackupSummary& b) {
  return {{"backup_id", b.backup_id},
          {"created_at", okr::FormatTimeUs(b.created_at_s * 1'000'000)},
          {"head_seq", b.head_seq},
          {"head_hash", okr::ToHex(b.head_hash)},
          {"size_bytes", b.size_bytes},
          {"files", b.files}};
}

int Backup(const std::string& data_dir, const std::string& server, const std::string& to, bool json_out) {
  auto started = Clock::now();
  if (!server.empty()) {
    auto client = Connect(server);
    if (!client.ok()) return Usage(client.status().message());
    (*client)->set_read_timeout_seconds(kBackupReadTimeoutSeconds);
    if (Interactive(json_out)) std::cerr << "okrd is backing up into " << to << " on its host…\n";
    HttpAnswer a = (*client)->Post("/v1/admin/backup", {{"to", to}});
    if (!a.ok()) return Fail("POST /v1/admin/backup: " + a.Describe());
    if (json_out) {
      std::cout << a.json.dump() << "\n";
    } else {
      std::cout << "backup " << a.json.value("backup_id", 0u) << " in " << to << " (on okrd's host): seq "
                << a.json.value("head_seq", uint64_t{0}) << ", head hash " << Str(a.json["head_hash"])
                << ", " << a.json.value("size_bytes", uint64_t{0}) << " bytes in "
                << SecondsSince(started) << " s\n";
    }
    return kExitOk;
  }
  okr::OpenOptions options;
  options.create_if_missing = false;
  // A backup copies the bytes as they are; judging them is verify's job.
  options.verify_on_open = false;
  auto store = okr::EventStore::Open(data_dir, options);
  if (!store.ok()) {
    return Fail("cannot open " + data_dir + ": " + store.status().ToString() + OpenHint(store.status()));
  }
  okr::Result<okr::BackupSummary> b = okr::Status::NotFound("");
  {
    ProgressBar bar("backing up", 0, Interactive(json_out), "bytes");
    b = (*store)->Backup(to, [&](uint64_t done, uint64_t total) {
      bar.set_total(total);
      bar.Update(done);
    });
  }
  if (!b.ok()) return Fail(b.status().message());
  if (json_out) {
    std::cout << BackupJson(*b).dump() << "\n";
  } else {
    std::cout << "backup " << b->backup_id << " in " << to << ": seq " << b->head_seq << ", head hash "
              << okr::ToHex(b->head_hash) << ", " << b->size_bytes << " bytes in " << SecondsSince(started)
              << " s\n";
  }
  return kExitOk;
}

int Restore(const std::string& from, const std::string& data_dir, uint32_t backup_id, bool json_out) {
  auto restored = okr::EventStore::Restore(from, data_dir, backup_id);
  if (!restored.ok()) return Fail(restored.status().message());
  auto store = OpenForReading(data_dir);
  if (!store.ok()) return Fail("cannot open the restored " + data_dir + ": " + store.status().ToString());
  ProgressBar bar("verifying", (*store)->head().seq, Interactive(json_out), "events");
  okr::VerifyReport report = (*store)->Verify([&](uint64_t done, uint64_t total) {
    bar.set_total(total);
    bar.Update(done);
  });
  bar.Finish();
  if (json_out) {
    json out = BackupJson(*restored);
    out["data"] = data_dir;
    out["ok"] = report.ok;
    out["events"] = report.events;
    out["first_bad_seq"] = report.ok ? json(nullptr) : json(report.first_bad_seq);
    if (!report.ok) out["problem"] = report.problem;
    std::cout << out.dump() << "\n";
  } else if (report.ok) {
    std::cout << "restored backup " << restored->backup_id << " into " << data_dir << ": chain verified, "
              << report.events << " events, head hash " << okr::ToHex(report.head_hash) << "\n";
  } else {
    std::cout << "restored backup " << restored->backup_id << " into " << data_dir
              << ", but its chain is BROKEN at seq " << report.first_bad_seq << ": " << report.problem
              << "\n";
  }
  return report.ok ? kExitOk : kExitFailed;
}

int ListBackups(const std::string& from, bool json_out) {
  auto backups = okr::EventStore::ListBackups(from);
  if (!backups.ok()) return Fail(backups.status().message());
  if (json_out) {
    json items = json::array();
    for (const auto& b : *backups) items.push_back(BackupJson(b));
    std::cout << json{{"items", items}}.dump() << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& b : *backups) {
    rows.push_back({std::to_string(b.backup_id), okr::FormatTimeUs(b.created_at_s * 1'000'000).substr(0, 19) + "Z",
                    std::to_string(b.head_seq), std::to_string(b.size_bytes),
                    okr::ToHex(b.head_hash).substr(0, 16)});
  }
  PrintTable({"ID", "CREATED", "SEQ", "BYTES", "HEAD HASH"}, rows);
  return kExitOk;
}

// --- client commands ---

int Answered(const HttpAnswer& a, const std::string& what) {
  if (a.ok()) return kExitOk;
  return Fail(what + ": " + a.Describe());
}

std::string AsOf(const std::optional<uint64_t>& as_of) {
  return as_of ? "&as_of=" + std::to_string(*as_of) : "";
}

struct CheckInOptions {
  std::string key_result;
  double value = 0;
  std::string note, status, measured_at;
  std::optional<double> confidence;
};

int CheckIn(Client& client, const CheckInOptions& o, bool json_out) {
  json body = {{"value", o.value}};
  if (!o.note.empty()) body["note"] = o.note;
  if (!o.status.empty()) body["status"] = o.status;
  if (!o.measured_at.empty()) body["measured_at"] = o.measured_at;
  if (o.confidence) body["confidence"] = *o.confidence;
  std::string path = "/v1/key-results/" + okr::ctl::QueryEncode(o.key_result) + "/check-ins";
  // A retry after a dropped connection must not record the check-in twice.
  std::random_device random;
  char key[40];
  std::snprintf(key, sizeof key, "okrctl-checkin-%08x%08x", random(), random());
  HttpAnswer a = client.Post(path, body, key);
  if (int rc = Answered(a, "POST " + path); rc != kExitOk) return rc;
  if (json_out) {
    std::cout << a.json.dump() << "\n";
    return kExitOk;
  }
  const json& ci = a.json["check_in"];
  std::cout << "check-in " << Str(ci["id"]) << " on " << o.key_result << ": " << Number(a.json["current"])
            << " " << Str(a.json["unit"]) << " of " << Number(a.json["target"]) << ", progress "
            << Percent(a.json["progress"]) << " (seq " << a.json.value("seq", uint64_t{0}) << ")\n";
  return kExitOk;
}

int Objectives(Client& client, const std::string& cycle, const std::string& owner,
               const std::optional<uint64_t>& as_of, bool json_out) {
  json items = json::array();
  uint64_t as_of_seq = 0;
  std::string cursor;
  std::optional<uint64_t> pinned = as_of;
  for (;;) {
    std::string path = "/v1/objectives?limit=1000&cycle=" + okr::ctl::QueryEncode(cycle) + AsOf(pinned);
    if (!owner.empty()) path += "&owner=" + okr::ctl::QueryEncode(owner);
    if (!cursor.empty()) path += "&cursor=" + okr::ctl::QueryEncode(cursor);
    HttpAnswer a = client.Get(path);
    if (int rc = Answered(a, "GET /v1/objectives"); rc != kExitOk) return rc;
    as_of_seq = a.json.value("as_of_seq", uint64_t{0});
    for (const json& o : a.json["items"]) items.push_back(o);
    if (!a.json["next"].is_string()) break;
    cursor = a.json["next"].get<std::string>();
    // Later pages show the same moment as the first.
    pinned = as_of_seq;
  }
  if (json_out) {
    std::cout << json{{"items", items}, {"as_of_seq", as_of_seq}}.dump() << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& o : items) {
    rows.push_back({Str(o["id"]), Str(o["owner"]), Percent(o["progress"]), "", Str(o["title"])});
    for (const json& k : o["key_results"]) {
      std::string value = Number(k["current"]) + " / " + Number(k["target"]);
      if (!Str(k["unit"]).empty()) value += " " + Str(k["unit"]);
      rows.push_back({"  " + Str(k["id"]), Str(k["owner"]), Percent(k["progress"]), value, Str(k["title"])});
    }
  }
  PrintTable({"ID", "OWNER", "PROGRESS", "CURRENT / TARGET", "TITLE"}, rows);
  std::cout << items.size() << " objectives in " << cycle << " as of seq " << as_of_seq << "\n";
  return kExitOk;
}

void PrintCascadeNode(const json& node, int depth) {
  std::string indent(static_cast<size_t>(depth) * 2, ' ');
  const json& unit = node["unit"];
  std::cout << indent << Str(unit["name"]) << " (" << Str(unit["id"]) << ")";
  if (node.contains("progress")) std::cout << "  " << Percent(node["progress"]);
  std::cout << "\n";
  for (const json& o : node["objectives"]) {
    std::cout << indent << "  * " << Percent(o["progress"]) << "  " << Str(o["title"]) << " ["
              << Str(o["id"]) << "]\n";
  }
  for (const json& child : node["children"]) PrintCascadeNode(child, depth + 1);
}

int Cascade(Client& client, const std::string& cycle, const std::string& root,
            const std::optional<uint64_t>& as_of, bool json_out) {
  std::string path = "/v1/cascade?cycle=" + okr::ctl::QueryEncode(cycle) + AsOf(as_of);
  if (!root.empty()) path += "&root=" + okr::ctl::QueryEncode(root);
  HttpAnswer a = client.Get(path);
  if (int rc = Answered(a, "GET /v1/cascade"); rc != kExitOk) return rc;
  if (json_out) {
    std::cout << a.json.dump() << "\n";
    return kExitOk;
  }
  for (const json& node : a.json["nodes"]) PrintCascadeNode(node, 0);
  std::cout << "cycle " << cycle << " as of seq " << a.json.value("as_of_seq", uint64_t{0}) << "\n";
  return kExitOk;
}

int Review(Client& client, const std::string& cycle, const std::string& format,
           const std::optional<uint64_t>& as_of) {
  std::string path = "/v1/cycles/" + okr::ctl::QueryEncode(cycle) + "/review?format=" + format + AsOf(as_of);
  HttpAnswer a = client.Get(path);
  if (int rc = Answered(a, "GET /v1/cycles/" + cycle + "/review"); rc != kExitOk) return rc;
  std::cout << (format == "json" ? a.json.dump(2) + "\n" : a.body);
  return kExitOk;
}

int History(Client& client, const std::string& id, bool json_out) {
  const std::string path = "/v1/history/" + okr::ctl::QueryEncode(id);
  json items = json::array();
  uint64_t as_of_seq = 0;
  std::string after;
  for (;;) {
    HttpAnswer a = client.Get(path + "?limit=1000" + (after.empty() ? "" : "&after=" + after));
    if (int rc = Answered(a, "GET " + path); rc != kExitOk) return rc;
    if (as_of_seq == 0) as_of_seq = a.json.value("as_of_seq", uint64_t{0});
    for (const json& e : a.json["items"]) items.push_back(e);
    if (!a.json["next"].is_string()) break;
    after = a.json["next"].get<std::string>();
  }
  if (json_out) {
    std::cout << json{{"items", items}, {"as_of_seq", as_of_seq}}.dump() << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const json& e : items) {
    rows.push_back({std::to_string(e.value("seq", uint64_t{0})), Str(e["recorded_at"]).substr(0, 19) + "Z",
                    Str(e["actor"]), Str(e["type"]), std::to_string(e.value("version", uint64_t{0})),
                    Str(e["reason"])});
  }
  PrintTable({"SEQ", "RECORDED", "ACTOR", "TYPE", "VERSION", "REASON"}, rows);
  return kExitOk;
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
  app.require_subcommand(1);
  app.footer("docs/IMPORT.md: import and export formats. docs/OPERATIONS.md: backup, restore, verify.");
  std::string dir, server;
  const char* env_server = std::getenv("OKR_SERVER");
  bool json_out = false;

  auto* verify = app.add_subcommand(
      "verify", "Check the whole hash chain: of a data directory, or of a running okrd from the "
                "stored bytes it serves; exit 1 naming the first bad seq");
  verify->add_option("--data", dir, "okrd data directory (opened read-only)");
  verify->add_option("--server", server, "okrd URL; needs an auditor or admin token in OKR_TOKEN");
  verify->add_flag("--json", json_out, "print {ok, events, head_hash, first_bad_seq}");
  bool deep = false;
  verify->add_flag("--deep", deep,
                   "with --data: also compare every stored snapshot with a full replay of the log "
                   "(one replay per snapshot), naming the first difference");

  auto* dump = app.add_subcommand("dump", "Print events as NDJSON, one readable event per line");
  uint64_t after = 0, limit = UINT64_MAX;
  dump->add_option("--data", dir, "okrd data directory")->required();
  dump->add_option("--after", after, "start after this seq (default 0)");
  dump->add_option("--limit", limit, "print at most this many events");

  auto* head = app.add_subcommand("head", "Print the head seq and hash as JSON");
  head->add_option("--data", dir, "okrd data directory")->required();

  ImportOptions import_options;
  auto* import = app.add_subcommand(
      "import",
      "Import OKRs from a CSV (one row per key result) or JSON file, all or nothing: every row is "
      "validated first and a bad row stops the import naming file, line, column and reason");
  import->add_option("file", import_options.file, "the .csv or .json file (docs/IMPORT.md)")->required();
  import->add_option("--data", import_options.data_dir,
                     "data directory to import into, okrd stopped (created when missing)");
  import->add_option("--server", import_options.server,
                     "import through a running okrd instead; needs an admin token in OKR_TOKEN");
  import->add_option("--as", import_options.as,
                     "offline: record the events as actor import:NAME (default: the file's base name)");
  import->add_flag("--dry-run", import_options.dry_run, "validate everything, write nothing");
  import->add_flag("--json", import_options.json, "print the outcome as one JSON object");

  ExportOptions export_options;
  uint64_t export_as_of = 0;
  auto* exp = app.add_subcommand(
      "export", "Export one cycle's objectives and key results as CSV or JSON, the formats import "
                "reads; the same state always gives the same bytes");
  exp->add_option("--cycle", export_options.cycle, "the cycle id")->required();
  exp->add_option("--format", export_options.format, "csv or json")
      ->check(CLI::IsMember({"csv", "json"}))
      ->capture_default_str();
  auto* as_of_opt = exp->add_option("--as-of", export_as_of, "the state after this seq (default: the head)");
  exp->add_option("--data", export_options.data_dir, "okrd data directory (opened read-only)");
  exp->add_option("--server", export_options.server, "okrd URL instead of --data");
  exp->add_option("-o,--output", export_options.output, "write here instead of standard output");

  std::string backup_to;
  auto* backup = app.add_subcommand(
      "backup", "Back the database up with RocksDB's BackupEngine (incremental, checksummed)");
  backup->add_option("--to", backup_to,
                     "backup directory; with --server, a directory under okrd's --backup-root")->required();
  backup->add_option("--data", dir, "okrd data directory, okrd stopped");
  backup->add_option("--server", server, "ask a running okrd to back itself up (admin token in OKR_TOKEN)");
  backup->add_flag("--json", json_out, "print the backup as JSON");

  std::string restore_from;
  uint32_t backup_id = 0;
  auto* restore = app.add_subcommand(
      "restore", "Restore a backup into a new data directory, then verify its chain (exit 1 if broken)");
  restore->add_option("--from", restore_from, "backup directory")->required();
  restore->add_option("--data", dir, "new data directory (must be missing or empty)")->required();
  restore->add_option("--backup-id", backup_id, "which backup (default: the latest)");
  restore->add_flag("--json", json_out, "print the outcome as JSON");

  auto* backups = app.add_subcommand("backups", "List the backups in a backup directory");
  backups->add_option("--from", restore_from, "backup directory")->required();
  backups->add_flag("--json", json_out, "print the list as JSON");

  std::string client_server = env_server ? env_server : "";
  auto add_server = [&](CLI::App* sub) {
    auto* opt = sub->add_option("--server", client_server, "okrd URL (default: $OKR_SERVER)");
    if (!env_server) opt->required();
  };
  std::optional<uint64_t> as_of;
  uint64_t as_of_value = 0;

  CheckInOptions checkin_options;
  double confidence = 0;
  auto* checkin = app.add_subcommand("checkin", "Record a check-in on a key result");
  checkin->add_option("kr", checkin_options.key_result, "key result id")->required();
  checkin->add_option("value", checkin_options.value, "the measured value")->required();
  checkin->add_option("--note", checkin_options.note, "what happened");
  auto* confidence_opt = checkin->add_option("--confidence", confidence, "0..1")->check(CLI::Range(0.0, 1.0));
  checkin->add_option("--status", checkin_options.status, "on_track, at_risk or off_track")
      ->check(CLI::IsMember({"on_track", "at_risk", "off_track"}));
  checkin->add_option("--measured-at", checkin_options.measured_at,
                      "when it was measured (RFC 3339 or YYYY-MM-DD; default now)");
  checkin->add_flag("--json", json_out, "print okrd's answer as JSON");
  add_server(checkin);

  std::string cycle, owner, root;
  auto* objectives = app.add_subcommand("objectives", "List a cycle's objectives with their key results");
  objectives->add_option("--cycle", cycle, "the cycle id")->required();
  objectives->add_option("--owner", owner, "only this unit's");
  auto* objectives_as_of = objectives->add_option("--as-of", as_of_value, "as of this seq");
  objectives->add_flag("--json", json_out, "print {items, as_of_seq}");
  add_server(objectives);

  auto* cascade = app.add_subcommand("cascade", "Show a cycle's cascade: units, their objectives, progress");
  cascade->add_option("--cycle", cycle, "the cycle id")->required();
  cascade->add_option("--root", root, "start at this unit");
  auto* cascade_as_of = cascade->add_option("--as-of", as_of_value, "as of this seq");
  cascade->add_flag("--json", json_out, "print okrd's answer as JSON");
  add_server(cascade);

  std::string review_format = "md";
  auto* review = app.add_subcommand("review", "Print a cycle's end-of-cycle review");
  review->add_option("cycle", cycle, "the cycle id")->required();
  review->add_option("--format", review_format, "md, csv or json")
      ->check(CLI::IsMember({"md", "csv", "json"}))
      ->capture_default_str();
  auto* review_as_of = review->add_option("--as-of", as_of_value, "as of this seq");
  add_server(review);

  std::string history_id;
  auto* history = app.add_subcommand("history", "Every event of one entity (auditor or admin token)");
  history->add_option("id", history_id, "unit, cycle, objective or key result id")->required();
  history->add_flag("--json", json_out, "print okrd's answer as JSON");
  add_server(history);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  auto one_of = [&](const std::string& data, const std::string& url) -> std::optional<int> {
    if (data.empty() == url.empty()) return Usage("give exactly one of --data DIR and --server URL");
    return std::nullopt;
  };

  if (*verify) {
    if (auto rc = one_of(dir, server)) return *rc;
    if (deep && !server.empty()) return Usage("--deep reads the snapshots of a data directory: use --data");
    return server.empty() ? VerifyOffline(dir, json_out, deep) : VerifyServer(server, json_out);
  }
  if (*dump) return Dump(dir, after, limit);
  if (*head) return HeadCmd(dir);
  if (*import) {
    if (auto rc = one_of(import_options.data_dir, import_options.server)) return *rc;
    if (!import_options.server.empty() && !import_options.as.empty()) {
      return Usage("--as is for offline imports: through okrd the events carry the token's actor");
    }
    return Import(import_options);
  }
  if (*exp) {
    if (auto rc = one_of(export_options.data_dir, export_options.server)) return *rc;
    if (*as_of_opt) export_options.as_of = export_as_of;
    return Export(export_options);
  }
  if (*backup) {
    if (auto rc = one_of(dir, server)) return *rc;
    return Backup(dir, server, backup_to, json_out);
  }
  if (*restore) return Restore(restore_from, dir, backup_id, json_out);
  if (*backups) return ListBackups(restore_from, json_out);

  auto client = Connect(client_server);
  if (!client.ok()) return Usage(client.status().message());
  if ((*objectives_as_of && *objectives) || (*cascade_as_of && *cascade) || (*review_as_of && *review)) {
    as_of = as_of_value;
  }
  if (*checkin) {
    if (*confidence_opt) checkin_options.confidence = confidence;
    return CheckIn(**client, checkin_options, json_out);
  }
  if (*objectives) return Objectives(**client, cycle, owner, as_of, json_out);
  if (*cascade) return Cascade(**client, cycle, root, as_of, json_out);
  if (*review) return Review(**client, cycle, review_format, as_of);
  if (*history) return History(**client, history_id, json_out);
  return kExitUsage;
}
