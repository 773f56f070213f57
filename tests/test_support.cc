#include "tests/test_support.h"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace okr::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/okrd-test-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

EventDraft UnitCreatedDraft(std::string_view actor, std::string_view entity, std::string_view name,
                            std::string_view parent) {
  EventDraft draft(actor, entity);
  auto body = draft.event().initUnitCreated();
  body.setKind(parent.empty() ? schema::UnitKind::COMPANY : schema::UnitKind::TEAM);
  body.setName(std::string(name));
  body.setParent(std::string(parent));
  return draft;
}

EventDraft CheckInDraft(std::string_view actor, std::string_view kr, std::string_view check_in,
                        double value, std::string_view note) {
  EventDraft draft(actor, kr);
  auto body = draft.event().initCheckInRecorded();
  body.setCheckIn(std::string(check_in));
  body.setValue(value);
  body.setHasConfidence(true);
  body.setConfidence(0.8);
  body.setStatus(schema::CheckInStatus::ON_TRACK);
  body.setNote(std::string(note));
  body.setMeasuredAt(1782900000000000);
  return draft;
}

AppendRequest OneEvent(EventDraft draft) {
  AppendRequest request;
  request.events.push_back(std::move(draft));
  return request;
}

std::string BinaryDir() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return self.parent_path().parent_path().string();
}

std::string BuildFile(std::string_view relative) {
  return BinaryDir() + "/" + std::string(relative);
}

}  // namespace okr::testing

// AddressSanitizer's entry point, defined by its runtime; weak, so that
// without the runtime its address is null.
extern "C" void __asan_init() __attribute__((weak));

namespace okr::testing {

bool UnderSanitizers() { return &__asan_init != nullptr; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

int RunCommand(const std::string& command, std::string* out) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) {
    if (out != nullptr) out->append(buf.data(), n);
  }
  int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace okr::testing
