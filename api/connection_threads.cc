#include "api/connection_threads.h"

#include <algorithm>
#include <cassert>
#include <chrono>

#include "api/server.h"
#include "eventstore/base/thread_name.h"

namespace okr::api {

ConnectionThreads::ConnectionThreads(size_t ready, size_t max, size_t max_queued)
    : ready_(ready), max_(std::max(ready, max)), max_queued_(max_queued) {
  assert(ready_ <= max_);
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < ready_; ++i) StartLocked();
}

ConnectionThreads::~ConnectionThreads() { Shutdown(); }

bool ConnectionThreads::Submit(std::function<void()> job) {
  assert(job);
  std::lock_guard<std::mutex> lock(mu_);
  for (std::thread& t : ended_) t.join();
  ended_.clear();
  if (stopping_) return false;
  // Jobs beyond the idle threads wait, unless a thread may yet start.
  size_t waiting = jobs_.size() > idle_ ? jobs_.size() - idle_ : 0;
  if (jobs_.size() >= idle_ && threads_.size() >= max_ && waiting >= max_queued_) return false;
  jobs_.push_back(std::move(job));
  if (idle_ < jobs_.size() && threads_.size() < max_) StartLocked();
  assert(threads_.size() <= max_);
  cv_.notify_one();
  return true;
}

void ConnectionThreads::Shutdown() {
  std::map<std::thread::id, std::thread> running;
  std::vector<std::thread> ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    running.swap(threads_);
    ended.swap(ended_);
  }
  cv_.notify_all();
  for (auto& [id, t] : running) t.join();
  for (std::thread& t : ended) t.join();
}

// A thread counts as idle from its start until it takes a job, so that
// Submit() never counts a job as waiting that a starting thread will take.
void ConnectionThreads::StartLocked() {
  assert(threads_.size() < max_);
  ++idle_;
  std::thread t = NamedThread("okr:conn", [this] { Work(); });
  auto id = t.get_id();
  threads_.emplace(id, std::move(t));
}

void ConnectionThreads::Work() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    bool woken = cv_.wait_for(lock, std::chrono::seconds(kSpareThreadIdleSeconds),
                              [&] { return stopping_ || !jobs_.empty(); });
    if (!jobs_.empty()) {
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      assert(idle_ > 0);
      --idle_;
      lock.unlock();
      job();
      lock.lock();
      ++idle_;
      continue;
    }
    if (stopping_) break;
    if (!woken && threads_.size() > ready_) {
      // A spare thread without work: it ends, and the next Submit joins it.
      auto self = threads_.find(std::this_thread::get_id());
      assert(self != threads_.end());
      ended_.push_back(std::move(self->second));
      threads_.erase(self);
      break;
    }
  }
  --idle_;
}

}  // namespace okr::api
