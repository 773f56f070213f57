// Bounded work per request (SPEC §6), end to end against the real okrd:
// /v1/diff, /v1/history/{id}, /v1/events and every list are paged with
// `limit` (default and maximum 1000) and `next`; following `next` gives
// every row exactly once, in order, also while writes land between pages;
// a refused limit or cursor appends nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "tests/okrd_harness.h"

namespace okr::testing {
namespace {

const Token kAdmin{"tok-admin-7c1e55aa", "root", "admin", {}};
const Token kAuditor{"tok-auditor-40d2b9f3", "audrey", "auditor", {}};

constexpr int64_t kDayUs = 86'400'000'000LL;
const char* const kDiffLists[] = {"created",   "changed",     "archived",
                                  "check_ins", "corrections", "comments"};

class PagingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(s_.Start());
    PlanAcmeAndCycle(s_, kAdmin.token, 60);
    Want(
        s_.Post("/v1/cycles",
                {{"id", "q-next"}, {"name", "Next"}, {"starts", DateIn(61)}, {"ends", DateIn(150)}},
                kAdmin.token),
        201);
    for (const char* team : {"t-a", "t-b", "t-c"}) {
      Want(
          s_.Post("/v1/units", {{"id", team}, {"kind", "team"}, {"name", team}, {"parent", "acme"}},
                  kAdmin.token),
          201);
    }
  }

  // An objective with one key result.
  void Plan(const std::string& objective, const std::string& kr) {
    Want(s_.Post("/v1/objectives",
                 {{"id", objective}, {"cycle", "q"}, {"owner", "acme"}, {"title", objective}},
                 kAdmin.token),
         201);
    Want(s_.Post(
             "/v1/key-results",
             {{"id", kr}, {"objective", objective}, {"title", kr}, {"start", 0}, {"target", 100}},
             kAdmin.token),
         201);
  }
  // Changes that give diff rows of every list, some several rows to one event.
  void Churn(int round) {
    std::string o = "o-" + std::to_string(round), kr = "kr-" + std::to_string(round);
    Plan(o, kr);
    Want(s_.Post("/v1/key-results/" + kr + "/check-ins",
                 {{"value", round}, {"id", "ci-" + std::to_string(round)}}, kAdmin.token),
         201);
    Want(s_.Post("/v1/key-results/" + kr + "/corrections",
                 {{"corrects", "ci-" + std::to_string(round)}, {"value", round + 1}}, kAdmin.token),
         201);
    Want(s_.Patch("/v1/objectives/" + o, {{"title", o + " renamed"}}, kAdmin.token), 200);
    Want(s_.Post("/v1/objectives/" + o + "/comments", {{"text", "note " + o}}, kAdmin.token), 201);
    if (round % 2 == 0)
      Want(s_.Delete("/v1/objectives/" + o, kAdmin.token), 200);  // state + archived: 2 rows
  }

  // Follows `next` from `first` (a path ending in a query) until it is
  // null, calling between(page number) after every page; the pages.
  std::vector<json> FollowPages(const std::string& first, const std::string& token,
                                const std::function<void(int)>& between = nullptr) {
    std::vector<json> pages;
    std::string path = first;
    for (int page = 0; page < 10'000; ++page) {
      Reply r = Want(s_.Get(path, token), 200);
      if (r.status != 200) return pages;
      pages.push_back(r.json);
      if (r.json["next"].is_null()) return pages;
      EXPECT_TRUE(r.json["next"].is_string()) << r;
      path = first + "&cursor=" + UrlEncode(r.json["next"].get<std::string>());
      if (between) between(page);
    }
    ADD_FAILURE() << "no end of pages";
    return pages;
  }

  Okrd s_{OkrdOptions{std::vector<Token>{kAdmin, kAuditor}, {}}};
};

json Items(const std::vector<json>& pages, const char* list = "items") {
  json out = json::array();
  for (const json& page : pages) {
    for (const json& item : page[list]) out.push_back(item);
  }
  return out;
}

// --- /v1/diff ---

