// Webhooks end to end (SPEC §8): registering, listing and removing them as
// an admin, refused input that leaves the log as it was, the URL and the
// secret nowhere but the key store, filters by type and cycle, disabling
// after the failure window, the daily digest, and a prompt stop while a
// receiver hangs. The delivery guarantees through failures and crashes:
// webhooks_delivery_test.cc.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "tests/okrd_story.h"
#include "tests/webhook_receiver.h"

namespace okr::testing {
namespace {

constexpr char kSecret[] = "s3cr3t-Sh0uld-N3ver-Leak-0123456789";
constexpr char kSecretPath[] = "T0PSECRETPATH-4b1d";

json Hook(const std::string& id, const std::string& url, json types = {"*"}) {
  return {{"id", id}, {"url", url}, {"secret", kSecret}, {"types", std::move(types)}};
}

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every byte under `dir`, file by file.
bool AnyFileHolds(const std::string& dir, const std::string& needle) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && ReadAll(e.path()).find(needle) != std::string::npos) return true;
  }
  return false;
}

json WebhookNamed(const Okrd& s, const std::string& id) {
  Reply list = Want(s.Get("/v1/webhooks", kAdmin.token), 200);
  for (const json& h : list.json["items"]) {
    if (h["id"] == id) return h;
  }
  return nullptr;
}

TEST(Webhooks, BadRegistrationsAreRefusedAndChangeNothing) {
  Okrd s(WithTokens());
  ASSERT_TRUE(s.Start());
  const std::string url = "http://127.0.0.1:9/hooks/x";
  const uint64_t head = s.HeadSeq();
  struct Case {
    json body;
    std::string field;
  };
  std::vector<Case> cases = {
      {json::object(), "id"},
      {Hook("Bad_Id", url), "id"},
      {Hook(std::string(65, 'a'), url), "id"},
      {Hook("h", "ftp://example.com/x"), "url"},
      {Hook("h", "http:///nohost"), "url"},
      {Hook("h", "http://user:pw@example.com/"), "url"},
      {Hook("h", "http://example.com:99999/"), "url"},
      {[&] {
         json b = Hook("h", url);
         b["url"] = 42;
         return b;
       }(),
       "url"},
      {Hook("h", url, json::array()), "types"},
      {Hook("h", url, {"no.such_type"}), "types"},
      {{{"id", "h"}, {"url", url}, {"secret", "short"}, {"types", {"*"}}}, "secret"},
      {{{"id", "h"}, {"url", url}, {"secret", std::string(257, 'x')}, {"types", {"*"}}}, "secret"},
      {[&] {
         json b = Hook("h", url);
         b["extra"] = 1;
         return b;
       }(),
       "extra"},
      {[&] {
         json b = Hook("h", url);
         b["cycle"] = 7;
         return b;
       }(),
       "cycle"},
      // Stored in the log for good: only an id, as a cycle's own.
      {[&] {
         json b = Hook("h", url);
         b["cycle"] = "Q4\x01\x1b[31m<b>";
         return b;
       }(),
       "cycle"},
      {[&] {
         json b = Hook("h", url);
         b["cycle"] = "";
         return b;
       }(),
       "cycle"},
  };
  for (const Case& c : cases) {
    Reply r = s.Post("/v1/webhooks", c.body, kAdmin.token);
    EXPECT_EQ(r.status, 400) << c.body.dump() << " " << r;
    EXPECT_EQ(r.field(), c.field) << c.body.dump() << " " << r;
    EXPECT_EQ(r.body.find(kSecret), std::string::npos) << r;
  }
  // A cycle that does not exist: a misspelt one would never deliver.
  json unknown_cycle = Hook("h", url);
  unknown_cycle["cycle"] = "no-such-cycle";
  Reply r = s.Post("/v1/webhooks", unknown_cycle, kAdmin.token);
  EXPECT_EQ(r.status, 422) << r;
  EXPECT_EQ(r.field(), "cycle") << r;
  EXPECT_NE(r.body.find("no cycle no-such-cycle"), std::string::npos) << r;
  // Only admins: editors and auditors are refused, and so is no token.
  EXPECT_EQ(s.Post("/v1/webhooks", Hook("h", url), kMaya.token).status, 403);
  EXPECT_EQ(s.Post("/v1/webhooks", Hook("h", url)).status, 401);
  EXPECT_EQ(s.Get("/v1/webhooks", kAuditor.token).status, 403);
  EXPECT_EQ(s.Get("/v1/webhooks").status, 401);
  EXPECT_EQ(s.Delete("/v1/webhooks/h", kMaya.token).status, 403);
  EXPECT_EQ(s.Delete("/v1/webhooks/h", kAdmin.token).status, 404);
  EXPECT_EQ(s.Get("/v1/webhooks/h/deliveries", kAdmin.token).status, 404);
  EXPECT_EQ(s.HeadSeq(), head) << "a refused registration moved the log";
  EXPECT_TRUE(Want(s.Get("/v1/webhooks", kAdmin.token), 200).json["items"].empty());
}

