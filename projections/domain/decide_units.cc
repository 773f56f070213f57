// Deciding the organisation and its calendar: units (a tree under one
// company) and cycles (date ranges, possibly nested).
#include <cassert>

#include "eventstore/base/time.h"
#include "projections/domain/decider.h"

namespace okr::decide {

Result<Decision> Decider::operator()(const CreateUnit& c) {
  OKR_RETURN_IF_ERROR(CheckNewId(s_, c.id, "id"));
  if (!IsOneOf(c.kind, {"company", "department", "team", "person"})) {
    return Status::Invalid("kind must be company, department, team or person", "kind");
  }
  OKR_RETURN_IF_ERROR(CheckTitle(c.name, "name"));
  OKR_RETURN_IF_ERROR(CheckEmail(c.kind, c.email));
  if (c.kind == "company") {
    OKR_RETURN_IF_ERROR(CheckNewCompany(c));
  } else {
    OKR_RETURN_IF_ERROR(CheckParentUnit(c.parent, c.id));
  }
  return One(c.id, [&](schema::Event::Builder ev) {
    auto b = ev.initUnitCreated();
    b.setKind(ToEnum<schema::UnitKind>(c.kind));
    b.setParent(c.parent);
    const std::string subject = SubjectOf(c.id, c.kind);
    Personal(schema::PersonalField::NAME, c.name, subject);
    Personal(schema::PersonalField::EMAIL, c.email, subject);
  });
}

Result<Decision> Decider::operator()(const UpdateUnit& c) {
  OKR_ASSIGN_OR_RETURN(const Unit* u, Found(s_.unit(c.id), "unit", c.id, "id"));
  const UnitFields& f = u->current();
  OKR_RETURN_IF_ERROR(RefuseIf(f.retired, "unit", c.id, "is retired", "id"));
  Begin(c.id);
  using B = schema::Event::Builder;
  const std::string subject = SubjectOf(c.id, f.kind);
  OKR_RETURN_IF_ERROR(PersonalUpdate(c.id, &B::initUnitRenamed, f.name, c.name, subject,
                                     [](const std::string& v) { return CheckTitle(v, "name"); }));
  OKR_RETURN_IF_ERROR(
      TextUpdate(c.id, &B::initUnitMoved, f.parent, c.parent, [&](const std::string& v) -> Status {
        if (f.kind == "company") {
          return Status::Invalid("the company has no parent", "parent");
        }
        return CheckParentUnit(v, c.id);
      }));
  OKR_RETURN_IF_ERROR(PersonalUpdate(c.id, &B::initUnitEmailChanged, f.email, c.email, subject,
                                     [&](const std::string& v) { return CheckEmail(f.kind, v); }));
  return Done();
}

Result<Decision> Decider::operator()(const RetireUnit& c) {
  OKR_ASSIGN_OR_RETURN(const Unit* u, Found(s_.unit(c.id), "unit", c.id, "id"));
  OKR_RETURN_IF_ERROR(RefuseIf(u->current().retired, "unit", c.id, "is already retired", "id"));
  for (const auto& [id, other] : s_.units()) {
    if (other.current().parent == c.id && !other.current().retired) {
      return Status::Invalid("unit " + c.id + " still has unit " + id + " under it", "id");
    }
  }
  return One(c.id, [](schema::Event::Builder ev) { ev.initUnitRetired(); });
}

Result<Decision> Decider::operator()(const CreateCycle& c) {
  OKR_RETURN_IF_ERROR(CheckNewId(s_, c.id, "id"));
  OKR_RETURN_IF_ERROR(CheckTitle(c.name, "name"));
  OKR_RETURN_IF_ERROR(CheckCycleShape(c.id, c.starts, c.ends, c.parent));
  return One(c.id, [&](schema::Event::Builder ev) {
    auto b = ev.initCycleCreated();
    b.setName(c.name);
    b.setStarts(c.starts);
    b.setEnds(c.ends);
    b.setParent(c.parent);
  });
}

Result<Decision> Decider::operator()(const UpdateCycle& c) {
  OKR_ASSIGN_OR_RETURN(const Cycle* cy, Found(s_.cycle(c.id), "cycle", c.id, "id"));
  const CycleFields& f = cy->current();
  OKR_RETURN_IF_ERROR(RefuseIf(f.closed, "cycle", c.id, "is closed", "id"));
  std::string name = c.name.value_or(f.name), starts = c.starts.value_or(f.starts),
              ends = c.ends.value_or(f.ends), parent = c.parent.value_or(f.parent);
  OKR_RETURN_IF_ERROR(CheckTitle(name, "name"));
  OKR_RETURN_IF_ERROR(CheckCycleShape(c.id, starts, ends, parent));
  OKR_RETURN_IF_ERROR(CheckChildCycles(c.id, starts, ends));
  if (name == f.name && starts == f.starts && ends == f.ends && parent == f.parent) {
    Begin(c.id);
    return Done();
  }
  return One(c.id, [&](schema::Event::Builder ev) {
    auto b = ev.initCycleChanged();
    b.setNameBefore(f.name);
    b.setName(name);
    b.setStartsBefore(f.starts);
    b.setStarts(starts);
    b.setEndsBefore(f.ends);
    b.setEnds(ends);
    b.setParentBefore(f.parent);
    b.setParent(parent);
  });
}

Result<Decision> Decider::operator()(const CloseCycle& c) {
  OKR_ASSIGN_OR_RETURN(const Cycle* cy, Found(s_.cycle(c.id), "cycle", c.id, "id"));
  OKR_RETURN_IF_ERROR(RefuseIf(cy->current().closed, "cycle", c.id, "is already closed", "id"));
  return One(c.id, [](schema::Event::Builder ev) { ev.initCycleClosed(); });
}

Result<Decision> Decider::operator()(const ReopenCycle& c) {
  OKR_ASSIGN_OR_RETURN(const Cycle* cy, Found(s_.cycle(c.id), "cycle", c.id, "id"));
  OKR_RETURN_IF_ERROR(RefuseIf(!cy->current().closed, "cycle", c.id, "is open", "id"));
  return One(c.id, [](schema::Event::Builder ev) { ev.initCycleReopened(); });
}

Status Decider::CheckEmail(const std::string& kind, const std::string& email) {
  if (email.empty()) return Status::Ok();
  if (kind != "person") return Status::Invalid("only a person has an email", "email");
  OKR_RETURN_IF_ERROR(CheckString(email, "email", kMaxTitleChars, false, false));
  auto at = email.find('@');
  if (at == std::string::npos || at == 0 || at + 1 >= email.size() ||
      email.find(' ') != std::string::npos) {
    return Status::Invalid("email is not an address", "email");
  }
  return Status::Ok();
}

// There is one active company at a time, at the top of the tree.
Status Decider::CheckNewCompany(const CreateUnit& c) {
  assert(c.kind == "company");
  if (!c.parent.empty()) return Status::Invalid("the company has no parent", "parent");
  for (const auto& [id, u] : s_.units()) {
    if (u.current().kind == "company" && !u.current().retired) {
      return Status::Invalid("there is already a company: " + id, "kind");
    }
  }
  return Status::Ok();
}

// `parent` exists, is an active non-person unit, and is not `child` or
// below it (units stay a tree). Expects every unit on the way up, so a
// concurrent move cannot close a loop.
Status Decider::CheckParentUnit(const std::string& parent, const std::string& child) {
  if (parent.empty()) return Status::Invalid("parent is required below the company", "parent");
  const Unit* p = s_.unit(parent);
  if (p == nullptr) return Status::Invalid("no unit " + parent, "parent");
  if (p->current().retired) return Status::Invalid("unit " + parent + " is retired", "parent");
  if (p->current().kind == "person") {
    return Status::Invalid("a person has no units under it", "parent");
  }
  std::string at = parent;
  // The depth bound only stops a walk through a loop the log should not hold.
  for (size_t depth = 0; !at.empty(); ++depth) {
    if (at == child) return Status::Invalid("unit " + child + " would be under itself", "parent");
    const Unit* u = s_.unit(at);
    if (u == nullptr || depth > s_.units().size()) break;
    Expect(at);
    at = u->current().parent;
  }
  return Status::Ok();
}

// Dates parse, the range is not empty, and it lies within the parent cycle.
Status Decider::CheckCycleShape(const std::string& id, const std::string& starts,
                                const std::string& ends, const std::string& parent) {
  auto s = ParseDate(starts);
  if (!s) return Status::Invalid("starts must be a date YYYY-MM-DD", "starts");
  auto e = ParseDate(ends);
  if (!e) return Status::Invalid("ends must be a date YYYY-MM-DD", "ends");
  if (*e <= *s) return Status::Invalid("a cycle ends after it starts", "ends");
  if (parent.empty()) return Status::Ok();
  const Cycle* p = s_.cycle(parent);
  if (p == nullptr) return Status::Invalid("no cycle " + parent, "parent");
  const CycleFields& pf = p->current();
  if (starts < pf.starts || ends > pf.ends) {
    return Status::Invalid(
        "cycle must lie within " + parent + " (" + pf.starts + " to " + pf.ends + ")", "parent");
  }
  return CheckCycleAncestry(id, parent);
}

// `id` is not among `parent`'s ancestors (cycles nest without loops);
// expects each ancestor's version.
Status Decider::CheckCycleAncestry(const std::string& id, const std::string& parent) {
  assert(!parent.empty());
  std::string at = parent;
  for (size_t depth = 0; !at.empty() && depth <= s_.cycles().size(); ++depth) {
    if (at == id) return Status::Invalid("cycle " + id + " would be inside itself", "parent");
    Expect(at);
    const Cycle* c = s_.cycle(at);
    at = c ? c->current().parent : "";
  }
  return Status::Ok();
}

// The cycles inside `id` must stay inside its new range.
Status Decider::CheckChildCycles(const std::string& id, const std::string& starts,
                                 const std::string& ends) {
  for (const auto& [child_id, child] : s_.cycles()) {
    const CycleFields& cf = child.current();
    if (cf.parent != id) continue;
    if (cf.starts < starts) {
      return Status::Invalid("cycle " + child_id + " inside it starts on " + cf.starts, "starts");
    }
    if (cf.ends > ends) {
      return Status::Invalid("cycle " + child_id + " inside it ends on " + cf.ends, "ends");
    }
    Expect(child_id);
  }
  return Status::Ok();
}

}  // namespace okr::decide
