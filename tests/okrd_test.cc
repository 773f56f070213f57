// okrd end to end: the real binary, a free loopback port, HTTP only.
//
// The story every test builds on: Acme's HR department plans a quarter.
// Cycles are placed around today (a fiscal year, a quarter that began 60
// days ago), so check-ins can be measured in the past and moved targets
// fall after the cycle started.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/okrd_harness.h"

namespace okr::testing {
namespace {

using nlohmann::json;

const Token kAdmin{"tok-admin-3f9a1c7d", "root", "admin", {}};
const Token kMaya{"tok-maya-51d2e0aa", "maya", "editor", {"hr"}};   // HR and everything under it
const Token kAna{"tok-ana-08b7f4c3", "ana", "editor", {"eng"}};     // Engineering only
const Token kViewer{"tok-viewer-c6a2b9e1", "vic", "viewer", {}};
const Token kAuditor{"tok-auditor-9e4d1702", "audrey", "auditor", {}};

OkrdOptions WithTokens(std::vector<std::string> extra = {}) {
  return OkrdOptions{std::vector<Token>{kAdmin, kMaya, kAna, kViewer, kAuditor}, std::move(extra)};
}

constexpr int64_t kDayUs = 86'400'000'000LL;

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string FormatUs(int64_t us) {
  std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(us % 1'000'000));
  return buf;
}

// Now ± days, as an RFC 3339 date-time.
std::string TimeIn(double days) { return FormatUs(NowUs() + static_cast<int64_t>(days * kDayUs)); }

// Checks the status and hands the reply on.
Reply Want(const Reply& r, int status) {
  EXPECT_EQ(r.status, status) << r;
  return r;
}

std::vector<std::string> Ids(const json& items, const char* key = "id") {
  std::vector<std::string> out;
  if (!items.is_array()) return out;
  for (const json& item : items) out.push_back(item.value(key, std::string("?")));
  return out;
}

using Strings = std::vector<std::string>;

// --- the organisation and the story ---

// Units and cycles (10 events), all by the admin.
void BuildOrg(const Okrd& s) {
  struct U {
    const char *id, *kind, *name, *parent, *email;
  };
  for (const U& u : {U{"acme", "company", "Acme Robotics", "", ""},
                     U{"hr", "department", "People & HR", "acme", ""},
                     U{"eng", "department", "Engineering", "acme", ""},
                     U{"hr-ops", "team", "HR Operations", "hr", ""},
                     U{"ta", "team", "Talent Acquisition", "hr", ""},
                     U{"platform", "team", "Platform", "eng", ""},
                     U{"lena", "person", "Lena Fischer", "hr-ops", "lena@acme.example"},
                     U{"sam", "person", "Sam Okafor", "ta", "sam@acme.example"}}) {
    json body = {{"id", u.id}, {"kind", u.kind}, {"name", u.name}};
    if (*u.parent) body["parent"] = u.parent;
    if (*u.email) body["email"] = u.email;
    Want(s.Post("/v1/units", body, kAdmin.token), 201);
  }
  Want(s.Post("/v1/cycles",
              {{"id", "fy"}, {"name", "Fiscal year"}, {"starts", DateIn(-180)}, {"ends", DateIn(180)}},
              kAdmin.token),
       201);
  Want(s.Post("/v1/cycles",
              {{"id", "q-now"}, {"name", "This quarter"}, {"starts", DateIn(-60)}, {"ends", DateIn(30)},
               {"parent", "fy"}},
              kAdmin.token),
       201);
}

struct Story {
  uint64_t after_org = 0;      // units and cycles
  uint64_t after_plan = 0;     // objectives and key results
  uint64_t before_move = 0;    // the last event before kr-hires' target moved
  std::string time_before_move;  // an instant between before_move and the move
  uint64_t move = 0;           // kr-hires: target 10 → 8
  uint64_t owner_change = 0;   // ops-onboarding: hr-ops → lena
  uint64_t archive = 0;        // ta-campus archived
  uint64_t before_close = 0;
  uint64_t head = 0;
};

// The quarter, told through the API: 43 events.
Story BuildStory(const Okrd& s) {
  Story st;
  BuildOrg(s);
  uint64_t seq = s.HeadSeq();
  st.after_org = seq;
  // Every write answers with the seq of its event: the log is dense.
  auto w = [&](const Reply& r, int status) {
    Want(r, status);
    EXPECT_EQ(r.u("seq"), ++seq) << r;
    return r;
  };
  auto objective = [&](const Token& who, const char* id, const char* owner, const char* title,
                       Strings parents) {
    w(s.Post("/v1/objectives",
             {{"id", id}, {"cycle", "q-now"}, {"owner", owner}, {"title", title}, {"parents", parents}},
             who.token),
      201);
  };
  objective(kAdmin, "acme-retain", "acme", "Keep the people we hire", {});
  objective(kMaya, "hr-hiring", "hr", "Hire the engineers the roadmap needs", {"acme-retain"});
  objective(kMaya, "ops-onboarding", "hr-ops", "Onboard every new hire smoothly", {"acme-retain"});
  // Cross-functional: Engineering aligns to HR's objective and the company's.
  objective(kAna, "eng-mentoring", "eng", "Mentor every new engineer", {"hr-hiring", "acme-retain"});
  objective(kMaya, "ta-campus", "ta", "Run campus recruiting events", {"hr-hiring"});
  auto kr = [&](const Token& who, json body) { w(s.Post("/v1/key-results", body, who.token), 201); };
  kr(kMaya, {{"id", "kr-hires"}, {"objective", "hr-hiring"}, {"title", "Engineers hired"},
             {"metric", "number"}, {"start", 0}, {"target", 10}, {"unit", "people"}, {"weight", 2}});
  kr(kMaya, {{"id", "kr-time-to-hire"}, {"objective", "hr-hiring"}, {"title", "Median time to hire"},
             {"start", 45}, {"target", 30}, {"unit", "days"}});
  kr(kMaya, {{"id", "kr-onboarding"}, {"objective", "ops-onboarding"},
             {"title", "Onboarding satisfaction"}, {"metric", "percent"}, {"start", 20}, {"target", 60},
             {"unit", "%"}});
  kr(kAna, {{"id", "kr-mentor-programme"}, {"objective", "eng-mentoring"},
            {"title", "Mentor programme launched"}, {"metric", "boolean"}, {"start", 0}, {"target", 1}});
  kr(kAna, {{"id", "kr-mentored"}, {"objective", "eng-mentoring"}, {"title", "Engineers with a mentor"},
            {"start", 0}, {"target", 8}});
  kr(kMaya, {{"id", "kr-campus-events"}, {"objective", "ta-campus"}, {"title", "Campus events run"},
             {"start", 0}, {"target", 4}});
  st.after_plan = seq;

  // Weekly check-ins, measured in the past.
  std::string tth_last;
  auto check_in = [&](const Token& who, const char* kr_id, double value, int days_ago,
                      const char* note = "Weekly update") -> std::string {
    Reply r = w(s.Post(std::string("/v1/key-results/") + kr_id + "/check-ins",
                       {{"value", value}, {"measured_at", TimeIn(-days_ago)}, {"note", note},
                        {"status", "on_track"}, {"confidence", 0.8}},
                       who.token),
                201);
    return r.json.contains("check_in") ? r.json["check_in"].value("id", std::string()) : std::string();
  };
  check_in(kMaya, "kr-hires", 2, 42);
  check_in(kMaya, "kr-hires", 3, 35);
  check_in(kMaya, "kr-hires", 5, 28);
  check_in(kMaya, "kr-hires", 6, 21);
  check_in(kMaya, "kr-time-to-hire", 42, 35);
  tth_last = check_in(kMaya, "kr-time-to-hire", 38, 21);
  check_in(kMaya, "kr-onboarding", 30, 27);
  check_in(kMaya, "kr-onboarding", 44, 13);
  check_in(kAna, "kr-mentor-programme", 1, 10);
  check_in(kAna, "kr-mentored", 3, 7);
  // Recorded last, measured first: the series is ordered by measured_at.
  check_in(kMaya, "kr-hires", 1, 49, "Backfilled from the ATS export");
  check_in(kMaya, "kr-campus-events", 1, 20);
  st.before_move = seq;
  int64_t before = NowUs();
  st.time_before_move = FormatUs(before);
  while (NowUs() <= before) {
  }  // the move is recorded strictly after that instant

  Reply moved = w(s.Patch("/v1/key-results/kr-hires",
                          {{"target", 8}, {"reason", "Hiring budget cut by two heads"}}, kMaya.token),
                  200);
  EXPECT_EQ(moved.json["target"], 8);
  st.move = seq;
  w(s.Patch("/v1/objectives/ops-onboarding", {{"owner", "lena"}, {"reason", "Lena runs onboarding"}},
            kMaya.token),
    200);
  st.owner_change = seq;
  w(s.Delete("/v1/objectives/ta-campus", kMaya.token, {}, {{"reason", "Campus season moved to spring"}}),
    200);
  st.archive = seq;
  w(s.Post("/v1/objectives/hr-hiring/comments", {{"text", "Two offers out this week."}}, kMaya.token), 201);
  w(s.Post("/v1/key-results/kr-mentored/comments", {{"text", "Pairing starts Monday."}}, kAna.token), 201);
  w(s.Post("/v1/key-results/kr-time-to-hire/corrections",
           {{"corrects", tth_last}, {"value", 37}, {"note", "Recounted"}, {"reason", "ATS double count"}},
           kMaya.token),
    201);
  st.before_close = seq;
  w(s.Post("/v1/cycles/q-now/close", {{"reason", "Quarter ended"}}, kAdmin.token), 200);
  w(s.Post("/v1/objectives/hr-hiring/review",
           {{"score", 0.7}, {"outcome", "partially"}, {"reflection", "Budget cut mid-quarter."},
            {"lessons", "Re-plan dependent key results when budgets move."}},
           kMaya.token),
    201);
  w(s.Post("/v1/objectives/eng-mentoring/review", {{"score", 0.9}, {"outcome", "achieved"}}, kAna.token),
    201);
  w(s.Post("/v1/objectives/acme-retain/review", {{"score", 0.75}, {"outcome", "partially"}}, kAdmin.token),
    201);
  st.head = seq;
  return st;
}

// Progress by hand (SPEC §1), for the story's final state.
struct Expected {
  double hires = (6.0 - 0.0) / (8.0 - 0.0);             // latest by measured_at: 6
  double time_to_hire = (37.0 - 45.0) / (30.0 - 45.0);  // decreasing target, corrected 38 → 37
  double hr_hiring = (2 * hires + 1 * time_to_hire) / 3;  // weights 2 and 1
  double onboarding = (44.0 - 20.0) / (60.0 - 20.0);
  double eng_mentoring = (1.0 + 3.0 / 8.0) / 2;
  // No key results: the mean of its active aligned children.
  double acme_retain = (eng_mentoring + hr_hiring + onboarding) / 3;
};

// ---------------------------------------------------------------------------

TEST(OkrdUserStory, QuarterFromPlanToReviewReadsBackOnEveryRoute) {
  Okrd s(WithTokens());
  ASSERT_TRUE(s.Start());
  Story st = BuildStory(s);
  ASSERT_EQ(st.head, 43u);
  ASSERT_EQ(s.HeadSeq(), st.head);
  const Expected e;

  // A closed cycle refuses changes to its key results, and nothing is written.
  Reply late = s.Post("/v1/key-results/kr-hires/check-ins", {{"value", 7}}, kMaya.token);
  EXPECT_EQ(late.status, 409) << late;
  EXPECT_EQ(late.code(), "conflict");
  EXPECT_EQ(s.HeadSeq(), st.head);

  // Every answer carries the security headers and a request id; a usable
  // client request id is echoed.
  for (const char* path : {"/healthz", "/v1/units", "/v1/objectives/hr-hiring", "/v1/nope",
                           "/v1/objectives/NOPE"}) {
    Reply r = s.Get(path);
    EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff") << path;
    EXPECT_FALSE(r.header("X-Request-Id").empty()) << path;
  }
  EXPECT_EQ(s.Get("/v1/units", "", {{"X-Request-Id", "trace-42.a_b"}}).header("X-Request-Id"), "trace-42.a_b");
  EXPECT_EQ(s.Post("/v1/units", json::object(), kViewer.token).header("X-Content-Type-Options"), "nosniff");

  // Units, with pagination.
  Reply units = Want(s.Get("/v1/units"), 200);
  EXPECT_EQ(Ids(units.json["items"]),
            (Strings{"acme", "eng", "hr", "hr-ops", "lena", "platform", "sam", "ta"}));
  EXPECT_TRUE(units.json["next"].is_null());
  EXPECT_EQ(units.u("as_of_seq"), st.head);
  Strings paged;
  std::string cursor;
  int pages = 0;
  while (true) {
    Reply page = Want(s.Get("/v1/units?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor)), 200);
    ASSERT_TRUE(page.json["items"].is_array()) << page;
    EXPECT_LE(page.json["items"].size(), 2u);
    for (const auto& id : Ids(page.json["items"])) paged.push_back(id);
    ++pages;
    ASSERT_LE(pages, 10);
    if (page.json["next"].is_null()) break;
    cursor = page.json["next"].get<std::string>();
    EXPECT_EQ(cursor, std::to_string(st.head) + "." + paged.back());  // pinned to the first page's state
  }
  EXPECT_EQ(pages, 4);
  EXPECT_EQ(paged, Ids(units.json["items"]));

  Reply lena = Want(s.Get("/v1/units/lena"), 200);
  EXPECT_EQ(lena.json["kind"], "person");
  EXPECT_EQ(lena.json["parent"], "hr-ops");
  EXPECT_EQ(lena.json["email"], "lena@acme.example");
  EXPECT_EQ(lena.json["version"], 1);
  EXPECT_EQ(lena.header("ETag"), "\"1\"");
  EXPECT_EQ(lena.u("as_of_seq"), st.head);
  EXPECT_TRUE(Want(s.Get("/v1/units/acme"), 200).json["parent"].is_null());

  // Cycles.
  Reply cycles = Want(s.Get("/v1/cycles"), 200);
  EXPECT_EQ(Ids(cycles.json["items"]), (Strings{"fy", "q-now"}));
  EXPECT_EQ(cycles.u("as_of_seq"), st.head);
  Reply q = Want(s.Get("/v1/cycles/q-now"), 200);
  EXPECT_EQ(q.json["state"], "closed");
  EXPECT_EQ(q.json["parent"], "fy");
  EXPECT_EQ(q.json["starts"], cycles.json["items"][1]["starts"]);
  EXPECT_EQ(q.json["starts"].get<std::string>().size(), 10u);
  EXPECT_LT(q.json["starts"].get<std::string>(), q.json["ends"].get<std::string>());
  EXPECT_EQ(q.json["version"], 2);
  EXPECT_EQ(Want(s.Get("/v1/cycles/q-now?as_of=" + std::to_string(st.before_close)), 200).json["state"],
            "open");

  // Objectives and their filters.
  Reply list = Want(s.Get("/v1/objectives?cycle=q-now"), 200);
  EXPECT_EQ(Ids(list.json["items"]), (Strings{"acme-retain", "eng-mentoring", "hr-hiring", "ops-onboarding"}));
  EXPECT_EQ(list.u("as_of_seq"), st.head);
  for (const json& o : list.json["items"]) {
    if (o["id"] == "hr-hiring") {
      EXPECT_EQ(Ids(o["key_results"]), (Strings{"kr-hires", "kr-time-to-hire"}));
      EXPECT_DOUBLE_EQ(o["progress"].get<double>(), e.hr_hiring);
    }
  }
  EXPECT_EQ(Ids(Want(s.Get("/v1/objectives?cycle=q-now&include_archived=true"), 200).json["items"]),
            (Strings{"acme-retain", "eng-mentoring", "hr-hiring", "ops-onboarding", "ta-campus"}));
  EXPECT_EQ(Ids(Want(s.Get("/v1/objectives?owner=lena"), 200).json["items"]), (Strings{"ops-onboarding"}));
  EXPECT_EQ(Ids(Want(s.Get("/v1/objectives?owner=hr-ops"), 200).json["items"]), Strings{});
  EXPECT_EQ(Ids(Want(s.Get("/v1/objectives?cycle=fy"), 200).json["items"]), Strings{});
  EXPECT_EQ(Ids(Want(s.Get("/v1/objectives?owner=ta&include_archived=true"), 200).json["items"]),
            (Strings{"ta-campus"}));

  // One objective: progress by hand, ETag = version.
  Reply hiring = Want(s.Get("/v1/objectives/hr-hiring"), 200);
  EXPECT_DOUBLE_EQ(hiring.json["progress"].get<double>(), e.hr_hiring);
  EXPECT_EQ(hiring.json["version"], 3);  // created, commented, reviewed
  EXPECT_EQ(hiring.header("ETag"), "\"" + std::to_string(hiring.u("version")) + "\"");
  EXPECT_EQ(hiring.json["parents"], json::array({"acme-retain"}));
  EXPECT_EQ(hiring.json["review"]["outcome"], "partially");
  EXPECT_EQ(hiring.json["review"]["actor"], "maya");
  ASSERT_EQ(hiring.json["comments"].size(), 1u) << hiring;
  EXPECT_EQ(hiring.json["comments"][0]["author"], "maya");
  EXPECT_EQ(hiring.json["comments"][0]["text"], "Two offers out this week.");
  EXPECT_EQ(hiring.u("as_of_seq"), st.head);
  Reply mentoring = Want(s.Get("/v1/objectives/eng-mentoring"), 200);
  EXPECT_EQ(mentoring.json["parents"], json::array({"hr-hiring", "acme-retain"}));
  EXPECT_DOUBLE_EQ(mentoring.json["progress"].get<double>(), e.eng_mentoring);
  EXPECT_DOUBLE_EQ(Want(s.Get("/v1/objectives/acme-retain"), 200).json["progress"].get<double>(),
                   e.acme_retain);
  Reply onboarding = Want(s.Get("/v1/objectives/ops-onboarding"), 200);
  EXPECT_EQ(onboarding.json["owner"], "lena");
  EXPECT_DOUBLE_EQ(onboarding.json["progress"].get<double>(), e.onboarding);
  Reply campus = Want(s.Get("/v1/objectives/ta-campus"), 200);
  EXPECT_EQ(campus.json["state"], "archived");

  // One key result: current, progress, the moved target.
  Reply hires = Want(s.Get("/v1/key-results/kr-hires"), 200);
  EXPECT_EQ(hires.json["current"], 6);
  EXPECT_DOUBLE_EQ(hires.json["progress"].get<double>(), e.hires);
  EXPECT_EQ(hires.json["start"], 0);
  EXPECT_EQ(hires.json["target"], 8);
  EXPECT_EQ(hires.json["weight"], 2);
  EXPECT_EQ(hires.json["owner"], "hr");
  EXPECT_EQ(hires.json["check_in_count"], 5);
  EXPECT_EQ(hires.json["version"], 7);  // added, five check-ins, target moved
  EXPECT_EQ(hires.header("ETag"), "\"7\"");
  Reply tth = Want(s.Get("/v1/key-results/kr-time-to-hire"), 200);
  EXPECT_EQ(tth.json["current"], 37);  // as corrected
  EXPECT_DOUBLE_EQ(tth.json["progress"].get<double>(), e.time_to_hire);
  Reply boolean = Want(s.Get("/v1/key-results/kr-mentor-programme"), 200);
  EXPECT_EQ(boolean.json["metric"], "boolean");
  EXPECT_DOUBLE_EQ(boolean.json["progress"].get<double>(), 1.0);

  // The check-in series: oldest first by measured_at, not by seq.
  Reply series = Want(s.Get("/v1/key-results/kr-hires/check-ins"), 200);
  const json& items = series.json["items"];
  ASSERT_EQ(items.size(), 5u) << series;
  std::vector<double> values;
  for (const json& ci : items) values.push_back(ci["value"].get<double>());
  EXPECT_EQ(values, (std::vector<double>{1, 2, 3, 5, 6}));
  for (size_t i = 1; i < items.size(); ++i) {
    EXPECT_LT(items[i - 1]["measured_at"].get<std::string>(), items[i]["measured_at"].get<std::string>());
  }
  EXPECT_GT(items[0]["seq"].get<uint64_t>(), items[4]["seq"].get<uint64_t>());
  EXPECT_EQ(items[0]["note"], "Backfilled from the ATS export");
  EXPECT_EQ(items[4]["actor"], "maya");
  EXPECT_EQ(items[4]["status"], "on_track");
  EXPECT_EQ(items[4]["confidence"], 0.8);
  EXPECT_TRUE(series.json["next"].is_null());
  EXPECT_EQ(series.u("as_of_seq"), st.head);
  Reply first_two = Want(s.Get("/v1/key-results/kr-hires/check-ins?limit=2"), 200);
  EXPECT_EQ(first_two.json["items"].size(), 2u);
  EXPECT_EQ(first_two.json["next"], std::to_string(st.head) + ".2");
  Reply corrected = Want(s.Get("/v1/key-results/kr-time-to-hire/check-ins"), 200);
  ASSERT_EQ(corrected.json["items"].size(), 2u) << corrected;
  EXPECT_EQ(corrected.json["items"][1]["value"], 37);

  // The cascade: company → departments → teams → people, progress rolled up.
  Reply cascade = Want(s.Get("/v1/cascade?cycle=q-now"), 200);
  EXPECT_EQ(cascade.u("as_of_seq"), st.head);
  ASSERT_EQ(cascade.json["nodes"].size(), 1u) << cascade;
  const json& acme = cascade.json["nodes"][0];
  EXPECT_EQ(acme["unit"]["id"], "acme");
  EXPECT_EQ(Ids(acme["objectives"]), (Strings{"acme-retain"}));
  ASSERT_EQ(acme["children"].size(), 2u);
  EXPECT_EQ(acme["children"][0]["unit"]["id"], "eng");
  EXPECT_EQ(Ids(acme["children"][0]["objectives"]), (Strings{"eng-mentoring"}));
  const json& hr = acme["children"][1];
  EXPECT_EQ(hr["unit"]["id"], "hr");
  EXPECT_EQ(Ids(hr["objectives"]), (Strings{"hr-hiring"}));
  EXPECT_EQ(hr["objective_count"], 2);  // hr-hiring and, two levels down, ops-onboarding
  EXPECT_DOUBLE_EQ(hr["progress"].get<double>(), (e.hr_hiring + e.onboarding) / 2);
  ASSERT_EQ(hr["children"].size(), 2u);
  EXPECT_EQ(hr["children"][0]["unit"]["id"], "hr-ops");
  ASSERT_EQ(hr["children"][0]["children"].size(), 1u);
  EXPECT_EQ(hr["children"][0]["children"][0]["unit"]["id"], "lena");
  EXPECT_EQ(Ids(hr["children"][0]["children"][0]["objectives"]), (Strings{"ops-onboarding"}));
  EXPECT_EQ(acme["objective_count"], 4);
  EXPECT_DOUBLE_EQ(acme["progress"].get<double>(),
                   (e.acme_retain + e.eng_mentoring + e.hr_hiring + e.onboarding) / 4);
  Reply hr_only = Want(s.Get("/v1/cascade?cycle=q-now&root=hr"), 200);
  ASSERT_EQ(hr_only.json["nodes"].size(), 1u);
  EXPECT_EQ(hr_only.json["nodes"][0]["unit"]["id"], "hr");

  // Diff: the moved target and the owner change, field by field.
  Reply diff = Want(s.Get("/v1/diff?from=" + std::to_string(st.before_move) +
                          "&to=" + std::to_string(st.owner_change)),
                    200);
  EXPECT_EQ(diff.u("as_of_seq"), st.owner_change);
  EXPECT_EQ(diff.json["created"], json::array());
  ASSERT_EQ(diff.json["changed"].size(), 2u) << diff;
  const json& target = diff.json["changed"][0];
  EXPECT_EQ(target["entity"], "kr-hires");
  EXPECT_EQ(target["field"], "target");
  EXPECT_EQ(target["before"], 10);
  EXPECT_EQ(target["after"], 8);
  EXPECT_EQ(target["actor"], "maya");
  EXPECT_EQ(target["reason"], "Hiring budget cut by two heads");
  EXPECT_EQ(target["seq"], st.move);
  EXPECT_FALSE(target["recorded_at"].get<std::string>().empty());
  const json& owner = diff.json["changed"][1];
  EXPECT_EQ(owner["entity"], "ops-onboarding");
  EXPECT_EQ(owner["field"], "owner");
  EXPECT_EQ(owner["before"], "hr-ops");
  EXPECT_EQ(owner["after"], "lena");
  EXPECT_EQ(owner["reason"], "Lena runs onboarding");
  Reply known_then = Want(s.Get("/v1/diff?from=" + std::to_string(st.before_move) +
                                "&as_of=" + std::to_string(st.move)),
                          200);
  EXPECT_EQ(known_then.u("as_of_seq"), st.move);
  EXPECT_EQ(Ids(known_then.json["changed"], "entity"), (Strings{"kr-hires"}));
  Reply planned = Want(s.Get("/v1/diff?from=" + std::to_string(st.after_org) +
                             "&to=" + std::to_string(st.after_plan)),
                       200);
  std::set<std::string> created;
  for (const json& c : planned.json["created"]) created.insert(c["entity"].get<std::string>());
  EXPECT_EQ(created, (std::set<std::string>{"acme-retain", "hr-hiring", "ops-onboarding", "eng-mentoring",
                                            "ta-campus", "kr-hires", "kr-time-to-hire", "kr-onboarding",
                                            "kr-mentor-programme", "kr-mentored", "kr-campus-events"}));
  EXPECT_EQ(planned.json["changed"], json::array());
  Reply archived = Want(s.Get("/v1/diff?from=" + std::to_string(st.archive - 1) +
                              "&to=" + std::to_string(st.archive)),
                        200);
  EXPECT_EQ(Ids(archived.json["archived"], "entity"), (Strings{"ta-campus"}));
  EXPECT_EQ(archived.json["archived"][0]["reason"], "Campus season moved to spring");

  // The end-of-cycle review.
  Reply review = Want(s.Get("/v1/cycles/q-now/review"), 200);
  EXPECT_EQ(review.u("as_of_seq"), st.head);
  EXPECT_EQ(review.json["cycle"]["state"], "closed");
  ASSERT_EQ(review.json["moved_goalposts"].size(), 1u) << review;
  const json& moved = review.json["moved_goalposts"][0];
  EXPECT_EQ(moved["key_result"], "kr-hires");
  EXPECT_EQ(moved["field"], "target");
  EXPECT_EQ(moved["before"], 10);
  EXPECT_EQ(moved["after"], 8);
  EXPECT_EQ(moved["actor"], "maya");
  EXPECT_EQ(moved["reason"], "Hiring budget cut by two heads");
  EXPECT_EQ(Ids(review.json["objectives"]),
            (Strings{"acme-retain", "eng-mentoring", "hr-hiring", "ops-onboarding"}));
  EXPECT_EQ(Ids(review.json["archived"]), (Strings{"ta-campus"}));
  EXPECT_EQ(review.json["achieved"], json::array({"eng-mentoring"}));
  EXPECT_EQ(review.json["partially"], json::array({"acme-retain", "hr-hiring"}));
  EXPECT_EQ(review.json["missed"], json::array());
  EXPECT_EQ(review.json["unreviewed"], json::array({"ops-onboarding"}));
  EXPECT_EQ(review.json["check_ins"], 11);  // the archived objective's one is not counted
  for (const json& o : review.json["objectives"]) {
    if (o["id"] != "hr-hiring") continue;
    EXPECT_DOUBLE_EQ(o["computed_score"].get<double>(), e.hr_hiring);
    EXPECT_EQ(o["score"], 0.7);
    EXPECT_EQ(o["outcome"], "partially");
    EXPECT_EQ(o["reviewed_by"], "maya");
    ASSERT_EQ(o["key_results"].size(), 2u);
    const json& k = o["key_results"][0];
    EXPECT_EQ(k["id"], "kr-hires");
    EXPECT_EQ(k["start"], 0);
    EXPECT_EQ(k["original_target"], 10);
    EXPECT_EQ(k["target"], 8);
    EXPECT_EQ(k["final"], 6);
    EXPECT_DOUBLE_EQ(k["progress"].get<double>(), e.hires);
    EXPECT_EQ(k["check_ins"], 5);
  }
  Reply md = Want(s.Get("/v1/cycles/q-now/review?format=md"), 200);
  EXPECT_EQ(md.header("Content-Type"), "text/markdown; charset=utf-8");
  EXPECT_EQ(md.body.rfind("# Review of This quarter (q-now", 0), 0u) << md.body.substr(0, 200);
  EXPECT_NE(md.body.find("| kr-hires | target | 10 | 8 | maya |"), std::string::npos) << md.body;
  EXPECT_NE(md.body.find("Hiring budget cut by two heads"), std::string::npos);
  Reply csv = Want(s.Get("/v1/cycles/q-now/review?format=csv"), 200);
  EXPECT_EQ(csv.header("Content-Type"), "text/csv; charset=utf-8");
  EXPECT_EQ(csv.body.substr(0, csv.body.find("\r\n")),
            "cycle,objective,objective_title,owner,computed_score,score,outcome,key_result,"
            "key_result_title,start,original_target,target,final,progress,check_ins");
  EXPECT_NE(csv.body.find(",kr-hires,Engineers hired,0,10,8,6,0.75,5\r\n"), std::string::npos) << csv.body;

  // Lint: closed, so nothing is stale any more; the moved goalpost stays.
  Reply lint = Want(s.Get("/v1/lint?cycle=q-now"), 200);
  EXPECT_EQ(lint.u("as_of_seq"), st.head);
  ASSERT_EQ(lint.json["findings"].size(), 1u) << lint;
  EXPECT_EQ(lint.json["findings"][0]["rule"], "moved_goalposts");
  EXPECT_EQ(lint.json["findings"][0]["entity"], "kr-hires");
  Reply open_lint = Want(s.Get("/v1/lint?cycle=q-now&as_of=" + std::to_string(st.before_close)), 200);
  std::set<std::pair<std::string, std::string>> findings;
  for (const json& f : open_lint.json["findings"]) findings.insert({f["rule"].get<std::string>(), f["entity"].get<std::string>()});
  EXPECT_EQ(findings, (std::set<std::pair<std::string, std::string>>{
                          {"stale", "kr-hires"}, {"stale", "kr-time-to-hire"}, {"moved_goalposts", "kr-hires"}}))
      << open_lint;

  // Time travel: by seq and by RFC 3339 time, before the target moved.
  Reply then = Want(s.Get("/v1/key-results/kr-hires?as_of=" + std::to_string(st.before_move)), 200);
  EXPECT_EQ(then.json["target"], 10);
  EXPECT_DOUBLE_EQ(then.json["progress"].get<double>(), 0.6);
  EXPECT_EQ(then.json["version"], 6);
  EXPECT_EQ(then.u("as_of_seq"), st.before_move);
  Reply by_time = Want(s.Get("/v1/key-results/kr-hires?as_of=" + UrlEncode(st.time_before_move)), 200);
  EXPECT_EQ(by_time.json["target"], 10);
  EXPECT_EQ(by_time.u("as_of_seq"), st.before_move);
  Reply at_move = Want(s.Get("/v1/key-results/kr-hires?as_of=" + std::to_string(st.move)), 200);
  EXPECT_EQ(at_move.json["target"], 8);
  EXPECT_EQ(Want(s.Get("/v1/objectives/ta-campus?as_of=" + std::to_string(st.archive - 1)), 200).json["state"],
            "active");
  EXPECT_EQ(Want(s.Get("/v1/objectives/ops-onboarding?as_of=" + std::to_string(st.before_move)), 200)
                .json["owner"],
            "hr-ops");
  Reply early_units = Want(s.Get("/v1/units?as_of=3"), 200);
  EXPECT_EQ(Ids(early_units.json["items"]), (Strings{"acme", "eng", "hr"}));
  EXPECT_EQ(early_units.u("as_of_seq"), 3u);
  EXPECT_EQ(Want(s.Get("/v1/units?as_of=0"), 200).json["items"], json::array());
  Reply not_yet = s.Get("/v1/objectives/hr-hiring?as_of=" + std::to_string(st.after_org));
  EXPECT_EQ(not_yet.status, 404) << not_yet;
  EXPECT_EQ(Want(s.Get("/v1/cascade?cycle=q-now&as_of=" + std::to_string(st.before_move)), 200).u("as_of_seq"),
            st.before_move);
  EXPECT_EQ(Want(s.Get("/v1/cycles/q-now/review?as_of=" + std::to_string(st.before_close)), 200)
                .json["unreviewed"]
                .size(),
            4u);

  // at=: the value as measured at a moment, as known at as_of.
  Reply at = Want(s.Get("/v1/key-results/kr-hires?at=" + UrlEncode(TimeIn(-30))), 200);
  EXPECT_EQ(at.json["current"], 3);  // measured 35 days ago; the next one 28 days ago
  EXPECT_DOUBLE_EQ(at.json["progress"].get<double>(), 3.0 / 8.0);
  Reply at_then = Want(s.Get("/v1/key-results/kr-hires?at=" + UrlEncode(TimeIn(-30)) +
                             "&as_of=" + std::to_string(st.before_move)),
                       200);
  EXPECT_EQ(at_then.json["current"], 3);
  EXPECT_DOUBLE_EQ(at_then.json["progress"].get<double>(), 0.3);
  Reply at_checkins = Want(s.Get("/v1/key-results/kr-hires/check-ins?at=" + UrlEncode(TimeIn(-30))), 200);
  EXPECT_EQ(at_checkins.json["items"].size(), 3u);

  // Audit reads come from the log itself.
  Reply events = Want(s.Get("/v1/events?limit=1000", kAuditor.token), 200);
  ASSERT_EQ(events.json["items"].size(), st.head) << events;
  EXPECT_TRUE(events.json["next"].is_null());
  EXPECT_EQ(events.u("as_of_seq"), st.head);
  for (size_t i = 0; i < events.json["items"].size(); ++i) {
    const json& ev = events.json["items"][i];
    EXPECT_EQ(ev["seq"], i + 1);
    EXPECT_EQ(ev["prev_hash"].get<std::string>().size(), 64u);
  }
  EXPECT_EQ(events.json["items"][0]["prev_hash"], std::string(64, '0'));
  EXPECT_EQ(events.json["items"][0]["type"], "unit.created");
  EXPECT_EQ(events.json["items"][0]["actor"], "root");
  Reply kr_events = Want(s.Get("/v1/events?entity=kr-hires", kAuditor.token), 200);
  std::vector<std::string> types;
  for (const json& ev : kr_events.json["items"]) types.push_back(ev["type"].get<std::string>());
  EXPECT_EQ(types, (Strings{"key_result.added", "check_in.recorded", "check_in.recorded", "check_in.recorded",
                            "check_in.recorded", "check_in.recorded", "key_result.target_changed"}));
  Reply by_ana = Want(s.Get("/v1/events?actor=ana", kAuditor.token), 200);
  EXPECT_EQ(by_ana.json["items"].size(), 7u);
  for (const json& ev : by_ana.json["items"]) EXPECT_EQ(ev["actor"], "ana");
  Reply moves = Want(s.Get("/v1/events?type=key_result.target_changed", kAdmin.token), 200);
  ASSERT_EQ(moves.json["items"].size(), 1u) << moves;
  EXPECT_EQ(moves.json["items"][0]["seq"], st.move);
  EXPECT_EQ(moves.json["items"][0]["entity"], "kr-hires");
  EXPECT_EQ(moves.json["items"][0]["reason"], "Hiring budget cut by two heads");
  EXPECT_EQ(moves.json["items"][0]["data"]["before"], 10);
  EXPECT_EQ(moves.json["items"][0]["data"]["after"], 8);
  Reply page1 = Want(s.Get("/v1/events?limit=5", kAuditor.token), 200);
  EXPECT_EQ(Ids(page1.json["items"], "entity"), (Strings{"acme", "hr", "eng", "hr-ops", "ta"}));
  ASSERT_TRUE(page1.json["next"].is_string()) << page1;
  Reply page2 = Want(s.Get("/v1/events?limit=5&after=" + page1.json["next"].get<std::string>(),
                           kAuditor.token),
                     200);
  ASSERT_EQ(page2.json["items"].size(), 5u);
  EXPECT_EQ(page2.json["items"][0]["seq"], 6);
  Reply tail = Want(s.Get("/v1/events?limit=5&after=" + std::to_string(st.head - 3), kAuditor.token), 200);
  EXPECT_EQ(tail.json["items"].size(), 3u);
  EXPECT_TRUE(tail.json["next"].is_null());

  Reply history = Want(s.Get("/v1/history/kr-hires", kAuditor.token), 200);
  ASSERT_EQ(history.json["items"].size(), 7u) << history;
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(history.json["items"][i]["version"], i + 1);
    EXPECT_EQ(history.json["items"][i]["entity"], "kr-hires");
    if (i > 0) {
      EXPECT_LT(history.json["items"][i - 1]["seq"], history.json["items"][i]["seq"]);
    }
  }
  EXPECT_EQ(history.json["items"][6]["type"], "key_result.target_changed");

  Reply verify = Want(s.Get("/v1/audit/verify", kAuditor.token), 200);
  EXPECT_EQ(verify.json["ok"], true);
  EXPECT_EQ(verify.json["events"], st.head);
  EXPECT_TRUE(verify.json["first_bad_seq"].is_null());
  EXPECT_EQ(verify.json["head_hash"].get<std::string>().size(), 64u);

  // Liveness, metrics, the API description.
  Reply health = Want(s.Get("/healthz"), 200);
  EXPECT_EQ(health.json["status"], "ok");
  EXPECT_EQ(health.json["head_seq"], st.head);
  EXPECT_EQ(health.json["projected_seq"], st.head);
  Reply metrics = Want(s.Get("/metrics"), 200);
  EXPECT_EQ(metrics.header("Content-Type").rfind("text/plain", 0), 0u) << metrics.header("Content-Type");
  EXPECT_NE(metrics.body.find("okrd_requests_total{"), std::string::npos);
  EXPECT_NE(metrics.body.find("\nokrd_head_seq " + std::to_string(st.head) + "\n"), std::string::npos)
      << metrics.body;
  Reply openapi = Want(s.Get("/v1/openapi.json"), 200);
  ASSERT_TRUE(openapi.json.is_object()) << openapi;
  EXPECT_EQ(openapi.json["openapi"].get<std::string>().rfind("3.", 0), 0u);
  EXPECT_TRUE(openapi.json["paths"].is_object());

  // Every state read says which seq it reflects, now and in the past.
  for (const char* path : {"/v1/units", "/v1/units/hr", "/v1/cycles", "/v1/cycles/q-now", "/v1/objectives",
                           "/v1/objectives/hr-hiring", "/v1/key-results/kr-hires",
                           "/v1/key-results/kr-hires/check-ins", "/v1/cascade", "/v1/diff",
                           "/v1/cycles/q-now/review", "/v1/lint"}) {
    SCOPED_TRACE(path);
    EXPECT_EQ(Want(s.Get(path), 200).u("as_of_seq"), st.head);
    std::string sep = std::string(path).find('?') == std::string::npos ? "?" : "&";
    EXPECT_EQ(Want(s.Get(path + sep + "as_of=" + std::to_string(st.before_close)), 200).u("as_of_seq"),
              st.before_close);
  }

  // Reading wrote nothing.
  EXPECT_EQ(s.HeadSeq(), st.head);
  EXPECT_TRUE(s.Stop());
}

// ---------------------------------------------------------------------------

struct Caller {
  const char* name;
  std::string token;           // "" : none
  httplib::Headers headers;    // e.g. a malformed Authorization
};

struct WriteRoute {
  const char* name;
  bool admin_only;             // units and cycles
  int success;                 // 200 or 201
  // Makes a fresh request (preparing its subject as the admin when needed).
  std::function<std::tuple<std::string, std::string, json>(const Okrd&, int)> make;
};

TEST(OkrdAuthorisation, EveryWriteRouteAgainstEveryRole) {
  Okrd s(WithTokens());
  ASSERT_TRUE(s.Start());
  BuildOrg(s);
  const std::string& admin = kAdmin.token;
  // The subjects: owned in HR (Maya's scope), never in Ana's.
  Want(s.Post("/v1/objectives", {{"id", "hr-obj"}, {"cycle", "q-now"}, {"owner", "hr-ops"}, {"title", "HR"}},
              admin),
       201);
  Want(s.Post("/v1/key-results", {{"id", "hr-kr"}, {"objective", "hr-obj"}, {"title", "KR"}, {"target", 10}},
              admin),
       201);
  auto fresh_objective = [&](const Okrd& o, int n) {
    std::string id = "obj-" + std::to_string(n);
    Want(o.Post("/v1/objectives", {{"id", id}, {"cycle", "q-now"}, {"owner", "hr-ops"}, {"title", "Fresh"}},
                admin),
         201);
    return id;
  };
  auto fresh_cycle = [&](const Okrd& o, int n) {
    std::string id = "cy-" + std::to_string(n);
    Want(o.Post("/v1/cycles", {{"id", id}, {"name", "Cycle"}, {"starts", DateIn(-5)}, {"ends", DateIn(5)}},
                admin),
         201);
    return id;
  };
  using T = std::tuple<std::string, std::string, json>;
  std::vector<WriteRoute> routes = {
      {"create unit", true, 201, [](const Okrd&, int n) {
         return T{"POST", "/v1/units",
                  {{"id", "u-" + std::to_string(n)}, {"kind", "team"}, {"name", "Team"}, {"parent", "hr"}}};
       }},
      {"update unit", true, 200, [](const Okrd&, int n) {
         return T{"PATCH", "/v1/units/ta", {{"name", "Talent " + std::to_string(n)}}};
       }},
      {"retire unit", true, 200, [&](const Okrd& o, int n) {
         std::string id = "leaf-" + std::to_string(n);
         Want(o.Post("/v1/units", {{"id", id}, {"kind", "team"}, {"name", "Leaf"}, {"parent", "hr"}}, admin), 201);
         return T{"DELETE", "/v1/units/" + id, nullptr};
       }},
      {"create cycle", true, 201, [](const Okrd&, int n) {
         return T{"POST", "/v1/cycles",
                  {{"id", "new-" + std::to_string(n)}, {"name", "N"}, {"starts", DateIn(1)}, {"ends", DateIn(9)}}};
       }},
      {"update cycle", true, 200, [](const Okrd&, int n) {
         return T{"PATCH", "/v1/cycles/fy", {{"name", "FY " + std::to_string(n)}}};
       }},
      {"close cycle", true, 200, [&](const Okrd& o, int n) {
         return T{"POST", "/v1/cycles/" + fresh_cycle(o, n) + "/close", json::object()};
       }},
      {"reopen cycle", true, 200, [&](const Okrd& o, int n) {
         std::string id = fresh_cycle(o, n);
         Want(o.Post("/v1/cycles/" + id + "/close", json::object(), admin), 200);
         return T{"POST", "/v1/cycles/" + id + "/reopen", json::object()};
       }},
      {"create objective", false, 201, [](const Okrd&, int n) {
         return T{"POST", "/v1/objectives",
                  {{"id", "o-" + std::to_string(n)}, {"cycle", "q-now"}, {"owner", "hr-ops"},
                   {"title", "New"}, {"parents", {"hr-obj"}}}};
       }},
      {"update objective", false, 200, [](const Okrd&, int n) {
         return T{"PATCH", "/v1/objectives/hr-obj", {{"title", "HR " + std::to_string(n)}}};
       }},
      {"archive objective", false, 200, [&](const Okrd& o, int n) {
         return T{"DELETE", "/v1/objectives/" + fresh_objective(o, n), nullptr};
       }},
      {"comment on objective", false, 201, [](const Okrd&, int n) {
         return T{"POST", "/v1/objectives/hr-obj/comments", {{"text", "Note " + std::to_string(n)}}};
       }},
      {"review objective", false, 201, [](const Okrd&, int) {
         return T{"POST", "/v1/objectives/hr-obj/review", {{"score", 0.5}, {"outcome", "partially"}}};
       }},
      {"create key result", false, 201, [](const Okrd&, int n) {
         return T{"POST", "/v1/key-results",
                  {{"id", "k-" + std::to_string(n)}, {"objective", "hr-obj"}, {"title", "K"}, {"target", 5}}};
       }},
      {"update key result", false, 200, [](const Okrd&, int n) {
         return T{"PATCH", "/v1/key-results/hr-kr", {{"title", "KR " + std::to_string(n)}}};
       }},
      {"remove key result", false, 200, [&](const Okrd& o, int n) {
         std::string id = "gone-" + std::to_string(n);
         Want(o.Post("/v1/key-results", {{"id", id}, {"objective", "hr-obj"}, {"title", "K"}, {"target", 5}},
                     admin),
              201);
         return T{"DELETE", "/v1/key-results/" + id, nullptr};
       }},
      {"check in", false, 201, [](const Okrd&, int n) {
         return T{"POST", "/v1/key-results/hr-kr/check-ins", {{"value", n % 10}}};
       }},
      {"correct a check-in", false, 201, [&](const Okrd& o, int n) {
         std::string id = "ci-" + std::to_string(n);
         Want(o.Post("/v1/key-results/hr-kr/check-ins", {{"id", id}, {"value", 1}}, admin), 201);
         return T{"POST", "/v1/key-results/hr-kr/corrections", {{"corrects", id}, {"value", 2}}};
       }},
      {"comment on key result", false, 201, [](const Okrd&, int n) {
         return T{"POST", "/v1/key-results/hr-kr/comments", {{"text", "Note " + std::to_string(n)}}};
       }},
  };
  const std::vector<Caller> callers = {
      {"no token", "", {}},
      {"wrong token", "tok-nobody-000000", {}},
      {"not a bearer", "", {{"Authorization", "Basic cm9vdDpyb290"}}},
      {"viewer", kViewer.token, {}},
      {"auditor", kAuditor.token, {}},
      {"editor out of scope", kAna.token, {}},
      {"editor in scope", kMaya.token, {}},
      {"admin", kAdmin.token, {}},
  };
  int n = 0, refusals = 0, successes = 0;
  for (const WriteRoute& route : routes) {
    for (const Caller& caller : callers) {
      SCOPED_TRACE(std::string(route.name) + " as " + caller.name);
      auto [method, path, body] = route.make(s, ++n);
      uint64_t head = s.HeadSeq();
      Reply r = s.Request(method, path, body.is_null() ? "" : body.dump(), caller.token, caller.headers);
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

  // Scope follows ownership both ways: an editor cannot hand an objective
  // out of its scope, nor attach a key result owned outside it.
  uint64_t head = s.HeadSeq();
  EXPECT_EQ(s.Patch("/v1/objectives/hr-obj", {{"owner", "platform"}}, kMaya.token).status, 403);
  EXPECT_EQ(s.Post("/v1/key-results",
                   {{"id", "k-mixed"}, {"objective", "hr-obj"}, {"title", "K"}, {"target", 1}, {"owner", "platform"}},
                   kMaya.token)
                .status,
            403);
  EXPECT_EQ(s.Post("/v1/objectives", {{"id", "o-top"}, {"cycle", "q-now"}, {"owner", "acme"}, {"title", "Top"}},
                   kMaya.token)
                .status,
            403);
  EXPECT_EQ(s.HeadSeq(), head);

  // The actor is the token's principal, never anything a body could say.
  Reply by_maya = Want(s.Get("/v1/events?entity=hr-kr&type=comment.added", kAuditor.token), 200);
  ASSERT_FALSE(by_maya.json["items"].empty());
  EXPECT_EQ(by_maya.json["items"][0]["actor"], "maya");

  // Audit reads: auditor and admin only.
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
  EXPECT_TRUE(s.Stop());
}

TEST(OkrdAuthorisation, WithoutTokensFileEveryWriteIsForbidden) {
  Okrd s(OkrdOptions{std::nullopt, {}});
  ASSERT_TRUE(s.Start());
  for (auto [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"POST", "/v1/units"}, {"POST", "/v1/cycles"}, {"POST", "/v1/objectives"},
           {"PATCH", "/v1/objectives/x"}, {"DELETE", "/v1/key-results/x"},
           {"POST", "/v1/key-results/x/check-ins"}}) {
    SCOPED_TRACE(method + " " + path);
    Reply r = s.Request(method, path, R"({"id":"acme","kind":"company","name":"Acme"})");
    EXPECT_EQ(r.status, 403) << r;
    EXPECT_EQ(r.code(), "forbidden");
    // A token cannot be valid when there are none.
    EXPECT_EQ(s.Request(method, path, "{}", kAdmin.token).status, 401);
  }
  EXPECT_EQ(s.HeadSeq(), 0u);
  EXPECT_EQ(Want(s.Get("/v1/units"), 200).json["items"], json::array());
  EXPECT_EQ(s.Get("/v1/events").status, 401);
  EXPECT_TRUE(s.Stop());
}

TEST(OkrdAuthorisation, PrivateReadsNeedAToken) {
  Okrd s(WithTokens({"--private"}));
  ASSERT_TRUE(s.Start());
  BuildOrg(s);
  for (const char* path : {"/v1/units", "/v1/units/hr", "/v1/cycles", "/v1/cycles/q-now", "/v1/objectives",
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

struct BadCase {
  const char* name;
  std::string method, path, body;
  httplib::Headers headers;
  int status;
  std::string code;
  std::string field;  // "" : the answer names no field
};

TEST(OkrdBadInput, EveryRefusalWritesNothingAndOkrdStaysUp) {
  Okrd s(WithTokens());
  ASSERT_TRUE(s.Start());
  BuildOrg(s);
  const std::string& admin = kAdmin.token;
  Want(s.Post("/v1/objectives", {{"id", "o-a"}, {"cycle", "q-now"}, {"owner", "hr"}, {"title", "A"}}, admin), 201);
  Want(s.Post("/v1/objectives",
              {{"id", "o-b"}, {"cycle", "q-now"}, {"owner", "hr-ops"}, {"title", "B"}, {"parents", {"o-a"}}}, admin),
       201);
  Want(s.Post("/v1/key-results", {{"id", "kr-num"}, {"objective", "o-a"}, {"title", "N"}, {"target", 10}}, admin),
       201);
  Want(s.Post("/v1/key-results",
              {{"id", "kr-bool"}, {"objective", "o-a"}, {"title", "B"}, {"metric", "boolean"}, {"target", 1}}, admin),
       201);
  Want(s.Post("/v1/key-results/kr-num/check-ins", {{"id", "ci-first"}, {"value", 1}}, admin), 201);
  // A closed cycle with an objective and a key result.
  Want(s.Post("/v1/cycles",
              {{"id", "q-old"}, {"name", "Old"}, {"starts", DateIn(-150)}, {"ends", DateIn(-61)}, {"parent", "fy"}},
              admin),
       201);
  Want(s.Post("/v1/objectives", {{"id", "o-old"}, {"cycle", "q-old"}, {"owner", "hr"}, {"title", "Old"}}, admin),
       201);
  Want(s.Post("/v1/key-results", {{"id", "kr-old"}, {"objective", "o-old"}, {"title", "Old"}, {"target", 3}}, admin),
       201);
  Want(s.Post("/v1/cycles/q-old/close", json::object(), admin), 200);
  // An idempotent write whose key is then reused with another body.
  Want(s.Post("/v1/key-results/kr-num/check-ins", {{"value", 2}}, admin, {{"Idempotency-Key", "idem-1"}}), 201);

  const std::string obj = "/v1/objectives";
  const std::string ci = "/v1/key-results/kr-num/check-ins";
  auto objective = [](const std::string& id, const std::string& title) {
    return json{{"id", id}, {"cycle", "q-now"}, {"owner", "hr"}, {"title", title}}.dump();
  };
  std::string huge = objective("big", std::string((1u << 20) + 10, 'a'));
  std::string deep = R"({"title":)" + std::string(40, '[') + std::string(40, ']') + "}";
  std::string long_id(65, 'a');
  const std::vector<BadCase> cases = {
      {"malformed JSON", "POST", obj, R"({"id":"x",)", {}, 400, "malformed", ""},
      {"truncated string", "POST", obj, R"({"id":"x)", {}, 400, "malformed", ""},
      {"body is a list", "POST", obj, R"(["id","x"])", {}, 400, "malformed", ""},
      {"body is a string", "POST", obj, R"("o-x")", {}, 400, "malformed", ""},
      {"body is a number", "POST", ci, "42", {}, 400, "malformed", ""},
      {"title is a number", "POST", obj, R"({"id":"x","cycle":"q-now","owner":"hr","title":5})", {}, 400,
       "malformed", "title"},
      {"parents is a string", "POST", obj,
       R"({"id":"x","cycle":"q-now","owner":"hr","title":"T","parents":"o-a"})", {}, 400, "malformed", "parents"},
      {"value is a string", "POST", ci, R"({"value":"x"})", {}, 400, "malformed", "value"},
      {"reason is a number", "POST", ci, R"({"value":1,"reason":7})", {}, 400, "malformed", "reason"},
      {"NaN literal", "POST", ci, R"({"value":NaN})", {}, 400, "malformed", ""},
      {"Infinity literal", "POST", ci, R"({"value":Infinity})", {}, 400, "malformed", ""},
      {"-Infinity literal", "POST", ci, R"({"value":-Infinity})", {}, 400, "malformed", ""},
      {"invalid UTF-8", "POST", obj, "{\"id\":\"x\",\"cycle\":\"q-now\",\"owner\":\"hr\",\"title\":\"\xff\xfe\"}", {},
       400, "malformed", ""},
      {"1e400 value", "POST", ci, R"({"value":1e400})", {}, 422, "invalid", "value"},
      {"1e400 target", "POST", "/v1/key-results", R"({"id":"k-inf","objective":"o-a","title":"T","target":1e400})",
       {}, 422, "invalid", "target"},
      {"-1e400 score", "POST", "/v1/objectives/o-a/review", R"({"score":-1e400,"outcome":"missed"})", {}, 422,
       "invalid", "score"},
      {"body over 1 MiB", "POST", obj, huge, {}, 413, "too_large", ""},
      {"title of 201 characters", "POST", obj, objective("x", std::string(201, 't')), {}, 422, "invalid", "title"},
      {"title of 201 two-byte characters", "POST", obj, objective("x", [] {
         std::string s;
         for (int i = 0; i < 201; ++i) s += "\xc3\xa9";
         return s;
       }()),
       {}, 422, "invalid", "title"},
      {"title only blanks", "POST", obj, objective("x", "   "), {}, 422, "invalid", "title"},
      {"comment of 10 001 characters", "POST", "/v1/objectives/o-a/comments",
       json{{"text", std::string(10'001, 'c')}}.dump(), {}, 422, "invalid", "text"},
      {"description of 10 001 characters", "POST", obj,
       json{{"id", "x"}, {"cycle", "q-now"}, {"owner", "hr"}, {"title", "T"}, {"description", std::string(10'001, 'd')}}
           .dump(),
       {}, 422, "invalid", "description"},
      {"control character in a title", "POST", obj, objective("x", "bell\x07title"), {}, 422, "invalid", "title"},
      {"line break in a title", "POST", obj, objective("x", "two\nlines"), {}, 422, "invalid", "title"},
      {"path-like id in body", "POST", obj, objective("../x", "T"), {}, 422, "invalid", "id"},
      {"uppercase id in body", "POST", obj, objective("O-UPPER", "T"), {}, 422, "invalid", "id"},
      {"65-character id in body", "POST", obj, objective(long_id, "T"), {}, 422, "invalid", "id"},
      {"NUL in an id in body", "POST", obj, objective(std::string("a\0b", 3), "T"), {}, 422, "invalid", "id"},
      {"path-like id in path", "GET", "/v1/objectives/%2E%2E%2Fx", "", {}, 404, "not_found", ""},
      {"path-like id in a write path", "POST", "/v1/key-results/%2E%2E%2Fx/check-ins", R"({"value":1})", {}, 404,
       "not_found", ""},
      {"NUL id in path", "GET", "/v1/objectives/%00", "", {}, 400, "malformed", "id"},
      {"uppercase id in path", "GET", "/v1/objectives/O-A", "", {}, 400, "malformed", "id"},
      {"65-character id in path", "GET", "/v1/objectives/" + long_id, "", {}, 400, "malformed", "id"},
      {"uppercase id in a write path", "PATCH", "/v1/objectives/O-A", R"({"title":"T"})", {}, 400, "malformed",
       "id"},
      {"unknown objective", "GET", "/v1/objectives/" + std::string(64, 'a'), "", {}, 404, "not_found", "id"},
      {"check-in on an unknown key result", "POST", "/v1/key-results/nope/check-ins", R"({"value":1})", {}, 404,
       "not_found", "key_result"},
      {"unknown field", "POST", ci, R"({"value":1,"colour":"red"})", {}, 400, "malformed", "colour"},
      {"actor in a body", "POST", ci, R"({"value":1,"actor":"someone-else"})", {}, 400, "malformed", "actor"},
      {"as_of garbage", "GET", "/v1/units?as_of=yesterday", "", {}, 400, "malformed", "as_of"},
      {"as_of beyond the head", "GET", "/v1/units?as_of=999999", "", {}, 422, "invalid", "as_of"},
      {"as_of in the future", "GET", "/v1/objectives?as_of=" + UrlEncode(TimeIn(2)), "", {}, 422, "invalid",
       "as_of"},
      {"at garbage", "GET", "/v1/key-results/kr-num?at=soon", "", {}, 400, "malformed", "at"},
      {"diff from after to", "GET", "/v1/diff?from=5&to=3", "", {}, 422, "invalid", "from"},
      {"diff to after as_of", "GET", "/v1/diff?to=5&as_of=3", "", {}, 422, "invalid", "to"},
      {"negative limit", "GET", "/v1/units?limit=-1", "", {}, 400, "malformed", "limit"},
      {"zero limit", "GET", "/v1/objectives?limit=0", "", {}, 400, "malformed", "limit"},
      {"limit above 1000", "GET", "/v1/units?limit=1001", "", {}, 400, "malformed", "limit"},
      {"huge limit", "GET", "/v1/events?limit=99999999999999999999999", "", {}, 400, "malformed", "limit"},
      {"include_archived not a boolean", "GET", "/v1/objectives?include_archived=maybe", "", {}, 400, "malformed",
       "include_archived"},
      {"unknown review format", "GET", "/v1/cycles/q-now/review?format=pdf", "", {}, 400, "malformed", "format"},
      {"deep nesting", "POST", obj, deep, {}, 400, "malformed", ""},
      {"URI over 8 KiB", "GET", "/v1/units?cursor=" + std::string(9000, 'a'), "", {}, 414, "uri_too_long", ""},
      {"header over 8 KiB", "GET", "/v1/units", "", {{"X-Padding", std::string(9000, 'p')}}, 400, "malformed", ""},
      {"cursor not an id", "GET", "/v1/units?cursor=%2E%2E%2Fx", "", {}, 400, "malformed", "cursor"},
      {"duplicate id", "POST", obj, objective("o-a", "Again"), {}, 409, "already_exists", "id"},
      {"id taken by another kind", "POST", "/v1/units", R"({"id":"kr-num","kind":"team","name":"T","parent":"hr"})",
       {}, 409, "already_exists", "id"},
      {"cyclic alignment", "PATCH", "/v1/objectives/o-a", R"({"parents":["o-b"]})", {}, 422, "invalid", "parents"},
      {"aligned to itself", "PATCH", "/v1/objectives/o-a", R"({"parents":["o-a"]})", {}, 422, "invalid", "parents"},
      {"unit under itself", "PATCH", "/v1/units/hr", R"({"parent":"hr-ops"})", {}, 422, "invalid", "parent"},
      {"check-in in a closed cycle", "POST", "/v1/key-results/kr-old/check-ins", R"({"value":1})", {}, 409,
       "conflict", "cycle"},
      {"objective in a closed cycle", "POST", obj,
       R"({"id":"o-late","cycle":"q-old","owner":"hr","title":"Late"})", {}, 409, "conflict", "cycle"},
      {"retitle in a closed cycle", "PATCH", "/v1/objectives/o-old", R"({"title":"Renamed"})", {}, 409, "conflict",
       "cycle"},
      {"If-Match garbage", "PATCH", "/v1/objectives/o-a", R"({"title":"T2"})", {{"If-Match", "three"}}, 400,
       "malformed", "If-Match"},
      {"If-Match stale", "POST", ci, R"({"value":3})", {{"If-Match", "1"}}, 412, "version_mismatch", "If-Match"},
      {"Idempotency-Key reused with another body", "POST", ci, R"({"value":9})", {{"Idempotency-Key", "idem-1"}},
       422, "invalid", "Idempotency-Key"},
      {"Idempotency-Key too long", "POST", ci, R"({"value":3})", {{"Idempotency-Key", std::string(201, 'k')}}, 400,
       "malformed", "Idempotency-Key"},
      {"missing title", "POST", obj, R"({"id":"x","cycle":"q-now","owner":"hr"})", {}, 400, "malformed", "title"},
      {"missing value", "POST", ci, R"({"note":"forgot"})", {}, 400, "malformed", "value"},
      {"empty body", "POST", obj, "", {}, 400, "malformed", "id"},
      {"unknown route", "GET", "/v1/nothing-here", "", {}, 404, "not_found", ""},
      {"unknown method on a route", "PUT", "/v1/objectives/o-a", R"({"title":"T"})", {}, 404, "not_found", ""},
      {"measured_at in the future", "POST", ci, json{{"value", 3}, {"measured_at", TimeIn(1)}}.dump(), {}, 422,
       "invalid", "measured_at"},
      {"measured_at not a time", "POST", ci, R"({"value":3,"measured_at":"last Tuesday"})", {}, 400, "malformed",
       "measured_at"},
      {"boolean value 0.5", "POST", "/v1/key-results/kr-bool/check-ins", R"({"value":0.5})", {}, 422, "invalid",
       "value"},
      {"confidence above 1", "POST", ci, R"({"value":3,"confidence":1.5})", {}, 422, "invalid", "confidence"},
      {"unknown status", "POST", ci, R"({"value":3,"status":"great"})", {}, 422, "invalid", "status"},
      {"target equal to start", "POST", "/v1/key-results",
       R"({"id":"k-flat","objective":"o-a","title":"Flat","start":5,"target":5})", {}, 422, "invalid", "target"},
      {"moving the target onto the start", "PATCH", "/v1/key-results/kr-num", R"({"target":0})", {}, 422, "invalid",
       "target"},
      {"weight zero", "POST", "/v1/key-results", R"({"id":"k-w","objective":"o-a","title":"W","target":5,"weight":0})",
       {}, 422, "invalid", "weight"},
      {"key result of an unknown objective", "POST", "/v1/key-results",
       R"({"id":"k-o","objective":"nope","title":"K","target":5})", {}, 422, "invalid", "objective"},
      {"objective of an unknown owner", "POST", obj, R"({"id":"x","cycle":"q-now","owner":"nobody","title":"T"})",
       {}, 422, "invalid", "owner"},
      {"cycle ending before it starts", "POST", "/v1/cycles",
       json{{"id", "c-x"}, {"name", "X"}, {"starts", DateIn(5)}, {"ends", DateIn(1)}}.dump(), {}, 422, "invalid",
       "ends"},
      {"correction of an unknown check-in", "POST", "/v1/key-results/kr-num/corrections",
       R"({"corrects":"ci-nope","value":1})", {}, 422, "invalid", "corrects"},
      {"outcome unknown", "POST", "/v1/objectives/o-a/review", R"({"score":0.5,"outcome":"meh"})", {}, 422,
       "invalid", "outcome"},
      {"Authorization not a bearer", "POST", ci, R"({"value":3})", {{"Authorization", "Token abc"}}, 401,
       "unauthorized", ""},
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
    ASSERT_EQ(alive.status, 200) << "okrd stopped answering after: " << c.name << "\n" << s.LogTail();
  }

  // A title of exactly 200 characters and any Unicode are accepted and read back byte for byte.
  const std::string unicode = "Zufriedenheit ↑ 🚀 — équipe «RH» 日本語 ✓";
  uint64_t head = s.HeadSeq();
  Reply created = s.Post(obj, {{"id", "o-unicode"}, {"cycle", "q-now"}, {"owner", "hr"}, {"title", unicode}}, admin);
  EXPECT_EQ(created.status, 201) << created;
  EXPECT_EQ(created.json["title"], unicode);
  EXPECT_EQ(Want(s.Get("/v1/objectives/o-unicode"), 200).json["title"], unicode);
  std::string two_hundred;
  for (int i = 0; i < 200; ++i) two_hundred += "é";
  Want(s.Post(obj, {{"id", "o-200"}, {"cycle", "q-now"}, {"owner", "hr"}, {"title", two_hundred}}, admin), 201);
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

TEST(OkrdConcurrency, IfMatchLetsExactlyOneWriterWinAndPlainWritesAllLand) {
  constexpr int kThreads = 32, kRounds = 3, kPerThread = 8;
  Okrd s(WithTokens());
  ASSERT_TRUE(s.Start());
  BuildOrg(s);
  Want(s.Post("/v1/objectives", {{"id", "o-c"}, {"cycle", "q-now"}, {"owner", "hr"}, {"title", "C"}},
              kAdmin.token),
       201);
  Want(s.Post("/v1/key-results", {{"id", "kr-c"}, {"objective", "o-c"}, {"title", "C"}, {"target", 1000}},
              kAdmin.token),
       201);
  const std::string kr = "/v1/key-results/kr-c";

  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    uint64_t head = s.HeadSeq();
    std::barrier all_read(kThreads);
    std::vector<uint64_t> seen(kThreads);
    std::vector<Reply> replies(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        seen[t] = s.Get(kr).u("version");
        all_read.arrive_and_wait();  // nobody writes before everyone has read
        replies[t] = s.Post(kr + "/check-ins", {{"value", round * 100 + t}}, t % 2 ? kMaya.token : kAdmin.token,
                            {{"If-Match", std::to_string(seen[t])}});
      });
    }
    for (auto& th : threads) th.join();
    int won = 0, lost = 0;
    for (int t = 0; t < kThreads; ++t) {
      EXPECT_EQ(seen[t], static_cast<uint64_t>(1 + round));
      if (replies[t].status == 201) {
        ++won;
        EXPECT_EQ(replies[t].json["version"], 2 + round);
      } else {
        EXPECT_EQ(replies[t].status, 412) << replies[t];
        EXPECT_EQ(replies[t].code(), "version_mismatch");
        ++lost;
      }
    }
    EXPECT_EQ(won, 1);
    EXPECT_EQ(lost, kThreads - 1);
    EXPECT_EQ(s.HeadSeq(), head + 1);
  }

  // The ETag, quoted as served, is a valid If-Match.
  Reply current = Want(s.Get(kr), 200);
  Want(s.Post(kr + "/check-ins", {{"value", 1}}, kAdmin.token, {{"If-Match", current.header("ETag")}}), 201);
  Reply stale = s.Post(kr + "/check-ins", {{"value", 1}}, kAdmin.token, {{"If-Match", current.header("ETag")}});
  EXPECT_EQ(stale.status, 412) << stale;

  uint64_t head = s.HeadSeq();
  std::vector<std::vector<Reply>> replies(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        replies[t].push_back(s.Post(kr + "/check-ins", {{"value", t * kPerThread + i}, {"note", "burst"}},
                                    kAdmin.token));
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<uint64_t> seqs;
  std::set<std::string> check_in_ids;
  for (const auto& per_thread : replies) {
    for (const Reply& r : per_thread) {
      EXPECT_EQ(r.status, 201) << r << (r.status == 0 ? "\nokrd log:\n" + s.LogTail() : "");
      seqs.insert(r.u("seq"));
      if (r.json.contains("check_in")) check_in_ids.insert(r.json["check_in"]["id"].get<std::string>());
    }
  }
  const size_t total = kThreads * kPerThread;
  EXPECT_EQ(seqs.size(), total);
  EXPECT_EQ(check_in_ids.size(), total);
  EXPECT_EQ(*seqs.begin(), head + 1);
  EXPECT_EQ(*seqs.rbegin(), head + total);
  EXPECT_EQ(s.HeadSeq(), head + total);

  // History pages by version: follow `next` to the end.
  json items = json::array();
  for (std::string after = "0";;) {
    Reply page = Want(s.Get("/v1/history/kr-c?limit=100&after=" + after, kAuditor.token), 200);
    for (const json& item : page.json["items"]) items.push_back(item);
    if (page.json["next"].is_null()) break;
    after = page.json["next"].get<std::string>();
  }
  ASSERT_EQ(items.size(), 2 + kRounds + total);
  std::set<uint64_t> history_seqs;
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(items[i]["version"], i + 1) << "versions are dense and unique";
    history_seqs.insert(items[i]["seq"].get<uint64_t>());
  }
  EXPECT_EQ(history_seqs.size(), items.size());
  Reply after = Want(s.Get(kr), 200);
  EXPECT_EQ(after.json["check_in_count"], 1 + kRounds + total);
  EXPECT_EQ(after.json["version"], 2 + kRounds + total);
  EXPECT_EQ(Want(s.Get("/v1/audit/verify", kAuditor.token), 200).json["ok"], true);
  EXPECT_TRUE(s.Stop());
}

TEST(OkrdConcurrency, UpdatesWithoutIfMatchAreNeverRefusedAsConflicts) {
  // Without If-Match a writer states no expectation: however many others
  // change the same objective at once, its change lands (200), never 412.
  constexpr int kThreads = 32, kPerThread = 4;
  Okrd s(WithTokens());
  ASSERT_TRUE(s.Start());
  BuildOrg(s);
  Want(s.Post("/v1/objectives", {{"id", "o-hot"}, {"cycle", "q-now"}, {"owner", "hr"}, {"title", "Hot"}},
              kAdmin.token),
       201);
  uint64_t head = s.HeadSeq();
  std::vector<std::vector<Reply>> replies(kThreads);
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        replies[t].push_back(s.Patch("/v1/objectives/o-hot",
                                     {{"title", "Title " + std::to_string(t) + "." + std::to_string(i)}},
                                     kAdmin.token));
      }
    });
  }
  for (auto& th : threads) th.join();
  std::map<int, int> statuses;
  for (const auto& per_thread : replies) {
    for (const Reply& r : per_thread) {
      statuses[r.status]++;
      EXPECT_EQ(r.status, 200) << r;
    }
  }
  EXPECT_EQ(statuses[200], kThreads * kPerThread);
  EXPECT_EQ(s.HeadSeq(), head + kThreads * kPerThread);
  EXPECT_EQ(Want(s.Get("/v1/objectives/o-hot"), 200).json["version"], 1 + kThreads * kPerThread);
  EXPECT_TRUE(s.Stop());
}

// ---------------------------------------------------------------------------

// Answers of read routes, everything but the per-request id.
struct Captured {
  int status;
  std::string body;
  std::multimap<std::string, std::string> headers;
  bool operator==(const Captured&) const = default;
};

std::map<std::string, Captured> CaptureReads(const Okrd& s, const Strings& paths) {
  std::map<std::string, Captured> out;
  for (const std::string& path : paths) {
    Reply r = s.Get(path, kAuditor.token);
    EXPECT_EQ(r.status, 200) << path << " " << r;
    Captured c{r.status, r.body, {}};
    for (const auto& [k, v] : r.headers) {
      if (k != "X-Request-Id") c.headers.emplace(k, v);
    }
    out[path] = std::move(c);
  }
  return out;
}

void ExpectSameAnswers(const std::map<std::string, Captured>& before, const std::map<std::string, Captured>& after) {
  ASSERT_EQ(before.size(), after.size());
  for (const auto& [path, b] : before) {
    const Captured& a = after.at(path);
    EXPECT_EQ(a.status, b.status) << path;
    EXPECT_EQ(a.body, b.body) << path;
    EXPECT_EQ(a.headers, b.headers) << path;
  }
}

const Strings kStoryReads = {
    "/v1/units",
    "/v1/cycles",
    "/v1/objectives?include_archived=true",
    "/v1/objectives/hr-hiring",
    "/v1/key-results/kr-hires",
    "/v1/key-results/kr-hires/check-ins",
    "/v1/key-results/kr-hires?as_of=33",
    "/v1/cascade?cycle=q-now",
    "/v1/cycles/q-now/review",
    "/v1/cycles/q-now/review?format=csv",
    "/v1/diff?from=0",
    "/v1/diff?from=10&to=30",
    "/v1/lint",
    "/v1/lint?as_of=39",
    "/v1/events?limit=1000",
    "/v1/history/kr-hires",
    "/v1/audit/verify",
};

TEST(OkrdRestart, AnswersSurviveCleanRestartsSnapshotsAndSigkill) {
  Okrd s(WithTokens());
  ASSERT_TRUE(s.Start());
  Story st = BuildStory(s);
  ASSERT_EQ(st.head, 43u);
  auto before = CaptureReads(s, kStoryReads);

  // SIGTERM: a clean exit; the restarted okrd answers byte for byte the same.
  ASSERT_TRUE(s.Restart());
  EXPECT_EQ(s.HeadSeq(), st.head);
  ExpectSameAnswers(before, CaptureReads(s, kStoryReads));

  // Snapshots every 5 events: write enough to produce some, then restart
  // from the newest snapshot plus the tail.
  ASSERT_TRUE(s.Restart(Strings{"--snapshot-every", "5"}));
  for (int i = 0; i < 12; ++i) {
    Want(s.Post("/v1/objectives/acme-retain/comments", {{"text", "Retro note " + std::to_string(i)}}, kAdmin.token),
         201);
  }
  ASSERT_EQ(s.HeadSeq(), st.head + 12);
  Reply metrics = Want(s.Get("/metrics"), 200);
  auto at = metrics.body.find("\nokrd_snapshot_age_events ");
  ASSERT_NE(at, std::string::npos) << metrics.body;
  long age = std::stol(metrics.body.substr(at + std::strlen("\nokrd_snapshot_age_events ")));
  EXPECT_GE(age, 0) << "no snapshot was written";
  EXPECT_LT(age, 5);
  Strings reads = kStoryReads;
  reads.push_back("/v1/objectives/acme-retain");
  auto with_snapshots = CaptureReads(s, reads);
  ASSERT_TRUE(s.Restart());
  EXPECT_EQ(s.HeadSeq(), st.head + 12);
  ExpectSameAnswers(with_snapshots, CaptureReads(s, reads));
  ASSERT_TRUE(s.Restart(Strings{}));
  ExpectSameAnswers(with_snapshots, CaptureReads(s, reads));

  // SIGKILL in the middle of a burst of idempotent writes.
  Want(s.Post("/v1/cycles", {{"id", "q-next"}, {"name", "Next"}, {"starts", DateIn(-10)}, {"ends", DateIn(80)},
                             {"parent", "fy"}},
              kAdmin.token),
       201);
  Want(s.Post("/v1/objectives", {{"id", "o-burst"}, {"cycle", "q-next"}, {"owner", "hr"}, {"title", "Burst"}},
              kAdmin.token),
       201);
  Want(s.Post("/v1/key-results", {{"id", "kr-burst"}, {"objective", "o-burst"}, {"title", "B"}, {"target", 1e6}},
              kAdmin.token),
       201);
  struct Attempt {
    std::string key, body;
    Reply reply;
  };
  constexpr int kWriters = 8;
  constexpr int kAcksBeforeKill = 60;
  std::vector<std::vector<Attempt>> attempts(kWriters);
  std::mutex mu;
  std::condition_variable cv;
  int acked = 0;
  std::atomic<bool> killed{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < kWriters; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 100'000 && !killed; ++i) {
        Attempt a{"burst-" + std::to_string(t) + "-" + std::to_string(i),
                  json{{"value", t * 1000 + i}, {"note", "burst"}}.dump(), {}};
        a.reply = s.Request("POST", "/v1/key-results/kr-burst/check-ins", a.body, kAdmin.token,
                            {{"Idempotency-Key", a.key}});
        bool ok = a.reply.status == 201;
        attempts[t].push_back(std::move(a));
        if (!ok) break;  // okrd is gone
        std::lock_guard lock(mu);
        ++acked;
        cv.notify_all();
      }
    });
  }
  {
    std::unique_lock lock(mu);
    bool enough = cv.wait_for(lock, std::chrono::seconds(60), [&] { return acked >= kAcksBeforeKill; });
    EXPECT_TRUE(enough) << "only " << acked << " writes were acknowledged";
  }
  EXPECT_TRUE(s.Kill());
  killed = true;
  for (auto& w : writers) w.join();
  ASSERT_TRUE(s.Start());

  Reply events = Want(s.Get("/v1/events?entity=kr-burst&limit=1000", kAuditor.token), 200);
  std::map<uint64_t, std::string> key_at_seq;
  std::map<std::string, int> key_count;
  for (const json& ev : events.json["items"]) {
    std::string key = ev["idempotency_key"].get<std::string>();
    key_at_seq[ev["seq"].get<uint64_t>()] = key;
    if (!key.empty()) key_count[key]++;
  }
  int acknowledged = 0, in_flight = 0;
  for (const auto& per_writer : attempts) {
    for (const Attempt& a : per_writer) {
      SCOPED_TRACE(a.key);
      uint64_t head = s.HeadSeq();
      Reply retry = s.Request("POST", "/v1/key-results/kr-burst/check-ins", a.body, kAdmin.token,
                              {{"Idempotency-Key", a.key}});
      if (a.reply.status == 201) {
        ++acknowledged;
        uint64_t seq = a.reply.u("seq");
        // Acknowledged means durable: the event is there, under its key.
        ASSERT_TRUE(key_at_seq.count(seq)) << "acknowledged seq " << seq << " is missing after SIGKILL";
        EXPECT_EQ(key_at_seq[seq], a.key);  // shown without okrd's per-actor scope
        // The retry answers the first answer and writes nothing.
        EXPECT_EQ(retry.status, 201) << retry;
        EXPECT_EQ(retry.u("seq"), seq);
        EXPECT_EQ(retry.header("Idempotent-Replayed"), "true");
        EXPECT_EQ(retry.json, a.reply.json) << "a replay answers the first answer";
        EXPECT_EQ(s.HeadSeq(), head);
      } else {
        // Cut off by the kill: it may or may not have landed; the retry
        // settles it either way, exactly once.
        ++in_flight;
        EXPECT_EQ(retry.status, 201) << retry;
        EXPECT_EQ(s.HeadSeq(), head + (key_count.count(a.key) ? 0 : 1));
      }
    }
  }
  EXPECT_GE(acknowledged, kAcksBeforeKill);
  EXPECT_LE(in_flight, kWriters);
  Reply settled = Want(s.Get("/v1/events?entity=kr-burst&limit=1000", kAuditor.token), 200);
  std::map<std::string, int> settled_count;
  for (const json& ev : settled.json["items"]) settled_count[ev["idempotency_key"].get<std::string>()]++;
  for (const auto& per_writer : attempts) {
    for (const Attempt& a : per_writer) EXPECT_EQ(settled_count[a.key], 1) << a.key;
  }
  Reply verify = Want(s.Get("/v1/audit/verify", kAuditor.token), 200);
  EXPECT_EQ(verify.json["ok"], true);
  EXPECT_EQ(verify.json["events"], s.HeadSeq());
  EXPECT_TRUE(s.Stop());
}

// ---------------------------------------------------------------------------

json ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return json::parse(buffer.str(), nullptr, false);
}

bool PrivateFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) == 0;
}

TEST(OkrdDemo, DemoCompanyTellsTwoQuartersAndItsTokensWork) {
  Okrd s(OkrdOptions{std::nullopt, {"--demo"}});
  ASSERT_TRUE(s.Start());
  const std::string tokens_file = s.data_dir() + "/demo-tokens.json";
  const std::string credentials_file = s.data_dir() + "/demo-credentials.json";
  EXPECT_TRUE(PrivateFile(tokens_file));
  EXPECT_TRUE(PrivateFile(credentials_file));
  json creds = ReadJsonFile(credentials_file);
  ASSERT_TRUE(creds.is_object()) << "no credentials in " << credentials_file;
  for (const char* role : {"admin", "editor", "auditor", "viewer"}) {
    ASSERT_TRUE(creds.contains(role) && creds[role].is_string()) << role;
  }
  uint64_t head = s.HeadSeq();
  EXPECT_GT(head, 100u);

  // A year with two quarters: the previous one closed, this one open.
  Reply cycles = Want(s.Get("/v1/cycles"), 200);
  ASSERT_EQ(cycles.json["items"].size(), 3u) << cycles;
  std::string year, previous, current;
  for (const json& c : cycles.json["items"]) {
    if (c["parent"].is_null()) year = c["id"].get<std::string>();
  }
  for (const json& c : cycles.json["items"]) {
    if (c["parent"] != year) continue;
    (c["state"] == "closed" ? previous : current) = c["id"].get<std::string>();
  }
  ASSERT_FALSE(year.empty());
  ASSERT_FALSE(previous.empty());
  ASSERT_FALSE(current.empty());

  Reply objectives = Want(s.Get("/v1/objectives"), 200);
  const json& items = objectives.json["items"];
  EXPECT_GE(items.size(), 12u);
  std::map<std::string, int> per_cycle;
  for (const json& o : items) per_cycle[o["cycle"].get<std::string>()]++;
  EXPECT_EQ(per_cycle.size(), 2u);
  EXPECT_GT(per_cycle[previous], 0);
  EXPECT_GT(per_cycle[current], 0);

  // The closed quarter's review lists the moved target.
  Reply review = Want(s.Get("/v1/cycles/" + previous + "/review"), 200);
  EXPECT_EQ(review.json["cycle"]["state"], "closed");
  bool moved = false;
  for (const json& g : review.json["moved_goalposts"]) {
    if (g["key_result"] == "kr-engineers-hired" && g["field"] == "target") {
      moved = true;
      EXPECT_EQ(g["before"], 12);
      EXPECT_EQ(g["after"], 10);
      EXPECT_FALSE(g["reason"].get<std::string>().empty());
    }
  }
  EXPECT_TRUE(moved) << review.json["moved_goalposts"];
  EXPECT_FALSE(review.json["achieved"].empty());
  EXPECT_TRUE(review.json["unreviewed"].empty()) << review.json["unreviewed"];

  // The editor (Lena, HR Operations) checks in on her key result, not on others'.
  const std::string editor = creds["editor"].get<std::string>();
  Reply check_in = s.Post("/v1/key-results/kr-records-migrated/check-ins",
                          {{"value", 80}, {"note", "Payroll moved over"}}, editor);
  EXPECT_EQ(check_in.status, 201) << check_in;
  EXPECT_EQ(check_in.json["check_in"]["actor"], "lena.fischer");
  EXPECT_EQ(check_in.json["current"], 80);
  EXPECT_EQ(s.HeadSeq(), head + 1);
  EXPECT_EQ(s.Post("/v1/key-results/kr-referral-hires/check-ins", {{"value", 3}}, editor).status, 403);
  EXPECT_EQ(s.Post("/v1/key-results/kr-records-migrated/check-ins", {{"value", 81}}, creds["viewer"].get<std::string>()).status, 403);

  // The auditor verifies the chain the demo wrote through the normal write path.
  Reply verify = Want(s.Get("/v1/audit/verify", creds["auditor"].get<std::string>()), 200);
  EXPECT_EQ(verify.json["ok"], true);
  EXPECT_EQ(verify.json["events"], head + 1);
  EXPECT_EQ(s.Get("/v1/audit/verify", editor).status, 403);

  // A second start with --demo keeps the data and the tokens.
  ASSERT_TRUE(s.Restart());
  EXPECT_EQ(s.HeadSeq(), head + 1);
  EXPECT_EQ(ReadJsonFile(credentials_file), creds);
  EXPECT_EQ(Want(s.Get("/v1/audit/verify", creds["admin"].get<std::string>()), 200).json["ok"], true);
  EXPECT_TRUE(s.Stop());
}

}  // namespace
}  // namespace okr::testing

