// okrctl verify --deep compares each stored snapshot with a replay of the
// log and names the first field that differs. These tests damage one field
// of an encoded snapshot at a time and check the operator is told which
// entity, which record and which field, in the words of the API. The last
// test checks that a snapshot's parts are taken only whole and in order.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "projections/service/snapshot.h"
#include "schemas/snapshot.capnp.h"
#include "tests/projections_fixture.h"
#include "tools/ctl/snapshot_check.h"

namespace okr::testing {
namespace {

using ctl::FirstDifference;

class SnapshotCheckTest : public HrHiringTest {
 protected:
  void SetUp() override {
    HrHiringTest::SetUp();
    ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 20, "number", 2, "hires"));
    ASSERT_OK(CheckIn("kr-hires", 4, std::nullopt, "ci-1", "amara"));
    ASSERT_OK(Review("hr-hiring", 0.7, "partially", "Hiring was slow", "Start earlier"));
  }

  Projection Head() const {
    return projector_->Read([](const Projection& p) { return p; });
  }

  // The head's projection through the snapshot encoding, with `edit`
  // applied to each encoded part: a snapshot that disagrees with the log in
  // exactly what `edit` changed.
  Projection Damaged(const std::function<void(schema::Snapshot::Builder)>& edit) const {
    Hash hash{};
    auto decoded = SnapshotCodec::Decode(DamagedParts(edit), &hash);
    EXPECT_OK(decoded);
    return decoded.ok() ? std::move(*decoded) : Head();
  }

  // The head's encoded snapshot parts, with `edit` applied to each.
  std::vector<std::string> DamagedParts(
      const std::function<void(schema::Snapshot::Builder)>& edit) const {
    std::vector<std::string> parts = SnapshotCodec::Encode(Head(), Hash{});
    for (std::string& bytes : parts) {
      kj::ArrayPtr<const capnp::word> words(reinterpret_cast<const capnp::word*>(bytes.data()),
                                            bytes.size() / sizeof(capnp::word));
      capnp::FlatArrayMessageReader reader(words);
      capnp::MallocMessageBuilder message;
      message.setRoot(reader.getRoot<schema::Snapshot>());
      edit(message.getRoot<schema::Snapshot>());
      kj::Array<capnp::word> flat = capnp::messageToFlatArray(message);
      bytes.assign(reinterpret_cast<const char*>(flat.begin()), flat.asBytes().size());
    }
    return parts;
  }
};

TEST_F(SnapshotCheckTest, AnUndamagedSnapshotHasNoDifference) {
  EXPECT_EQ(FirstDifference(Damaged([](schema::Snapshot::Builder) {}), Head()), "");
}

TEST_F(SnapshotCheckTest, AKeyResultFieldIsNamedWithItsRevision) {
  const Projection damaged = Damaged([](schema::Snapshot::Builder s) {
    for (auto kr : s.getKeyResults()) {
      if (kr.getId() == "kr-hires") kr.getRevisions()[0].setTarget(99);
    }
  });
  const uint64_t created = Head().key_result("kr-hires")->revisions[0].meta.seq;
  EXPECT_EQ(FirstDifference(damaged, Head()), "key result kr-hires: revision 1 (seq " +
                                                  std::to_string(created) +
                                                  "), target: snapshot 99, log 20");
}

TEST_F(SnapshotCheckTest, ACheckInsRecordedFieldsReadAsItsOwn) {
  const Projection damaged = Damaged([](schema::Snapshot::Builder s) {
    for (auto kr : s.getKeyResults()) {
      if (kr.getId() == "kr-hires") kr.getCheckIns()[0].getMeta().setActor("mallory");
    }
  });
  EXPECT_EQ(FirstDifference(damaged, Head()),
            "key result kr-hires: check-in 1, actor: snapshot \"mallory\", log \"amara\"");
}

TEST_F(SnapshotCheckTest, AReviewsFieldsAreNamedUnderReview) {
  const Projection head = Head();
  const auto& revisions = head.objective("hr-hiring")->revisions;
  const size_t last = revisions.size() - 1;
  const Projection damaged = Damaged([&](schema::Snapshot::Builder s) {
    for (auto objective : s.getObjectives()) {
      if (objective.getId() != "hr-hiring") continue;
      objective.getRevisions()[last].getReview().getMeta().setReason("rewritten");
    }
  });
  EXPECT_EQ(FirstDifference(damaged, head),
            "objective hr-hiring: revision " + std::to_string(last + 1) + " (seq " +
                std::to_string(revisions[last].meta.seq) +
                "), review.reason: snapshot \"rewritten\", log \"\"");
}

