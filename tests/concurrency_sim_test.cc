// Racing clients: a seeded simulation against the real okrd.
//
// 32 clients, each driven by a generator seeded from one run seed, send a
// random mix of writes over a small, shared id space so that they collide:
// creates of every kind naming the same ids at once (ids are unique across
// all kinds), objectives aligned to busy objectives, key results, check-ins
// with explicit ids on different key results, corrections, comments,
// archive/restore, close/reopen of a cycle, with and without If-Match and
// Idempotency-Key (exact retries, and the same key with another body), and
// some invalid requests. Every request and answer is recorded. Afterwards:
//   1. every acknowledged write is in the log at the seq it was answered
//      with, as the event it asked for, and the entity shows it when it is
//      the entity's latest event;
//   2. every event in the log is attributable to exactly one acknowledged
//      write (or to a request that got no answer at all);
//   3. /healthz is ok and its head_seq is the number of events;
//   4. no id is held twice (in the log and through the read API), and each
//      entity's versions are dense, as /v1/history/{id} shows;
//   5. reads at the head answer the same, byte for byte, after a restart
//      from the newest snapshot and after a restart that replays the whole
//      log (snapshots deleted);
//   6. `okrctl verify --data` passes on the stopped log.
//
// OKR_SIM_SEED replaces the fixed seeds with one of your choice; every
// failure names the seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "eventstore/event_store.h"
#include "tests/okrd_harness.h"

#ifndef OKRCTL_PATH
#error "OKRCTL_PATH (the okrctl binary) must be defined"
#endif

namespace okr::testing {
namespace {

const Token kAdmin{"tok-sim-admin-5e0c2a9d", "sim-admin", "admin", {}};
const Token kEditor{"tok-sim-editor-83b17f42", "sim-editor", "editor", {"ops"}};
const Token kAuditor{"tok-sim-auditor-d4a96e10", "sim-auditor", "auditor", {}};

constexpr int kClients = 32;
constexpr int kStepsPerClient = 250;
constexpr auto kWritePhaseLimit = std::chrono::seconds(25);
constexpr int kSnapshotEvery = 64;
// Ids contested by every client: "x<generation>-<n>", a new generation every
// few steps, so collisions keep happening all through the run.
constexpr int kStepsPerGeneration = 6;
constexpr int kIdsPerGeneration = 3;
constexpr int kMaxPages = 1000;
constexpr int kShownProblems = 12;

const std::vector<std::string> kBaseObjectives = {"o0", "o1", "o2", "o3"};
const std::vector<std::string> kBaseKeyResults = {"k0", "k1", "k2", "k3"};

// What the client meant a request to do, which decides what it may answer.
enum class Intent {
  kWrite,     // a plausible write: any refusal a rule allows, or an append
  kInvalid,   // broken on purpose: exactly `refusal`
  kReplay,    // an exact retry of an acknowledged write: its first answer
  kKeyReuse,  // an acknowledged write's key with another body: 422
};

// One request a client sent and the answer it got.
struct Op {
  int client = 0, step = 0;
  std::string method, path, body;
  const Token* token = &kAdmin;
  std::string key;                   // Idempotency-Key, "" for none
  std::optional<uint64_t> if_match;  // If-Match, when sent
  Intent intent = Intent::kWrite;
  int refusal = 0;           // kInvalid: the status expected
  std::string entity, type;  // the event an append would store
  std::string check_in;      // an explicit check-in id
  bool may_be_noop = false;  // a restore of an active objective
  int original = -1;         // a retry: the index of the op it retries
  Reply reply;

  bool acknowledged() const { return reply.status >= 200 && reply.status < 300; }
  bool replayed() const { return reply.header("Idempotent-Replayed") == "true"; }
  std::string Describe() const {
    std::ostringstream os;
    os << "client " << client << " step " << step << ": " << method << " " << path << " " << body
       << " as " << token->actor << (key.empty() ? "" : " key " + key)
       << (if_match ? " If-Match " + std::to_string(*if_match) : "") << " → " << reply;
    return os.str();
  }
};

Reply Send(const Okrd& s, const Op& op) {
  httplib::Headers headers;
  if (!op.key.empty()) headers.emplace("Idempotency-Key", op.key);
  if (op.if_match) headers.emplace("If-Match", "\"" + std::to_string(*op.if_match) + "\"");
  return s.Request(op.method, op.path, op.body, op.token->token, headers);
}

// ---------------------------------------------------------------- clients

// One client: a seeded generator of requests over the shared id space. It
// runs in its own thread and owns its record of ops.
class Client {
 public:
  Client(const Okrd& s, int id, uint64_t seed) : s_(s), id_(id), rng_(seed) {}

  // Sends requests until its steps are done, the deadline passes or some
  // client saw okrd fail (a failed run learns nothing more by going on).
  void Run(Clock::time_point deadline, std::atomic<bool>* failed) {
    for (int step = 0; step < kStepsPerClient && Clock::now() < deadline && !*failed; ++step) {
      step_ = step;
      Op op = Next();
      op.client = id_;
      op.step = step;
      Issue(std::move(op));
      if (ops_.back().reply.status >= 500) *failed = true;
    }
  }
  const std::vector<Op>& ops() const { return ops_; }

