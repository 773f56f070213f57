// okrd: the OKR server. See README.md and docs/API.md.
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "eventstore/base/clock.h"
#include "api/demo.h"
#include "api/log.h"
#include "api/server.h"
#include "eventstore/event_store.h"
#include "projections/service/projector.h"

namespace okr::api {
extern const char kOpenApiJson[];  // docs/openapi.json, embedded at build time
}

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

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
    creds = {{"admin", RandomToken()}, {"editor", RandomToken()}, {"auditor", RandomToken()},
             {"viewer", RandomToken()}};
    nlohmann::json tokens = nlohmann::json::array();
    auto add = [&](const char* actor, const char* role, nlohmann::json units, const char* key) {
      tokens.push_back({{"actor", actor}, {"role", role}, {"units", units},
                        {"token_sha256", okr::ToHex(okr::Sha256(creds[key].get<std::string>()))}});
    };
    add("admin", "admin", nlohmann::json::array(), "admin");
    add("lena.fischer", "editor", {"hr-ops"}, "editor");
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

// The dashboard served at / unless --dashboard says otherwise: the source
// tree's api/dashboard/, when that directory exists.
std::string DefaultDashboardDir() {
#ifdef OKRD_DEFAULT_DASHBOARD_DIR
  std::error_code ec;
  if (std::filesystem::is_directory(OKRD_DEFAULT_DASHBOARD_DIR, ec)) return OKRD_DEFAULT_DASHBOARD_DIR;
#endif
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  // Buffers above 256 KiB (a snapshot being encoded, a large answer) are
  // mapped and go back to the system when freed. glibc otherwise raises
  // this threshold after the first such free and keeps later ones in the
  // heap: resident memory then steps up with every snapshot, for good.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  CLI::App app{"okrd: an event-sourced OKR server. Every change is a hash-chained event in RocksDB."};
  std::string data_dir = "data";
  std::string listen = "127.0.0.1:8080";
  std::string tokens_path;
  std::string backup_root;
  std::string log_format = "text";
  std::string dashboard_dir = DefaultDashboardDir();
  bool private_reads = false;
  bool demo = false;
  bool forensics = false;
  uint64_t snapshot_every = 10'000;
  size_t threads = 16;
  size_t max_threads = okr::api::kMaxConnectionThreads;
  size_t max_connections_per_address = okr::api::kDefaultMaxConnectionsPerAddress;
  app.add_option("--data", data_dir, "Data directory (created when missing)")->capture_default_str();
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0: any free port)")->capture_default_str();
  app.add_option("--tokens", tokens_path,
                 "Tokens file: JSON list of {actor, role, units, token_sha256, subject}, owned by root "
                 "or okrd's user, mode 0600 (or 0640, group okrd), re-read on SIGHUP. "
                 "Without it okrd is read-only");
  app.add_option("--backup-root", backup_root,
                 "Directory POST /v1/admin/backup writes under (created 0700 when missing). "
                 "Without it that route answers 403");
  app.add_flag("--private", private_reads, "Every read needs a token too");
  app.add_option("--snapshot-every", snapshot_every, "Write a snapshot every N events (0: never)")
      ->capture_default_str();
  app.add_option("--threads", threads, "Worker threads serving connections")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--max-threads", max_threads,
                 "Worker threads at most: connections served at once. With all busy, as many more "
                 "wait; beyond them a connection is answered 503 with Retry-After")
      ->check(CLI::Range(size_t{1}, size_t{16384}))
      ->capture_default_str();
  app.add_option("--max-connections-per-address", max_connections_per_address,
                 "Connections open at once from one client address; more are answered 503 with Retry-After")
      ->check(CLI::Range(size_t{1}, size_t{1'000'000}))
      ->capture_default_str();
  app.add_flag("--demo", demo,
               "Fill an empty data directory with the demo company and print tokens and example requests");
  app.add_flag("--read-only-forensics", forensics,
               "Serve DIR as it is, opened read-only and not verified (a copy of a broken log): "
               "reads and audit reads answer, writes answer 403, nothing in DIR is written");
  app.add_option("--log-format", log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("--dashboard", dashboard_dir,
                 "Directory of the dashboard's files, served at / ('' serves none)")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (max_threads < threads) {
    std::cerr << "okrd: --max-threads must be at least --threads\n";
    return kExitUsage;
  }
  if (forensics && demo) {
    std::cerr << "okrd: --demo writes; it cannot go with --read-only-forensics\n";
    return kExitUsage;
  }
  auto colon = listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    try {
      port = std::stoi(listen.substr(colon + 1));
    } catch (...) {
      port = -1;
    }
  }
  if (colon == std::string::npos || port < 0 || port > 65535) {
    std::cerr << "okrd: --listen must be HOST:PORT\n";
    return kExitUsage;
  }
  std::string host = listen.substr(0, colon);

  // Signals go to one waiting thread, never to a worker mid-request.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);  // re-read the tokens file
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  okr::api::LogFormat format =
      log_format == "json" ? okr::api::LogFormat::kJson : okr::api::LogFormat::kText;
  auto log = okr::api::MakeLogger(format);
  okr::api::Metrics metrics;
  auto log_line = [&](spdlog::level::level_enum level, const char* event,
                      const std::vector<std::pair<const char*, nlohmann::json>>& fields) {
    okr::api::LogLine(*log, format, level, event, fields);
  };

  std::error_code ec;
  if (!forensics) std::filesystem::create_directories(data_dir, ec);
  // While the demo writes its story, events are recorded at the story's
  // moments (all in the past); otherwise at the wall clock.
  std::atomic<int64_t> story_clock_us{0};
  auto clock_us = [&story_clock_us]() -> int64_t {
    int64_t story = story_clock_us.load();
    if (story != 0) return story;
    return okr::SystemClockUs();
  };
  okr::OpenOptions open_options;
  open_options.clock_us = clock_us;
  // Forensics: whatever is there, unverified, never written to.
  open_options.read_only = forensics;
  open_options.create_if_missing = !forensics;
  std::atomic<bool> storage_failing{false};
  open_options.on_batch = [&](size_t appends, size_t events, uint64_t head, int64_t write_us,
                              const okr::Status& status) {
    metrics.Batch(appends, events, write_us, status.ok());
    if (status.ok()) {
      storage_failing = false;
      log_line(spdlog::level::info, "append_batch",
               {{"appends", appends}, {"events", events}, {"head_seq", head}, {"write_us", write_us}});
    } else if (!storage_failing.exchange(true)) {
      // Once per outage, not once per request.
      log_line(spdlog::level::err, "append_failed", {{"error", status.ToString()}});
    }
  };
  auto started = std::chrono::steady_clock::now();
  auto store = okr::EventStore::Open(data_dir, open_options);
  if (!store.ok()) {
    log_line(spdlog::level::critical, "refusing_to_start",
             {{"data", data_dir}, {"error", store.status().ToString()}});
    return kExitFailed;
  }
  auto verified_us = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::steady_clock::now() - started).count();
  log_line(forensics ? spdlog::level::warn : spdlog::level::info,
           forensics ? "opened_read_only_unverified" : "chain_verified",
           {{"events", (*store)->head().seq}, {"head_hash", okr::ToHex((*store)->head().hash)},
            {"us", verified_us}});

  okr::ProjectorOptions projector_options;
  projector_options.snapshot_every_events = forensics ? 0 : snapshot_every;
  projector_options.clock_us = clock_us;
  projector_options.on_stuck = [&](uint64_t seq, const okr::Status& why) {
    // Once: okrd keeps serving reads of the state before `seq`.
    log_line(spdlog::level::critical, "projection_stuck",
             {{"seq", seq}, {"error", why.ToString()},
              {"effect", "reads answer the state before this event; writes answer 503"}});
  };
  started = std::chrono::steady_clock::now();
  auto projector = okr::Projector::Open(store->get(), projector_options);
  if (!projector.ok()) {
    log_line(spdlog::level::critical, "refusing_to_start", {{"error", projector.status().ToString()}});
    return kExitFailed;
  }
  log_line(spdlog::level::info, "projection_loaded",
           {{"seq", (*projector)->seq()},
            {"us", std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::steady_clock::now() - started).count()}});

  std::string admin_token, editor_token, auditor_token;
  if (demo) {
    if ((*store)->head().seq == 0) {
      okr::Status s = okr::api::FillDemo(projector->get(), store->get(), (*projector)->NowUs(),
                                         [&](int64_t us) { story_clock_us = us; });
      story_clock_us = 0;
      if (!s.ok()) {
        log_line(spdlog::level::critical, "demo_failed", {{"error", s.ToString()}});
        return kExitFailed;
      }
      log_line(spdlog::level::info, "demo_written", {{"events", (*store)->head().seq}});
    }
    if (tokens_path.empty()) {
      auto path = DemoTokens(data_dir, &admin_token, &editor_token, &auditor_token);
      if (!path) {
        std::cerr << "okrd: cannot write the demo tokens into " << data_dir << "\n";
        return kExitFailed;
      }
      tokens_path = *path;
    }
  }

  std::optional<okr::api::TokenTable> tokens;
  if (!tokens_path.empty()) {
    auto loaded = okr::api::TokenTable::Load(tokens_path);
    if (!loaded.ok()) {
      std::cerr << "okrd: " << loaded.status().message() << "\n";
      return kExitUsage;
    }
    tokens = std::move(loaded.value());
  }

  std::shared_ptr<const okr::api::BackupRoot> backups;
  if (!backup_root.empty() && !forensics) {
    auto opened = okr::api::BackupRoot::Open(backup_root);
    if (!opened.ok()) {
      std::cerr << "okrd: " << opened.status().message() << "\n";
      return kExitUsage;
    }
    backups = *opened;
  }

  okr::api::ServerOptions server_options;
  server_options.backup_root = backups;
  server_options.private_reads = private_reads;
  server_options.refuse_writes = forensics;
  server_options.threads = threads;
  server_options.max_threads = max_threads;
  server_options.max_connections_per_address = max_connections_per_address;
  server_options.openapi_json = okr::api::kOpenApiJson;
  server_options.dashboard_dir = dashboard_dir;
  server_options.log_format = format;
  okr::api::Server server(store->get(), projector->get(), std::move(tokens), server_options,
                          &metrics, log);
  int bound = server.Bind(host, port);
  if (bound < 0) {
    std::cerr << "okrd: cannot listen on " << listen << "\n";
    return kExitFailed;
  }
  std::string base = "http://" + host + ":" + std::to_string(bound);
  std::cout << "okrd listening on " << base << std::endl;
  log_line(spdlog::level::info, "listening", {{"url", base}, {"threads", threads},
                                              {"read_only", tokens_path.empty() || forensics}});
  if (!admin_token.empty()) {
    okr::api::DemoIds ids = okr::api::DemoCycles((*projector)->NowUs());
    std::cout << "\nDemo tokens (also in " << data_dir << "/demo-credentials.json):\n"
              << "  admin:   " << admin_token << "\n"
              << "  editor:  " << editor_token << "  (lena.fischer, HR Operations)\n"
              << "  auditor: " << auditor_token << "\n\n"
              << "Try:\n"
              << "  curl -s '" << base << "/v1/cascade?cycle=" << ids.current_quarter << "'\n"
              << "  curl -s '" << base << "/v1/cycles/" << ids.previous_quarter << "/review?format=md'\n"
              << "  curl -s '" << base << "/v1/lint?cycle=" << ids.current_quarter << "'\n"
              << "  curl -s -X POST " << base << "/v1/key-results/kr-records-migrated/check-ins \\\n"
              << "       -H 'Authorization: Bearer " << editor_token << "' \\\n"
              << "       -H 'Content-Type: application/json' \\\n"
              << "       -d '{\"value\": 80, \"note\": \"Payroll moved over\"}'\n"
              << "  curl -s -H 'Authorization: Bearer " << auditor_token << "' " << base
              << "/v1/audit/verify\n"
              << std::endl;
  }

  // SIGHUP re-reads the tokens file with every check of the start; a file
  // that fails them leaves the table in use as it was.
  auto reload_tokens = [&] {
    if (tokens_path.empty()) {
      log_line(spdlog::level::warn, "tokens_not_reloaded", {{"error", "okrd runs without --tokens"}});
      return;
    }
    auto loaded = okr::api::TokenTable::Load(tokens_path);
    if (!loaded.ok()) {
      log_line(spdlog::level::err, "tokens_reload_refused",
               {{"path", tokens_path}, {"error", loaded.status().message()}, {"kept", "the previous tokens"}});
      return;
    }
    server.ReplaceTokens(std::move(loaded.value()));
    log_line(spdlog::level::info, "tokens_reloaded", {{"path", tokens_path}});
  };
  std::thread waiter([&] {
    int sig = 0;
    while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) reload_tokens();
    log_line(spdlog::level::info, "stopping", {{"signal", sig}});
    server.Stop();
  });
  bool served = server.Serve();
  // Serve() returns after Stop(); if it failed on its own, wake the waiter.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  log_line(spdlog::level::info, "stopped", {{"head_seq", (*store)->head().seq}});
  return served ? kExitOk : kExitFailed;
}
