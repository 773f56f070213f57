// okrd end to end, revalidation (SPEC §6): every state read answers an
// ETag naming the seq its answer reflects and Cache-Control: no-cache, so
// a poller's If-None-Match costs a 304; everything else stays no-store.
// If-Match on writes takes the entity reads' ETags and bare versions.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api/routes/routes.h"
#include "tests/okrd_story.h"

namespace okr::testing {
namespace {

using api::Access;
using api::AllRoutes;
using api::Route;

// The story told once per test, which may write after it.
class Revalidation : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(s.Start());
    st = BuildStory(s);
    ASSERT_EQ(st.head - st.start, kStoryEvents);
    ASSERT_EQ(s.HeadSeq(), st.head);
  }
  void TearDown() override {
    if (s.running()) {
      EXPECT_TRUE(s.Stop());
    }
  }
  // A GET the viewer may make.
  Reply Read(const std::string& path, const httplib::Headers& headers = {}) const {
    return s.Get(path, kViewer.token, headers);
  }

  Okrd s{WithTokens()};
  Story st;
};

// `route`'s path template with a story entity of the right kind as {id}.
std::string StoryPath(const Route& route) {
  std::string path = route.openapi_path;
  // The proofs need their seq and sizes.
  if (path == "/v1/log/proof/inclusion") return path + "?seq=1";
  if (path == "/v1/log/proof/consistency") return path + "?from=1&to=2";
  auto at = path.find("{id}");
  if (at == std::string::npos) return path;
  std::string id = path.starts_with("/v1/units")         ? "lena"
                   : path.starts_with("/v1/cycles")      ? "q-now"
                   : path.starts_with("/v1/key-results") ? "kr-hires"
                                                         : "hr-hiring";
  return path.replace(at, 4, id);
}

// "<seq>" or "<version>.<seq>" as a cached read at `seq` of an answer
// carrying `version` (or none) must tag it.
std::string TagOf(const Reply& r) {
  uint64_t seq = r.u("as_of_seq");
  if (r.json.contains("version")) {
    return "\"" + std::to_string(r.u("version")) + "." + std::to_string(seq) + "\"";
  }
  return "\"" + std::to_string(seq) + "\"";
}

// The tree routes answer for a size, not a seq, and are tagged by it: the
// proof's size (`to` of a consistency proof), else the head's.
std::string TreeTagOf(const Reply& r, uint64_t head) {
  uint64_t size = r.json.contains("to") ? r.u("to") : r.json.contains("size") ? r.u("size") : head;
  return "\"" + std::to_string(size) + "\"";
}

void ExpectNotModified(const Reply& r, const std::string& tag, const std::string& what) {
  EXPECT_EQ(r.status, 304) << what << ": " << r;
  EXPECT_EQ(r.body, "") << what;
  EXPECT_EQ(r.header("ETag"), tag) << what;
  EXPECT_EQ(r.header("Cache-Control"), "no-cache") << what;
}

TEST_F(Revalidation, EveryStateReadIsTaggedByItsSeqAndAnswers304ToItsTag) {
  int cached = 0;
  for (const Route& route : AllRoutes()) {
    if (route.method != "GET") continue;
    // Webhooks are admins' and no state read (webhooks_test checks them).
    if (route.openapi_path.starts_with("/v1/webhooks")) continue;
    // The subjects' keys are the replica role's alone (erasure_test checks them).
    if (route.kind == api::RouteKind::kReplicationKeys) continue;
    // Streams never end: stream_http_test checks they are not to be kept.
    if (route.openapi_path.ends_with("/stream")) continue;
    const std::string path = StoryPath(route);
    Reply r = s.Get(path, kAuditor.token);
    ASSERT_EQ(r.status, 200) << path << ": " << r;
    if (route.access != Access::kCachedStateRead) {
      // Audit reads, lint (judged by the wall clock at the head), health,
      // metrics: not kept, not revalidated.
      EXPECT_EQ(r.header("Cache-Control"), "no-store") << path;
      EXPECT_FALSE(r.has_header("ETag")) << path;
      continue;
    }
    ++cached;
    EXPECT_EQ(r.header("Cache-Control"), "no-cache") << path;
    if (path.starts_with("/v1/log/")) {
      EXPECT_EQ(r.header("ETag"), TreeTagOf(r, st.head)) << path;
    } else {
      EXPECT_EQ(r.u("as_of_seq"), st.head) << path;
      EXPECT_EQ(r.header("ETag"), TagOf(r)) << path;
    }
    const std::string tag = r.header("ETag");
    ExpectNotModified(Read(path, {{"If-None-Match", tag}}), tag, path);
    ExpectNotModified(Read(path, {{"If-None-Match", "\"1\", W/" + tag}}), tag, path + " (weak)");
    ExpectNotModified(Read(path, {{"If-None-Match", "*"}}), tag, path + " (*)");
    // An older seq's tag: the whole answer again.
    Reply older = Read(path, {{"If-None-Match", "\"" + std::to_string(st.head - 1) + "\""}});
    EXPECT_EQ(older.status, 200) << path;
    EXPECT_EQ(older.body, r.body) << path;
  }
  EXPECT_EQ(cached, 14);
}