namespace okr::testing {
namespace {

// An editor cannot move what it changes out of its scope by clearing a
// field: a key result whose owner is cleared falls back to its
// objective's owner, which must be in the editor's scope too.
TEST(OkrdScope, ClearingAnOwnerCannotMoveAKeyResultOutOfScope) {
  Okrd s(WithTokens());
  ASSERT_TRUE(s.Start()) << s.LogTail();
  BuildOrg(s);
  Want(s.Post("/v1/objectives",
              {{"id", "eng-ship"}, {"cycle", "q-now"}, {"owner", "eng"}, {"title", "Ship it"}},
              kAdmin.token),
       201);
  Want(s.Post("/v1/key-results",
              {{"id", "kr-referrals"}, {"objective", "eng-ship"}, {"title", "Referrals hired"},
               {"owner", "hr"}, {"start", 0}, {"target", 5}},
              kAdmin.token),
       201);
  const uint64_t head = s.HeadSeq();
  // Maya may change what HR owns, but clearing the owner hands the key
  // result to Engineering's objective: refused, and nothing is written.
  Reply cleared = s.Patch("/v1/key-results/kr-referrals", {{"owner", ""}}, kMaya.token);
  EXPECT_EQ(cleared.status, 403) << cleared;
  EXPECT_EQ(s.HeadSeq(), head);
  // Setting an owner outside the scope is refused the same way.
  EXPECT_EQ(s.Patch("/v1/key-results/kr-referrals", {{"owner", "platform"}}, kMaya.token).status, 403);
  EXPECT_EQ(s.HeadSeq(), head);
  // Within HR it is hers to change.
  Want(s.Patch("/v1/key-results/kr-referrals", {{"owner", "ta"}}, kMaya.token), 200);
  // An admin may clear it.
  Want(s.Patch("/v1/key-results/kr-referrals", {{"owner", ""}}, kAdmin.token), 200);
}

}  // namespace
}  // namespace okr::testing
