// The webhooks' pieces without okrd: URLs taken apart, registrations
// checked, the signature and delivery id as a receiver recomputes them,
// the backoff's bounds, and the key store's records.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "api/webhooks/delivery.h"
#include "api/webhooks/webhook_store.h"
#include "api/webhooks/webhooks.h"
#include "eventstore/keystore.h"
#include "tests/test_support.h"
#include "tests/webhook_receiver.h"

namespace okr::webhooks {
namespace {

using nlohmann::json;

TEST(WebhookUrl, SplitsSchemeHostPortAndPath) {
  auto p = SplitUrl("HTTPS://Hooks.Example.com:8443/a/b?x=1#frag");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->scheme, "https");
  EXPECT_EQ(p->host, "hooks.example.com");
  EXPECT_EQ(p->port, "8443");
  EXPECT_EQ(p->path, "/a/b?x=1");
  p = SplitUrl("http://[::1]:9000");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->host, "[::1]");
  EXPECT_EQ(p->path, "/");
  for (const char* bad : {"ftp://x/", "http://", "http:///x", "http://u:p@x/", "http://x:0/",
                          "http://x:70000/", "http://x y/", "example.com/x", "http://ex_ample/"}) {
    EXPECT_FALSE(SplitUrl(bad)) << bad;
  }
  EXPECT_FALSE(SplitUrl("http://x/" + std::string(kMaxUrlBytes, 'a')));
}

TEST(WebhookRegistration, ChecksEveryFieldAndNamesIt) {
  json ok = {{"id", "ops-1"},
             {"url", "http://h/x"},
             {"secret", std::string(16, 's')},
             {"types", {"check_in.recorded", "digest", "*", "digest"}},
             {"cycle", "q1"}};
  auto c = ParseRegistration(ok);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->types, (std::vector<std::string>{"check_in.recorded", "digest", "*"}));
  EXPECT_EQ(c->host, "h");
  EXPECT_EQ(c->url_sha256, ToHex(Sha256("http://h/x")));
  auto refused = [&](const char* field, json value) {
    json b = ok;
    if (value.is_null()) {
      b.erase(field);
    } else {
      b[field] = value;
    }
    auto r = ParseRegistration(b);
    return !r.ok() && r.status().field() == field;
  };
  EXPECT_TRUE(refused("id", nullptr));
  EXPECT_TRUE(refused("id", "A"));
  EXPECT_TRUE(refused("id", std::string(65, 'a')));
  EXPECT_TRUE(refused("url", "mailto:x@y"));
  EXPECT_TRUE(refused("secret", std::string(15, 's')));
  EXPECT_TRUE(refused("secret", std::string(257, 's')));
  EXPECT_TRUE(refused("types", json::array()));
  EXPECT_TRUE(refused("types", {"webhook.nope"}));
  EXPECT_TRUE(refused("cycle", 3));
  EXPECT_TRUE(refused("extra", 1));
}

TEST(WebhookSignature, IsHmacSha256OfTimeDotBody) {
  // Python: hmac.new(b"0123456789abcdef", b'1700000000.{"a":1}', sha256).hexdigest()
  EXPECT_EQ(SignatureV1("0123456789abcdef", 1700000000, R"({"a":1})"),
            "9eb18f493f8ec135d9eb2dad817c369bb4e9cbfa818657897a7437c1cd8c3a23");
  EXPECT_EQ(DeliveryId("h1", "7"), "5c20cc72fbe6083d7420fb34b96dc8a9");
  EXPECT_NE(DeliveryId("h1", "8"), DeliveryId("h1", "7"));
}

