// Scenarios of the event store: append, read, stream, conflict, idempotent
// retry, dense seqs, reopen, recordedAt monotonicity, tamper detection.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "eventstore/event_store.h"
#include "eventstore/format.h"
#include "tests/test_support.h"

namespace okr {
namespace {

using testing::CheckInDraft;
using testing::OneEvent;
using testing::TempDir;
using testing::UnitCreatedDraft;

class EventStoreTest : public ::testing::Test {
 protected:
  void Open(OpenOptions options = {}) {
    store_.reset();
    auto opened = EventStore::Open(dir_.path(), options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened.value());
  }
  void SetUp() override { Open(); }

  Result<AppendResult> CreateUnit(const std::string& id, std::string parent = "") {
    return store_->Append(OneEvent(UnitCreatedDraft("admin", id, "Unit " + id, parent)));
  }
  int check_ins_ = 0;
  Result<AppendResult> CheckIn(const std::string& kr, double value,
                               std::optional<uint64_t> expected = std::nullopt,
                               std::string key = "") {
    // Every check-in creates an id, and ids are never reused.
    AppendRequest request =
        OneEvent(CheckInDraft("alice", kr, kr + "-ci-" + std::to_string(++check_ins_), value));
    if (expected) request.expected.push_back({kr, *expected});
    request.idempotency_key = key;
    request.fingerprint = Sha256(std::to_string(value));
    return store_->Append(std::move(request));
  }
  std::shared_ptr<const DecodedEvent> EventAt(uint64_t seq) {
    auto events = store_->Read(seq - 1, 1);
    EXPECT_TRUE(events.ok());
    EXPECT_EQ(events->size(), 1u);
    auto decoded = DecodedEvent::Decode(events->at(0).bytes);
    EXPECT_TRUE(decoded.ok()) << decoded.status().ToString();
    return *decoded;
  }

  using Families = std::map<std::string, rocksdb::ColumnFamilyHandle*>;
  // Direct access to the RocksDB files, bypassing the store, as a tamperer
  // would: the store is closed, `fn` gets every column family by name.
  void WithRawFamilies(const std::function<void(rocksdb::DB*, const Families&)>& fn) {
    store_.reset();
    rocksdb::Options options;
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(options, dir_.path(), &names).ok());
    for (auto& n : names) cfs.push_back({n, rocksdb::ColumnFamilyOptions()});
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.path(), cfs, &handles, &db).ok());
    Families families;
    for (size_t i = 0; i < names.size(); ++i) families[names[i]] = handles[i];
    fn(db, families);
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  void WithRawDb(const std::function<void(rocksdb::DB*, rocksdb::ColumnFamilyHandle*)>& fn) {
    WithRawFamilies([&](rocksdb::DB* db, const Families& f) { fn(db, f.at(format::kEventsCf)); });
  }

  // Removes the `ids` column family and its meta record, as a log written
  // before they existed lacks them.
  void DropIdIndex() {
    WithRawFamilies([](rocksdb::DB* db, const Families& f) {
      ASSERT_TRUE(db->DropColumnFamily(f.at(format::kIdsCf)).ok());
      ASSERT_TRUE(
          db->Delete(rocksdb::WriteOptions(), f.at(format::kMetaCf), format::kIdsThroughKey).ok());
    });
  }

  VerifyReport ReopenReadOnlyAndVerify() {
    store_.reset();
    OpenOptions options;
    options.read_only = true;
    auto opened = EventStore::Open(dir_.path(), options);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return (*opened)->Verify();
  }

  TempDir dir_;
  std::unique_ptr<EventStore> store_;
};

TEST_F(EventStoreTest, EmptyLogHasZeroHead) {
  EXPECT_EQ(store_->head().seq, 0u);
  EXPECT_EQ(store_->head().hash, kZeroHash);
  VerifyReport report = store_->Verify();
  EXPECT_TRUE(report.ok);
  EXPECT_EQ(report.events, 0u);
}

TEST_F(EventStoreTest, AppendAssignsDenseSeqsAndVersionsAndChainsHashes) {
  ASSERT_TRUE(CreateUnit("acme").ok());
  auto r2 = CreateUnit("hr", "acme");
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->first_seq, 2u);
  auto r3 = CheckIn("kr-1", 3);
  auto r4 = CheckIn("kr-1", 4);
  ASSERT_TRUE(r4.ok());
  EXPECT_EQ(r3->first_seq, 3u);
  EXPECT_EQ(r4->first_seq, 4u);
  EXPECT_EQ(store_->head().seq, 4u);

  auto first = EventAt(1);
  EXPECT_EQ(first->event().getSeq(), 1u);
  EXPECT_EQ(first->event().getVersion(), 1u);
  EXPECT_EQ(std::string(first->event().getActor().cStr()), "admin");
  EXPECT_EQ(first->event().getPrevHash().size(), 32u);
  EXPECT_TRUE(std::all_of(first->event().getPrevHash().begin(), first->event().getPrevHash().end(),
                          [](uint8_t b) { return b == 0; }));
  EXPECT_EQ(EventAt(4)->event().getVersion(), 2u);  // second event of kr-1

  auto all = store_->Read(0, 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  for (size_t i = 1; i < all->size(); ++i) {
    Hash prev = Sha256(all->at(i - 1).bytes);
    auto decoded = DecodedEvent::Decode(all->at(i).bytes);
    ASSERT_TRUE(decoded.ok());
    auto field = (*decoded)->event().getPrevHash();
    EXPECT_TRUE(std::equal(field.begin(), field.end(), prev.begin()));
  }
  EXPECT_EQ(store_->head().hash, Sha256(all->back().bytes));
}