TEST_F(SnapshotCheckTest, AMissingReviewIsNamedBeforeItsFields) {
  const Projection head = Head();
  const size_t last = head.objective("hr-hiring")->revisions.size() - 1;
  const Projection damaged = Damaged([&](schema::Snapshot::Builder s) {
    for (auto objective : s.getObjectives()) {
      if (objective.getId() == "hr-hiring") objective.getRevisions()[last].setHasReview(false);
    }
  });
  EXPECT_NE(FirstDifference(damaged, head).find("reviewed: snapshot false, log true"),
            std::string::npos)
      << FirstDifference(damaged, head);
}

TEST_F(SnapshotCheckTest, AnObjectiveNamingAKeyResultTheSnapshotLacksIsRefused) {
  const std::vector<std::string> parts = DamagedParts([](schema::Snapshot::Builder s) {
    for (auto o : s.getObjectives()) {
      if (o.getId() == "hr-hiring") o.getKeyResults().set(0, "kr-nowhere");
    }
  });
  Hash hash{};
  auto decoded = SnapshotCodec::Decode(parts, &hash);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("names key result kr-nowhere"), std::string::npos)
      << decoded.status().message();
}

// An entity is created with its first revision, so a snapshot holding one
// without any is damaged: refused, of every kind, before anything reads the
// revision an entity's current fields are.
TEST_F(SnapshotCheckTest, AnEntityWithoutRevisionsIsRefused) {
  const std::vector<std::function<void(schema::Snapshot::Builder)>> edits = {
      [](schema::Snapshot::Builder s) {
        for (auto e : s.getUnits()) e.initRevisions(0);
      },
      [](schema::Snapshot::Builder s) {
        for (auto e : s.getCycles()) e.initRevisions(0);
      },
      [](schema::Snapshot::Builder s) {
        for (auto e : s.getObjectives()) e.initRevisions(0);
      },
      [](schema::Snapshot::Builder s) {
        for (auto e : s.getKeyResults()) e.initRevisions(0);
      },
  };
  for (size_t kind = 0; kind < edits.size(); ++kind) {
    Hash hash{};
    auto decoded = SnapshotCodec::Decode(DamagedParts(edits[kind]), &hash);
    ASSERT_FALSE(decoded.ok()) << "kind " << kind;
    EXPECT_NE(decoded.status().message().find("without revisions"), std::string::npos)
        << decoded.status().message();
  }
}

// A snapshot is a header and runs of entities, one part each; a part
// missing, out of order or of another snapshot is refused, not folded in.
TEST_F(SnapshotCheckTest, APartMissingOutOfOrderOrOfAnotherSnapshotIsRefused) {
  const std::vector<std::string> parts = SnapshotCodec::Encode(Head(), Hash{});
  ASSERT_GE(parts.size(), 4u);  // the header, then units, cycles, objectives, key results
  Hash hash{};
  ASSERT_OK(SnapshotCodec::Decode(parts, &hash));
  auto refused = [](std::vector<std::string> damaged) {
    Hash hash{};
    auto decoded = SnapshotCodec::Decode(damaged, &hash);
    return decoded.ok() ? "decoded" : decoded.status().ToString();
  };
  std::vector<std::string> missing = parts;
  missing.pop_back();
  EXPECT_NE(refused(missing).find("parts of"), std::string::npos) << refused(missing);
  std::vector<std::string> swapped = parts;
  std::swap(swapped[1], swapped[2]);
  EXPECT_NE(refused(swapped).find("not of this snapshot"), std::string::npos) << refused(swapped);
  std::vector<std::string> extra = parts;
  extra.push_back(parts.back());
  EXPECT_NE(refused(extra).find("not of this snapshot"), std::string::npos) << refused(extra);
  // The same part from a snapshot of a later seq.
  ASSERT_OK(CheckIn("kr-hires", 12, std::nullopt, "ci-later", "amara"));
  std::vector<std::string> mixed = parts;
  mixed[1] = SnapshotCodec::Encode(Head(), Hash{})[1];
  EXPECT_NE(refused(mixed).find("not of this snapshot"), std::string::npos) << refused(mixed);
  EXPECT_NE(refused({}).find("parts of"), std::string::npos) << refused({});
}

}  // namespace
}  // namespace okr::testing
