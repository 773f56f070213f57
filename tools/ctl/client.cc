#include "tools/ctl/client.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <thread>

namespace okr::ctl {

std::string HttpAnswer::Describe() const {
  if (status == 0) return "no answer from okrd: " + transport;
  std::string out = "HTTP " + std::to_string(status);
  if (json.is_object() && json.contains("error") && json["error"].is_object()) {
    const auto& e = json["error"];
    if (e.contains("code") && e["code"].is_string()) out += " " + e["code"].get<std::string>();
    if (e.contains("message") && e["message"].is_string())
      out += ": " + e["message"].get<std::string>();
    if (e.contains("field") && e["field"].is_string())
      out += " (field " + e["field"].get<std::string>() + ")";
  } else if (!body.empty()) {
    out += ": " + body.substr(0, 200);
  }
  return out;
}

std::string QueryEncode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::Connect(const std::string& url, std::string token) {
  static constexpr std::string_view kScheme = "http://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) {
    return Status::Invalid("--server must be an http:// URL, e.g. http://127.0.0.1:8080");
  }
  size_t slash = url.find('/', kScheme.size());
  std::string host_port = url.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : url.substr(slash);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (host_port.size() == kScheme.size()) return Status::Invalid("--server names no host");
  std::unique_ptr<Client> c(new Client());
  c->http_ = std::make_unique<httplib::Client>(host_port);
  if (!c->http_->is_valid()) return Status::Invalid("--server " + url + " is not a usable URL");
  // Without TCP_NODELAY small requests on a kept-alive connection wait for
  // delayed ACKs (~40 ms each).
  c->http_->set_tcp_nodelay(true);
  c->http_->set_keep_alive(true);
  c->http_->set_connection_timeout(kConnectTimeoutSeconds, 0);
  c->http_->set_read_timeout(kDefaultReadTimeoutSeconds, 0);
  c->http_->set_write_timeout(kDefaultReadTimeoutSeconds, 0);
  c->url_ = url;
  c->prefix_ = prefix;
  c->token_ = std::move(token);
  return c;
}

void Client::set_read_timeout_seconds(int seconds) { http_->set_read_timeout(seconds, 0); }

HttpAnswer Client::Get(const std::string& path) { return Send("GET", path, "", {}, true); }

HttpAnswer Client::GetStreamed(const std::string& path,
                               const std::function<bool(const char*, size_t)>& receive) {
  httplib::Headers headers;
  if (!token_.empty()) headers.emplace("Authorization", "Bearer " + token_);
  HttpAnswer answer;
  httplib::Result res =
      http_->Get((prefix_ + path).c_str(), headers,
                 [&](const httplib::Response& r) {
                   answer.status = r.status;
                   return true;
                 },
                 [&](const char* data, size_t n) {
                   if (answer.ok()) return receive(data, n);
                   // An error's JSON: kept up to a bound, whatever the server sends.
                   static constexpr size_t kMaxErrorBodyBytes = 64u << 10;
                   answer.body.append(data, std::min(n, kMaxErrorBodyBytes - answer.body.size()));
                   return answer.body.size() < kMaxErrorBodyBytes;
                 });
  if (!res) {
    answer.transport =
        (answer.status != 0 ? "the answer was cut short: " : "") + httplib::to_string(res.error());
    answer.status = 0;
    return answer;
  }
  if (!answer.ok()) {
    answer.json = nlohmann::json::parse(answer.body, nullptr, false);
    if (answer.json.is_discarded()) answer.json = nullptr;
  }
  return answer;
}

HttpAnswer Client::Post(const std::string& path, const nlohmann::json& body,
                        const std::string& idempotency_key) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!idempotency_key.empty()) headers.emplace_back("Idempotency-Key", idempotency_key);
  return Send("POST", path, body.dump(), headers, !idempotency_key.empty());
}

HttpAnswer Client::Send(const std::string& method, const std::string& path, const std::string& body,
                        const std::vector<std::pair<std::string, std::string>>& extra, bool retry) {
  httplib::Headers headers;
  if (!token_.empty()) headers.emplace("Authorization", "Bearer " + token_);
  for (const auto& [k, v] : extra) headers.emplace(k, v);
  HttpAnswer answer;
  for (int attempt = 0; attempt <= (retry ? kMaxTransportRetries : 0); ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200 * attempt));
    httplib::Result res =
        method == "GET" ? http_->Get((prefix_ + path).c_str(), headers)
                        : http_->Post((prefix_ + path).c_str(), headers, body, "application/json");
    if (!res) {
      answer.transport = httplib::to_string(res.error());
      continue;
    }
    answer.status = res->status;
    answer.body = std::move(res->body);
    answer.json = nlohmann::json::parse(answer.body, nullptr, false);
    if (answer.json.is_discarded()) answer.json = nullptr;
    return answer;
  }
  return answer;
}

}  // namespace okr::ctl
