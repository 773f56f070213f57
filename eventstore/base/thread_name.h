// Names for okrd's threads, as `top -H`, `ps -L`, `perf` and gdb show them
// (/proc/PID/task/TID/comm): an operator whose okrd is busy, or whose
// replica lags, sees which part of it spends the CPU ("okr:writer",
// "okr:fold", …) beside RocksDB's own ("rocksdb:low"). docs/OPERATIONS.md
// lists them. okrctl's threads that run the store's code carry the same
// names.
#pragma once

#include <thread>
#include <utility>

namespace okr {

// Names the calling thread. Linux keeps 15 bytes of a name; a longer one
// is cut there. Best effort: a name that cannot be set changes nothing else.
void NameThisThread(const char* name);

// A thread that names itself `name` (a static string) and runs `fn`.
template <typename Fn>
std::thread NamedThread(const char* name, Fn fn) {
  return std::thread([name, fn = std::move(fn)]() mutable {
    NameThisThread(name);
    fn();
  });
}

}  // namespace okr
