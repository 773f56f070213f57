// okrd end to end, the demo: --demo tells two quarters of a company
// through the normal write path and hands out working tokens.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <map>
#include <string>

#include "tests/okrd_story.h"

namespace okr::testing {
namespace {

json ReadJsonFile(const std::string& path) { return json::parse(ReadFile(path), nullptr, false); }

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
  // The editor is a person: a pseudonymous actor, and its person unit (SPEC §10).
  json entries = ReadJsonFile(tokens_file);
  ASSERT_TRUE(entries.is_array() && entries.size() == 4) << entries;
  EXPECT_EQ(entries[1]["actor"], "editor-5190");
  EXPECT_EQ(entries[1]["subject"], "p-5190");
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

  // The editor (editor-5190: Lena, HR Operations) checks in on her key result, not on others'.
  const std::string editor = creds["editor"].get<std::string>();
  Reply check_in = s.Post("/v1/key-results/kr-records-migrated/check-ins",
                          {{"value", 80}, {"note", "Payroll moved over"}}, editor);
  EXPECT_EQ(check_in.status, 201) << check_in;
  EXPECT_EQ(check_in.json["check_in"]["actor"], "editor-5190");
  EXPECT_EQ(check_in.json["current"], 80);
  EXPECT_EQ(s.HeadSeq(), head + 1);
  EXPECT_EQ(s.Post("/v1/key-results/kr-referral-hires/check-ins", {{"value", 3}}, editor).status,
            403);
  EXPECT_EQ(s.Post("/v1/key-results/kr-records-migrated/check-ins", {{"value", 81}},
                   creds["viewer"].get<std::string>())
                .status,
            403);

  // The auditor verifies the chain the demo wrote through the normal write path.
  Reply verify = Want(s.Get("/v1/audit/verify", creds["auditor"].get<std::string>()), 200);
  EXPECT_EQ(verify.json["ok"], true);
  EXPECT_EQ(verify.json["events"], head + 1);
  EXPECT_EQ(s.Get("/v1/audit/verify", editor).status, 403);

  // A second start with --demo keeps the data and the tokens.
  ASSERT_TRUE(s.Restart());
  EXPECT_EQ(s.HeadSeq(), head + 1);
  EXPECT_EQ(ReadJsonFile(credentials_file), creds);
  EXPECT_EQ(Want(s.Get("/v1/audit/verify", creds["admin"].get<std::string>()), 200).json["ok"],
            true);
  EXPECT_TRUE(s.Stop());
}

}  // namespace
}  // namespace okr::testing
