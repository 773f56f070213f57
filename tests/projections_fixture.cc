#include "tests/projections_fixture.h"

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <cstdlib>
#include <iostream>
#include <memory>

#include "eventstore/base/time.h"

namespace okr::testing {

namespace {

// A file system that makes every sync a no-op: these tests are about
// deciding and folding, not durability (durability_test covers that), and
// fsync latency would dominate their run time.
class NoSyncFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  using FSWritableFileOwnerWrapper::FSWritableFileOwnerWrapper;
  rocksdb::IOStatus Sync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus RangeSync(uint64_t, uint64_t, const rocksdb::IOOptions&,
                              rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
};

class NoSyncDirectory : public rocksdb::FSDirectoryWrapper {
 public:
  using FSDirectoryWrapper::FSDirectoryWrapper;
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions&, rocksdb::IODebugContext*,
                                        const rocksdb::DirFsyncOptions&) override {
    return rocksdb::IOStatus::OK();
  }
};

class NoSyncFs : public rocksdb::FileSystemWrapper {
 public:
  NoSyncFs() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "NoSyncFs"; }
  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    return Wrap(target()->NewWritableFile(fname, opts, result, dbg), result);
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override {
    return Wrap(target()->ReopenWritableFile(fname, opts, result, dbg), result);
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& opts,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override {
    return Wrap(target()->ReuseWritableFile(fname, old_fname, opts, result, dbg), result);
  }
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& io_opts,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewDirectory(name, io_opts, result, dbg);
    if (s.ok()) *result = std::make_unique<NoSyncDirectory>(std::move(*result));
    return s;
  }

 private:
  static rocksdb::IOStatus Wrap(rocksdb::IOStatus s, std::unique_ptr<rocksdb::FSWritableFile>* f) {
    if (s.ok()) *f = std::make_unique<NoSyncFile>(std::move(*f));
    return s;
  }
};

}  // namespace

rocksdb::Env* NoSyncEnv() {
  static rocksdb::Env* env = rocksdb::NewCompositeEnv(std::make_shared<NoSyncFs>()).release();
  return env;
}

int64_t At(std::string_view when) {
  auto us = ParseRfc3339(when);
  if (!us) {
    std::cerr << "malformed time literal in a test: " << when << "\n";
    std::abort();
  }
  return *us;
}

const char* CodeName(Status::Code code) {
  // One row per code, so a failure message names the code as the source does.
  static constexpr std::pair<Status::Code, const char*> kNames[] = {
      {Status::Code::kOk, "kOk"},
      {Status::Code::kNotFound, "kNotFound"},
      {Status::Code::kVersionMismatch, "kVersionMismatch"},
      {Status::Code::kAlreadyExists, "kAlreadyExists"},
      {Status::Code::kConflict, "kConflict"},
      {Status::Code::kPermissionDenied, "kPermissionDenied"},
      {Status::Code::kInvalid, "kInvalid"},
      {Status::Code::kCorruption, "kCorruption"},
      {Status::Code::kIOError, "kIOError"},
  };
  for (const auto& [c, name] : kNames) {
    if (c == code) return name;
  }
  return "another code";
}

::testing::AssertionResult IsOk(const Status& status) {
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << CodeName(status.code()) << " (field '" << status.field() << "'): " << status.message();
}

void ProjectionsTest::SetUp() {
  store_options_.env = NoSyncEnv();
  SetNow(At("2026-01-05T09:00:00Z"));
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_OK(CreateUnit("acme", "company", "Acme Corp", ""));
  ASSERT_OK(CreateUnit("hr", "department", "HR", "acme"));
  ASSERT_OK(CreateUnit("ta", "team", "Talent Acquisition", "hr"));
  ASSERT_OK(CreateUnit("hr-ops", "team", "HR Operations", "hr"));
  ASSERT_OK(CreateUnit("l-and-d", "team", "Learning & Development", "hr"));
  ASSERT_OK(CreateUnit("amara", "person", "Amara Okafor", "ta", "amara@acme.example"));
  ASSERT_OK(CreateUnit("jonas", "person", "Jonas Berg", "hr-ops", "jonas@acme.example"));
  ASSERT_OK(CreateUnit("li", "person", "Li Wei", "l-and-d", "li@acme.example"));
  ASSERT_OK(CreateCycle("2026", "2026", "2026-01-01", "2026-12-31"));
  ASSERT_OK(CreateCycle("2026-q1", "Q1 2026", "2026-01-01", "2026-03-31", "2026"));
  ASSERT_OK(CreateCycle("2026-q2", "Q2 2026", "2026-04-01", "2026-06-30", "2026"));
  acme_seq_ = Head();
  ASSERT_EQ(acme_seq_, 11u);
}

