#include "tests/okrd_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>

#include "eventstore/event_codec.h"
#include "tests/raw_http.h"
#include "tools/ctl/client.h"

extern char** environ;

namespace okr::testing {

namespace {

constexpr int kStartTimeoutMs = 120'000;  // the demo writes its story before listening
constexpr int kStopTimeoutMs = 30'000;
constexpr char kListening[] = "okrd listening on http://";

std::string Truncated(const std::string& s, size_t max) {
  return s.size() <= max ? s : s.substr(0, max) + "…(" + std::to_string(s.size()) + " bytes)";
}

}  // namespace

std::string Reply::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

std::string Reply::code() const {
  if (!json.is_object() || !json.contains("error") || !json["error"].is_object()) return "";
  const auto& c = json["error"]["code"];
  return c.is_string() ? c.get<std::string>() : "";
}

std::string Reply::field() const {
  if (!json.is_object() || !json.contains("error") || !json["error"].is_object()) return "";
  const auto& f = json["error"]["field"];
  return f.is_string() ? f.get<std::string>() : "";
}

uint64_t Reply::u(const char* key) const {
  if (!json.is_object() || !json.contains(key) || !json[key].is_number_unsigned()) return 0;
  return json[key].get<uint64_t>();
}

std::ostream& operator<<(std::ostream& os, const Reply& r) {
  if (r.status == 0) return os << "[no answer: " << r.transport << "]";
  return os << "[HTTP " << r.status << " " << Truncated(r.body, 600) << "]";
}

// okrctl's client encodes its queries the same way: one encoder for both.
std::string UrlEncode(const std::string& s) { return ctl::QueryEncode(s); }

Okrd::Okrd(OkrdOptions options) : options_(std::move(options)) {
  data_dir_ = dir_.Sub("data");
  tokens_path_ = dir_.Sub("tokens.json");
  log_path_ = dir_.Sub("okrd.log");
  if (options_.tokens) WriteTokens();
}

Okrd::~Okrd() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

void Okrd::WriteTokens() const {
  nlohmann::json list = nlohmann::json::array();
  for (const Token& t : *options_.tokens) {
    nlohmann::json entry = {{"actor", t.actor},
                            {"role", t.role},
                            {"units", t.units},
                            {"token_sha256", ToHex(Sha256(t.token))}};
    if (!t.subject.empty()) entry["subject"] = t.subject;
    list.push_back(std::move(entry));
  }
  std::string text = list.dump(2) + "\n";
  int fd = ::open(tokens_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    ADD_FAILURE() << "cannot write the tokens file " << tokens_path_ << ": "
                  << std::strerror(errno);
  }
  if (fd >= 0) ::close(fd);
  ::chmod(tokens_path_.c_str(), 0600);
}

std::string Okrd::LogTail(size_t bytes) const {
  std::string all = ReadFile(log_path_);
  return all.size() <= bytes ? all : all.substr(all.size() - bytes);
}

::testing::AssertionResult Okrd::Start() {
  if (pid_ > 0) return ::testing::AssertionFailure() << "okrd already runs (pid " << pid_ << ")";
  std::vector<std::string> args = {BuildFile(OKRD_PATH), "--data", data_dir_, "--listen",
                                   "127.0.0.1:0"};
  if (options_.tokens) {
    args.push_back("--tokens");
    args.push_back(tokens_path_);
  }
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The test's environment with options_.env on top, built before fork().
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    std::string name = entry.substr(0, entry.find('='));
    bool replaced = std::any_of(options_.env.begin(), options_.env.end(),
                                [&](const auto& kv) { return kv.first == name; });
    if (!replaced) env_strings.push_back(std::move(entry));
  }
  for (const auto& [name, value] : options_.env) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return ::testing::AssertionFailure() << "pipe2 failed";
  int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log < 0) return ::testing::AssertionFailure() << "cannot open " << log_path_;
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return ::testing::AssertionFailure() << "fork failed";
  if (pid == 0) {
    // okrd must not outlive a test run that dies.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(log);
  pid_ = pid;
  stdout_fd_ = out[0];
  stdout_text_.clear();
  port_ = 0;

  auto deadline = Clock::now() + std::chrono::milliseconds(kStartTimeoutMs);
  while (true) {
    auto at = stdout_text_.find(kListening);
    if (at != std::string::npos) {
      auto eol = stdout_text_.find('\n', at);
      if (eol != std::string::npos) {
        std::string url =
            stdout_text_.substr(at + std::strlen(kListening), eol - at - std::strlen(kListening));
        auto colon = url.rfind(':');
        port_ = colon == std::string::npos ? 0 : std::atoi(url.c_str() + colon + 1);
        if (port_ <= 0) {
          return ::testing::AssertionFailure() << "okrd printed no port: " << stdout_text_;
        }
        // Anything else already written (the demo's tokens) stays readable.
        pollfd p{stdout_fd_, POLLIN, 0};
        char buf[4096];
        while (::poll(&p, 1, 0) > 0 && (p.revents & POLLIN)) {
          ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
          if (n <= 0) break;
          stdout_text_.append(buf, static_cast<size_t>(n));
        }
        return ::testing::AssertionSuccess();
      }
    }
    pollfd p{stdout_fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, MillisLeft(deadline));
    if (ready <= 0) {
      Kill();
      return ::testing::AssertionFailure()
             << "okrd did not say it listens within " << kStartTimeoutMs << " ms; log:\n"
             << LogTail();
    }
    char buf[4096];
    ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
    if (n <= 0) {
      int status = 0;
      WaitForExit(&status, kStopTimeoutMs);
      return ::testing::AssertionFailure() << "okrd exited before listening (status " << status
                                           << "); stdout: " << stdout_text_ << "\nlog:\n"
                                           << LogTail();
    }
    stdout_text_.append(buf, static_cast<size_t>(n));
  }
}

