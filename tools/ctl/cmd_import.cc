// okrctl import: reading the file, planning and validating it in full,
// then writing it offline into a data directory or through a running
// okrd (tools/ctl/import.h does the work; this is the command around it).
#include <cassert>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "eventstore/base/clock.h"
#include "eventstore/chain.h"
#include "eventstore/event_codec.h"
#include "eventstore/keystore.h"
#include "eventstore/sealing.h"
#include "projections/service/projector.h"
#include "projections/service/snapshot.h"
#include "tools/ctl/cmd_common.h"
#include "tools/ctl/import.h"
#include "tools/ctl/progress.h"
#include "tools/ctl/raw_events.h"

namespace okr::ctl::cmd {
namespace {

using nlohmann::json;

// Ids okrd accepts: what --as may name (the actor becomes import:<name>).
constexpr size_t kMaxImportNameChars = 64;

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
  assert(out.size() <= kMaxImportNameChars);
  return out.empty() ? "file" : out;
}

int ReportImportError(const ImportError& e, bool json_out, size_t written) {
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
  if (written == 0) std::cerr << "okrctl: import refused; nothing was written\n";
  return kExitFailed;
}

// A refusal while writing: the commands written before it stay, and
// `what_now` tells the user what that means for this way of importing.
int ReportWriteFailure(const ImportError& e, bool json_out, size_t written, const char* what_now) {
  ReportImportError(e, json_out, written);
  if (written > 0) {
    std::cerr << "okrctl: " << written << " commands were written before the " << what_now << "\n";
  }
  return kExitFailed;
}

// The whole file, refused beyond kMaxImportFileBytes before reading it.
bool ReadFile(const std::string& path, std::string* out, std::string* why) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    *why = "cannot read " + path + ": " + ec.message();
    return false;
  }
  if (size > kMaxImportFileBytes) {
    *why = path + " is larger than " + std::to_string(kMaxImportFileBytes >> 20) + " MiB";
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
  assert(out->size() <= kMaxImportFileBytes);
  return true;
}

