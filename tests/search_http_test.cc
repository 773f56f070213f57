// Searching objectives on the server (GET /v1/objectives?q=), end to end
// against the real okrd: every word, case folded, must occur in the id,
// title, owner (id or name) or a key result's title or owner as they stood
// at the answer's seq; matches page like the list they filter; a query
// okrd cannot take is refused naming `q` and appends nothing.
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "tests/okrd_harness.h"

namespace okr::testing {
namespace {

// An organisation of a person and a team whose objectives differ in
// title, owner and key results, so each field a word can match shows.
class SearchHttpTest : public ::testing::Test {
 protected:
  using json = nlohmann::json;
  static inline const Token kAdmin{"tok-admin-5ea7c4ed", "root", "admin", {}};

  void SetUp() override {
    ASSERT_TRUE(s_.Start());
    PlanAcmeAndCycle(s_, kAdmin.token, 60);
    Unit("p-1", "person", "Émilie Durand");
    Unit("t-ops", "team", "Operations");
    Objective("o-hire", "p-1", "Hire ten engineers");
    Objective("o-onboard", "t-ops", "Onboard new hires faster");
    Objective("o-retain", "p-1", "Retain engineering talent");
    Objective("o-digital", "t-ops", "Ψηφιακη μεταβαση");
    Want(s_.Post("/v1/key-results",
                 {{"id", "kr-offers"},
                  {"objective", "o-onboard"},
                  {"title", "Offers accepted within a week"},
                  {"owner", "p-1"},
                  {"start", 0},
                  {"target", 10}},
                 kAdmin.token),
         201);
  }

  void Unit(const std::string& id, const std::string& kind, const std::string& name) {
    json body = {{"id", id}, {"kind", kind}, {"name", name}, {"parent", "acme"}};
    if (kind == "person") body["email"] = id + "@example.com";
    Want(s_.Post("/v1/units", body, kAdmin.token), 201);
  }
  void Objective(const std::string& id, const std::string& owner, const std::string& title) {
    Want(s_.Post("/v1/objectives", {{"id", id}, {"cycle", "q"}, {"owner", owner}, {"title", title}},
                 kAdmin.token),
         201);
  }

  // The ids GET /v1/objectives?<query> answers on one page.
  std::vector<std::string> Found(const std::string& query) {
    Reply r = Want(s_.Get("/v1/objectives?" + query), 200);
    std::vector<std::string> ids;
    for (const json& o : r.json["items"]) ids.push_back(o["id"].get<std::string>());
    return ids;
  }
  std::vector<std::string> Search(const std::string& q) { return Found("q=" + UrlEncode(q)); }

