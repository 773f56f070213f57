// Backups of the whole database with RocksDB's BackupEngine
// (docs/OPERATIONS.md): incremental, checksummed, taken while appends go on.
#include <rocksdb/utilities/backup_engine.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <filesystem>

#include "eventstore/store_impl.h"

namespace okr {
namespace {

// A backup reports progress after each this many bytes copied.
constexpr uint64_t kBackupProgressBytes = 1 << 20;

rocksdb::BackupEngineOptions BackupOptions(const std::string& backup_dir) {
  rocksdb::BackupEngineOptions options(backup_dir);
  options.callback_trigger_interval_size = kBackupProgressBytes;
  return options;
}

// Fills a summary of backup `id`, reading its head from the backup itself
// (opened read-only where it lies), so the answer is what a restore gives.
Result<BackupSummary> DescribeBackup(const rocksdb::BackupEngineReadOnlyBase& engine,
                                     rocksdb::BackupID id) {
  rocksdb::BackupInfo info;
  rocksdb::Status s = engine.GetBackupInfo(id, &info, /*include_file_details=*/true);
  if (s.IsNotFound()) return Status::NotFound("no backup " + std::to_string(id));
  if (!s.ok()) return FromRocks(s);
  BackupSummary out;
  out.backup_id = info.backup_id;
  out.created_at_s = info.timestamp;
  out.size_bytes = info.size;
  out.files = info.number_files;
  OpenOptions options;
  options.read_only = true;
  options.create_if_missing = false;
  options.env = info.env_for_open.get();
  auto store = EventStore::Open(info.name_for_open, options);
  if (!store.ok()) {
    return Status::Corruption("backup " + std::to_string(id) +
                              " cannot be opened: " + store.status().ToString());
  }
  Head head = (*store)->head();
  out.head_seq = head.seq;
  out.head_hash = head.hash;
  assert(out.backup_id == id);
  return out;
}

Result<std::unique_ptr<rocksdb::BackupEngineReadOnly>> OpenBackupsForReading(
    const std::string& backup_dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(backup_dir, ec)) {
    return Status::NotFound("no backup directory " + backup_dir);
  }
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  rocksdb::IOStatus s =
      rocksdb::BackupEngineReadOnly::Open(BackupOptions(backup_dir), rocksdb::Env::Default(), &raw);
  if (!s.ok()) return Status::Invalid("cannot read backups in " + backup_dir + ": " + s.ToString());
  return std::unique_ptr<rocksdb::BackupEngineReadOnly>(raw);
}

}  // namespace

Result<BackupSummary> EventStore::Impl::Backup(
    const std::string& backup_dir, const std::function<void(uint64_t, uint64_t)>& progress) {
  // BackupEngine needs to hold file deletions and read the live WAL,
  // which a read-only database cannot do.
  if (options_.read_only) return Status::Invalid("the log is open read-only");
  if (backup_dir.empty()) return Status::Invalid("no backup directory given");
  // Two engines writing the same directory at once may trash it.
  std::lock_guard<std::mutex> lock(backup_mu_);
  std::error_code ec;
  std::filesystem::create_directories(backup_dir, ec);
  if (ec) return Status::Invalid("cannot create " + backup_dir + ": " + ec.message());
  rocksdb::BackupEngine* raw = nullptr;
  rocksdb::IOStatus opened =
      rocksdb::BackupEngine::Open(BackupOptions(backup_dir), db_->GetEnv(), &raw);
  if (!opened.ok()) {
    return Status::Invalid("cannot keep backups in " + backup_dir + ": " + opened.ToString());
  }
  std::unique_ptr<rocksdb::BackupEngine> engine(raw);
  uint64_t total = 0;
  std::vector<rocksdb::LiveFileStorageInfo> files;
  if (db_->GetLiveFilesStorageInfo(rocksdb::LiveFilesStorageInfoOptions(), &files).ok()) {
    for (const auto& f : files) total += f.size;
  }
  std::atomic<uint64_t> copied{0};
  rocksdb::CreateBackupOptions create;
  // The live WAL is copied as it stands, so appends never wait for a flush.
  create.flush_before_backup = false;
  create.progress_callback = [&] {
    uint64_t done = copied.fetch_add(kBackupProgressBytes) + kBackupProgressBytes;
    if (progress) progress(std::min(done, total), total);
  };
  rocksdb::BackupID id = 0;
  rocksdb::IOStatus s = engine->CreateNewBackup(create, db_.get(), &id);
  if (!s.ok()) return Status::IOError("backup into " + backup_dir + " failed: " + s.ToString());
  assert(id > 0 && "BackupEngine numbers backups from 1");
  if (progress) progress(total, total);
  return DescribeBackup(*engine, id);
}

Result<BackupSummary> EventStore::Backup(const std::string& backup_dir,
                                         const std::function<void(uint64_t, uint64_t)>& progress) {
  return impl_->Backup(backup_dir, progress);
}

Result<std::vector<BackupSummary>> EventStore::ListBackups(const std::string& backup_dir) {
  OKR_ASSIGN_OR_RETURN(auto engine, OpenBackupsForReading(backup_dir));
  std::vector<rocksdb::BackupInfo> infos;
  engine->GetBackupInfo(&infos);
  std::vector<BackupSummary> out;
  for (const auto& info : infos) {
    OKR_ASSIGN_OR_RETURN(BackupSummary summary, DescribeBackup(*engine, info.backup_id));
    out.push_back(summary);
  }
  return out;
}

Result<BackupSummary> EventStore::Restore(const std::string& backup_dir,
                                          const std::string& data_dir, uint32_t backup_id) {
  std::error_code ec;
  if (std::filesystem::exists(data_dir, ec) && !std::filesystem::is_empty(data_dir, ec)) {
    return Status::Invalid(data_dir + " is not empty: restore into a new directory");
  }
  OKR_ASSIGN_OR_RETURN(auto engine, OpenBackupsForReading(backup_dir));
  if (backup_id == 0) {
    rocksdb::BackupInfo latest;
    if (!engine->GetLatestBackupInfo(&latest).ok()) {
      return Status::NotFound("no usable backup in " + backup_dir);
    }
    backup_id = latest.backup_id;
  }
  rocksdb::BackupInfo info;
  if (!engine->GetBackupInfo(backup_id, &info).ok()) {
    return Status::NotFound("no usable backup " + std::to_string(backup_id) + " in " + backup_dir);
  }
  // Every file against the checksum taken when it was backed up, before
  // anything is written into data_dir.
  if (rocksdb::IOStatus s = engine->VerifyBackup(backup_id, /*verify_with_checksum=*/true);
      !s.ok()) {
    return Status::Corruption("backup " + std::to_string(backup_id) +
                              " is damaged: " + s.ToString());
  }
  rocksdb::IOStatus s =
      engine->RestoreDBFromBackup(rocksdb::RestoreOptions(), backup_id, data_dir, data_dir);
  if (!s.ok()) return Status::IOError("restore into " + data_dir + " failed: " + s.ToString());
  return DescribeBackup(*engine, backup_id);
}

}  // namespace okr