 private:
  int Roll(int n) { return static_cast<int>(rng_() % static_cast<uint64_t>(n)); }
  bool Chance(int percent) { return Roll(100) < percent; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[rng_() % v.size()];
  }

  std::string Contested(int generations_back = 0) {
    int gen = std::max(0, step_ / kStepsPerGeneration - generations_back);
    return "x" + std::to_string(gen) + "-" + std::to_string(Roll(kIdsPerGeneration));
  }
  std::string Fresh() { return "c" + std::to_string(id_) + "-" + std::to_string(step_); }
  std::string NewId() { return Chance(75) ? Contested() : Fresh(); }
  std::string SomeObjective() { return Chance(70) ? Pick(kBaseObjectives) : Contested(Roll(2)); }
  std::string SomeKeyResult() {
    if (!own_key_results_.empty() && Chance(15)) return Pick(own_key_results_);
    return Chance(70) ? Pick(kBaseKeyResults) : Contested(Roll(2));
  }
  const Token* Writer() { return Chance(50) ? &kEditor : &kAdmin; }

  // Sends `op`, records it, and sometimes retries it on purpose.
  void Issue(Op op) {
    if (Chance(30)) op.key = "sim-" + std::to_string(id_) + "-" + std::to_string(step_);
    op.reply = Send(s_, op);
    ops_.push_back(op);
    if (op.key.empty() || op.intent != Intent::kWrite) return;
    int original = static_cast<int>(ops_.size()) - 1;
    // A refused write, or one that changed nothing, records no key: its
    // retry is decided afresh.
    bool recorded = op.acknowledged() && !op.may_be_noop;
    if (Chance(25)) {
      Op retry = op;
      retry.intent = recorded ? Intent::kReplay : Intent::kWrite;
      retry.original = original;
      retry.reply = Send(s_, retry);
      ops_.push_back(std::move(retry));
    } else if (Chance(8) && !op.body.empty()) {
      Op other = op;
      json body = json::parse(op.body);
      body["reason"] = "another body under the same key";
      other.body = body.dump();
      other.intent = recorded ? Intent::kKeyReuse : Intent::kWrite;
      other.original = original;
      other.reply = Send(s_, other);
      ops_.push_back(std::move(other));
    }
    if (op.acknowledged() && op.type == "key_result.added") own_key_results_.push_back(op.entity);
    if (op.acknowledged() && op.type == "check_in.recorded") {
      own_check_ins_.emplace_back(op.entity, op.reply.json["check_in"].value("id", ""));
    }
  }

  // The mix of operations: each is picked in its share of 100 draws, and
  // the rest (11) are invalid requests.
  struct Share {
    int percent;
    Op (Client::*make)();
  };
  Op Next() {
    static constexpr Share kMix[] = {
        {6, &Client::CreateUnit},       {4, &Client::CreateCycle}, {12, &Client::CreateObjective},
        {10, &Client::CreateKeyResult}, {25, &Client::CheckIn},    {5, &Client::Correct},
        {3, &Client::Comment},          {8, &Client::Retitle},     {4, &Client::MoveTarget},
        {4, &Client::Archive},          {4, &Client::Restore},     {4, &Client::CloseOrReopen},
    };
    int pick = Roll(100);
    for (const Share& share : kMix) {
      if (pick < share.percent) return (this->*share.make)();
      pick -= share.percent;
    }
    return Invalid();
  }

  static Op Write(std::string method, std::string path, const json& body, const Token* token,
                  std::string entity, std::string type) {
    Op op;
    op.method = std::move(method);
    op.path = std::move(path);
    op.body = body.is_null() ? "" : body.dump();
    op.token = token;
    op.entity = std::move(entity);
    op.type = std::move(type);
    return op;
  }

