// A webhook receiver for the end-to-end tests: an httplib::Server in the
// test process on a loopback port that records what okrd delivers to
// /hooks/<name>, and can be told to fail (500), to hang past okrd's
// timeout, or be stopped (connection refused) and started again on the
// same port.
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace okr::testing {

// One delivery the receiver answered 200.
struct Received {
  std::string hook;  // the path's <name>
  uint64_t seq = 0;  // Okrd-Seq
  std::string delivery, signature, digest_day, content_type, user_agent;
  std::string body;
};

// Whether `signature` (Okrd-Signature) is "t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>"
// for `body`; computed here with OpenSSL, independently of okrd.
bool SignatureValid(const std::string& signature, const std::string& secret,
                    const std::string& body);

class Receiver {
 public:
  enum class Mode { kOk, kFail, kHang };
  explicit Receiver(int hang_ms = 2000) : hang_ms_(hang_ms) {}
  // Serves https with this certificate and key (PEM files).
  Receiver(std::string cert_path, std::string key_path)
      : hang_ms_(2000), cert_path_(std::move(cert_path)), key_path_(std::move(key_path)) {}
  ~Receiver() { Stop(); }

  // Serves on `port` (0: any free port, the first time); true when bound.
  bool Start();
  void Stop();
  int port() const { return port_; }
  std::string Url(const std::string& hook) const {
    return (cert_path_.empty() ? "http://127.0.0.1:" : "https://localhost:") +
           std::to_string(port_) + "/hooks/" + hook;
  }
  void set_mode(Mode m) { mode_ = m; }
  std::vector<Received> received() const;
  std::vector<Received> received(const std::string& hook) const;
  // Requests that were not answered 200 (failed or hung).
  int refused() const { return refused_; }

 private:
  void Handle(const httplib::Request& req, httplib::Response& res);

  const int hang_ms_;
  const std::string cert_path_, key_path_;
  int port_ = 0;
  std::atomic<Mode> mode_{Mode::kOk};
  std::atomic<int> refused_{0};
  mutable std::mutex mu_;
  std::vector<Received> received_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace okr::testing
