#include "api/transport.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/connection_threads.h"
#include "api/errors.h"
#include "api/guarded_stream.h"
#include "api/routes/request.h"

namespace okr::api {

namespace {

// The request a worker thread serves, while cpp-httplib handles it: where
// TakeConnection leaves the connection's new owner.
struct Serving {
  GuardedStream* stream;
  ConnectionAdopter adopt;  // set once the connection is taken
};
thread_local Serving* t_serving = nullptr;

// --- request bodies ---
//
// okrd reads every request body itself, whatever its framing, under
// kMaxBodyBytes and the receive deadline: cpp-httplib (0.11) enforces its
// payload limit only on a Content-Length, reads chunked bodies and bodies
// without a length (until the client closes) without limit, inflates
// gzip, deflate and br bodies without limit, and reads a too-large
// Content-Length body to its end before answering 413.

// A request refused while it was received; the pre-routing handler
// (Routes) answers it, and the connection closes.
struct Refusal {
  int status;
  std::string field;  // the header at fault
  std::string message;
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

struct BodyFraming {
  bool chunked = false;
  uint64_t length = 0;  // when not chunked; 0: no body
};

Refusal TooLarge() {
  return {413, "", "body larger than " + std::to_string(kMaxBodyBytes) + " bytes"};
}

// How the body of `req` arrives (RFC 9112 §6), from the headers as
// cpp-httplib parsed them. Neither Content-Length nor Transfer-Encoding:
// no body, whatever the method (RFC 9112 §6.3) — okrd never reads until
// the client closes. Refused: framing that reads two ways (both headers,
// or either twice), a transfer coding but chunked, a Content-Length that
// is not a number or is over kMaxBodyBytes, and a compressed body.
std::optional<Refusal> FrameBody(const httplib::Request& req, BodyFraming* framing) {
  size_t codings = req.get_header_value_count("Transfer-Encoding");
  size_t lengths = req.get_header_value_count("Content-Length");
  if (codings + lengths > 1) {
    return Refusal{400, codings > 0 ? "Transfer-Encoding" : "Content-Length",
                   "at most one Content-Length or one Transfer-Encoding header"};
  }
  if (codings == 1) {
    if (!EqualsIgnoreCase(req.get_header_value("Transfer-Encoding"), "chunked")) {
      return Refusal{400, "Transfer-Encoding", "the only transfer coding okrd takes is chunked"};
    }
    framing->chunked = true;
  } else if (lengths == 1) {
    std::string text = req.get_header_value("Content-Length");
    bool digits =
        !text.empty() && text.size() <= 19 &&
        std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    if (!digits) return Refusal{400, "Content-Length", "Content-Length must be a number of bytes"};
    framing->length = std::stoull(text);
    if (framing->length > kMaxBodyBytes) return TooLarge();
  }
  if (framing->chunked || framing->length > 0) {
    auto [from, to] = req.headers.equal_range("Content-Encoding");
    for (auto it = from; it != to; ++it) {
      if (!EqualsIgnoreCase(it->second, "identity")) {
        return Refusal{415, "Content-Encoding",
                       "okrd takes request bodies uncompressed (no Content-Encoding)"};
      }
    }
  }
  return std::nullopt;
}

// What a body that stopped arriving is refused with.
Refusal Unfinished(const GuardedStream& stream) {
  if (stream.timed_out()) {
    return {408, "",
            "the request did not arrive within " + std::to_string(kRequestReceiveSeconds) + " s"};
  }
  return {400, "", "the body ended early or broke a limit"};
}

// Appends `n` bytes from `stream` to *body.
bool ReadBytes(GuardedStream& stream, size_t n, std::string* body) {
  size_t at = body->size();
  body->resize(at + n);
  while (n > 0) {
    ssize_t got = stream.read(body->data() + at, n);
    if (got <= 0) return false;
    at += static_cast<size_t>(got);
    n -= static_cast<size_t>(got);
  }
  return true;
}

int HexValue(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

// One line of chunked framing into *line, without its CR LF (which it
// must end with); false beyond kMaxChunkLineBytes or when the stream ends.
bool ReadChunkLine(GuardedStream& stream, std::string* line) {
  line->clear();
  char ch;
  while (line->size() <= kMaxChunkLineBytes && stream.read(&ch, 1) == 1) {
    if (ch == '\n') {
      if (line->empty() || line->back() != '\r') return false;
      line->pop_back();
      return true;
    }
    line->push_back(ch);
  }
  return false;
}

// A chunked body (RFC 9112 §7.1) into *body: chunk sizes in hex,
// extensions ignored, trailers read and dropped (kMaxHeaderBlockBytes at
// most). Refused the moment a chunk would take the body over kMaxBodyBytes.
std::optional<Refusal> ReadChunked(GuardedStream& stream, std::string* body) {
  const Refusal malformed{400, "Transfer-Encoding", "the chunked body is malformed"};
  std::string line;
  while (true) {
    if (!ReadChunkLine(stream, &line)) return stream.timed_out() ? Unfinished(stream) : malformed;
    size_t digits = 0;
    uint64_t size = 0;
    for (int v; digits < line.size() && (v = HexValue(line[digits])) >= 0; ++digits) {
      size = std::min<uint64_t>(size * 16 + v,
                                kMaxBodyBytes + 1);  // saturates: over the limit is over
    }
    bool rest_ok =
        digits == line.size() || line[digits] == ';' || line[digits] == ' ' || line[digits] == '\t';
    if (digits == 0 || !rest_ok) return malformed;
    if (size > kMaxBodyBytes - body->size()) return TooLarge();
    if (size == 0) break;
    if (!ReadBytes(stream, size, body)) return Unfinished(stream);
    if (!ReadChunkLine(stream, &line)) return stream.timed_out() ? Unfinished(stream) : malformed;
    if (!line.empty()) return malformed;
  }
  for (size_t trailers = 0;; trailers += line.size() + 2) {
    if (trailers > kMaxHeaderBlockBytes)
      return Refusal{400, "Transfer-Encoding", "trailers over 64 KiB"};
    if (!ReadChunkLine(stream, &line)) return stream.timed_out() ? Unfinished(stream) : malformed;
    if (line.empty()) return std::nullopt;
  }
}

// Called (as cpp-httplib's setup-request hook) once a request's line and
// headers are in: reads its body, as FrameBody frames it, into req.body,
// then leaves `req` without a length, so that cpp-httplib reads no more.
// Answers Expect: 100-continue itself, and only for a body it will read.
std::optional<Refusal> ReceiveBody(GuardedStream& stream, httplib::Request& req) {
  bool invited = EqualsIgnoreCase(req.get_header_value("Expect"), "100-continue");
  req.headers.erase("Expect");
  BodyFraming framing;
  if (auto refused = FrameBody(req, &framing)) return refused;
  req.headers.erase("Content-Length");
  req.headers.erase("Transfer-Encoding");
  if (!framing.chunked && framing.length == 0) return std::nullopt;
  if (invited) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    if (stream.write(kContinue.data(), kContinue.size()) !=
        static_cast<ssize_t>(kContinue.size())) {
      return Unfinished(stream);
    }
  }
  if (framing.chunked) return ReadChunked(stream, &req.body);
  req.body.reserve(framing.length);
  if (!ReadBytes(stream, framing.length, &req.body)) return Unfinished(stream);
  return std::nullopt;
}

// cpp-httplib's server, serving each connection through a GuardedStream
// (the keep-alive loop cpp-httplib runs, on that stream), behind two
// limits checked as each connection is accepted: connections per client
// address, and the bounded queue of ConnectionThreads. A connection over
// either is answered 503 with Retry-After and closed.
class GuardedHttpServer final : public httplib::Server {
 public:
  GuardedHttpServer(const ServerOptions& options, Metrics* metrics)
      : ready_threads_(std::max<size_t>(1, options.threads)),
        max_threads_(std::max(ready_threads_, options.max_threads)),
        max_per_address_(std::max<size_t>(1, options.max_connections_per_address)),
        metrics_(metrics) {
    new_task_queue = [this] {
      threads_ = std::make_unique<ConnectionThreads>(ready_threads_, max_threads_,
                                                     max_threads_ * kQueuedConnectionsPerThread);
      return new AdmitOnAcceptingThread(threads_.get());
    };
  }
  ~GuardedHttpServer() override {
    if (threads_) threads_->Shutdown();
  }

