#include "api/demo.h"

#include <cassert>
#include <chrono>
#include <cmath>
#include <map>
#include <tuple>

#include "eventstore/base/time.h"

namespace okr::api {

namespace {

std::string QuarterId(int year, int quarter) {
  return std::to_string(year) + "-q" + std::to_string(quarter);
}

std::string Date(int year, unsigned month, unsigned day) {
  char buf[32];  // room for any int the compiler cannot rule out
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", year, month, day);
  return buf;
}

struct Quarter {
  int year;
  int q;
  std::string starts, ends;
};

Quarter QuarterOf(int year, int q) {
  static const unsigned kLastDay[] = {31, 30, 30, 31};
  unsigned first = static_cast<unsigned>(3 * (q - 1) + 1);
  return {year, q, Date(year, first, 1), Date(year, first + 2, kLastDay[q - 1])};
}

std::pair<Quarter, Quarter> Quarters(int64_t now_us) {
  std::string today = FormatDate(now_us);
  int year = std::stoi(today.substr(0, 4));
  int month = std::stoi(today.substr(5, 2));
  int q = (month - 1) / 3 + 1;
  Quarter current = QuarterOf(year, q);
  Quarter previous = q == 1 ? QuarterOf(year - 1, 4) : QuarterOf(year, q - 1);
  return {previous, current};
}

// The demo's people, as the log may name them (SPEC §10): an opaque person
// unit id and a pseudonymous actor. Their names and emails, and the texts
// they write, are sealed under the unit's key.
struct Person {
  const char* unit;
  const char* actor;
};
constexpr Person kMaya{"p-4821", "editor-4821"};  // Maya Chen, head of People & HR
constexpr Person kSam{"p-3307", "editor-3307"};   // Sam Okafor, Talent Acquisition
constexpr Person kLena{"p-5190", "editor-5190"};  // Lena Fischer, HR Operations
constexpr Person kRaj{"p-2264", "editor-2264"};   // Raj Patel, Learning & Development
constexpr Person kAna{"p-7735", "editor-7735"};   // Ana Silva, Engineering

// Writes one command as `actor`, or as a person: as its actor, with its
// unit as the subject its texts are sealed under. Stops the demo on the
// first refusal.
class Writer {
 public:
  explicit Writer(Projector* p) : p_(p) {}
  Status operator()(const Person& person, Command command, const std::string& reason = "") {
    return Write(person.actor, person.unit, std::move(command), reason);
  }
  Status operator()(const std::string& actor, Command command, const std::string& reason = "") {
    return Write(actor, "", std::move(command), reason);
  }
  const Status& status() const { return status_; }

 private:
  Status Write(const std::string& actor, const std::string& subject, Command command,
               const std::string& reason) {
    if (!status_.ok()) return status_;
    WriteRequest w;
    w.command = std::move(command);
    w.actor = actor;
    w.subject = subject;
    w.reason = reason;
    auto r = p_->Write(w);
    if (!r.ok()) status_ = r.status();
    return status_;
  }

