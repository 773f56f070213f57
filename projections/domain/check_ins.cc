// A key result's check-ins: the arena that holds them, the index of its
// latest measurement, its value and progress at a point, and the series as
// corrected.
#include "projections/domain/projection.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <unordered_map>

namespace okr {

CheckInArena::CheckInArena(const CheckInArena& other) : size_(other.size_) {
  for (size_t chunk = 0; chunk < other.chunks_.size(); ++chunk) {
    chunks_.push_back(std::make_unique_for_overwrite<Room[]>(kChunkSize));
    const size_t used = std::min(kChunkSize, size_ - chunk * kChunkSize);
    std::memcpy(chunks_.back().get(), other.chunks_[chunk].get(), used * sizeof(Room));
  }
}

uint32_t CheckInArena::Append(const CheckIn& ci) {
  if (size_ == UINT32_MAX) {
    std::fputs("okrd: more than 4 billion check-ins in one projection\n", stderr);
    std::abort();  // beyond any log okrd is built for; a position would wrap
  }
  if ((size_ & kChunkMask) == 0) {
    assert(chunks_.size() == size_ >> kChunkBits);  // every chunk before is full
    chunks_.push_back(std::make_unique_for_overwrite<Room[]>(kChunkSize));
  }
  std::construct_at(At(size_), ci);
  return size_++;
}

void CheckIns::Append(CheckInArena* arena, const CheckIn& ci) {
  assert(arena_ == nullptr || arena_ == arena);  // one key result, one arena
  arena_ = arena;
  auto newest = static_cast<uint32_t>(entries_.size());
  // Seqs only grow, so on a tie in measured_at the newcomer wins.
  if (!entries_.empty() && ci.measured_at_us < latest_measured_at_us_) {
    newest = entries_.back().latest;
  } else {
    latest_measured_at_us_ = ci.measured_at_us;
    latest_value_ = ci.value;
  }
  entries_.push_back({arena->Append(ci), newest});
  latest_ = newest;
  newest_seq_ = ci.meta.seq;
  assert((*this)[LatestUpTo(size() - 1)].measured_at_us == latest_measured_at_us_);
}

bool CheckIns::operator==(const CheckIns& other) const {
  if (size() != other.size()) return false;
  for (size_t i = 0; i < size(); ++i) {
    if (LatestUpTo(i) != other.LatestUpTo(i) || (*this)[i] != other[i]) return false;
  }
  return true;
}

size_t KeyResult::CheckInsKnownAt(uint64_t as_of) const {
  if (check_ins.empty() || as_of >= check_ins.newest_seq()) return check_ins.size();
  return static_cast<size_t>(
      std::upper_bound(check_ins.begin(), check_ins.end(), as_of,
                       [](uint64_t s, const CheckIn& ci) { return s < ci.meta.seq; }) -
      check_ins.begin());
}

// --- Progress ---

CurrentValue ValueOf(const KeyResult& kr, const KeyResultFields& fields, uint64_t as_of,
                     int64_t at_us) {
  CurrentValue out{fields.start, std::nullopt};
  const size_t known = kr.CheckInsKnownAt(as_of);
  const CheckIn* found = nullptr;
  if (known > 0 && known == kr.check_ins.size() && at_us >= kr.check_ins.latest_measured_at_us()) {
    // The head's latest, read without the arena unless a correction may apply.
    out.check_in = kr.check_ins.latest();
    out.value = kr.check_ins.latest_value();
    assert(out.check_in == kr.check_ins.LatestUpTo(known - 1) &&
           kr.check_ins[*out.check_in].value == out.value);
    if (kr.corrections.empty()) return out;
    found = &kr.check_ins[*out.check_in];
  } else if (known > 0 &&
             at_us >= kr.check_ins[kr.check_ins.LatestUpTo(known - 1)].measured_at_us) {
    // The latest known check-in was measured by `at`: it is the answer.
    out.check_in = kr.check_ins.LatestUpTo(known - 1);
    found = &kr.check_ins[*out.check_in];
  } else {
    // Seq order: nothing after the first `known` is known.
    for (size_t i = 0; i < known; ++i) {
      const CheckIn& ci = kr.check_ins[i];
      if (ci.measured_at_us > at_us) continue;
      if (found == nullptr || ci.measured_at_us >= found->measured_at_us) {  // ties: later seq
        out.check_in = i;
        found = &ci;
      }
    }
  }
  if (found != nullptr) {
    out.value = found->value;
    for (const Correction& c : kr.corrections) {
      if (c.meta.seq > as_of) break;
      if (c.check_in == found->id) out.value = c.value;
    }
  }
  return out;
}

double KeyResultProgress(const KeyResultFields& f, double current) {
  double span = f.target - f.start;
  if (span == 0 || !std::isfinite(span)) return 0;
  double p = (current - f.start) / span;
  if (std::isnan(p)) return 0;
  // A key result at its start going down (start 10, target 0) divides 0 by
  // a negative span: −0, which answers would render as "-0.0". It is 0.
  if (p == 0) return 0;
  return std::clamp(p, 0.0, 1.0);  // ±inf (a tiny span) clamps to 1 or 0
}

std::vector<SeriesPoint> CheckInOrder(const KeyResult& kr, uint64_t as_of) {
  const size_t known = kr.CheckInsKnownAt(as_of);
  std::vector<SeriesPoint> out(known);
  // One pass over the corrections, each found by id: O(check-ins +
  // corrections), not their product. Corrections come in seq order, so
  // the last one known for a check-in is the value it ends with.
  std::unordered_map<uint32_t, size_t> position;  // by the check-in id's handle
  position.reserve(known);
  for (size_t i = 0; i < known; ++i) {
    out[i] = {i, kr.check_ins[i].value};
    position.emplace(kr.check_ins[i].id.handle(), i);
  }
  for (const Correction& c : kr.corrections) {
    if (c.meta.seq > as_of) break;
    auto it = position.find(c.check_in.handle());
    if (it != position.end()) out[it->second].value = c.value;
  }
  assert(position.size() == known);  // check-in ids are unique
  // check_ins is in seq order, so a stable sort by measured_at breaks ties by seq.
  std::stable_sort(out.begin(), out.end(), [&](const SeriesPoint& a, const SeriesPoint& b) {
    return kr.check_ins[a.index].measured_at_us < kr.check_ins[b.index].measured_at_us;
  });
  return out;
}

std::vector<CheckIn> CheckInSeries(const KeyResult& kr, uint64_t as_of) {
  std::vector<CheckIn> out;
  for (const SeriesPoint& point : CheckInOrder(kr, as_of)) {
    out.push_back(kr.check_ins[point.index]);
    out.back().value = point.value;
  }
  return out;
}

}  // namespace okr
