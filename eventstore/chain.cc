#include "eventstore/chain.h"

#include <cassert>
#include <cstring>

namespace okr {

bool ChainChecker::Fail(uint64_t seq, std::string problem) {
  assert(seq > 0 && "seqs start at 1");
  if (!report_.ok) return false;  // the first problem stands
  report_.ok = false;
  report_.first_bad_seq = seq;
  report_.problem = std::move(problem);
  return false;
}

uint64_t& ChainChecker::VersionOf(std::string_view entity) {
  if (auto it = versions_.find(entity); it != versions_.end()) return it->second;
  return versions_.emplace(std::string(entity), 0).first->second;
}

bool ChainChecker::Add(uint64_t seq, std::string_view bytes) {
  if (!report_.ok) return false;
  const bool stored = source_ == ChainSource::kStored;
  const uint64_t expected = next_seq();
  if (seq != expected) {
    if (seq < expected) return Fail(expected, "seq out of order");
    return Fail(expected,
                stored ? "event missing (next stored seq is " + std::to_string(seq) + ")"
                       : "event missing (the next one served is seq " + std::to_string(seq) + ")");
  }
  auto decoded = scratch_.Read(bytes, DecodeCheck::kFull);
  if (!decoded.ok()) return Fail(seq, decoded.status().message());
  auto ev = *decoded;
  if (ev.getSeq() != seq) {
    return Fail(seq, (stored ? "stored under seq " : "served as seq ") + std::to_string(seq) +
                         " but says seq " + std::to_string(ev.getSeq()));
  }
  auto prev_field = ev.getPrevHash();
  if (prev_field.size() != prev_.size() ||
      std::memcmp(prev_field.begin(), prev_.data(), prev_.size()) != 0) {
    return Fail(seq, "prevHash does not match the previous event");
  }
  if (ev.getRecordedAt() < last_time_) return Fail(seq, "recordedAt goes back in time");
  auto entity = ev.getEntity();
  uint64_t& version = VersionOf(std::string_view(entity.begin(), entity.size()));
  if (ev.getVersion() != version + 1) {
    return Fail(seq, "entity version " + std::to_string(ev.getVersion()) + " follows " +
                         std::to_string(version));
  }
  version = ev.getVersion();
  last_time_ = ev.getRecordedAt();
  prev_ = Sha256(bytes);
  report_.events = seq;
  report_.head_hash = prev_;
  assert(report_.ok && next_seq() == seq + 1);
  return true;
}

}  // namespace okr
