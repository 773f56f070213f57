// A storage-fault injector for a real okrd process, loaded with LD_PRELOAD.
//
// While the file named by $OKR_FAULT_FILE exists, writes and syncs on files
// under $OKR_FAULT_DIR fail with the errno it names. Its first word is
// "enospc" or "eio"; an optional second word limits the fault to "write"
// (write, pwrite, writev, fallocate) or "sync" (fsync, fdatasync,
// sync_file_range); without it both fail. Removing the file clears the fault.
// Nothing is written when a call fails: the fault stands in for a full or
// failing disk, before the bytes reach it.
//
// Every injected failure appends one line "<call> <path>" to
// $OKR_FAULT_FILE.hits (the first 1000 only), so a test can show that the
// fault hit the files it meant to.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { kWrite = 1, kSync = 2 };

static atomic_int hits_logged;

static void* next_symbol(const char* name) { return dlsym(RTLD_NEXT, name); }

typedef ssize_t (*write_fn)(int, const void*, size_t);
typedef ssize_t (*pwrite_fn)(int, const void*, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec*, int);
typedef int (*fd_fn)(int);
typedef int (*sync_range_fn)(int, off64_t, off64_t, unsigned int);
typedef int (*fallocate_fn)(int, int, off_t, off_t);
typedef int (*posix_fallocate_fn)(int, off_t, off_t);

// The errno to fail a call of `kind` on `fd` with, or 0 to let it through.
static int fault_for(int fd, int kind, const char* call) {
  const char* control = getenv("OKR_FAULT_FILE");
  const char* dir = getenv("OKR_FAULT_DIR");
  if (control == NULL || dir == NULL || *dir == '\0' || fd < 0) return 0;
  int saved = errno;
  struct stat st;
  if (stat(control, &st) != 0) {
    errno = saved;
    return 0;
  }
  char mode[64] = {0};
  int cfd = open(control, O_RDONLY | O_CLOEXEC);
  if (cfd >= 0) {
    ssize_t n = read(cfd, mode, sizeof mode - 1);
    if (n < 0) n = 0;
    mode[n] = '\0';
    close(cfd);
  }
  int err = strncmp(mode, "eio", 3) == 0 ? EIO : ENOSPC;
  int kinds = kWrite | kSync;
  if (strstr(mode, " write") != NULL) kinds = kWrite;
  if (strstr(mode, " sync") != NULL) kinds = kSync;
  if ((kinds & kind) == 0) {
    errno = saved;
    return 0;
  }
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t len = readlink(link, path, sizeof path - 1);
  errno = saved;
  if (len <= 0) return 0;
  path[len] = '\0';
  size_t dir_len = strlen(dir);
  if (strncmp(path, dir, dir_len) != 0 || (path[dir_len] != '/' && path[dir_len] != '\0')) return 0;
  if (atomic_fetch_add(&hits_logged, 1) < 1000) {
    char hits[4096], line[4200];
    snprintf(hits, sizeof hits, "%s.hits", control);
    int n = snprintf(line, sizeof line, "%s %s\n", call, path);
    int hfd = open(hits, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (hfd >= 0) {
      static write_fn real_write;
      if (real_write == NULL) real_write = (write_fn)next_symbol("write");
      if (real_write != NULL && n > 0) (void)real_write(hfd, line, (size_t)n);
      close(hfd);
    }
    errno = saved;
  }
  return err;
}

#define FAIL_IF_FAULTED(fd, kind, call, ret) \
  do {                                         \
    int e_ = fault_for((fd), (kind), (call));  \
    if (e_ != 0) {                             \
      errno = e_;                              \
      return (ret);                            \
    }                                          \
  } while (0)

ssize_t write(int fd, const void* buf, size_t count) {
  static write_fn real;
  if (real == NULL) real = (write_fn)next_symbol("write");
  FAIL_IF_FAULTED(fd, kWrite, "write", -1);
  return real(fd, buf, count);
}

ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset) {
  static pwrite_fn real;
  if (real == NULL) real = (pwrite_fn)next_symbol("pwrite");
  FAIL_IF_FAULTED(fd, kWrite, "pwrite", -1);
  return real(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void* buf, size_t count, off_t offset) {
  static pwrite_fn real;
  if (real == NULL) real = (pwrite_fn)next_symbol("pwrite64");
  FAIL_IF_FAULTED(fd, kWrite, "pwrite64", -1);
  return real(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  static writev_fn real;
  if (real == NULL) real = (writev_fn)next_symbol("writev");
  FAIL_IF_FAULTED(fd, kWrite, "writev", -1);
  return real(fd, iov, iovcnt);
}

int fallocate(int fd, int mode, off_t offset, off_t len) {
  static fallocate_fn real;
  if (real == NULL) real = (fallocate_fn)next_symbol("fallocate");
  FAIL_IF_FAULTED(fd, kWrite, "fallocate", -1);
  return real(fd, mode, offset, len);
}

int posix_fallocate(int fd, off_t offset, off_t len) {
  static posix_fallocate_fn real;
  if (real == NULL) real = (posix_fallocate_fn)next_symbol("posix_fallocate");
  int e = fault_for(fd, kWrite, "posix_fallocate");
  if (e != 0) return e;  // posix_fallocate answers the error, errno untouched
  return real(fd, offset, len);
}

int fsync(int fd) {
  static fd_fn real;
  if (real == NULL) real = (fd_fn)next_symbol("fsync");
  FAIL_IF_FAULTED(fd, kSync, "fsync", -1);
  return real(fd);
}

int fdatasync(int fd) {
  static fd_fn real;
  if (real == NULL) real = (fd_fn)next_symbol("fdatasync");
  FAIL_IF_FAULTED(fd, kSync, "fdatasync", -1);
  return real(fd);
}

int sync_file_range(int fd, off64_t offset, off64_t nbytes, unsigned int flags) {
  static sync_range_fn real;
  if (real == NULL) real = (sync_range_fn)next_symbol("sync_file_range");
  // flags 0 does nothing: RocksDB probes support that way on every new file.
  if (flags != 0) FAIL_IF_FAULTED(fd, kSync, "sync_file_range", -1);
  return real(fd, offset, nbytes, flags);
}