 private:
  // cpp-httplib hands each accepted socket to a TaskQueue; this one runs the
  // hand-over at once, on the accepting thread (process_and_close_socket
  // below admits the connection there), and at shutdown waits for the
  // connections being served.
  class AdmitOnAcceptingThread final : public httplib::TaskQueue {
   public:
    explicit AdmitOnAcceptingThread(ConnectionThreads* threads) : threads_(threads) {}
    void enqueue(std::function<void()> fn) override { fn(); }
    void shutdown() override { threads_->Shutdown(); }

   private:
    ConnectionThreads* threads_;
  };

  // On the accepting thread: admits `sock` to a worker thread, or refuses it.
  bool process_and_close_socket(socket_t sock) override {
    std::string address = PeerAddress(sock);
    if (!TakeAddressSlot(address)) {
      Refuse(sock, "per_address", "too many connections from this address; retry after one closes");
      return false;
    }
    bool queued = threads_->Submit([this, sock, address] {
      ConnectionAdopter taken = Serve(sock);
      if (!taken) return ReleaseAddressSlot(address);
      taken(sock, [this, address] { ReleaseAddressSlot(address); });
    });
    if (!queued) {
      ReleaseAddressSlot(address);
      Refuse(sock, "threads_busy", "every worker thread is busy; retry shortly");
    }
    return queued;
  }

