// okrd end to end, GET /v1/events/raw: the frames a bulk reader (okrctl
// verify --server, a replica catching up) takes carry the exact stored
// bytes, page with `after` over the log exactly once, are audit reads,
// and every bad parameter is refused with nothing written.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "eventstore/event_json.h"
#include "eventstore/format.h"
#include "tests/okrd_story.h"

namespace okr::testing {
namespace {

using Frames = std::vector<std::pair<uint64_t, std::string>>;

// The frames of an answer by the SPEC's layout (8-byte seq, 4-byte
// length, both big-endian, then the bytes); a test failure when the body
// is not whole frames.
Frames SplitFrames(const std::string& body) {
  Frames out;
  size_t at = 0;
  while (at < body.size()) {
    if (body.size() - at < 12) {
      ADD_FAILURE() << "a frame header cut short at byte " << at;
      break;
    }
    uint64_t seq = format::GetBigEndian64(body.data() + at);
    uint64_t length = 0;
    for (size_t i = at + 8; i < at + 12; ++i) length = length << 8 | uint8_t(body[i]);
    if (body.size() - at - 12 < length) {
      ADD_FAILURE() << "the frame of seq " << seq << " claims " << length << " bytes";
      break;
    }
    out.emplace_back(seq, body.substr(at + 12, length));
    at += 12 + length;
  }
  return out;
}

// Every event's stored bytes as /v1/events?raw=true shows them (base64).
Frames StoredBytes(const Okrd& s) {
  Reply r = s.Get("/v1/events?raw=true&limit=1000", kAuditor.token);
  EXPECT_EQ(r.status, 200) << r;
  EXPECT_TRUE(r.json["next"].is_null()) << "the story fits one page";
  Frames out;
  for (const json& item : r.json["items"]) {
    auto bytes = Base64Decode(item["raw"].get<std::string>());
    EXPECT_TRUE(bytes.has_value());
    out.emplace_back(item["seq"].get<uint64_t>(), bytes.value_or(""));
  }
  return out;
}

class OkrdRawEvents : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(okrd_.Start());
    head_ = BuildStory(okrd_).head;
    ASSERT_EQ(okrd_.HeadSeq(), head_);
  }
  Reply Raw(const std::string& query, const std::string& token = kAuditor.token) const {
    return okrd_.Get("/v1/events/raw" + query, token);
  }

  Okrd okrd_{WithTokens()};
  uint64_t head_ = 0;  // after the story
};

TEST_F(OkrdRawEvents, FramesAreTheStoredBytesAndTheHeadIsNamed) {
  // A limit far above the log answers just the log.
  Reply r = Raw("?after=0&limit=100000");
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(r.header("Content-Type"), "application/octet-stream");
  EXPECT_EQ(r.header("Cache-Control"), "no-store");
  EXPECT_EQ(r.header("Okrd-Head-Seq"), std::to_string(head_));
  Frames frames = SplitFrames(r.body);
  ASSERT_EQ(frames.size(), head_);
  EXPECT_EQ(frames, StoredBytes(okrd_));
  // The defaults (after=0, limit 10,000) and the admin role read the same.
  EXPECT_EQ(Raw("", kAdmin.token).body, r.body);
  // Appended later, not in an answer that began before.
  CreateUnit(okrd_, "late", "team", "Late", "hr");
  Reply later = Raw("?after=" + std::to_string(head_ - 1));
  EXPECT_EQ(later.header("Okrd-Head-Seq"), std::to_string(head_ + 1));
  EXPECT_EQ(SplitFrames(later.body).size(), 2u);
}

