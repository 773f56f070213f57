#include "eventstore/keystore.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>

#include <cassert>
#include <cerrno>
#include <cstring>

namespace okr {

std::string DefaultKeyStorePath(std::string data_dir) {
  while (data_dir.size() > 1 && data_dir.back() == '/') data_dir.pop_back();
  return data_dir + ".keys";
}

namespace {

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  if (s.IsCorruption()) return Status::Corruption("key store " + what + ": " + s.ToString());
  return Status::IOError("key store " + what + ": " + s.ToString());
}

// Creates `dir` 0700 when missing; refuses one others may enter.
Status PrepareDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::IOError("cannot create the key store " + dir + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::Invalid("the key store " + dir + " is not a directory");
  }
  if ((st.st_mode & 077) != 0) {
    return Status::Invalid("the key store " + dir +
                           " may be entered by others than its owner: chmod 700 it");
  }
  return Status::Ok();
}

// The first key after every key starting with `prefix` ("" when none is).
std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

}  // namespace

Result<std::unique_ptr<KeyStore>> KeyStore::Open(const std::string& dir, bool read_only) {
  assert(!dir.empty());
  struct stat st {};
  if (read_only && ::stat(dir.c_str(), &st) != 0) {
    return Status::NotFound("no key store " + dir);
  }
  OKR_RETURN_IF_ERROR(PrepareDir(dir));
  rocksdb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  // Small: a few records per webhook (and, later, a key per subject).
  options.write_buffer_size = 4 << 20;
  options.max_open_files = 64;
  rocksdb::DB* db = nullptr;
  OKR_RETURN_IF_ERROR(FromRocks(read_only ? rocksdb::DB::OpenForReadOnly(options, dir, &db)
                                          : rocksdb::DB::Open(options, dir, &db),
                                "open " + dir));
  assert(db != nullptr);
  return std::unique_ptr<KeyStore>(new KeyStore(std::unique_ptr<rocksdb::DB>(db), dir));
}

KeyStore::KeyStore(std::unique_ptr<rocksdb::DB> db, std::string dir)
    : db_(std::move(db)), dir_(std::move(dir)) {}

KeyStore::~KeyStore() = default;

Status KeyStore::Write(const Batch& batch, Sync sync) {
  rocksdb::WriteBatch wb;
  for (const auto& [key, value] : batch.ops_) {
    rocksdb::Status s = value ? wb.Put(key, *value) : wb.Delete(key);
    if (!s.ok()) return FromRocks(s, "batch");
  }
  rocksdb::WriteOptions options;
  options.sync = sync == Sync::kSynced;
  return FromRocks(db_->Write(options, &wb), "write");
}

Status KeyStore::Put(std::string key, std::string value) {
  Batch b;
  b.Put(std::move(key), std::move(value));
  return Write(b);
}

Status KeyStore::Delete(std::string key) {
  Batch b;
  b.Delete(std::move(key));
  return Write(b);
}

Result<std::optional<std::string>> KeyStore::Get(std::string_view key) const {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  OKR_RETURN_IF_ERROR(FromRocks(s, "read"));
  return std::optional<std::string>(std::move(value));
}

Status KeyStore::Scan(
    std::string_view prefix,
    const std::function<bool(std::string_view key, std::string_view value)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size())); it->Valid(); it->Next()) {
    std::string_view key(it->key().data(), it->key().size());
    if (key.substr(0, prefix.size()) != prefix) break;
    if (!fn(key, std::string_view(it->value().data(), it->value().size()))) break;
  }
  return FromRocks(it->status(), "scan");
}

Status KeyStore::DeletePrefix(std::string_view prefix) {
  assert(!prefix.empty());
  Batch batch;
  OKR_RETURN_IF_ERROR(Scan(prefix, [&](std::string_view key, std::string_view) {
    batch.Delete(std::string(key));
    return true;
  }));
  if (batch.empty()) return Status::Ok();
  OKR_RETURN_IF_ERROR(Write(batch));
  // Deleted values stay in the memtable and files until compaction: push
  // them out now, so a deleted secret does not linger on disk.
  OKR_RETURN_IF_ERROR(FromRocks(db_->Flush(rocksdb::FlushOptions()), "flush"));
  const std::string begin(prefix), end = PrefixEnd(prefix);
  rocksdb::Slice b(begin), e(end);
  return FromRocks(
      db_->CompactRange(rocksdb::CompactRangeOptions(), &b, end.empty() ? nullptr : &e), "compact");
}

Status KeyStore::Checkpoint(const std::string& to) {
  rocksdb::Checkpoint* raw = nullptr;
  OKR_RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // Flushed first, so the copy holds table files and no log to replay.
  OKR_RETURN_IF_ERROR(FromRocks(checkpoint->CreateCheckpoint(to, /*log_size_for_flush=*/0),
                                "checkpoint into " + to));
  if (::chmod(to.c_str(), 0700) != 0) {
    return Status::IOError("cannot chmod 700 " + to + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace okr