TEST_F(EventStoreTest, ReadPagesThroughTheLog) {
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(CheckIn("kr-" + std::to_string(i % 3), i).ok());
  auto page = store_->Read(10, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 10u);
  EXPECT_EQ(page->front().seq, 11u);
  EXPECT_EQ(page->back().seq, 20u);
  EXPECT_EQ(store_->Read(20, 10)->size(), 5u);
  EXPECT_EQ(store_->Read(25, 10)->size(), 0u);
}

// A bulk reader (GET /v1/events/raw) takes the log a batch at a time
// through one cursor: each batch starts right after the event the last
// one stopped at, nothing is skipped or repeated, nothing past to_seq.
TEST_F(EventStoreTest, ACursorContinuesWhereItsLastBatchStopped) {
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(CheckIn("kr-" + std::to_string(i % 3), i).ok());
  auto all = store_->Read(0, 100);
  ASSERT_TRUE(all.ok());
  std::unique_ptr<EventCursor> cursor = store_->OpenCursor(4, 21);
  std::vector<StoredEvent> taken;
  for (int batch = 0; batch < 10; ++batch) {
    size_t in_batch = 0;
    ASSERT_TRUE(cursor
                    ->Next([&](uint64_t seq, std::string_view bytes) {
                      taken.push_back({seq, std::string(bytes)});
                      return ++in_batch < 4;  // stops on the 4th, which is taken
                    })
                    .ok());
    if (in_batch == 0) break;
  }
  ASSERT_EQ(taken.size(), 18u);
  for (size_t i = 0; i < taken.size(); ++i) {
    EXPECT_EQ(taken[i].seq, 4 + i);
    EXPECT_EQ(taken[i].bytes, (*all)[3 + i].bytes) << "seq " << taken[i].seq;
  }
  // Events appended after the cursor opened lie past its range anyway;
  // an exhausted cursor keeps answering nothing.
  ASSERT_TRUE(CheckIn("kr-0", 99).ok());
  EXPECT_TRUE(cursor
                  ->Next([](uint64_t, std::string_view) {
                    ADD_FAILURE() << "read past to_seq";
                    return true;
                  })
                  .ok());
}

TEST_F(EventStoreTest, StreamHoldsOneEntitysEventsInVersionOrder) {
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(CheckIn(i % 3 == 0 ? "kr-a" : "kr-b", i).ok());
  auto stream = store_->ReadStream("kr-a");
  ASSERT_TRUE(stream.ok());
  ASSERT_EQ(stream->size(), 3u);
  std::vector<uint64_t> seqs;
  for (auto& e : *stream) seqs.push_back(e.seq);
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 4, 7}));
  EXPECT_EQ(*store_->Version("kr-a"), 3u);
  EXPECT_EQ(*store_->Version("kr-b"), 6u);
  EXPECT_EQ(*store_->Version("kr"), 0u);  // a prefix of other ids is not them
  auto tail = store_->ReadStream("kr-b", 4);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->size(), 2u);
}

TEST_F(EventStoreTest, ExpectedVersionMismatchWritesNothing) {
  ASSERT_TRUE(CheckIn("kr-1", 1, 0).ok());
  ASSERT_TRUE(CheckIn("kr-1", 2, 1).ok());
  Head before = store_->head();
  auto stale = CheckIn("kr-1", 3, 1);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), Status::Code::kVersionMismatch);
  EXPECT_EQ(store_->head().seq, before.seq);
  EXPECT_EQ(store_->head().hash, before.hash);
  auto created_twice = store_->Append([&] {
    AppendRequest r = OneEvent(UnitCreatedDraft("admin", "kr-1", "again"));
    r.expected.push_back({"kr-1", 0});
    return r;
  }());
  EXPECT_EQ(created_twice.status().code(), Status::Code::kVersionMismatch);
  EXPECT_EQ(store_->head().seq, before.seq);
}

// SPEC §6: ids are unique across every kind and never reused, and the
// writer — not the fold — refuses a second use, atomically with the append.
TEST_F(EventStoreTest, AnIdIsCreatedOnceAcrossEveryKind) {
  ASSERT_TRUE(CreateUnit("x").ok());
  Head before = store_->head();
  // A check-in naming an id a unit holds, on any key result.
  auto check_in = store_->Append(OneEvent(CheckInDraft("alice", "kr-1", "x", 1)));
  EXPECT_EQ(check_in.status().code(), Status::Code::kVersionMismatch)
      << check_in.status().ToString();
  EXPECT_EQ(check_in.status().field(), "id");
  // A unit created again, without any expected version.
  EXPECT_EQ(CreateUnit("x").status().code(), Status::Code::kVersionMismatch);
  EXPECT_EQ(store_->head().seq, before.seq);
  EXPECT_EQ(store_->head().hash, before.hash);

  ASSERT_TRUE(store_->Append(OneEvent(CheckInDraft("alice", "kr-1", "ci-7", 1))).ok());
  // The same check-in id on another key result: the race that once
  // stored an id twice.
  auto again = store_->Append(OneEvent(CheckInDraft("bob", "kr-2", "ci-7", 2)));
  EXPECT_EQ(again.status().code(), Status::Code::kVersionMismatch);
  // Twice within one append.
  AppendRequest twice;
  twice.events.push_back(CheckInDraft("alice", "kr-1", "ci-8", 1));
  twice.events.push_back(CheckInDraft("alice", "kr-2", "ci-8", 1));
  EXPECT_EQ(store_->Append(std::move(twice)).status().code(), Status::Code::kVersionMismatch);
  EXPECT_EQ(store_->head().seq, before.seq + 1);
}

