// okrd end to end, refused input: every refusal is a JSON error naming
// its code and field, writes nothing, and leaves okrd answering.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/okrd_story.h"

namespace okr::testing {
namespace {

struct BadCase {
  const char* name;
  std::string method, path, body;
  int status;
  std::string code;
  std::string field;           // "" : the answer names no field
  httplib::Headers headers{};  // sent besides the admin's token
};

TEST(OkrdBadInput, EveryRefusalWritesNothingAndOkrdStaysUp) {
  Okrd s(WithTokens());
  ASSERT_TRUE(s.Start());
  BuildOrg(s);
  const std::string& admin = kAdmin.token;
  Want(s.Post("/v1/objectives",
              {{"id", "o-a"}, {"cycle", "q-now"}, {"owner", "hr"}, {"title", "A"}}, admin),
       201);
  Want(s.Post("/v1/objectives",
              {{"id", "o-b"},
               {"cycle", "q-now"},
               {"owner", "hr-ops"},
               {"title", "B"},
               {"parents", {"o-a"}}},
              admin),
       201);
  Want(s.Post("/v1/key-results",
              {{"id", "kr-num"}, {"objective", "o-a"}, {"title", "N"}, {"target", 10}}, admin),
       201);
  Want(s.Post("/v1/key-results",
              {{"id", "kr-bool"},
               {"objective", "o-a"},
               {"title", "B"},
               {"metric", "boolean"},
               {"target", 1}},
              admin),
       201);
  Want(s.Post("/v1/key-results/kr-num/check-ins", {{"id", "ci-first"}, {"value", 1}}, admin), 201);
  // A closed cycle with an objective and a key result.
  Want(s.Post("/v1/cycles",
              {{"id", "q-old"},
               {"name", "Old"},
               {"starts", DateIn(-150)},
               {"ends", DateIn(-61)},
               {"parent", "fy"}},
              admin),
       201);
  Want(s.Post("/v1/objectives",
              {{"id", "o-old"}, {"cycle", "q-old"}, {"owner", "hr"}, {"title", "Old"}}, admin),
       201);
  Want(s.Post("/v1/key-results",
              {{"id", "kr-old"}, {"objective", "o-old"}, {"title", "Old"}, {"target", 3}}, admin),
       201);
  Want(s.Post("/v1/cycles/q-old/close", json::object(), admin), 200);
  // An idempotent write whose key is then reused with another body.
  Want(s.Post("/v1/key-results/kr-num/check-ins", {{"value", 2}}, admin,
              {{"Idempotency-Key", "idem-1"}}),
       201);

  const std::string obj = "/v1/objectives";
  const std::string ci = "/v1/key-results/kr-num/check-ins";
  auto objective = [](const std::string& id, const std::string& title) {
    return json{{"id", id}, {"cycle", "q-now"}, {"owner", "hr"}, {"title", title}}.dump();
  };
  std::string huge = objective("big", std::string((1u << 20) + 10, 'a'));
  std::string deep = R"({"title":)" + std::string(40, '[') + std::string(40, ']') + "}";
  std::string long_id(65, 'a');
  const std::vector<BadCase> cases = {
      {"malformed JSON", "POST", obj, R"({"id":"x",)", 400, "malformed", ""},
      // A name given twice in a body: nlohmann keeps the last value, other
      // readers of the same bytes the first.
      {"value given twice", "POST", ci, R"({"value":3,"value":1000})", 400, "malformed", "value"},
      {"title given twice", "POST", obj,
       R"({"id":"o-twice","cycle":"q-now","owner":"hr","title":"A","title":"B"})", 400, "malformed",
       "title"},
      {"truncated string", "POST", obj, R"({"id":"x)", 400, "malformed", ""},
      {"body is a list", "POST", obj, R"(["id","x"])", 400, "malformed", ""},
      {"body is a string", "POST", obj, R"("o-x")", 400, "malformed", ""},
      {"body is a number", "POST", ci, "42", 400, "malformed", ""},
      {"title is a number", "POST", obj, R"({"id":"x","cycle":"q-now","owner":"hr","title":5})",
       400, "malformed", "title"},
      {"parents is a string", "POST", obj,
       R"({"id":"x","cycle":"q-now","owner":"hr","title":"T","parents":"o-a"})", 400, "malformed",
       "parents"},
      {"value is a string", "POST", ci, R"({"value":"x"})", 400, "malformed", "value"},
      {"reason is a number", "POST", ci, R"({"value":1,"reason":7})", 400, "malformed", "reason"},
      {"NaN literal", "POST", ci, R"({"value":NaN})", 400, "malformed", ""},
      {"Infinity literal", "POST", ci, R"({"value":Infinity})", 400, "malformed", ""},
      {"-Infinity literal", "POST", ci, R"({"value":-Infinity})", 400, "malformed", ""},
      {"invalid UTF-8", "POST", obj,
       "{\"id\":\"x\",\"cycle\":\"q-now\",\"owner\":\"hr\",\"title\":\"\xff\xfe\"}", 400,
       "malformed", ""},
      {"1e400 value", "POST", ci, R"({"value":1e400})", 422, "invalid", "value"},
      {"1e400 target", "POST", "/v1/key-results",
       R"({"id":"k-inf","objective":"o-a","title":"T","target":1e400})", 422, "invalid", "target"},
      {"-1e400 score", "POST", "/v1/objectives/o-a/review",
       R"({"score":-1e400,"outcome":"missed"})", 422, "invalid", "score"},
      {"body over 1 MiB", "POST", obj, huge, 413, "too_large", ""},
      {"title of 201 characters", "POST", obj, objective("x", std::string(201, 't')), 422,
       "invalid", "title"},
      {"title of 201 two-byte characters", "POST", obj,
       objective("x",
                 [] {
                   std::string s;
                   for (int i = 0; i < 201; ++i) s += "\xc3\xa9";
                   return s;
                 }()),
       422, "invalid", "title"},
      {"title only blanks", "POST", obj, objective("x", "   "), 422, "invalid", "title"},
      {"comment of 10 001 characters", "POST", "/v1/objectives/o-a/comments",
       json{{"text", std::string(10'001, 'c')}}.dump(), 422, "invalid", "text"},
      {"description of 10 001 characters", "POST", obj,
       json{{"id", "x"},
            {"cycle", "q-now"},
            {"owner", "hr"},
            {"title", "T"},
            {"description", std::string(10'001, 'd')}}
           .dump(),
       422, "invalid", "description"},
      {"control character in a title", "POST", obj, objective("x", "bell\x07title"), 422, "invalid",
       "title"},
      {"line break in a title", "POST", obj, objective("x", "two\nlines"), 422, "invalid", "title"},
      {"path-like id in body", "POST", obj, objective("../x", "T"), 422, "invalid", "id"},
      {"uppercase id in body", "POST", obj, objective("O-UPPER", "T"), 422, "invalid", "id"},
      {"65-character id in body", "POST", obj, objective(long_id, "T"), 422, "invalid", "id"},
      {"NUL in an id in body", "POST", obj, objective(std::string("a\0b", 3), "T"), 422, "invalid",
       "id"},
      {"path-like id in path", "GET", "/v1/objectives/%2E%2E%2Fx", "", 404, "not_found", ""},
      {"path-like id in a write path", "POST", "/v1/key-results/%2E%2E%2Fx/check-ins",
       R"({"value":1})", 404, "not_found", ""},
      {"NUL in the path", "GET", "/v1/objectives/%00", "", 400, "malformed", ""},
      {"newline in the path", "GET", "/v1/units%0A", "", 400, "malformed", ""},
      {"uppercase id in path", "GET", "/v1/objectives/O-A", "", 400, "malformed", "id"},
      {"65-character id in path", "GET", "/v1/objectives/" + long_id, "", 400, "malformed", "id"},
      {"uppercase id in a write path", "PATCH", "/v1/objectives/O-A", R"({"title":"T"})", 400,
       "malformed", "id"},
      {"unknown objective", "GET", "/v1/objectives/" + std::string(64, 'a'), "", 404, "not_found",
       "id"},
      {"check-in on an unknown key result", "POST", "/v1/key-results/nope/check-ins",
       R"({"value":1})", 404, "not_found", "key_result"},
      {"unknown field", "POST", ci, R"({"value":1,"colour":"red"})", 400, "malformed", "colour"},
      {"actor in a body", "POST", ci, R"({"value":1,"actor":"someone-else"})", 400, "malformed",
       "actor"},
      {"as_of garbage", "GET", "/v1/units?as_of=yesterday", "", 400, "malformed", "as_of"},
      {"as_of beyond the head", "GET", "/v1/units?as_of=999999", "", 422, "invalid", "as_of"},
      {"as_of in the future", "GET", "/v1/objectives?as_of=" + UrlEncode(TimeIn(2)), "", 422,
       "invalid", "as_of"},
      {"at garbage", "GET", "/v1/key-results/kr-num?at=soon", "", 400, "malformed", "at"},
      {"as_of before 1970", "GET", "/v1/objectives?as_of=1969-12-31T23:59:59Z", "", 400,
       "malformed", "as_of"},
      {"at after 9999", "GET", "/v1/key-results/kr-num?at=9999-12-31T23:59:59-01:00", "", 400,
       "malformed", "at"},
      {"diff from after to", "GET", "/v1/diff?from=5&to=3", "", 422, "invalid", "from"},
      {"diff to after as_of", "GET", "/v1/diff?to=5&as_of=3", "", 422, "invalid", "to"},
      {"negative limit", "GET", "/v1/units?limit=-1", "", 400, "malformed", "limit"},
      {"zero limit", "GET", "/v1/objectives?limit=0", "", 400, "malformed", "limit"},
      {"limit above 1000", "GET", "/v1/units?limit=1001", "", 400, "malformed", "limit"},
      {"huge limit", "GET", "/v1/events?limit=99999999999999999999999", "", 400, "malformed",
       "limit"},
      {"include_archived not a boolean", "GET", "/v1/objectives?include_archived=maybe", "", 400,
       "malformed", "include_archived"},
      {"unknown review format", "GET", "/v1/cycles/q-now/review?format=pdf", "", 400, "malformed",
       "format"},
      {"newline in a cycle filter", "GET", "/v1/objectives?cycle=q-now%0A", "", 400, "malformed",
       "cycle"},
      {"uppercase owner filter", "GET", "/v1/objectives?owner=HR", "", 400, "malformed", "owner"},
      {"unknown cycle filter", "GET", "/v1/objectives?cycle=q-never", "", 404, "not_found",
       "cycle"},
      {"unknown owner filter", "GET", "/v1/objectives?owner=nobody", "", 404, "not_found", "owner"},
      {"NUL in a cascade root", "GET", "/v1/cascade?root=hr%00", "", 400, "malformed", "root"},
      {"newline in a lint cycle", "GET", "/v1/lint?cycle=%0A", "", 400, "malformed", "cycle"},
      {"newline in a diff cycle", "GET", "/v1/diff?from=1&cycle=q%0Anow", "", 400, "malformed",
       "cycle"},
      {"newline in a change feed's cycle", "GET", "/v1/changes/stream?cycle=%0A", "", 400,
       "malformed", "cycle"},
      {"events from after to", "GET",
       "/v1/events?from=2026-02-01T00:00:00Z&to=2026-01-31T23:59:59Z", "", 422, "invalid", "from"},
      {"misspelt event type", "GET", "/v1/events?type=checkin.recorded", "", 400, "malformed",
       "type"},
      {"deep nesting", "POST", obj, deep, 400, "malformed", ""},
      {"URI over 8 KiB", "GET", "/v1/units?cursor=" + std::string(9000, 'a'), "", 414,
       "uri_too_long", ""},
      {"header over 8 KiB",
       "GET",
       "/v1/units",
       "",
       400,
       "malformed",
       "",
       {{"X-Padding", std::string(9000, 'p')}}},
      {"cursor not an id", "GET", "/v1/units?cursor=%2E%2E%2Fx", "", 400, "malformed", "cursor"},
      {"duplicate id", "POST", obj, objective("o-a", "Again"), 409, "already_exists", "id"},
      {"id taken by another kind", "POST", "/v1/units",
       R"({"id":"kr-num","kind":"team","name":"T","parent":"hr"})", 409, "already_exists", "id"},
      {"cyclic alignment", "PATCH", "/v1/objectives/o-a", R"({"parents":["o-b"]})", 422, "invalid",
       "parents"},
      {"aligned to itself", "PATCH", "/v1/objectives/o-a", R"({"parents":["o-a"]})", 422, "invalid",
       "parents"},
      {"unit under itself", "PATCH", "/v1/units/hr", R"({"parent":"hr-ops"})", 422, "invalid",
       "parent"},
      {"check-in in a closed cycle", "POST", "/v1/key-results/kr-old/check-ins", R"({"value":1})",
       409, "conflict", "cycle"},
      {"objective in a closed cycle", "POST", obj,
       R"({"id":"o-late","cycle":"q-old","owner":"hr","title":"Late"})", 409, "conflict", "cycle"},
      {"retitle in a closed cycle", "PATCH", "/v1/objectives/o-old", R"({"title":"Renamed"})", 409,
       "conflict", "cycle"},
      {"If-Match garbage",
       "PATCH",
       "/v1/objectives/o-a",
       R"({"title":"T2"})",
       400,
       "malformed",
       "If-Match",
       {{"If-Match", "three"}}},
      {"If-Match stale",
       "POST",
       ci,
       R"({"value":3})",
       412,
       "version_mismatch",
       "If-Match",
       {{"If-Match", "1"}}},
      {"Idempotency-Key reused with another body",
       "POST",
       ci,
       R"({"value":9})",
       422,
       "invalid",
       "Idempotency-Key",
       {{"Idempotency-Key", "idem-1"}}},
      {"Idempotency-Key too long",
       "POST",
       ci,
       R"({"value":3})",
       400,
       "malformed",
       "Idempotency-Key",
       {{"Idempotency-Key", std::string(201, 'k')}}},
      {"missing title", "POST", obj, R"({"id":"x","cycle":"q-now","owner":"hr"})", 400, "malformed",
       "title"},
      {"missing value", "POST", ci, R"({"note":"forgot"})", 400, "malformed", "value"},
      {"empty body", "POST", obj, "", 400, "malformed", "id"},
      {"unknown route", "GET", "/v1/nothing-here", "", 404, "not_found", ""},
      // A query parameter given twice with two values, which no route
      // takes: which one was read would be a guess.
      {"a query parameter twice on a write", "POST", ci + "?reason=a&reason=b", R"({"value":3})",
       400, "malformed", "reason"},
      {"limit twice", "GET", "/v1/objectives?limit=1&limit=1000", "", 400, "malformed", "limit"},
      {"cycle twice on the cascade", "GET", "/v1/cascade?cycle=q-now&cycle=q-old", "", 400,
       "malformed", "cycle"},
      {"a line break in a name given twice", "GET", "/v1/events?a%0Ab=1&a%0Ab=2", "", 400,
       "malformed", "a\nb"},
      // So is a header okrd reads as one value, given twice.
      {"Authorization twice",
       "POST",
       ci,
       R"({"value":3})",
       400,
       "malformed",
       "Authorization",
       {{"Authorization", "Bearer " + kAuditor.token}, {"Authorization", "Bearer " + admin}}},
      {"If-Match twice",
       "POST",
       ci,
       R"({"value":3})",
       400,
       "malformed",
       "If-Match",
       {{"If-Match", "1"}, {"If-Match", "2"}}},
      {"unknown method on a route", "PUT", "/v1/objectives/o-a", R"({"title":"T"})", 404,
       "not_found", ""},
      {"measured_at in the future", "POST", ci,
       json{{"value", 3}, {"measured_at", TimeIn(1)}}.dump(), 422, "invalid", "measured_at"},
      {"measured_at not a time", "POST", ci, R"({"value":3,"measured_at":"last Tuesday"})", 400,
       "malformed", "measured_at"},
      {"boolean value 0.5", "POST", "/v1/key-results/kr-bool/check-ins", R"({"value":0.5})", 422,
       "invalid", "value"},
      {"confidence above 1", "POST", ci, R"({"value":3,"confidence":1.5})", 422, "invalid",
       "confidence"},
      {"unknown status", "POST", ci, R"({"value":3,"status":"great"})", 422, "invalid", "status"},
      {"target equal to start", "POST", "/v1/key-results",
       R"({"id":"k-flat","objective":"o-a","title":"Flat","start":5,"target":5})", 422, "invalid",
       "target"},
      {"moving the target onto the start", "PATCH", "/v1/key-results/kr-num", R"({"target":0})",
       422, "invalid", "target"},
      {"weight zero", "POST", "/v1/key-results",
       R"({"id":"k-w","objective":"o-a","title":"W","target":5,"weight":0})", 422, "invalid",
       "weight"},
      {"key result of an unknown objective", "POST", "/v1/key-results",
       R"({"id":"k-o","objective":"nope","title":"K","target":5})", 422, "invalid", "objective"},
      {"objective of an unknown owner", "POST", obj,
       R"({"id":"x","cycle":"q-now","owner":"nobody","title":"T"})", 422, "invalid", "owner"},
      {"cycle ending before it starts", "POST", "/v1/cycles",
       json{{"id", "c-x"}, {"name", "X"}, {"starts", DateIn(5)}, {"ends", DateIn(1)}}.dump(), 422,
       "invalid", "ends"},
      {"correction of an unknown check-in", "POST", "/v1/key-results/kr-num/corrections",
       R"({"corrects":"ci-nope","value":1})", 422, "invalid", "corrects"},
      {"outcome unknown", "POST", "/v1/objectives/o-a/review", R"({"score":0.5,"outcome":"meh"})",
       422, "invalid", "outcome"},
      {"Authorization not a bearer",
       "POST",
       ci,
       R"({"value":3})",
       401,
       "unauthorized",
       "",
       {{"Authorization", "Token abc"}}},
  };
  ASSERT_GE(cases.size(), 40u);
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    uint64_t head = s.HeadSeq();
    bool custom_auth = c.headers.count("Authorization") > 0;
    Reply r = s.Request(c.method, c.path, c.body, custom_auth ? "" : admin, c.headers);
    EXPECT_EQ(r.status, c.status) << r;
    EXPECT_EQ(r.code(), c.code) << r;
    EXPECT_EQ(r.field(), c.field) << r;
    ASSERT_TRUE(r.json.is_object()) << "every refusal is a JSON error body: " << r;
    EXPECT_TRUE(r.json["error"]["message"].is_string()) << r;
    EXPECT_EQ(s.HeadSeq(), head) << "a refused request appended";
    Reply alive = s.Get("/healthz");
    ASSERT_EQ(alive.status, 200) << "okrd stopped answering after: " << c.name << "\n"
                                 << s.LogTail();
  }

  // A filter that names no entity and could name none is refused without
  // its control character echoed into the message a client may log.
  for (const char* path : {"/v1/objectives?cycle=%0Ax", "/v1/cascade?root=%0Ax"}) {
    Reply r = Want(s.Get(path, admin), 400);
    EXPECT_EQ(r.json["error"]["message"].get<std::string>().find('\n'), std::string::npos) << r;
  }

  // A time okrd does not keep is a well-formed RFC 3339 one: the refusal
  // names the span okrd keeps, not only the format.
  for (const char* path : {"/v1/objectives?as_of=1969-12-31T23:59:59Z",
                           "/v1/key-results/kr-num?at=0001-01-01T00:00:00Z"}) {
    Reply r = Want(s.Get(path, admin), 400);
    EXPECT_NE(r.json["error"]["message"].get<std::string>().find(
                  "an RFC 3339 date-time from 1970 to 9999"),
              std::string::npos)
        << r;
  }

  // A title of exactly 200 characters and any Unicode are accepted and read back byte for byte.
  const std::string unicode = "Zufriedenheit ↑ 🚀 — équipe «RH» 日本語 ✓";
  uint64_t head = s.HeadSeq();
  Reply created = s.Post(
      obj, {{"id", "o-unicode"}, {"cycle", "q-now"}, {"owner", "hr"}, {"title", unicode}}, admin);
  EXPECT_EQ(created.status, 201) << created;
  EXPECT_EQ(created.json["title"], unicode);
  EXPECT_EQ(Want(s.Get("/v1/objectives/o-unicode"), 200).json["title"], unicode);
  std::string two_hundred;
  for (int i = 0; i < 200; ++i) two_hundred += "é";
  Want(s.Post(obj, {{"id", "o-200"}, {"cycle", "q-now"}, {"owner", "hr"}, {"title", two_hundred}},
              admin),
       201);
  EXPECT_EQ(Want(s.Get("/v1/objectives/o-200"), 200).json["title"], two_hundred);
  Want(s.Post("/v1/objectives/o-a/comments", {{"text", std::string(10'000, 'c')}}, admin), 201);
  EXPECT_EQ(s.HeadSeq(), head + 3);

  // The log is intact after all of it.
  Reply verify = Want(s.Get("/v1/audit/verify", kAuditor.token), 200);
  EXPECT_EQ(verify.json["ok"], true);
  EXPECT_EQ(verify.json["events"], head + 3);
  EXPECT_TRUE(s.Stop());
}

// ---------------------------------------------------------------------------

}  // namespace
}  // namespace okr::testing