TEST_F(PagingTest, DiffPagesGiveEveryRowOnceInOrderWhileWritesContinue) {
  for (int round = 0; round < 12; ++round) Churn(round);
  const uint64_t first_head = s_.HeadSeq();
  for (size_t limit : {1, 2, 7}) {
    // The reference: the whole diff in one page, at the head as it is now.
    const uint64_t to = s_.HeadSeq();
    Reply whole = Want(s_.Get("/v1/diff?from=0"), 200);
    ASSERT_TRUE(whole.json["next"].is_null()) << "the reference must fit one page";
    ASSERT_EQ(whole.u("as_of_seq"), to);
    size_t rows = 0;
    for (const char* list : kDiffLists) rows += whole.json[list].size();
    ASSERT_GT(whole.json["archived"].size(), 0u);
    ASSERT_GT(whole.json["corrections"].size(), 0u);
    // Writes land between pages; the first page's cursor pins `to`.
    int extra = 0;
    auto pages = FollowPages("/v1/diff?from=0&limit=" + std::to_string(limit), "", [&](int page) {
      if (page % 9 == 0) Churn(100 + limit * 100 + extra++);
    });
    EXPECT_GT(extra, 0);
    ASSERT_GE(pages.size(), rows / limit);
    for (const json& page : pages) {
      size_t n = 0;
      for (const char* list : kDiffLists) n += page[list].size();
      EXPECT_LE(n, limit);
      EXPECT_EQ(page["as_of_seq"], to);
      EXPECT_EQ(page["to"], to);
    }
    for (const char* list : kDiffLists) {
      EXPECT_EQ(Items(pages, list), whole.json[list]) << list << " with limit " << limit;
    }
  }
  EXPECT_GT(s_.HeadSeq(), first_head);
}

TEST_F(PagingTest, ABareDiffOverTwentyThousandEventsAnswersOnePageOfAtMostTheLimit) {
  constexpr int kKeyResults = 20, kWriters = 16, kCheckIns = 20'000;
  for (int i = 0; i < kKeyResults; ++i) Plan("o-" + std::to_string(i), "kr-" + std::to_string(i));
  std::atomic<int> next{0}, failed{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kWriters; ++t) {
    writers.emplace_back([&] {
      for (int i; (i = next++) < kCheckIns;) {
        Reply r = s_.Post("/v1/key-results/kr-" + std::to_string(i % kKeyResults) + "/check-ins",
                          {{"value", i % 100}}, kAdmin.token);
        if (r.status != 201) ++failed;
      }
    });
  }
  for (auto& t : writers) t.join();
  ASSERT_EQ(failed, 0);
  const uint64_t head = s_.HeadSeq();
  ASSERT_GE(head, static_cast<uint64_t>(kCheckIns));
  auto started = std::chrono::steady_clock::now();
  Reply page = Want(s_.Get("/v1/diff"), 200);
  auto took = std::chrono::steady_clock::now() - started;
  std::printf(
      "bare /v1/diff over %llu events: %lld ms, %zu bytes\n", static_cast<unsigned long long>(head),
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()),
      page.body.size());
  size_t n = 0;
  for (const char* list : kDiffLists) n += page.json[list].size();
  EXPECT_EQ(n, 1000u);  // the default limit, and the most a page holds
  EXPECT_TRUE(page.json["next"].is_string());
  EXPECT_LT(page.body.size(), 1'000'000u);
  // Following `next` to the end gives every check-in once.
  auto pages = FollowPages("/v1/diff?limit=1000&as_of=" + std::to_string(head), "");
  EXPECT_EQ(Items(pages, "check_ins").size(), static_cast<size_t>(kCheckIns));
  EXPECT_EQ(pages.size(), (head + 999) / 1000);  // every event gives one row here
}

// --- lists, events, history ---

