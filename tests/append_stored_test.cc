// A replica's appends (EventStore::AppendStored): the exact bytes of
// another log, stored only when they continue this one.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <iterator>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include <capnp/message.h>

#include "eventstore/event_codec.h"
#include "eventstore/event_store.h"
#include "tests/test_support.h"

namespace okr {
namespace {

using testing::CheckInDraft;
using testing::OneEvent;
using testing::ReadFile;
using testing::TempDir;
using testing::UnitCreatedDraft;

std::unique_ptr<EventStore> OpenAt(const std::string& dir) {
  auto opened = EventStore::Open(dir);
  EXPECT_TRUE(opened.ok()) << opened.status().ToString();
  return opened.ok() ? std::move(opened.value()) : nullptr;
}

// A primary log of `units` units, each with three check-ins on a key
// result of its own; one append holds two events, one has a key.
std::vector<StoredEvent> WritePrimary(EventStore* primary, int units) {
  for (int u = 0; u < units; ++u) {
    const std::string unit = "u" + std::to_string(u);
    EXPECT_TRUE(primary->Append(OneEvent(UnitCreatedDraft("admin", unit, "Unit " + unit))).ok());
    for (int c = 0; c < 3; ++c) {
      AppendRequest request =
          OneEvent(CheckInDraft("alice", "kr-" + unit, unit + "-ci-" + std::to_string(c), c));
      if (c == 1) request.idempotency_key = "key-" + unit;
      if (c == 2) request.events.push_back(CheckInDraft("bob", "kr-" + unit, unit + "-ci-x", 9));
      EXPECT_TRUE(primary->Append(std::move(request)).ok());
    }
  }
  auto events = primary->Read(0, 100000);
  EXPECT_TRUE(events.ok());
  return events.ok() ? *events : std::vector<StoredEvent>{};
}

std::vector<StoredEvent> Slice(const std::vector<StoredEvent>& all, size_t from, size_t count) {
  const auto begin = all.begin() + static_cast<std::ptrdiff_t>(std::min(from, all.size()));
  const auto end = all.begin() + static_cast<std::ptrdiff_t>(std::min(from + count, all.size()));
  return {begin, end};
}

void ExpectSameHead(const Head& a, const Head& b) {
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.hash, b.hash);
  EXPECT_EQ(a.recorded_at_us, b.recorded_at_us);
  EXPECT_EQ(a.root, b.root);
}

TEST(AppendStoredTest, AReplicaFedTheStoredBytesKeepsTheSameLog) {
  TempDir dir;
  auto primary = OpenAt(dir.Sub("primary"));
  const std::vector<StoredEvent> log = WritePrimary(primary.get(), 20);
  ASSERT_EQ(log.size(), 100u);
  auto replica = OpenAt(dir.Sub("replica"));
  size_t heard = 0;
  replica->SetDurableListener(
      [&](const std::vector<StoredEvent>& events) { heard += events.size(); });
  for (size_t from = 0; from < log.size(); from += 7) {
    auto stored = replica->AppendStored(Slice(log, from, 7));
    ASSERT_TRUE(stored.ok()) << stored.status().ToString();
    EXPECT_EQ(stored->first_seq, from + 1);
    EXPECT_EQ(stored->last_seq, std::min(from + 7, log.size()));
  }
  EXPECT_EQ(heard, log.size());
  ExpectSameHead(replica->head(), primary->head());
  auto copied = replica->Read(0, 1000);
  ASSERT_TRUE(copied.ok());
  ASSERT_EQ(copied->size(), log.size());
  for (size_t i = 0; i < log.size(); ++i) EXPECT_EQ(copied->at(i).bytes, log[i].bytes);
  // The indexes a write consults came along: versions, and taken ids.
  EXPECT_EQ(*replica->Version("kr-u3"), *primary->Version("kr-u3"));
  auto again = replica->Append(OneEvent(UnitCreatedDraft("admin", "u4", "Unit u4 again")));
  EXPECT_EQ(again.status().code(), Status::Code::kVersionMismatch);
  // Durable, and whole after a reopen.
  replica.reset();
  replica = OpenAt(dir.Sub("replica"));
  ExpectSameHead(replica->head(), primary->head());
  EXPECT_TRUE(replica->Verify().ok);
}

// The replica holds the first `held` events of `log`; `offered` is refused
// with kCorruption naming `bad_seq`, and the head does not move.
void ExpectRefused(EventStore* replica, PreparedStored offered, uint64_t bad_seq) {
  const Head before = replica->head();
  auto stored = replica->AppendStored(std::move(offered));
  ASSERT_FALSE(stored.ok());
  EXPECT_EQ(stored.status().code(), Status::Code::kCorruption);
  EXPECT_NE(stored.status().message().find("seq " + std::to_string(bad_seq) + " "),
            std::string::npos)
      << stored.status().message();
  ExpectSameHead(replica->head(), before);
  auto after = replica->Read(before.seq, 10);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty()) << "nothing past the head was stored";
}

