#include "tests/okrd_story.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace okr::testing {

const Token kAdmin{"tok-admin-3f9a1c7d", "root", "admin", {}};
const Token kMaya{"tok-maya-51d2e0aa", "maya", "editor", {"hr"}};
const Token kAna{"tok-ana-08b7f4c3", "ana", "editor", {"eng"}};
const Token kViewer{"tok-viewer-c6a2b9e1", "vic", "viewer", {}};
const Token kAuditor{"tok-auditor-9e4d1702", "audrey", "auditor", {}};
const Token kReplica{"tok-replica-7b01e5d9", "replica-1", "replica", {}};

namespace {
constexpr int64_t kDayUs = 86'400'000'000LL;
}  // namespace

OkrdOptions WithTokens(Strings extra) {
  return OkrdOptions{std::vector<Token>{kAdmin, kMaya, kAna, kViewer, kAuditor, kReplica},
                     std::move(extra)};
}

std::string UrlOf(const Okrd& s) { return "http://127.0.0.1:" + std::to_string(s.port()); }

void WriteTokenFile(const std::string& path, const std::string& token, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  ASSERT_GE(fd, 0);
  std::string text = token + "\n";
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

OkrdOptions ReplicaOf(const std::string& url, const std::string& token_file) {
  return WithTokens({"--replica-of", url, "--replica-token", token_file});
}

bool CaughtUp(const Okrd& replica, uint64_t head) {
  Reply h = replica.Get("/healthz");
  return h.status == 200 && h.u("head_seq") == head && h.u("projected_seq") == head;
}

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string FormatUs(int64_t us) {
  assert(us >= 0);  // the story never reaches before 1970
  std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(us % 1'000'000));
  return buf;
}

std::string TimeIn(double days) { return FormatUs(NowUs() + static_cast<int64_t>(days * kDayUs)); }

Strings Ids(const json& items, const char* key) {
  Strings out;
  if (!items.is_array()) return out;
  for (const json& item : items) out.push_back(item.value(key, std::string("?")));
  return out;
}

// --- verbs ---

Reply CreateUnit(const Okrd& s, const std::string& id, const std::string& kind,
                 const std::string& name, const std::string& parent, const std::string& email) {
  json body = {{"id", id}, {"kind", kind}, {"name", name}};
  if (!parent.empty()) body["parent"] = parent;
  if (!email.empty()) body["email"] = email;
  return Want(s.Post("/v1/units", body, kAdmin.token), 201);
}

Reply CreateCycle(const Okrd& s, const std::string& id, const std::string& name, int starts_in_days,
                  int ends_in_days, const std::string& parent) {
  assert(starts_in_days < ends_in_days);  // okrd refuses a cycle ending before it starts
  json body = {{"id", id},
               {"name", name},
               {"starts", DateIn(starts_in_days)},
               {"ends", DateIn(ends_in_days)}};
  if (!parent.empty()) body["parent"] = parent;
  return Want(s.Post("/v1/cycles", body, kAdmin.token), 201);
}

Reply CreateObjective(const Okrd& s, const Token& who, const std::string& id,
                      const std::string& owner, const std::string& title, const Strings& parents,
                      const std::string& cycle) {
  return Want(
      s.Post(
          "/v1/objectives",
          {{"id", id}, {"cycle", cycle}, {"owner", owner}, {"title", title}, {"parents", parents}},
          who.token),
      201);
}

Reply AddKeyResult(const Okrd& s, const Token& who, const json& body) {
  assert(body.contains("id") && body.contains("objective"));
  return Want(s.Post("/v1/key-results", body, who.token), 201);
}

Reply CheckIn(const Okrd& s, const Token& who, const std::string& kr, double value, int days_ago,
              const std::string& note) {
  assert(days_ago >= 0);  // okrd refuses measurements in the future
  return Want(s.Post("/v1/key-results/" + kr + "/check-ins",
                     {{"value", value},
                      {"measured_at", TimeIn(-days_ago)},
                      {"note", note},
                      {"status", "on_track"},
                      {"confidence", 0.8}},
                     who.token),
              201);
}

Reply MoveTarget(const Okrd& s, const Token& who, const std::string& kr, double target,
                 const std::string& reason) {
  Reply moved = Want(
      s.Patch("/v1/key-results/" + kr, {{"target", target}, {"reason", reason}}, who.token), 200);
  EXPECT_EQ(moved.json["target"], target);
  return moved;
}

Reply ChangeOwner(const Okrd& s, const Token& who, const std::string& objective,
                  const std::string& owner, const std::string& reason) {
  return Want(
      s.Patch("/v1/objectives/" + objective, {{"owner", owner}, {"reason", reason}}, who.token),
      200);
}

Reply ArchiveObjective(const Okrd& s, const Token& who, const std::string& objective,
                       const std::string& reason) {
  return Want(s.Delete("/v1/objectives/" + objective, who.token, {}, {{"reason", reason}}), 200);
}

