// okrctl backup, restore and backups: RocksDB's BackupEngine through the
// event store, offline or (backup only) by asking a running okrd.
#include <cassert>
#include <iostream>

#include "eventstore/base/time.h"
#include "tools/ctl/cmd_common.h"
#include "tools/ctl/progress.h"

namespace okr::ctl::cmd {
namespace {

using nlohmann::json;

// A backup through okrd copies the whole database before it answers.
constexpr int kBackupReadTimeoutSeconds = 3600;

json BackupJson(const BackupSummary& b) {
  return {{"backup_id", b.backup_id},   {"created_at", FormatTimeUs(b.created_at_s * 1'000'000)},
          {"head_seq", b.head_seq},     {"head_hash", ToHex(b.head_hash)},
          {"size_bytes", b.size_bytes}, {"files", b.files}};
}

// okrd backs itself up into `to` on its own host (under its --backup-root).
int BackupThroughServer(const std::string& server, const std::string& to, bool json_out) {
  auto started = SteadyClock::now();
  auto client = Connect(server);
  if (!client.ok()) return Usage(client.status().message());
  (*client)->set_read_timeout_seconds(kBackupReadTimeoutSeconds);
  if (Interactive(json_out)) std::cerr << "okrd is backing up into " << to << " on its host…\n";
  HttpAnswer a = (*client)->Post("/v1/admin/backup", {{"to", to}});
  if (!a.ok()) return Fail("POST /v1/admin/backup: " + a.Describe());
  if (json_out) {
    std::cout << a.json.dump() << "\n";
    return kExitOk;
  }
  std::cout << "backup " << a.json.value("backup_id", 0u) << " in " << to
            << " (on okrd's host): seq " << a.json.value("head_seq", uint64_t{0}) << ", head hash "
            << Str(a.json["head_hash"]) << ", " << a.json.value("size_bytes", uint64_t{0})
            << " bytes in " << SecondsSince(started) << " s\n";
  return kExitOk;
}

int BackupOffline(const std::string& data_dir, const std::string& to, bool json_out) {
  auto started = SteadyClock::now();
  OpenOptions options;
  options.create_if_missing = false;
  // A backup copies the bytes as they are; judging them is verify's job.
  options.verify_on_open = false;
  auto store = EventStore::Open(data_dir, options);
  if (!store.ok()) {
    return Fail("cannot open " + data_dir + ": " + store.status().ToString() +
                OpenHint(store.status()));
  }
  Result<BackupSummary> b = Status::NotFound("");
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
    return kExitOk;
  }
  std::cout << "backup " << b->backup_id << " in " << to << ": seq " << b->head_seq
            << ", head hash " << ToHex(b->head_hash) << ", " << b->size_bytes << " bytes in "
            << SecondsSince(started) << " s\n";
  return kExitOk;
}

}  // namespace

int Backup(const std::string& data_dir, const std::string& server, const std::string& to,
           bool json_out) {
  // main checked: exactly one of --data and --server.
  assert(data_dir.empty() != server.empty());
  assert(!to.empty());
  return server.empty() ? BackupOffline(data_dir, to, json_out)
                        : BackupThroughServer(server, to, json_out);
}

int Restore(const std::string& from, const std::string& data_dir, uint32_t backup_id,
            bool json_out) {
  assert(!from.empty() && !data_dir.empty());
  auto restored = EventStore::Restore(from, data_dir, backup_id);
  if (!restored.ok()) return Fail(restored.status().message());
  // A restore is only as good as the chain it brings back.
  auto store = OpenForReading(data_dir);
  if (!store.ok())
    return Fail("cannot open the restored " + data_dir + ": " + store.status().ToString());
  VerifyReport report = VerifyWithProgress(**store, json_out);
  if (json_out) {
    json out = BackupJson(*restored);
    out["data"] = data_dir;
    out["ok"] = report.ok;
    out["events"] = report.events;
    out["first_bad_seq"] = report.ok ? json(nullptr) : json(report.first_bad_seq);
    if (!report.ok) out["problem"] = report.problem;
    std::cout << out.dump() << "\n";
  } else if (report.ok) {
    std::cout << "restored backup " << restored->backup_id << " into " << data_dir
              << ": chain verified, " << report.events << " events, head hash "
              << ToHex(report.head_hash) << "\n";
  } else {
    std::cout << "restored backup " << restored->backup_id << " into " << data_dir
              << ", but its chain is BROKEN at seq " << report.first_bad_seq << ": "
              << report.problem << "\n";
  }
  return report.ok ? kExitOk : kExitFailed;
}

int ListBackups(const std::string& from, bool json_out) {
  auto backups = EventStore::ListBackups(from);
  if (!backups.ok()) return Fail(backups.status().message());
  if (json_out) {
    json items = json::array();
    for (const auto& b : *backups) items.push_back(BackupJson(b));
    std::cout << json{{"items", items}}.dump() << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& b : *backups) {
    rows.push_back({std::to_string(b.backup_id),
                    FormatTimeUs(b.created_at_s * 1'000'000).substr(0, 19) + "Z",
                    std::to_string(b.head_seq), std::to_string(b.size_bytes),
                    ToHex(b.head_hash).substr(0, 16)});
  }
  assert(rows.size() == backups->size());
  PrintTable({"ID", "CREATED", "SEQ", "BYTES", "HEAD HASH"}, rows);
  return kExitOk;
}

}  // namespace okr::ctl::cmd