TEST_F(PagingTest, ListsEventsAndHistoryPageEveryItemOnceWhileWritesContinue) {
  for (int round = 0; round < 9; ++round) Churn(round);
  for (int i = 0; i < 23; ++i) {
    Want(s_.Post("/v1/key-results/kr-1/check-ins", {{"value", i}}, kAdmin.token), 201);
  }
  int extra = 0;
  auto write_between = [&](int page) {
    if (page % 3 != 0) return;  // the log grows, slower than pages follow it
    Want(s_.Post("/v1/units",
                 {{"id", "a-new-" + std::to_string(extra)},
                  {"kind", "team"},
                  {"name", "New"},
                  {"parent", "acme"}},
                 kAdmin.token),
         201);
    Want(s_.Post("/v1/key-results/kr-1/check-ins", {{"value", 50 + extra++}}, kAdmin.token), 201);
  };
  struct Case {
    std::string path;
    std::string token;
  };
  for (const Case& c :
       {Case{"/v1/units?x=1", ""}, Case{"/v1/cycles?x=1", ""},
        Case{"/v1/objectives?include_archived=true", ""},
        Case{"/v1/key-results/kr-1/check-ins?x=1", ""}, Case{"/v1/events?x=1", kAuditor.token},
        Case{"/v1/history/kr-1?x=1", kAuditor.token}}) {
    // The whole list as it stood at `head`, in one page.
    bool audit = !c.token.empty();
    const uint64_t head = s_.HeadSeq();
    std::string pin = audit ? "" : "&as_of=" + std::to_string(head);
    Reply whole = Want(s_.Get(c.path + pin, c.token), 200);
    ASSERT_TRUE(whole.json["next"].is_null()) << c.path;
    json reference = whole.json["items"];
    ASSERT_GE(reference.size(), 2u) << c.path;
    // Paged two at a time without as_of, writing between pages: state
    // lists stay on the first page's state, audit lists on seq positions.
    auto pages = FollowPages(c.path + "&limit=2", c.token, write_between);
    json paged = Items(pages);
    if (audit)
      paged.erase(paged.begin() + static_cast<long>(std::min(paged.size(), reference.size())),
                  paged.end());
    EXPECT_EQ(paged, reference) << c.path;
    for (const json& page : pages) EXPECT_LE(page["items"].size(), 2u) << c.path;
    if (!audit) {
      for (const json& page : pages)
        EXPECT_EQ(page["as_of_seq"], pages.front()["as_of_seq"]) << c.path;
    }
  }
  EXPECT_GT(extra, 0);
}

// --- refusals ---

TEST_F(PagingTest, LimitsAndCursorsOutOfBoundsAreRefusedAndAppendNothing) {
  Churn(0);
  Churn(1);
  Reply first = Want(s_.Get("/v1/units?limit=1"), 200);
  const std::string units_cursor = first.json["next"].get<std::string>();
  Reply diff = Want(s_.Get("/v1/diff?limit=1"), 200);
  const std::string diff_cursor = diff.json["next"].get<std::string>();
  const uint64_t head = s_.HeadSeq();
  for (std::string route :
       {"/v1/units", "/v1/cycles", "/v1/objectives", "/v1/key-results/kr-0/check-ins", "/v1/diff",
        "/v1/events", "/v1/history/kr-0"}) {
    for (const char* limit : {"0", "1001", "ten", "-1", "1e3", ""}) {
      Reply r = s_.Get(route + "?limit=" + limit, kAuditor.token);
      EXPECT_EQ(r.status, 400) << route << " limit=" << limit << ": " << r;
      EXPECT_EQ(r.code(), "malformed") << r;
      EXPECT_EQ(r.field(), "limit") << r;
    }
    EXPECT_EQ(Want(s_.Get(route + "?limit=1000", kAuditor.token), 200).status, 200);
  }
  struct Bad {
    std::string path;
    const char* field;
  };
  for (const Bad& b : {
           Bad{"/v1/units?cursor=no-seq", "cursor"},
           Bad{"/v1/units?cursor=" + std::to_string(head + 50) + ".acme",
               "cursor"},                                              // beyond the head
           Bad{"/v1/units?as_of=1&cursor=" + units_cursor, "cursor"},  // another state
           Bad{"/v1/key-results/kr-0/check-ins?cursor=" + std::to_string(head) + ".x", "cursor"},
           Bad{"/v1/diff?cursor=" + std::to_string(head) + ".5", "cursor"},  // no row position
           Bad{"/v1/diff?cursor=" + std::to_string(head) + ".x.0", "cursor"},
           Bad{"/v1/diff?to=3&cursor=" + diff_cursor, "cursor"},  // another `to`
           Bad{"/v1/diff?from=" + std::to_string(head - 1) + "&cursor=" + diff_cursor,
               "cursor"},  // before from
           Bad{"/v1/events?after=3&cursor=4", "cursor"},
       }) {
    Reply r = s_.Get(b.path, kAuditor.token);
    EXPECT_EQ(r.status, 400) << b.path << ": " << r;
    EXPECT_EQ(r.field(), b.field) << b.path << ": " << r;
  }
  EXPECT_EQ(s_.HeadSeq(), head);
}

}  // namespace
}  // namespace okr::testing
