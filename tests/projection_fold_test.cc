// The fold of a log okrd did not decide itself (a replica's copy, a
// restored backup, a log edited on disk): every id it creates is found
// whatever the order ids come in, and an event that reuses an id or adds a
// key result to something that is not an objective is refused as a
// corruption, leaving the projection as it was. A cycle's objectives are
// found through the cycle, as a walk of every objective would find them.
#include <capnp/message.h>
#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "projections/domain/projection.h"
#include "projections/read/view.h"
#include "schemas/okr.capnp.h"

namespace okr {
namespace {

using Fill = std::function<void(schema::Event::Builder)>;

// Folds the next event of `p`'s log: entity `id`, filled in by `fill`.
Status Fold(Projection* p, const std::string& id, const Fill& fill) {
  capnp::MallocMessageBuilder message;
  auto ev = message.initRoot<schema::Event>();
  ev.setSeq(p->seq() + 1);
  ev.setRecordedAt(static_cast<int64_t>(p->seq() + 1) * 1000);
  ev.setActor("admin");
  ev.setEntity(id);
  ev.setVersion(1);
  fill(ev);
  return p->Apply(ev.asReader());
}

Status AddUnit(Projection* p, const std::string& id) {
  return Fold(p, id, [](schema::Event::Builder ev) {
    auto u = ev.initUnitCreated();
    u.setKind(schema::UnitKind::COMPANY);
    u.setName("Acme");
  });
}

Status AddObjective(Projection* p, const std::string& id) {
  return Fold(p, id, [](schema::Event::Builder ev) {
    auto o = ev.initObjectiveCreated();
    o.setCycle("2026");
    o.setOwner("acme");
    o.setTitle("Grow");
  });
}

Status AddKeyResult(Projection* p, const std::string& id, const std::string& objective) {
  return Fold(p, id, [&objective](schema::Event::Builder ev) {
    auto kr = ev.initKeyResultAdded();
    kr.setObjective(objective);
    kr.setTitle("Hire");
    kr.setTarget(10);
  });
}

Status AddCheckIn(Projection* p, const std::string& key_result, const std::string& id) {
  return Fold(p, key_result, [&id](schema::Event::Builder ev) {
    auto ci = ev.initCheckInRecorded();
    ci.setCheckIn(id);
    ci.setValue(3);
    ci.setMeasuredAt(1);
  });
}

std::vector<std::string> Keys(const auto& entities) {
  std::vector<std::string> keys;
  for (const auto& [id, entity] : entities) keys.push_back(id);
  return keys;
}

TEST(ProjectionFoldTest, IdsCreatedInAnyOrderAreAllFound) {
  Projection p;
  ASSERT_TRUE(AddUnit(&p, "acme").ok());
  // Increasing, then lower, then between: each goes in where it belongs.
  for (const std::string id : {"o-3", "o-5", "o-1", "o-4", "o-10"}) {
    ASSERT_TRUE(AddObjective(&p, id).ok()) << id;
  }
  for (const std::string id : {"kr-2", "kr-9", "kr-1"}) {
    ASSERT_TRUE(AddKeyResult(&p, id, "o-4").ok()) << id;
  }
  EXPECT_EQ(Keys(p.objectives()), (std::vector<std::string>{"o-1", "o-10", "o-3", "o-4", "o-5"}));
  EXPECT_EQ(Keys(p.key_results()), (std::vector<std::string>{"kr-1", "kr-2", "kr-9"}));
  for (const std::string id : {"o-1", "o-10", "o-3", "o-4", "o-5"}) {
    const auto* o = p.objective(id);
    ASSERT_NE(o, nullptr) << id;
    EXPECT_EQ(o->id, id);
  }
  const auto* parent = p.objective("o-4");
  EXPECT_EQ(parent->key_results, (std::vector<std::string>{"kr-2", "kr-9", "kr-1"}));
  ASSERT_EQ(parent->key_result_links.of.size(), 3u);
  EXPECT_EQ(parent->key_result_links.of[2], p.key_result("kr-1"));
  EXPECT_EQ(p.key_result("kr-9")->current().objective, "o-4");
  // A copy (its index rebuilt) finds them too.
  const Projection copy(p);
  EXPECT_EQ(copy.key_result("kr-1")->id, "kr-1");
  EXPECT_EQ(copy, p);
}

Status AddObjectiveIn(Projection* p, const std::string& id, const std::string& cycle,
                      const std::string& owner) {
  return Fold(p, id, [&](schema::Event::Builder ev) {
    auto o = ev.initObjectiveCreated();
    o.setCycle(cycle);
    o.setOwner(owner);
    o.setTitle("Grow");
  });
}

// What View::Objectives must answer: every objective the filter keeps at
// `as_of`, by id, found by walking them all.
std::vector<const Objective*> EveryObjectiveKept(const Projection& p, uint64_t as_of,
                                                 const ObjectiveFilter& filter) {
  std::vector<const Objective*> out;
  for (const auto& [id, o] : p.objectives()) {
    const ObjectiveFields* f = o.FieldsAt(as_of);
    if (f && filter.Keeps(*f)) out.push_back(&o);
  }
  return out;
}

// A cycle's objectives are found through the cycle, and an owner's through
// those it ever owned, not by walking every objective the log holds; the
// answer is the walk's: the same objectives, in id order, at every seq,
// whichever filter, after a copy.
TEST(ProjectionFoldTest, ACyclesOrOwnersObjectivesAreTheWalksWithoutTheWalk) {
  Projection p;
  ASSERT_TRUE(AddUnit(&p, "acme").ok());
  ASSERT_TRUE(AddUnit(&p, "team").ok());
  auto give = [&p](const std::string& id, const std::string& from, const std::string& to) {
    return Fold(&p, id, [&](schema::Event::Builder ev) {
      auto change = ev.initObjectiveOwnerChanged();
      change.setBefore(from);
      change.setAfter(to);
    });
  };
  // An old cycle with many objectives, and a small one, created out of id order.
  for (int i = 0; i < 80; ++i) {
    ASSERT_TRUE(AddObjectiveIn(&p, "old-" + std::to_string(i), "2025", "acme").ok());
  }
  for (const std::string id : {"new-b", "new-d", "new-a"}) {
    ASSERT_TRUE(AddObjectiveIn(&p, id, "2026", id == "new-d" ? "team" : "acme").ok()) << id;
  }
  const uint64_t before_last = p.seq();
  ASSERT_TRUE(AddObjectiveIn(&p, "new-c", "2026", "acme").ok());
  ASSERT_TRUE(
      Fold(&p, "new-a", [](schema::Event::Builder ev) { ev.initObjectiveArchived(); }).ok());
  // An old objective given to the team and taken back, then given again;
  // a new one given to the team for good.
  const uint64_t before_giving = p.seq();
  ASSERT_TRUE(give("old-7", "acme", "team").ok());
  ASSERT_TRUE(give("new-b", "acme", "team").ok());
  const uint64_t while_given = p.seq();
  ASSERT_TRUE(give("old-7", "team", "acme").ok());
  const uint64_t taken_back = p.seq();
  ASSERT_TRUE(give("old-7", "acme", "team").ok());
  EXPECT_EQ(p.ObjectivesOfCycle("2026").size(), 4u);
  EXPECT_EQ(p.ObjectivesOfCycle("2025").size(), 80u);
  EXPECT_TRUE(p.ObjectivesOfCycle("2027").empty());
  EXPECT_EQ(p.ObjectivesEverOwnedBy("team").size(), 4u);  // new-d, old-7, new-b, old-7 again
  EXPECT_TRUE(p.ObjectivesEverOwnedBy("nobody").empty());

  const Projection copy(p);
  size_t found = 0;
  for (const Projection* q : {static_cast<const Projection*>(&p), &copy}) {
    for (uint64_t as_of : {before_last, before_giving, while_given, taken_back, p.seq()}) {
      for (const ObjectiveFilter& filter :
           {ObjectiveFilter{"2026", "", false}, ObjectiveFilter{"2026", "", true},
            ObjectiveFilter{"2026", "acme", true}, ObjectiveFilter{"2025", "", false},
            ObjectiveFilter{"2027", "", false}, ObjectiveFilter{"", "team", false},
            ObjectiveFilter{"", "team", true}, ObjectiveFilter{"2025", "team", false},
            ObjectiveFilter{"", "acme", false}, ObjectiveFilter{"", "nobody", false}}) {
        const View view(*q, as_of, INT64_MAX, 0);
        const auto expected = EveryObjectiveKept(*q, as_of, filter);
        EXPECT_EQ(view.Objectives(filter), expected)
            << "cycle " << filter.cycle << " owner " << filter.owner << " as of " << as_of;
        found += expected.size();
      }
    }
  }
  EXPECT_GT(found, 0u);
  // The small cycle's at the head, by id: the archived one only when asked for.
  const View head(p, p.seq(), INT64_MAX, 0);
  std::vector<std::string> ids;
  for (const Objective* o : head.Objectives({"2026", "", true})) ids.push_back(o->id);
  EXPECT_EQ(ids, (std::vector<std::string>{"new-a", "new-b", "new-c", "new-d"}));
  EXPECT_EQ(head.Objectives({"2026", "", false}).size(), 3u);
  // The team's, each once though old-7 was given to it twice.
  ids.clear();
  for (const Objective* o : head.Objectives({"", "team", false})) ids.push_back(o->id);
  EXPECT_EQ(ids, (std::vector<std::string>{"new-b", "new-d", "old-7"}));
}

// The shorter of a filter's cycle and owner lists is taken, or none when
// even that one holds a sixteenth or more of all objectives.
TEST(ProjectionFoldTest, TheShorterListIsTakenOrNoneWhenItIsLong) {
  Projection p;
  ASSERT_TRUE(AddUnit(&p, "acme").ok());
  ASSERT_TRUE(AddUnit(&p, "team").ok());
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(AddObjectiveIn(&p, "old-" + std::to_string(i), "2025", "acme").ok());
  }
  ASSERT_TRUE(AddObjectiveIn(&p, "new", "2026", "team").ok());
  using Ids = std::optional<std::vector<std::string>>;
  auto listed = [&p](const ObjectiveFilter& filter) -> Ids {
    auto some = ListedObjectives(p, filter);
    if (!some) return std::nullopt;
    std::vector<std::string> ids;
    for (const Objective* o : *some) ids.push_back(o->id);
    return ids;
  };
  EXPECT_EQ(listed({"", "team", false}), Ids({"new"}));
  EXPECT_EQ(listed({"2025", "team", false}), Ids({"new"}));  // the team's, not the cycle's
  EXPECT_EQ(listed({"2026", "acme", false}), Ids({"new"}));  // the cycle's, not acme's
  EXPECT_EQ(listed({"", "nobody", false}), Ids(std::vector<std::string>{}));
  EXPECT_EQ(listed({"2025", "", false}), std::nullopt);  // most objectives: walked
  EXPECT_EQ(listed({"", "acme", true}), std::nullopt);
  EXPECT_EQ(listed({"", "", false}), std::nullopt);  // no cycle or owner to list
}

TEST(ProjectionFoldTest, AReusedIdOrAParentThatIsNoObjectiveIsRefused) {
  Projection p;
  ASSERT_TRUE(AddUnit(&p, "acme").ok());
  ASSERT_TRUE(AddObjective(&p, "o-1").ok());
  ASSERT_TRUE(AddKeyResult(&p, "kr-1", "o-1").ok());
  ASSERT_TRUE(AddCheckIn(&p, "kr-1", "ci-1").ok());
  const Projection before(p);

  struct Bad {
    const char* what;
    std::function<Status()> fold;
  };
  const std::vector<Bad> bad = {
      {"a key result of a unit", [&] { return AddKeyResult(&p, "kr-2", "acme"); }},
      {"a key result of a key result", [&] { return AddKeyResult(&p, "kr-2", "kr-1"); }},
      {"a key result of no entity", [&] { return AddKeyResult(&p, "kr-2", "o-404"); }},
      {"an objective with a unit's id", [&] { return AddObjective(&p, "acme"); }},
      {"a unit with an objective's id", [&] { return AddUnit(&p, "o-1"); }},
      {"a key result with its own id again", [&] { return AddKeyResult(&p, "kr-1", "o-1"); }},
      {"a key result with a check-in's id", [&] { return AddKeyResult(&p, "ci-1", "o-1"); }},
      {"a check-in with a key result's id", [&] { return AddCheckIn(&p, "kr-1", "kr-1"); }},
      {"a check-in with its own id again", [&] { return AddCheckIn(&p, "kr-1", "ci-1"); }},
  };
  for (const Bad& b : bad) {
    Status st = b.fold();
    EXPECT_EQ(st.code(), Status::Code::kCorruption) << b.what;
    EXPECT_EQ(p.seq(), before.seq()) << b.what;
    EXPECT_EQ(p, before) << b.what;
  }
  EXPECT_EQ(p.key_result("kr-2"), nullptr);
  EXPECT_EQ(p.objective("acme"), nullptr);
  // And the log folds on from where it was.
  ASSERT_TRUE(AddKeyResult(&p, "kr-2", "o-1").ok());
  EXPECT_EQ(p.objective("o-1")->key_results, (std::vector<std::string>{"kr-1", "kr-2"}));
}

}  // namespace
}  // namespace okr
