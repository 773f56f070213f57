// A read replica's copy of the log (api/replica.h) from a real okrd: the
// primary's exact bytes, caught up and followed, and a history that
// disagrees refused with nothing stored.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <vector>

#include "api/replica.h"
#include "tests/okrd_story.h"
#include "tests/tampering_proxy.h"
#include "tests/test_support.h"

namespace okr::testing {
namespace {

using api::ReplicaFollower;

std::unique_ptr<EventStore> OpenReplicaStore(const std::string& dir,
                                             const OpenOptions& options = {}) {
  auto opened = EventStore::Open(dir, options);
  EXPECT_TRUE(opened.ok()) << opened.status().ToString();
  return opened.ok() ? std::move(opened.value()) : nullptr;
}

ReplicaFollower::Options Following(const Okrd& primary, std::string token = kReplica.token) {
  ReplicaFollower::Options options;
  options.primary = "http://127.0.0.1:" + std::to_string(primary.port());
  options.token = std::move(token);
  options.poll = std::chrono::milliseconds(20);
  options.max_backoff = std::chrono::milliseconds(200);
  return options;
}

// The primary's whole log as GET /v1/events/raw serves it.
std::string PrimaryRaw(const Okrd& primary) {
  Reply r = primary.Get("/v1/events/raw?after=0&limit=100000", kAuditor.token);
  EXPECT_EQ(r.status, 200);
  return r.body;
}

// The same frames (SPEC §8) made from the replica's own store.
std::string ReplicaRaw(EventStore& store) {
  auto events = store.Read(0, 100000);
  EXPECT_TRUE(events.ok());
  std::string out;
  for (const StoredEvent& e : *events) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(e.seq >> shift));
    for (int shift = 24; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>(e.bytes.size() >> shift));
    }
    out += e.bytes;
  }
  return out;
}

// The name of the units PostWideUnits makes.
const std::string kWideName(190, 'n');

// `n` new teams under hr, each event about 300 bytes (a long name).
void PostWideUnits(const Okrd& primary, int n) {
  for (int i = 0; i < n; ++i) {
    Want(primary.Post("/v1/units",
                      {{"id", "wide" + std::to_string(i)},
                       {"kind", "team"},
                       {"name", kWideName},
                       {"parent", "hr"}},
                      kAdmin.token),
         201);
  }
}

class ReplicaFollowerTest : public OkrdWithOrg {};

TEST_F(ReplicaFollowerTest, CatchesUpFollowsAndHoldsThePrimarysExactBytes) {
  TempDir dir;
  auto store = OpenReplicaStore(dir.Sub("replica"));
  auto follower = std::make_unique<ReplicaFollower>(store.get(), Following(s));
  ASSERT_TRUE(WaitFor([&] { return store->head().seq == s.HeadSeq(); }, 30))
      << follower->state().problem;
  EXPECT_EQ(ReplicaRaw(*store), PrimaryRaw(s));
  // Writes on the primary arrive while it follows.
  for (int i = 0; i < 30; ++i) {
    Want(
        s.Post(
            "/v1/units",
            {{"id", "t" + std::to_string(i)}, {"kind", "team"}, {"name", "Team"}, {"parent", "hr"}},
            kAdmin.token),
        201);
  }
  const uint64_t head = s.HeadSeq();
  ASSERT_TRUE(WaitFor([&] { return store->head().seq == head; }, 30)) << follower->state().problem;
  EXPECT_EQ(ReplicaRaw(*store), PrimaryRaw(s));
  const auto state = follower->state();
  EXPECT_TRUE(state.connected);
  EXPECT_FALSE(state.diverged);
  EXPECT_EQ(state.primary_head, head);
  // Stopped and started again, it resumes from its own head.
  follower.reset();
  Want(s.Post("/v1/units", {{"id", "late"}, {"kind", "team"}, {"name", "Late"}, {"parent", "hr"}},
              kAdmin.token),
       201);
  follower = std::make_unique<ReplicaFollower>(store.get(), Following(s));
  ASSERT_TRUE(WaitFor([&] { return store->head().seq == head + 1; }, 30));
  EXPECT_EQ(ReplicaRaw(*store), PrimaryRaw(s));
  EXPECT_TRUE(store->Verify().ok);
}