void ExpectRefused(EventStore* replica, std::vector<StoredEvent> offered, uint64_t bad_seq) {
  ExpectRefused(replica, replica->PrepareStored(std::move(offered)), bad_seq);
}

TEST(AppendStoredTest, EventsThatDoNotContinueTheLogAreRefusedWholeAndStoreNothing) {
  TempDir dir;
  auto primary = OpenAt(dir.Sub("primary"));
  const std::vector<StoredEvent> log = WritePrimary(primary.get(), 6);
  auto other = OpenAt(dir.Sub("other"));  // another log: same shape, other times and hashes
  const std::vector<StoredEvent> other_log = WritePrimary(other.get(), 6);
  auto replica = OpenAt(dir.Sub("replica"));
  ASSERT_TRUE(replica->AppendStored(Slice(log, 0, 10)).ok());  // seqs 1-10 held

  // A byte changed in seq 12 (its text): 11 and 12 decode, 13's prevHash
  // no longer matches, and the whole append is refused.
  std::vector<StoredEvent> flipped = Slice(log, 10, 5);
  const size_t at = flipped[1].bytes.find("alice");
  ASSERT_NE(at, std::string::npos);
  flipped[1].bytes[at] = 'A';
  ExpectRefused(replica.get(), flipped, 13);

  std::vector<StoredEvent> gap = Slice(log, 10, 5);
  gap.erase(gap.begin() + 2);  // seq 13 dropped
  ExpectRefused(replica.get(), gap, 14);

  std::vector<StoredEvent> swapped = Slice(log, 10, 5);
  std::swap(swapped[1], swapped[2]);
  ExpectRefused(replica.get(), swapped, 13);

  ExpectRefused(replica.get(), Slice(log, 9, 3), 10);         // seq 10 again
  ExpectRefused(replica.get(), Slice(other_log, 10, 3), 11);  // another log's seq 11

  std::vector<StoredEvent> garbage = Slice(log, 10, 2);
  garbage[0].bytes = std::string(64, '\x7f');
  ExpectRefused(replica.get(), garbage, 11);

  std::vector<StoredEvent> renumbered = Slice(log, 10, 2);
  renumbered[1].seq = 13;  // the bytes say 12
  ExpectRefused(replica.get(), renumbered, 13);

  // The right events are still taken after every refusal.
  ASSERT_TRUE(replica->AppendStored(Slice(log, 10, log.size())).ok());
  ExpectSameHead(replica->head(), primary->head());
  EXPECT_TRUE(replica->Verify().ok);
}

// `event` re-encoded after `change`: its prevHash and seq stay right.
StoredEvent Rewritten(const StoredEvent& event,
                      const std::function<void(schema::Event::Builder)>& change) {
  auto decoded = DecodedEvent::Decode(event.bytes);
  EXPECT_TRUE(decoded.ok());
  capnp::MallocMessageBuilder message;
  message.setRoot((*decoded)->event());
  change(message.getRoot<schema::Event>());
  return {event.seq, EncodeMessage(message)};
}