TEST(WebhookBackoff, FullJitterUnderAnExponentialCeilingAndTheCap) {
  for (int attempt = 1; attempt <= 40; ++attempt) {
    const int64_t ceiling = std::min<int64_t>(int64_t{1000} << std::min(attempt - 1, 20), 300'000);
    for (int i = 0; i < 50; ++i) {
      int64_t wait = BackoffUs(attempt, 1000, 300'000);
      EXPECT_GE(wait, 0);
      EXPECT_LE(wait, ceiling) << attempt;
    }
  }
}

TEST(KeyStore, KeepsRecordsDurablyInAPrivateDirectory) {
  testing::TempDir dir;
  const std::string path = DefaultKeyStorePath(dir.Sub("data/"));
  EXPECT_EQ(path, dir.Sub("data.keys"));
  {
    auto keys = KeyStore::Open(path);
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    WebhookStore records(keys->get());
    WebhookConfig c{"h-1", "http://h/x", std::string(16, 's'), {"*"}, "", "http", "h", "ab"};
    ASSERT_TRUE(records.PutConfig(c).ok());
    DeliveryState state{7, -1, 0, false};
    for (uint64_t seq = 8; seq < 8 + kMaxDeliveriesKept + 5; ++seq) {
      state.cursor = seq;
      ASSERT_TRUE(records.SaveAttempt("h-1", state, {"event", seq, "d", 1, 200, "", 1, 0}).ok());
    }
    auto deliveries = records.Deliveries("h-1");
    ASSERT_TRUE(deliveries.ok());
    ASSERT_EQ(deliveries->size(), kMaxDeliveriesKept);
    EXPECT_EQ(deliveries->front().seq, 8 + kMaxDeliveriesKept + 4);  // newest first
  }
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto keys = KeyStore::Open(path);
  ASSERT_TRUE(keys.ok());
  WebhookStore records(keys->get());
  auto all = records.LoadAll();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].config.url, "http://h/x");
  ASSERT_TRUE((*all)[0].state);
  EXPECT_EQ((*all)[0].state->cursor, 8 + kMaxDeliveriesKept + 4);
  ASSERT_TRUE(records.Drop("h-1").ok());
  EXPECT_TRUE(records.LoadAll()->empty());
  EXPECT_TRUE(records.Deliveries("h-1")->empty());
  // Dropped means gone from the files too (flushed and compacted away),
  // not only hidden behind a tombstone.
  for (const auto& e : std::filesystem::directory_iterator(path)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(bytes.find("http://h/x"), std::string::npos) << e.path();
  }
}

TEST(KeyStore, RefusesADirectoryOthersMayEnter) {
  testing::TempDir dir;
  const std::string path = dir.Sub("open.keys");
  ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);
  auto keys = KeyStore::Open(path);
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().code(), Status::Code::kInvalid);
}

}  // namespace
}  // namespace okr::webhooks

namespace okr::webhooks {
namespace {

// The log is the authority: a key-store webhook the log does not register
// (okrd stopped between the key store's write and the event's) or has
// removed is dropped at start-up; one the log registers is kept.
TEST(WebhookReconcile, DropsWhatTheLogDoesNotRegister) {
  testing::TempDir dir;
  auto store = EventStore::Open(dir.Sub("data"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto projector = Projector::Open(store->get());
  ASSERT_TRUE(projector.ok());
  auto keys = KeyStore::Open(dir.Sub("data.keys"));
  ASSERT_TRUE(keys.ok());
  auto config = [](const std::string& id) {
    json body = {{"id", id},
                 {"url", "http://127.0.0.1:9/" + id},
                 {"secret", std::string(16, 's')},
                 {"types", {"*"}}};
    return ParseRegistration(body).value();
  };
  {
    auto hooks = Webhooks::Start(store->get(), projector->get(), keys->get(), {});
    ASSERT_TRUE(hooks.ok());
    ASSERT_TRUE((*hooks)->Register(config("kept"), "admin").ok());
    ASSERT_TRUE((*hooks)->Register(config("removed"), "admin").ok());
    ASSERT_TRUE((*hooks)->Remove("removed", "admin").ok());
  }
  WebhookStore records(keys->get());
  ASSERT_TRUE(records.PutConfig(config("orphan")).ok());   // no event: a crash in between
  ASSERT_TRUE(records.PutConfig(config("removed")).ok());  // the log says removed
  auto hooks = Webhooks::Start(store->get(), projector->get(), keys->get(), {});
  ASSERT_TRUE(hooks.ok());
  std::vector<std::string> ids;
  for (const WebhookInfo& info : (*hooks)->List()) {
    ids.push_back(info.config.id);
    EXPECT_TRUE(info.config.url.empty() && info.config.secret.empty());
  }
  EXPECT_EQ(ids, std::vector<std::string>{"kept"});
  auto left = records.LoadAll();
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].config.id, "kept");
  EXPECT_EQ((*hooks)->Register(config("removed"), "admin").status().code(),
            Status::Code::kAlreadyExists);
}

}  // namespace
}  // namespace okr::webhooks

