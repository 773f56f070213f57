#include "tools/ctl/raw_events.h"

#include <algorithm>
#include <cassert>

#include "api/routes/request.h"
#include "eventstore/format.h"
#include "eventstore/read_ahead.h"

namespace okr::ctl {

namespace {

// Progress is told every this many events, and at the end.
constexpr uint64_t kProgressEvents = 4096;

// The pages one after another, each event to `sink` as its frame is cut.
Status FetchPages(Client& client, uint64_t up_to, const EventSink& sink, uint64_t after) {
  while (after < up_to) {
    const uint64_t limit = std::min<uint64_t>(api::kMaxRawEvents, up_to - after);
    RawFrameReader reader(after + 1, after + limit);
    Status bad = Status::Ok();
    HttpAnswer a = client.GetStreamed(
        "/v1/events/raw?after=" + std::to_string(after) + "&limit=" + std::to_string(limit),
        [&](const char* data, size_t n) {
          bad = reader.Feed(std::string_view(data, n), sink);
          return bad.ok() && !reader.stopped();
        });
    OKR_RETURN_IF_ERROR(bad);
    if (reader.stopped()) return Status::Ok();
    if (!a.ok()) return Status::IOError("GET /v1/events/raw: " + a.Describe());
    OKR_RETURN_IF_ERROR(reader.Finish());
    if (reader.next_seq() == after + 1) break;  // okrd has no more: its head is below up_to
    after = reader.next_seq() - 1;
  }
  return Status::Ok();
}

}  // namespace

Status FetchRawEvents(Client& client, uint64_t up_to, const RawEventFn& fn,
                      const std::function<void(uint64_t)>& progress, uint64_t after) {
  // The answer is received and cut into frames on a thread of its own
  // (ReadAhead) while `fn` works on the caller's: every caller decodes,
  // hashes or folds each event, which costs about what receiving it does
  // (cpp-httplib polls and receives 4 KiB at a time), so on two cores the
  // two overlap instead of adding up.
  uint64_t last = after;
  Status s =
      ReadAhead([&](const EventSink& sink) { return FetchPages(client, up_to, sink, after); },
                [&](uint64_t seq, std::string_view bytes) {
                  if (!fn(seq, bytes)) return false;
                  last = seq;
                  if (progress && seq % kProgressEvents == 0) progress(seq);
                  return true;
                });
  if (progress && last > after) progress(last);
  return s;
}

}  // namespace okr::ctl
