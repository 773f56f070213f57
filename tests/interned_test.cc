// The compact fold's parts: the process-wide text table (Interned), the
// projection's id indexes (IdIndex for entities, CheckInIndex for check-ins
// by handle) and its check-in arena. Equal texts share a handle, a handle's
// text survives whatever made it, a lookup never grows the table, readers
// need no lock while a writer interns, each index finds every id it holds
// and no other, through its growth, and each key result reads its own
// check-ins from the arena, whatever else it holds, in a copy as well.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "projections/domain/id_index.h"
#include "projections/domain/interned.h"
#include "projections/domain/projection.h"

namespace okr {
namespace {

TEST(InternedTest, EqualTextsShareOneHandleAndReadBack) {
  Interned a = Interned::Of("alice@example.com");
  Interned b = Interned::Of(std::string("alice@") + "example.com");
  Interned c = Interned::Of("bob@example.com");
  EXPECT_EQ(a.handle(), b.handle());
  EXPECT_NE(a.handle(), c.handle());
  EXPECT_EQ(a.view(), "alice@example.com");
  EXPECT_EQ(c.str(), "bob@example.com");
  EXPECT_TRUE(a == std::string_view("alice@example.com"));
  EXPECT_FALSE(a == c);
  // NUL-terminated, for Cap'n Proto's text setters.
  EXPECT_EQ(std::strlen(a.c_str()), a.size());
}

TEST(InternedTest, TheEmptyTextIsTheDefaultHandle) {
  Interned none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.view(), "");
  EXPECT_STREQ(none.c_str(), "");
  EXPECT_EQ(Interned::Of("").handle(), none.handle());
  EXPECT_FALSE(Interned::Of("x").empty());
}

TEST(InternedTest, OfSaysWhetherItAddedTheText) {
  bool added = false;
  const Interned first = Interned::Of("said-to-be-new", &added);
  EXPECT_TRUE(added);
  const Interned again = Interned::Of("said-to-be-new", &added);
  EXPECT_FALSE(added);
  EXPECT_EQ(first.handle(), again.handle());
  added = true;
  EXPECT_TRUE(Interned::Of("", &added).empty());
  EXPECT_FALSE(added);  // the empty text is always there
}

TEST(InternedTest, FindInternsNothing) {
  const std::string hostile(10'000, 'z');  // an id a client made up
  const size_t before = Interned::Count();
  EXPECT_FALSE(Interned::Find(hostile).has_value());
  EXPECT_FALSE(Interned::Find(hostile + "%0A").has_value());
  EXPECT_EQ(Interned::Count(), before);
  Interned made = Interned::Of("find-me-later");
  ASSERT_TRUE(Interned::Find("find-me-later").has_value());
  EXPECT_EQ(Interned::Find("find-me-later")->handle(), made.handle());
}

TEST(InternedTest, TextsOfEveryLengthSurviveGrowth) {
  std::vector<std::pair<Interned, std::string>> made;
  for (int i = 0; i < 200'000; ++i) {
    std::string text = "ci-" + std::to_string(i) + std::string(i % 7 == 0 ? 300 : 0, 'n');
    made.emplace_back(Interned::Of(text), text);
  }
  const std::string big(600'000, 'b');  // longer than a byte block
  made.emplace_back(Interned::Of(big), big);
  for (const auto& [handle, text] : made) {
    ASSERT_EQ(handle.view(), text);
    ASSERT_EQ(Interned::Of(text).handle(), handle.handle());
  }
}

TEST(InternedTest, ReadersNeedNoLockWhileAWriterInterns) {
  std::vector<Interned> early;
  for (int i = 0; i < 1000; ++i) early.push_back(Interned::Of("early-" + std::to_string(i)));
  std::atomic<bool> done{false};
  std::atomic<int> wrong{0};
  std::thread reader([&] {
    while (!done) {
      for (int i = 0; i < 1000; ++i) {
        if (early[i].view() != "early-" + std::to_string(i)) ++wrong;
      }
    }
  });
  for (int i = 0; i < 300'000; ++i) (void)Interned::Of("late-" + std::to_string(i));
  done = true;
  reader.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(IdIndexTest, FindsEveryIdItHoldsAndNoOther) {
  IdIndex index;
  std::vector<int> entities(50'000);
  EXPECT_EQ(index.Find("anything"), nullptr);
  for (int i = 0; i < 50'000; ++i) {
    auto kind = i % 2 ? EntityKind::kCheckIn : EntityKind::kKeyResult;
    index.Insert(Interned::Of("id-" + std::to_string(i)), kind, &entities[i]);
  }
  EXPECT_EQ(index.size(), 50'000u);
  for (int i = 0; i < 50'000; ++i) {
    const IdIndex::Slot* slot = index.Find("id-" + std::to_string(i));
    ASSERT_NE(slot, nullptr) << i;
    EXPECT_EQ(slot->entity, &entities[i]);
    EXPECT_EQ(slot->kind(), i % 2 ? EntityKind::kCheckIn : EntityKind::kKeyResult);
  }
  EXPECT_EQ(index.Find("id-50000"), nullptr);
  EXPECT_EQ(index.Find(""), nullptr);
  EXPECT_EQ(index.Find(std::string(100'000, 'x')), nullptr);
  index.clear();
  EXPECT_EQ(index.Find("id-1"), nullptr);
  EXPECT_EQ(index.size(), 0u);
}

TEST(CheckInIndexTest, FindsEveryCheckInItHoldsAndNoOther) {
  CheckInIndex index;
  int key_results[3];
  std::vector<Interned> ids;
  // Enough handles to span several chunks, with texts of other kinds
  // interned in between (a check-in's note), which the index never holds.
  for (int i = 0; i < 100'000; ++i) {
    ids.push_back(Interned::Of("index-ci-" + std::to_string(i)));
    (void)Interned::Of("index-note-" + std::to_string(i));
  }
  const Interned other = Interned::Of("index-note-7");
  EXPECT_EQ(index.Find(ids[0]), nullptr);
  for (size_t i = 0; i < ids.size(); ++i) index.Insert(ids[i], &key_results[i % 3]);
  EXPECT_EQ(index.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(index.Find(ids[i]), &key_results[i % 3]) << i;
  EXPECT_EQ(index.Find(other), nullptr);
  EXPECT_EQ(index.Find(Interned()), nullptr);
  CheckInIndex moved = std::move(index);
  EXPECT_EQ(moved.Find(ids[99'999]), &key_results[99'999 % 3]);
  moved.clear();
  EXPECT_EQ(moved.Find(ids[1]), nullptr);
  EXPECT_EQ(moved.size(), 0u);
}

// Check-in `n` of a key result measured at `measured`, folded at `seq`.
CheckIn ArenaCheckIn(uint64_t seq, int64_t measured, int n) {
  CheckIn ci;
  ci.meta.seq = seq;
  ci.measured_at_us = measured;
  ci.value = n;
  ci.id = Interned::Of("arena-ci-" + std::to_string(n));
  return ci;
}

TEST(CheckInArenaTest, KeyResultsReadTheirOwnCheckInsAcrossChunks) {
  CheckInArena arena;
  CheckIns a, b;
  // Interleaved, as a log folds them, over several 16,384-check-in chunks;
  // b's are backfilled now and then (an older measurement, a tie).
  for (int n = 0; n < 50'000; ++n) {
    const auto seq = static_cast<uint64_t>(n) + 1;
    if (n % 3 == 0) {
      a.Append(&arena, ArenaCheckIn(seq, n, n));
    } else {
      const int64_t measured = n % 5 == 0 ? n - 100 : n % 7 == 0 ? b.back().measured_at_us : n;
      b.Append(&arena, ArenaCheckIn(seq, measured, n));
    }
  }
  EXPECT_EQ(arena.size(), 50'000u);
  ASSERT_EQ(a.size(), 16'667u);
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].value, static_cast<double>(3 * i)) << i;
    ASSERT_EQ(a.LatestUpTo(i), i);  // measured in seq order: the newest is the latest
  }
  // The latest by (measured_at, seq), against a scan of the first i + 1.
  size_t latest = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (b[i].measured_at_us >= b[latest].measured_at_us) latest = i;
    ASSERT_EQ(b.LatestUpTo(i), latest) << i;
  }
  size_t walked = 0;
  for (const CheckIn& ci : b) ASSERT_EQ(&ci, &b[walked++]);
  EXPECT_EQ(walked, b.size());
  EXPECT_EQ(b.end() - b.begin(), static_cast<std::ptrdiff_t>(b.size()));
}

TEST(CheckInArenaTest, ACopyReadsItsOwnArenaWhileTheOriginalGrows) {
  auto arena = std::make_unique<CheckInArena>();
  CheckIns original;
  for (int n = 0; n < 20'000; ++n) original.Append(arena.get(), ArenaCheckIn(n + 1, n, n));
  CheckInArena copied_arena(*arena);
  CheckIns copy = original;
  copy.Rebind(&copied_arena);
  EXPECT_TRUE(copy == original);  // by content, wherever stored
  EXPECT_NE(&copy[0], &original[0]);
  original.Append(arena.get(), ArenaCheckIn(20'001, 0, 20'000));  // a backfill
  arena.reset();                                                  // the original's arena is gone
  ASSERT_EQ(copy.size(), 20'000u);
  EXPECT_EQ(copy.back().value, 19'999.0);
  EXPECT_EQ(copy.LatestUpTo(19'999), 19'999u);
  EXPECT_EQ(copied_arena.size(), 20'000u);
}

}  // namespace
}  // namespace okr
