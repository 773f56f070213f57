// okrctl: offline tools for an okrd data directory.
//
//   okrctl verify --data DIR   full chain check; exit 1 and the first bad seq when broken
//   okrctl dump   --data DIR   every event as one JSON line (NDJSON)
//   okrctl head   --data DIR   head seq and hash
//
// Exit codes: 0 ok, 1 a check failed (or the log cannot be read), 2 usage.
// Opens the log read-only, so it works on a broken log and beside nothing else.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "eventstore/event_json.h"
#include "eventstore/event_store.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

okr::Result<std::unique_ptr<okr::EventStore>> OpenForReading(const std::string& dir) {
  okr::OpenOptions options;
  options.read_only = true;
  options.create_if_missing = false;
  return okr::EventStore::Open(dir, options);
}

int Verify(const std::string& dir, bool json) {
  auto store = OpenForReading(dir);
  if (!store.ok()) {
    std::cerr << "okrctl: cannot open " << dir << ": " << store.status().ToString() << "\n";
    return kExitFailed;
  }
  bool tty = isatty(STDERR_FILENO) && !json;
  auto started = std::chrono::steady_clock::now();
  okr::VerifyReport report = (*store)->Verify([&](uint64_t done, uint64_t total) {
    if (tty && total > 0) {
      std::fprintf(stderr, "\rverifying %llu / %llu events (%3.0f%%)",
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                   100.0 * static_cast<double>(done) / static_cast<double>(total));
    }
  });
  if (tty) std::fprintf(stderr, "\n");
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (json) {
    nlohmann::json out = {{"ok", report.ok},
                          {"events", report.events},
                          {"head_hash", okr::ToHex(report.head_hash)},
                          {"first_bad_seq", report.ok ? nlohmann::json(nullptr)
                                                      : nlohmann::json(report.first_bad_seq)}};
    if (!report.ok) out["problem"] = report.problem;
    std::cout << out.dump() << "\n";
  } else if (report.ok) {
    std::cout << "ok: " << report.events << " events, head hash " << okr::ToHex(report.head_hash)
              << " (" << secs << " s)\n";
  } else {
    std::cout << "BROKEN at seq " << report.first_bad_seq << ": " << report.problem << " ("
              << report.events << " events before it verify)\n";
  }
  return report.ok ? kExitOk : kExitFailed;
}

int Dump(const std::string& dir, uint64_t after, uint64_t limit) {
  auto store = OpenForReading(dir);
  if (!store.ok()) {
    std::cerr << "okrctl: cannot open " << dir << ": " << store.status().ToString() << "\n";
    return kExitFailed;
  }
  int rc = kExitOk;
  uint64_t written = 0;
  okr::Status s = (*store)->Scan(after + 1, UINT64_MAX, [&](uint64_t seq, std::string_view bytes) {
    auto decoded = okr::DecodedEvent::Decode(bytes);
    if (!decoded.ok()) {
      std::cerr << "okrctl: seq " << seq << ": " << decoded.status().message() << "\n";
      rc = kExitFailed;
      return false;
    }
    nlohmann::json line = okr::EventToJson((*decoded)->event());
    line["hash"] = okr::ToHex(okr::Sha256(bytes));
    std::cout << line.dump() << "\n";
    return ++written < limit;
  });
  if (!s.ok()) {
    std::cerr << "okrctl: " << s.ToString() << "\n";
    return kExitFailed;
  }
  return rc;
}

int HeadCmd(const std::string& dir) {
  auto store = OpenForReading(dir);
  if (!store.ok()) {
    std::cerr << "okrctl: cannot open " << dir << ": " << store.status().ToString() << "\n";
    return kExitFailed;
  }
  okr::Head head = (*store)->head();
  std::cout << nlohmann::json{{"seq", head.seq},
                              {"head_hash", okr::ToHex(head.hash)},
                              {"recorded_at", head.seq ? okr::FormatTimeUs(head.recorded_at_us)
                                                       : std::string()}}
                   .dump()
            << "\n";
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "okrctl: tools for okrd data directories.\n"
      "Exit codes: 0 ok, 1 a check failed or the log cannot be read, 2 usage."};
  app.require_subcommand(1);
  std::string dir;

  auto* verify = app.add_subcommand("verify", "Check the whole hash chain offline; exit 1 naming the first bad seq");
  bool verify_json = false;
  verify->add_option("--data", dir, "okrd data directory")->required();
  verify->add_flag("--json", verify_json, "print {ok, events, head_hash, first_bad_seq}");

  auto* dump = app.add_subcommand("dump", "Print events as NDJSON, one readable event per line");
  uint64_t after = 0, limit = UINT64_MAX;
  dump->add_option("--data", dir, "okrd data directory")->required();
  dump->add_option("--after", after, "start after this seq (default 0)");
  dump->add_option("--limit", limit, "print at most this many events");

  auto* head = app.add_subcommand("head", "Print the head seq and hash as JSON");
  head->add_option("--data", dir, "okrd data directory")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (*verify) return Verify(dir, verify_json);
  if (*dump) return Dump(dir, after, limit);
  if (*head) return HeadCmd(dir);
  return kExitUsage;
}
