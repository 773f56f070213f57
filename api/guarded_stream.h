// The stream okrd's HTTP transport (api/transport.cc) serves each
// connection through: cpp-httplib's reads and writes, with the limits its
// own stream lacks and fewer system calls per request.
#pragma once

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include "api/server.h"
#include "api/transport.h"

namespace okr::api {

using SteadyClock = std::chrono::steady_clock;

inline int MillisUntil(SteadyClock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, INT32_MAX));
}

// A connection as cpp-httplib reads and writes it, with the limits its
// own stream lacks. A request — line, headers and body — must arrive
// within kRequestReceiveSeconds of its first byte (a client trickling one
// byte a second is cut off), its line and headers within
// kMaxHeaderBlockBytes (cpp-httplib limits each header line, not how many
// there are). Hands cpp-httplib the line and headers only: the body is
// read by ReceiveBody (from cpp-httplib's setup-request hook), after which
// EndRequest() makes reads answer end-of-stream until the next request,
// so cpp-httplib never reads a body itself.
class GuardedStream final : public httplib::Stream {
 public:
  GuardedStream(int sock, time_t write_timeout_s)
      : sock_(sock), write_timeout_ms_(static_cast<int>(write_timeout_s * 1000)) {}

  // Waits up to `idle` for the next request (or for bytes already here);
  // false when none comes or `stopping` turns true. Starts the request's
  // receive deadline.
  bool WaitForRequest(std::chrono::seconds idle, const std::function<bool()>& stopping) {
    assert(state_ == State::kBetween || state_ == State::kReceived);
    auto until = SteadyClock::now() + idle;
    while (off_ == len_) {
      if (stopping()) return false;
      int wait = std::min(MillisUntil(until), 100);
      int ready = Poll(POLLIN, wait);
      if (ready < 0) return false;
      if (ready > 0) break;
      if (MillisUntil(until) == 0) return false;
    }
    assert(held_.empty());
    hold_next_write_ = false;
    state_ = State::kReceiving;
    in_headers_ = true;
    header_bytes_ = 0;
    tail_ = 0;
    deadline_ = SteadyClock::now() + std::chrono::seconds(kRequestReceiveSeconds);
    return true;
  }
  // The request is in (`refused`: okrd refused it, perhaps before its body).
  void EndRequest(bool refused) {
    assert(state_ == State::kReceiving && !in_headers_);
    state_ = refused ? State::kRefused : State::kReceived;
    hold_next_write_ = true;
  }
  // The request was read to its end and served: the connection may carry another.
  bool reusable() const { return state_ == State::kReceived && !broken_; }
  // The request missed its receive deadline.
  bool timed_out() const { return timed_out_; }
  // The client may still be sending a request okrd has not read (and
  // will not): it is refused, or broke a limit while it still sends.
  bool unread_input() const {
    return (state_ == State::kReceiving || state_ == State::kRefused) && !timed_out_ &&
           !peer_closed_;
  }

  bool is_readable() const override {
    return off_ < len_ || state_ != State::kReceiving || Poll(POLLIN, MillisUntil(deadline_)) > 0;
  }
  bool is_writable() const override { return Poll(POLLOUT, write_timeout_ms_) > 0; }

  ssize_t read(char* ptr, size_t size) override {
    if (state_ == State::kReceived || state_ == State::kRefused)
      return 0;  // the body was read (or never will be)
    if (broken_ || state_ != State::kReceiving) return -1;
    if (off_ == len_) {
      // What already arrived is taken without waiting: usually the whole
      // request, the moment WaitForRequest saw its first bytes.
      ssize_t n = Receive(MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        int wait = MillisUntil(deadline_);
        int ready = wait == 0 ? 0 : Poll(POLLIN, wait);
        if (ready <= 0) {
          timed_out_ = ready == 0;
          broken_ = true;
          return -1;
        }
        n = Receive(0);
      }
      if (n <= 0) {
        peer_closed_ = true;
        broken_ = true;
        return n;
      }
      off_ = 0;
      len_ = static_cast<size_t>(n);
    }
    size_t n = std::min(size, len_ - off_);
    if (in_headers_) {
      // Hand out the headers up to the blank line that ends them.
      for (size_t i = 0; i < n; ++i) {
        tail_ = (tail_ << 8) | static_cast<unsigned char>(buf_[off_ + i]);
        if (tail_ == 0x0d0a0d0a) {  // CR LF CR LF
          in_headers_ = false;
          n = i + 1;
          break;
        }
      }
      header_bytes_ += n;
      if (in_headers_ && header_bytes_ > kMaxHeaderBlockBytes) {
        broken_ = true;
        return -1;
      }
    }
    std::memcpy(ptr, buf_ + off_, n);
    off_ += n;
    return static_cast<ssize_t>(n);
  }

