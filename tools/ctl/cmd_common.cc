#include "tools/ctl/cmd_common.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "eventstore/keystore.h"
#include "eventstore/sealing.h"
#include "tools/ctl/csv.h"
#include "tools/ctl/progress.h"

namespace okr::ctl::cmd {

using nlohmann::json;

double SecondsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

int Fail(const std::string& message) {
  std::cerr << "okrctl: " << message << "\n";
  return kExitFailed;
}

int Usage(const std::string& message) {
  std::cerr << "okrctl: " << message << "\n";
  return kExitUsage;
}

int Answered(const HttpAnswer& a, const std::string& what) {
  if (a.ok()) return kExitOk;
  return Fail(what + ": " + a.Describe());
}

std::string OpenHint(const Status& s) {
  // RocksDB's LOCK: another process (okrd) has the directory open for writing.
  if (s.message().find("lock") != std::string::npos ||
      s.message().find("LOCK") != std::string::npos) {
    return " (is okrd running on it? stop it, or use --server URL)";
  }
  return "";
}

namespace {

// The key store beside a data directory okrctl reads, opened read-only
// for the process's readers (sealing.h), kept until okrctl exits.
struct ReadingKeys {
  std::unique_ptr<KeyStore> store;
  std::unique_ptr<KeyRing> ring;
};

// Sealed fields show through the key store beside `dir` when there is one,
// with the erasures the log records applied in memory (the log is the
// authority; a reader changes no key store). Without it they read as erased.
void InstallReadingKeys(const std::string& dir, const EventStore& store) {
  static ReadingKeys keys;
  const std::string key_dir = DefaultKeyStorePath(dir);
  auto opened = KeyStore::Open(key_dir, /*read_only=*/true);
  if (!opened.ok()) {
    if (opened.status().code() != Status::Code::kNotFound) {
      std::cerr << "okrctl: " << opened.status().message()
                << ": sealed personal fields read as erased\n";
    }
    return;
  }
  auto ring = KeyRing::Open(opened->get(), /*read_only=*/true);
  if (!ring.ok() || !EnforceErasures(store, ring->get(), nullptr, /*durable=*/false).ok()) {
    std::cerr << "okrctl: cannot read the key store " << key_dir
              << ": sealed personal fields read as erased\n";
    return;
  }
  InstallKeyRing(nullptr, nullptr);
  keys.ring = std::move(ring.value());
  keys.store = std::move(opened.value());
  InstallKeyRing(keys.ring.get(), &store);
}

}  // namespace

Result<std::unique_ptr<EventStore>> OpenForReading(const std::string& dir) {
  OpenOptions options;
  options.read_only = true;
  options.create_if_missing = false;
  auto store = EventStore::Open(dir, options);
  if (store.ok()) InstallReadingKeys(dir, **store);
  return store;
}

Result<std::unique_ptr<Client>> Connect(const std::string& url) {
  // The token stays in the environment, never on the command line where
  // ps would show it.
  const char* token = std::getenv("OKR_TOKEN");
  return Client::Connect(url, token ? token : "");
}

bool Interactive(bool json_out) { return !json_out && ProgressBar::Terminal(); }

VerifyReport VerifyWithProgress(const EventStore& store, bool json_out) {
  ProgressBar bar("verifying", store.head().seq, Interactive(json_out), "events");
  auto progress = [&](uint64_t done, uint64_t total) {
    bar.set_total(total);
    bar.Update(done);
  };
  // The stored tree too, once a writer has built it (docs/FORMAT.md).
  const uint64_t head = store.head().seq;
  const bool has_tree = head > 0 && store.TreeRoot(head).ok();
  VerifyReport report = has_tree ? store.VerifyTree(progress) : store.Verify(progress);
  bar.Finish();
  // A broken chain names a seq no later than one past what verified.
  assert(report.ok || report.first_bad_seq <= report.events + 1);
  return report;
}

std::string Percent(const json& v) {
  if (!v.is_number()) return "-";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.0f%%", v.get<double>() * 100);
  return buf;
}

std::string Str(const json& v) { return v.is_string() ? v.get<std::string>() : ""; }

std::string Number(const json& v) { return v.is_number() ? FormatNumber(v.get<double>()) : ""; }

std::string AsOf(const std::optional<uint64_t>& as_of) {
  return as_of ? "&as_of=" + std::to_string(*as_of) : "";
}

namespace {

// Display width of UTF-8 text (one column per code point).
size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

}  // namespace

void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(header.size(), 0);
  for (size_t i = 0; i < header.size(); ++i) widths[i] = Width(header[i]);
  for (const auto& row : rows) {
    assert(row.size() <= header.size());
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i)
      widths[i] = std::max(widths[i], Width(row[i]));
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

}  // namespace okr::ctl::cmd
