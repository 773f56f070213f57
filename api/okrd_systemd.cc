#include "api/okrd_systemd.h"

#include <httplib.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <chrono>

#include "eventstore/base/thread_name.h"

namespace okr::api {

ServiceManager::~ServiceManager() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
}

void ServiceManager::Ready(const std::string& status) {
  sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str());
}

// Under the lock the watchdog pings under: no WATCHDOG=1 follows it. The
// thread is not waited for here (a probe in flight may take a while);
// the destructor joins it.
void ServiceManager::Stopping() {
  std::lock_guard lock(mu_);
  stop_ = true;
  sd_notify(0, "STOPPING=1");
  cv_.notify_all();
}

uint64_t ServiceManager::WatchdogUsec() {
  uint64_t usec = 0;
  return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

// A probe every quarter of the interval, on a fixed schedule, each given
// an eighth of it per phase (connect, send, read): one slow probe leaves
// the next ones time to answer before systemd's deadline.
void ServiceManager::StartWatchdog(Probe probe, OnMissed on_missed) {
  const uint64_t usec = WatchdogUsec();
  if (usec == 0 || watchdog_.joinable()) return;
  const auto every = std::chrono::microseconds(usec / 4);
  const int timeout_ms = static_cast<int>(std::max<uint64_t>(usec / 8000, 1));
  watchdog_ = NamedThread("okr:watchdog", [this, probe = std::move(probe),
                                           on_missed = std::move(on_missed), every, timeout_ms] {
    using Clock = std::chrono::steady_clock;
    auto last_answer = Clock::now();
    auto next = Clock::now();
    std::unique_lock lock(mu_);
    while (!stop_) {
      lock.unlock();
      const bool answered = probe(timeout_ms);
      const auto now = Clock::now();
      lock.lock();
      if (stop_) break;
      if (answered) {
        last_answer = now;
        sd_notify(0, "WATCHDOG=1");
      } else {
        on_missed(std::chrono::duration_cast<std::chrono::milliseconds>(now - last_answer).count());
      }
      next = std::max(next + every, now);
      cv_.wait_until(lock, next, [this] { return stop_; });
    }
  });
}

ServiceManager::Probe HealthzProbe(std::string host, int port) {
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "::" || host == "[::]") host = "::1";
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return [host = std::move(host), port](int timeout_ms) {
    httplib::Client client(host, port);
    const auto timeout = std::chrono::milliseconds(timeout_ms);
    client.set_connection_timeout(timeout);
    client.set_read_timeout(timeout);
    client.set_write_timeout(timeout);
    return static_cast<bool>(client.Get("/healthz"));
  };
}

}  // namespace okr::api
