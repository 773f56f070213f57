// The cascade: the unit tree with the objectives each unit owns and the
// mean progress of every subtree, each judged against the cycle's pace.
#include <cassert>
#include <climits>
#include <map>

#include "eventstore/base/time.h"
#include "projections/read/view.h"

namespace okr {

using nlohmann::json;

struct View::CascadeIndex {
  std::map<std::string, std::vector<const Unit*>> children;    // active units under each unit
  std::map<std::string, std::vector<const Objective*>> owned;  // the cycle's objectives by owner
};

Result<CascadeAnswer> View::CascadeNodes(const std::string& cycle, const std::string& root,
                                         std::optional<int> depth) {
  assert(!depth || *depth >= 0);
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
    answer.nodes.push_back(
        CascadeNodeOf(*r, index, 0, depth.value_or(INT_MAX), cycle_fields, &sum));
  }
  answer.pace.at_us = PaceAtUs();
  if (cycle_fields) answer.pace.expected = PaceOf(*cycle_fields, answer.pace.at_us, 0).expected;
  assert(root.empty() || answer.nodes.size() == 1);  // the root is an active unit at as_of
  return answer;
}

CascadeNode View::CascadeNodeOf(const Unit& u, const CascadeIndex& index, int depth, int shown,
                                const CycleFields* cycle, double* subtree_sum) {
  assert(u.FieldsAt(as_of_) != nullptr);  // only units that exist at as_of are indexed
  assert(shown >= kNotShown);
  CascadeNode node{UnitRowOf(u), {}, {}, true, 0, std::nullopt, std::nullopt};
  // Summed in this order (own objectives, then each child's subtree) so
  // the mean is the same double however the tree is walked. A node the
  // answer leaves out only counts: its rows are never copied.
  double sum = 0;
  if (auto it = index.owned.find(u.id); it != index.owned.end()) {
    for (const Objective* o : it->second) {
      if (shown == kNotShown) {
        sum += ObjectiveProgress(*o);
      } else {
        node.objectives.push_back(ObjectiveRowOf(*o));
        sum += node.objectives.back().progress;
      }
      ++node.objective_count;
    }
  }
  auto kids = index.children.find(u.id);
  if (depth < static_cast<int>(p_.units().size()) && kids != index.children.end()) {
    node.expanded = shown > 0;
    for (const Unit* child : kids->second) {
      // Below the depth asked for, a subtree still counts in the roll-up.
      CascadeNode kid = CascadeNodeOf(*child, index, depth + 1,
                                      node.expanded ? shown - 1 : kNotShown, cycle, &sum);
      node.objective_count += kid.objective_count;
      if (node.expanded) node.children.push_back(std::move(kid));
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

// Keys in ascending order (JsonOut): the children come first, so a node's
// subtree is written before its own rows.
void WriteCascadeNode(JsonOut& out, const CascadeNode& node) {
  out.StartObject().Key("children");
  if (node.expanded) {
    out.StartArray();
    for (const CascadeNode& child : node.children) WriteCascadeNode(out, child);
    out.EndArray();
  } else {
    assert(node.children.empty());
    out.Null();
  }
  out.Key("objective_count").Uint(node.objective_count).Key("objectives").StartArray();
  for (const ObjectiveRow& o : node.objectives) WriteObjective(out, o);
  out.EndArray().Key("pace");
  if (node.pace) {
    WritePace(out, *node.pace);
  } else {
    out.Null();
  }
  out.Key("progress").NumberOrNull(node.progress).Key("unit");
  WriteUnit(out, node.unit);
  out.EndObject();
}

}  // namespace

void WriteCascade(JsonOut& out, const CascadeAnswer& cascade, std::optional<uint64_t> as_of_seq) {
  out.StartObject();
  if (as_of_seq) out.Key("as_of_seq").Uint(*as_of_seq);
  out.Key("nodes").StartArray();
  for (const CascadeNode& node : cascade.nodes) WriteCascadeNode(out, node);
  out.EndArray().Key("pace").StartObject().Key("at").String(FormatTimeUs(cascade.pace.at_us));
  out.Key("expected").NumberOrNull(cascade.pace.expected).EndObject().EndObject();
}

json RenderCascade(const CascadeAnswer& cascade) {
  return WriteJsonDocument([&](JsonOut& out) { WriteCascade(out, cascade, std::nullopt); });
}

}  // namespace okr