void ProjectionsTest::TearDown() {
  projector_.reset();
  store_.reset();
}

void ProjectionsTest::Open() {
  std::shared_ptr<int64_t> now = now_;
  OpenOptions store_options = store_options_;
  store_options.clock_us = [now] { return *now; };
  auto store = EventStore::Open(dir_.path(), store_options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  store_ = std::move(store.value());
  ProjectorOptions options = options_;
  options.clock_us = [now] { return *now; };
  auto projector = Projector::Open(store_.get(), options);
  ASSERT_TRUE(projector.ok()) << projector.status().ToString();
  projector_ = std::move(projector.value());
}

void ProjectionsTest::ReopenStore() {
  projector_.reset();
  store_.reset();
  ASSERT_NO_FATAL_FAILURE(Open());
}

const Projection& ProjectionsTest::state() const {
  return *projector_->Read([](const Projection& p) { return &p; });
}

Result<WriteResult> ProjectionsTest::Write(WriteRequest request) {
  Advance(step_us_);
  return projector_->Write(request);
}

Result<WriteResult> ProjectionsTest::Run(Command command, std::string actor, std::string reason) {
  WriteRequest request;
  request.command = std::move(command);
  request.actor = std::move(actor);
  request.reason = std::move(reason);
  return Write(std::move(request));
}

Result<WriteResult> ProjectionsTest::CreateUnit(std::string id, std::string kind, std::string name,
                                                std::string parent, std::string email) {
  return Run(okr::CreateUnit{std::move(id), std::move(kind), std::move(name), std::move(parent),
                             std::move(email)});
}

Result<WriteResult> ProjectionsTest::MoveUnit(std::string id, std::string parent) {
  okr::UpdateUnit c;
  c.id = std::move(id);
  c.parent = std::move(parent);
  return Run(std::move(c));
}

Result<WriteResult> ProjectionsTest::CreateCycle(std::string id, std::string name,
                                                 std::string starts, std::string ends,
                                                 std::string parent) {
  return Run(okr::CreateCycle{std::move(id), std::move(name), std::move(starts), std::move(ends),
                              std::move(parent)});
}

Result<WriteResult> ProjectionsTest::Close(std::string cycle) {
  return Run(okr::CloseCycle{std::move(cycle)});
}

Result<WriteResult> ProjectionsTest::ReopenCycle(std::string cycle) {
  return Run(okr::ReopenCycle{std::move(cycle)});
}

Result<WriteResult> ProjectionsTest::CreateObjective(std::string id, std::string cycle,
                                                     std::string owner, std::string title,
                                                     std::vector<std::string> parents) {
  okr::CreateObjective c;
  c.id = std::move(id);
  c.cycle = std::move(cycle);
  c.owner = std::move(owner);
  c.title = std::move(title);
  c.parents = std::move(parents);
  return Run(std::move(c));
}

namespace {

// An update of `objective` that changes only what `set` sets.
okr::UpdateObjective ObjectiveUpdate(std::string objective,
                                     const std::function<void(okr::UpdateObjective&)>& set) {
  okr::UpdateObjective c;
  c.id = std::move(objective);
  set(c);
  return c;
}

}  // namespace

Result<WriteResult> ProjectionsTest::Retitle(std::string objective, std::string title,
                                             std::string reason) {
  auto set = [&](okr::UpdateObjective& c) { c.title = std::move(title); };
  return Run(ObjectiveUpdate(std::move(objective), set), "admin", std::move(reason));
}

Result<WriteResult> ProjectionsTest::ChangeOwner(std::string objective, std::string owner,
                                                 std::string reason) {
  auto set = [&](okr::UpdateObjective& c) { c.owner = std::move(owner); };
  return Run(ObjectiveUpdate(std::move(objective), set), "admin", std::move(reason));
}

Result<WriteResult> ProjectionsTest::Align(std::string objective,
                                           std::vector<std::string> parents) {
  auto set = [&](okr::UpdateObjective& c) { c.parents = std::move(parents); };
  return Run(ObjectiveUpdate(std::move(objective), set));
}

Result<WriteResult> ProjectionsTest::Archive(std::string objective, std::string reason) {
  return Run(okr::ArchiveObjective{std::move(objective)}, "admin", std::move(reason));
}

Result<WriteResult> ProjectionsTest::AddKeyResult(std::string id, std::string objective,
                                                  std::string title, double start, double target,
                                                  std::string metric, double weight,
                                                  std::string unit) {
  okr::CreateKeyResult c;
  c.id = std::move(id);
  c.objective = std::move(objective);
  c.title = std::move(title);
  c.metric = std::move(metric);
  c.start = start;
  c.target = target;
  c.weight = weight;
  c.unit = std::move(unit);
  return Run(std::move(c));
}

Result<WriteResult> ProjectionsTest::MoveTarget(std::string kr, double target, std::string reason,
                                                std::string actor) {
  okr::UpdateKeyResult c;
  c.id = std::move(kr);
  c.target = target;
  return Run(std::move(c), std::move(actor), std::move(reason));
}

Result<WriteResult> ProjectionsTest::RemoveKeyResult(std::string kr) {
  return Run(okr::RemoveKeyResult{std::move(kr)});
}

Result<WriteResult> ProjectionsTest::CheckIn(std::string kr, double value,
                                             std::optional<int64_t> measured_at, std::string id,
                                             std::string actor) {
  okr::RecordCheckIn c;
  c.key_result = std::move(kr);
  c.id = std::move(id);
  c.value = value;
  c.measured_at_us = measured_at;
  return Run(std::move(c), std::move(actor));
}

Result<WriteResult> ProjectionsTest::Correct(std::string kr, std::string check_in, double value,
                                             std::string note) {
  return Run(okr::CorrectCheckIn{std::move(kr), std::move(check_in), value, std::move(note)});
}

Result<WriteResult> ProjectionsTest::Comment(std::string target, std::string text,
                                             std::string actor) {
  return Run(okr::AddComment{std::move(target), std::move(text)}, std::move(actor));
}

Result<WriteResult> ProjectionsTest::Review(std::string objective, double score,
                                            std::string outcome, std::string reflection,
                                            std::string lessons) {
  return Run(okr::ReviewObjective{std::move(objective), score, std::move(outcome),
                                  std::move(reflection), std::move(lessons)});
}

View ProjectionsTest::ViewAt(std::optional<uint64_t> seq, int64_t at_us) const {
  return View(state(), seq.value_or(state().seq()), at_us, Now());
}

nlohmann::json ProjectionsTest::ObjectiveJson(const std::string& id, std::optional<uint64_t> seq) {
  const Objective* o = state().objective(id);
  if (o == nullptr) return nullptr;
  View view = ViewAt(seq);
  if (view.ObjectiveAt(id) == nullptr) return nullptr;
  return view.ObjectiveJson(*o);
}

nlohmann::json ProjectionsTest::KeyResultJson(const std::string& id, std::optional<uint64_t> seq,
                                              int64_t at_us) {
  const KeyResult* kr = state().key_result(id);
  if (kr == nullptr) return nullptr;
  View view = ViewAt(seq, at_us);
  if (view.KeyResultAt(id) == nullptr) return nullptr;
  return view.KeyResultJson(*kr);
}

double ProjectionsTest::ObjectiveProgress(const std::string& id, std::optional<uint64_t> seq) {
  const Objective* o = state().objective(id);
  if (o == nullptr) {
    ADD_FAILURE() << "no objective " << id;
    return -1;
  }
  return ViewAt(seq).ObjectiveProgress(*o);
}

nlohmann::json ProjectionsTest::LintFindings(const std::string& cycle, const std::string& rule) {
  nlohmann::json out = nlohmann::json::array();
  const nlohmann::json lint = ViewAt().Lint(cycle);
  for (const auto& f : lint["findings"]) {
    if (f["rule"] == rule) out.push_back(f);
  }
  return out;
}

::testing::AssertionResult ProjectionsTest::RefusedWithoutWriting(
    const std::function<Result<WriteResult>()>& write, Status::Code code,
    const std::string& field) {
  const uint64_t head_before = Head();
  const uint64_t projected_before = projector_->seq();
  Result<WriteResult> result = write();
  const uint64_t head_after = Head();
  if (result.ok()) {
    return ::testing::AssertionFailure() << "expected " << CodeName(code) << " on '" << field
                                         << "', but the write succeeded (seq " << result->seq
                                         << ", changed " << result->changed << ")";
  }
  const Status& s = result.status();
  if (s.code() != code || s.field() != field) {
    return ::testing::AssertionFailure()
           << "expected " << CodeName(code) << " on '" << field << "', got " << CodeName(s.code())
           << " on '" << s.field() << "': " << s.message();
  }
  if (head_after != head_before || projector_->seq() != projected_before) {
    return ::testing::AssertionFailure()
           << "refused, but the log moved from seq " << head_before << " to " << head_after;
  }
  return ::testing::AssertionSuccess() << s.message();
}

void HrHiringTest::SetUp() {
  ASSERT_NO_FATAL_FAILURE(ProjectionsTest::SetUp());
  ASSERT_OK(CreateObjective("hr-hiring", "2026-q1", "hr", "Hire the people we need"));
}

}  // namespace okr::testing