TEST_F(Revalidation, AWriteElsewhereRetagsTheCascadeAndTheOldTagGetsTheNewAnswer) {
  const std::string cascade = "/v1/cascade?cycle=q-now";
  Reply before = Want(Read(cascade), 200);
  Reply objective = Want(Read("/v1/objectives/hr-hiring"), 200);
  // A unit far from the cascade's objectives: only the seq moves.
  CreateUnit(s, "new-team", "team", "New team", "eng");
  Reply after = Read(cascade, {{"If-None-Match", before.header("ETag")}});
  ASSERT_EQ(after.status, 200) << after;
  EXPECT_EQ(after.u("as_of_seq"), st.head + 1);
  EXPECT_EQ(after.header("ETag"), "\"" + std::to_string(st.head + 1) + "\"");
  EXPECT_NE(after.body, before.body);
  ExpectNotModified(Read(cascade, {{"If-None-Match", after.header("ETag")}}), after.header("ETag"),
                    "the new tag");
  // The objective's version stands; its tag moves with the seq.
  Reply retagged = Read("/v1/objectives/hr-hiring", {{"If-None-Match", objective.header("ETag")}});
  ASSERT_EQ(retagged.status, 200) << retagged;
  EXPECT_EQ(retagged.header("ETag"), "\"3." + std::to_string(st.head + 1) + "\"");
  // A tag with the right seq but another version names another answer.
  const std::string forged = "\"999." + std::to_string(st.head + 1) + "\"";
  Reply other = Read("/v1/objectives/hr-hiring", {{"If-None-Match", forged}});
  ASSERT_EQ(other.status, 200) << other;
  EXPECT_EQ(other.header("ETag"), retagged.header("ETag"));
  ExpectNotModified(Read("/v1/objectives/hr-hiring", {{"If-None-Match", retagged.header("ETag")}}),
                    retagged.header("ETag"), "the entity's own tag");
}

TEST_F(Revalidation, AnAsOfReadRevalidatesAfterWrites) {
  const std::vector<std::string> pinned = {
      "/v1/cascade?cycle=q-now&as_of=" + std::to_string(st.after_plan),
      "/v1/cascade?cycle=q-now&as_of=" + UrlEncode(st.time_before_move),
      "/v1/objectives/hr-hiring?as_of=" + std::to_string(st.after_plan),
      "/v1/diff?from=" + std::to_string(st.after_org) + "&to=" + std::to_string(st.move),
      "/v1/units?limit=2",  // its next page is pinned by the cursor
  };
  std::vector<Reply> first;
  for (const std::string& path : pinned) first.push_back(Want(Read(path), 200));
  const std::string next_page =
      "/v1/units?limit=2&cursor=" + first.back().json["next"].get<std::string>();
  Reply page = Want(Read(next_page), 200);
  EXPECT_EQ(first[1].u("as_of_seq"), st.before_move);
  EXPECT_EQ(first[3].u("as_of_seq"), st.move);
  CreateUnit(s, "later-team", "team", "Later", "eng");
  CreateUnit(s, "latest-team", "team", "Latest", "eng");
  for (size_t i = 0; i + 1 < pinned.size(); ++i) {
    EXPECT_EQ(first[i].header("ETag"), TagOf(first[i])) << pinned[i];
    ExpectNotModified(Read(pinned[i], {{"If-None-Match", first[i].header("ETag")}}),
                      first[i].header("ETag"), pinned[i]);
  }
  ExpectNotModified(Read(next_page, {{"If-None-Match", page.header("ETag")}}),
                    "\"" + std::to_string(st.head) + "\"", next_page);
}

