// okrd end to end, authorisation: every write route against every role,
// okrd without a tokens file, private reads, and scope that follows
// ownership.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/okrd_story.h"

namespace okr::testing {
namespace {

struct Caller {
  const char* name;
  std::string token;         // "" : none
  httplib::Headers headers;  // e.g. a malformed Authorization
};

// A request; "{n}" in its path and body stands for a number fresh to each
// request, so that every caller meets a subject of its own.
struct Step {
  std::string method, path, body;
};

struct WriteRoute {
  const char* name;
  bool admin_only;  // units and cycles
  int success;      // 200 or 201
  Step write;
  // What the admin writes first to make the subject (each answered 201
  // unless it closes a cycle).
  std::vector<Step> prepare = {};
};

std::string Fill(std::string text, int n) {
  const std::string number = std::to_string(n);
  for (size_t at = text.find("{n}"); at != std::string::npos; at = text.find("{n}", at)) {
    text.replace(at, 3, number);
  }
  return text;
}

// The subjects of the write routes: owned in HR (Maya's scope), never in Ana's.
class OkrdAuthorisation : public OkrdWithOrg {
 protected:
  void SetUp() override {
    OkrdWithOrg::SetUp();
    if (HasFatalFailure()) return;
    AsAdmin(s, "/v1/objectives",
            {{"id", "hr-obj"}, {"cycle", "q-now"}, {"owner", "hr-ops"}, {"title", "HR"}});
    AsAdmin(s, "/v1/key-results",
            {{"id", "hr-kr"}, {"objective", "hr-obj"}, {"title", "KR"}, {"target", 10}});
  }
};

std::vector<WriteRoute> WriteRoutes() {
  const Step fresh_cycle{
      "POST", "/v1/cycles",
      json{{"id", "cy-{n}"}, {"name", "Cycle"}, {"starts", DateIn(-5)}, {"ends", DateIn(5)}}
          .dump()};
  const Step close_it{"POST", "/v1/cycles/cy-{n}/close", "{}"};
  return {
      {"create unit",
       true,
       201,
       {"POST", "/v1/units", R"({"id":"u-{n}","kind":"team","name":"Team","parent":"hr"})"}},
      {"update unit", true, 200, {"PATCH", "/v1/units/ta", R"({"name":"Talent {n}"})"}},
      {"retire unit",
       true,
       200,
       {"DELETE", "/v1/units/leaf-{n}", ""},
       {{"POST", "/v1/units", R"({"id":"leaf-{n}","kind":"team","name":"Leaf","parent":"hr"})"}}},
      {"create cycle",
       true,
       201,
       {"POST", "/v1/cycles",
        json{{"id", "new-{n}"}, {"name", "N"}, {"starts", DateIn(1)}, {"ends", DateIn(9)}}.dump()}},
      {"update cycle", true, 200, {"PATCH", "/v1/cycles/fy", R"({"name":"FY {n}"})"}},
      {"close cycle", true, 200, close_it, {fresh_cycle}},
      {"reopen cycle",
       true,
       200,
       {"POST", "/v1/cycles/cy-{n}/reopen", "{}"},
       {fresh_cycle, close_it}},
      {"create objective",
       false,
       201,
       {"POST", "/v1/objectives",
        R"({"id":"o-{n}","cycle":"q-now","owner":"hr-ops","title":"New","parents":["hr-obj"]})"}},
      {"update objective", false, 200, {"PATCH", "/v1/objectives/hr-obj", R"({"title":"HR {n}"})"}},
      {"archive objective",
       false,
       200,
       {"DELETE", "/v1/objectives/obj-{n}", ""},
       {{"POST", "/v1/objectives",
         R"({"id":"obj-{n}","cycle":"q-now","owner":"hr-ops","title":"Fresh"})"}}},
      {"comment on objective",
       false,
       201,
       {"POST", "/v1/objectives/hr-obj/comments", R"({"text":"Note {n}"})"}},
      {"review objective",
       false,
       201,
       {"POST", "/v1/objectives/hr-obj/review", R"({"score":0.5,"outcome":"partially"})"}},
      {"create key result",
       false,
       201,
       {"POST", "/v1/key-results",
        R"({"id":"k-{n}","objective":"hr-obj","title":"K","target":5})"}},
      {"update key result",
       false,
       200,
       {"PATCH", "/v1/key-results/hr-kr", R"({"title":"KR {n}"})"}},
      {"remove key result",
       false,
       200,
       {"DELETE", "/v1/key-results/gone-{n}", ""},
       {{"POST", "/v1/key-results",
         R"({"id":"gone-{n}","objective":"hr-obj","title":"K","target":5})"}}},
      {"check in", false, 201, {"POST", "/v1/key-results/hr-kr/check-ins", R"({"value":{n}})"}},
      {"correct a check-in",
       false,
       201,
       {"POST", "/v1/key-results/hr-kr/corrections", R"({"corrects":"ci-{n}","value":2})"},
       {{"POST", "/v1/key-results/hr-kr/check-ins", R"({"id":"ci-{n}","value":1})"}}},
      {"comment on key result",
       false,
       201,
       {"POST", "/v1/key-results/hr-kr/comments", R"({"text":"Note {n}"})"}},
  };
}

const std::vector<Caller>& Callers() {
  static const std::vector<Caller> callers = {
      {"no token", "", {}},
      {"wrong token", "tok-nobody-000000", {}},
      {"not a bearer", "", {{"Authorization", "Basic cm9vdDpyb290"}}},
      {"viewer", kViewer.token, {}},
      {"auditor", kAuditor.token, {}},
      {"editor out of scope", kAna.token, {}},
      {"editor in scope", kMaya.token, {}},
      {"admin", kAdmin.token, {}},
  };
  return callers;
}

TEST_F(OkrdAuthorisation, EveryWriteRouteAgainstEveryRole) {
  int n = 0, refusals = 0, successes = 0;
  for (const WriteRoute& route : WriteRoutes()) {
    for (const Caller& caller : Callers()) {
      SCOPED_TRACE(std::string(route.name) + " as " + caller.name);
      ++n;
      for (const Step& step : route.prepare) {
        const int status = step.path.ends_with("/close") ? 200 : 201;
        AsAdmin(s, Fill(step.path, n), json::parse(Fill(step.body, n)), status);
      }
      const std::string method = route.write.method, path = Fill(route.write.path, n);
      uint64_t head = s.HeadSeq();
      Reply r = s.Request(method, path, Fill(route.write.body, n), caller.token, caller.headers);
      std::string who = caller.name;
      int want;
      std::string code;
      if (who == "no token" || who == "wrong token" || who == "not a bearer") {
        want = 401, code = "unauthorized";
      } else if (who == "viewer" || who == "auditor" || who == "editor out of scope" ||
                 (who == "editor in scope" && route.admin_only)) {
        want = 403, code = "forbidden";
      } else {
        want = route.success;
      }
      EXPECT_EQ(r.status, want) << method << " " << path << " " << r;
      if (want >= 400) {
        ++refusals;
        EXPECT_EQ(r.code(), code) << r;
        EXPECT_EQ(s.HeadSeq(), head) << "a refused write appended";
        if (want == 401) {
          EXPECT_EQ(r.header("WWW-Authenticate"), "Bearer");
        }
      } else {
        ++successes;
        EXPECT_GT(s.HeadSeq(), head);
        EXPECT_EQ(r.u("seq"), s.HeadSeq()) << r;
      }
    }
  }
  EXPECT_EQ(refusals, 18 * 6 + 7);
  EXPECT_EQ(successes, 18 + 11);

  // The actor is the token's principal, never anything a body could say.
  Reply by_maya = Want(s.Get("/v1/events?entity=hr-kr&type=comment.added", kAuditor.token), 200);
  ASSERT_FALSE(by_maya.json["items"].empty());
  EXPECT_EQ(by_maya.json["items"][0]["actor"], "maya");
}

// Scope follows ownership both ways: an editor cannot hand an objective
// out of its scope, nor attach a key result owned outside it.
TEST_F(OkrdAuthorisation, ScopeFollowsOwnership) {
  uint64_t head = s.HeadSeq();
  EXPECT_EQ(s.Patch("/v1/objectives/hr-obj", {{"owner", "platform"}}, kMaya.token).status, 403);
  EXPECT_EQ(s.Post("/v1/key-results",
                   {{"id", "k-mixed"},
                    {"objective", "hr-obj"},
                    {"title", "K"},
                    {"target", 1},
                    {"owner", "platform"}},
                   kMaya.token)
                .status,
            403);
  EXPECT_EQ(s.Post("/v1/objectives",
                   {{"id", "o-top"}, {"cycle", "q-now"}, {"owner", "acme"}, {"title", "Top"}},
                   kMaya.token)
                .status,
            403);
  EXPECT_EQ(s.HeadSeq(), head);
}

TEST_F(OkrdAuthorisation, AuditReadsAreForAuditorsAndAdminsOnly) {
  for (const char* path : {"/v1/events", "/v1/history/hr-obj", "/v1/audit/verify"}) {
    SCOPED_TRACE(path);
    EXPECT_EQ(s.Get(path).status, 401);
    EXPECT_EQ(s.Get(path, "tok-nobody-000000").status, 401);
    EXPECT_EQ(s.Get(path, kViewer.token).status, 403);
    EXPECT_EQ(s.Get(path, kMaya.token).status, 403);
    EXPECT_EQ(s.Get(path, kAuditor.token).status, 200);
    EXPECT_EQ(s.Get(path, kAdmin.token).status, 200);
  }
  // State reads are anonymous without --private.
  EXPECT_EQ(s.Get("/v1/objectives").status, 200);
}

TEST_F(OkrdAuthorisation, TheReplicaRoleReadsWhatReplicationCopiesAndNothingElse) {
  const uint64_t head = s.HeadSeq();
  for (const char* path : {"/v1/events/raw?after=0&limit=5", "/v1/log/key", "/v1/log/checkpoint",
                           "/v1/log/proof/consistency?from=1&to=2", "/healthz"}) {
    SCOPED_TRACE(path);
    EXPECT_EQ(s.Get(path, kReplica.token).status, 200);
  }
  EXPECT_EQ(s.Get("/v1/events/raw?after=0&limit=5").status, 401);
  EXPECT_EQ(s.Get("/v1/events/raw?after=0&limit=5", kViewer.token).status, 403);
  EXPECT_EQ(s.Get("/v1/events/raw?after=0&limit=5", kAuditor.token).status, 200);
  for (const char* path : {"/v1/events", "/v1/audit/verify", "/v1/objectives", "/v1/cascade",
                           "/v1/units/hr", "/v1/webhooks"}) {
    SCOPED_TRACE(path);
    Reply r = s.Get(path, kReplica.token);
    EXPECT_EQ(r.status, 403) << r;
    EXPECT_EQ(r.code(), "forbidden");
  }
  for (const WriteRoute& route : WriteRoutes()) {
    SCOPED_TRACE(route.name);
    Reply r = s.Request(route.write.method, Fill(route.write.path, 1), Fill(route.write.body, 1),
                        kReplica.token);
    EXPECT_EQ(r.status, 403) << r;
  }
  EXPECT_EQ(s.HeadSeq(), head);
}

TEST(OkrdAccess, WithoutTokensFileEveryWriteIsForbidden) {
  Okrd s(OkrdOptions{std::nullopt, {}});
  ASSERT_TRUE(s.Start());
  for (auto [method, path] :
       std::vector<std::pair<std::string, std::string>>{{"POST", "/v1/units"},
                                                        {"POST", "/v1/cycles"},
                                                        {"POST", "/v1/objectives"},
                                                        {"PATCH", "/v1/objectives/x"},
                                                        {"DELETE", "/v1/key-results/x"},
                                                        {"POST", "/v1/key-results/x/check-ins"}}) {
    SCOPED_TRACE(method + " " + path);
    Reply r = s.Request(method, path, R"({"id":"acme","kind":"company","name":"Acme"})");
    EXPECT_EQ(r.status, 403) << r;
    EXPECT_EQ(r.code(), "forbidden");
    // A token cannot be valid when there are none.
    EXPECT_EQ(s.Request(method, path, "{}", kAdmin.token).status, 401);
  }
  EXPECT_EQ(s.HeadSeq(), 1u) << "the log's key alone";
  EXPECT_EQ(Want(s.Get("/v1/units"), 200).json["items"], json::array());
  EXPECT_EQ(s.Get("/v1/events").status, 401);
  EXPECT_TRUE(s.Stop());
}

TEST(OkrdAccess, PrivateReadsNeedAToken) {
  Okrd s(WithTokens({"--private"}));
  ASSERT_TRUE(s.Start());
  BuildOrg(s);
  for (const char* path :
       {"/v1/units", "/v1/units/hr", "/v1/cycles", "/v1/cycles/q-now", "/v1/objectives",
        "/v1/cascade", "/v1/diff", "/v1/lint", "/v1/cycles/q-now/review"}) {
    SCOPED_TRACE(path);
    Reply anonymous = s.Get(path);
    EXPECT_EQ(anonymous.status, 401) << anonymous;
    EXPECT_EQ(anonymous.code(), "unauthorized");
    EXPECT_EQ(s.Get(path, "tok-nobody-000000").status, 401);
    EXPECT_EQ(s.Get(path, kViewer.token).status, 200);
    EXPECT_EQ(s.Get(path, kMaya.token).status, 200);
  }
  EXPECT_EQ(s.Get("/v1/events", kViewer.token).status, 403);
  EXPECT_EQ(s.Get("/v1/events", kAuditor.token).status, 200);
  // Liveness stays open for probes.
  EXPECT_EQ(s.Get("/healthz").status, 200);
  EXPECT_TRUE(s.Stop());
}

// ---------------------------------------------------------------------------

using OkrdScope = OkrdWithOrg;

// An editor cannot move what it changes out of its scope by clearing a
// field: a key result whose owner is cleared falls back to its
// objective's owner, which must be in the editor's scope too.
TEST_F(OkrdScope, ClearingAnOwnerCannotMoveAKeyResultOutOfScope) {
  AsAdmin(s, "/v1/objectives",
          {{"id", "eng-ship"}, {"cycle", "q-now"}, {"owner", "eng"}, {"title", "Ship it"}});
  AsAdmin(s, "/v1/key-results",
          {{"id", "kr-referrals"},
           {"objective", "eng-ship"},
           {"title", "Referrals hired"},
           {"owner", "hr"},
           {"start", 0},
           {"target", 5}});
  const uint64_t head = s.HeadSeq();
  // Maya may change what HR owns, but clearing the owner hands the key
  // result to Engineering's objective: refused, and nothing is written.
  Reply cleared = s.Patch("/v1/key-results/kr-referrals", {{"owner", ""}}, kMaya.token);
  EXPECT_EQ(cleared.status, 403) << cleared;
  EXPECT_EQ(s.HeadSeq(), head);
  // Setting an owner outside the scope is refused the same way.
  EXPECT_EQ(s.Patch("/v1/key-results/kr-referrals", {{"owner", "platform"}}, kMaya.token).status,
            403);
  EXPECT_EQ(s.HeadSeq(), head);
  // Within HR it is hers to change.
  Want(s.Patch("/v1/key-results/kr-referrals", {{"owner", "ta"}}, kMaya.token), 200);
  // An admin may clear it.
  Want(s.Patch("/v1/key-results/kr-referrals", {{"owner", ""}}, kAdmin.token), 200);
}

}  // namespace
}  // namespace okr::testing