  // On a worker thread: the connection's requests, one after another,
  // until it closes (then returns null) or a handler takes it
  // (TakeConnection: then returns the taker, and the socket is open).
  ConnectionAdopter Serve(socket_t sock) {
    GuardedStream stream(sock, write_timeout_sec_);
    Serving serving{&stream, nullptr};
    auto stopping = [this] { return svr_sock_ == INVALID_SOCKET; };
    auto receive_body = [&stream](httplib::Request& req) {
      std::optional<Refusal> refused = ReceiveBody(stream, req);
      stream.EndRequest(refused.has_value());
      if (refused) {
        req.headers.erase("Connection");
        req.set_header("Connection", "close");
        req.set_header(kRefusedStatusHeader, std::to_string(refused->status));
        req.set_header(kRefusedFieldHeader, refused->field);
        req.set_header(kRefusedMessageHeader, refused->message);
      }
    };
    for (size_t left = keep_alive_max_count_; left > 0; --left) {
      if (!stream.WaitForRequest(std::chrono::seconds(keep_alive_timeout_sec_), stopping)) break;
      bool closed = false;
      t_serving = &serving;
      bool ok = process_request(stream, /*close_connection=*/left == 1, closed, receive_body);
      t_serving = nullptr;
      if (serving.adopt) return std::move(serving.adopt);
      if (!stream.Flush()) break;
      if (!ok || closed || !stream.reusable()) break;
    }
    if (stream.timed_out()) metrics_->RequestTimedOut();
    if (stream.unread_input()) Linger(sock);
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return nullptr;
  }

  // Stops sending (the answer is out) and reads away what the client still
  // sends, for at most kLingerMillis.
  static void Linger(socket_t sock) {
    ::shutdown(sock, SHUT_WR);
    auto until = SteadyClock::now() + std::chrono::milliseconds(kLingerMillis);
    char buf[16384];
    for (int left = MillisUntil(until); left > 0; left = MillisUntil(until)) {
      pollfd p{sock, POLLIN, 0};
      if (::poll(&p, 1, left) <= 0 || ::recv(sock, buf, sizeof buf, 0) <= 0) break;
    }
  }

  // Answers 503 with Retry-After and closes, without waiting: this is the
  // accepting thread. The answer fits an empty send buffer.
  void Refuse(socket_t sock, const char* reason, const std::string& message) {
    metrics_->ConnectionRefused(reason);
    std::string body = Dump(ErrorBody("unavailable", message, ""));
    char id[40];
    std::snprintf(id, sizeof id, "conn-%012llx",
                  static_cast<unsigned long long>(++refused_connections_));
    std::string answer =
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Retry-After: " +
        std::to_string(kRetryAfterSeconds) +
        "\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        "Content-Length: " +
        std::to_string(body.size()) +
        "\r\n"
        "Connection: close\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "X-Request-Id: " +
        id + "\r\n\r\n" + body;
    ::send(sock, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    // Reads away what already arrived (the request, usually): closing with
    // unread bytes resets the connection, and the client could lose the answer.
    char buf[16384];
    for (int i = 0; i < 8 && ::recv(sock, buf, sizeof buf, MSG_DONTWAIT) > 0; ++i) {
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
  }

  static std::string PeerAddress(socket_t sock) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    std::string ip;
    int port = 0;
    if (::getpeername(sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
      GuardedStream::Describe(addr, ip, port);
    return ip;
  }
  bool TakeAddressSlot(const std::string& address) {
    std::lock_guard<std::mutex> lock(addresses_mu_);
    size_t& open = connections_per_address_[address];
    if (open >= max_per_address_) return false;
    ++open;
    return true;
  }
  void ReleaseAddressSlot(const std::string& address) {
    std::lock_guard<std::mutex> lock(addresses_mu_);
    auto it = connections_per_address_.find(address);
    assert(it != connections_per_address_.end() && it->second > 0);
    if (--it->second == 0) connections_per_address_.erase(it);
  }

  const size_t ready_threads_, max_threads_, max_per_address_;
  Metrics* metrics_;
  std::unique_ptr<ConnectionThreads> threads_;  // made when serving starts (new_task_queue)
  std::mutex addresses_mu_;
  std::unordered_map<std::string, size_t> connections_per_address_;  // open (or queued) ones
  std::atomic<uint64_t> refused_connections_{0};
};

}  // namespace

void TakeConnection(ConnectionAdopter adopt) {
  assert(t_serving != nullptr && "TakeConnection is for route handlers");
  assert(!t_serving->adopt && adopt);
  t_serving->adopt = std::move(adopt);
  t_serving->stream->DiscardWrites();
}

bool WriteChunk(httplib::DataSink& sink, std::string_view bytes) {
  if (bytes.empty()) return true;  // an empty chunk would end the answer
  if (t_serving == nullptr) return sink.write(bytes.data(), bytes.size());
  char size_line[24];
  int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", bytes.size());
  return t_serving->stream->WriteAll(
      {std::string_view(size_line, static_cast<size_t>(n)), bytes, std::string_view("\r\n")});
}

std::unique_ptr<httplib::Server> MakeGuardedHttpServer(const ServerOptions& options,
                                                       Metrics* metrics) {
  assert(metrics != nullptr);
  return std::make_unique<GuardedHttpServer>(options, metrics);
}

}  // namespace okr::api
