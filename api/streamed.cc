// Answers written as they are sent: chunked, a piece at a time, so a big
// answer is never in memory at once.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "api/handler.h"

namespace okr::api {

namespace {

// Thrown by a streamed answer's sink when the client has gone: the rest
// of the answer is not written.
struct ClientGone {};

// Writes the answer `write` produces to `sink`, a piece each time `write`
// hands one on; false when the client went away before the end.
bool WriteToSink(const std::function<void(const TextSink&)>& write, httplib::DataSink& sink) {
  try {
    write([&](std::string_view piece) {
      if (!sink.write(piece.data(), piece.size())) throw ClientGone{};
    });
  } catch (const ClientGone&) {
    return false;
  } catch (...) {
    // Headers are gone already: the answer can only be cut short (no final
    // chunk, so the client sees a broken answer, never a complete one).
    // The provider runs outside cpp-httplib's handler guard, so nothing
    // may escape it.
    return false;
  }
  sink.done();
  return true;
}

}  // namespace

void StreamText(Call& c, int status, const std::string& content_type,
                std::function<void(const TextSink&)> write) {
  c.res.status = status;
  c.streamed = true;
  auto provider = [write = std::move(write)](size_t, httplib::DataSink& sink) {
    return WriteToSink(write, sink);
  };
  c.res.set_chunked_content_provider(content_type, std::move(provider));
}

void StreamJson(Call& c, int status, std::function<void(JsonOut&)> write) {
  StreamText(c, status, "application/json; charset=utf-8",
             [write = std::move(write)](const TextSink& hand) {
               // Nothing is handed on but by `write`'s own flushes: it may
               // hold the projection's lock between them, and a slow client
               // must not hold it.
               JsonOut out(hand, SIZE_MAX);
               write(out);
               out.Flush();
             });
}

}  // namespace okr::api
