// A key result's check-ins: the index of its latest measurement, its value
// and progress at a point, and the series as corrected.
#include "projections/domain/projection.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <unordered_map>

namespace okr {

void KeyResult::AddToIndex() {
  uint32_t newest = static_cast<uint32_t>(check_ins.size() - 1);
  // Seqs only grow, so on a tie in measured_at the newcomer wins.
  if (!latest_prefix.empty() &&
      check_ins[newest].measured_at_us < check_ins[latest_prefix.back()].measured_at_us) {
    newest = latest_prefix.back();
  }
  latest_prefix.push_back(newest);
}

void KeyResult::Reindex() {
  std::vector<CheckIn> all = std::move(check_ins);
  check_ins.clear();
  latest_prefix.clear();
  for (auto& ci : all) {
    check_ins.push_back(std::move(ci));
    AddToIndex();
  }
}

size_t KeyResult::CheckInsKnownAt(uint64_t as_of) const {
  if (check_ins.empty() || as_of >= check_ins.back().meta.seq) return check_ins.size();
  return static_cast<size_t>(
      std::upper_bound(check_ins.begin(), check_ins.end(), as_of,
                       [](uint64_t s, const CheckIn& ci) { return s < ci.meta.seq; }) -
      check_ins.begin());
}

// --- Progress ---

CurrentValue ValueOf(const KeyResult& kr, const KeyResultFields& fields, uint64_t as_of,
                     int64_t at_us) {
  CurrentValue out{fields.start, nullptr};
  size_t known = kr.CheckInsKnownAt(as_of);
  if (known > 0 && at_us >= kr.check_ins[kr.latest_prefix[known - 1]].measured_at_us) {
    // The latest known check-in was measured by `at`: it is the answer.
    out.check_in = &kr.check_ins[kr.latest_prefix[known - 1]];
  } else if (known > 0) {
    for (const CheckIn& ci : kr.check_ins) {
      if (ci.meta.seq > as_of) break;  // seq order: nothing later is known
      if (ci.measured_at_us > at_us) continue;
      if (out.check_in == nullptr || ci.measured_at_us > out.check_in->measured_at_us ||
          (ci.measured_at_us == out.check_in->measured_at_us &&
           ci.meta.seq > out.check_in->meta.seq)) {
        out.check_in = &ci;
      }
    }
  }
  if (out.check_in != nullptr) {
    out.value = out.check_in->value;
    for (const Correction& c : kr.corrections) {
      if (c.meta.seq > as_of) break;
      if (c.check_in == out.check_in->id) out.value = c.value;
    }
  }
  return out;
}

double KeyResultProgress(const KeyResultFields& f, double current) {
  double span = f.target - f.start;
  if (span == 0 || !std::isfinite(span)) return 0;
  double p = (current - f.start) / span;
  if (std::isnan(p)) return 0;
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