void PrintSummaryJson(const ImportPlan& plan, const Validation& v, const ImportWriteResult& w,
                      const std::string& actor, bool dry_run, size_t skipped, double secs) {
  std::cout << json{{"ok", true},
                    {"file", plan.file},
                    {"format", plan.format == ImportFormat::kCsv ? "csv" : "json"},
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
}

void PrintSummary(const ImportPlan& plan, const Validation& v, const ImportWriteResult& w,
                  const std::string& actor, bool dry_run, double secs, bool json_out) {
  size_t skipped = 0;
  for (bool s : v.skip) skipped += s;
  assert(skipped + v.to_write == plan.commands.size());
  if (json_out) return PrintSummaryJson(plan, v, w, actor, dry_run, skipped, secs);
  const char* what = plan.format == ImportFormat::kCsv ? " rows" : " entries";
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

// ValidateImport with a "validating" bar; false with *error.
bool Validate(const ImportPlan& plan, Projection state, const std::string& actor, int64_t now_us,
              const std::function<bool(size_t)>& already_written, bool tty, Validation* validation,
              ImportError* error) {
  ProgressBar bar("validating", plan.commands.size(), tty, "commands");
  if (!ValidateImport(
          plan, std::move(state), actor, now_us, already_written, [&](size_t i) { bar.Update(i); },
          validation, error)) {
    bar.Finish();
    return false;
  }
  return true;
}

// --- through okrd ---

// okrd's state, rebuilt here from its stored events up to `head` with the
// chain checked on the way: what the rows are validated against before
// anything is sent. Errors carry the whole message for the user.
Result<Projection> FoldServerLog(Client& client, uint64_t head, bool tty) {
  Projection state;
  okr::ChainChecker chain(okr::ChainSource::kServed);
  Status applied = Status::Ok();
  ProgressBar bar("reading okrd's log", head, tty, "events");
  Status s = FetchRawEvents(
      client, head,
      [&](uint64_t seq, std::string_view bytes) {
        if (!chain.Add(seq, bytes)) return false;
        auto decoded = DecodedEvent::Decode(bytes);
        applied = decoded.ok() ? state.Apply((*decoded)->event()) : decoded.status();
        return applied.ok();
      },
      [&](uint64_t seq) { bar.Update(seq); });
  if (!s.ok())
    return Status::Conflict(s.message() + " (importing through okrd needs an admin token)");
  if (!chain.report().ok) {
    return Status::Corruption("okrd's log is broken at seq " +
                              std::to_string(chain.report().first_bad_seq) + ": " +
                              chain.report().problem + "; nothing imported");
  }
  if (!applied.ok()) return Status::Corruption("cannot fold okrd's log: " + applied.ToString());
  assert(state.seq() <= head);
  return state;
}

int ImportOnline(const ImportOptions& o, const ImportPlan& plan, SteadyClock::time_point started) {
  assert(!o.server.empty() && o.as.empty());
  const bool tty = Interactive(o.json);
  auto client = Connect(o.server);
  if (!client.ok()) return Usage(client.status().message());
  if (!(*client)->has_token())
    return Usage("set OKR_TOKEN to an admin token to import through okrd");
  HttpAnswer health = (*client)->Get("/healthz");
  if (!health.ok()) return Fail("GET /healthz: " + health.Describe());
  auto state = FoldServerLog(**client, health.json.value("head_seq", uint64_t{0}), tty);
  if (!state.ok()) return Fail(state.status().message());
  Validation validation;
  ImportError error;
  if (!Validate(plan, std::move(state.value()), "import", SystemClockUs(), {}, tty, &validation,
                &error)) {
    return ReportImportError(error, o.json, 0);
  }
  ImportWriteResult written;
  if (!o.dry_run) {
    ProgressBar bar("importing", validation.to_write, tty, "commands");
    auto connect = [&] { return Connect(o.server); };
    if (!WriteOnline(
            plan, validation, connect, kOnlineImportWriters, [&](size_t i) { bar.Update(i); },
            &written, &error)) {
      bar.Finish();
      return ReportWriteFailure(
          error, o.json, written.written,
          "refusal (an import through okrd is not atomic; see docs/IMPORT.md)");
    }
  }
  PrintSummary(plan, validation, written, "", o.dry_run, SecondsSince(started), o.json);
  return kExitOk;
}

// --- offline ---

// The data directory an offline import writes into. Members are
// destroyed projector first, then the store it reads.
struct Target {
  std::string dir;
  bool existed = false;       // before this run
  bool keys_existed = false;  // the key store, before this run
  // The key store beside `dir`: persons' names and emails are sealed as
  // okrd seals them (SPEC §10). Declared first: the store's writer uses it.
  std::unique_ptr<KeyStore> keys;
  std::unique_ptr<KeyRing> ring;
  std::unique_ptr<EventStore> store;
  std::unique_ptr<Projector> projector;

  // Nothing was written: a directory this run created goes again.
  void Discard() {
    InstallKeyRing(nullptr, nullptr);
    projector.reset();
    store.reset();
    ring.reset();
    keys.reset();
    std::error_code ec;
    if (!existed) std::filesystem::remove_all(dir, ec);
    if (!keys_existed) std::filesystem::remove_all(DefaultKeyStorePath(dir), ec);
  }
};

// Opens (creating when missing) `dir` for the import; an exit code on failure.
int OpenTarget(const std::string& dir, Target* t) {
  t->dir = dir;
  std::error_code ec;
  t->existed = std::filesystem::exists(dir, ec);
  t->keys_existed = std::filesystem::exists(DefaultKeyStorePath(dir), ec);
  auto keys = KeyStore::Open(DefaultKeyStorePath(dir));
  if (!keys.ok()) return Fail(keys.status().message() + OpenHint(keys.status()));
  t->keys = std::move(keys.value());
  auto ring = KeyRing::Open(t->keys.get());
  if (!ring.ok()) return Fail(ring.status().message());
  t->ring = std::move(ring.value());
  OpenOptions open;
  open.key_ring = t->ring.get();
  auto store = EventStore::Open(dir, open);
  if (!store.ok())
    return Fail("cannot open " + dir + ": " + store.status().ToString() + OpenHint(store.status()));
  t->store = std::move(store.value());
  InstallKeyRing(t->ring.get(), t->store.get());
  // No snapshots while importing: each encodes the whole projection, and
  // one every 10 000 events makes a large import quadratic. One snapshot
  // is written at the end instead, so okrd starts from it.
  ProjectorOptions options;
  options.snapshot_every_events = 0;
  auto projector = Projector::Open(t->store.get(), options);
  if (!projector.ok()) return Fail("cannot load " + dir + ": " + projector.status().ToString());
  t->projector = std::move(projector.value());
  return kExitOk;
}

// Writes a snapshot of the projection at the head, tied to the log by the
// hash of its last event (as okrd's own snapshots are).
Status SnapshotAtHead(EventStore* store, Projector* projector) {
  OKR_RETURN_IF_ERROR(projector->CatchUp());
  std::vector<std::string> parts;
  uint64_t seq = 0;
  Status failed = Status::Ok();
  projector->Read([&](const Projection& p) {
    seq = p.seq();
    assert(seq > 0);  // called only after something was written
    auto last = store->Read(seq - 1, 1);
    if (!last.ok() || last->size() != 1) {
      failed =
          last.ok() ? Status::NotFound("no event at seq " + std::to_string(seq)) : last.status();
      return;
    }
    parts = SnapshotCodec::Encode(p, Sha256(last->front().bytes));
  });
  OKR_RETURN_IF_ERROR(failed);
  return store->PutSnapshot(seq, parts);
}

// Writes what validation kept, then the snapshot okrd will start from.
int WriteOfflineImport(const ImportOptions& o, const ImportPlan& plan, const Validation& validation,
                       const std::string& actor, Target* t, ImportWriteResult* written) {
  ImportError error;
  {
    ProgressBar bar("importing", validation.to_write, Interactive(o.json), "commands");
    if (!WriteOffline(
            plan, validation, t->projector.get(), actor, kOfflineImportWriters,
            [&](size_t i) { bar.Update(i); }, written, &error)) {
      bar.Finish();
      return ReportWriteFailure(error, o.json, written->written,
                                "failure; run the same import again to resume after them");
    }
  }
  assert(written->written <= validation.to_write);
  if (written->written > 0) {
    if (Status s = SnapshotAtHead(t->store.get(), t->projector.get()); !s.ok()) {
      std::cerr << "okrctl: imported, but no snapshot was written (okrd replays the log instead): "
                << s.ToString() << "\n";
    }
  }
  return kExitOk;
}

int ImportOffline(const ImportOptions& o, const ImportPlan& plan, SteadyClock::time_point started) {
  assert(!o.data_dir.empty() && o.server.empty());
  std::string name = ImportName(o);
  if (!ValidId(name)) return Usage(std::string("--as must be ") + kIdRule);
  const std::string actor = "import:" + name;
  Target t;
  if (int rc = OpenTarget(o.data_dir, &t); rc != kExitOk) return rc;
  Projection state = t.projector->Read([](const Projection& p) { return p; });
  EventStore* store = t.store.get();
  auto already_written = [&](size_t i) {
    std::string key = plan.IdempotencyKey(i);
    auto seen = store->FindIdempotent(key, Sha256(key));
    return seen.ok() && seen->has_value();
  };
  Validation validation;
  ImportError error;
  if (!Validate(plan, std::move(state), actor, t.projector->NowUs(), already_written,
                Interactive(o.json), &validation, &error)) {
    t.Discard();
    return ReportImportError(error, o.json, 0);
  }
  ImportWriteResult written;
  if (o.dry_run) {
    PrintSummary(plan, validation, written, actor, true, SecondsSince(started), o.json);
    t.Discard();
    return kExitOk;
  }
  if (int rc = WriteOfflineImport(o, plan, validation, actor, &t, &written); rc != kExitOk)
    return rc;
  PrintSummary(plan, validation, written, actor, false, SecondsSince(started), o.json);
  return kExitOk;
}

}  // namespace

int Import(const ImportOptions& o) {
  // main checked: exactly one of --data and --server.
  assert(o.data_dir.empty() != o.server.empty());
  auto started = SteadyClock::now();
  std::string text, why;
  if (!ReadFile(o.file, &text, &why)) return Fail(why);
  ImportPlan plan;
  ImportError error;
  if (!PlanImport(o.file, std::move(text), &plan, &error))
    return ReportImportError(error, o.json, 0);
  return o.server.empty() ? ImportOffline(o, plan, started) : ImportOnline(o, plan, started);
}

}  // namespace okr::ctl::cmd
