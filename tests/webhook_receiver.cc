#include "tests/webhook_receiver.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>

namespace okr::testing {

bool SignatureValid(const std::string& signature, const std::string& secret,
                    const std::string& body) {
  auto comma = signature.find(",v1=");
  if (signature.rfind("t=", 0) != 0 || comma == std::string::npos) return false;
  const std::string t = signature.substr(2, comma - 2);
  const std::string v1 = signature.substr(comma + 4);
  const std::string text = t + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac, &len);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kDigits[mac[i] >> 4]);
    hex.push_back(kDigits[mac[i] & 0xf]);
  }
  return !t.empty() && hex == v1;
}

bool Receiver::Start() {
  Stop();
  if (cert_path_.empty()) {
    server_ = std::make_unique<httplib::Server>();
  } else {
    server_ = std::make_unique<httplib::SSLServer>(cert_path_.c_str(), key_path_.c_str());
  }
  server_->Post(R"(/hooks/([a-z0-9-]+))",
                [this](const httplib::Request& req, httplib::Response& res) { Handle(req, res); });
  if (port_ == 0) {
    port_ = server_->bind_to_any_port("127.0.0.1");
  } else if (!server_->bind_to_port("127.0.0.1", port_)) {
    return false;
  }
  if (port_ <= 0) return false;
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return true;
}

void Receiver::Stop() {
  if (!server_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

void Receiver::Handle(const httplib::Request& req, httplib::Response& res) {
  Mode mode = mode_;
  if (mode == Mode::kHang) {
    std::this_thread::sleep_for(std::chrono::milliseconds(hang_ms_));
  }
  if (mode != Mode::kOk) {
    ++refused_;
    res.status = mode == Mode::kFail ? 500 : 503;
    return;
  }
  Received r;
  r.hook = req.matches[1];
  const std::string seq = req.get_header_value("Okrd-Seq");
  r.seq = seq.empty() ? 0 : std::stoull(seq);
  r.delivery = req.get_header_value("Okrd-Delivery");
  r.signature = req.get_header_value("Okrd-Signature");
  r.digest_day = req.get_header_value("Okrd-Digest-Day");
  r.content_type = req.get_header_value("Content-Type");
  r.user_agent = req.get_header_value("User-Agent");
  r.body = req.body;
  {
    std::lock_guard lock(mu_);
    received_.push_back(std::move(r));
  }
  res.status = 200;
}

std::vector<Received> Receiver::received() const {
  std::lock_guard lock(mu_);
  return received_;
}

std::vector<Received> Receiver::received(const std::string& hook) const {
  std::vector<Received> out;
  for (Received& r : received()) {
    if (r.hook == hook) out.push_back(std::move(r));
  }
  return out;
}

}  // namespace okr::testing