TEST_F(EventStoreTest, RacingCreatesOfOneIdLandOnce) {
  constexpr int kWriters = 16;
  std::vector<std::thread> writers;
  std::atomic<int> landed{0}, refused{0};
  for (int t = 0; t < kWriters; ++t) {
    writers.emplace_back([&, t] {
      auto kr = "kr-" + std::to_string(t);
      auto r = store_->Append(OneEvent(CheckInDraft("alice", kr, "ci-same", t)));
      if (r.ok()) ++landed;
      if (r.status().code() == Status::Code::kVersionMismatch) ++refused;
    });
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(landed.load(), 1);
  EXPECT_EQ(refused.load(), kWriters - 1);
  EXPECT_EQ(store_->head().seq, 1u);
}

TEST_F(EventStoreTest, IdsOfALogWrittenBeforeTheIndexAreIndexedAtOpen) {
  ASSERT_TRUE(CreateUnit("acme").ok());
  ASSERT_TRUE(store_->Append(OneEvent(CheckInDraft("alice", "kr-1", "ci-old", 1))).ok());
  // What a writer from before the `ids` column family leaves: no index.
  DropIdIndex();
  Open();
  EXPECT_EQ(CreateUnit("acme").status().code(), Status::Code::kVersionMismatch);
  EXPECT_EQ(store_->Append(OneEvent(CheckInDraft("bob", "kr-2", "ci-old", 2))).status().code(),
            Status::Code::kVersionMismatch);
  EXPECT_TRUE(CreateUnit("sales").ok());
  EXPECT_EQ(store_->head().seq, 3u);
}

TEST_F(EventStoreTest, MultiEntityAppendIsAllOrNothing) {
  ASSERT_TRUE(CreateUnit("acme").ok());
  AppendRequest request;
  request.events.push_back(UnitCreatedDraft("admin", "hr", "HR", "acme"));
  request.events.push_back(UnitCreatedDraft("admin", "ta", "Talent", "hr"));
  request.expected.push_back({"hr", 0});
  request.expected.push_back({"acme", 7});  // wrong: acme is at 1
  EXPECT_EQ(store_->Append(std::move(request)).status().code(), Status::Code::kVersionMismatch);
  EXPECT_EQ(store_->head().seq, 1u);
  EXPECT_EQ(*store_->Version("hr"), 0u);

  AppendRequest good;
  good.events.push_back(UnitCreatedDraft("admin", "hr", "HR", "acme"));
  good.events.push_back(UnitCreatedDraft("admin", "ta", "Talent", "hr"));
  good.events.push_back(CheckInDraft("admin", "hr", "c1", 1));
  good.expected.push_back({"acme", 1});
  auto r = store_->Append(std::move(good));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first_seq, 2u);
  EXPECT_EQ(r->last_seq, 4u);
  EXPECT_EQ(*store_->Version("hr"), 2u);
  EXPECT_EQ(EventAt(4)->event().getVersion(), 2u);
}

TEST_F(EventStoreTest, IdempotentRetryAnswersTheFirstResultAndWritesNothing) {
  auto first = CheckIn("kr-1", 5, std::nullopt, "alice:key-1");
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->replayed);
  ASSERT_TRUE(CheckIn("kr-2", 1).ok());
  auto retry = CheckIn("kr-1", 5, std::nullopt, "alice:key-1");
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->first_seq, first->first_seq);
  EXPECT_EQ(retry->last_seq, first->last_seq);
  EXPECT_EQ(store_->head().seq, 2u);
  auto other_body = CheckIn("kr-1", 6, std::nullopt, "alice:key-1");
  EXPECT_EQ(other_body.status().code(), Status::Code::kInvalid);
  EXPECT_EQ(other_body.status().field(), "Idempotency-Key");
  EXPECT_EQ(store_->head().seq, 2u);
  EXPECT_EQ(std::string(EventAt(1)->event().getIdempotencyKey().cStr()), "alice:key-1");
  // The record survives a reopen.
  Open();
  auto after_reopen = CheckIn("kr-1", 5, std::nullopt, "alice:key-1");
  ASSERT_TRUE(after_reopen.ok());
  EXPECT_TRUE(after_reopen->replayed);
  EXPECT_EQ(store_->head().seq, 2u);
}

// Idempotency records have a retention (kIdempotencyRetentionUs), measured
// with the store's injected clock.
class IdempotencyRetentionTest : public EventStoreTest {
 protected:
  static constexpr int64_t kStartUs = 1'790'000'000'000'000;  // 2026-09-21
  void SetUp() override { OpenWithClock(); }
  void OpenWithClock() {
    OpenOptions options;
    options.clock_us = [this] { return now_us_.load(); };
    Open(options);
  }
  // Closes the store and counts the records in the `idempotency` column
  // family as they are on disk.
  size_t RecordsOnDisk() {
    size_t n = 0;
    WithRawFamilies([&](rocksdb::DB* db, const Families& f) {
      std::unique_ptr<rocksdb::Iterator> it(
          db->NewIterator(rocksdb::ReadOptions(), f.at(format::kIdempotencyCf)));
      for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    });
    return n;
  }
  // Every stored event's bytes, in order.
  std::vector<std::string> AllEvents() {
    auto events = store_->Read(0, SIZE_MAX);
    EXPECT_TRUE(events.ok());
    std::vector<std::string> out;
    for (auto& e : *events) out.push_back(e.bytes);
    return out;
  }
  std::atomic<int64_t> now_us_{kStartUs};
};

