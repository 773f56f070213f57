// The cascade: the unit tree with the objectives each unit owns and the
// mean progress of every subtree, each judged against the cycle's pace.
#include <cassert>
#include <map>

#include "eventstore/base/time.h"
#include "projections/read/view.h"

namespace okr {

using nlohmann::json;

struct View::CascadeIndex {
  std::map<std::string, std::vector<const Unit*>> children;    // active units under each unit
  std::map<std::string, std::vector<const Objective*>> owned;  // the cycle's objectives by owner
};

Result<CascadeAnswer> View::CascadeNodes(const std::string& cycle, const std::string& root) {
  const CycleFields* cycle_fields = cycle.empty() ? nullptr : CycleAt(cycle);
  if (!cycle.empty() && !cycle_fields) return Status::NotFound("no cycle " + cycle, "cycle");
  if (!root.empty() && !UnitAt(root)) return Status::NotFound("no unit " + root, "root");
  CascadeIndex index;
  std::vector<const Unit*> roots;
  for (const auto& [id, u] : p_.units()) {
    const UnitFields* f = u.FieldsAt(as_of_);
    if (!f || f->retired) continue;
    if (root.empty() ? f->parent.empty() : id == root) roots.push_back(&u);
    if (!f->parent.empty()) index.children[f->parent].push_back(&u);
  }
  for (const Objective* o : Objectives({cycle, "", false})) {
    index.owned[o->FieldsAt(as_of_)->owner].push_back(o);
  }
  CascadeAnswer answer;
  for (const Unit* r : roots) {
    double sum = 0;
    answer.nodes.push_back(CascadeNodeOf(*r, index, 0, cycle_fields, &sum));
  }
  answer.pace.at_us = PaceAtUs();
  if (cycle_fields) answer.pace.expected = PaceOf(*cycle_fields, answer.pace.at_us, 0).expected;
  assert(root.empty() || answer.nodes.size() == 1);  // the root is an active unit at as_of
  return answer;
}

CascadeNode View::CascadeNodeOf(const Unit& u, const CascadeIndex& index, int depth,
                                const CycleFields* cycle, double* subtree_sum) {
  assert(u.FieldsAt(as_of_) != nullptr);  // only units that exist at as_of are indexed
  CascadeNode node{UnitRowOf(u), {}, {}, 0, std::nullopt, std::nullopt};
  // Summed in this order (own objectives, then each child's subtree) so
  // the mean is the same double however the tree is walked.
  double sum = 0;
  if (auto it = index.owned.find(u.id); it != index.owned.end()) {
    for (const Objective* o : it->second) {
      node.objectives.push_back(ObjectiveRowOf(*o));
      sum += node.objectives.back().progress;
      ++node.objective_count;
    }
  }
  auto kids = index.children.find(u.id);
  if (depth < static_cast<int>(p_.units().size()) && kids != index.children.end()) {
    for (const Unit* child : kids->second) {
      node.children.push_back(CascadeNodeOf(*child, index, depth + 1, cycle, &sum));
      node.objective_count += node.children.back().objective_count;
    }
  }
  if (node.objective_count) node.progress = sum / static_cast<double>(node.objective_count);
  if (cycle) node.pace = PaceOf(*cycle, PaceAtUs(), node.progress);
  *subtree_sum += sum;
  return node;
}

Result<json> View::Cascade(const std::string& cycle, const std::string& root) {
  OKR_ASSIGN_OR_RETURN(CascadeAnswer answer, CascadeNodes(cycle, root));
  return RenderCascade(answer);
}

namespace {

json RenderCascadeNode(const CascadeNode& node) {
  json objectives = json::array(), kids = json::array();
  for (const ObjectiveRow& o : node.objectives) objectives.push_back(RenderObjective(o));
  for (const CascadeNode& child : node.children) kids.push_back(RenderCascadeNode(child));
  return {{"unit", RenderUnit(node.unit)},
          {"objectives", std::move(objectives)},
          {"children", std::move(kids)},
          {"objective_count", node.objective_count},
          {"progress", node.progress ? json(*node.progress) : json(nullptr)},
          {"pace", node.pace ? RenderPace(*node.pace) : json(nullptr)}};
}

}  // namespace

json RenderCascade(const CascadeAnswer& cascade) {
  json out = json::array();
  for (const CascadeNode& node : cascade.nodes) out.push_back(RenderCascadeNode(node));
  const CascadePace& pace = cascade.pace;
  return {{"nodes", std::move(out)},
          {"pace",
           {{"at", FormatTimeUs(pace.at_us)},
            {"expected", pace.expected ? json(*pace.expected) : json(nullptr)}}}};
}

}  // namespace okr