Reply Comment(const Okrd& s, const Token& who, const std::string& path, const std::string& text) {
  return Want(s.Post(path + "/comments", {{"text", text}}, who.token), 201);
}

Reply CorrectCheckIn(const Okrd& s, const Token& who, const std::string& kr,
                     const std::string& check_in, double value, const std::string& note,
                     const std::string& reason) {
  assert(!check_in.empty());  // a correction names the check-in it corrects
  return Want(s.Post("/v1/key-results/" + kr + "/corrections",
                     {{"corrects", check_in}, {"value", value}, {"note", note}, {"reason", reason}},
                     who.token),
              201);
}

Reply CloseCycle(const Okrd& s, const Token& who, const std::string& cycle,
                 const std::string& reason) {
  return Want(s.Post("/v1/cycles/" + cycle + "/close", {{"reason", reason}}, who.token), 200);
}

Reply ReviewObjective(const Okrd& s, const Token& who, const std::string& objective,
                      const json& review) {
  assert(review.contains("score") && review.contains("outcome"));
  return Want(s.Post("/v1/objectives/" + objective + "/review", review, who.token), 201);
}

Reply AsAdmin(const Okrd& s, const std::string& path, const json& body, int status) {
  return Want(s.Post(path, body, kAdmin.token), status);
}

// --- the story ---

void BuildOrg(const Okrd& s) {
  CreateUnit(s, "acme", "company", "Acme Robotics");
  CreateUnit(s, "hr", "department", "People & HR", "acme");
  CreateUnit(s, "eng", "department", "Engineering", "acme");
  CreateUnit(s, "hr-ops", "team", "HR Operations", "hr");
  CreateUnit(s, "ta", "team", "Talent Acquisition", "hr");
  CreateUnit(s, "platform", "team", "Platform", "eng");
  CreateUnit(s, "lena", "person", "Lena Fischer", "hr-ops", "lena@acme.example");
  CreateUnit(s, "sam", "person", "Sam Okafor", "ta", "sam@acme.example");
  CreateCycle(s, "fy", "Fiscal year", -180, 180);
  CreateCycle(s, "q-now", "This quarter", -60, 30, "fy");
}

void OkrdWithOrg::SetUp() {
  ASSERT_TRUE(s.Start()) << s.LogTail();
  BuildOrg(s);
}

void OkrdWithOrg::TearDown() {
  if (s.running()) {
    EXPECT_TRUE(s.Stop());
  }
}

namespace {

// Checks a story write answered the next seq, and counts it.
class DenseLog {
 public:
  explicit DenseLog(uint64_t head) : seq_(head) {}
  const Reply& operator()(const Reply& r) {
    EXPECT_EQ(r.u("seq"), ++seq_) << r;
    return r;
  }
  uint64_t seq() const { return seq_; }

 private:
  uint64_t seq_;
};

// A key result of the plan; "" and 0 leave a field out (okrd's default).
struct PlannedKeyResult {
  const Token* by;
  const char *id, *objective, *title, *metric;
  int start, target;
  const char* unit;
  int weight;