TEST(Webhooks, RegisterListRemoveAndIdsAreNeverReused) {
  // The webhooks' clock at 01:00 UTC and the digest at noon: no digest falls
  // due (and fails against the unreachable host) while the test looks at the
  // webhook's state, whatever the hour the test runs at.
  const int64_t one_am = 3600 - (NowUs() / 1'000'000) % 86'400;
  Okrd s(
      WithTokens({"--digest-at", "12:00", "--webhook-clock-offset-s=" + std::to_string(one_am)}));
  ASSERT_TRUE(s.Start());
  const std::string url = "https://hooks.example.invalid/services/" + std::string(kSecretPath);
  const uint64_t head = s.HeadSeq();
  Reply made = Want(
      s.Post("/v1/webhooks", Hook("ops-1", url, {"check_in.recorded", "digest"}), kAdmin.token),
      201);
  EXPECT_EQ(made.u("seq"), head + 1);
  json listed = WebhookNamed(s, "ops-1");
  ASSERT_TRUE(listed.is_object());
  EXPECT_EQ(listed["scheme"], "https");
  EXPECT_EQ(listed["host"], "hooks.example.invalid");
  EXPECT_EQ(listed["types"], json({"check_in.recorded", "digest"}));
  EXPECT_EQ(listed["state"], "active");
  EXPECT_EQ(listed["cursor"], head + 1);  // delivery starts after its registration
  EXPECT_EQ(listed["url_sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(s.Post("/v1/webhooks", Hook("ops-1", url), kAdmin.token).status, 409);
  EXPECT_EQ(s.HeadSeq(), head + 1);

  Reply events = Want(s.Get("/v1/events?entity=webhook:ops-1", kAuditor.token), 200);
  ASSERT_EQ(events.json["items"].size(), 1u);
  EXPECT_EQ(events.json["items"][0]["type"], "webhook.registered");
  EXPECT_EQ(events.json["items"][0]["actor"], kAdmin.actor);
  EXPECT_EQ(events.json["items"][0]["data"]["host"], "hooks.example.invalid");

  Reply removed = Want(s.Delete("/v1/webhooks/ops-1", kAdmin.token), 200);
  EXPECT_EQ(removed.u("seq"), head + 2);
  EXPECT_TRUE(WebhookNamed(s, "ops-1").is_null());
  EXPECT_EQ(s.Delete("/v1/webhooks/ops-1", kAdmin.token).status, 404);
  // A removed id is never taken again.
  EXPECT_EQ(s.Post("/v1/webhooks", Hook("ops-1", url), kAdmin.token).status, 409);
  Want(s.Post("/v1/webhooks", Hook("ops-2", url), kAdmin.token), 201);

  // The URL and the secret: nowhere in the log, the answers or okrd's log.
  for (const char* path :
       {"/v1/events?limit=1000", "/v1/webhooks", "/v1/webhooks/ops-2/deliveries"}) {
    Reply r = Want(s.Get(path, kAdmin.token), 200);
    EXPECT_EQ(r.body.find(kSecretPath), std::string::npos) << path;
    EXPECT_EQ(r.body.find(kSecret), std::string::npos) << path;
  }
  ASSERT_TRUE(s.Restart());
  EXPECT_TRUE(WebhookNamed(s, "ops-1").is_null());
  EXPECT_TRUE(WebhookNamed(s, "ops-2").is_object());
  ASSERT_TRUE(s.Stop());
  const std::string log = ReadAll(s.log_path());
  EXPECT_EQ(log.find(kSecretPath), std::string::npos);
  EXPECT_EQ(log.find(kSecret), std::string::npos);
  EXPECT_FALSE(AnyFileHolds(s.data_dir(), kSecretPath)) << "the URL is in the data directory";
  EXPECT_FALSE(AnyFileHolds(s.data_dir(), kSecret)) << "the secret is in the data directory";
  // They are in the key store, beside the data directory, closed to others.
  const std::string keys = s.data_dir() + ".keys";
  struct stat st {};
  ASSERT_EQ(::stat(keys.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(AnyFileHolds(keys, kSecret));
}

TEST(Webhooks, DeliversOnlyTheTypesAndCycleAsked) {
  Receiver rx;
  ASSERT_TRUE(rx.Start());
  Okrd s(WithTokens());
  ASSERT_TRUE(s.Start());
  PlanAcmeAndCycle(s, kAdmin.token, 30);
  Want(s.Post("/v1/cycles",
              {{"id", "q2"}, {"name", "Q2"}, {"starts", DateIn(-30)}, {"ends", DateIn(30)}},
              kAdmin.token),
       201);
  json types = {"check_in.recorded"};
  json hook = Hook("q-check-ins", rx.Url("q-check-ins"), types);
  hook["cycle"] = "q";
  Want(s.Post("/v1/webhooks", hook, kAdmin.token), 201);
  for (const std::string cycle : {"q", "q2"}) {
    Want(s.Post("/v1/objectives",
                {{"id", "o-" + cycle}, {"cycle", cycle}, {"owner", "acme"}, {"title", "T"}},
                kAdmin.token),
         201);
    Want(
        s.Post("/v1/key-results",
               {{"id", "kr-" + cycle}, {"objective", "o-" + cycle}, {"title", "K"}, {"target", 10}},
               kAdmin.token),
        201);
  }
  std::vector<uint64_t> wanted;
  for (int i = 1; i <= 3; ++i) {
    Want(s.Post("/v1/key-results/kr-q/check-ins", {{"value", i}}, kAdmin.token), 201);
    wanted.push_back(s.HeadSeq());
    Want(s.Post("/v1/key-results/kr-q2/check-ins", {{"value", i}}, kAdmin.token), 201);
  }
  Want(s.Post("/v1/key-results/kr-q/comments", {{"text", "not a check-in"}}, kAdmin.token), 201);
  const uint64_t head = s.HeadSeq();
  ASSERT_TRUE(WaitFor([&] { return WebhookNamed(s, "q-check-ins")["cursor"] == head; }))
      << WebhookNamed(s, "q-check-ins");
  std::vector<uint64_t> got;
  for (const Received& r : rx.received("q-check-ins")) got.push_back(r.seq);
  EXPECT_EQ(got, wanted);
}

TEST(Webhooks, AWebhookFailingThroughTheWindowIsDisabledBySystem) {
  Receiver rx;
  ASSERT_TRUE(rx.Start());
  rx.set_mode(Receiver::Mode::kFail);
  Okrd s(WithTokens({"--webhook-failure-window-s", "2", "--webhook-retry-base-ms", "50",
                     "--webhook-retry-cap-ms", "200"}));
  ASSERT_TRUE(s.Start());
  Want(s.Post("/v1/webhooks", Hook("doomed", rx.Url("doomed")), kAdmin.token), 201);
  Want(s.Post("/v1/units", {{"id", "acme"}, {"kind", "company"}, {"name", "Acme"}}, kAdmin.token),
       201);
  ASSERT_TRUE(WaitFor([&] { return WebhookNamed(s, "doomed")["state"] == "disabled"; }))
      << WebhookNamed(s, "doomed");
  Reply events = Want(s.Get("/v1/events?type=webhook.disabled", kAuditor.token), 200);
  ASSERT_EQ(events.json["items"].size(), 1u) << events;
  const json& disabled = events.json["items"][0];
  EXPECT_EQ(disabled["actor"], "system:okrd");
  EXPECT_EQ(disabled["entity"], "webhook:doomed");
  EXPECT_GT(disabled["data"]["failing_since"].get<int64_t>(), 0);
  EXPECT_GE(rx.refused(), 2);
  Reply metrics = Want(s.Get("/metrics", kAdmin.token), 200);
  EXPECT_NE(metrics.body.find("okrd_webhooks{state=\"disabled\"} 1"), std::string::npos);
  EXPECT_NE(metrics.body.find("okrd_webhook_lag_events{webhook=\"doomed\"} "), std::string::npos);
  Reply deliveries = Want(s.Get("/v1/webhooks/doomed/deliveries", kAdmin.token), 200);
  ASSERT_FALSE(deliveries.json["items"].empty());
  EXPECT_EQ(deliveries.json["items"][0]["status"], 500);
  // Disabled for good: a restart starts no delivery, and no second event.
  rx.set_mode(Receiver::Mode::kOk);
  ASSERT_TRUE(s.Restart());
  Want(s.Post("/v1/units",
              {{"id", "hr"}, {"kind", "department"}, {"name", "HR"}, {"parent", "acme"}},
              kAdmin.token),
       201);
  EXPECT_EQ(WebhookNamed(s, "doomed")["state"], "disabled");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // room for a wrong delivery
  EXPECT_TRUE(rx.received("doomed").empty());
  // It can still be removed.
  Want(s.Delete("/v1/webhooks/doomed", kAdmin.token), 200);
}

TEST(Webhooks, OneDigestPerDayKeepsItsDeliveryIdAcrossRestarts) {
  Receiver rx;
  ASSERT_TRUE(rx.Start());
  // The webhooks' clock at about noon UTC today, far from midnight, so the
  // restarts below fall on the same day whenever the test runs.
  const int64_t now_s = NowUs() / 1'000'000;
  const int64_t noon = 12 * 3600 - now_s % 86'400;
  Strings flags = {"--digest-at", "00:00", "--webhook-clock-offset-s=" + std::to_string(noon)};
  Okrd s(WithTokens(flags));
  ASSERT_TRUE(s.Start());
  Want(s.Post("/v1/webhooks", Hook("daily", rx.Url("daily"), {"digest", "unit.created"}),
              kAdmin.token),
       201);
  auto digests = [&] {
    std::vector<Received> out;
    for (Received& r : rx.received("daily")) {
      if (!r.digest_day.empty()) out.push_back(std::move(r));
    }
    return out;
  };
  ASSERT_TRUE(WaitFor([&] { return digests().size() == 1; }));
  Received first = digests()[0];
  EXPECT_TRUE(SignatureValid(first.signature, kSecret, first.body));
  // The digest itself (projections/read/digest.h; its contents on the demo
  // company are tested in digest_test): its day is the delivery's, and a
  // log with no objectives has nothing to remind anyone of.
  json body = json::parse(first.body);
  EXPECT_EQ(body["type"], "digest");
  EXPECT_EQ(body["day"], first.digest_day);
  EXPECT_EQ(body["units"], json::array());
  EXPECT_EQ(body["truncated"], false);
  // A restart the same day sends none: the day is in the key store. The
  // unit's event is delivered after the digest check, so once it arrives
  // the worker has decided.
  ASSERT_TRUE(s.Restart());
  Want(s.Post("/v1/units", {{"id", "acme"}, {"kind", "company"}, {"name", "Acme"}}, kAdmin.token),
       201);
  ASSERT_TRUE(WaitFor([&] { return rx.received("daily").size() == 2; }));
  EXPECT_EQ(digests().size(), 1u);
  // The next day (the webhooks' clock a day ahead): one more, its own id.
  flags.back() = "--webhook-clock-offset-s=" + std::to_string(noon + 86'400);
  ASSERT_TRUE(s.Restart(flags));
  ASSERT_TRUE(WaitFor([&] { return digests().size() == 2; }));
  Received second = digests()[1];
  EXPECT_NE(second.digest_day, first.digest_day);
  EXPECT_NE(second.delivery, first.delivery);
  ASSERT_TRUE(s.Restart(flags));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // room for a wrong digest
  EXPECT_EQ(digests().size(), 2u);
}

// https: the receiver's certificate is checked (here against --webhook-ca-file,
// the receiver's own self-signed one); without it the delivery is refused.
TEST(Webhooks, DeliversOverHttpsToAReceiverWhoseCertificateChecksOut) {
  TempDir dir;
  const std::string cert = dir.Sub("cert.pem"), key = dir.Sub("key.pem");
  const std::string make =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
      " -addext subjectAltName=DNS:localhost -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(make.c_str()), 0) << make;
  Receiver rx(cert, key);
  ASSERT_TRUE(rx.Start());
  Okrd s(WithTokens({"--webhook-ca-file", cert}));
  ASSERT_TRUE(s.Start());
  Want(s.Post("/v1/webhooks", Hook("tls", rx.Url("tls")), kAdmin.token), 201);
  EXPECT_EQ(WebhookNamed(s, "tls")["scheme"], "https");
  Want(s.Post("/v1/units", {{"id", "acme"}, {"kind", "company"}, {"name", "Acme"}}, kAdmin.token),
       201);
  ASSERT_TRUE(WaitFor([&] { return rx.received("tls").size() == 1; }));
  EXPECT_TRUE(SignatureValid(rx.received("tls")[0].signature, kSecret, rx.received("tls")[0].body));
  // The system's CAs do not know this certificate: refused, and retried.
  ASSERT_TRUE(s.Restart(Strings{"--webhook-retry-base-ms", "50", "--webhook-retry-cap-ms", "100"}));
  Want(s.Post("/v1/units",
              {{"id", "hr"}, {"kind", "department"}, {"name", "HR"}, {"parent", "acme"}},
              kAdmin.token),
       201);
  ASSERT_TRUE(WaitFor([&] { return WebhookNamed(s, "tls")["state"] == "failing"; }));
  Reply deliveries = Want(s.Get("/v1/webhooks/tls/deliveries", kAdmin.token), 200);
  EXPECT_EQ(deliveries.json["items"][0]["error"], "SSLServerVerification") << deliveries;
  EXPECT_EQ(rx.received("tls").size(), 1u);
}

// A receiver that answers 200 and then a body without end, on every
// connection, until it is destroyed.
class EndlessReceiver {
 public:
  EndlessReceiver() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) continue;
        ++connections_;
        serving_.emplace_back([this, c] {
          const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n";
          const std::string chunk(64 * 1024, 'x');
          bool ok = ::send(c, head.data(), head.size(), MSG_NOSIGNAL) > 0;
          while (ok && !stop_) ok = ::send(c, chunk.data(), chunk.size(), MSG_NOSIGNAL) > 0;
          ::close(c);
        });
      }
    });
  }
  ~EndlessReceiver() {
    stop_ = true;
    thread_.join();
    for (auto& t : serving_) t.join();
    ::close(fd_);
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  int connections() const { return connections_; }

 private:
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
  std::vector<std::thread> serving_;
};

TEST(Webhooks, AnAnswerWithoutEndIsNotReadAndCountsByItsStatus) {
  EndlessReceiver rx;
  Okrd s(WithTokens());
  ASSERT_TRUE(s.Start());
  BuildOrg(s);
  Want(s.Post("/v1/webhooks", Hook("endless", rx.Url()), kAdmin.token), 201);
  for (int i = 0; i < 3; ++i) {
    Want(s.Patch("/v1/units/ta", {{"name", "Talent " + std::to_string(i)}}, kAdmin.token), 200);
  }
  const uint64_t head = s.HeadSeq();
  // Each event is delivered on its status alone: okrd reads no body, so
  // neither its time nor its memory goes into one that never ends.
  ASSERT_TRUE(WaitFor([&] { return WebhookNamed(s, "endless")["cursor"] == head; }, 30))
      << WebhookNamed(s, "endless");
  EXPECT_EQ(rx.connections(), 3);
  EXPECT_EQ(WebhookNamed(s, "endless")["state"], "active");
  EXPECT_TRUE(s.Stop());
}

TEST(Webhooks, SigtermStopsPromptlyWhileAReceiverHangs) {
  Receiver rx(/*hang_ms=*/8000);
  ASSERT_TRUE(rx.Start());
  rx.set_mode(Receiver::Mode::kHang);
  Okrd s(WithTokens());  // okrd's own timeout: the default 10 s
  ASSERT_TRUE(s.Start());
  Want(s.Post("/v1/webhooks", Hook("slow", rx.Url("slow")), kAdmin.token), 201);
  Want(s.Post("/v1/units", {{"id", "acme"}, {"kind", "company"}, {"name", "Acme"}}, kAdmin.token),
       201);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the POST is under way
  auto started = Clock::now();
  ASSERT_TRUE(s.Stop());
  EXPECT_LT(Clock::now() - started, std::chrono::milliseconds(2500));
}

}  // namespace
}  // namespace okr::testing
