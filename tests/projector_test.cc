// The write path under racing writers, and a projection that cannot fold:
// SPEC §6 "The projection is total" and "Health tells the truth".
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/projections_fixture.h"

namespace okr {
namespace {

using testing::CheckInDraft;
using testing::HrHiringTest;
using testing::OneEvent;

// Acme, a Q1 objective of HR with two key results.
class ProjectorTest : public HrHiringTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(HrHiringTest::SetUp());
    ASSERT_OK(AddKeyResult("kr-hires", "hr-hiring", "Hires made", 0, 20));
    ASSERT_OK(AddKeyResult("kr-offers", "hr-hiring", "Offers accepted", 0, 30));
  }

  // Runs `threads` writers at once, each calling `write(thread index)`.
  static void Together(int threads, const std::function<void(int)>& write) {
    std::atomic<int> ready{0};
    std::vector<std::thread> running;
    for (int t = 0; t < threads; ++t) {
      running.emplace_back([&, t] {
        ready.fetch_add(1);
        while (ready.load() < threads) {
        }
        write(t);
      });
    }
    for (auto& r : running) r.join();
  }

  Result<WriteResult> CheckInWithId(const std::string& kr, const std::string& id, double value) {
    WriteRequest request;
    RecordCheckIn c;
    c.key_result = kr;
    c.id = id;
    c.value = value;
    request.command = c;
    request.actor = "admin";
    return projector().Write(request);
  }

  // The log after check-ins appended a thousand at a time until it holds
  // at least `events`: a log to copy in bulk batches.
  Result<std::vector<StoredEvent>> CheckInLog(uint64_t events) {
    for (int a = 0; Head() < events; ++a) {
      AppendRequest request;
      for (int i = 0; i < 1000; ++i) {
        const std::string id = "ci-" + std::to_string(a) + "-" + std::to_string(i);
        request.events.push_back(CheckInDraft("admin", "kr-hires", id, i % 20));
      }
      OKR_RETURN_IF_ERROR(store().Append(std::move(request)).status());
    }
    return store().Read(0, Head());
  }

  // The log folds from scratch into what the projector serves.
  void ExpectFullReplayEqualsLive() {
    ASSERT_EQ(projector().seq(), Head());
    auto replayed = Projector::Rebuild(store(), Head(), /*use_snapshot=*/false);
    ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
    EXPECT_TRUE(*replayed == state());
  }
};

// The race that once stopped okrd for good: two people record a check-in
// with the same explicit id on two different key results at the same time.
TEST_F(ProjectorTest, OneCheckInIdOnTwoKeyResultsLandsOnce) {
  constexpr int kRounds = 25;
  for (int round = 0; round < kRounds; ++round) {
    const std::string id = "ci-weekly-" + std::to_string(round);
    std::atomic<int> landed{0}, taken{0}, other{0};
    Together(4, [&](int t) {
      auto r = CheckInWithId(t % 2 == 0 ? "kr-hires" : "kr-offers", id, t);
      if (r.ok()) {
        ++landed;
      } else if (r.status().code() == Status::Code::kAlreadyExists) {
        ++taken;
      } else {
        ++other;
      }
    });
    ASSERT_EQ(landed.load(), 1) << "round " << round;
    ASSERT_EQ(taken.load(), 3) << "round " << round;
    ASSERT_EQ(other.load(), 0) << "round " << round;
  }
  EXPECT_FALSE(projector().stuck());
  ExpectFullReplayEqualsLive();
}

// An id is one id across every kind: a unit, an objective, a key result
// and a check-in racing for it — exactly one lands, the others are told
// the id is taken (409), and the projection still folds.
TEST_F(ProjectorTest, OneIdRacedForByEveryKindLandsOnce) {
  for (int round = 0; round < 10; ++round) {
    const std::string id = "shared-" + std::to_string(round);
    std::atomic<int> landed{0}, taken{0};
    Together(4, [&](int t) {
      auto write = [&]() -> Result<WriteResult> {
        switch (t) {
          case 0:
            return CreateUnit(id, "team", "Team", "hr");
          case 1:
            return CreateObjective(id, "2026-q1", "hr", "Objective");
          case 2:
            return AddKeyResult(id, "hr-hiring", "Key result", 0, 1);
          default:
            return CheckInWithId("kr-hires", id, 1);
        }
      };
      Result<WriteResult> r = write();
      if (r.ok()) ++landed;
      if (!r.ok() && r.status().code() == Status::Code::kAlreadyExists) ++taken;
    });
    ASSERT_EQ(landed.load(), 1) << "round " << round;
    ASSERT_EQ(taken.load(), 3) << "round " << round;
  }
  ExpectFullReplayEqualsLive();
}

