// Validating an import: every command decided in order against a scratch
// copy of the projection, each decision's events folded into the copy, so
// command n is judged on the state commands 0..n-1 leave.
#include <algorithm>
#include <cassert>

#include "tools/ctl/import_internal.h"

namespace okr::ctl {
namespace {

// What to do with a command that creates the frame of the organisation.
enum class Frame { kDecide, kSkip, kConflict };

// A unit or cycle identical to the stored one is a reference to it, not
// a new entity: skipped. One with other fields is a conflict.
Frame FrameCheck(const Projection& state, const Command& command) {
  if (const auto* u = std::get_if<CreateUnit>(&command)) {
    const Unit* have = state.unit(u->id);
    if (!have) return Frame::kDecide;
    const UnitFields& f = have->current();
    bool same = !f.retired && f.kind == u->kind && f.name == u->name && f.parent == u->parent &&
                f.email == u->email;
    return same ? Frame::kSkip : Frame::kConflict;
  }
  if (const auto* c = std::get_if<CreateCycle>(&command)) {
    const Cycle* have = state.cycle(c->id);
    if (!have) return Frame::kDecide;
    const CycleFields& f = have->current();
    bool same =
        f.name == c->name && f.starts == c->starts && f.ends == c->ends && f.parent == c->parent;
    return same ? Frame::kSkip : Frame::kConflict;
  }
  return Frame::kDecide;
}

// Folds a decision's events into `state` as the store would number and
// time them.
Status ApplyDrafts(std::vector<EventDraft>& drafts, int64_t now_us, Projection* state) {
  for (EventDraft& draft : drafts) {
    const uint64_t seq = state->seq() + 1;
    auto ev = draft.event();
    ev.setSeq(seq);
    ev.setRecordedAt(std::max(now_us, state->recorded_at_us()));
    ev.setVersion(state->Version(draft.entity()) + 1);
    OKR_RETURN_IF_ERROR(state->Apply(ev.asReader()));
    assert(state->seq() == seq);
  }
  return Status::Ok();
}

}  // namespace

bool ValidateImport(const ImportPlan& plan, Projection state, const std::string& actor,
                    int64_t now_us, const std::function<bool(size_t)>& already_written,
                    const std::function<void(size_t)>& progress, Validation* out,
                    ImportError* error) {
  *out = Validation();
  out->skip.assign(plan.commands.size(), false);
  auto fail = [&](size_t i, const std::string& field, std::string reason) {
    *error = {plan.file, plan.Locate(i, field), std::move(reason)};
    return false;
  };
  for (size_t i = 0; i < plan.commands.size(); ++i) {
    if (progress) progress(i);
    const PlannedCommand& pc = plan.commands[i];
    // A close depends on an earlier command of the plan only.
    assert(!pc.only_if_created || *pc.only_if_created < i);
    if ((pc.only_if_created && out->skip[*pc.only_if_created]) ||
        (already_written && already_written(i))) {
      out->skip[i] = true;
      continue;
    }
    switch (FrameCheck(state, pc.command)) {
      case Frame::kSkip:
        out->skip[i] = true;
        continue;
      case Frame::kConflict:
        return fail(
            i, "id",
            std::string(std::holds_alternative<CreateUnit>(pc.command) ? "unit " : "cycle ") +
                import_internal::EntityOf(pc.command) + " already exists with other fields");
      case Frame::kDecide:
        break;
    }
    CommandContext context{actor, "", plan.Reason(i), now_us};
    auto decision = Decide(state, pc.command, context);
    if (!decision.ok()) return fail(i, decision.status().field(), decision.status().message());
    if (decision->events.empty()) {
      out->skip[i] = true;
      continue;
    }
    if (Status s = ApplyDrafts(decision->events, now_us, &state); !s.ok()) {
      return fail(i, "",
                  "cannot apply " + import_internal::EntityOf(pc.command) + ": " + s.message());
    }
    out->events += decision->events.size();
    ++out->to_write;
  }
  assert(out->to_write <= plan.commands.size());
  if (progress) progress(plan.commands.size());
  return true;
}

}  // namespace okr::ctl