TEST_F(IdempotencyRetentionTest, ARetryWithinTheRetentionReplaysAndAfterItIsANewWrite) {
  auto first = CheckIn("kr-1", 5, std::nullopt, "alice:key-1");
  ASSERT_TRUE(first.ok());
  now_us_ = kStartUs + kIdempotencyRetentionUs - 1;
  auto retry = CheckIn("kr-1", 5, std::nullopt, "alice:key-1");
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->first_seq, first->first_seq);
  EXPECT_EQ(store_->head().seq, 1u);

  now_us_ = kStartUs + kIdempotencyRetentionUs;
  auto found = store_->FindIdempotent("alice:key-1", Sha256(std::to_string(5.0)));
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value()) << "an expired record is not found";
  // Even with another body: the old key is forgotten, not a mismatch.
  auto late = CheckIn("kr-1", 6, std::nullopt, "alice:key-1");
  ASSERT_TRUE(late.ok()) << late.status().ToString();
  EXPECT_FALSE(late->replayed);
  EXPECT_EQ(late->first_seq, 2u);
  EXPECT_EQ(store_->head().seq, 2u);
  // From then on the key answers the new write.
  auto again = CheckIn("kr-1", 6, std::nullopt, "alice:key-1");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(again->first_seq, 2u);
}

TEST_F(IdempotencyRetentionTest, ExpiredRecordsAreDeletedFromDiskAndNoEventIsTouched) {
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(CheckIn("kr-" + std::to_string(i), i, std::nullopt, "k" + std::to_string(i)).ok());
  now_us_ = kStartUs + 3'600'000'000;  // an hour later: one more keyed append
  ASSERT_TRUE(CheckIn("kr-late", 1, std::nullopt, "k-late").ok());
  EXPECT_EQ(RecordsOnDisk(), 21u);
  OpenWithClock();

  now_us_ = kStartUs + kIdempotencyRetentionUs + 60'000'000;  // the first 20 expired a minute ago
  std::vector<std::string> before = AllEvents();
  ASSERT_TRUE(CreateUnit("acme").ok());  // the writer prunes after each batch
  std::vector<std::string> after = AllEvents();
  ASSERT_EQ(after.size(), before.size() + 1);
  after.pop_back();
  EXPECT_EQ(after, before) << "the prune changed a stored event";
  EXPECT_EQ(RecordsOnDisk(), 1u) << "only k-late is within the retention";

  OpenWithClock();
  EXPECT_TRUE(store_->Verify().ok);
  auto kept = CheckIn("kr-late", 1, std::nullopt, "k-late");
  ASSERT_TRUE(kept.ok());
  EXPECT_TRUE(kept->replayed);
}

TEST_F(IdempotencyRetentionTest, OnePassWalksAtMostTheLimitAndTheNextCatchesUp) {
  const size_t appends = kMaxEventsPrunedPerPass / kMaxEventsPerAppend + 1;
  for (size_t a = 0; a < appends; ++a) {
    AppendRequest request;
    for (size_t i = 0; i < kMaxEventsPerAppend; ++i) {
      request.events.push_back(CheckInDraft("alice", "kr-" + std::to_string(a),
                                            "ci-" + std::to_string(a) + "-" + std::to_string(i),
                                            double(i)));
    }
    request.idempotency_key = "bulk-" + std::to_string(a);
    ASSERT_TRUE(store_->Append(std::move(request)).ok());
  }
  now_us_ = kStartUs + kIdempotencyRetentionUs;
  ASSERT_TRUE(CreateUnit("acme").ok());
  EXPECT_EQ(RecordsOnDisk(), appends - kMaxEventsPrunedPerPass / kMaxEventsPerAppend);
  OpenWithClock();  // the writer prunes when it starts, too
  store_.reset();
  EXPECT_EQ(RecordsOnDisk(), 0u);
}

TEST_F(EventStoreTest, ConcurrentIdempotentRetriesApplyOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> fresh{0}, replayed{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      auto r = CheckIn("kr-1", 5, std::nullopt, "k");
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      (r->replayed ? replayed : fresh)++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(fresh.load(), 1);
  EXPECT_EQ(replayed.load(), 15);
  EXPECT_EQ(store_->head().seq, 1u);
}

TEST_F(EventStoreTest, ConcurrentAppendersGetDenseSeqsAndOneVersionEach) {
  constexpr int kThreads = 16, kPerThread = 50;
  std::vector<std::thread> threads;
  std::atomic<int> conflicts{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Everyone races on kr-shared with the version they last saw.
        uint64_t seen = *store_->Version("kr-shared");
        auto r = CheckIn("kr-shared", t * 1000 + i, seen);
        if (!r.ok()) {
          ASSERT_EQ(r.status().code(), Status::Code::kVersionMismatch);
          conflicts++;
        }
        ASSERT_TRUE(CheckIn("kr-" + std::to_string(t), i).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  uint64_t shared_version = *store_->Version("kr-shared");
  EXPECT_EQ(shared_version + conflicts.load(), uint64_t{kThreads * kPerThread});
  EXPECT_EQ(store_->head().seq, kThreads * kPerThread + shared_version);
  VerifyReport report = store_->Verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.events, store_->head().seq);
}

TEST_F(EventStoreTest, ReopenRecoversHeadAndContinuesTheChain) {
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(CheckIn("kr-1", i).ok());
  Head before = store_->head();
  Open();
  EXPECT_EQ(store_->head().seq, before.seq);
  EXPECT_EQ(store_->head().hash, before.hash);
  EXPECT_EQ(store_->head().recorded_at_us, before.recorded_at_us);
  auto r = CheckIn("kr-1", 11, 10);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first_seq, 11u);
  EXPECT_TRUE(store_->Verify().ok);
}

TEST_F(EventStoreTest, RecordedAtNeverDecreasesWhenTheClockStepsBack) {
  std::atomic<int64_t> now{2'000'000'000'000'000};
  OpenOptions options;
  options.clock_us = [&] { return now.load(); };
  Open(options);
  ASSERT_TRUE(CheckIn("kr-1", 1).ok());
  now -= 3'600'000'000;  // an hour back
  ASSERT_TRUE(CheckIn("kr-1", 2).ok());
  EXPECT_EQ(EventAt(2)->event().getRecordedAt(), EventAt(1)->event().getRecordedAt());
  now += 7'200'000'000;
  ASSERT_TRUE(CheckIn("kr-1", 3).ok());
  EXPECT_GT(EventAt(3)->event().getRecordedAt(), EventAt(2)->event().getRecordedAt());
  // Also across a reopen.
  now -= 36'000'000'000;
  Open(options);
  ASSERT_TRUE(CheckIn("kr-1", 4).ok());
  EXPECT_EQ(EventAt(4)->event().getRecordedAt(), EventAt(3)->event().getRecordedAt());
}

TEST_F(EventStoreTest, WaitForEventsWakesOnAppend) {
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(CheckIn("kr-1", 1).ok());
  });
  EXPECT_EQ(store_->WaitForEvents(0, std::chrono::seconds(10)), 1u);
  writer.join();
  EXPECT_EQ(store_->WaitForEvents(1, std::chrono::milliseconds(20)), 1u);  // times out
}

