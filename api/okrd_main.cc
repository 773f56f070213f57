// okrd: the OKR server. See README.md and docs/API.md.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cassert>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "api/demo.h"
#include "api/heap.h"
#include "api/log.h"
#include "api/log_key.h"
#include "api/okrd_flags.h"
#include "api/okrd_live.h"
#include "api/okrd_systemd.h"
#include "api/replica.h"
#include "api/server.h"
#include "eventstore/base/clock.h"
#include "eventstore/base/thread_name.h"
#include "eventstore/event_store.h"
#include "eventstore/keystore.h"
#include "eventstore/sealing.h"
#include "projections/service/projector.h"

namespace okr::api {
extern const char kOpenApiJson[];  // docs/openapi.json, embedded at build time
}

namespace {

using okr::api::Flags;
using okr::api::kExitFailed;
using okr::api::kExitOk;
using okr::api::kExitUsage;

std::string RandomToken() {
  unsigned char bytes[24];
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  urandom.read(reinterpret_cast<char*>(bytes), sizeof bytes);
  std::string out = "okr_";
  static constexpr char kDigits[] = "0123456789abcdef";
  for (unsigned char b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

bool WritePrivateFile(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = (::fsync(fd) == 0) && ok;
  ::close(fd);
  return ok;
}

// The demo's tokens: created once beside the data (tokens file holds only
// hashes; the readable credentials file exists so the demo can print them
// again on the next start). Both are 0600.
std::optional<std::string> DemoTokens(const std::string& data_dir, std::string* admin_token,
                                      std::string* editor_token, std::string* auditor_token) {
  std::string tokens_path = data_dir + "/demo-tokens.json";
  std::string creds_path = data_dir + "/demo-credentials.json";
  nlohmann::json creds;
  if (std::ifstream in(creds_path); in) {
    creds = nlohmann::json::parse(in, nullptr, false);
  }
  if (!creds.is_object() || !creds.contains("admin")) {
    creds = {{"admin", RandomToken()},
             {"editor", RandomToken()},
             {"auditor", RandomToken()},
             {"viewer", RandomToken()}};
    nlohmann::json tokens = nlohmann::json::array();
    // A person's entry names a pseudonymous actor and the person unit it
    // is (SPEC §10): what it writes is sealed under that person's key.
    auto add = [&](const char* actor, const char* role, nlohmann::json units, const char* key,
                   const char* subject = nullptr) {
      tokens.push_back({{"actor", actor},
                        {"role", role},
                        {"units", units},
                        {"token_sha256", okr::ToHex(okr::Sha256(creds[key].get<std::string>()))}});
      if (subject != nullptr) tokens.back()["subject"] = subject;
    };
    add("admin", "admin", nlohmann::json::array(), "admin");
    add("editor-5190", "editor", {"hr-ops"}, "editor", "p-5190");  // Lena Fischer (api/demo.cc)
    add("auditor", "auditor", nlohmann::json::array(), "auditor");
    add("viewer", "viewer", nlohmann::json::array(), "viewer");
    if (!WritePrivateFile(creds_path, creds.dump(2) + "\n") ||
        !WritePrivateFile(tokens_path, tokens.dump(2) + "\n")) {
      return std::nullopt;
    }
  }
  *admin_token = creds["admin"].get<std::string>();
  *editor_token = creds["editor"].get<std::string>();
  *auditor_token = creds["auditor"].get<std::string>();
  return tokens_path;
}

// Signals go to one waiting thread, never to a worker mid-request: blocks
// them in this thread (and so in every thread started after) and returns
// the set the waiter takes them from.
sigset_t BlockSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);  // re-read the tokens file
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return signals;
}

// What every step shares: the log, the metrics, and the clock events are
// recorded by. Lives in main for the whole run; thread-safe.
struct Runtime {
  explicit Runtime(okr::api::LogFormat f) : format(f), logger(okr::api::MakeLogger(f)) {}

  void Log(spdlog::level::level_enum level, const char* event,
           const std::vector<std::pair<const char*, nlohmann::json>>& fields) {
    okr::api::LogLine(*logger, format, level, event, fields);
  }
  // While the demo writes its story, events are recorded at the story's
  // moments (all in the past); otherwise at the wall clock.
  int64_t NowUs() const {
    int64_t story = story_clock_us.load();
    return story != 0 ? story : okr::SystemClockUs();
  }