// Creating an objective aligned to a parent that keeps changing (here:
// comments, each a new version of the parent) is decided again, never
// refused: after a few lost races it holds the write gate alone.
TEST_F(ProjectorTest, AnAlignedCreateLandsWhileItsParentKeepsChanging) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> commenters;
  for (int t = 0; t < 4; ++t) {
    commenters.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        (void)Comment("hr-hiring", "busy " + std::to_string(t) + "." + std::to_string(i));
      }
    });
  }
  int landed = 0;
  std::string failures;
  for (int i = 0; i < 20; ++i) {
    auto r =
        CreateObjective("ta-child-" + std::to_string(i), "2026-q1", "ta", "Child", {"hr-hiring"});
    if (r.ok()) {
      ++landed;
    } else {
      failures += r.status().ToString() + "\n";
    }
  }
  stop = true;
  for (auto& c : commenters) c.join();
  EXPECT_EQ(landed, 20) << failures;
  ExpectFullReplayEqualsLive();
}

// What an authorisation read cannot change under it: the check passed on
// one state, a unit it relied on moves before the append lands, and the
// write is decided — and authorised — again, on the state after the move.
TEST_F(ProjectorTest, AScopeThatChangesUnderAWriteIsCheckedAgain) {
  int checks = 0;
  WriteRequest request;
  RecordCheckIn c;
  c.key_result = "kr-hires";
  c.value = 2;
  request.command = c;
  request.actor = "editor";
  // Allowed while amara sits in Talent Acquisition; relies on amara.
  request.authorize = [&](const Projection& p, const Command&, std::vector<std::string>* read) {
    ++checks;
    read->push_back("amara");
    if (checks == 1) {
      // amara moves to HR Operations between the check and the append.
      EventDraft move("admin", "amara");
      auto b = move.event().initUnitMoved();
      b.setBefore("ta");
      b.setAfter("hr-ops");
      EXPECT_TRUE(store().Append(OneEvent(std::move(move))).ok());
    }
    if (p.unit("amara")->current().parent != "ta") return Status::PermissionDenied("out of scope");
    return Status::Ok();
  };
  const uint64_t before = Head();
  auto r = projector().Write(request);
  EXPECT_EQ(r.status().code(), Status::Code::kPermissionDenied) << r.status().ToString();
  EXPECT_EQ(checks, 2);
  EXPECT_EQ(Head(), before + 1);  // the move only
}

// An event the fold cannot apply (written around the projector, as a bug
// or another tool might): the projector says so and stops there, keeps
// serving the state before it, refuses writes, and starts again the same.
TEST_F(ProjectorTest, AnUnfoldableEventMakesTheProjectorStuckNotDead) {
  const uint64_t good = Head();
  const std::string title = state().objective("hr-hiring")->current().title;
  // A check-in on a key result that does not exist.
  auto bad = store().Append(OneEvent(CheckInDraft("tool", "kr-ghost", "ci-ghost", 1)));
  ASSERT_TRUE(bad.ok()) << bad.status().ToString();
  ASSERT_EQ(bad->first_seq, good + 1);
  EXPECT_EQ(projector().CatchUp().code(), Status::Code::kIOError);

  auto refused = CheckIn("kr-hires", 3);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kIOError) << refused.status().ToString();
  auto stuck = projector().stuck();
  ASSERT_TRUE(stuck.has_value());
  EXPECT_EQ(stuck->seq, good + 1);
  EXPECT_NE(stuck->reason.find("kr-ghost"), std::string::npos) << stuck->reason;
  EXPECT_EQ(projector().seq(), good);
  EXPECT_EQ(state().objective("hr-hiring")->current().title, title);
  EXPECT_EQ(Head(), good + 1);  // the refused write appended nothing

  ReopenStore();
  ASSERT_TRUE(projector().stuck().has_value());
  EXPECT_EQ(projector().stuck()->seq, good + 1);
  EXPECT_EQ(projector().seq(), good);
  EXPECT_EQ(CheckIn("kr-hires", 3).status().code(), Status::Code::kIOError);
}