  Projector* p_;
  Status status_ = Status::Ok();
};

struct KrPlan {
  std::string id, objective, title, metric, unit;
  double start, target;
  double reach;  // fraction of the way to target reached by the last week
  Person checker;
  int stop_weeks_early = 0;  // a key result nobody has checked in on lately
};

std::vector<KrPlan> PreviousQuarterKrs() {
  return {
      {"kr-engineers-hired", "hr-hire-engineers", "Engineers hired", "number", "people", 0, 12,
       0.85, kMaya},
      {"kr-time-to-hire", "hr-hire-engineers", "Median time to hire", "number", "days", 45, 30, 0.7,
       kMaya},
      {"kr-qualified-candidates", "ta-fill-pipeline", "Qualified candidates per open role",
       "number", "candidates", 0, 8, 1.1, kSam},
      {"kr-onboarding-satisfaction", "ops-smooth-onboarding", "New-hire onboarding satisfaction",
       "percent", "%", 70, 90, 0.9, kLena},
      {"kr-laptops-day-one", "ops-smooth-onboarding", "Laptop ready on day one for every hire",
       "boolean", "", 0, 1, 1.0, kLena},
      {"kr-managers-trained", "ld-first-managers", "First-time managers trained", "number",
       "managers", 0, 15, 0.6, kRaj},
  };
}

std::vector<KrPlan> CurrentQuarterKrs() {
  return {
      {"kr-regretted-attrition", "hr-reduce-attrition", "Regretted attrition (annualised)",
       "percent", "%", 8, 5, 0.9, kMaya},
      {"kr-stay-interviews", "hr-reduce-attrition", "Stay interviews held", "number", "interviews",
       0, 40, 1.0, kMaya},
      {"kr-referral-hires", "ta-grow-referrals", "Hires from referrals", "number", "hires", 0, 6,
       0.7, kSam},
      {"kr-offer-acceptance", "ta-grow-referrals", "Offer acceptance rate", "percent", "%", 75, 90,
       1.0, kSam},
      {"kr-records-migrated", "ops-one-hris", "Employee records migrated", "percent", "%", 0, 100,
       1.1, kLena},
      {"kr-payroll-errors", "ops-one-hris", "Payroll errors per month", "number", "errors", 12, 2,
       0.95, kLena},
      {"kr-frameworks-published", "ld-career-paths", "Career frameworks published", "number",
       "frameworks", 0, 5, 0.4, kRaj, 3},
      {"kr-development-plans", "ld-career-paths", "Employees with a development plan", "percent",
       "%", 20, 80, 0.8, kRaj},
      {"kr-mentors-matched", "eng-mentoring", "New engineers with a mentor", "percent", "%", 30,
       100, 1.05, kAna},
      {"kr-academy-sessions", "manager-academy", "Manager academy sessions run", "number",
       "sessions", 0, 10, 0.9, kRaj},
  };
}

// The demo company's story, written command by command at the moments
// it happened (set_clock), up to now_us. One use; not thread-safe.
class DemoStory {
 public:
  DemoStory(Projector* projector, int64_t now_us, const std::function<void(int64_t)>& set_clock)
      : projector_(projector),
        w_(projector),
        now_us_(now_us),
        set_clock_(set_clock),
        ids(DemoCycles(now_us)) {
    std::tie(prev, cur) = Quarters(now_us);
  }

  Status Write() {
    const int64_t cur_start = *ParseDate(cur.starts);
    At(DemoStartUs(now_us_));
    Organisation();
    Cycles();
    PreviousObjectives();
    AddKeyResults(prev_krs_);
    Weekly(prev, prev_krs_, 6, /*previous=*/true);
    At(cur_start - 2 * kMicrosPerDay);
    CurrentObjectives();
    AddKeyResults(cur_krs_);
    CloseAndReview(cur_start);
    Weekly(cur, cur_krs_, 4, /*previous=*/false);
    FinishingTouches();
    return w_.status();
  }

 private:
  static constexpr int64_t hour = 3600LL * 1'000'000;

  void At(int64_t us) { set_clock_(std::min(us, now_us_)); }

  void AddKeyResults(const std::vector<KrPlan>& plan) {
    for (const KrPlan& k : plan) {
      CreateKeyResult c;
      c.id = k.id;
      c.objective = k.objective;
      c.title = k.title;
      c.metric = k.metric;
      c.start = k.start;
      c.target = k.target;
      c.unit = k.unit;
      w_(k.checker, c);
    }
  }

