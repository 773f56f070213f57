#include "tests/raw_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <cstdlib>

namespace okr::testing {

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// The head of a raw answer, up to its blank line, lowercased.
std::string LowerHead(const std::string& raw_answer) {
  return Lower(raw_answer.substr(0, raw_answer.find("\r\n\r\n")));
}

}  // namespace

int MillisLeft(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
  return left < 0 ? 0 : static_cast<int>(left);
}

int ConnectLoopback(int port) {
  assert(port > 0 && port < 65536);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  assert(fd >= 0);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  assert(done == data.size());
  return true;
}

int StatusOf(const std::string& raw_answer) {
  if (raw_answer.compare(0, 9, "HTTP/1.1 ") != 0) return 0;
  return std::atoi(raw_answer.c_str() + 9);
}

std::string HeaderOf(const std::string& raw_answer, std::string name) {
  std::string head = raw_answer.substr(0, raw_answer.find("\r\n\r\n"));
  name = Lower(name);
  size_t at = LowerHead(raw_answer).find("\r\n" + name + ":");
  if (at == std::string::npos) return "";
  size_t from = head.find_first_not_of(' ', at + 3 + name.size());
  return head.substr(from, head.find("\r\n", from) - from);
}

bool HasHeader(const std::string& raw_answer, const std::string& name) {
  return LowerHead(raw_answer).find("\r\n" + Lower(name) + ":") != std::string::npos;
}

}  // namespace okr::testing
