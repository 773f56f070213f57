// okrd's HTTP transport: cpp-httplib's server behind the limits its own
// connection handling lacks (SPEC §6 "Bounded requests"). Each connection
// is admitted against a per-address cap and a bounded queue of worker
// threads (503 with Retry-After beyond either); each request's line,
// headers and body must arrive within kRequestReceiveSeconds; every body,
// however it is framed, is read by okrd itself under kMaxBodyBytes.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string_view>

#include "api/metrics.h"
#include "api/server.h"

namespace httplib {
class Server;
class DataSink;
}  // namespace httplib

namespace okr::api {

// A request the transport refused while receiving it (its body too large,
// its framing ambiguous, its deadline passed) reaches cpp-httplib's
// pre-routing handler with these headers set, which the server answers
// from. No client can send them: a header's name ends at its first ':'.
inline constexpr char kRefusedStatusHeader[] = "okrd:refused-status";
inline constexpr char kRefusedFieldHeader[] = "okrd:refused-field";
inline constexpr char kRefusedMessageHeader[] = "okrd:refused-message";

// Takes the connection a route handler's request came on away from
// cpp-httplib, for an answer that outlives the request (a stream, SPEC
// §8) and must not hold a worker thread. Once the handler returns, what
// cpp-httplib writes as the answer is discarded, and instead of reading
// another request or closing the connection the worker thread hands its
// socket to `adopt` and goes back to serving others. `adopt` owns the
// socket from then on; it must call `release` once, from any thread,
// after closing it: until then the connection counts against its client
// address's cap. Only from a route handler, on the thread serving the
// request, and at most once per request.
using ConnectionAdopter = std::function<void(int sock, std::function<void()> release)>;
void TakeConnection(ConnectionAdopter adopt);

// Writes the pieces to `sock`, in order and whole, in as few system calls
// as its send buffer allows (the socket may block or not); false when the
// peer is gone or takes no byte for `timeout_ms`.
bool SendPieces(int sock, std::span<const std::string_view> pieces, int timeout_ms);
inline bool SendPieces(int sock, std::initializer_list<std::string_view> pieces, int timeout_ms) {
  return SendPieces(sock, std::span<const std::string_view>(pieces.begin(), pieces.size()),
                    timeout_ms);
}

// Writes `bytes` as one chunk of a chunked answer (a content provider's),
// from `bytes` straight to the connection: cpp-httplib's DataSink::write
// copies every write twice, into strings it grows as it goes. For a content
// provider running on the thread serving its request (any other writes
// through `sink`), of an answer cpp-httplib does not compress (such as
// application/octet-stream; a compressed answer's chunks are its own).
// False when the client is gone or takes no byte for the write timeout.
bool WriteChunk(httplib::DataSink& sink, std::string_view bytes);

// A cpp-httplib server serving through the guarded transport, sized by
// `options` (threads, max_threads, max_connections_per_address). The
// caller owns it and sets its routes and timeouts; `metrics` (borrowed,
// thread-safe) must outlive it. Its worker threads stop when it is stopped
// or destroyed.
std::unique_ptr<httplib::Server> MakeGuardedHttpServer(const ServerOptions& options,
                                                       Metrics* metrics);

}  // namespace okr::api