// A primary log of `units` units, each with four check-ins on a key
// result of its own, a thousand events to an append: a log to copy in
// appends large enough to be ingested.
std::vector<StoredEvent> WriteLargePrimary(EventStore* primary, int units) {
  AppendRequest request;
  auto flush = [&] {
    if (!request.events.empty()) {
      EXPECT_TRUE(primary->Append(std::move(request)).ok());
    }
    request = AppendRequest();
  };
  for (int u = 0; u < units; ++u) {
    const std::string unit = "u" + std::to_string(u);
    request.events.push_back(UnitCreatedDraft("admin", unit, "Unit " + unit));
    for (int c = 0; c < 4; ++c) {
      request.events.push_back(
          CheckInDraft("alice", "kr-" + unit, unit + "-ci-" + std::to_string(c), c));
    }
    if (request.events.size() + 5 > kMaxEventsPerAppend) flush();
  }
  flush();
  std::vector<StoredEvent> log;
  while (log.size() < primary->head().seq) {
    auto events = primary->Read(log.size(), kMaxStoredEventsPerAppend);
    EXPECT_TRUE(events.ok() && !events->empty());
    if (!events.ok() || events->empty()) break;
    log.insert(log.end(), std::make_move_iterator(events->begin()),
               std::make_move_iterator(events->end()));
  }
  return log;
}

// Files a table written beside the log left there (none, once ingested).
size_t PendingTables(const std::string& dir) {
  size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    n += entry.path().filename().string().ends_with(".sst.pending");
  }
  return n;
}

TEST(AppendStoredTest, ABulkAppendIsIngestedWholeAndKeepsTheSameLog) {
  TempDir dir;
  auto primary = OpenAt(dir.Sub("primary"));
  const std::vector<StoredEvent> log = WriteLargePrimary(primary.get(), 2400);
  ASSERT_EQ(log.size(), 12000u);
  auto replica = OpenAt(dir.Sub("replica"));
  // One append of 10,000 events (ingested as table files), then the rest
  // in small appends (written through the memtables) on top of it.
  ASSERT_TRUE(replica->AppendStored(Slice(log, 0, 10000)).ok());
  EXPECT_EQ(replica->head().seq, 10000u);
  for (size_t from = 10000; from < log.size(); from += 500) {
    ASSERT_TRUE(replica->AppendStored(Slice(log, from, 500)).ok());
  }
  ExpectSameHead(replica->head(), primary->head());
  EXPECT_EQ(PendingTables(dir.Sub("replica")), 0u);
  // The large append went in as table files (RocksDB's LOG names each file
  // it ingests), the small ones through the write path.
  const std::string rocksdb_log = ReadFile(dir.Sub("replica") + "/LOG");
  EXPECT_NE(rocksdb_log.find("/append-10000-"), std::string::npos);
  EXPECT_EQ(rocksdb_log.find("/append-10500-"), std::string::npos);

  auto check = [&](EventStore* copy) {
    auto copied = copy->Read(0, log.size());
    ASSERT_TRUE(copied.ok());
    ASSERT_EQ(copied->size(), log.size());
    for (size_t i = 0; i < log.size(); ++i) ASSERT_EQ(copied->at(i).bytes, log[i].bytes) << i;
    // The streams, ids and tree the ingestion wrote answer as the primary's.
    for (const std::string entity : {"kr-u7", "u1999", "kr-u2399"}) {
      EXPECT_EQ(*copy->Version(entity), *primary->Version(entity)) << entity;
      auto stream = copy->ReadStream(entity);
      ASSERT_TRUE(stream.ok());
      EXPECT_EQ(stream->size(), primary->ReadStream(entity)->size()) << entity;
    }
    for (uint64_t size : {uint64_t{1}, uint64_t{8191}, uint64_t{10000}, uint64_t{12000}}) {
      EXPECT_EQ(*copy->TreeRoot(size), *primary->TreeRoot(size)) << size;
    }
    EXPECT_EQ(*copy->InclusionProof(5000, 12000), *primary->InclusionProof(5000, 12000));
    auto again = copy->Append(OneEvent(UnitCreatedDraft("admin", "u1234", "Unit u1234 again")));
    EXPECT_EQ(again.status().code(), Status::Code::kVersionMismatch);
    EXPECT_TRUE(copy->Verify().ok);
  };
  check(replica.get());
  replica.reset();  // and whole after a reopen
  replica = OpenAt(dir.Sub("replica"));
  check(replica.get());
}

// The lines of RocksDB's LOG in `dir` where it merges `family`'s tables.
std::vector<std::string> Merges(const std::string& dir, const std::string& family) {
  std::istringstream log(ReadFile(dir + "/LOG"));
  std::vector<std::string> merges;
  for (std::string line; std::getline(log, line);) {
    if (line.find("[" + family + "] [JOB ") != std::string::npos &&
        line.find("] Compacting ") != std::string::npos) {
      merges.push_back(line);
    }
  }
  return merges;
}

