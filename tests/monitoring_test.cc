// The monitoring kept beside the code (tools/monitoring/): Prometheus alert
// rules and a Grafana dashboard. Every metric they name must be one a real
// okrd serves (a primary with a webhook, and a replica of it), every metric
// okrd serves must be on the dashboard or in an alert, and each rule and
// panel must have what Prometheus and Grafana need to load it. A metric
// renamed in okrd without the files following fails here. (Prometheus's
// own promtool checks the rules and runs their unit tests:
// tests/monitoring_rules.sh.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>

#include "tests/okrd_story.h"
#include "tests/test_support.h"

#ifndef OKR_MONITORING_DIR
#error "OKR_MONITORING_DIR (tools/monitoring) must be defined"
#endif
#ifndef OKR_OPERATIONS_MD
#error "OKR_OPERATIONS_MD (docs/OPERATIONS.md) must be defined"
#endif

namespace okr::testing {
namespace {

json ReadJson(const std::string& name) {
  std::ifstream in(std::string(OKR_MONITORING_DIR) + "/" + name);
  json j = json::parse(std::string(std::istreambuf_iterator<char>(in), {}), nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << name << " is not JSON";
  return j;
}

// The series `text` (the Prometheus text format) declares, each with its
// family: a family's own name, and a histogram's _bucket, _sum and _count.
std::map<std::string, std::string> Declared(const std::string& text) {
  std::map<std::string, std::string> out;
  static const std::regex type_line(R"(# TYPE (\w+) (\w+))");
  for (std::sregex_iterator it(text.begin(), text.end(), type_line), end; it != end; ++it) {
    const std::string name = (*it)[1];
    out[name] = name;
    if ((*it)[2] == "histogram") {
      for (const char* series : {"_bucket", "_sum", "_count"}) out[name + series] = name;
    }
  }
  return out;
}

// The names of the threads of process `pid`, one a line.
std::string ThreadNamesOf(pid_t pid) {
  std::string out;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream comm(task.path() / "comm");
    std::string line;
    if (std::getline(comm, line)) out += line + "\n";
  }
  return out;
}

// Every text in `text` that `pattern` matches.
std::set<std::string> MatchesIn(const std::string& text, const std::regex& pattern) {
  std::set<std::string> out;
  for (std::sregex_iterator it(text.begin(), text.end(), pattern), end; it != end; ++it) {
    out.insert(it->str());
  }
  return out;
}

// The okrd_ metrics a PromQL expression names.
std::set<std::string> Named(const std::string& expr) {
  static const std::regex metric(R"(\bokrd_[a-z0-9_]+)");
  return MatchesIn(expr, metric);
}

// The okr: thread names in `text`, a file's or the threads' own.
std::set<std::string> OkrThreadNames(const std::string& text) {
  static const std::regex name(R"(\bokr:[a-z-]+)");
  return MatchesIn(text, name);
}

// What an operator watches: a primary with a webhook (so its delivery
// runs) and a replica caught up with it, both real okrd processes.
class MonitoringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(primary.Start());
    Want(primary.Post("/v1/webhooks",
                      {{"id", "hr-feed"},
                       {"url", "https://hooks.example.invalid/okrd"},
                       {"secret", "a-secret-of-at-least-16"},
                       {"types", {"*"}}},
                      kAdmin.token),
         201);
    WriteTokenFile(dir.Sub("replica.token"), kReplica.token);
    replica = std::make_unique<Okrd>(ReplicaOf(UrlOf(primary), dir.Sub("replica.token")));
    ASSERT_TRUE(replica->Start()) << replica->LogTail();
    ASSERT_TRUE(WaitFor([&] { return CaughtUp(*replica, primary.HeadSeq()); }));
  }

  Okrd primary{WithTokens()};
  TempDir dir;
  std::unique_ptr<Okrd> replica;
};