TEST_F(EventStoreTest, RefusesEmptyAndOversizeAppends) {
  EXPECT_EQ(store_->Append(AppendRequest{}).status().code(), Status::Code::kInvalid);
  AppendRequest big;
  for (size_t i = 0; i <= kMaxEventsPerAppend; ++i)
    big.events.push_back(CheckInDraft("a", "kr", "c", 1));
  EXPECT_EQ(store_->Append(std::move(big)).status().code(), Status::Code::kInvalid);
  AppendRequest long_key = OneEvent(CheckInDraft("a", "kr", "c", 1));
  long_key.idempotency_key.assign(kMaxIdempotencyKeyBytes + 1, 'k');
  EXPECT_EQ(store_->Append(std::move(long_key)).status().code(), Status::Code::kInvalid);
  EXPECT_EQ(store_->head().seq, 0u);
}

TEST_F(EventStoreTest, ReadOnlyStoreRefusesAppends) {
  ASSERT_TRUE(CheckIn("kr-1", 1).ok());
  store_.reset();
  OpenOptions options;
  options.read_only = true;
  auto ro = EventStore::Open(dir_.path(), options);
  ASSERT_TRUE(ro.ok());
  EXPECT_EQ((*ro)->head().seq, 1u);
  EXPECT_EQ((*ro)->Append(OneEvent(CheckInDraft("a", "kr-1", "c", 1))).status().code(),
            Status::Code::kInvalid);
}

