// KeyStore: okrd's secrets, outside the data directory (SPEC §10).
//
// The log holds nothing a reader of it must not see; what okrd must keep
// but never publish lives here instead: webhook URLs and secrets and their
// delivery state (SPEC §8), and later the subjects' keys. Its own RocksDB
// in its own directory (mode 0700, default the data directory's sibling
// `<data dir>.keys`), so the data directory and its backups never carry
// it. A write is synced (WAL fsync) before it returns unless its caller
// asks otherwise (Sync::kUnsynced, for progress that may be done again):
// a synced write that answered survives a power loss. Layout:
// docs/FORMAT.md, "The key store".
//
// A plain ordered map of byte strings; what the keys mean belongs to its
// users (api/webhooks/webhook_store.h). Thread-safe: RocksDB serialises
// writes, and a Batch is applied atomically.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eventstore/base/status.h"

namespace rocksdb {
class DB;
}

namespace okr {

// `<data dir>.keys`: beside the data directory, never inside it.
std::string DefaultKeyStorePath(std::string data_dir);

class KeyStore {
 public:
  // Opens (or creates, mode 0700) the key store in `dir`. kInvalid when
  // `dir` exists with a mode that lets anyone but its owner in: the
  // secrets would be readable. Another process holding it: kIOError.
  // Read-only (`read_only`): what is there, beside a running okrd; every
  // write answers kIOError; kNotFound when there is no key store.
  static Result<std::unique_ptr<KeyStore>> Open(const std::string& dir, bool read_only = false);
  ~KeyStore();
  KeyStore(const KeyStore&) = delete;
  KeyStore& operator=(const KeyStore&) = delete;

  // Puts and deletes applied together, in order, or not at all.
  class Batch {
   public:
    void Put(std::string key, std::string value) {
      ops_.push_back({std::move(key), std::move(value)});
    }
    void Delete(std::string key) { ops_.push_back({std::move(key), std::nullopt}); }
    bool empty() const { return ops_.empty(); }

   private:
    friend class KeyStore;
    std::vector<std::pair<std::string, std::optional<std::string>>> ops_;
  };

  // How a write reaches the disk. kSynced: answered means durable, through
  // a power loss. kUnsynced: in the write-ahead log the operating system
  // holds — it survives okrd's crash (kill -9), not a power loss — for
  // progress that may be lost and done again (a delivery cursor: an event
  // delivered again is what at-least-once allows), at a fraction of a
  // synced write's cost.
  enum class Sync { kSynced, kUnsynced };
  // Applies `batch` atomically before returning.
  Status Write(const Batch& batch, Sync sync = Sync::kSynced);
  Status Put(std::string key, std::string value);
  Status Delete(std::string key);
  // The value of `key`; nullopt when there is none.
  Result<std::optional<std::string>> Get(std::string_view key) const;
  // Calls `fn` for each key starting with `prefix`, in key order, until it
  // returns false. The views are valid only during the call.
  Status Scan(std::string_view prefix,
              const std::function<bool(std::string_view key, std::string_view value)>& fn) const;
  // Deletes every key starting with `prefix` (durably), then compacts that
  // range so the values do not linger in the files.
  Status DeletePrefix(std::string_view prefix);

  // A consistent copy of the whole key store in the new directory `to`
  // (RocksDB's checkpoint, mode 0700): a key-store backup, kept apart from
  // the log's. Open it with Open(to) — or copy it into place — to restore.
  Status Checkpoint(const std::string& to);

  const std::string& dir() const { return dir_; }

 private:
  KeyStore(std::unique_ptr<rocksdb::DB> db, std::string dir);
  std::unique_ptr<rocksdb::DB> db_;
  std::string dir_;
};

}  // namespace okr
