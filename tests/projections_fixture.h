// A test fixture for projection scenarios: a real event store on disk, a
// Projector in front of it, a clock the test moves by hand, and verb helpers
// that write through Projector::Write exactly as the API does.
//
// The store is real RocksDB on disk, on a file system whose syncs are
// no-ops (NoSyncEnv): durability is durability_test's subject, and fsync
// latency would dominate these tests.
//
// SetUp() builds the Acme organisation:
//
//   acme (company)
//   └── hr (department "HR")
//       ├── ta       (team "Talent Acquisition")     └── amara (person)
//       ├── hr-ops   (team "HR Operations")          └── jonas (person)
//       └── l-and-d  (team "Learning & Development") └── li    (person)
//
// and the cycles 2026 (the year) with 2026-q1 and 2026-q2 inside it. The
// clock starts at 2026-01-05T09:00:00Z; every write moves it on by one
// minute first, so recorded times are distinct and known in advance.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eventstore/event_store.h"
#include "projections/domain/commands.h"
#include "projections/domain/projection.h"
#include "projections/read/views.h"
#include "projections/service/projector.h"
#include "tests/test_support.h"

namespace okr::testing {

inline constexpr int64_t kMinuteUs = 60'000'000;
inline constexpr int64_t kHourUs = 60 * kMinuteUs;
inline constexpr int64_t kDayUs = 24 * kHourUs;

// A RocksDB Env over the default file system with every sync a no-op;
// lives as long as the process.
rocksdb::Env* NoSyncEnv();

// µs since the epoch of an RFC 3339 time or a bare date ("2026-01-05");
// aborts the test binary on a malformed literal.
int64_t At(std::string_view when);

// True when the write (or status) succeeded; the failure names the status.
::testing::AssertionResult IsOk(const Status& status);
template <typename T>
::testing::AssertionResult IsOk(const Result<T>& result) {
  return IsOk(result.ok() ? Status::Ok() : result.status());
}
const char* CodeName(Status::Code code);

#define ASSERT_OK(expr) ASSERT_TRUE(::okr::testing::IsOk(expr))
#define EXPECT_OK(expr) EXPECT_TRUE(::okr::testing::IsOk(expr))

// The write is refused with `code` naming `field`, and neither the log nor
// the projection moved.
#define EXPECT_REFUSED(write, code, field)                                                  \
  EXPECT_TRUE(                                                                              \
      RefusedWithoutWriting([&]() -> ::okr::Result<::okr::WriteResult> { return (write); }, \
                            ::okr::Status::Code::code, field))

class ProjectionsTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // --- the store, the projector and the clock ---

  // Opens the store and a projector over it (options_ apply).
  void Open();
  // Closes both and opens them again over the same directory.
  void ReopenStore();
  void SetNow(int64_t us) { *now_ = us; }
  void Advance(int64_t us) { *now_ += us; }
  void AdvanceDays(int days) { *now_ += days * kDayUs; }
  // The next write is recorded exactly at `us` (and "now" is `us` for it).
  void NextWriteAt(int64_t us) { *now_ = us - step_us_; }
  int64_t Now() const { return *now_; }
  uint64_t Head() const { return store_->head().seq; }
  const Projection& state() const;
  EventStore& store() { return *store_; }
  Projector& projector() { return *projector_; }

  // --- writes (each one minute after the previous) ---

  Result<WriteResult> Write(WriteRequest request);
  Result<WriteResult> Run(Command command, std::string actor = "admin", std::string reason = "");

  Result<WriteResult> CreateUnit(std::string id, std::string kind, std::string name,
                                 std::string parent, std::string email = "");
  Result<WriteResult> MoveUnit(std::string id, std::string parent);
  Result<WriteResult> CreateCycle(std::string id, std::string name, std::string starts,
                                  std::string ends, std::string parent = "");
  Result<WriteResult> Close(std::string cycle);
  Result<WriteResult> ReopenCycle(std::string cycle);

  Result<WriteResult> CreateObjective(std::string id, std::string cycle, std::string owner,
                                      std::string title, std::vector<std::string> parents = {});
  Result<WriteResult> Retitle(std::string objective, std::string title, std::string reason = "");
  Result<WriteResult> ChangeOwner(std::string objective, std::string owner,
                                  std::string reason = "");
  Result<WriteResult> Align(std::string objective, std::vector<std::string> parents);
  Result<WriteResult> Archive(std::string objective, std::string reason = "");

  Result<WriteResult> AddKeyResult(std::string id, std::string objective, std::string title,
                                   double start, double target, std::string metric = "number",
                                   double weight = 1, std::string unit = "");
  Result<WriteResult> MoveTarget(std::string kr, double target, std::string reason,
                                 std::string actor = "admin");
  Result<WriteResult> RemoveKeyResult(std::string kr);

  // measured_at defaults to now; `id` empty lets the server assign one.
  Result<WriteResult> CheckIn(std::string kr, double value,
                              std::optional<int64_t> measured_at = std::nullopt,
                              std::string id = "", std::string actor = "admin");
  Result<WriteResult> Correct(std::string kr, std::string check_in, double value,
                              std::string note = "typo");
  Result<WriteResult> Comment(std::string target, std::string text, std::string actor = "admin");
  Result<WriteResult> Review(std::string objective, double score, std::string outcome,
                             std::string reflection = "", std::string lessons = "");

  // --- reads ---

  // A view as of `seq` (default: the head) judged at the current clock.
  View ViewAt(std::optional<uint64_t> seq = std::nullopt, int64_t at_us = INT64_MAX) const;
  nlohmann::json ObjectiveJson(const std::string& id, std::optional<uint64_t> seq = std::nullopt);
  nlohmann::json KeyResultJson(const std::string& id, std::optional<uint64_t> seq = std::nullopt,
                               int64_t at_us = INT64_MAX);
  double ObjectiveProgress(const std::string& id, std::optional<uint64_t> seq = std::nullopt);
  nlohmann::json LintFindings(const std::string& cycle, const std::string& rule);

  ::testing::AssertionResult RefusedWithoutWriting(
      const std::function<Result<WriteResult>()>& write, Status::Code code,
      const std::string& field);

  TempDir dir_;
  std::shared_ptr<int64_t> now_ = std::make_shared<int64_t>(0);
  int64_t step_us_ = kMinuteUs;  // how far each write moves the clock
  OpenOptions store_options_;    // clock_us is filled in by Open()
  ProjectorOptions options_;     // clock_us is filled in by Open()
  std::unique_ptr<EventStore> store_;
  std::unique_ptr<Projector> projector_;
  uint64_t acme_seq_ = 0;  // the head once the organisation and cycles exist
};

// ProjectionsTest plus the objective most projection scenarios start from:
// HR's Q1 objective "hr-hiring" ("Hire the people we need"), no key results.
class HrHiringTest : public ProjectionsTest {
 protected:
  void SetUp() override;
};

}  // namespace okr::testing