TEST_F(EventStoreTest, SnapshotsAreFoundAtOrBeforeASeqAndCanBeDeleted) {
  using Parts = std::vector<std::string>;
  EXPECT_EQ(store_->NewestSnapshotSeq(), 0u);
  ASSERT_TRUE(store_->PutSnapshot(100, Parts{"s100"}).ok());
  ASSERT_TRUE(store_->PutSnapshot(200, Parts{"s200"}).ok());
  EXPECT_EQ(store_->SnapshotAtOrBefore(50).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(store_->SnapshotAtOrBefore(150)->parts, Parts{"s100"});
  EXPECT_EQ(store_->SnapshotAtOrBefore(200)->seq, 200u);
  EXPECT_EQ(store_->NewestSnapshotSeq(), 200u);
  Open();  // remembered across a restart
  EXPECT_EQ(store_->NewestSnapshotSeq(), 200u);
  EXPECT_EQ(store_->SnapshotAtOrBefore(250)->parts, Parts{"s200"});
  ASSERT_TRUE(store_->DeleteSnapshots().ok());
  EXPECT_EQ(store_->SnapshotAtOrBefore(1000).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(store_->NewestSnapshotSeq(), 0u);
}

// A snapshot's parts come back in order and only its own; the newest two
// snapshots are kept; one stored again under its seq replaces every part.
TEST_F(EventStoreTest, ASnapshotsPartsComeBackInOrderAndTheNewestTwoAreKept) {
  using Parts = std::vector<std::string>;
  ASSERT_TRUE(store_->PutSnapshot(100, Parts{"a", "b", "c"}).ok());
  ASSERT_TRUE(store_->PutSnapshot(200, Parts{"d"}).ok());
  EXPECT_EQ(store_->SnapshotAtOrBefore(199)->parts, (Parts{"a", "b", "c"}));
  ASSERT_TRUE(store_->PutSnapshot(300, Parts{"e", "f"}).ok());
  EXPECT_EQ(store_->SnapshotAtOrBefore(199).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(store_->SnapshotAtOrBefore(299)->parts, Parts{"d"});
  EXPECT_EQ(store_->SnapshotAtOrBefore(1000)->parts, (Parts{"e", "f"}));
  ASSERT_TRUE(store_->PutSnapshot(300, Parts{"g"}).ok());
  EXPECT_EQ(store_->SnapshotAtOrBefore(1000)->parts, Parts{"g"});
  EXPECT_EQ(store_->SnapshotAtOrBefore(299)->parts, Parts{"d"});
  // A reader may stop after any part.
  ASSERT_TRUE(store_->PutSnapshot(400, Parts{"h", "i"}).ok());
  Parts read;
  auto seq = store_->ReadSnapshot(UINT64_MAX, [&read](std::string_view part) {
    read.emplace_back(part);
    return false;
  });
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 400u);
  EXPECT_EQ(read, Parts{"h"});
  EXPECT_EQ(store_->PutSnapshot(500, Parts{}).code(), Status::Code::kInvalid);
}

// A snapshot of many parts is seen whole or not at all by a reader that
// reads while it is stored, and an older one stays readable meanwhile.
TEST_F(EventStoreTest, AReaderSeesASnapshotWholeOrNotAtAll) {
  using Parts = std::vector<std::string>;
  ASSERT_TRUE(store_->PutSnapshot(100, Parts{"old"}).ok());
  Parts big;
  for (int i = 0; i < 4000; ++i) big.push_back(std::string(1000, static_cast<char>('a' + i % 26)));
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::thread reader([&] {
    while (!done) {
      auto read = store_->SnapshotAtOrBefore(1000);
      if (!read.ok()) {
        ++torn;
      } else if (read->seq == 200 ? read->parts != big : read->parts != Parts{"old"}) {
        ++torn;
      }
    }
  });
  // Stored, then stored again under its seq.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store_->PutSnapshot(200, big, 3).ok());
  done = true;
  reader.join();
  EXPECT_EQ(torn, 0);
  EXPECT_EQ(store_->SnapshotAtOrBefore(1000)->parts, big);
  EXPECT_EQ(store_->SnapshotAtOrBefore(199)->parts, Parts{"old"});
}

// A crash between writing a snapshot's table file and ingesting it leaves
// the file beside the log: the next open removes it, and nothing is read
// from it.
TEST_F(EventStoreTest, ASnapshotFileACrashLeftIsRemovedAtOpen) {
  using Parts = std::vector<std::string>;
  ASSERT_TRUE(store_->PutSnapshot(100, Parts{"s100"}).ok());
  const std::string left = dir_.path() + "/snapshot-200-0.sst.pending";
  { std::ofstream(left) << "half a table file"; }
  Open();
  EXPECT_FALSE(std::filesystem::exists(left));
  EXPECT_EQ(store_->NewestSnapshotSeq(), 100u);
  EXPECT_EQ(store_->SnapshotAtOrBefore(1000)->parts, Parts{"s100"});
  ASSERT_TRUE(store_->PutSnapshot(200, Parts{"s200"}).ok());
  EXPECT_EQ(store_->SnapshotAtOrBefore(1000)->parts, Parts{"s200"});
}

// --- Tampering: verify names the first bad seq, a writer refuses to open. ---

class TamperTest : public EventStoreTest {
 protected:
  // The log's events, read and written by seq behind the store's back.
  struct RawEvents {
    rocksdb::DB* db;
    rocksdb::ColumnFamilyHandle* events;

    std::string Get(uint64_t seq) const {
      std::string value;
      EXPECT_TRUE(db->Get({}, events, format::SeqKey(seq), &value).ok()) << "seq " << seq;
      return value;
    }
    void Put(uint64_t seq, const std::string& value) const {
      EXPECT_TRUE(db->Put({}, events, format::SeqKey(seq), value).ok()) << "seq " << seq;
    }
    void Delete(uint64_t seq) const {
      EXPECT_TRUE(db->Delete({}, events, format::SeqKey(seq)).ok()) << "seq " << seq;
    }
  };
  void Tamper(const std::function<void(const RawEvents&)>& fn) {
    WithRawDb([&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* events) { fn({db, events}); });
  }
  void SetUp() override {
    EventStoreTest::SetUp();
    for (int i = 1; i <= 10; ++i) ASSERT_TRUE(CheckIn("kr-" + std::to_string(i % 2), i).ok());
  }
  void ExpectBrokenAt(uint64_t seq) {
    VerifyReport report = ReopenReadOnlyAndVerify();
    EXPECT_FALSE(report.ok);
    EXPECT_EQ(report.first_bad_seq, seq) << report.problem;
    EXPECT_EQ(report.events, seq - 1);
    auto writer = EventStore::Open(dir_.path());
    ASSERT_FALSE(writer.ok());
    EXPECT_EQ(writer.status().code(), Status::Code::kCorruption);
    EXPECT_NE(writer.status().message().find("seq " + std::to_string(seq)), std::string::npos)
        << writer.status().message();
  }
};

TEST_F(TamperTest, OneChangedByteIsFound) {
  Tamper([](const RawEvents& raw) {
    std::string value = raw.Get(6);
    size_t note = value.find("weekly check-in");
    ASSERT_NE(note, std::string::npos);
    value[note + 2] ^= 0x01;  // "weekly" becomes "wdekly": still decodes
    raw.Put(6, value);
  });
  // Seq 6 itself still decodes; its successor's prevHash no longer matches.
  ExpectBrokenAt(7);
}

TEST_F(TamperTest, ChangedValueNumberIsFound) {
  Tamper([](const RawEvents& raw) {
    const std::string value = raw.Get(3);
    auto decoded = DecodedEvent::Decode(value);
    ASSERT_TRUE(decoded.ok());
    capnp::MallocMessageBuilder copy;
    copy.setRoot((*decoded)->event());
    copy.getRoot<schema::Event>().getCheckInRecorded().setValue(99);
    raw.Put(3, EncodeMessage(copy));
  });
  ExpectBrokenAt(4);
}

TEST_F(TamperTest, DeletedEventIsFound) {
  Tamper([](const RawEvents& raw) { raw.Delete(4); });
  ExpectBrokenAt(4);
}

TEST_F(TamperTest, SwappedEventsAreFound) {
  Tamper([](const RawEvents& raw) {
    const std::string fifth = raw.Get(5), eighth = raw.Get(8);
    raw.Put(5, eighth);
    raw.Put(8, fifth);
  });
  ExpectBrokenAt(5);
}

TEST_F(TamperTest, TruncatedTailIsFound) {
  Tamper([](const RawEvents& raw) { raw.Delete(10); });
  ExpectBrokenAt(10);
}

TEST_F(TamperTest, UndecodableValueIsFound) {
  Tamper([](const RawEvents& raw) { raw.Put(2, std::string(24, '\xff')); });
  ExpectBrokenAt(2);
}

// --- The chain checker Verify and okrctl share. ---

TEST_F(EventStoreTest, ChainCheckerAgreesWithVerify) {
  for (int i = 1; i <= 6; ++i) ASSERT_TRUE(CheckIn("kr-" + std::to_string(i % 2), i).ok());
  auto events = store_->Read(0, 100);
  ASSERT_TRUE(events.ok());
  ChainChecker chain;
  for (const auto& e : *events) ASSERT_TRUE(chain.Add(e.seq, e.bytes)) << chain.report().problem;
  VerifyReport verified = store_->Verify();
  ASSERT_TRUE(verified.ok) << verified.problem;
  EXPECT_TRUE(chain.report().ok);
  EXPECT_EQ(chain.report().events, verified.events);
  EXPECT_EQ(chain.report().head_hash, verified.head_hash);
  EXPECT_EQ(chain.report().head_hash, store_->head().hash);
}

// The checker's table of versions grows past its first size and keeps ids
// longer than a slot holds apart from short ones: every entity's second
// event must follow its own first, none lost or taken for another.
TEST_F(EventStoreTest, ChainCheckerFollowsManyEntitiesAndLongIds) {
  constexpr int kEntities = 1500;
  for (int round = 1; round <= 2; ++round) {
    for (int first = 0; first < kEntities; first += static_cast<int>(kMaxEventsPerAppend)) {
      AppendRequest request;
      for (int i = first; i < std::min(kEntities, first + static_cast<int>(kMaxEventsPerAppend));
           ++i) {
        std::string kr =
            (i % 3 == 0 ? "a-key-result-id-longer-than-a-slot-" : "kr-") + std::to_string(i);
        request.events.push_back(
            CheckInDraft("alice", kr, kr + "-ci-" + std::to_string(round), round));
      }
      ASSERT_TRUE(store_->Append(std::move(request)).ok());
    }
  }
  auto events = store_->Read(0, 2 * kEntities);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u * kEntities);
  ChainChecker chain;
  for (const auto& e : *events) ASSERT_TRUE(chain.Add(e.seq, e.bytes)) << chain.report().problem;
  EXPECT_EQ(chain.report().events, 2u * kEntities);
  EXPECT_EQ(chain.report().head_hash, store_->head().hash);
  EXPECT_EQ(chain.entities(), static_cast<size_t>(kEntities));
  // Sized for its entities before the first event, or again partway (as a
  // check sized from an earlier one's count is), it keeps every version.
  for (size_t reserve_before : {size_t{0}, size_t{700}}) {
    ChainChecker sized;
    for (size_t i = 0; i < events->size(); ++i) {
      if (i == reserve_before) sized.Reserve(4 * kEntities);
      ASSERT_TRUE(sized.Add(events->at(i).seq, events->at(i).bytes)) << sized.report().problem;
    }
    EXPECT_EQ(sized.entities(), static_cast<size_t>(kEntities));
    EXPECT_EQ(sized.report().head_hash, store_->head().hash);
  }
  // The store's second whole check is sized from its first.
  for (int check = 1; check <= 2; ++check) {
    VerifyReport verified = store_->Verify();
    EXPECT_TRUE(verified.ok) << verified.problem;
    EXPECT_EQ(verified.events, 2u * kEntities);
  }
}

// The rules are one; only the words differ, so okrctl's reports about what
// okrd served read as they did before the checkers were merged.
TEST_F(EventStoreTest, ChainCheckerNamesWhereTheValuesCameFrom) {
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(CheckIn("kr-1", i).ok());
  auto events = store_->Read(0, 100);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 4u);
  const std::string& first = events->at(0).bytes;
  struct Case {
    ChainSource source;
    const char* gap;
    const char* misplaced;
  };
  for (const Case& c : {Case{ChainSource::kStored, "event missing (next stored seq is 4)",
                             "stored under seq 2 but says seq 3"},
                        Case{ChainSource::kServed, "event missing (the next one served is seq 4)",
                             "served as seq 2 but says seq 3"}}) {
    ChainChecker gap(c.source);
    EXPECT_TRUE(gap.Add(1, first));
    EXPECT_TRUE(gap.Add(2, events->at(1).bytes));
    EXPECT_FALSE(gap.Add(4, events->at(3).bytes));
    EXPECT_FALSE(gap.Add(3, events->at(2).bytes)) << "a broken chain stays broken";
    EXPECT_EQ(gap.report().first_bad_seq, 3u);
    EXPECT_EQ(gap.report().events, 2u);
    EXPECT_EQ(gap.report().problem, c.gap);

    ChainChecker misplaced(c.source);
    EXPECT_TRUE(misplaced.Add(1, first));
    EXPECT_FALSE(misplaced.Add(2, events->at(2).bytes));
    EXPECT_EQ(misplaced.report().first_bad_seq, 2u);
    EXPECT_EQ(misplaced.report().problem, c.misplaced);
  }
  ChainChecker repeated;
  EXPECT_TRUE(repeated.Add(1, first));
  EXPECT_FALSE(repeated.Add(1, first));
  EXPECT_EQ(repeated.report().problem, "seq out of order");
}

