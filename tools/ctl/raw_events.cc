#include "tools/ctl/raw_events.h"

#include <algorithm>
#include <cassert>

#include "api/routes/request.h"
#include "eventstore/format.h"

namespace okr::ctl {

Status FetchRawEvents(Client& client, uint64_t up_to, const RawEventFn& fn,
                      const std::function<void(uint64_t)>& progress, uint64_t after) {
  while (after < up_to) {
    const uint64_t limit = std::min<uint64_t>(api::kMaxRawEvents, up_to - after);
    RawFrameReader reader(after + 1, after + limit);
    Status bad = Status::Ok();
    HttpAnswer a = client.GetStreamed(
        "/v1/events/raw?after=" + std::to_string(after) + "&limit=" + std::to_string(limit),
        [&](const char* data, size_t n) {
          bad = reader.Feed(std::string_view(data, n), fn);
          if (progress && reader.next_seq() > after + 1) progress(reader.next_seq() - 1);
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

}  // namespace okr::ctl