// A page of large events must not be held whole: each append the follower
// makes while catching up stops at the first event that reaches its byte
// bound, and the stream's appends after it keep the same bound.
TEST_F(ReplicaFollowerTest, EachAppendStopsAtItsByteBound) {
  TempDir dir;
  std::mutex mu;
  std::vector<uint64_t> heads;  // the head after each durable batch, in order
  OpenOptions open;
  open.on_batch = [&](size_t, size_t, uint64_t head, int64_t, const Status& status) {
    std::lock_guard<std::mutex> lock(mu);
    if (status.ok()) heads.push_back(head);
  };
  auto store = OpenReplicaStore(dir.Sub("replica"), open);
  constexpr size_t kBound = 600;
  ReplicaFollower::Options options = Following(s);
  options.most_append_bytes = kBound;
  auto follower = std::make_unique<ReplicaFollower>(store.get(), options);
  ASSERT_TRUE(WaitFor([&] { return store->head().seq == s.HeadSeq(); }, 30))
      << follower->state().problem;
  const size_t caught_up = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return heads.size();
  }();
  // Then events from the stream, each larger than a tenth of the bound.
  PostWideUnits(s, 40);
  const uint64_t head = s.HeadSeq();
  ASSERT_TRUE(WaitFor([&] { return store->head().seq == head; }, 30)) << follower->state().problem;
  follower.reset();
  EXPECT_EQ(ReplicaRaw(*store), PrimaryRaw(s));
  auto events = store->Read(0, head);
  ASSERT_TRUE(events.ok());
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_GT(caught_up, 2u);  // the primary's log is several bounds long
  EXPECT_GT(heads.size(), caught_up);
  uint64_t from = 0;
  for (uint64_t to : heads) {
    ASSERT_GT(to, from);
    size_t before_last = 0;  // the batch's bytes but its last event's
    for (uint64_t seq = from + 1; seq < to; ++seq) before_last += (*events)[seq - 1].bytes.size();
    EXPECT_LT(before_last, kBound) << "the append of seqs " << from + 1 << " to " << to;
    from = to;
  }
  EXPECT_EQ(from, head);
}

// Catching up, a page is stored in several appends, each made while the
// rest of the page is read. An event damaged on its way, wherever it falls
// among them (the last of an append included, whose successor comes in
// the next), stops the follower with the appends before it stored and
// nothing of it or after it.
TEST_F(ReplicaFollowerTest, AnEventDamagedMidPageStoresOnlyTheAppendsBeforeIt) {
  // Events of about 300 bytes, the flipped byte in a name: each decodes,
  // and only the hash chain tells the damage.
  PostWideUnits(s, 12);
  const uint64_t head = s.HeadSeq();
  const std::string primary_raw = PrimaryRaw(s);
  Proxy proxy(s.port());
  for (uint64_t damaged = head - 6; damaged < head - 2; ++damaged) {
    SCOPED_TRACE("seq " + std::to_string(damaged) + " damaged");
    TempDir dir;
    std::mutex mu;
    size_t appends = 0;
    OpenOptions open;
    open.on_batch = [&](size_t, size_t, uint64_t, int64_t, const Status& status) {
      std::lock_guard<std::mutex> lock(mu);
      appends += status.ok();
    };
    auto store = OpenReplicaStore(dir.Sub("replica"), open);
    proxy.Set(Proxy::Tamper::kFlipByte, damaged, kWideName);
    ReplicaFollower::Options options = Following(s);
    options.primary = proxy.url();
    options.most_append_bytes = 600;  // two or three events an append
    ReplicaFollower follower(store.get(), options);
    ASSERT_TRUE(WaitFor([&] { return follower.state().diverged; }, 30)) << follower.state().problem;
    EXPECT_LT(store->head().seq, damaged) << follower.state().problem;
    EXPECT_NE(follower.state().problem.find("prevHash"), std::string::npos)
        << follower.state().problem;
    const std::string held = ReplicaRaw(*store);
    EXPECT_EQ(held, primary_raw.substr(0, held.size()));
    EXPECT_TRUE(store->Verify().ok);
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_GT(appends, 1u);  // the appends before the damaged one
  }
}

TEST_F(ReplicaFollowerTest, AHistoryThatDisagreesStopsItWithNothingStored) {
  TempDir dir;
  auto store = OpenReplicaStore(dir.Sub("replica"));
  // This log's first event is not the primary's.
  ASSERT_TRUE(store->Append(OneEvent(UnitCreatedDraft("admin", "elsewhere", "Elsewhere"))).ok());
  const Head before = store->head();
  ReplicaFollower follower(store.get(), Following(s));
  ASSERT_TRUE(WaitFor([&] { return follower.state().diverged; }, 30));
  EXPECT_NE(follower.state().problem.find("does not continue this log"), std::string::npos)
      << follower.state().problem;
  EXPECT_EQ(store->head().seq, before.seq);
  EXPECT_EQ(store->head().hash, before.hash);
}

TEST_F(ReplicaFollowerTest, AWrongTokenIsRetriedNotTakenForDivergence) {
  TempDir dir;
  auto store = OpenReplicaStore(dir.Sub("replica"));
  ReplicaFollower follower(store.get(), Following(s, kViewer.token));
  ASSERT_TRUE(WaitFor([&] { return !follower.state().problem.empty(); }, 30));
  const auto state = follower.state();
  EXPECT_FALSE(state.diverged);
  EXPECT_FALSE(state.connected);
  EXPECT_NE(state.problem.find("403"), std::string::npos) << state.problem;
  EXPECT_EQ(store->head().seq, 0u);
}

}  // namespace
}  // namespace okr::testing