  Op CreateUnit() {
    std::string id = NewId();
    return Write("POST", "/v1/units",
                 {{"id", id}, {"kind", "team"}, {"name", "Team " + id}, {"parent", "ops"}}, &kAdmin,
                 id, "unit.created");
  }
  Op CreateCycle() {
    std::string id = NewId();
    return Write(
        "POST", "/v1/cycles",
        {{"id", id}, {"name", "Cycle " + id}, {"starts", DateIn(-10)}, {"ends", DateIn(80)}},
        &kAdmin, id, "cycle.created");
  }
  Op CreateObjective() {
    std::string id = NewId();
    json parents = json::array();
    for (int n = Roll(3); n > 0; --n) parents.push_back(SomeObjective());
    std::string cycle = Chance(75) ? "c0" : Chance(70) ? "c1" : Contested(1);
    return Write("POST", "/v1/objectives",
                 {{"id", id},
                  {"cycle", cycle},
                  {"owner", Chance(50) ? "ops" : "ops-a"},
                  {"title", "Objective " + id},
                  {"parents", parents}},
                 Writer(), id, "objective.created");
  }
  Op CreateKeyResult() {
    std::string id = NewId();
    return Write("POST", "/v1/key-results",
                 {{"id", id},
                  {"objective", SomeObjective()},
                  {"title", "Result " + id},
                  {"start", 0},
                  {"target", 100}},
                 Writer(), id, "key_result.added");
  }
  Op CheckIn() {
    std::string kr = SomeKeyResult();
    json body = {{"value", Roll(1000) / 10.0}, {"note", "check-in " + Fresh()}};
    if (Chance(60)) body["id"] = Contested();
    Op op = Write("POST", "/v1/key-results/" + kr + "/check-ins", body, Writer(), kr,
                  "check_in.recorded");
    op.check_in = body.value("id", "");
    return op;
  }
  Op Correct() {
    std::string kr = SomeKeyResult(), corrects = Contested(Roll(3));
    if (!own_check_ins_.empty() && Chance(70)) std::tie(kr, corrects) = Pick(own_check_ins_);
    return Write("POST", "/v1/key-results/" + kr + "/corrections",
                 {{"corrects", corrects}, {"value", Roll(1000) / 10.0}, {"note", "fix " + Fresh()}},
                 Writer(), kr, "check_in.corrected");
  }
  Op Comment() {
    bool on_objective = Chance(50);
    std::string target = on_objective ? SomeObjective() : SomeKeyResult();
    return Write(
        "POST",
        std::string(on_objective ? "/v1/objectives/" : "/v1/key-results/") + target + "/comments",
        {{"text", "comment " + Fresh()}}, Writer(), target, "comment.added");
  }
  Op Retitle() {
    std::string id = SomeObjective();
    Op op = Write("PATCH", "/v1/objectives/" + id, {{"title", "Retitled " + Fresh()}}, Writer(), id,
                  "objective.retitled");
    MaybeIfMatch(&op, "/v1/objectives/" + id);
    return op;
  }
  Op MoveTarget() {
    std::string id = SomeKeyResult();
    // Unique per request, so the write always changes something.
    double target = 1000.0 + id_ * 1000 + step_;
    Op op = Write("PATCH", "/v1/key-results/" + id, {{"target", target}, {"reason", "rescoped"}},
                  Writer(), id, "key_result.target_changed");
    MaybeIfMatch(&op, "/v1/key-results/" + id);
    return op;
  }
  Op Archive() {
    std::string id = SomeObjective();
    Op op = Write("DELETE", "/v1/objectives/" + id, nullptr, Writer(), id, "objective.archived");
    MaybeIfMatch(&op, "/v1/objectives/" + id);
    return op;
  }
  Op Restore() {
    std::string id = SomeObjective();
    Op op = Write("PATCH", "/v1/objectives/" + id, {{"state", "active"}}, Writer(), id,
                  "objective.restored");
    op.may_be_noop = true;
    MaybeIfMatch(&op, "/v1/objectives/" + id);
    return op;
  }
  Op CloseOrReopen() {
    bool close = Chance(50);
    Op op = Write("POST", std::string("/v1/cycles/c1/") + (close ? "close" : "reopen"), nullptr,
                  &kAdmin, "c1", close ? "cycle.closed" : "cycle.reopened");
    MaybeIfMatch(&op, "/v1/cycles/c1");
    return op;
  }

  // Reads the entity's version and names it (or, sometimes, a stale one).
  void MaybeIfMatch(Op* op, const std::string& read_path) {
    if (!Chance(40)) return;
    Reply r = s_.Get(read_path);
    uint64_t version = r.status == 200 ? r.u("version") : 1;
    op->if_match = Chance(20) && version > 1 ? version - 1 : version;
  }

  Op Invalid() {
    std::string kr = "k" + std::to_string(Roll(4)), id = Fresh();
    Op op;
    switch (Roll(6)) {
      case 0:
        op = Write("POST", "/v1/key-results/" + kr + "/check-ins",
                   {{"value", 1}, {"confidance", 0.5}}, &kAdmin, kr, "");
        op.refusal = 400;
        break;
      case 1:
        op = Write("POST", "/v1/key-results/" + kr + "/check-ins", {{"value", "50"}}, &kAdmin, kr,
                   "");
        op.refusal = 400;
        break;
      case 2:
        op =
            Write("POST", "/v1/key-results",
                  {{"id", id}, {"objective", "o0"}, {"title", "Flat"}, {"start", 5}, {"target", 5}},
                  &kAdmin, id, "");
        op.refusal = 422;
        break;
      case 3:
        op = Write("POST", "/v1/objectives",
                   {{"id", "Not An Id!"}, {"cycle", "c0"}, {"owner", "ops"}, {"title", "T"}},
                   &kAdmin, "", "");
        op.refusal = 422;
        break;
      case 4:
        op = Write("POST", "/v1/units",
                   {{"id", id}, {"kind", "team"}, {"name", "T"}, {"parent", "ops"}}, &kEditor, id,
                   "");
        op.refusal = 403;
        break;
      default:
        op = Write("POST", "/v1/key-results/k0/check-ins",
                   {{"value", 1}, {"measured_at", "2999-01-01T00:00:00Z"}}, &kAdmin, "k0", "");
        op.refusal = 422;
        break;
    }
    op.intent = Intent::kInvalid;
    return op;
  }