  // The organisation.
  void Organisation() {
    w_(admin, CreateUnit{"acme", "company", "Acme Robotics", "", ""});
    w_(admin, CreateUnit{"hr", "department", "People & HR", "acme", ""});
    w_(admin, CreateUnit{"eng", "department", "Engineering", "acme", ""});
    w_(admin, CreateUnit{"ta", "team", "Talent Acquisition", "hr", ""});
    w_(admin, CreateUnit{"hr-ops", "team", "HR Operations", "hr", ""});
    w_(admin, CreateUnit{"l-and-d", "team", "Learning & Development", "hr", ""});
    w_(admin, CreateUnit{kMaya.unit, "person", "Maya Chen", "hr", "maya.chen@acme.example"});
    w_(admin, CreateUnit{kSam.unit, "person", "Sam Okafor", "ta", "sam.okafor@acme.example"});
    w_(admin,
       CreateUnit{kLena.unit, "person", "Lena Fischer", "hr-ops", "lena.fischer@acme.example"});
    w_(admin, CreateUnit{kRaj.unit, "person", "Raj Patel", "l-and-d", "raj.patel@acme.example"});
    w_(admin, CreateUnit{kAna.unit, "person", "Ana Silva", "eng", "ana.silva@acme.example"});
  }

  // A fiscal year that starts with the previous quarter, and its two quarters.
  void Cycles() {
    std::string year_ends =
        Date(prev.year + 1, static_cast<unsigned>(std::stoi(prev.starts.substr(5, 2))), 1);
    year_ends = FormatDate(*ParseDate(year_ends) - kMicrosPerDay);
    w_(admin,
       CreateCycle{ids.year,
                   "FY " + std::to_string(prev.year) + "/" + std::to_string((prev.year + 1) % 100),
                   prev.starts, year_ends, ""});
    w_(admin, CreateCycle{ids.previous_quarter,
                          "Q" + std::to_string(prev.q) + " " + std::to_string(prev.year),
                          prev.starts, prev.ends, ids.year});
    w_(admin, CreateCycle{ids.current_quarter,
                          "Q" + std::to_string(cur.q) + " " + std::to_string(cur.year), cur.starts,
                          cur.ends, ids.year});
  }

  // Previous quarter: build the team for the product launch.
  void PreviousObjectives() {
    const std::string& pq = ids.previous_quarter;
    // clang-format off
    w_(kMaya, CreateObjective{"acme-build-team", pq, "acme", "Build the team to ship Atlas v2",
                             "Atlas v2 needs a larger, well-onboarded engineering team.", {}});
    w_(kMaya, CreateObjective{"hr-hire-engineers", pq, "hr", "Hire the engineers Atlas v2 needs",
                             "", {"acme-build-team"}});
    w_(kSam, CreateObjective{"ta-fill-pipeline", pq, "ta", "Fill the hiring pipeline", "",
                            {"hr-hire-engineers"}});
    w_(kLena, CreateObjective{"ops-smooth-onboarding", pq, "hr-ops",
                             "Onboard every new hire smoothly", "", {"acme-build-team"}});
    w_(kRaj, CreateObjective{"ld-first-managers", pq, "l-and-d", "Train our first-time managers",
                            "", {"acme-build-team"}});
    // clang-format on
  }

  // Weekly check-ins, from each quarter's first Friday to its end or
  // today; in week `moved_at_week` a target moves.
  void Weekly(const Quarter& q, const std::vector<KrPlan>& krs, int64_t moved_at_week,
              bool previous) {
    int64_t start = *ParseDate(q.starts) + 4 * kMicrosPerDay + 16 * 3600LL * 1'000'000;
    int64_t end = std::min(*ParseDate(q.ends) + kMicrosPerDay, now_us_);
    uint64_t noise = 0x2545F4914F6CDD1DULL;
    for (int week = 0;; ++week) {
      int64_t at_us = start + week * 7 * kMicrosPerDay;
      if (at_us >= end) break;
      At(at_us + 2 * hour);
      for (const KrPlan& k : krs) CheckIn(k, week, at_us, end, &noise);
      if (week == moved_at_week) {
        At(at_us + 26 * hour);
        if (previous) {
          UpdateKeyResult u{"kr-engineers-hired", {}, {}, {}, {}, {}, 10.0, {}};
          w_(kMaya, u, "Hiring budget cut by two heads in the mid-quarter plan review");
        } else {
          UpdateKeyResult u{"kr-stay-interviews", {}, {}, {}, {}, {}, 50.0, {}};
          w_(kMaya, u, "Sales joined the programme");
        }
      }
    }
  }