// okrd writes each batch of frames as one chunk, straight to the socket:
// a reader slower than okrd, behind a small receive window, gets every
// stored byte in order (partial writes: transport_test, SendPieces).
TEST_F(OkrdRawEvents, AReaderSlowerThanOkrdGetsEveryFrame) {
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(CreateUnit(okrd_, "raw-" + std::to_string(i), "team",
                         std::string(200, static_cast<char>('a' + i % 26)), "hr")
                  .status,
              201);
  }
  const Frames stored = StoredBytes(okrd_);
  size_t stored_bytes = 0;
  for (const auto& frame : stored) stored_bytes += 12 + frame.second.size();
  ASSERT_GT(stored_bytes, 16u * 4096) << "the answer outgrows the socket's buffers";
  httplib::Client client("127.0.0.1", okrd_.port());
  client.set_socket_options([](socket_t sock) {
    int bytes = 4096;
    setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  });
  client.set_read_timeout(30, 0);
  std::string body;
  int pieces = 0;
  auto res = client.Get("/v1/events/raw?after=0&limit=100000",
                        {{"Authorization", "Bearer " + std::string(kAuditor.token)}},
                        [&](const char* data, size_t n) {
                          body.append(data, n);
                          if (++pieces <= 20)
                            std::this_thread::sleep_for(std::chrono::milliseconds(5));
                          return true;
                        });
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  ASSERT_EQ(res->status, 200);
  EXPECT_GT(pieces, 1);
  EXPECT_EQ(body.size(), stored_bytes);
  EXPECT_EQ(SplitFrames(body), stored);
}

TEST_F(OkrdRawEvents, PagingWithAfterCoversTheLogExactlyOnce) {
  const Frames whole = StoredBytes(okrd_);
  Frames paged;
  uint64_t after = 0;
  for (int page = 0; page < 10; ++page) {
    Reply r = Raw("?after=" + std::to_string(after) + "&limit=10");
    ASSERT_EQ(r.status, 200) << r;
    Frames frames = SplitFrames(r.body);
    if (frames.empty()) break;
    EXPECT_LE(frames.size(), 10u);
    EXPECT_EQ(frames.front().first, after + 1);
    after = frames.back().first;
    paged.insert(paged.end(), frames.begin(), frames.end());
  }
  EXPECT_EQ(paged, whole);
  // At or beyond the head: no frames, still the head.
  for (const std::string& beyond : {std::to_string(head_), std::to_string(head_ + 1),
                                    std::string("1000000"), std::string("18446744073709551615")}) {
    Reply r = Raw("?after=" + beyond + "&limit=100000");
    EXPECT_EQ(r.status, 200) << beyond << r;
    EXPECT_TRUE(r.body.empty()) << beyond;
    EXPECT_EQ(r.header("Okrd-Head-Seq"), std::to_string(head_));
  }
}

TEST_F(OkrdRawEvents, OnlyAuditorsAndAdminsRead) {
  EXPECT_EQ(Raw("", "").status, 401);
  EXPECT_EQ(Raw("", "not-a-token").status, 401);
  EXPECT_EQ(Raw("", kViewer.token).status, 403);
  EXPECT_EQ(Raw("", kMaya.token).status, 403);
  EXPECT_EQ(Raw("", kAuditor.token).status, 200);
}

TEST_F(OkrdRawEvents, BadParametersAreRefusedAndChangeNothing) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"?limit=0", "limit"},
      {"?limit=-1", "limit"},
      {"?limit=100001", "limit"},
      {"?limit=abc", "limit"},
      {"?limit=1e3", "limit"},
      {"?limit=99999999999999999999999", "limit"},
      {"?limit=", "limit"},
      {"?after=abc", "after"},
      {"?after=-1", "after"},
      {"?after=1%0A", "after"},
      {"?after=18446744073709551616", "after"},
      {"?after=5&cursor=6", "cursor"},
  };
  for (const auto& [query, field] : cases) {
    Reply r = Raw(query);
    EXPECT_EQ(r.status, 400) << query << r;
    EXPECT_EQ(r.code(), "malformed") << query;
    EXPECT_EQ(r.field(), field) << query;
    EXPECT_FALSE(r.has_header("Okrd-Head-Seq")) << query;
  }
  EXPECT_EQ(okrd_.HeadSeq(), head_);
  EXPECT_EQ(okrd_.Get("/healthz").status, 200);
}

}  // namespace
}  // namespace okr::testing