  // What cpp-httplib writes from now on is dropped: the connection was
  // taken (TakeConnection) and its new owner writes the answer.
  void DiscardWrites() { discarding_ = true; }

  // SendPieces on this connection, after the answer's held head (write),
  // unless its writes are discarded.
  bool WriteAll(std::initializer_list<std::string_view> pieces) {
    if (discarding_) return true;
    if (held_.empty()) return SendPieces(sock_, pieces, write_timeout_ms_);
    std::array<std::string_view, 4> all{held_};
    assert(pieces.size() < all.size());
    std::copy(pieces.begin(), pieces.end(), all.begin() + 1);
    bool sent = SendPieces(sock_, std::span(all.data(), pieces.size() + 1), write_timeout_ms_);
    held_.clear();
    return sent;
  }
  // Sends the answer's head if it is still held: the answer had no body.
  bool Flush() { return WriteAll({}); }

  // cpp-httplib writes an answer's status line and headers in one write,
  // then its body in others. The head is held and goes out with the
  // body's first piece, in one segment: the client wakes once, not twice.
  ssize_t write(const char* ptr, size_t size) override {
    if (hold_next_write_ && !discarding_) {
      hold_next_write_ = false;
      held_.assign(ptr, size);
      return static_cast<ssize_t>(size);
    }
    return WriteAll({std::string_view(ptr, size)}) ? static_cast<ssize_t>(size) : -1;
  }

  // Asked for each request; the same for the connection's life.
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    if (remote_ip_.empty()) Name(&::getpeername, &remote_ip_, &remote_port_);
    ip = remote_ip_;
    port = remote_port_;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    if (local_ip_.empty()) Name(&::getsockname, &local_ip_, &local_port_);
    ip = local_ip_;
    port = local_port_;
  }
  socket_t socket() const override { return sock_; }

  static void Describe(const sockaddr_storage& addr, std::string& ip, int& port) {
    char text[INET6_ADDRSTRLEN] = {};
    if (addr.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
      ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
      port = ntohs(a->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
      ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
      port = ntohs(a->sin6_port);
    }
    ip = text;
  }

 private:
  enum class State {
    kBetween,    // no request yet
    kReceiving,  // a request's line, headers or body are arriving
    kReceived,   // the request is in; reads answer end-of-stream
    kRefused,    // the request was refused; reads answer end-of-stream
  };

  ssize_t Receive(int flags) {
    ssize_t n;
    do {
      n = ::recv(sock_, buf_, sizeof buf_, flags);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  void Name(int (*name)(int, sockaddr*, socklen_t*), std::string* ip, int* port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (name(sock_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) Describe(addr, *ip, *port);
  }

  int Poll(short events, int timeout_ms) const {
    pollfd p{sock_, events, 0};
    int r;
    do {
      r = ::poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r > 0 && (p.revents & (POLLERR | POLLNVAL))) return -1;
    return r;
  }

  int sock_;
  int write_timeout_ms_;
  char buf_[4096];
  size_t off_ = 0, len_ = 0;
  State state_ = State::kBetween;
  bool in_headers_ = false;
  bool broken_ = false;           // a limit broken, or the peer gone: the connection closes
  bool timed_out_ = false;        // the receive deadline passed
  bool peer_closed_ = false;      // the peer closed or reset the connection
  bool discarding_ = false;       // taken: writes are dropped (DiscardWrites)
  bool hold_next_write_ = false;  // the request is in: the next write is its answer's head
  std::string held_;              // the answer's head, until its body is written
  mutable std::string remote_ip_, local_ip_;
  mutable int remote_port_ = 0, local_port_ = 0;
  size_t header_bytes_ = 0;
  uint32_t tail_ = 0;
  SteadyClock::time_point deadline_{};
};

}  // namespace okr::api
