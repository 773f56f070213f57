// Reading the log on a thread of its own while the caller works on what
// was read: for bulk readers whose own work per event costs about what
// RocksDB's reading does (a rebuild of the projection, a chain check), so
// on two cores the two overlap instead of adding up.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "eventstore/base/status.h"

namespace okr {

// Takes one stored event; false stops the reading.
using EventSink = std::function<bool(uint64_t seq, std::string_view bytes)>;

// Runs `read` on a thread of its own with a sink that copies each event
// into one of a few batches; `fn` gets those events on the caller's
// thread, in the order read, while `read` goes on with the next batch.
// The view `fn` gets is valid only during the call. When `fn` returns
// false the reading stops and ReadAhead returns Ok, as EventStore::Scan
// does; otherwise it returns what `read` returned, after `fn` has had
// every event read before it.
Status ReadAhead(const std::function<Status(const EventSink& sink)>& read, const EventSink& fn);

}  // namespace okr
