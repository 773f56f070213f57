#include "api/backup_root.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace okr::api {

namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

// A directory okrd may write backups into: its own, and nobody else's to change.
Status CheckOwnDirectory(int fd, const std::string& name) {
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return Status::IOError("cannot stat " + name + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return Status::Invalid(name + " is not a directory", "to");
  if (st.st_uid != ::geteuid()) {
    return Status::Invalid(
        name + " belongs to uid " + std::to_string(st.st_uid) + ", not okrd's user", "to");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Status::Invalid(name + " may be written by group or others; chmod 700 it", "to");
  }
  return Status::Ok();
}

// The components of `relative`, or kInvalid when it is not a plain relative path.
Result<std::vector<std::string>> SplitRelative(std::string_view relative) {
  std::vector<std::string> parts;
  if (relative.empty()) return parts;
  if (relative.size() > kMaxBackupPathChars) {
    return Status::Invalid(
        "to is longer than " + std::to_string(kMaxBackupPathChars) + " characters", "to");
  }
  if (relative.front() == '/')
    return Status::Invalid("to must be relative to okrd's --backup-root", "to");
  size_t start = 0;
  while (start <= relative.size()) {
    size_t slash = relative.find('/', start);
    if (slash == std::string_view::npos) slash = relative.size();
    std::string part(relative.substr(start, slash - start));
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string::npos) {
      return Status::Invalid("to must be a plain relative path: no empty, '.' or '..' parts", "to");
    }
    parts.push_back(std::move(part));
    start = slash + 1;
  }
  if (parts.size() > kMaxBackupPathComponents) {
    return Status::Invalid(
        "to has more than " + std::to_string(kMaxBackupPathComponents) + " parts", "to");
  }
  return parts;
}

// Opens (creating when missing) directory `name` inside `parent`, never
// through a symlink.
Result<int> OpenChild(int parent, const std::string& name) {
  if (::mkdirat(parent, name.c_str(), kBackupDirMode) != 0 && errno != EEXIST) {
    return Status::IOError("cannot create " + name + ": " + std::strerror(errno));
  }
  int fd = ::openat(parent, name.c_str(), kDirFlags);
  if (fd < 0) {
    if (errno == ELOOP || errno == ENOTDIR) {
      return Status::Invalid(name + " is a symlink or not a directory; backups never follow links",
                             "to");
    }
    return Status::IOError("cannot open " + name + ": " + std::strerror(errno));
  }
  if (Status s = CheckOwnDirectory(fd, name); !s.ok()) {
    ::close(fd);
    return s;
  }
  return fd;
}

}  // namespace

BackupDir::~BackupDir() { ::close(fd_); }

std::string BackupDir::path() const { return "/proc/self/fd/" + std::to_string(fd_); }

Result<std::shared_ptr<const BackupRoot>> BackupRoot::Open(const std::string& path) {
  if (path.empty()) return Status::Invalid("--backup-root is empty");
  if (::mkdir(path.c_str(), kBackupDirMode) != 0 && errno != EEXIST) {
    return Status::Invalid("cannot create backup root " + path + ": " + std::strerror(errno));
  }
  // The root itself is the operator's choice and may be reached through a
  // symlink; it is resolved once, here.
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return Status::Invalid("cannot open backup root " + path + ": " + std::strerror(errno));
  if (Status s = CheckOwnDirectory(fd, "backup root " + path); !s.ok()) {
    ::close(fd);
    return Status::Invalid(s.message());
  }
  return std::shared_ptr<const BackupRoot>(new BackupRoot(path, fd));
}

BackupRoot::~BackupRoot() { ::close(fd_); }

Result<std::unique_ptr<BackupDir>> BackupRoot::OpenDir(std::string_view relative) const {
  auto parts = SplitRelative(relative);
  if (!parts.ok()) return parts.status();
  int fd = ::dup(fd_);  // `at` owns its descriptor; the root's stays open
  if (fd < 0)
    return Status::IOError(std::string("cannot use the backup root: ") + std::strerror(errno));
  for (const std::string& part : *parts) {
    auto child = OpenChild(fd, part);
    ::close(fd);
    if (!child.ok()) return child.status();
    fd = *child;
  }
  return std::make_unique<BackupDir>(fd);
}

}  // namespace okr::api