  const Okrd& s_;
  int id_;
  int step_ = 0;
  std::mt19937_64 rng_;
  std::vector<Op> ops_;
  std::vector<std::string> own_key_results_;
  std::vector<std::pair<std::string, std::string>> own_check_ins_;  // (key result, check-in)
};

// ---------------------------------------------------------------- the log

// Problems of one kind, reported as one failure when it goes out of scope:
// how many, and the first few.
class Findings {
 public:
  explicit Findings(std::string what) : what_(std::move(what)) {}
  ~Findings() {
    if (count_ > 0)
      ADD_FAILURE() << count_ << " " << what_ << "; the first " << std::min(count_, kShownProblems)
                    << ":" << text_;
  }
  Findings(const Findings&) = delete;
  Findings& operator=(const Findings&) = delete;
  void Add(const std::string& problem) {
    if (count_++ < kShownProblems) text_ += "\n- " + problem;
  }
  int count() const { return count_; }

 private:
  std::string what_, text_;
  int count_ = 0;
};

struct LoggedEvent {
  uint64_t seq = 0, version = 0;
  std::string type, entity, key;
  json data;
};

// Follows `next` (as `param`) until the last page; every page must be 200.
// A failed page goes to `failures` when given, else fails the test at once.
std::vector<json> Pages(const Okrd& s, const std::string& path, const std::string& param,
                        Findings* failures = nullptr) {
  std::vector<json> pages;
  std::string sep = path.find('?') == std::string::npos ? "?" : "&";
  std::string url = path;
  for (int n = 0; n < kMaxPages; ++n) {
    Reply r = s.Get(url, kAuditor.token);
    if (r.status != 200) {
      if (failures) failures->Add("GET " + url + ": " + ::testing::PrintToString(r));
      if (!failures) ADD_FAILURE() << "GET " << url << ": " << r;
      return pages;
    }
    pages.push_back(r.json);
    if (!r.json.is_object() || !r.json.contains("next") || r.json["next"].is_null()) return pages;
    const json& next = r.json["next"];
    if (pages.size() > 1 && pages[pages.size() - 2] == r.json) {
      ADD_FAILURE() << path << ": next " << next << " does not advance (the cursor is not taken as "
                    << param << ")";
      return pages;
    }
    url = path + sep + param + "=" +
          UrlEncode(next.is_string() ? next.get<std::string>() : next.dump());
  }
  ADD_FAILURE() << path << ": more than " << kMaxPages << " pages";
  return pages;
}

std::vector<json> Items(const Okrd& s, const std::string& path, const std::string& param) {
  std::vector<json> items;
  for (const json& page : Pages(s, path, param)) {
    for (const json& item : page.value("items", json::array())) items.push_back(item);
  }
  return items;
}

LoggedEvent FromJson(const json& ev) {
  return {ev["seq"].get<uint64_t>(),
          ev["version"].get<uint64_t>(),
          ev["type"].get<std::string>(),
          ev["entity"].get<std::string>(),
          ev["idempotency_key"].get<std::string>(),
          ev["data"]};
}

std::map<uint64_t, LoggedEvent> ReadLog(const Okrd& s) {
  std::map<uint64_t, LoggedEvent> log;
  for (const json& ev : Items(s, "/v1/events?limit=1000", "after"))
    log[ev["seq"].get<uint64_t>()] = FromJson(ev);
  return log;
}

// The id an event creates ("" when it creates none).
std::string CreatedId(const LoggedEvent& ev) {
  static const std::set<std::string> kCreates = {"unit.created", "cycle.created",
                                                 "objective.created", "key_result.added"};
  if (kCreates.count(ev.type)) return ev.entity;
  if (ev.type == "check_in.recorded") return ev.data.value("check_in", "");
  return "";
}

// ---------------------------------------------------------------- the test

class ConcurrencySim : public ::testing::TestWithParam<uint64_t> {
 protected:
  ConcurrencySim()
      : okrd_(
            OkrdOptions{std::vector<Token>{kAdmin, kEditor, kAuditor},
                        {"--snapshot-every", std::to_string(kSnapshotEvery), "--dashboard", ""}}) {}

  void SetUp() override {
    seed_ = GetParam();
    ASSERT_TRUE(okrd_.Start());
    BuildOrganisation();
  }

  void Created(const Reply& r) { ASSERT_EQ(r.status, 201) << r; }

