#include "projections/read/changes.h"

namespace okr {

std::string CycleOfEntity(const Projection& p, std::string_view entity) {
  auto kind = p.KindOf(entity);
  if (!kind) return "";
  const std::string id(entity);
  switch (*kind) {
    case EntityKind::kCycle:
      return id;
    case EntityKind::kObjective:
      return p.objective(id)->current().cycle;
    case EntityKind::kKeyResult: {
      const Objective* o = p.objective(p.key_result(id)->current().objective);
      return o ? o->current().cycle : "";
    }
    case EntityKind::kCheckIn: {
      const KeyResult* kr = p.KeyResultOfCheckIn(entity);
      const Objective* o = kr ? p.objective(kr->current().objective) : nullptr;
      return o ? o->current().cycle : "";
    }
    case EntityKind::kUnit:
      return "";
  }
  return "";
}

}  // namespace okr