TEST_F(Revalidation, IfMatchTakesTheEntityTagOrABareVersionAndAStaleOneMovesNothing) {
  const std::string lena = "/v1/units/lena";
  Reply read = Want(Read(lena), 200);
  ASSERT_EQ(read.header("ETag"), "\"1." + std::to_string(st.head) + "\"");
  Want(s.Patch(lena, {{"name", "Lena B."}}, kAdmin.token, {{"If-Match", read.header("ETag")}}),
       200);
  Want(s.Patch(lena, {{"name", "Lena C."}}, kAdmin.token, {{"If-Match", "\"2\""}}), 200);
  Want(s.Patch(lena, {{"name", "Lena D."}}, kAdmin.token, {{"If-Match", "3"}}), 200);
  const uint64_t head = s.HeadSeq();
  for (const std::string& stale : {read.header("ETag"), std::string("\"3\""), std::string("2")}) {
    Reply r = s.Patch(lena, {{"name", "Lost"}}, kAdmin.token, {{"If-Match", stale}});
    EXPECT_EQ(r.status, 412) << stale << ": " << r;
    EXPECT_EQ(r.field(), "If-Match");
  }
  for (const std::string bad : {"W/\"4.60\"", "\"4.\"", "\"4.60.1\"", "four", "*"}) {
    Reply r = s.Patch(lena, {{"name", "Lost"}}, kAdmin.token, {{"If-Match", bad}});
    EXPECT_EQ(r.status, 400) << bad << ": " << r;
    EXPECT_EQ(r.field(), "If-Match");
  }
  EXPECT_EQ(s.HeadSeq(), head);
  EXPECT_EQ(Want(Read(lena), 200).json["name"], "Lena D.");
}

TEST_F(Revalidation, HostileIfNoneMatchGetsAnAnswerNeverAFailure) {
  const std::string cascade = "/v1/cascade?cycle=q-now";
  const std::string tag = Want(Read(cascade), 200).header("ETag");
  std::string many;  // ~6 KB of tags, the matching one beyond those read
  while (many.size() < 6000) many += "\"12345\", ";
  std::string huge;  // ~10 KB, past what a header line may hold
  while (huge.size() < 10240) huge += "W/\"1.2\",";
  const std::vector<std::string> hostile = {many + tag,
                                            huge + tag,
                                            "%0A" + tag,
                                            "\"abc",
                                            "W/",
                                            ",,,,",
                                            "\"1.2.3\"",
                                            "\"\"",
                                            "\"99999999999999999999999\"",
                                            "\"-1\"",
                                            tag + "garbage",
                                            "W/W/" + tag,
                                            "**"};
  for (const std::string& value : hostile) {
    Reply r = Read(cascade, {{"If-None-Match", value}});
    EXPECT_TRUE(r.status == 200 || r.status == 304 || r.status == 400 || r.status == 431)
        << value.substr(0, 60) << ": " << r;
    if (r.status == 200) {
      EXPECT_EQ(r.header("ETag"), tag);
    }
  }
  EXPECT_EQ(Read(cascade, {{"If-None-Match", many + tag}}).status, 200);  // bounded: not read
  // A refused query is refused, whatever its If-None-Match says.
  Reply refused = Read(cascade + "&as_of=%0A", {{"If-None-Match", tag}});
  EXPECT_EQ(refused.status, 400) << refused;
  EXPECT_EQ(refused.header("Cache-Control"), "no-store");
  EXPECT_EQ(Want(s.Get("/healthz"), 200).json["status"], "ok");
  EXPECT_EQ(s.HeadSeq(), st.head);
}

TEST(RevalidationPrivate, A304IsGivenOnlyToACallerAdmittedToRead) {
  Okrd s(WithTokens({"--private"}));
  ASSERT_TRUE(s.Start());
  BuildOrg(s);
  Reply units = Want(s.Get("/v1/units", kViewer.token), 200);
  const std::string tag = units.header("ETag");
  EXPECT_EQ(s.Get("/v1/units", "", {{"If-None-Match", tag}}).status, 401);
  ExpectNotModified(s.Get("/v1/units", kViewer.token, {{"If-None-Match", tag}}), tag, "viewer");
  EXPECT_TRUE(s.Stop());
}

}  // namespace
}  // namespace okr::testing