// A long replay reads the log on a second thread while it folds: it
// folds every event once, in order, and stops at the first event that
// cannot be folded with the state before it, however far ahead the
// reading went.
TEST_F(ProjectorTest, ALongReplayFoldsAllAndStopsAtTheFirstUnfoldableEvent) {
  options_.snapshot_every_events = 0;  // every start replays the whole log
  ReopenStore();
  auto append_check_ins = [&](const std::string& prefix, int count) {
    for (int done = 0; done < count;) {
      AppendRequest request;
      for (; done < count && request.events.size() < kMaxEventsPerAppend; ++done) {
        request.events.push_back(
            CheckInDraft("tool", "kr-hires", prefix + std::to_string(done), done % 20));
      }
      ASSERT_TRUE(store().Append(std::move(request)).ok());
    }
  };
  ASSERT_NO_FATAL_FAILURE(append_check_ins("ci-a", 30'000));
  ASSERT_OK(projector().CatchUp());
  ASSERT_NO_FATAL_FAILURE(ExpectFullReplayEqualsLive());
  const uint64_t good = Head();
  ASSERT_TRUE(store().Append(OneEvent(CheckInDraft("tool", "kr-ghost", "ci-ghost", 1))).ok());
  ASSERT_NO_FATAL_FAILURE(append_check_ins("ci-b", 30'000));

  ReopenStore();
  auto stuck = projector().stuck();
  ASSERT_TRUE(stuck.has_value());
  EXPECT_EQ(stuck->seq, good + 1);
  EXPECT_NE(stuck->reason.find("kr-ghost"), std::string::npos) << stuck->reason;
  EXPECT_EQ(projector().seq(), good);
  const KeyResult* hires = state().key_result("kr-hires");
  ASSERT_NE(hires, nullptr);
  EXPECT_EQ(hires->check_ins.size(), 30'000u);
  auto rebuilt = Projector::Rebuild(store(), good, /*use_snapshot=*/false);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
  EXPECT_TRUE(*rebuilt == state());
}

TEST_F(ProjectorTest, StuckIsReportedOnceToItsListener) {
  std::atomic<int> told{0};
  std::atomic<uint64_t> told_seq{0};
  options_.on_stuck = [&](uint64_t seq, const Status&) {
    ++told;
    told_seq = seq;
  };
  ReopenStore();
  ASSERT_TRUE(store().Append(OneEvent(CheckInDraft("tool", "kr-ghost", "ci-ghost", 1))).ok());
  (void)projector().CatchUp();
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(CheckIn("kr-hires", i).ok());
  EXPECT_EQ(told.load(), 1);
  EXPECT_EQ(told_seq.load(), Head());
}

// A snapshot owed when the last process stopped is owed again by the next
// start: a process killed before its snapshot thread wrote one (or a log
// restored without one) must not start from further back every time.
TEST_F(ProjectorTest, ASnapshotOwedAtStopIsWrittenAfterTheNextStart) {
  options_.snapshot_every_events = 0;  // none written, as if each was cut off
  ASSERT_NO_FATAL_FAILURE(ReopenStore());
  for (int i = 0; Head() < 25; ++i) ASSERT_OK(CheckIn("kr-hires", i));
  ASSERT_EQ(store().NewestSnapshotSeq(), 0u);
  options_.snapshot_every_events = 10;
  ASSERT_NO_FATAL_FAILURE(ReopenStore());
  projector().WaitForSnapshots();
  EXPECT_EQ(store().NewestSnapshotSeq(), Head());
}

// A stored snapshot the start refuses (here one that does not decode) is
// not one it stands on: the start replays the log and owes a new one.
TEST_F(ProjectorTest, ASnapshotRefusedAtStartIsWrittenAgain) {
  options_.snapshot_every_events = 0;
  ASSERT_NO_FATAL_FAILURE(ReopenStore());
  for (int i = 0; Head() < 25; ++i) ASSERT_OK(CheckIn("kr-hires", i));
  ASSERT_OK(store().PutSnapshot(Head(), {std::string(64, '\x7f')}));
  ASSERT_OK(CheckIn("kr-hires", 99));
  options_.snapshot_every_events = 10;
  ASSERT_NO_FATAL_FAILURE(ReopenStore());
  projector().WaitForSnapshots();
  EXPECT_EQ(store().NewestSnapshotSeq(), Head());
  ExpectFullReplayEqualsLive();
}

// A reader holding the projection longer than kFoldWaitForReaders makes
// the writer's thread leave the batch to the follower: the write still
// lands, folded, and the projector counts the batch (okrd's /metrics).
TEST_F(ProjectorTest, ABatchLeftToTheFollowerIsFoldedAndCounted) {
  const uint64_t left_before = projector().batches_left_to_follower();
  std::atomic<bool> reading{false};
  std::thread reader([&] {
    projector().Read([&](const Projection&) {
      reading = true;
      std::this_thread::sleep_for(kFoldWaitForReaders * 10);
      return 0;
    });
  });
  while (!reading) std::this_thread::yield();
  auto written = CheckIn("kr-hires", 7);
  reader.join();
  ASSERT_OK(written.status());
  EXPECT_EQ(projector().seq(), Head());
  EXPECT_EQ(projector().batches_left_to_follower(), left_before + 1);
  ExpectFullReplayEqualsLive();
}

// Snapshots are spaced by a fraction of the log as well as by count, so
// their cost per event does not grow with the log.
TEST_F(ProjectorTest, SnapshotsAreSpacedByAFractionOfTheLog) {
  options_.snapshot_every_events = 0;
  ASSERT_NO_FATAL_FAILURE(ReopenStore());
  for (int i = 0; Head() < 80; ++i) ASSERT_OK(CheckIn("kr-hires", i));
  options_.snapshot_every_events = 5;
  ASSERT_NO_FATAL_FAILURE(ReopenStore());  // owed at 80 (none stored)
  projector().WaitForSnapshots();
  const uint64_t first = store().NewestSnapshotSeq();
  ASSERT_EQ(first, Head());
  // Every 5 events on a short log; here a quarter of the log: the next is
  // owed once the head is a quarter past `first` (4/3 of it), not before.
  static_assert(kSnapshotLogFraction == 4);
  while (Head() < first + first / 5) ASSERT_OK(CheckIn("kr-hires", 1));
  projector().WaitForSnapshots();
  EXPECT_EQ(store().NewestSnapshotSeq(), first);
  while (Head() * 3 < first * 4) ASSERT_OK(CheckIn("kr-hires", 2));
  projector().WaitForSnapshots();
  EXPECT_GT(store().NewestSnapshotSeq(), first);
}

// A replica copying a long log folds it in bulk batches; a snapshot owed
// meanwhile would rebuild and encode a state the copy leaves behind within
// seconds. It waits for the copy to pause and is written once, at the seq
// the copy reached, and okrd hears of it (to give that state's memory back).
TEST_F(ProjectorTest, ASnapshotOwedDuringABulkCopyIsWrittenOnceItPauses) {
  auto log = CheckInLog(2 * kFoldBesideWriterAtEvents + 100);
  ASSERT_TRUE(log.ok());
  const auto half = static_cast<std::ptrdiff_t>(log->size() / 2);
  testing::TempDir dir;
  auto copy = EventStore::Open(dir.path());
  ASSERT_OK(copy.status());
  std::atomic<int> snapshots{0};
  ProjectorOptions options;
  options.snapshot_every_events = 100;
  options.after_snapshot = [&] { snapshots.fetch_add(1); };
  auto follower = Projector::Open(copy->get(), options);
  ASSERT_OK(follower.status());
  // Two bulk batches, each owing a snapshot once folded.
  ASSERT_OK((*copy)->AppendStored({log->begin(), log->begin() + half}).status());
  ASSERT_OK((*copy)->AppendStored({log->begin() + half, log->end()}).status());
  const auto copied = std::chrono::steady_clock::now();
  (*follower)->WaitForSnapshots();
  EXPECT_EQ((*copy)->NewestSnapshotSeq(), log->size());
  EXPECT_EQ(snapshots.load(), 1);
  // Not before the copy had paused (less the time the last append took
  // to answer after it was folded).
  EXPECT_GE(std::chrono::steady_clock::now() - copied, kSnapshotAfterBulkQuiet / 2);
  EXPECT_EQ((*follower)->seq(), log->size());
}

// A replica's bulk batches are folded from the events the writer's thread
// hands over, without reading them again from the log. While the fold is
// held up (here by a reader) at most kMostHandedBatches wait in memory; the
// rest are left to the log, and the follower reads them from there. The
// state is the one a replay of the log gives either way.
TEST_F(ProjectorTest, BulkBatchesHandedOverOrLeftToTheLogFoldTheSame) {
  constexpr size_t kBatches = kMostHandedBatches + 3;
  auto log = CheckInLog(kBatches * kFoldBesideWriterAtEvents + 10);
  ASSERT_TRUE(log.ok());
  testing::TempDir dir;
  auto copy = EventStore::Open(dir.path());
  ASSERT_OK(copy.status());
  ProjectorOptions options;
  options.snapshot_every_events = 0;
  auto follower = Projector::Open(copy->get(), options);
  ASSERT_OK(follower.status());
  const size_t per_batch = log->size() / kBatches + 1;
  (*follower)->Read([&](const Projection&) {
    for (size_t from = 0; from < log->size(); from += per_batch) {
      const auto to = static_cast<std::ptrdiff_t>(std::min(from + per_batch, log->size()));
      ASSERT_OK(
          (*copy)
              ->AppendStored({log->begin() + static_cast<std::ptrdiff_t>(from), log->begin() + to})
              .status());
    }
    EXPECT_EQ((*copy)->head().seq, log->size());  // stored while the fold waits
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((*follower)->seq() < log->size() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ((*follower)->seq(), log->size());
  auto replayed = Projector::Rebuild(store(), Head(), /*use_snapshot=*/false);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  (*follower)->Read([&](const Projection& p) { EXPECT_TRUE(*replayed == p); });
}

}  // namespace
}  // namespace okr
