// Deciding objectives: creation, changes, archiving, alignment to other
// objectives, the end-of-cycle review, and comments (on objectives and
// key results alike).
#include <cassert>
#include <cmath>
#include <set>

#include "projections/domain/decider.h"

namespace okr::decide {

Result<Decision> Decider::operator()(const CreateObjective& c) {
  OKR_RETURN_IF_ERROR(CheckNewId(s_, c.id, "id"));
  OKR_RETURN_IF_ERROR(CheckOpenCycle(c.cycle, "cycle", false));
  OKR_RETURN_IF_ERROR(CheckOwner(c.owner, "owner"));
  OKR_RETURN_IF_ERROR(CheckTitle(c.title, "title"));
  OKR_RETURN_IF_ERROR(CheckText(c.description, "description"));
  OKR_RETURN_IF_ERROR(CheckAlignment(c.id, c.parents));
  return One(c.id, [&](schema::Event::Builder ev) {
    auto b = ev.initObjectiveCreated();
    b.setCycle(c.cycle);
    b.setOwner(c.owner);
    b.setTitle(c.title);
    b.setDescription(c.description);
    SetTexts(b.initParents(static_cast<unsigned>(c.parents.size())), c.parents);
  });
}

Result<Decision> Decider::operator()(const UpdateObjective& c) {
  OKR_ASSIGN_OR_RETURN(const Objective* o, Found(s_.objective(c.id), "objective", c.id, "id"));
  const ObjectiveFields& f = o->current();
  OKR_RETURN_IF_ERROR(CheckOpenCycle(f.cycle, "cycle", true));
  Begin(c.id);
  OKR_RETURN_IF_ERROR(UpdateObjectiveTexts(c, f));
  if (c.parents && *c.parents != f.parents) {
    OKR_RETURN_IF_ERROR(CheckAlignment(c.id, *c.parents));
    Add(c.id, [&](schema::Event::Builder ev) {
      auto b = ev.initObjectiveAlignmentSet();
      SetTexts(b.initBefore(static_cast<unsigned>(f.parents.size())), f.parents);
      SetTexts(b.initAfter(static_cast<unsigned>(c.parents->size())), *c.parents);
    });
  }
  if (c.archived && *c.archived != f.archived) {
    Add(c.id, [&](schema::Event::Builder ev) {
      if (*c.archived) {
        ev.initObjectiveArchived();
      } else {
        ev.initObjectiveRestored();
      }
    });
  }
  return Done();
}

// The title, description and owner an update changes, in that order.
Status Decider::UpdateObjectiveTexts(const UpdateObjective& c, const ObjectiveFields& f) {
  assert(decision_.entity == c.id);
  using B = schema::Event::Builder;
  OKR_RETURN_IF_ERROR(TextUpdate(c.id, &B::initObjectiveRetitled, f.title, c.title,
                                 [](const std::string& v) { return CheckTitle(v, "title"); }));
  OKR_RETURN_IF_ERROR(TextUpdate(c.id, &B::initObjectiveDescribed, f.description, c.description,
                                 [](const std::string& v) { return CheckText(v, "description"); }));
  OKR_RETURN_IF_ERROR(TextUpdate(c.id, &B::initObjectiveOwnerChanged, f.owner, c.owner,
                                 [&](const std::string& v) { return CheckOwner(v, "owner"); }));
  return Status::Ok();
}

Result<Decision> Decider::operator()(const ArchiveObjective& c) {
  OKR_ASSIGN_OR_RETURN(const Objective* o, Found(s_.objective(c.id), "objective", c.id, "id"));
  OKR_RETURN_IF_ERROR(
      RefuseIf(o->current().archived, "objective", c.id, "is already archived", "id"));
  return (*this)(UpdateObjective{c.id, {}, {}, {}, {}, true});
}

Result<Decision> Decider::operator()(const AddComment& c) {
  if (s_.objective(c.target) == nullptr && s_.key_result(c.target) == nullptr) {
    return Status::NotFound("no objective or key result " + c.target, "target");
  }
  OKR_RETURN_IF_ERROR(CheckString(c.text, "text", kMaxTextChars, true, true));
  BeginAppend(c.target);
  Add(c.target, [&](schema::Event::Builder ev) {
    ev.initCommentAdded();
    Personal(schema::PersonalField::TEXT, c.text, Author());
  });
  return Done();
}

Result<Decision> Decider::operator()(const ReviewObjective& c) {
  OKR_RETURN_IF_ERROR(
      Found(s_.objective(c.objective), "objective", c.objective, "objective").status());
  if (!std::isfinite(c.score) || c.score < 0 || c.score > 1) {
    return Status::Invalid("score must be between 0 and 1", "score");
  }
  if (!IsOneOf(c.outcome, {"achieved", "partially", "missed"})) {
    return Status::Invalid("outcome must be achieved, partially or missed", "outcome");
  }
  OKR_RETURN_IF_ERROR(CheckText(c.reflection, "reflection"));
  OKR_RETURN_IF_ERROR(CheckText(c.lessons, "lessons"));
  BeginAppend(c.objective);
  Add(c.objective, [&](schema::Event::Builder ev) {
    auto b = ev.initObjectiveReviewed();
    b.setScore(c.score);
    b.setOutcome(ToEnum<schema::Outcome>(c.outcome));
    Personal(schema::PersonalField::REFLECTION, c.reflection, Author());
    Personal(schema::PersonalField::LESSONS, c.lessons, Author());
  });
  return Done();
}

Status Decider::CheckOwner(const std::string& owner, const char* field) {
  const Unit* u = s_.unit(owner);
  if (u == nullptr) return Status::Invalid("no unit " + owner, field);
  if (u->current().retired) return Status::Invalid("unit " + owner + " is retired", field);
  return Status::Ok();
}

// Objectives and key results of a closed cycle refuse changes (409).
Status Decider::CheckOpenCycle(const std::string& cycle, const char* field, bool exists_already) {
  const Cycle* c = s_.cycle(cycle);
  if (c == nullptr) {
    if (exists_already) return Status::Corruption("objective in unknown cycle " + cycle);
    return Status::Invalid("no cycle " + cycle, field);
  }
  if (c->current().closed) {
    return Status::Conflict("cycle " + cycle + " is closed", field);
  }
  Expect(cycle);
  return Status::Ok();
}

Status Decider::CheckOpenCycleOfObjective(const std::string& objective) {
  const Objective* o = s_.objective(objective);
  if (o == nullptr) return Status::Corruption("key result of unknown objective " + objective);
  return CheckOpenCycle(o->current().cycle, "cycle", true);
}

// One parent `id` would align to: another objective, active, in an open
// cycle. Alignment is part of the cycle's plan: a closed cycle's objectives
// take no new children until it is reopened.
Status Decider::CheckAlignmentParent(const std::string& id, const std::string& p) {
  if (p == id) return Status::Invalid("an objective cannot align to itself", "parents");
  const Objective* parent = s_.objective(p);
  if (parent == nullptr) return Status::Invalid("no objective " + p, "parents");
  const ObjectiveFields& pf = parent->current();
  if (pf.archived) return Status::Invalid("objective " + p + " is archived", "parents");
  const Cycle* cycle = s_.cycle(pf.cycle);
  if (cycle != nullptr && cycle->current().closed) {
    return Status::Invalid("objective " + p + " is in closed cycle " + pf.cycle, "parents");
  }
  if (cycle != nullptr) Expect(pf.cycle);
  return Status::Ok();
}

// Parents exist, are few, unique, and alignment stays acyclic. Expects
// every objective above `id`, so a concurrent realignment cannot close a loop.
Status Decider::CheckAlignment(const std::string& id, const std::vector<std::string>& parents) {
  if (parents.size() > kMaxParents) {
    return Status::Invalid("at most " + std::to_string(kMaxParents) + " parents", "parents");
  }
  std::set<std::string> unique(parents.begin(), parents.end());
  if (unique.size() != parents.size())
    return Status::Invalid("a parent is listed twice", "parents");
  for (const auto& p : parents) OKR_RETURN_IF_ERROR(CheckAlignmentParent(id, p));
  std::vector<std::string> stack(parents.begin(), parents.end());
  std::set<std::string> seen;
  while (!stack.empty()) {
    std::string at = std::move(stack.back());
    stack.pop_back();
    if (!seen.insert(at).second) continue;
    if (at == id) return Status::Invalid("alignment would form a cycle through " + id, "parents");
    const Objective* o = s_.objective(at);
    if (o == nullptr) continue;
    Expect(at);
    for (const auto& next : o->current().parents) stack.push_back(next);
  }
  assert(seen.size() >= unique.size() || parents.empty());
  return Status::Ok();
}

}  // namespace okr::decide