  // Week `week`'s check-in on `k` at `at_us`, its value a share of the way
  // to target (k.reach by the last week), jittered by *noise_state.
  void CheckIn(const KrPlan& k, int week, int64_t at_us, int64_t end, uint64_t* noise_state) {
    assert(week >= 0 && at_us < end);
    const int total_weeks = 13;
    uint64_t& noise = *noise_state;
    // Nobody has checked in on this one for the last few weeks.
    if (k.stop_weeks_early && at_us > end - k.stop_weeks_early * 7 * kMicrosPerDay) return;
    noise ^= noise << 13;
    noise ^= noise >> 7;
    noise ^= noise << 17;
    double jitter = (static_cast<double>(noise % 1000) / 1000.0 - 0.5) * 0.06;
    double share = std::min(1.0, k.reach * (week + 1) / total_weeks + jitter);
    share = std::max(0.0, share);
    double value = k.start + (k.target - k.start) * share;
    if (k.metric == "boolean")
      value = week >= 6 ? 1 : 0;
    else if (k.unit == "%" || k.unit == "days")
      value = std::round(value * 10) / 10;
    else
      value = std::round(value);
    RecordCheckIn ci;
    ci.key_result = k.id;
    ci.value = value;
    ci.confidence = std::round((0.55 + share * 0.4) * 100) / 100;
    ci.status = share >= 0.6 * (week + 1) / total_weeks ? "on_track" : "at_risk";
    ci.note = week == 0 ? "First check-in of the quarter." : "Weekly update.";
    ci.measured_at_us = at_us;
    w_(k.checker, ci);
  }

  // Current quarter, planned just before it starts: keep the people we hired.
  void CurrentObjectives() {
    const std::string& cq = ids.current_quarter;
    // clang-format off
    w_(kMaya, CreateObjective{"acme-people-stay", cq, "acme", "Make Acme a place people stay", "", {}});
    w_(kMaya, CreateObjective{"hr-reduce-attrition", cq, "hr", "Reduce regretted attrition", "",
                             {"acme-people-stay"}});
    w_(kSam, CreateObjective{"ta-grow-referrals", cq, "ta", "Grow employee referrals", "",
                            {"hr-reduce-attrition"}});
    w_(kLena, CreateObjective{"ops-one-hris", cq, "hr-ops", "Move all HR data into one system",
                             "Retire the three spreadsheets and the old payroll tool.",
                             {"acme-people-stay"}});
    w_(kRaj, CreateObjective{"ld-career-paths", cq, "l-and-d", "Launch career paths", "",
                            {"hr-reduce-attrition"}});
    w_(kAna, CreateObjective{"eng-mentoring", cq, "eng", "Mentor every new engineer", "",
                            {"hr-reduce-attrition", "ld-career-paths"}});
    w_(kRaj, CreateObjective{"manager-academy", cq, kRaj.unit, "Run the manager academy", "",
                            {"ld-career-paths"}});
    w_(kSam, CreateObjective{"ta-campus-events", cq, "ta", "Run campus recruiting events", "",
                            {"hr-reduce-attrition"}});
    // clang-format on
  }

