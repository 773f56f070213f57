// Snapshot bytes from anywhere, as a snapshot's parts: consecutive Cap'n
// Proto messages, each as long as its segment table says (a seed of one
// message is a snapshot of one part). SnapshotCodec::Decode must refuse
// what is not a snapshot (kCorruption) and never crash; what it accepts
// must encode again to parts that decode to the same encoding.
#include <capnp/serialize.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "projections/service/snapshot.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

constexpr size_t kMostParts = 64;

std::vector<std::string> Parts(const uint8_t* data, size_t size) {
  std::vector<std::string> parts;
  size_t at = 0;
  while (at < size && parts.size() < kMostParts) {
    const size_t left = size - at;
    size_t take = left;
    if (left >= sizeof(capnp::word)) {
      auto words = kj::heapArray<capnp::word>(left / sizeof(capnp::word));
      std::memcpy(words.begin(), data + at, words.size() * sizeof(capnp::word));
      const size_t expected = capnp::expectedSizeInWordsFromPrefix(words.asPtr());
      take = std::clamp<size_t>(expected * sizeof(capnp::word), sizeof(capnp::word), left);
    }
    parts.emplace_back(reinterpret_cast<const char*>(data + at), take);
    at += take;
  }
  return parts;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> parts = Parts(data, size);
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