namespace okr::webhooks {
namespace {

// The failure window on an injected clock: the real 24 hours, passed in an
// instant. Until then the webhook is failing; after, okrd appends
// webhook.disabled by system:okrd with the time it began failing.
TEST(WebhookWorker, DisablesAfterTheFailureWindowOnAnInjectedClock) {
  testing::TempDir dir;
  auto store = EventStore::Open(dir.Sub("data"));
  ASSERT_TRUE(store.ok());
  auto projector = Projector::Open(store->get());
  ASSERT_TRUE(projector.ok());
  auto keys = KeyStore::Open(dir.Sub("data.keys"));
  ASSERT_TRUE(keys.ok());
  testing::Receiver rx;
  ASSERT_TRUE(rx.Start());
  rx.set_mode(testing::Receiver::Mode::kFail);
  const int64_t start = SystemClockUs();
  std::atomic<int64_t> now{start};
  WebhookOptions options;
  options.clock_us = [&now] { return now.load(); };
  options.retry_base_us = 1000;
  options.retry_cap_us = 10'000;
  auto hooks = Webhooks::Start(store->get(), projector->get(), keys->get(), options);
  ASSERT_TRUE(hooks.ok());
  json body = {{"id", "doomed"},
               {"url", rx.Url("doomed")},
               {"secret", std::string(16, 's')},
               {"types", {"*"}}};
  ASSERT_TRUE((*hooks)->Register(ParseRegistration(body).value(), "admin").ok());
  body["id"] = "other";  // its registration is an event for "doomed" to deliver
  ASSERT_TRUE((*hooks)->Register(ParseRegistration(body).value(), "admin").ok());
  auto state_of = [&] {
    for (const WebhookInfo& info : (*hooks)->List()) {
      if (info.config.id == "doomed") return info.state;
    }
    return DeliveryState{};
  };
  auto wait_for = [](auto done) {
    for (int i = 0; i < 600 && !done(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return done();
  };
  ASSERT_TRUE(wait_for([&] { return rx.refused() >= 3; }));
  EXPECT_EQ(state_of().failing_since_us, start);
  EXPECT_FALSE(state_of().disabled);
  now += int64_t{24} * 3600 * 1'000'000;  // the whole window, failing
  ASSERT_TRUE(wait_for([&] { return state_of().disabled; }));
  auto stream = (*store)->ReadStream("webhook:doomed");
  ASSERT_TRUE(stream.ok());
  ASSERT_EQ(stream->size(), 2u);
  auto disabled = DecodedEvent::Decode(stream->back().bytes);
  ASSERT_TRUE(disabled.ok());
  schema::Event::Reader ev = (*disabled)->event();
  ASSERT_EQ(ev.which(), schema::Event::Which::WEBHOOK_DISABLED);
  EXPECT_STREQ(ev.getActor().cStr(), kSystemActor);
  EXPECT_EQ(ev.getWebhookDisabled().getFailingSince(), start);
}

}  // namespace
}  // namespace okr::webhooks