  json Body() const {
    json body = {{"id", id}, {"objective", objective}, {"title", title}};
    if (*metric != '\0') body["metric"] = metric;
    body["start"] = start;
    body["target"] = target;
    if (*unit != '\0') body["unit"] = unit;
    if (weight != 0) body["weight"] = weight;
    return body;
  }
};

const PlannedKeyResult kPlannedKeyResults[] = {
    {&kMaya, "kr-hires", "hr-hiring", "Engineers hired", "number", 0, 10, "people", 2},
    {&kMaya, "kr-time-to-hire", "hr-hiring", "Median time to hire", "", 45, 30, "days", 0},
    {&kMaya, "kr-onboarding", "ops-onboarding", "Onboarding satisfaction", "percent", 20, 60, "%",
     0},
    {&kAna, "kr-mentor-programme", "eng-mentoring", "Mentor programme launched", "boolean", 0, 1,
     "", 0},
    {&kAna, "kr-mentored", "eng-mentoring", "Engineers with a mentor", "", 0, 8, "", 0},
    {&kMaya, "kr-campus-events", "ta-campus", "Campus events run", "", 0, 4, "", 0},
};

// Five objectives (one of them Engineering's, aligned across) and six key results.
void Plan(const Okrd& s, DenseLog& w) {
  w(CreateObjective(s, kAdmin, "acme-retain", "acme", "Keep the people we hire"));
  w(CreateObjective(s, kMaya, "hr-hiring", "hr", "Hire the engineers the roadmap needs",
                    {"acme-retain"}));
  w(CreateObjective(s, kMaya, "ops-onboarding", "hr-ops", "Onboard every new hire smoothly",
                    {"acme-retain"}));
  // Cross-functional: Engineering aligns to HR's objective and the company's.
  w(CreateObjective(s, kAna, "eng-mentoring", "eng", "Mentor every new engineer",
                    {"hr-hiring", "acme-retain"}));
  w(CreateObjective(s, kMaya, "ta-campus", "ta", "Run campus recruiting events", {"hr-hiring"}));
  for (const PlannedKeyResult& kr : kPlannedKeyResults) w(AddKeyResult(s, *kr.by, kr.Body()));
}

// Weekly check-ins, measured in the past. Answers the id of the last
// time-to-hire check-in, which the story later corrects.
std::string CheckInWeekly(const Okrd& s, DenseLog& w) {
  w(CheckIn(s, kMaya, "kr-hires", 2, 42));
  w(CheckIn(s, kMaya, "kr-hires", 3, 35));
  w(CheckIn(s, kMaya, "kr-hires", 5, 28));
  w(CheckIn(s, kMaya, "kr-hires", 6, 21));
  w(CheckIn(s, kMaya, "kr-time-to-hire", 42, 35));
  Reply tth_last = w(CheckIn(s, kMaya, "kr-time-to-hire", 38, 21));
  w(CheckIn(s, kMaya, "kr-onboarding", 30, 27));
  w(CheckIn(s, kMaya, "kr-onboarding", 44, 13));
  w(CheckIn(s, kAna, "kr-mentor-programme", 1, 10));
  w(CheckIn(s, kAna, "kr-mentored", 3, 7));
  // Recorded last, measured first: the series is ordered by measured_at.
  w(CheckIn(s, kMaya, "kr-hires", 1, 49, "Backfilled from the ATS export"));
  w(CheckIn(s, kMaya, "kr-campus-events", 1, 20));
  return tth_last.json.contains("check_in") ? tth_last.json["check_in"].value("id", std::string())
                                            : std::string();
}

// The close and the reviews: one achieved, two partially, one left unreviewed.
void CloseAndReview(const Okrd& s, DenseLog& w) {
  w(CloseCycle(s, kAdmin, "q-now", "Quarter ended"));
  w(ReviewObjective(s, kMaya, "hr-hiring",
                    {{"score", 0.7},
                     {"outcome", "partially"},
                     {"reflection", "Budget cut mid-quarter."},
                     {"lessons", "Re-plan dependent key results when budgets move."}}));
  w(ReviewObjective(s, kAna, "eng-mentoring", {{"score", 0.9}, {"outcome", "achieved"}}));
  w(ReviewObjective(s, kAdmin, "acme-retain", {{"score", 0.75}, {"outcome", "partially"}}));
}

}  // namespace

Story BuildStory(const Okrd& s) {
  Story st;
  st.start = s.HeadSeq();
  BuildOrg(s);
  DenseLog w(s.HeadSeq());
  st.after_org = w.seq();
  Plan(s, w);
  st.after_plan = w.seq();
  std::string tth_last = CheckInWeekly(s, w);
  st.before_move = w.seq();
  int64_t before = NowUs();
  st.time_before_move = FormatUs(before);
  while (NowUs() <= before) {
  }  // the move is recorded strictly after that instant

  w(MoveTarget(s, kMaya, "kr-hires", 8, "Hiring budget cut by two heads"));
  st.move = w.seq();
  w(ChangeOwner(s, kMaya, "ops-onboarding", "lena", "Lena runs onboarding"));
  st.owner_change = w.seq();
  w(ArchiveObjective(s, kMaya, "ta-campus", "Campus season moved to spring"));
  st.archive = w.seq();
  w(Comment(s, kMaya, "/v1/objectives/hr-hiring", "Two offers out this week."));
  w(Comment(s, kAna, "/v1/key-results/kr-mentored", "Pairing starts Monday."));
  w(CorrectCheckIn(s, kMaya, "kr-time-to-hire", tth_last, 37, "Recounted", "ATS double count"));
  st.before_close = w.seq();
  CloseAndReview(s, w);
  st.head = w.seq();
  assert(st.after_org < st.after_plan && st.after_plan < st.before_move &&
         st.before_move < st.move);
  assert(st.move < st.owner_change && st.owner_change < st.archive && st.archive < st.before_close);
  return st;
}

void ExpectTheHiringTargetMove(const json& change) {
  EXPECT_EQ(change["field"], "target");
  EXPECT_EQ(change["before"], 10);
  EXPECT_EQ(change["after"], 8);
  EXPECT_EQ(change["actor"], "maya");
  EXPECT_EQ(change["reason"], "Hiring budget cut by two heads");
}

void OkrdUserStory::SetUp() {
  ASSERT_TRUE(s.Start());
  st = BuildStory(s);
  ASSERT_EQ(st.head - st.start, kStoryEvents);
  ASSERT_EQ(s.HeadSeq(), st.head);
}

void OkrdUserStory::TearDown() {
  // Reading wrote nothing, and okrd exits cleanly.
  if (!s.running()) return;
  if (!HasFatalFailure()) {
    EXPECT_EQ(s.HeadSeq(), st.head);
  }
  EXPECT_TRUE(s.Stop());
}

}  // namespace okr::testing