  const okr::api::LogFormat format;
  std::shared_ptr<spdlog::logger> logger;
  okr::api::Metrics metrics;
  std::atomic<int64_t> story_clock_us{0};
  std::atomic<bool> storage_failing{false};
};

int64_t MicrosSince(std::chrono::steady_clock::time_point started) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                               started)
      .count();
}

// Opens (and, unless forensics, verifies) the log; null after logging why not.
std::unique_ptr<okr::EventStore> OpenStore(const Flags& f, Runtime& rt,
                                           std::shared_ptr<const okr::SigningKey> key,
                                           okr::KeyRing* ring) {
  std::error_code ec;
  if (!f.forensics) std::filesystem::create_directories(f.data_dir, ec);
  okr::OpenOptions options;
  options.clock_us = [&rt] { return rt.NowUs(); };
  // Forensics: whatever is there, unverified, never written to.
  options.read_only = f.forensics;
  options.create_if_missing = !f.forensics;
  // The stored checkpoint is checked with it: the open then re-reads only
  // the events after it.
  options.signing_key = std::move(key);
  // A replica stores the primary's sealed bytes as they are, and erases
  // the keys its copied erasures name.
  options.key_ring = ring;
  options.on_batch = [&rt](size_t appends, size_t events, uint64_t head, int64_t write_us,
                           const okr::Status& status) {
    rt.metrics.Batch(appends, events, write_us, status.ok());
    if (status.ok()) {
      rt.storage_failing = false;
      // Debug: a write on the writer's path per batch; the metrics count them.
      rt.Log(
          spdlog::level::debug, "append_batch",
          {{"appends", appends}, {"events", events}, {"head_seq", head}, {"write_us", write_us}});
    } else if (!rt.storage_failing.exchange(true)) {
      // Once per outage, not once per request.
      rt.Log(spdlog::level::err, "append_failed", {{"error", status.ToString()}});
    }
  };
  // Once per log written before the tree existed (docs/OPERATIONS.md).
  options.on_tree_progress = [&rt](uint64_t done, uint64_t total) {
    rt.Log(spdlog::level::info, "tree_building", {{"events_done", done}, {"events", total}});
  };
  auto started = std::chrono::steady_clock::now();
  auto store = okr::EventStore::Open(f.data_dir, options);
  if (!store.ok()) {
    rt.Log(spdlog::level::critical, "refusing_to_start",
           {{"data", f.data_dir}, {"error", store.status().ToString()}});
    return nullptr;
  }
  rt.Log(f.forensics ? spdlog::level::warn : spdlog::level::info,
         f.forensics ? "opened_read_only_unverified" : "chain_verified",
         {{"events", (*store)->head().seq},
          {"head_hash", okr::ToHex((*store)->head().hash)},
          // All of them, or only those after the stored checkpoint.
          {"events_checked", (*store)->BackgroundCheck().open_checked},
          {"us", MicrosSince(started)}});
  return std::move(store.value());
}

// Ties the signing key to the log (SPEC §7) and hands it to the store: the
// key file must be the one the log.signing_key event records, or, when the
// log records none yet, is created (if missing) and recorded now. A new
// demo log records its key at the story's start, so the story's events
// keep their past times (recordedAt never decreases). Forensics neither
// needs the key nor writes: it uses the key only when it is the recorded
// one. An exit code when okrd must not go on.
std::optional<int> BindKey(const Flags& f, Runtime& rt, okr::EventStore* store,
                           std::shared_ptr<const okr::SigningKey> key, okr::api::LogKey* bound) {
  if (f.replica()) return std::nullopt;  // the primary's key, copied with its log
  if (f.forensics) {
    auto recorded = okr::api::FindRecordedKey(*store);
    if (key && recorded.ok() && *recorded &&
        key->public_key() == (*recorded)->verifier.public_key) {
      *bound = {std::move(key), (*recorded)->verifier.name, (*recorded)->seq, false};
    }
    return std::nullopt;
  }
  auto fills = okr::api::DemoFills(*store);
  if (f.demo && fills.ok() && *fills) rt.story_clock_us = okr::api::DemoStartUs(rt.NowUs());
  auto result = okr::api::BindSigningKey(store, std::move(key), f.signing_key_path, f.origin);
  rt.story_clock_us = 0;
  if (!result.ok()) {
    rt.Log(spdlog::level::critical, "refusing_to_start", {{"error", result.status().ToString()}});
    return kExitFailed;
  }
  *bound = std::move(result.value());
  if (okr::Status s = store->SetSigningKey(bound->key, bound->origin); !s.ok()) {
    rt.Log(spdlog::level::critical, "refusing_to_start", {{"error", s.ToString()}});
    return kExitFailed;
  }
  rt.Log(spdlog::level::info, bound->recorded_now ? "signing_key_recorded" : "signing_key_checked",
         {{"vkey", bound->key->Verifier(bound->origin).vkey()},
          {"seq", bound->recorded_seq},
          {"key_file", f.signing_key_path}});
  return std::nullopt;
}

