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

// The whole file at `path`, byte for byte ("" when it cannot be read).
std::string ReadFile(const std::string& path);

// Runs a shell command, returns its exit status and fills *out with stdout.
int RunCommand(const std::string& command, std::string* out);

}  // namespace okr::testing