  // A company with an operations department and its team, an open cycle and
  // one that clients close and reopen, four objectives with a key result each.
  void BuildOrganisation() {
    const std::string& t = kAdmin.token;
    Created(okrd_.Post("/v1/units", {{"id", "acme"}, {"kind", "company"}, {"name", "Acme"}}, t));
    Created(okrd_.Post("/v1/units",
                       {{"id", "ops"}, {"kind", "department"}, {"name", "Ops"}, {"parent", "acme"}},
                       t));
    Created(okrd_.Post(
        "/v1/units", {{"id", "ops-a"}, {"kind", "team"}, {"name", "Ops A"}, {"parent", "ops"}}, t));
    for (const char* c : {"c0", "c1"}) {
      Created(okrd_.Post("/v1/cycles",
                         {{"id", c}, {"name", c}, {"starts", DateIn(-20)}, {"ends", DateIn(70)}},
                         t));
    }
    for (int n = 0; n < 4; ++n) {
      std::string o = kBaseObjectives[n], k = kBaseKeyResults[n];
      Created(okrd_.Post(
          "/v1/objectives",
          {{"id", o}, {"cycle", n == 3 ? "c1" : "c0"}, {"owner", "ops"}, {"title", "Base " + o}},
          t));
      Created(okrd_.Post("/v1/key-results",
                         {{"id", k}, {"objective", o}, {"title", "Base " + k}, {"target", 100}},
                         t));
    }
    setup_head_ = okrd_.HeadSeq();
  }

  // Runs the 32 clients to the end of their steps or the time limit.
  void RaceClients() {
    std::mt19937_64 rng(seed_);
    std::vector<std::unique_ptr<Client>> clients;
    for (int c = 0; c < kClients; ++c) clients.push_back(std::make_unique<Client>(okrd_, c, rng()));
    auto started = Clock::now();
    std::vector<std::thread> threads;
    std::atomic<bool> failed{false};
    for (auto& c : clients) {
      threads.emplace_back(
          [&c, &failed, deadline = started + kWritePhaseLimit] { c->Run(deadline, &failed); });
    }
    for (auto& t : threads) t.join();
    write_phase_ms_ =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    for (auto& c : clients) {
      int base = static_cast<int>(ops_.size());
      for (Op op : c->ops()) {
        if (op.original >= 0) op.original += base;
        ops_.push_back(std::move(op));
      }
    }
  }

  // Every answer is one its request allows.
  void CheckAnswers() {
    Findings f("answers no request of that kind may get");
    for (const Op& op : ops_) {
      if (std::string why = Unexpected(op); !why.empty()) f.Add(why + "\n    " + op.Describe());
    }
    unexpected_ = f.count();
  }

  std::string Unexpected(const Op& op) const {
    const Reply& r = op.reply;
    if (r.status == 0) return "";  // no answer: the log check accounts for it
    if (r.status >= 500) return "okrd failed a request it should have decided";
    switch (op.intent) {
      case Intent::kInvalid:
        return r.status == op.refusal
                   ? ""
                   : "a broken request is refused with " + std::to_string(op.refusal);
      case Intent::kReplay: {
        const Op& first = ops_.at(op.original);
        if (!op.replayed()) return "a retry with the same key and body replays the first answer";
        if (r.status != first.reply.status || r.json != first.reply.json)
          return "the replay differs from the first answer";
        return "";
      }
      case Intent::kKeyReuse:
        return r.status == 422 && r.field() == "Idempotency-Key"
                   ? ""
                   : "the same key with another body is 422";
      case Intent::kWrite:
        break;
    }
    if (r.status == 412 && !op.if_match)
      return "412 without If-Match: only the version a client named may refuse it";
    if (r.status == 400) return "a well-formed request refused as malformed";
    if (op.acknowledged() && op.replayed() && op.original < 0)
      return "a first request answered as a replay";
    return "";
  }

  // The requests that may have written `ev`, and what they were answered.
  std::string Askers(const LoggedEvent& ev) const {
    std::string out;
    int n = 0;
    for (const Op& op : ops_) {
      std::string check_in = ev.data.is_object() ? ev.data.value("check_in", "") : "";
      bool same_check_in = op.check_in.empty() ? check_in.rfind("ci-", 0) == 0 || check_in.empty()
                                               : op.check_in == check_in;
      if (op.entity != ev.entity || op.type != ev.type || op.key != ev.key || !same_check_in)
        continue;
      if (op.acknowledged() && op.reply.u("seq") != ev.seq) continue;
      if (n++ < 3) out += "\n    asked by " + op.Describe();
    }
    return out;
  }

  static std::string Name(const LoggedEvent& ev) {
    std::string check_in = ev.data.is_object() ? ev.data.value("check_in", "") : "";
    return "seq " + std::to_string(ev.seq) + " (" + ev.type + " of " + ev.entity +
           (check_in.empty() ? "" : ", check-in " + check_in) + ")";
  }