// A bulk copy's index tables (streams, ids, tree) each overlap the ones
// before them: once levels 6 to 1 hold one each, they gather in level 0,
// where merging every four rewrote all of level 1 each time. They are
// merged once the copy pauses, all at once, and the log stays whole.
TEST(AppendStoredTest, BulkAppendsIndexTablesAreMergedAtOnceWhenTheCopyPauses) {
  TempDir dir;
  auto primary = OpenAt(dir.Sub("primary"));
  // Each append ingested (at least kIngestAtEvents); the last five land in level 0.
  constexpr size_t kAppends = 11, kAppend = 8200;
  const std::vector<StoredEvent> log = WriteLargePrimary(primary.get(), kAppends * kAppend / 5);
  ASSERT_EQ(log.size(), kAppends * kAppend);
  const std::string at = dir.Sub("replica");
  auto replica = OpenAt(at);
  for (size_t from = 0; from < log.size(); from += kAppend) {
    ASSERT_TRUE(replica->AppendStored(Slice(log, from, kAppend)).ok());
  }
  ASSERT_EQ(replica->head().seq, log.size());
  // The copy has paused: within seconds the five are merged, in one go.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (Merges(at, "streams").empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::vector<std::string> merges = Merges(at, "streams");
  ASSERT_EQ(merges.size(), 1u);
  EXPECT_NE(merges[0].find("Compacting 5@0 "), std::string::npos) << merges[0];
  // What was copied answers as the primary's; a write goes on the log after it.
  for (const std::string entity : {"kr-u7", "u18039", "kr-u9000"}) {
    EXPECT_EQ(*replica->Version(entity), *primary->Version(entity)) << entity;
  }
  EXPECT_EQ(*replica->TreeRoot(log.size()), *primary->TreeRoot(log.size()));
  EXPECT_TRUE(replica->Append(OneEvent(UnitCreatedDraft("admin", "u-after", "After"))).ok());
  EXPECT_TRUE(replica->Verify().ok);
}

TEST(AppendStoredTest, ABulkAppendThatDoesNotContinueTheLogStoresNothing) {
  TempDir dir;
  auto primary = OpenAt(dir.Sub("primary"));
  const std::vector<StoredEvent> log = WriteLargePrimary(primary.get(), 2000);
  auto replica = OpenAt(dir.Sub("replica"));
  ASSERT_TRUE(replica->AppendStored(Slice(log, 0, 10)).ok());
  std::vector<StoredEvent> flipped = Slice(log, 10, 9990);
  const size_t at = flipped[8001].bytes.find("alice");  // a check-in's actor
  ASSERT_NE(at, std::string::npos);
  flipped[8001].bytes[at] = 'A';  // seq 8012; 8013 names its old hash
  ExpectRefused(replica.get(), flipped, 8013);
  EXPECT_EQ(PendingTables(dir.Sub("replica")), 0u);
  ASSERT_TRUE(replica->AppendStored(Slice(log, 10, 9990)).ok());
  EXPECT_EQ(replica->head().seq, 10000u);
  EXPECT_EQ(*replica->TreeRoot(10000), *primary->TreeRoot(10000));
  EXPECT_TRUE(replica->Verify().ok);
}

TEST(AppendStoredTest, AVersionOrIdTheLogContradictsIsRefused) {
  TempDir dir;
  auto primary = OpenAt(dir.Sub("primary"));
  const std::vector<StoredEvent> log = WritePrimary(primary.get(), 4);
  auto replica = OpenAt(dir.Sub("replica"));
  ASSERT_TRUE(replica->AppendStored(Slice(log, 0, 11)).ok());  // u0, u1, then u2 created
  const StoredEvent& first_check_in = log[11];                 // seq 12: kr-u2's first
  ExpectRefused(replica.get(), {Rewritten(first_check_in, [](auto ev) { ev.setVersion(2); })}, 12);
  ExpectRefused(
      replica.get(),
      {Rewritten(first_check_in, [](auto ev) { ev.getCheckInRecorded().setCheckIn("u0-ci-0"); })},
      12);
  ExpectRefused(replica.get(), {Rewritten(first_check_in, [](auto ev) { ev.setEntity(""); })}, 12);
  // An id the log holds is named before a later event that breaks the chain.
  StoredEvent taken =
      Rewritten(first_check_in, [](auto ev) { ev.getCheckInRecorded().setCheckIn("u0-ci-0"); });
  StoredEvent broken = log[12];
  broken.bytes[broken.bytes.size() / 2] ^= 1;
  ExpectRefused(replica.get(), {taken, broken}, 12);
  // So is a version the log contradicts, though the later event is found
  // broken first, where the events are prepared.
  ExpectRefused(replica.get(),
                {Rewritten(first_check_in, [](auto ev) { ev.setVersion(2); }), broken}, 12);
  ASSERT_TRUE(replica->AppendStored(Slice(log, 11, log.size())).ok());
  ExpectSameHead(replica->head(), primary->head());
}

