// okrd end to end, the user story as scenarios: the quarter BuildStory
// tells (tests/okrd_story.h), read back route by route. Each scenario
// starts its own okrd and tells the whole story first, so it depends on
// no other scenario; each checks what a user relies on.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/okrd_story.h"

namespace okr::testing {
namespace {

// A closed cycle refuses changes to its key results, and nothing is written.
TEST_F(OkrdUserStory, ClosedCycleRefusesLateCheckInsAndWritesNothing) {
  Reply late = s.Post("/v1/key-results/kr-hires/check-ins", {{"value", 7}}, kMaya.token);
  EXPECT_EQ(late.status, 409) << late;
  EXPECT_EQ(late.code(), "conflict");
  EXPECT_EQ(s.HeadSeq(), st.head);
}

// Every answer carries the security headers and a request id; a usable
// client request id is echoed.
TEST_F(OkrdUserStory, EveryAnswerCarriesSecurityHeadersAndARequestId) {
  for (const char* path :
       {"/healthz", "/v1/units", "/v1/objectives/hr-hiring", "/v1/nope", "/v1/objectives/NOPE"}) {
    Reply r = s.Get(path);
    EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff") << path;
    EXPECT_FALSE(r.header("X-Request-Id").empty()) << path;
  }
  EXPECT_EQ(s.Get("/v1/units", "", {{"X-Request-Id", "trace-42.a_b"}}).header("X-Request-Id"),
            "trace-42.a_b");
  EXPECT_EQ(s.Post("/v1/units", json::object(), kViewer.token).header("X-Content-Type-Options"),
            "nosniff");
}

// Units, with pagination.
TEST_F(OkrdUserStory, UnitsListInIdOrderAndPagesPinnedToOneState) {
  Reply units = Want(s.Get("/v1/units"), 200);
  EXPECT_EQ(Ids(units.json["items"]),
            (Strings{"acme", "eng", "hr", "hr-ops", "lena", "platform", "sam", "ta"}));
  EXPECT_TRUE(units.json["next"].is_null());
  EXPECT_EQ(units.u("as_of_seq"), st.head);
  Strings paged;
  std::string cursor;
  int pages = 0;
  while (true) {
    Reply page =
        Want(s.Get("/v1/units?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor)), 200);
    ASSERT_TRUE(page.json["items"].is_array()) << page;
    EXPECT_LE(page.json["items"].size(), 2u);
    for (const auto& id : Ids(page.json["items"])) paged.push_back(id);
    ++pages;
    ASSERT_LE(pages, 10);
    if (page.json["next"].is_null()) break;
    cursor = page.json["next"].get<std::string>();
    EXPECT_EQ(cursor,
              std::to_string(st.head) + "." + paged.back());  // pinned to the first page's state
  }
  EXPECT_EQ(pages, 4);
  EXPECT_EQ(paged, Ids(units.json["items"]));

  Reply lena = Want(s.Get("/v1/units/lena"), 200);
  EXPECT_EQ(lena.json["kind"], "person");
  EXPECT_EQ(lena.json["parent"], "hr-ops");
  EXPECT_EQ(lena.json["email"], "lena@acme.example");
  EXPECT_EQ(lena.json["version"], 1);
  EXPECT_EQ(lena.header("ETag"), "\"1." + std::to_string(st.head) + "\"");  // version.seq
  EXPECT_EQ(lena.u("as_of_seq"), st.head);
  EXPECT_TRUE(Want(s.Get("/v1/units/acme"), 200).json["parent"].is_null());
}

// Cycles: the quarter is closed, with its dates, inside the fiscal year.
TEST_F(OkrdUserStory, ClosedQuarterReadsBackInsideItsYear) {
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
  EXPECT_EQ(
      Want(s.Get("/v1/cycles/q-now?as_of=" + std::to_string(st.before_close)), 200).json["state"],
      "open");
}

// Objectives and their filters.
TEST_F(OkrdUserStory, ObjectivesFilterByCycleOwnerAndArchived) {
  Reply list = Want(s.Get("/v1/objectives?cycle=q-now"), 200);
  EXPECT_EQ(Ids(list.json["items"]),
            (Strings{"acme-retain", "eng-mentoring", "hr-hiring", "ops-onboarding"}));
  EXPECT_EQ(list.u("as_of_seq"), st.head);
  for (const json& o : list.json["items"]) {
    if (o["id"] == "hr-hiring") {
      EXPECT_EQ(Ids(o["key_results"]), (Strings{"kr-hires", "kr-time-to-hire"}));
      EXPECT_DOUBLE_EQ(o["progress"].get<double>(), e.hr_hiring);
    }
  }
  EXPECT_EQ(Ids(Want(s.Get("/v1/objectives?cycle=q-now&include_archived=true"), 200).json["items"]),
            (Strings{"acme-retain", "eng-mentoring", "hr-hiring", "ops-onboarding", "ta-campus"}));
  EXPECT_EQ(Ids(Want(s.Get("/v1/objectives?owner=lena"), 200).json["items"]),
            (Strings{"ops-onboarding"}));
  EXPECT_EQ(Ids(Want(s.Get("/v1/objectives?owner=hr-ops"), 200).json["items"]), Strings{});
  EXPECT_EQ(Ids(Want(s.Get("/v1/objectives?cycle=fy"), 200).json["items"]), Strings{});
  EXPECT_EQ(Ids(Want(s.Get("/v1/objectives?owner=ta&include_archived=true"), 200).json["items"]),
            (Strings{"ta-campus"}));
}

// One objective: progress by hand, ETag = "<version>.<seq>".
TEST_F(OkrdUserStory, ObjectiveProgressMatchesTheHandComputation) {
  Reply hiring = Want(s.Get("/v1/objectives/hr-hiring"), 200);
  EXPECT_DOUBLE_EQ(hiring.json["progress"].get<double>(), e.hr_hiring);
  EXPECT_EQ(hiring.json["version"], 3);  // created, commented, reviewed
  EXPECT_EQ(hiring.header("ETag"), "\"3." + std::to_string(st.head) + "\"");
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
}

// One key result: current, progress, the moved target.
TEST_F(OkrdUserStory, KeyResultShowsLatestValueAndMovedTarget) {
  Reply hires = Want(s.Get("/v1/key-results/kr-hires"), 200);
  EXPECT_EQ(hires.json["current"], 6);
  EXPECT_DOUBLE_EQ(hires.json["progress"].get<double>(), e.hires);
  EXPECT_EQ(hires.json["start"], 0);
  EXPECT_EQ(hires.json["target"], 8);
  EXPECT_EQ(hires.json["weight"], 2);
  EXPECT_EQ(hires.json["owner"], "hr");
  EXPECT_EQ(hires.json["check_in_count"], 5);
  EXPECT_EQ(hires.json["version"], 7);  // added, five check-ins, target moved
  EXPECT_EQ(hires.header("ETag"), "\"7." + std::to_string(st.head) + "\"");
  Reply tth = Want(s.Get("/v1/key-results/kr-time-to-hire"), 200);
  EXPECT_EQ(tth.json["current"], 37);  // as corrected
  EXPECT_DOUBLE_EQ(tth.json["progress"].get<double>(), e.time_to_hire);
  Reply boolean = Want(s.Get("/v1/key-results/kr-mentor-programme"), 200);
  EXPECT_EQ(boolean.json["metric"], "boolean");
  EXPECT_DOUBLE_EQ(boolean.json["progress"].get<double>(), 1.0);
}

// The check-in series: oldest first by measured_at, not by seq.
TEST_F(OkrdUserStory, CheckInSeriesIsOrderedByMeasuredAtNotBySeq) {
  Reply series = Want(s.Get("/v1/key-results/kr-hires/check-ins"), 200);
  const json& items = series.json["items"];
  ASSERT_EQ(items.size(), 5u) << series;
  std::vector<double> values;
  for (const json& ci : items) values.push_back(ci["value"].get<double>());
  EXPECT_EQ(values, (std::vector<double>{1, 2, 3, 5, 6}));
  for (size_t i = 1; i < items.size(); ++i) {
    EXPECT_LT(items[i - 1]["measured_at"].get<std::string>(),
              items[i]["measured_at"].get<std::string>());
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
}

// The cascade: company → departments → teams → people, progress rolled up.
TEST_F(OkrdUserStory, CascadeRollsProgressUpFromPeopleToTheCompany) {
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
}

// Diff: the moved target and the owner change, field by field.
TEST_F(OkrdUserStory, TargetMovedMidCycleShowsInDiffFieldByField) {
  Reply diff = Want(s.Get("/v1/diff?from=" + std::to_string(st.before_move) +
                          "&to=" + std::to_string(st.owner_change)),
                    200);
  EXPECT_EQ(diff.u("as_of_seq"), st.owner_change);
  EXPECT_EQ(diff.json["created"], json::array());
  ASSERT_EQ(diff.json["changed"].size(), 2u) << diff;
  const json& target = diff.json["changed"][0];
  EXPECT_EQ(target["entity"], "kr-hires");
  ExpectTheHiringTargetMove(target);
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
  EXPECT_EQ(created,
            (std::set<std::string>{"acme-retain", "hr-hiring", "ops-onboarding", "eng-mentoring",
                                   "ta-campus", "kr-hires", "kr-time-to-hire", "kr-onboarding",
                                   "kr-mentor-programme", "kr-mentored", "kr-campus-events"}));
  EXPECT_EQ(planned.json["changed"], json::array());
  Reply archived = Want(s.Get("/v1/diff?from=" + std::to_string(st.archive - 1) +
                              "&to=" + std::to_string(st.archive)),
                        200);
  EXPECT_EQ(Ids(archived.json["archived"], "entity"), (Strings{"ta-campus"}));
  EXPECT_EQ(archived.json["archived"][0]["reason"], "Campus season moved to spring");
}

// The end-of-cycle review.
TEST_F(OkrdUserStory, ReviewListsMovedGoalpostOutcomesAndScores) {
  Reply review = Want(s.Get("/v1/cycles/q-now/review"), 200);
  EXPECT_EQ(review.u("as_of_seq"), st.head);
  EXPECT_EQ(review.json["cycle"]["state"], "closed");
  ASSERT_EQ(review.json["moved_goalposts"].size(), 1u) << review;
  const json& moved = review.json["moved_goalposts"][0];
  EXPECT_EQ(moved["key_result"], "kr-hires");
  ExpectTheHiringTargetMove(moved);
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
}

// The end-of-cycle review as Markdown and as CSV.
TEST_F(OkrdUserStory, ReviewReadsAsMarkdownAndCsv) {
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
  EXPECT_NE(csv.body.find(",kr-hires,Engineers hired,0,10,8,6,0.75,5\r\n"), std::string::npos)
      << csv.body;
}

// Lint: closed, so nothing is stale any more; the moved goalpost stays.
TEST_F(OkrdUserStory, LintKeepsTheMovedGoalpostAfterTheClose) {
  Reply lint = Want(s.Get("/v1/lint?cycle=q-now"), 200);
  EXPECT_EQ(lint.u("as_of_seq"), st.head);
  ASSERT_EQ(lint.json["findings"].size(), 1u) << lint;
  EXPECT_EQ(lint.json["findings"][0]["rule"], "moved_goalposts");
  EXPECT_EQ(lint.json["findings"][0]["entity"], "kr-hires");
  Reply open_lint =
      Want(s.Get("/v1/lint?cycle=q-now&as_of=" + std::to_string(st.before_close)), 200);
  std::set<std::pair<std::string, std::string>> findings;
  for (const json& f : open_lint.json["findings"])
    findings.insert({f["rule"].get<std::string>(), f["entity"].get<std::string>()});
  EXPECT_EQ(
      findings,
      (std::set<std::pair<std::string, std::string>>{
          {"stale", "kr-hires"}, {"stale", "kr-time-to-hire"}, {"moved_goalposts", "kr-hires"}}))
      << open_lint;
}

// Time travel: by seq and by RFC 3339 time, before the target moved.
TEST_F(OkrdUserStory, TimeTravelShowsTheTargetBeforeItMoved) {
  Reply then = Want(s.Get("/v1/key-results/kr-hires?as_of=" + std::to_string(st.before_move)), 200);
  EXPECT_EQ(then.json["target"], 10);
  EXPECT_DOUBLE_EQ(then.json["progress"].get<double>(), 0.6);
  EXPECT_EQ(then.json["version"], 6);
  EXPECT_EQ(then.u("as_of_seq"), st.before_move);
  Reply by_time =
      Want(s.Get("/v1/key-results/kr-hires?as_of=" + UrlEncode(st.time_before_move)), 200);
  EXPECT_EQ(by_time.json["target"], 10);
  EXPECT_EQ(by_time.u("as_of_seq"), st.before_move);
  Reply at_move = Want(s.Get("/v1/key-results/kr-hires?as_of=" + std::to_string(st.move)), 200);
  EXPECT_EQ(at_move.json["target"], 8);
  EXPECT_EQ(Want(s.Get("/v1/objectives/ta-campus?as_of=" + std::to_string(st.archive - 1)), 200)
                .json["state"],
            "active");
  EXPECT_EQ(
      Want(s.Get("/v1/objectives/ops-onboarding?as_of=" + std::to_string(st.before_move)), 200)
          .json["owner"],
      "hr-ops");
  // The story's first three events are units; before them, the log's key.
  const uint64_t third = st.start + 3;
  Reply early_units = Want(s.Get("/v1/units?as_of=" + std::to_string(third)), 200);
  EXPECT_EQ(Ids(early_units.json["items"]), (Strings{"acme", "eng", "hr"}));
  EXPECT_EQ(early_units.u("as_of_seq"), third);
  EXPECT_EQ(Want(s.Get("/v1/units?as_of=0"), 200).json["items"], json::array());
  EXPECT_EQ(Want(s.Get("/v1/units?as_of=" + std::to_string(st.start)), 200).json["items"],
            json::array());
  Reply not_yet = s.Get("/v1/objectives/hr-hiring?as_of=" + std::to_string(st.after_org));
  EXPECT_EQ(not_yet.status, 404) << not_yet;
  EXPECT_EQ(Want(s.Get("/v1/cascade?cycle=q-now&as_of=" + std::to_string(st.before_move)), 200)
                .u("as_of_seq"),
            st.before_move);
  EXPECT_EQ(Want(s.Get("/v1/cycles/q-now/review?as_of=" + std::to_string(st.before_close)), 200)
                .json["unreviewed"]
                .size(),
            4u);
}

// at=: the value as measured at a moment, as known at as_of.
TEST_F(OkrdUserStory, AtShowsTheValueAsMeasuredAtAMoment) {
  Reply at = Want(s.Get("/v1/key-results/kr-hires?at=" + UrlEncode(TimeIn(-30))), 200);
  EXPECT_EQ(at.json["current"], 3);  // measured 35 days ago; the next one 28 days ago
  EXPECT_DOUBLE_EQ(at.json["progress"].get<double>(), 3.0 / 8.0);
  Reply at_then = Want(s.Get("/v1/key-results/kr-hires?at=" + UrlEncode(TimeIn(-30)) +
                             "&as_of=" + std::to_string(st.before_move)),
                       200);
  EXPECT_EQ(at_then.json["current"], 3);
  EXPECT_DOUBLE_EQ(at_then.json["progress"].get<double>(), 0.3);
  Reply at_checkins =
      Want(s.Get("/v1/key-results/kr-hires/check-ins?at=" + UrlEncode(TimeIn(-30))), 200);
  EXPECT_EQ(at_checkins.json["items"].size(), 3u);
}

// Audit reads come from the log itself.
TEST_F(OkrdUserStory, AuditorReadsEventsFromTheLogItself) {
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
  // A new log starts with its signing key, written by okrd itself.
  ASSERT_EQ(st.start, 1u);
  EXPECT_EQ(events.json["items"][0]["type"], "log.signing_key");
  EXPECT_EQ(events.json["items"][0]["actor"], "system:okrd");
  EXPECT_EQ(events.json["items"][1]["type"], "unit.created");
  EXPECT_EQ(events.json["items"][1]["actor"], "root");
  Reply kr_events = Want(s.Get("/v1/events?entity=kr-hires", kAuditor.token), 200);
  std::vector<std::string> types;
  for (const json& ev : kr_events.json["items"]) types.push_back(ev["type"].get<std::string>());
  EXPECT_EQ(types, (Strings{"key_result.added", "check_in.recorded", "check_in.recorded",
                            "check_in.recorded", "check_in.recorded", "check_in.recorded",
                            "key_result.target_changed"}));
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
  EXPECT_EQ(Ids(page1.json["items"], "entity"),
            (Strings{"okrd:log", "acme", "hr", "eng", "hr-ops"}));
  ASSERT_TRUE(page1.json["next"].is_string()) << page1;
  Reply page2 = Want(
      s.Get("/v1/events?limit=5&after=" + page1.json["next"].get<std::string>(), kAuditor.token),
      200);
  ASSERT_EQ(page2.json["items"].size(), 5u);
  EXPECT_EQ(page2.json["items"][0]["seq"], 6);
  Reply tail =
      Want(s.Get("/v1/events?limit=5&after=" + std::to_string(st.head - 3), kAuditor.token), 200);
  EXPECT_EQ(tail.json["items"].size(), 3u);
  EXPECT_TRUE(tail.json["next"].is_null());
}

// History by version and the hash chain's verification, for the auditor.
TEST_F(OkrdUserStory, HistoryAndVerifyFollowTheHashChain) {
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
}

// Liveness, metrics, the API description.
TEST_F(OkrdUserStory, LivenessMetricsAndTheApiDescriptionReadBack) {
  Reply health = Want(s.Get("/healthz"), 200);
  EXPECT_EQ(health.json["status"], "ok");
  EXPECT_EQ(health.json["head_seq"], st.head);
  EXPECT_EQ(health.json["projected_seq"], st.head);
  Reply metrics = Want(s.Get("/metrics"), 200);
  EXPECT_EQ(metrics.header("Content-Type").rfind("text/plain", 0), 0u)
      << metrics.header("Content-Type");
  EXPECT_NE(metrics.body.find("okrd_requests_total{"), std::string::npos);
  EXPECT_NE(metrics.body.find("\nokrd_fold_batches_left_to_follower_total "), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("\nokrd_head_seq " + std::to_string(st.head) + "\n"),
            std::string::npos)
      << metrics.body;
  Reply openapi = Want(s.Get("/v1/openapi.json"), 200);
  ASSERT_TRUE(openapi.json.is_object()) << openapi;
  EXPECT_EQ(openapi.json["openapi"].get<std::string>().rfind("3.", 0), 0u);
  EXPECT_TRUE(openapi.json["paths"].is_object());
}

// Every state read says which seq it reflects, now and in the past.
TEST_F(OkrdUserStory, EveryStateReadSaysWhichSeqItReflects) {
  for (const char* path : {"/v1/units", "/v1/units/hr", "/v1/cycles", "/v1/cycles/q-now",
                           "/v1/objectives", "/v1/objectives/hr-hiring", "/v1/key-results/kr-hires",
                           "/v1/key-results/kr-hires/check-ins", "/v1/cascade", "/v1/diff",
                           "/v1/cycles/q-now/review", "/v1/lint"}) {
    SCOPED_TRACE(path);
    EXPECT_EQ(Want(s.Get(path), 200).u("as_of_seq"), st.head);
    std::string sep = std::string(path).find('?') == std::string::npos ? "?" : "&";
    EXPECT_EQ(
        Want(s.Get(path + sep + "as_of=" + std::to_string(st.before_close)), 200).u("as_of_seq"),
        st.before_close);
  }
}

}  // namespace
}  // namespace okr::testing