::testing::AssertionResult Okrd::WaitForExit(int* status, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    pid_t r = ::waitpid(pid_, status, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) {
      pid_ = -1;
      return ::testing::AssertionFailure() << "waitpid failed: " << std::strerror(errno);
    }
    if (MillisLeft(deadline) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, status, 0);
      pid_ = -1;
      return ::testing::AssertionFailure() << "okrd did not exit within " << timeout_ms << " ms";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  pid_ = -1;
  if (stdout_fd_ >= 0) {
    ::close(stdout_fd_);
    stdout_fd_ = -1;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult Okrd::SignalAndWait(int signal, int* status) {
  assert(signal == SIGTERM || signal == SIGKILL);  // the only two ways a test ends okrd
  if (pid_ <= 0) return ::testing::AssertionFailure() << "okrd is not running";
  ::kill(pid_, signal);
  return WaitForExit(status, kStopTimeoutMs);
}

::testing::AssertionResult Okrd::Stop() {
  int status = 0;
  if (auto r = SignalAndWait(SIGTERM, &status); !r) return r;
  if (!WIFEXITED(status)) {
    return ::testing::AssertionFailure()
           << "okrd did not exit cleanly on SIGTERM (wait status " << status << "); log:\n"
           << LogTail();
  }
  if (WEXITSTATUS(status) != 0) {
    return ::testing::AssertionFailure()
           << "okrd exited with " << WEXITSTATUS(status) << " on SIGTERM; log:\n"
           << LogTail();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult Okrd::Kill() {
  int status = 0;
  if (auto r = SignalAndWait(SIGKILL, &status); !r) return r;
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
    return ::testing::AssertionFailure()
           << "okrd was not killed by SIGKILL (wait status " << status << ")";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult Okrd::Restart(std::optional<std::vector<std::string>> extra_args) {
  if (auto r = Stop(); !r) return r;
  if (extra_args) options_.extra_args = std::move(*extra_args);
  return Start();
}

Reply Okrd::Request(const std::string& method, const std::string& path, const std::string& body,
                    const std::string& token, const httplib::Headers& headers) const {
  Reply reply;
  if (port_ <= 0) {
    reply.transport = "okrd has no port";
    return reply;
  }
  httplib::Client cli("127.0.0.1", port_);
  cli.set_url_encode(false);  // paths go out exactly as the test wrote them
  cli.set_keep_alive(false);
  cli.set_connection_timeout(5, 0);
  cli.set_read_timeout(60, 0);
  cli.set_write_timeout(60, 0);
  httplib::Request req;
  req.method = method;
  req.path = path;
  req.headers = headers;
  if (!token.empty()) req.headers.emplace("Authorization", "Bearer " + token);
  if (!body.empty() || method == "POST" || method == "PATCH" || method == "PUT") {
    req.body = body;
    if (req.headers.find("Content-Type") == req.headers.end()) {
      req.headers.emplace("Content-Type", "application/json");
    }
  }
  auto res = cli.send(req);
  if (!res) {
    reply.transport = httplib::to_string(res.error());
    return reply;
  }
  reply.status = res->status;
  reply.body = res->body;
  reply.headers = res->headers;
  reply.json = nlohmann::json::parse(reply.body, nullptr, false);
  if (reply.json.is_discarded()) reply.json = nullptr;
  return reply;
}

Reply Okrd::Get(const std::string& path, const std::string& token,
                const httplib::Headers& headers) const {
  return Request("GET", path, "", token, headers);
}

Reply Okrd::Post(const std::string& path, const nlohmann::json& body, const std::string& token,
                 const httplib::Headers& headers) const {
  return Request("POST", path, body.dump(), token, headers);
}

Reply Okrd::Patch(const std::string& path, const nlohmann::json& body, const std::string& token,
                  const httplib::Headers& headers) const {
  return Request("PATCH", path, body.dump(), token, headers);
}

Reply Okrd::Delete(const std::string& path, const std::string& token,
                   const httplib::Headers& headers, const nlohmann::json& body) const {
  return Request("DELETE", path, body.is_null() ? "" : body.dump(), token, headers);
}

uint64_t Okrd::HeadSeq() const {
  Reply r = Get("/healthz");
  if (r.status != 200 || !r.json.is_object() || !r.json.contains("head_seq")) {
    ADD_FAILURE() << "GET /healthz did not answer a head_seq: " << r;
    return UINT64_MAX;
  }
  return r.json["head_seq"].get<uint64_t>();
}

long Okrd::WaitForSnapshot(long max_age, int timeout_ms) const {
  static constexpr std::string_view kName = "\nokrd_snapshot_age_events ";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  long age = -1;
  while (true) {
    Reply metrics = Get("/metrics");
    auto at = metrics.body.find(kName);
    if (metrics.status != 200 || at == std::string::npos) {
      ADD_FAILURE() << "GET /metrics has no okrd_snapshot_age_events: " << metrics;
      return -1;
    }
    age = std::stol(metrics.body.substr(at + kName.size()));
    if ((age >= 0 && age <= max_age) || std::chrono::steady_clock::now() >= deadline) return age;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string DateIn(int days) {
  std::time_t secs = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now()) +
                     static_cast<std::time_t>(days) * 86'400;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  return buf;
}

Reply Want(const Reply& r, int status) {
  EXPECT_EQ(r.status, status) << r;
  return r;
}

void PlanAcmeAndCycle(const Okrd& s, const std::string& admin_token, int cycle_ends_in_days) {
  assert(s.running());
  assert(cycle_ends_in_days > 0);  // the cycle must hold today, or check-ins are refused
  Want(s.Post("/v1/units", {{"id", "acme"}, {"kind", "company"}, {"name", "Acme"}}, admin_token),
       201);
  Want(s.Post("/v1/cycles",
              {{"id", "q"},
               {"name", "Q"},
               {"starts", DateIn(-30)},
               {"ends", DateIn(cycle_ends_in_days)}},
              admin_token),
       201);
}

}  // namespace okr::testing
