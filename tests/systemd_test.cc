// okrd under systemd (Type=notify, WatchdogSec=), against the real okrd:
// the service manager's side of the protocol is a datagram socket named by
// NOTIFY_SOCKET, which this test binds and reads as systemd would.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/okrd_harness.h"

namespace okr::testing {
namespace {

// The socket systemd would listen on, and the messages okrd sends to it.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    bound_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool bound() const { return bound_; }

  // The next message, or "" when none comes within `timeout_ms`.
  std::string Next(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return "";
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  // Every message that arrives within `ms`.
  std::vector<std::string> During(int ms) {
    std::vector<std::string> got;
    const auto end = Clock::now() + std::chrono::milliseconds(ms);
    while (Clock::now() < end) {
      int left = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count());
      std::string m = Next(std::max(left, 1));
      if (!m.empty()) got.push_back(m);
    }
    return got;
  }

 private:
  int fd_ = -1;
  bool bound_ = false;
};

size_t CountOf(const std::vector<std::string>& messages, const std::string& m) {
  return static_cast<size_t>(std::count(messages.begin(), messages.end(), m));
}

// The socket systemd would listen on, and an okrd told to use it.
class SystemdTest : public ::testing::Test {
 protected:
  SystemdTest() : systemd_(dir_.Sub("notify")), okrd_(OkrdOptions{}) {
    okrd_.AddEnv("NOTIFY_SOCKET", dir_.Sub("notify"));
  }

  TempDir dir_;
  NotifySocket systemd_;
  Okrd okrd_;
};

TEST_F(SystemdTest, ReadyOnceListeningAliveWhileAnsweringAndStoppingOnSigterm) {
  ASSERT_TRUE(systemd_.bound());
  okrd_.AddEnv("WATCHDOG_USEC", "2000000");  // WatchdogSec=2: a probe every 500 ms
  ASSERT_TRUE(okrd_.Start());

  // READY=1 comes once okrd listens: the address it names answers.
  const std::string ready = systemd_.Next(10'000);
  const std::string url = "http://127.0.0.1:" + std::to_string(okrd_.port());
  EXPECT_EQ(ready, "READY=1\nSTATUS=serving " + url);
  EXPECT_EQ(okrd_.Get("/healthz").status, 200);

  // The watchdog: a ping after each probe okrd answered, about six in
  // three seconds here, each probe a real request to okrd's own address.
  const std::vector<std::string> second = systemd_.During(3000);
  EXPECT_GE(CountOf(second, "WATCHDOG=1"), 2u);
  EXPECT_EQ(CountOf(second, "WATCHDOG=1"), second.size());
  ASSERT_TRUE(okrd_.Stop());
  const std::string log = okrd_.LogTail(1'000'000);
  size_t probes = 0;
  for (size_t at = log.find("route=GET /healthz"); at != std::string::npos;
       at = log.find("route=GET /healthz", at + 1)) {
    ++probes;
  }
  EXPECT_GE(probes, CountOf(second, "WATCHDOG=1")) << log;

  // SIGTERM: STOPPING=1, then no more pings.
  std::vector<std::string> after = systemd_.During(300);
  ASSERT_FALSE(after.empty());
  const auto stopping = std::find(after.begin(), after.end(), "STOPPING=1");
  ASSERT_NE(stopping, after.end());
  EXPECT_EQ(stopping + 1, after.end()) << "a message after STOPPING=1";
}

TEST_F(SystemdTest, WithoutAWatchdogNothingButReadinessAndStopping) {
  ASSERT_TRUE(systemd_.bound());
  ASSERT_TRUE(okrd_.Start());
  EXPECT_EQ(systemd_.Next(10'000).rfind("READY=1\n", 0), 0u);
  EXPECT_TRUE(systemd_.During(500).empty());
  ASSERT_TRUE(okrd_.Stop());
  EXPECT_EQ(systemd_.Next(1000), "STOPPING=1");
}

}  // namespace
}  // namespace okr::testing
