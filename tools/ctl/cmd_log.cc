// okrctl dump and head: the log of a data directory as it is stored,
// opened read-only so that a broken log can be read too.
#include <cassert>
#include <cstdint>
#include <iostream>

#include "eventstore/base/time.h"
#include "eventstore/event_codec.h"
#include "eventstore/event_json.h"
#include "tools/ctl/cmd_common.h"

namespace okr::ctl::cmd {

using nlohmann::json;

int Dump(const std::string& dir, uint64_t after, uint64_t limit) {
  auto store = OpenForReading(dir);
  if (!store.ok()) return Fail("cannot open " + dir + ": " + store.status().ToString());
  int rc = kExitOk;
  uint64_t written = 0;
  Status s = (*store)->Scan(after + 1, UINT64_MAX, [&](uint64_t seq, std::string_view bytes) {
    assert(seq > after);
    auto decoded = DecodedEvent::Decode(bytes);
    if (!decoded.ok()) {
      // An undecodable event ends the dump: what follows it is suspect.
      std::cerr << "okrctl: seq " << seq << ": " << decoded.status().message() << "\n";
      rc = kExitFailed;
      return false;
    }
    json line = EventToJson((*decoded)->event());
    line["hash"] = ToHex(Sha256(bytes));
    std::cout << line.dump() << "\n";
    return ++written < limit;
  });
  if (!s.ok()) return Fail(s.ToString());
  assert(written <= limit || limit == 0);
  return rc;
}

int PrintHead(const std::string& dir) {
  auto store = OpenForReading(dir);
  if (!store.ok()) return Fail("cannot open " + dir + ": " + store.status().ToString());
  Head head = (*store)->head();
  // An empty log has no time of its last event.
  std::cout << json{{"seq", head.seq},
                    {"head_hash", ToHex(head.hash)},
                    {"recorded_at", head.seq ? FormatTimeUs(head.recorded_at_us) : std::string()}}
                   .dump()
            << "\n";
  return kExitOk;
}

}  // namespace okr::ctl::cmd
