// okrd under systemd (Type=notify): readiness, status, stopping, and the
// watchdog. Outside systemd (no NOTIFY_SOCKET) every call does nothing.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace okr::api {

class ServiceManager {
 public:
  // The watchdog's probe of the address okrd listens on: true when okrd
  // answered within `timeout_ms`, whatever the answer (a 503 is an answer:
  // a damaged log or a full queue is not fixed by a restart).
  using Probe = std::function<bool(int timeout_ms)>;
  // Called when a probe gets no answer, with how long since the last one.
  using OnMissed = std::function<void(int64_t silent_ms)>;

  ServiceManager() = default;
  ~ServiceManager();
  ServiceManager(const ServiceManager&) = delete;
  ServiceManager& operator=(const ServiceManager&) = delete;

  // READY=1 and a STATUS line: okrd listens and answers.
  void Ready(const std::string& status);
  // When the unit sets WatchdogSec=, probes okrd every quarter of it on a
  // thread of its own and sends WATCHDOG=1 after each answered probe, so a
  // process that stops answering is restarted by systemd. Does nothing
  // without a watchdog.
  void StartWatchdog(Probe probe, OnMissed on_missed);
  // STOPPING=1; no WATCHDOG=1 after it. Returns at once.
  void Stopping();

 private:
  // The watchdog interval systemd asked for, in microseconds; 0 when none.
  static uint64_t WatchdogUsec();

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread watchdog_;
};

// The probe for okrd listening on host:port: GET /healthz over loopback
// when okrd listens on every address.
ServiceManager::Probe HealthzProbe(std::string host, int port);

}  // namespace okr::api