TEST_F(MonitoringTest, AlertsAndDashboardNameOnlyWhatOkrdServesAndCoverAllOfIt) {
  const std::string primary_text = Want(primary.Get("/metrics"), 200).body;
  std::map<std::string, std::string> served = Declared(primary_text);
  served.merge(Declared(Want(replica->Get("/metrics"), 200).body));
  for (const char* name :
       {"okrd_head_seq", "okrd_webhook_lag_events", "okrd_replica_lag_seconds",
        "okrd_data_filesystem_avail_bytes", "okrd_request_duration_seconds_bucket"}) {
    EXPECT_TRUE(served.count(name)) << name << " is not served: the check below would be empty";
  }
  // The disk gauges are the data directory's filesystem's.
  std::smatch avail, size;
  ASSERT_TRUE(std::regex_search(primary_text, avail,
                                std::regex(R"(\nokrd_data_filesystem_avail_bytes (\d+)\n)")));
  ASSERT_TRUE(std::regex_search(primary_text, size,
                                std::regex(R"(\nokrd_data_filesystem_size_bytes (\d+)\n)")));
  EXPECT_GT(std::stoull(avail[1]), 0u);
  EXPECT_LE(std::stoull(avail[1]), std::stoull(size[1]));

  std::set<std::string> used;
  auto check_expr = [&](const std::string& where, const std::string& expr) {
    EXPECT_FALSE(expr.empty()) << where;
    for (const std::string& name : Named(expr)) {
      auto family = served.find(name);
      EXPECT_NE(family, served.end())
          << where << " names " << name << ", which okrd does not serve";
      if (family != served.end()) used.insert(family->second);
    }
  };

  // Alert rules: Prometheus's rule-file shape (JSON is YAML).
  const json alerts = ReadJson("okrd-alerts.json");
  ASSERT_TRUE(alerts["groups"].is_array());
  std::set<std::string> names;
  for (const json& group : alerts["groups"]) {
    ASSERT_TRUE(group["name"].is_string());
    ASSERT_FALSE(group["rules"].empty());
    for (const json& rule : group["rules"]) {
      const std::string alert = rule.value("alert", "");
      EXPECT_TRUE(std::regex_match(alert, std::regex("Okrd[A-Z][A-Za-z]+"))) << alert;
      EXPECT_TRUE(names.insert(alert).second) << alert << " twice";
      check_expr("alert " + alert, rule.value("expr", ""));
      EXPECT_TRUE(std::regex_match(rule.value("for", ""), std::regex(R"(\d+[smh])"))) << alert;
      const std::string severity = rule["labels"].value("severity", "");
      EXPECT_TRUE(severity == "critical" || severity == "warning") << alert;
      EXPECT_FALSE(rule["annotations"].value("summary", "").empty()) << alert;
      EXPECT_FALSE(rule["annotations"].value("description", "").empty()) << alert;
    }
  }
  // What the issue of a service asks an operator to be told of.
  for (const char* alert :
       {"OkrdDown", "OkrdProjectionBehind", "OkrdProjectionStuck", "OkrdFsyncSlow",
        "OkrdLogCheckFailed", "OkrdDiskLow", "OkrdWebhookBacklog", "OkrdReplicaLagging"}) {
    EXPECT_TRUE(names.count(alert)) << alert;
  }

  // The dashboard: each panel with an id, a place, and queries.
  const json dashboard = ReadJson("okrd-grafana.json");
  EXPECT_EQ(dashboard["uid"], "okrd");
  std::set<int> ids;
  ASSERT_FALSE(dashboard["panels"].empty());
  for (const json& panel : dashboard["panels"]) {
    const std::string title = panel.value("title", "");
    EXPECT_FALSE(title.empty());
    EXPECT_TRUE(ids.insert(panel.value("id", 0)).second) << title;
    EXPECT_TRUE(panel["gridPos"].contains("w") && panel["gridPos"].contains("h")) << title;
    ASSERT_FALSE(panel["targets"].empty()) << title;
    for (const json& target : panel["targets"]) check_expr("panel " + title, target["expr"]);
  }
  for (const json& variable : dashboard["templating"]["list"]) {
    if (variable.contains("definition")) check_expr("variable", variable["definition"]);
  }

  // Nothing okrd serves is left unwatched.
  for (const auto& [name, family] : served) {
    if (name.rfind("okrd_", 0) != 0 || family != name) continue;
    EXPECT_TRUE(used.count(name)) << name << " is on no panel and in no alert";
  }
}

// top -H and perf show which part of okrd is busy by the threads' names,
// which docs/OPERATIONS.md explains: each one a primary (with a webhook)
// and its replica run must be there, and the main ones must run.
TEST_F(MonitoringTest, EveryThreadOkrdNamesIsExplainedInTheOperationsGuide) {
  std::ifstream guide_file(OKR_OPERATIONS_MD);
  const std::set<std::string> explained =
      OkrThreadNames(std::string(std::istreambuf_iterator<char>(guide_file), {}));
  const std::set<std::string> on_primary = OkrThreadNames(ThreadNamesOf(primary.pid()));
  for (const char* name : {"okr:conn", "okr:writer", "okr:fold", "okr:streams", "okr:stream-head",
                           "okr:webhooks", "okr:signals"}) {
    EXPECT_TRUE(on_primary.count(name)) << name << " is not among the primary's threads";
  }
  // The replica follows the primary's live feed once it has caught up.
  std::set<std::string> on_replica;
  EXPECT_TRUE(WaitFor([&] {
    on_replica = OkrThreadNames(ThreadNamesOf(replica->pid()));
    return on_replica.count("okr:live-store") > 0;
  })) << ThreadNamesOf(replica->pid());
  for (const char* name : {"okr:replica", "okr:writer", "okr:fold", "okr:conn"}) {
    EXPECT_TRUE(on_replica.count(name)) << name << " is not among the replica's threads";
  }
  std::set<std::string> running = on_primary;
  running.insert(on_replica.begin(), on_replica.end());
  for (const std::string& name : running) {
    EXPECT_TRUE(explained.count(name)) << name << " runs but docs/OPERATIONS.md does not list it";
  }
  EXPECT_GE(explained.size(), 15u) << "the guide's table of threads is missing";
}

}  // namespace
}  // namespace okr::testing
