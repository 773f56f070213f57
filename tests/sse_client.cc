#include "tests/sse_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "tests/raw_http.h"

namespace okr::testing {

using Clock = std::chrono::steady_clock;

bool SseClient::Open(int port, const std::string& path, const std::string& token,
                     const std::string& last_event_id, int receive_buffer) {
  Close();
  fd_ = ConnectLoopback(port);
  if (fd_ < 0) return false;
  if (receive_buffer > 0) {
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  }
  std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
  if (!token.empty()) request += "Authorization: Bearer " + token + "\r\n";
  if (!last_event_id.empty()) request += "Last-Event-ID: " + last_event_id + "\r\n";
  request += "\r\n";
  if (!SendAll(fd_, request)) return false;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!Fill(deadline)) return false;
  }
  head_ = buffer_.substr(0, end + 4);
  buffer_.erase(0, end + 4);
  status_ = StatusOf(head_);
  if (status_ != 200) {
    // Not a stream: the rest is the error body (closed after it or not).
    Fill(Clock::now() + std::chrono::milliseconds(200));
    head_ += buffer_;
    buffer_.clear();
  }
  return true;
}

bool SseClient::Fill(Clock::time_point deadline) {
  if (ended_ || fd_ < 0) return false;
  pollfd p{fd_, POLLIN, 0};
  int ready = ::poll(&p, 1, MillisLeft(deadline));
  if (ready <= 0) return false;
  char buf[65536];
  ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) {
    ended_ = true;
    return false;
  }
  buffer_.append(buf, static_cast<size_t>(n));
  return true;
}

std::optional<SseEvent> SseClient::Next(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    size_t end = buffer_.find("\n\n");
    if (end == std::string::npos) {
      if (!Fill(deadline)) return std::nullopt;
      continue;
    }
    std::string block = buffer_.substr(0, end + 1);
    buffer_.erase(0, end + 2);
    SseEvent ev;
    bool any = false;
    for (size_t at = 0; at < block.size();) {
      size_t nl = block.find('\n', at);
      std::string line = block.substr(at, nl - at);
      at = nl + 1;
      if (line.rfind(':', 0) == 0) {
        comments_.push_back(line.substr(line.size() > 1 && line[1] == ' ' ? 2 : 1));
      } else if (line.rfind("id: ", 0) == 0) {
        ev.id = std::stoull(line.substr(4));
        any = true;
      } else if (line.rfind("event: ", 0) == 0) {
        ev.event = line.substr(7);
        any = true;  // an event without an id (a checkpoint) too
      } else if (line.rfind("data: ", 0) == 0) {
        ev.data += line.substr(6);
      }
    }
    if (any) return ev;
  }
}

void SseClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace okr::testing