  Okrd s_{OkrdOptions{std::vector<Token>{kAdmin}, {}}};
};

using Ids = std::vector<std::string>;
using nlohmann::json;

TEST_F(SearchHttpTest, EveryWordMatchesSomeFieldWhateverItsCase) {
  EXPECT_EQ(Search("ENGINEER"), (Ids{"o-hire", "o-retain"}));             // titles
  EXPECT_EQ(Search("engineer retain"), (Ids{"o-retain"}));                // every word
  EXPECT_EQ(Search("operations"), (Ids{"o-digital", "o-onboard"}));       // owner's name
  EXPECT_EQ(Search("t-ops faster"), (Ids{"o-onboard"}));                  // owner's id
  EXPECT_EQ(Search("accepted"), (Ids{"o-onboard"}));                      // a key result's title
  EXPECT_EQ(Search("o-hi"), (Ids{"o-hire"}));                             // the objective's id
  EXPECT_EQ(Search("ÉMILIE"), (Ids{"o-hire", "o-onboard", "o-retain"}));  // Latin-1 folded
  EXPECT_EQ(Search("p-1 accepted"), (Ids{"o-onboard"}));                  // a key result's owner
  EXPECT_EQ(Search("ΨΗΦΙΑΚΗ"), (Ids{"o-digital"}));                       // Greek folded
  EXPECT_EQ(Search("  hire   ten "), (Ids{"o-hire"}));                    // spaces only split
  EXPECT_EQ(Search("engineers operations"), Ids{});  // no one field set has both
  EXPECT_EQ(Search("nothing-like-it"), Ids{});
  EXPECT_EQ(Search("").size(), 4u);  // empty: no filter
  EXPECT_EQ(Found("q=engineer&owner=p-1&cycle=q"), (Ids{"o-hire", "o-retain"}));
  EXPECT_EQ(Found("q=engineer&owner=t-ops"), Ids{});
}

TEST_F(SearchHttpTest, AnswersFromTheStateAtAsOf) {
  uint64_t before = s_.HeadSeq();
  Want(s_.Patch("/v1/objectives/o-hire", {{"title", "Grow the platform team"}}, kAdmin.token), 200);
  Want(s_.Patch("/v1/units/p-1", {{"name", "Noor Haddad"}}, kAdmin.token), 200);
  EXPECT_EQ(Search("ten engineers"), Ids{});
  EXPECT_EQ(Search("platform"), (Ids{"o-hire"}));
  EXPECT_EQ(Search("noor"), (Ids{"o-hire", "o-onboard", "o-retain"}));
  EXPECT_EQ(Found("q=ten+engineers&as_of=" + std::to_string(before)), (Ids{"o-hire"}));
  EXPECT_EQ(Found("q=noor&as_of=" + std::to_string(before)), Ids{});
}

TEST_F(SearchHttpTest, MatchesPageLikeTheList) {
  for (int i = 0; i < 7; ++i) Objective("o-bulk-" + std::to_string(i), "t-ops", "Bulk item");
  std::vector<std::string> seen;
  std::string query = "q=bulk&limit=3";
  int pages = 0;
  for (;;) {
    Reply r = Want(s_.Get("/v1/objectives?" + query), 200);
    ASSERT_LE(r.json["items"].size(), 3u);
    for (const json& o : r.json["items"]) seen.push_back(o["id"].get<std::string>());
    ++pages;
    if (r.json["next"].is_null()) break;
    // A write between pages changes no page: the cursor pins the first one's seq.
    if (pages == 1) Objective("o-bulk-00", "t-ops", "Bulk item too");
    query = "q=bulk&limit=3&cursor=" + UrlEncode(r.json["next"].get<std::string>());
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(pages, 3);
  Ids want;
  for (int i = 0; i < 7; ++i) want.push_back("o-bulk-" + std::to_string(i));
  EXPECT_EQ(seen, want);
  EXPECT_EQ(Search("bulk").size(), 8u);  // a new first page sees the one written meanwhile
}

// With many objectives of another cycle and owner, one owner's or cycle's
// objectives are found through okrd's lists of them (those an owner ever
// owned, a cycle's): they list and page as before, in id order, each once,
// as they stood at the first page's seq, whoever owned what since.
TEST_F(SearchHttpTest, AnOwnersOrACyclesObjectivesListAndPageAtAnySeq) {
  Want(s_.Post("/v1/cycles",
               {{"id", "q-old"}, {"name", "Old"}, {"starts", "2025-01-01"}, {"ends", "2025-03-31"}},
               kAdmin.token),
       201);
  Unit("t-bulk", "team", "Bulk");
  for (int i = 0; i < 80; ++i) {
    Want(s_.Post("/v1/objectives",
                 {{"id", "o-old-" + std::to_string(100 + i)},
                  {"cycle", "q-old"},
                  {"owner", "t-bulk"},
                  {"title", "Old item"}},
                 kAdmin.token),
         201);
  }
  auto give = [&](const std::string& id, const std::string& owner) {
    Want(s_.Patch("/v1/objectives/" + id, {{"owner", owner}}, kAdmin.token), 200);
  };
  const std::string before = std::to_string(s_.HeadSeq());
  give("o-hire", "t-ops");
  const std::string given = std::to_string(s_.HeadSeq());
  give("o-hire", "p-1");  // taken back
  give("o-digital", "p-1");
  Want(s_.Delete("/v1/objectives/o-retain", kAdmin.token), 200);
  // Every page of one objective each, following `next`; `between` runs
  // after the first page.
  auto paged = [&](const std::string& query, const std::function<void()>& between = {}) {
    Ids ids;
    std::string cursor;
    for (int pages = 0; pages < 100; ++pages) {
      Reply r = Want(s_.Get("/v1/objectives?limit=1&" + query + cursor), 200);
      EXPECT_LE(r.json["items"].size(), 1u) << query;
      for (const json& o : r.json["items"]) ids.push_back(o["id"].get<std::string>());
      if (r.json["next"].is_null()) return ids;
      cursor = "&cursor=" + UrlEncode(r.json["next"].get<std::string>());
      if (pages == 0 && between) between();
    }
    ADD_FAILURE() << query << " did not end";
    return ids;
  };
  const std::vector<std::pair<std::string, Ids>> cases = {
      {"owner=p-1", {"o-digital", "o-hire"}},
      {"owner=p-1&include_archived=true", {"o-digital", "o-hire", "o-retain"}},
      {"owner=p-1&as_of=" + before, {"o-hire", "o-retain"}},
      {"owner=p-1&as_of=" + given, {"o-retain"}},
      {"owner=t-ops&as_of=" + given, {"o-digital", "o-hire", "o-onboard"}},
      {"cycle=q&owner=t-ops&as_of=" + before, {"o-digital", "o-onboard"}},
      {"cycle=q&include_archived=true&as_of=" + given,
       {"o-digital", "o-hire", "o-onboard", "o-retain"}},
      {"owner=acme", {}},
      {"q=hire&owner=p-1&include_archived=true", {"o-hire"}},
  };
  for (const auto& [query, want] : cases) {
    EXPECT_EQ(Found(query), want) << query;
    EXPECT_EQ(paged(query), want) << query;
  }
  // The other cycle's, many of all: its pages too.
  EXPECT_EQ(paged("cycle=q-old&as_of=" + given).size(), 80u);
  // An objective given to p-1 between its pages is not on them: they answer
  // as of the first; a new first page has it.
  EXPECT_EQ(paged("owner=p-1", [&] { give("o-old-100", "p-1"); }), (Ids{"o-digital", "o-hire"}));
  EXPECT_EQ(Found("owner=p-1"), (Ids{"o-digital", "o-hire", "o-old-100"}));
}

TEST_F(SearchHttpTest, HostileQueriesAreRefusedNamingQAndChangeNothing) {
  const uint64_t head = s_.HeadSeq();
  const std::string too_many_words = [] {
    std::string q;
    for (int i = 0; i < 17; ++i) q += "w" + std::to_string(i) + "+";
    return q;
  }();
  for (const std::string& q :
       {std::string("hire%0Aten"), std::string("hire%00"), std::string("%FF%FE"),
        std::string("a%09b"), std::string(201, 'a'), too_many_words}) {
    Reply r = s_.Get("/v1/objectives?q=" + q);
    EXPECT_EQ(r.status, 400) << q << "\n" << r;
    EXPECT_EQ(r.code(), "malformed") << q;
    EXPECT_EQ(r.field(), "q") << q;
  }
  // 200 characters (not bytes) is the most a title holds: still a query.
  std::string longest;
  for (int i = 0; i < 200; ++i) longest += "%C3%A9";  // é
  EXPECT_EQ(Want(s_.Get("/v1/objectives?q=" + longest), 200).json["items"].size(), 0u);
  EXPECT_EQ(s_.Get("/v1/objectives?q=" + std::string(9000, 'a')).status, 414);
  // Ten megabytes of query: refused before it is read, and okrd stays up.
  Reply huge = s_.Get("/v1/objectives?q=" + std::string(10u << 20, 'a'));
  EXPECT_TRUE(huge.status == 414 || huge.status == 0) << huge;
  EXPECT_EQ(Search("engineer").size(), 2u);
  EXPECT_EQ(s_.HeadSeq(), head);
}

}  // namespace
}  // namespace okr::testing