// Loads the projection (from a snapshot and the log after it); null after
// logging why not.
// Then every person it records as erased is erased in `ring` (SPEC §10).
std::unique_ptr<okr::Projector> OpenProjector(okr::EventStore* store, const Flags& f, Runtime& rt,
                                              okr::KeyRing* ring) {
  assert(store != nullptr);
  okr::ProjectorOptions options;
  options.snapshot_every_events = f.forensics ? 0 : f.snapshot_every;
  options.clock_us = [&rt] { return rt.NowUs(); };
  options.after_snapshot = okr::api::ReturnFreePages;
  options.on_stuck = [&rt](uint64_t seq, const okr::Status& why) {
    // Once: okrd keeps serving reads of the state before `seq`.
    rt.Log(spdlog::level::critical, "projection_stuck",
           {{"seq", seq},
            {"error", why.ToString()},
            {"effect", "reads answer the state before this event; writes answer 503"}});
  };
  auto started = std::chrono::steady_clock::now();
  auto projector = okr::Projector::Open(store, options);
  if (!projector.ok()) {
    rt.Log(spdlog::level::critical, "refusing_to_start",
           {{"error", projector.status().ToString()}});
    return nullptr;
  }
  rt.Log(spdlog::level::info, "projection_loaded",
         {{"seq", (*projector)->seq()}, {"us", MicrosSince(started)}});
  okr::api::EraseWhatTheLogErased(f.forensics, projector->get(), ring);
  return std::move(projector.value());
}

// The demo's tokens, printed once okrd listens.
struct DemoTokensText {
  std::string admin, editor, auditor;
};

// --demo: writes the demo company into an empty log and, without
// --tokens, makes (or reuses) the demo's tokens. An exit code on failure.
std::optional<int> PrepareDemo(Flags* f, Runtime& rt, okr::EventStore* store,
                               okr::Projector* projector, DemoTokensText* tokens) {
  assert(f->demo && !f->forensics);
  auto fills = okr::api::DemoFills(*store);
  if (!fills.ok()) {
    rt.Log(spdlog::level::critical, "demo_failed", {{"error", fills.status().ToString()}});
    return kExitFailed;
  }
  if (*fills) {
    okr::Status s = okr::api::FillDemo(projector, store, projector->NowUs(),
                                       [&rt](int64_t us) { rt.story_clock_us = us; });
    rt.story_clock_us = 0;
    if (!s.ok()) {
      rt.Log(spdlog::level::critical, "demo_failed", {{"error", s.ToString()}});
      return kExitFailed;
    }
    rt.Log(spdlog::level::info, "demo_written", {{"events", store->head().seq}});
  }
  if (f->tokens_path.empty()) {
    auto path = DemoTokens(f->data_dir, &tokens->admin, &tokens->editor, &tokens->auditor);
    if (!path) {
      std::cerr << "okrd: cannot write the demo tokens into " << f->data_dir << "\n";
      return kExitFailed;
    }
    f->tokens_path = *path;
  }
  return std::nullopt;
}

// The server's options from the flags: the tokens file and the backup
// root are opened here, so a bad one stops okrd before it listens.
std::optional<int> MakeServerOptions(const Flags& f, okr::api::LogFormat format,
                                     std::optional<okr::api::TokenTable>* tokens,
                                     okr::api::ServerOptions* options) {
  if (!f.tokens_path.empty()) {
    auto loaded = okr::api::TokenTable::Load(f.tokens_path);
    if (!loaded.ok()) {
      std::cerr << "okrd: " << loaded.status().message() << "\n";
      return kExitUsage;
    }
    *tokens = std::move(loaded.value());
  }
  if (!f.backup_root.empty() && !f.forensics) {
    auto opened = okr::api::BackupRoot::Open(f.backup_root);
    if (!opened.ok()) {
      std::cerr << "okrd: " << opened.status().message() << "\n";
      return kExitUsage;
    }
    options->backup_root = *opened;
  }
  options->private_reads = f.private_reads;
  options->refuse_writes = f.forensics;
  options->threads = f.threads;
  options->max_threads = f.max_threads;
  options->max_connections_per_address = f.max_connections_per_address;
  options->streams = okr::api::ToStreamOptions(f.streams);
  options->openapi_json = okr::api::kOpenApiJson;
  options->dashboard_dir = f.dashboard_dir;
  options->data_dir = f.data_dir;
  options->log_format = format;
  return std::nullopt;
}