  // The previous quarter ends: closed, then reviewed.
  void CloseAndReview(int64_t cur_start) {
    const std::string& pq = ids.previous_quarter;
    At(cur_start + kMicrosPerDay);
    // clang-format off
    w_(admin, CloseCycle{pq}, "Quarter ended");
    At(cur_start + 3 * kMicrosPerDay);
    w_(kMaya, ReviewObjective{"acme-build-team", 0.8, "partially",
                             "We hired most of the team, but later than planned.",
                             "Start hiring a quarter before the product needs the people."});
    w_(kMaya, ReviewObjective{"hr-hire-engineers", 0.75, "partially",
                             "Nine of ten engineers signed; time to hire improved but missed 30 days.",
                             "Budget changes mid-quarter need a re-plan of every dependent key result."});
    w_(kSam, ReviewObjective{"ta-fill-pipeline", 1.0, "achieved",
                            "The referral push filled every role's pipeline.", "Referrals work; keep them."});
    w_(kLena, ReviewObjective{"ops-smooth-onboarding", 0.9, "achieved",
                             "Every laptop was ready on day one from week seven.", ""});
    w_(kRaj, ReviewObjective{"ld-first-managers", 0.5, "missed",
                            "Only half the managers could attend during the launch crunch.",
                            "Avoid launch weeks for training."});
    // clang-format on
  }

  // A corrected check-in, an owner change, an archived objective, comments.
  void FinishingTouches() {
    At(now_us_ - 20 * hour);
    std::string corrected;
    double corrected_value = 0;
    projector_->Read([&](const Projection& p) {
      const KeyResult* kr = p.key_result("kr-records-migrated");
      if (kr && kr->check_ins.size() > 2) {
        corrected = kr->check_ins[1].id;
        corrected_value = kr->check_ins[1].value + 5;
      }
      return 0;
    });
    if (!corrected.empty()) {
      w_(kLena,
         CorrectCheckIn{"kr-records-migrated", corrected, corrected_value,
                        "The export skipped the Berlin office; recounted."},
         "Recount after the Berlin export was fixed");
    }
    w_(kMaya, UpdateObjective{"ta-grow-referrals", {}, {}, std::string(kSam.unit), {}, {}},
       "Sam runs the referral programme end to end");
    w_(kSam, ArchiveObjective{"ta-campus-events"}, "Campus season moved to spring");
    w_(kMaya,
       AddComment{"hr-reduce-attrition",
                  "Exit interviews keep pointing at career growth: see L&D's career paths."});
    w_(kLena,
       AddComment{"kr-payroll-errors", "Most remaining errors are manual overtime entries."});
  }

  const std::string admin = "admin";
  Projector* projector_;
  Writer w_;
  const int64_t now_us_;
  const std::function<void(int64_t)>& set_clock_;
  const DemoIds ids;
  Quarter prev, cur;
  const std::vector<KrPlan> prev_krs_ = PreviousQuarterKrs();
  const std::vector<KrPlan> cur_krs_ = CurrentQuarterKrs();
};

}  // namespace

DemoIds DemoCycles(int64_t now_us) {
  auto [prev, cur] = Quarters(now_us);
  return {"fy" + std::to_string(prev.year), QuarterId(prev.year, prev.q),
          QuarterId(cur.year, cur.q)};
}

int64_t DemoStartUs(int64_t now_us) {
  return *ParseDate(Quarters(now_us).first.starts) - 3 * kMicrosPerDay;
}

Result<bool> DemoFills(const EventStore& store) {
  const uint64_t head = store.head().seq;
  OKR_ASSIGN_OR_RETURN(uint64_t own, store.Version(kLogEntity));
  assert(own <= head);
  return head == own;  // every event so far is the log's own (its key)
}

Status FillDemo(Projector* projector, EventStore* store, int64_t now_us,
                const std::function<void(int64_t)>& set_clock) {
  assert(projector != nullptr && store != nullptr);
  OKR_ASSIGN_OR_RETURN(bool fills, DemoFills(*store));
  if (!fills) return Status::Invalid("the demo fills only a new data directory");
  return DemoStory(projector, now_us, set_clock).Write();
}

}  // namespace okr::api