  // Checks 1 and 2: acknowledged writes are in the log as asked, and every
  // event of the log belongs to one of them (or to a request never answered).
  void CheckAttribution(const std::map<uint64_t, LoggedEvent>& log) {
    Findings f("acknowledged writes the log does not hold as answered");
    std::map<uint64_t, const Op*> claimed;
    std::vector<const Op*> noops;
    for (const Op& op : ops_) {
      if (!op.acknowledged()) continue;
      ++acknowledged_;
      uint64_t seq = op.reply.u("seq");
      auto it = log.find(seq);
      if (it == log.end()) {
        f.Add("seq " + std::to_string(seq) + " is not in the log: " + op.Describe());
        continue;
      }
      const LoggedEvent& ev = it->second;
      if (op.replayed()) {
        if (ev.key != op.key || ev.entity != op.entity)
          f.Add("a replay names another write's seq: " + op.Describe());
      } else if (op.may_be_noop) {
        noops.push_back(&op);
      } else if (ev.entity != op.entity || ev.type != op.type) {
        f.Add(Name(ev) + " is not what was acknowledged: " + op.Describe());
      } else if (claimed.count(seq)) {
        f.Add(Name(ev) + " acknowledged to two writes: " + claimed[seq]->Describe() + "\n    and " +
              op.Describe());
      } else if (ev.key != op.key ||
                 (!op.check_in.empty() && ev.data.value("check_in", "") != op.check_in)) {
        f.Add(Name(ev) + " carries another key or check-in id: " + op.Describe());
      } else {
        claimed[seq] = &op;
      }
    }
    for (const Op* op : noops) {
      const LoggedEvent& ev = log.at(op->reply.u("seq"));
      if (ev.type == op->type && ev.entity == op->entity && !claimed.count(ev.seq)) {
        claimed[ev.seq] = op;
      } else if (ev.entity != op->entity) {
        f.Add("a write that changed nothing names another entity's event: " + op->Describe());
      }
    }
    AccountForUnclaimed(log, claimed);
  }

  void AccountForUnclaimed(const std::map<uint64_t, LoggedEvent>& log,
                           const std::map<uint64_t, const Op*>& claimed) {
    Findings f("events in the log that no client was told were written");
    std::vector<const Op*> unanswered;
    for (const Op& op : ops_) {
      if (op.reply.status == 0) unanswered.push_back(&op);
    }
    for (const auto& [seq, ev] : log) {
      if (seq <= setup_head_ || claimed.count(seq)) continue;
      auto it = std::find_if(unanswered.begin(), unanswered.end(), [&](const Op* op) {
        return op && op->entity == ev.entity && op->type == ev.type && op->key == ev.key;
      });
      if (it != unanswered.end()) {
        *it = nullptr;
        continue;
      }
      f.Add(Name(ev) + Askers(ev));
    }
    unattributed_ = f.count();
  }

  // Check 3.
  void CheckHealth(uint64_t events) {
    Reply h = okrd_.Get("/healthz");
    EXPECT_EQ(h.status, 200) << h;
    EXPECT_EQ(h.json.value("status", ""), "ok") << h;
    EXPECT_EQ(h.u("head_seq"), events) << h;
    EXPECT_EQ(h.u("projected_seq"), events) << "reads stand behind the log: " << h;
    Reply verify = okrd_.Get("/v1/audit/verify", kAuditor.token);
    EXPECT_EQ(verify.json.value("ok", false), true) << verify;
  }

  // Check 4, in the log: each id created once, versions 1, 2, 3 … per
  // entity, and /v1/history/{id} shows the same events.
  void CheckIdsAndVersionsInLog(const std::map<uint64_t, LoggedEvent>& log) {
    Findings twice("ids the log creates twice"),
        versions("entities whose versions are not 1, 2, 3 …"),
        history("entities whose /v1/history differs from the log");
    std::map<std::string, const LoggedEvent*> created;
    std::map<std::string, std::vector<const LoggedEvent*>> streams;
    for (const auto& [seq, ev] : log) {
      if (ev.entity == kLogEntity) continue;  // the log's own key: no OKR entity, no history
      streams[ev.entity].push_back(&ev);
      std::string id = CreatedId(ev);
      if (id.empty()) continue;
      auto [it, fresh] = created.emplace(id, &ev);
      if (!fresh)
        twice.Add("id " + id + ": " + Name(*it->second) + Askers(*it->second) + "\n  and " +
                  Name(ev) + Askers(ev));
    }
    for (const auto& [entity, events] : streams) {
      std::vector<uint64_t> seqs, shown;
      for (size_t v = 0; v < events.size(); ++v) {
        seqs.push_back(events[v]->seq);
        if (events[v]->version != v + 1)
          versions.Add(Name(*events[v]) + " has version " + std::to_string(events[v]->version));
      }
      for (const json& h : Items(okrd_, "/v1/history/" + entity + "?limit=1000", "after"))
        shown.push_back(h["seq"]);
      if (shown != seqs)
        history.Add(entity + ": " + json(shown).dump() + " instead of " + json(seqs).dump());
    }
    for (const auto& [id, ev] : created) created_ids_[id] = ev->seq;
  }