void PrintDemoHelp(const std::string& base, const std::string& data_dir, const DemoTokensText& t,
                   int64_t now_us) {
  okr::api::DemoIds ids = okr::api::DemoCycles(now_us);
  std::cout << "\nDemo tokens (also in " << data_dir << "/demo-credentials.json):\n"
            << "  admin:   " << t.admin << "\n"
            << "  editor:  " << t.editor << "  (editor-5190, the person p-5190 in HR Operations)\n"
            << "  auditor: " << t.auditor << "\n\n"
            << "Try:\n"
            << "  curl -s '" << base << "/v1/cascade?cycle=" << ids.current_quarter << "'\n"
            << "  curl -s '" << base << "/v1/cycles/" << ids.previous_quarter
            << "/review?format=md'\n"
            << "  curl -s '" << base << "/v1/lint?cycle=" << ids.current_quarter << "'\n"
            << "  curl -s -X POST " << base << "/v1/key-results/kr-records-migrated/check-ins \\\n"
            << "       -H 'Authorization: Bearer " << t.editor << "' \\\n"
            << "       -H 'Content-Type: application/json' \\\n"
            << "       -d '{\"value\": 80, \"note\": \"Payroll moved over\"}'\n"
            << "  curl -s -H 'Authorization: Bearer " << t.auditor << "' " << base
            << "/v1/audit/verify\n"
            << std::endl;
}

// SIGHUP re-reads the tokens file with every check of the start; a file
// that fails them leaves the table in use as it was.
void ReloadTokens(const std::string& tokens_path, okr::api::Server& server, Runtime& rt) {
  if (tokens_path.empty()) {
    rt.Log(spdlog::level::warn, "tokens_not_reloaded", {{"error", "okrd runs without --tokens"}});
    return;
  }
  auto loaded = okr::api::TokenTable::Load(tokens_path);
  if (!loaded.ok()) {
    rt.Log(spdlog::level::err, "tokens_reload_refused",
           {{"path", tokens_path},
            {"error", loaded.status().message()},
            {"kept", "the previous tokens"}});
    return;
  }
  server.ReplaceTokens(std::move(loaded.value()));
  rt.Log(spdlog::level::info, "tokens_reloaded", {{"path", tokens_path}});
}

// The key store (SPEC §10): the subjects' keys and the webhooks' secrets,
// outside the data directory. Opened before the log, whose writer seals
// with its keys. An exit code on failure.
struct Keys {
  std::unique_ptr<okr::KeyStore> store;
  std::unique_ptr<okr::KeyRing> ring;
};
// Forensics opens it read-only, and goes on without one.
std::optional<int> OpenKeys(const Flags& f, Runtime& rt, Keys* keys) {
  const std::string dir = okr::api::KeyStoreDir(f.webhooks, f.data_dir);
  auto store = okr::KeyStore::Open(dir, /*read_only=*/f.forensics);
  if (f.forensics && store.status().code() == okr::Status::Code::kNotFound) {
    rt.Log(spdlog::level::warn, "no_key_store",
           {{"keystore", dir}, {"effect", "sealed fields read as erased"}});
    return std::nullopt;
  }
  okr::Result<std::unique_ptr<okr::KeyRing>> ring =
      store.ok() ? okr::KeyRing::Open(store->get(), /*read_only=*/f.forensics)
                 : okr::Result<std::unique_ptr<okr::KeyRing>>(store.status());
  if (!ring.ok()) {
    rt.Log(spdlog::level::critical, "refusing_to_start",
           {{"keystore", dir}, {"error", ring.status().ToString()}});
    return kExitFailed;
  }
  keys->store = std::move(store.value());
  keys->ring = std::move(ring.value());
  return std::nullopt;
}

