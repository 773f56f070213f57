// A small HTTP client for okrd (cpp-httplib): one keep-alive connection,
// bearer token, JSON in and out.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "eventstore/base/status.h"

namespace httplib {
class Client;
}

namespace okr::ctl {

// One answer. status 0: no answer at all (transport says why).
struct HttpAnswer {
  int status = 0;
  std::string transport;
  std::string body;
  nlohmann::json json;  // the body parsed; null when it is not JSON

  bool ok() const { return status >= 200 && status < 300; }
  // "HTTP 422 invalid: target must differ from start (field target)", or
  // the transport failure.
  std::string Describe() const;
};

// Limits on talking to okrd.
inline constexpr int kConnectTimeoutSeconds = 10;
inline constexpr int kDefaultReadTimeoutSeconds = 120;
inline constexpr int kMaxTransportRetries = 3;  // idempotent requests only

class Client {
 public:
  // `url`: http://HOST:PORT, optionally with a path prefix
  // (http://hr.example/okr). kInvalid for anything else.
  static Result<std::unique_ptr<Client>> Connect(const std::string& url, std::string token);
  ~Client();

  // GET `path` (with its query) under the prefix. Retried on transport
  // failures: reads change nothing.
  HttpAnswer Get(const std::string& path);
  // GET `path` and hand a 2xx answer's body to `receive` as it arrives
  // (false stops the transfer); any other answer's body lands in the
  // HttpAnswer as Get's does. Never retried: the bytes may have been
  // taken. An answer cut short is a transport failure (status 0).
  HttpAnswer GetStreamed(const std::string& path,
                         const std::function<bool(const char* data, size_t n)>& receive);
  // POST a JSON body. With `idempotency_key`, transport failures are
  // retried with the same key, so a retry never writes twice.
  HttpAnswer Post(const std::string& path, const nlohmann::json& body,
                  const std::string& idempotency_key = "");

  void set_read_timeout_seconds(int seconds);
  const std::string& url() const { return url_; }
  bool has_token() const { return !token_.empty(); }

 private:
  Client() = default;
  HttpAnswer Send(const std::string& method, const std::string& path, const std::string& body,
                  const std::vector<std::pair<std::string, std::string>>& headers, bool retry);

  std::unique_ptr<httplib::Client> http_;
  std::string url_;
  std::string prefix_;
  std::string token_;
};

// Percent-encodes a query value (everything but A-Z a-z 0-9 - . _ ~).
std::string QueryEncode(const std::string& s);

}  // namespace okr::ctl