TEST(AppendStoredTest, APreparedAppendIsCheckedAgainstTheHeadItMeets) {
  TempDir dir;
  auto primary = OpenAt(dir.Sub("primary"));
  const std::vector<StoredEvent> log = WritePrimary(primary.get(), 4);
  auto replica = OpenAt(dir.Sub("replica"));
  ASSERT_TRUE(replica->AppendStored(Slice(log, 0, 5)).ok());
  // Prepared to follow seq 5, handed over after seqs 6-10 were stored.
  PreparedStored stale = replica->PrepareStored(Slice(log, 5, 5));
  PreparedStored next = replica->PrepareStored(Slice(log, 10, log.size()));
  EXPECT_EQ(stale.last_seq(), 10u);
  ASSERT_TRUE(replica->AppendStored(Slice(log, 5, 5)).ok());
  const Head before = replica->head();
  auto refused = replica->AppendStored(std::move(stale));
  EXPECT_EQ(refused.status().code(), Status::Code::kCorruption);
  EXPECT_NE(refused.status().message().find("seq 6 "), std::string::npos)
      << refused.status().message();
  ExpectSameHead(replica->head(), before);
  ASSERT_TRUE(replica->AppendStored(std::move(next)).ok());
  ExpectSameHead(replica->head(), primary->head());
}

// The ids an append creates are looked up in the log where it is
// prepared; an id that an append stored after that took is still found,
// whether the writer still keeps the ids of the batches since or not.
TEST(AppendStoredTest, AnIdTakenAfterAnAppendWasPreparedIsRefused) {
  TempDir dir;
  auto primary = OpenAt(dir.Sub("primary"));
  const std::vector<StoredEvent> log = WritePrimary(primary.get(), 4);
  auto creating = [](const StoredEvent& event, const std::string& id) {
    return Rewritten(event, [&id](auto ev) { ev.getCheckInRecorded().setCheckIn(id); });
  };
  auto replica = OpenAt(dir.Sub("replica"));
  ASSERT_TRUE(replica->AppendStored(Slice(log, 0, 11)).ok());  // u0, u1, then u2 created
  // Seq 13 made to create u2-ci-0, which seq 12 creates, stored meanwhile.
  PreparedStored one_batch_later = replica->PrepareStored({creating(log[12], "u2-ci-0")});
  ASSERT_TRUE(replica->AppendStored(Slice(log, 11, 1)).ok());
  ExpectRefused(replica.get(), std::move(one_batch_later), 13);
  // Seq 18 made to create u2-ci-1, which seq 13 creates: seqs 13-17 are
  // then stored one append at a time, more batches than the writer keeps.
  PreparedStored five_batches_later = replica->PrepareStored({creating(log[17], "u2-ci-1")});
  for (size_t k = 12; k < 17; ++k) ASSERT_TRUE(replica->AppendStored(Slice(log, k, 1)).ok());
  ExpectRefused(replica.get(), std::move(five_batches_later), 18);
  ASSERT_TRUE(replica->AppendStored(Slice(log, 17, log.size())).ok());
  ExpectSameHead(replica->head(), primary->head());
}

TEST(AppendStoredTest, LimitsAreThoseOfAnAppend) {
  TempDir dir;
  auto replica = OpenAt(dir.Sub("replica"));
  EXPECT_EQ(replica->AppendStored({}).status().code(), Status::Code::kInvalid);
  std::vector<StoredEvent> too_many(kMaxStoredEventsPerAppend + 1);
  EXPECT_EQ(replica->AppendStored(std::move(too_many)).status().code(), Status::Code::kInvalid);
  EXPECT_EQ(replica->head().seq, 0u);
}

}  // namespace
}  // namespace okr
