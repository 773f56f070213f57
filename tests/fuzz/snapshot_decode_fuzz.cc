// Snapshot bytes from anywhere, as a snapshot's one part:
// SnapshotCodec::Decode must refuse what is not a snapshot (kCorruption)
// and never crash; what it accepts must encode again to parts that decode
// to the same encoding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "projections/service/snapshot.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> parts{std::string(reinterpret_cast<const char*>(data), size)};
  okr::Hash hash{};
  auto projection = okr::SnapshotCodec::Decode(parts, &hash);
  if (!projection.ok()) {
    FUZZ_CHECK(projection.status().code() == okr::Status::Code::kCorruption);
    return 0;
  }
  std::vector<std::string> again = okr::SnapshotCodec::Encode(*projection, hash);
  okr::Hash hash2{};
  auto reread = okr::SnapshotCodec::Decode(again, &hash2);
  FUZZ_CHECK(reread.ok());
  FUZZ_CHECK(hash2 == hash);
  FUZZ_CHECK(okr::SnapshotCodec::Encode(*reread, hash2) == again);
  return 0;
}
