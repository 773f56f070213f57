// A Server-Sent Events client over a raw loopback socket, for the live
// feeds' end-to-end tests: it sends one GET, reads the answer's head, then
// hands out events as they arrive (comments kept aside), and can stop
// reading altogether to play a stalled consumer.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace okr::testing {

struct SseEvent {
  uint64_t id = 0;  // the id: line (a seq); 0 for an event without one (a checkpoint)
  std::string event;
  std::string data;
};

class SseClient {
 public:
  SseClient() = default;
  ~SseClient() { Close(); }
  SseClient(const SseClient&) = delete;
  SseClient& operator=(const SseClient&) = delete;

  // Connects to 127.0.0.1:`port` and sends GET `path` with the bearer
  // `token` (if any) and Last-Event-ID (if not empty); `receive_buffer`
  // > 0 sets the socket's SO_RCVBUF first. Waits up to 10 s for the
  // answer's head: false when none came.
  bool Open(int port, const std::string& path, const std::string& token = "",
            const std::string& last_event_id = "", int receive_buffer = 0);
  int status() const { return status_; }
  // The answer's head, or all of the answer when it is not a stream.
  const std::string& head() const { return head_; }
  // The next event, waiting up to `timeout`; nullopt when the stream ended
  // (ended() then says so) or nothing came in time.
  std::optional<SseEvent> Next(std::chrono::milliseconds timeout);
  bool ended() const { return ended_; }
  // Comment lines seen so far (": head 12" → "head 12").
  const std::vector<std::string>& comments() const { return comments_; }
  void Close();

 private:
  bool Fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  int status_ = 0;
  std::string head_;
  std::string buffer_;  // received, not yet parsed
  bool ended_ = false;
  std::vector<std::string> comments_;
};

}  // namespace okr::testing
