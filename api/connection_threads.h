// The threads serving okrd's connections, grown on demand and bounded.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace okr::api {

// cpp-httplib holds one thread for a connection's whole life, idle seconds
// and slow clients included, so a fixed pool of N threads stops serving
// anyone while N clients sit idle or trickle a request in byte by byte.
// This keeps `ready` threads and starts more whenever a connection would
// otherwise wait, up to `max`; a thread beyond `ready` ends after
// kSpareThreadIdleSeconds without work. With `max` threads busy, at most
// `max_queued` connections wait for one: Submit() refuses the next. On
// shutdown it serves what is queued, then joins every thread. Thread-safe.
class ConnectionThreads {
 public:
  ConnectionThreads(size_t ready, size_t max, size_t max_queued);
  ~ConnectionThreads();

  // Queues `job` for a thread; false (and `job` dropped unrun) when every
  // thread is busy, no more may start, and `max_queued` jobs wait already.
  bool Submit(std::function<void()> job);
  // Stops taking jobs, lets the threads run what is queued, and joins them.
  // Idempotent.
  void Shutdown();

 private:
  void StartLocked();
  void Work();

  const size_t ready_, max_, max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::map<std::thread::id, std::thread> threads_;
  std::vector<std::thread> ended_;  // spare threads that ended, to be joined
  size_t idle_ = 0;                 // threads without a job
  bool stopping_ = false;
};

}  // namespace okr::api