  // Check 4 through the read API, and check 1's "the entity shows it": every
  // id the log created is readable once, with its version and last change.
  void CheckIdsThroughApi(const std::map<uint64_t, LoggedEvent>& log) {
    Findings twice("ids the read API shows held twice"),
        missing("ids the log created that no read shows");
    std::map<std::string, std::string> holder;  // id → kind
    auto hold = [&](const json& id, const std::string& kind) {
      auto [it, fresh] = holder.emplace(id.get<std::string>(), kind);
      if (!fresh) twice.Add(it->first + " is a " + it->second + " and a " + kind);
    };
    for (const json& u : Items(okrd_, "/v1/units?limit=1000", "cursor")) hold(u["id"], "unit");
    for (const json& c : Items(okrd_, "/v1/cycles?limit=1000", "cursor")) hold(c["id"], "cycle");
    for (const json& o :
         Items(okrd_, "/v1/objectives?include_archived=true&limit=1000", "cursor")) {
      hold(o["id"], "objective");
      for (const json& kr : o.value("key_results", json::array())) {
        hold(kr["id"], "key result");
        std::string path =
            "/v1/key-results/" + kr["id"].get<std::string>() + "/check-ins?limit=1000";
        for (const json& ci : Items(okrd_, path, "cursor")) hold(ci["id"], "check-in");
      }
    }
    for (const auto& [id, seq] : created_ids_) {
      if (!holder.count(id)) missing.Add(id + ", created at seq " + std::to_string(seq));
    }
    EXPECT_EQ(holder.size(), created_ids_.size()) << "the read API holds ids the log never created";
    CheckLatestChanges(log);
  }

  // The newest event of each entity shows in what the entity reads.
  void CheckLatestChanges(const std::map<uint64_t, LoggedEvent>& log) {
    Findings f("entities that do not show their newest event");
    std::map<std::string, const LoggedEvent*> first, latest;
    for (const auto& [seq, ev] : log) {
      if (ev.entity == kLogEntity) continue;  // the log's own key: no OKR entity to read
      first.emplace(ev.entity, &ev);
      latest[ev.entity] = &ev;
    }
    for (const auto& [entity, ev] : latest) {
      std::string path = EntityPath(first[entity]->type, entity);
      Reply r = okrd_.Get(path);
      json want = ExpectedFields(*ev);
      want["version"] = ev->version;
      for (const auto& [field, value] : want.items()) {
        if (r.json.is_object() && r.json.value(field, json()) == value) continue;
        f.Add(path + " after " + Name(*ev) + ": " + field + " should be " + value.dump() + "; " +
              (r.status == 200 ? r.json.value(field, json()).dump()
                               : "answered " + std::to_string(r.status)));
      }
    }
  }

  // What an entity whose newest event is `ev` shows of it.
  static json ExpectedFields(const LoggedEvent& ev) {
    if (ev.type == "objective.retitled") return {{"title", ev.data["after"]}};
    if (ev.type == "objective.archived") return {{"state", "archived"}};
    if (ev.type == "objective.restored") return {{"state", "active"}};
    if (ev.type == "key_result.target_changed") return {{"target", ev.data["after"]}};
    if (ev.type == "cycle.closed") return {{"state", "closed"}};
    if (ev.type == "cycle.reopened") return {{"state", "open"}};
    return json::object();
  }

  // The read route of the entity whose first event is `created`.
  static std::string EntityPath(const std::string& created, const std::string& id) {
    if (created == "unit.created") return "/v1/units/" + id;
    if (created == "cycle.created") return "/v1/cycles/" + id;
    if (created == "objective.created") return "/v1/objectives/" + id;
    if (created == "key_result.added") return "/v1/key-results/" + id;
    ADD_FAILURE() << id << " begins with " << created;
    return "/v1/units/" + id;
  }

  // Check 5: what okrd answers at the head, each page of each list.
  std::map<std::string, std::string> CaptureAnswers(uint64_t head) {
    std::string at = "as_of=" + std::to_string(head);
    std::vector<std::string> paths = {"/v1/units?limit=1000&" + at, "/v1/cycles?limit=1000&" + at,
                                      "/v1/diff?from=0&to=" + std::to_string(head),
                                      "/v1/lint?" + at};
    for (const json& c : Items(okrd_, "/v1/cycles?limit=1000&" + at, "cursor")) {
      std::string id = c["id"];
      paths.push_back("/v1/objectives?include_archived=true&limit=1000&cycle=" + id + "&" + at);
      paths.push_back("/v1/cascade?cycle=" + id + "&" + at);
      paths.push_back("/v1/cycles/" + id + "/review?" + at);
    }
    for (const json& o :
         Items(okrd_, "/v1/objectives?include_archived=true&limit=1000&" + at, "cursor")) {
      paths.push_back("/v1/objectives/" + o["id"].get<std::string>() + "?" + at);
      for (const json& kr : o.value("key_results", json::array())) {
        std::string id = kr["id"];
        paths.push_back("/v1/key-results/" + id + "?" + at);
        paths.push_back("/v1/key-results/" + id + "/check-ins?limit=1000&" + at);
      }
    }
    std::map<std::string, std::string> answers;
    Findings failed("reads at the head that okrd does not answer");
    for (const std::string& path : paths) {
      std::vector<json> pages = Pages(okrd_, path, "cursor", &failed);
      for (size_t n = 0; n < pages.size(); ++n)
        answers[path + " page " + std::to_string(n)] = pages[n].dump();
    }
    return answers;
  }