// The log is the authority on erasures: a subject it records as erased
// loses its key again, whatever backup of the key store is in place. Then
// the readers reveal through the ring. An exit code on failure.
std::optional<int> BindKeyRing(const Flags& f, Runtime& rt, okr::EventStore* store,
                               okr::KeyRing* ring) {
  if (ring == nullptr) return std::nullopt;
  // Forensics writes nothing: the ring forgets those keys, the store keeps them.
  std::vector<std::string> erased_again;
  if (okr::Status s = okr::EnforceErasures(*store, ring, &erased_again, !f.forensics); !s.ok()) {
    rt.Log(spdlog::level::critical, "refusing_to_start", {{"error", s.ToString()}});
    return kExitFailed;
  }
  for (const auto& subject : erased_again) {
    rt.Log(spdlog::level::warn, "subject_key_erased_again",
           {{"subject", subject}, {"why", "the log records its erasure; the key store did not"}});
  }
  okr::InstallKeyRing(ring, store);
  rt.Log(spdlog::level::info, "key_ring_open", {{"subjects", ring->size()}});
  return std::nullopt;
}

// The key store, then the log (whose writer seals with its keys), then the
// log's erasures enforced on the keys; null after logging why not.
std::unique_ptr<okr::EventStore> OpenLogWithKeys(const Flags& f, Runtime& rt,
                                                 std::shared_ptr<const okr::SigningKey> key,
                                                 Keys* keys) {
  if (OpenKeys(f, rt, keys)) return nullptr;
  std::unique_ptr<okr::EventStore> store = OpenStore(f, rt, std::move(key), keys->ring.get());
  if (!store || BindKeyRing(f, rt, store.get(), keys->ring.get())) return nullptr;
  return store;
}

// Starts delivering webhooks (not under forensics, which writes nothing,
// nor on a replica). An exit code on failure.
std::optional<int> StartHooks(const Flags& f, Runtime& rt, okr::EventStore* store,
                              okr::Projector* projector, okr::KeyStore* keys,
                              std::unique_ptr<okr::webhooks::Webhooks>* hooks,
                              okr::api::ServerOptions* options) {
  if (f.forensics || f.replica()) return std::nullopt;
  auto log = [&rt](int level, const char* event,
                   const std::vector<std::pair<const char*, nlohmann::json>>& fields) {
    rt.Log(static_cast<spdlog::level::level_enum>(level), event, fields);
  };
  auto started = okr::api::StartWebhooks(f.webhooks, store, projector, keys, log);
  if (!started.ok()) {
    rt.Log(spdlog::level::critical, "refusing_to_start", {{"error", started.status().ToString()}});
    return kExitFailed;
  }
  *hooks = std::move(started.value());
  options->webhooks = hooks->get();
  return std::nullopt;
}

// The signing key file, read before the store opens (null when missing).
// A replica has none: it signs nothing. An exit code on failure.
std::optional<int> LoadKey(const Flags& f, Runtime& rt,
                           std::shared_ptr<const okr::SigningKey>* loaded) {
  if (f.replica()) return std::nullopt;
  auto key = okr::api::LoadSigningKey(f.signing_key_path);
  if (!key.ok() && !f.forensics) {
    rt.Log(spdlog::level::critical, "refusing_to_start", {{"error", key.status().ToString()}});
    return kExitFailed;
  }
  if (key.ok()) *loaded = *key;
  return std::nullopt;
}

// --replica-of: copies the primary's log from this one's head on a thread
// of its own; each change of its connection reaches okrd's log. Null on a
// primary.
std::unique_ptr<okr::api::ReplicaFollower> StartReplica(const Flags& f, Runtime& rt,
                                                        okr::EventStore* store,
                                                        okr::KeyRing* ring) {
  if (!f.replica()) return nullptr;
  using State = okr::api::ReplicaFollower::State;
  okr::api::ReplicaFollower::Options options;
  options.primary = f.replica_of;
  options.token = f.replica_token;
  options.log_key = f.log_verifier;
  options.key_ring = ring;
  options.on_change = [&rt, store, primary = f.replica_of](const State& s) {
    if (s.diverged) {
      rt.Log(spdlog::level::critical, "replica_diverged",
             {{"primary", primary},
              {"head_seq", store->head().seq},
              {"error", s.problem},
              {"effect", "following stopped; reads answer this replica's last good state"}});
    } else if (s.connected) {
      rt.Log(spdlog::level::info, "replica_connected",
             {{"primary", primary}, {"primary_head_seq", s.primary_head}});
    } else {
      rt.Log(spdlog::level::warn, "replica_disconnected",
             {{"primary", primary}, {"error", s.problem}, {"effect", "retrying with backoff"}});
    }
  };
  rt.Log(spdlog::level::info, "replica_following",
         {{"primary", f.replica_of}, {"head_seq", store->head().seq}});
  return std::make_unique<okr::api::ReplicaFollower>(store, std::move(options));
}

