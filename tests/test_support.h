// Shared helpers for okrd tests: temporary directories and event builders.
#pragma once

#include <string>
#include <string_view>

#include "eventstore/event_store.h"

namespace okr::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it
// when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// A unitCreated draft for `entity`: the smallest realistic event.
EventDraft UnitCreatedDraft(std::string_view actor, std::string_view entity, std::string_view name,
                            std::string_view parent = "");
// A checkInRecorded draft on key result `kr`, about 200 bytes stored.
EventDraft CheckInDraft(std::string_view actor, std::string_view kr, std::string_view check_in,
                        double value, std::string_view note = "weekly check-in");

// An append of one draft, optionally with an expected version.
AppendRequest OneEvent(EventDraft draft);

// Directory of the build's okrctl and test helpers, from the test binary's own path.
std::string BinaryDir();
// A file of the build tree the running test belongs to, named relative to
// the tree's top (OKRD_PATH and the like, set by tests/CMakeLists.txt), so
// the tests' compiled code is the same in every build tree.
std::string BuildFile(std::string_view relative);

// Whether this process, and so the okrd and okrctl of its build tree, runs
// under AddressSanitizer: its runtime is linked into every program of the
// sanitizer build, test programs included, though the tests' own code is
// compiled without it.
bool UnderSanitizers();

// The whole file at `path`, byte for byte ("" when it cannot be read).
std::string ReadFile(const std::string& path);

// Runs a shell command, returns its exit status and fills *out with stdout.
int RunCommand(const std::string& command, std::string* out);

}  // namespace okr::testing