// --- A chain check resumed after a trusted seq (okrctl audit, start-up). ---

class ChainResumeTest : public EventStoreTest {
 protected:
  void SetUp() override {
    EventStoreTest::SetUp();
    for (int i = 1; i <= 6; ++i) ASSERT_TRUE(CheckIn("kr-" + std::to_string(i % 2), i).ok());
    auto events = store_->Read(0, 100);
    ASSERT_TRUE(events.ok());
    ASSERT_EQ(events->size(), 6u);
    events_ = std::move(*events);
  }
  // What an auditor who checked events 1..3 saved of them.
  ChainResume AfterThird() {
    return {3, Sha256(events_[2].bytes), EventAt(3)->event().getRecordedAt()};
  }
  // Event `seq` re-encoded with another version (its prevHash unchanged).
  std::string WithVersion(uint64_t seq, uint64_t version) {
    capnp::MallocMessageBuilder copy;
    copy.setRoot(EventAt(seq)->event());
    copy.getRoot<schema::Event>().setVersion(version);
    return EncodeMessage(copy);
  }
  std::vector<StoredEvent> events_;
};

TEST_F(ChainResumeTest, AcceptsTheTrueContinuation) {
  ChainChecker chain(ChainSource::kServed, AfterThird());
  EXPECT_EQ(chain.next_seq(), 4u);
  // kr-1 and kr-0 were last seen before the resumed seq: their versions
  // 2 and 3 are taken as they come, then must be dense again.
  for (uint64_t seq = 4; seq <= 6; ++seq) {
    ASSERT_TRUE(chain.Add(seq, events_[seq - 1].bytes)) << chain.report().problem;
  }
  EXPECT_TRUE(chain.report().ok);
  EXPECT_EQ(chain.report().events, 6u);
  EXPECT_EQ(chain.report().head_hash, store_->head().hash);
}

