// The one directory okrd's backup route may write under (--backup-root).
//
// The root is opened once at start-up and held open: later renames or
// symlinks at its path change nothing. A backup names a relative
// sub-directory, which is walked one component at a time from the root's
// descriptor with openat(O_NOFOLLOW | O_DIRECTORY), creating what is
// missing with mode 0700; a symlink anywhere on the way is refused, so no
// check can be raced between checking and writing. The store then writes
// through /proc/self/fd/N, the directory that was opened, not a path that
// could be swapped. docs/OPERATIONS.md, "Backups through okrd".
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "eventstore/base/status.h"

namespace okr::api {

// Limits on the sub-directory a backup request names (each tested).
inline constexpr size_t kMaxBackupPathChars = 255;
inline constexpr size_t kMaxBackupPathComponents = 8;
// Mode of every directory okrd creates under the root.
inline constexpr unsigned kBackupDirMode = 0700;

// One opened directory under the root; closes it when destroyed.
class BackupDir {
 public:
  explicit BackupDir(int fd) : fd_(fd) {}
  ~BackupDir();
  BackupDir(const BackupDir&) = delete;
  BackupDir& operator=(const BackupDir&) = delete;
  // A path that names exactly this opened directory while it lives.
  std::string path() const;

 private:
  int fd_;
};

class BackupRoot {
 public:
  // Opens `path`, creating it (mode 0700) when missing. Refuses (kInvalid)
  // anything but a directory, one owned by another user than okrd's, and
  // one group or others may write to (they could plant symlinks and
  // directories faster than okrd creates them).
  static Result<std::shared_ptr<const BackupRoot>> Open(const std::string& path);
  ~BackupRoot();
  BackupRoot(const BackupRoot&) = delete;
  BackupRoot& operator=(const BackupRoot&) = delete;

  // Opens `relative` under the root ("" is the root itself), creating
  // missing directories with kBackupDirMode. kInvalid (field "to") for an
  // absolute path, an empty, "." or ".." component, a path over the limits,
  // a symlink or non-directory on the way, or a directory owned by another
  // user or writable by group or others. Thread-safe.
  Result<std::unique_ptr<BackupDir>> OpenDir(std::string_view relative) const;

  const std::string& path() const { return path_; }

 private:
  BackupRoot(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
};

}  // namespace okr::api
