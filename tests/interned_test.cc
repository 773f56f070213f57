// The compact fold's parts: the process-wide text table (Interned) and the
// projection's id indexes (IdIndex for entities, CheckInIndex for check-ins
// by handle). Equal texts share a handle, a handle's text survives whatever
// made it, a lookup never grows the table, readers need no lock while a
// writer interns, and each index finds every id it holds and no other,
// through its growth.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "projections/domain/id_index.h"
#include "projections/domain/interned.h"

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

}  // namespace
}  // namespace okr