TEST_F(ChainResumeTest, RejectsAnotherPrevHash) {
  ChainResume resume = AfterThird();
  resume.prev_hash = Sha256(events_[1].bytes);  // trusts seq 2's hash as seq 3's
  ChainChecker chain(ChainSource::kServed, resume);
  EXPECT_FALSE(chain.Add(4, events_[3].bytes));
  EXPECT_EQ(chain.report().first_bad_seq, 4u);
  EXPECT_EQ(chain.report().events, 3u);
  EXPECT_EQ(chain.report().problem, "prevHash does not match the previous event");
}

TEST_F(ChainResumeTest, RejectsTimeGoingBack) {
  ChainResume resume = AfterThird();
  resume.recorded_at_us = EventAt(4)->event().getRecordedAt() + 1;
  ChainChecker chain(ChainSource::kServed, resume);
  EXPECT_FALSE(chain.Add(4, events_[3].bytes));
  EXPECT_EQ(chain.report().first_bad_seq, 4u);
  EXPECT_EQ(chain.report().problem, "recordedAt goes back in time");
}

TEST_F(ChainResumeTest, RejectsVersionZero) {
  // An entity first seen after the resumed seq may start at any version
  // but 0, which no event carries.
  ChainChecker chain(ChainSource::kServed, AfterThird());
  EXPECT_FALSE(chain.Add(4, WithVersion(4, 0)));
  EXPECT_EQ(chain.report().first_bad_seq, 4u);
  EXPECT_EQ(chain.report().problem, "entity version 0");
}

TEST_F(ChainResumeTest, VersionsAreDenseOnceSeen) {
  // kr-0 is first seen at seq 4 (version 2); its next event must be 3.
  ChainChecker chain(ChainSource::kServed, AfterThird());
  EXPECT_TRUE(chain.Add(4, events_[3].bytes));
  EXPECT_TRUE(chain.Add(5, events_[4].bytes));
  EXPECT_FALSE(chain.Add(6, WithVersion(6, 4)));
  EXPECT_EQ(chain.report().first_bad_seq, 6u);
  EXPECT_EQ(chain.report().problem, "entity version 4 follows 2");
}

// --- Hostile bytes: the decoder rejects or decodes, never crashes. ---

TEST(DecoderTest, TenThousandRandomByteStringsNeverCrash) {
  std::mt19937_64 rng(20261125);
  // Start from a real event so many mutations get past the framing check.
  capnp::MallocMessageBuilder message;
  {
    EventDraft draft = CheckInDraft("alice", "kr-1", "ci-1", 3.5);
    message.setRoot(draft.event().asReader());
  }
  std::string valid = EncodeMessage(message);
  int decoded = 0, rejected = 0;
  for (int i = 0; i < 10000; ++i) {
    std::string bytes;
    if (i % 2 == 0) {
      bytes = valid;
      int flips = 1 + static_cast<int>(rng() % 8);
      for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    } else {
      bytes.resize(rng() % 512);
      for (auto& c : bytes) c = static_cast<char>(rng());
    }
    auto result = DecodedEvent::Decode(bytes);
    if (result.ok()) {
      ++decoded;
      // Whatever decodes is safe to read in full.
      auto ev = (*result)->event();
      (void)ev.getActor().size();
      (void)EventTypeName(ev.which());
    } else {
      ++rejected;
      EXPECT_EQ(result.status().code(), Status::Code::kCorruption);
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(decoded, 0);
}

}  // namespace
}  // namespace okr
