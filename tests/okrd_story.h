// The story okrd's end-to-end tests tell: Acme's HR department plans a
// quarter, told through the HTTP API only.
//
// Cycles are placed around today (a fiscal year, a quarter that began 60
// days ago), so check-ins can be measured in the past and moved targets
// fall after the cycle started. The verbs below each send one write and
// record a test failure when okrd does not accept it; they are safe to call
// from several threads at once (each request is its own connection).
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tests/okrd_harness.h"

namespace okr::testing {

using Strings = std::vector<std::string>;

// The people of the story: an admin, two editors with different scopes,
// a viewer and an auditor; and a read replica's token.
extern const Token kAdmin;
extern const Token kMaya;  // editor of HR and everything under it
extern const Token kAna;   // editor of Engineering only
extern const Token kViewer;
extern const Token kAuditor;
extern const Token kReplica;

// The six tokens above, plus `extra` flags for okrd.
OkrdOptions WithTokens(Strings extra = {});

// --- read replicas ---

// http://127.0.0.1:<port> of `s`.
std::string UrlOf(const Okrd& s);
// A file holding `token` on its first line, with `mode`.
void WriteTokenFile(const std::string& path, const std::string& token, mode_t mode = 0600);
// A replica's options: the story's tokens, and the primary at `url`.
OkrdOptions ReplicaOf(const std::string& url, const std::string& token_file);
// Whether `replica` holds and serves the log up to `head`.
bool CaughtUp(const Okrd& replica, uint64_t head);

// Microseconds since the epoch, wall clock.
int64_t NowUs();
// `us` as an RFC 3339 date-time with microseconds, UTC.
std::string FormatUs(int64_t us);
// Now ± `days`, as an RFC 3339 date-time.
std::string TimeIn(double days);

// items[i][key] for every item of a JSON array ("?" where it is missing).
Strings Ids(const json& items, const char* key = "id");

// --- verbs: one write each, expected to succeed ---

Reply CreateUnit(const Okrd& s, const std::string& id, const std::string& kind,
                 const std::string& name, const std::string& parent = "",
                 const std::string& email = "");
Reply CreateCycle(const Okrd& s, const std::string& id, const std::string& name, int starts_in_days,
                  int ends_in_days, const std::string& parent = "");
Reply CreateObjective(const Okrd& s, const Token& who, const std::string& id,
                      const std::string& owner, const std::string& title,
                      const Strings& parents = {}, const std::string& cycle = "q-now");
// `body` is the whole key result (id, objective, title, target …).
Reply AddKeyResult(const Okrd& s, const Token& who, const json& body);
// A check-in measured `days_ago` days before now, on track at 0.8 confidence.
Reply CheckIn(const Okrd& s, const Token& who, const std::string& kr, double value, int days_ago,
              const std::string& note = "Weekly update");
Reply MoveTarget(const Okrd& s, const Token& who, const std::string& kr, double target,
                 const std::string& reason);
Reply ChangeOwner(const Okrd& s, const Token& who, const std::string& objective,
                  const std::string& owner, const std::string& reason);
Reply ArchiveObjective(const Okrd& s, const Token& who, const std::string& objective,
                       const std::string& reason);
// `path` is the commented entity's route, e.g. /v1/objectives/hr-hiring.
Reply Comment(const Okrd& s, const Token& who, const std::string& path, const std::string& text);
Reply CorrectCheckIn(const Okrd& s, const Token& who, const std::string& kr,
                     const std::string& check_in, double value, const std::string& note,
                     const std::string& reason);
Reply CloseCycle(const Okrd& s, const Token& who, const std::string& cycle,
                 const std::string& reason);
// `review` holds score, outcome and optionally reflection and lessons.
Reply ReviewObjective(const Okrd& s, const Token& who, const std::string& objective,
                      const json& review);

// A write by the admin that must be answered `status`: how a test lays out
// its subjects before the writes it checks.
Reply AsAdmin(const Okrd& s, const std::string& path, const json& body, int status = 201);

// --- the story ---

// Acme's units and cycles (10 events), all by the admin: acme → hr, eng;
// hr → hr-ops, ta; eng → platform; lena (hr-ops), sam (ta); cycles fy and
// q-now (inside fy).
void BuildOrg(const Okrd& s);

// okrd with the story's tokens (and `extra` flags) and the story's org
// (BuildOrg), stopped cleanly after the test.
class OkrdWithOrg : public ::testing::Test {
 protected:
  explicit OkrdWithOrg(Strings extra = {}) : s(WithTokens(std::move(extra))) {}
  void SetUp() override;
  void TearDown() override;

  Okrd s;
};

// Where the story's events fell in the log.
struct Story {
  uint64_t start = 0;            // the head before the story: the log's key event
  uint64_t after_org = 0;        // units and cycles
  uint64_t after_plan = 0;       // objectives and key results
  uint64_t before_move = 0;      // the last event before kr-hires' target moved
  std::string time_before_move;  // an instant between before_move and the move
  uint64_t move = 0;             // kr-hires: target 10 → 8
  uint64_t owner_change = 0;     // ops-onboarding: hr-ops → lena
  uint64_t archive = 0;          // ta-campus archived
  uint64_t before_close = 0;
  uint64_t head = 0;
};
inline constexpr uint64_t kStoryEvents = 43;  // from start to head

// The quarter from plan to review: the org, five objectives, six key
// results, twelve check-ins, the moved target, an owner change, an
// archive, comments, a correction, the close and three reviews. Checks
// every write answered the next seq (the log is dense).
Story BuildStory(const Okrd& s);

// Progress by hand (SPEC §1), for the story's final state.
struct Expected {
  double hires = (6.0 - 0.0) / (8.0 - 0.0);               // latest by measured_at: 6
  double time_to_hire = (37.0 - 45.0) / (30.0 - 45.0);    // decreasing target, corrected 38 → 37
  double hr_hiring = (2 * hires + 1 * time_to_hire) / 3;  // weights 2 and 1
  double onboarding = (44.0 - 20.0) / (60.0 - 20.0);
  double eng_mentoring = (1.0 + 3.0 / 8.0) / 2;
  // No key results: the mean of its active aligned children.
  double acme_retain = (eng_mentoring + hr_hiring + onboarding) / 3;
};

// Checks that `change` (a diff entry or a review's moved goalpost) is the
// story's move of kr-hires' target from 10 to 8 by Maya.
void ExpectTheHiringTargetMove(const json& change);

// The fixture of the user-story scenarios: okrd with the story's tokens,
// the whole story told before each test, stopped cleanly after it.
class OkrdUserStory : public ::testing::Test {
 protected:
  OkrdUserStory() : s(WithTokens()) {}
  void SetUp() override;
  void TearDown() override;

  Okrd s;
  Story st;
  const Expected e;
};

}  // namespace okr::testing
