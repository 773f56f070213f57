// The live feeds' routes (SPEC §8): each checks its request, holds a
// place in the hub, then takes the connection from cpp-httplib and hands
// it to the hub (streams.h), which sends the answer from then on.
#include "api/handler.h"
#include "api/transport.h"

namespace okr::api {

// Where a stream starts: after the seq in Last-Event-ID (an EventSource
// resuming), which wins, or in after= (0: the log's beginning). Answers
// 400 for one that is not a seq or is beyond the head: the client has
// seen a log this okrd does not hold.
std::optional<uint64_t> Server::Routes::StreamAfter(Call& c) {
  std::optional<uint64_t> after;
  const char* field = "after";
  if (c.req.has_header("Last-Event-ID")) {
    field = "Last-Event-ID";
    after = ParseUnsigned(c.req.get_header_value("Last-Event-ID"));
    if (!after) {
      c.Fail(
          ApiError{400, "malformed", "Last-Event-ID must be a seq (an id: of this stream)", field});
      return std::nullopt;
    }
  } else {
    after = ParseAfter(c, "seq");
    if (!after) return std::nullopt;
  }
  const uint64_t head = store_->head().seq;
  if (*after > head) {
    c.Fail(ApiError{400, "malformed",
                    std::string(field) + " " + std::to_string(*after) +
                        " is beyond the log's head (" + std::to_string(head) +
                        "): that log is not this one",
                    field});
    return std::nullopt;
  }
  return after;
}

void Server::Routes::EventStream(Call& c) {
  StreamRequest request;
  request.kind = StreamKind::kEvents;
  std::string raw = c.ParamOr("raw", "false");
  if (raw != "true" && raw != "false") {
    return c.Fail(ApiError{400, "malformed", "raw is true or false", "raw"});
  }
  request.raw = raw == "true";
  auto after = StreamAfter(c);
  if (!after) return;
  request.after = *after;
  OpenStream(c, std::move(request));
}

void Server::Routes::ChangeStream(Call& c) {
  StreamRequest request;
  request.kind = StreamKind::kChanges;
  auto cycle = IdParam(c, "cycle");
  if (!cycle) return;
  request.cycle = *std::move(cycle);
  if (!request.cycle.empty()) {
    const Status known =
        projector_->Read([&](const Projection& p) { return CycleKnown(p, request.cycle); });
    if (!known.ok()) return c.Fail(known);
  }
  auto after = StreamAfter(c);
  if (!after) return;
  request.after = *after;
  OpenStream(c, std::move(request));
}

// Holds a place (503 with Retry-After when every one is taken), writes
// the answer's head for the hub to send, and hands the connection over.
void Server::Routes::OpenStream(Call& c, StreamRequest request) {
  if (c.req.method == "HEAD") {  // cpp-httplib routes HEAD here: the head, and no stream
    c.res.status = 200;
    c.res.set_header("Okrd-Head-Seq", std::to_string(store_->head().seq));
    c.res.set_content("", "text/event-stream; charset=utf-8");
    return;
  }
  if (!streams_.Reserve()) {
    c.res.set_header("Retry-After", std::to_string(kRetryAfterSeconds));
    return c.Fail(503, "every stream okrd serves at once (--max-streams) is open; retry later");
  }
  std::string head =
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/event-stream; charset=utf-8\r\n"
      "Cache-Control: no-store\r\n"
      "Connection: close\r\n"
      "X-Content-Type-Options: nosniff\r\n"
      "X-Accel-Buffering: no\r\n"
      "X-Request-Id: " +
      c.request_id + "\r\nOkrd-Head-Seq: " + std::to_string(store_->head().seq) + "\r\n";
  if (const char* status = UnhealthyStatus())
    head += std::string("Okrd-Status: ") + status + "\r\n";
  request.head = head + "\r\n";
  request.request_id = c.request_id;
  c.res.status = 200;  // for the request's log line and metrics; the hub answers
  c.streamed = true;
  TakeConnection(
      [this, request = std::move(request)](int sock, std::function<void()> release) mutable {
        streams_.Adopt(sock, std::move(release), std::move(request));
      });
}

}  // namespace okr::api