  void ExpectSameAnswers(const std::map<std::string, std::string>& before, uint64_t head,
                         const char* how) {
    auto after = CaptureAnswers(head);
    EXPECT_EQ(after.size(), before.size()) << how;
    int differ = 0;
    for (const auto& [path, body] : before) {
      auto it = after.find(path);
      if (it != after.end() && it->second == body) continue;
      if (differ++ < kShownProblems) {
        ADD_FAILURE() << how << ": " << path
                      << " answers differently\n  before: " << body.substr(0, 600) << "\n  after:  "
                      << (it == after.end() ? "(none)" : it->second.substr(0, 600));
      }
    }
  }

  void DeleteSnapshots() {
    OpenOptions options;
    auto store = EventStore::Open(okrd_.data_dir(), options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->SnapshotAtOrBefore(UINT64_MAX).ok())
        << "okrd wrote no snapshot to delete";
    ASSERT_TRUE((*store)->DeleteSnapshots().ok());
    ASSERT_FALSE((*store)->SnapshotAtOrBefore(UINT64_MAX).ok());
  }

  void VerifyOffline() {
    std::string out;
    int rc =
        RunCommand(BuildFile(OKRCTL_PATH) + " verify --data '" + okrd_.data_dir() + "' 2>&1", &out);
    EXPECT_EQ(rc, 0) << "okrctl verify: " << out;
  }

  void PrintFigures(uint64_t events) const {
    std::map<int, int> by_status;
    std::map<Intent, int> by_intent;
    for (const Op& op : ops_) {
      ++by_status[op.reply.status];
      ++by_intent[op.intent];
    }
    std::string statuses;
    for (const auto& [status, n] : by_status)
      statuses += " " + std::to_string(status) + "×" + std::to_string(n);
    std::printf(
        "concurrency_sim: seed %llu: %zu requests (%d exact retries, %d keys reused with another "
        "body, "
        "%d broken) in %lld ms, %d acknowledged, %zu events; statuses:%s\n",
        static_cast<unsigned long long>(seed_), ops_.size(), by_intent[Intent::kReplay],
        by_intent[Intent::kKeyReuse], by_intent[Intent::kInvalid],
        static_cast<long long>(write_phase_ms_), acknowledged_, static_cast<size_t>(events),
        statuses.c_str());
  }

  Okrd okrd_;
  uint64_t seed_ = 0;
  uint64_t setup_head_ = 0;
  long long write_phase_ms_ = 0;
  std::vector<Op> ops_;
  int unexpected_ = 0, acknowledged_ = 0, unattributed_ = 0;
  std::map<std::string, uint64_t> created_ids_;
};

TEST_P(ConcurrencySim, AcknowledgedWritesAndOnlyThoseSurviveAndEveryReplayAnswersTheSame) {
  SCOPED_TRACE("OKR_SIM_SEED=" + std::to_string(seed_));
  RecordProperty("seed", std::to_string(seed_));
  ASSERT_FALSE(HasFatalFailure());
  auto started = Clock::now();

  RaceClients();
  CheckAnswers();
  std::map<uint64_t, LoggedEvent> log = ReadLog(okrd_);
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.rbegin()->first, log.size()) << "the log's seqs are not dense";
  CheckAttribution(log);
  PrintFigures(log.size());
  CheckHealth(log.size());
  CheckIdsAndVersionsInLog(log);
  CheckIdsThroughApi(log);

  const uint64_t head = log.size();
  auto answers = CaptureAnswers(head);
  ASSERT_TRUE(okrd_.Stop()) << okrd_.LogTail(600);
  VerifyOffline();
  ASSERT_TRUE(okrd_.Start()) << "restart from the newest snapshot: " << okrd_.LogTail(600);
  ExpectSameAnswers(answers, head, "restarted from a snapshot");
  ASSERT_TRUE(okrd_.Stop()) << okrd_.LogTail(600);
  DeleteSnapshots();
  ASSERT_TRUE(okrd_.Start()) << "restart replaying the whole log: " << okrd_.LogTail(600);
  ExpectSameAnswers(answers, head, "replayed from the log alone");
  EXPECT_EQ(okrd_.HeadSeq(), head);
  EXPECT_TRUE(okrd_.Stop());
  std::printf(
      "concurrency_sim: seed %llu: %zu answers at the head compared after two restarts; %lld ms in "
      "all\n",
      static_cast<unsigned long long>(seed_), answers.size(),
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()));
  if (HasFailure()) ADD_FAILURE() << "replay this run with OKR_SIM_SEED=" << seed_;
}

std::vector<uint64_t> Seeds() {
  if (const char* s = std::getenv("OKR_SIM_SEED"); s && *s) return {std::strtoull(s, nullptr, 10)};
  return {20260101, 424242, 7};
}

INSTANTIATE_TEST_SUITE_P(Seeds, ConcurrencySim, ::testing::ValuesIn(Seeds()),
                         [](const ::testing::TestParamInfo<uint64_t>& info) {
                           return "seed_" + std::to_string(info.param);
                         });

}  // namespace
}  // namespace okr::testing