// Serves until SIGINT or SIGTERM (SIGHUP reloads the tokens); true when
// the server stopped because it was asked to.
bool ServeUntilSignalled(okr::api::Server& server, const sigset_t& signals,
                         const std::string& tokens_path, Runtime& rt,
                         okr::api::ServiceManager& service) {
  std::thread waiter = okr::NamedThread("okr:signals", [&] {
    int sig = 0;
    while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) ReloadTokens(tokens_path, server, rt);
    rt.Log(spdlog::level::info, "stopping", {{"signal", sig}});
    service.Stopping();
    server.Stop();
  });
  bool served = server.Serve();
  // Serve() returns after Stop(); if it failed on its own, wake the waiter.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  return served;
}

}  // namespace

int main(int argc, char** argv) {
  okr::api::SetHeapPolicy();
  Flags flags;
  if (auto rc = okr::api::ParseFlags(argc, argv, &flags)) return *rc;
  const sigset_t signals = BlockSignals();
  Runtime rt(flags.log_format == "json" ? okr::api::LogFormat::kJson : okr::api::LogFormat::kText);

  std::shared_ptr<const okr::SigningKey> loaded_key;
  if (auto rc = LoadKey(flags, rt, &loaded_key)) return *rc;
  Keys keys;  // outlives the store, whose writer seals with it
  std::unique_ptr<okr::EventStore> store = OpenLogWithKeys(flags, rt, loaded_key, &keys);
  if (!store) return kExitFailed;
  okr::api::LogKey log_key;
  if (auto rc = BindKey(flags, rt, store.get(), std::move(loaded_key), &log_key)) return *rc;
  std::unique_ptr<okr::Projector> projector;
  {
    okr::api::HeapForLoad heap(store->head().seq);
    projector = OpenProjector(store.get(), flags, rt, keys.ring.get());
  }
  if (!projector) return kExitFailed;
  DemoTokensText demo_tokens;
  if (flags.demo) {
    if (auto rc = PrepareDemo(&flags, rt, store.get(), projector.get(), &demo_tokens)) return *rc;
  }
  std::optional<okr::api::TokenTable> tokens;
  okr::api::ServerOptions server_options;
  if (auto rc = MakeServerOptions(flags, rt.format, &tokens, &server_options)) return *rc;
  server_options.signing_key = log_key.key;
  server_options.origin = log_key.origin;
  server_options.key_ring = keys.ring.get();
  // Stopped before the projector and store go.
  std::unique_ptr<okr::webhooks::Webhooks> hooks;
  if (auto rc = StartHooks(flags, rt, store.get(), projector.get(), keys.store.get(), &hooks,
                           &server_options))
    return *rc;
  // Stopped after the server, before the projector and store go.
  std::unique_ptr<okr::api::ReplicaFollower> follower =
      StartReplica(flags, rt, store.get(), keys.ring.get());
  server_options.replica = follower.get();

  okr::api::Server server(store.get(), projector.get(), std::move(tokens), server_options,
                          &rt.metrics, rt.logger);
  int bound = server.Bind(flags.host, flags.port);
  if (bound < 0) {
    std::cerr << "okrd: cannot listen on " << flags.listen << "\n";
    return kExitFailed;
  }
  std::string base = "http://" + flags.host + ":" + std::to_string(bound);
  std::cout << "okrd listening on " << base << std::endl;
  rt.Log(spdlog::level::info, "listening",
         {{"url", base},
          {"threads", flags.threads},
          {"read_only", flags.tokens_path.empty() || flags.forensics || flags.replica()}});
  if (!demo_tokens.admin.empty())
    PrintDemoHelp(base, flags.data_dir, demo_tokens, projector->NowUs());
  // Under systemd (Type=notify): ready now that connections are taken,
  // and alive while okrd answers on its own address.
  okr::api::ServiceManager service;
  service.Ready("serving " + base);
  service.StartWatchdog(okr::api::HealthzProbe(flags.host, bound), [&rt](int64_t silent_ms) {
    rt.Log(spdlog::level::warn, "watchdog_probe_unanswered",
           {{"silent_ms", silent_ms},
            {"effect", "systemd restarts okrd when it stays silent for WatchdogSec"}});
  });

  bool served = ServeUntilSignalled(server, signals, flags.tokens_path, rt, service);
  if (hooks) hooks->Stop();
  rt.Log(spdlog::level::info, "stopped", {{"head_seq", store->head().seq}});
  return served ? kExitOk : kExitFailed;
}
