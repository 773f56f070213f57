// okrctl's reader of GET /v1/events/raw answers (tools/ctl/raw_events.h):
// frames are taken whole however the bytes are split on arrival, and a
// server that sends anything but consecutive whole frames is refused with
// the seq named — verify --server must never pass a log it did not see;
// and FetchRawEvents, against the real okrd, pages from any seq.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "eventstore/event_json.h"
#include "eventstore/format.h"
#include "tests/okrd_harness.h"
#include "tools/ctl/raw_events.h"

namespace okr::ctl {
namespace {

using Frames = std::vector<std::pair<uint64_t, std::string>>;

// A frame as okrd writes it: seq and length big-endian, then the bytes;
// `length` overrides the true length when given.
std::string Frame(uint64_t seq, const std::string& bytes, int64_t length = -1) {
  std::string out;
  format::PutBigEndian64(&out, seq);
  uint32_t n = length < 0 ? static_cast<uint32_t>(bytes.size()) : static_cast<uint32_t>(length);
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
  return out + bytes;
}

// Feeds `answer` to a reader of seqs [first, last] `step` bytes at a time;
// the frames it handed out, and the first error (of Feed, then Finish).
std::pair<Frames, Status> Read(const std::string& answer, size_t step, uint64_t first = 1,
                               uint64_t last = 100) {
  RawFrameReader reader(first, last);
  Frames got;
  auto keep = [&](uint64_t seq, std::string_view bytes) {
    got.emplace_back(seq, std::string(bytes));
    return true;
  };
  for (size_t at = 0; at < answer.size(); at += step) {
    Status s = reader.Feed(std::string_view(answer).substr(at, step), keep);
    if (!s.ok()) return {got, s};
  }
  return {got, reader.Finish()};
}

TEST(RawFrameReader, TakesWholeFramesHoweverTheBytesArrive) {
  const Frames want = {{7, "first"}, {8, ""}, {9, std::string(5000, '\0')}, {10, "\x01\x02"}};
  std::string answer;
  for (const auto& [seq, bytes] : want) answer += Frame(seq, bytes);
  for (size_t step : {size_t{1}, size_t{5}, size_t{12}, size_t{13}, size_t{4096}, answer.size()}) {
    auto [got, status] = Read(answer, step, 7);
    EXPECT_TRUE(status.ok()) << step << ": " << status.ToString();
    EXPECT_EQ(got, want) << step;
  }
  auto [none, status] = Read("", 1);
  EXPECT_TRUE(status.ok() && none.empty());
}

TEST(RawFrameReader, RefusesAnythingButConsecutiveWholeFramesNamingTheSeq) {
  const std::string one = Frame(1, "one");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {one + Frame(3, "three"), "okrd served seq 3 where seq 2 was due"},
      {Frame(2, "two"), "okrd served seq 2 where seq 1 was due"},
      {one + Frame(1, "again"), "okrd served seq 1 where seq 2 was due"},
      {one + Frame(2, "two").substr(0, 7), "ends inside the header of the frame of seq 2"},
      {one + Frame(2, "two", 10), "ends inside the frame of seq 2: 3 of its 10 bytes arrived"},
      {one + Frame(2, "", int64_t{format::kMaxEventBytes} + 1),
       "the frame of seq 2 claims 8388609 bytes, more than an event may hold"},
      {one + Frame(2, "two") + Frame(3, "three"), "seq 3, past the last one asked for (2)"},
  };
  for (const auto& [answer, message] : cases) {
    for (size_t step : {size_t{1}, answer.size()}) {
      auto [got, status] = Read(answer, step, 1, 2);
      EXPECT_EQ(status.code(), Status::Code::kCorruption) << message;
      EXPECT_NE(status.message().find(message), std::string::npos) << status.message();
    }
  }
}

TEST(RawFrameReader, StopsWhenTheCallerHasEnough) {
  RawFrameReader reader(1, 3);
  std::string answer = Frame(1, "a") + Frame(2, "b") + Frame(3, "c");
  int calls = 0;
  Status s = reader.Feed(answer, [&](uint64_t, std::string_view) { return ++calls < 2; });
  EXPECT_TRUE(s.ok());
  EXPECT_TRUE(reader.stopped());
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(reader.Finish().ok());
}

// FetchRawEvents against the real okrd from a seq inside the log, as
// verify --server fetches the events okrd's claim covers beyond the head
// it started from: exactly the seqs after `after` up to `up_to`, each one
// the bytes /v1/events?raw=true shows.
TEST(FetchRawEvents, FromInsideTheLogTakesExactlyTheSeqsAsked) {
  const testing::Token admin{"admin-token-frames", "hr.admin", "admin", {}};
  testing::OkrdOptions options;
  options.tokens = std::vector<testing::Token>{admin};
  testing::Okrd okrd(options);
  ASSERT_TRUE(okrd.Start());
  const nlohmann::json company = {{"id", "acme"}, {"kind", "company"}, {"name", "Acme"}};
  ASSERT_EQ(okrd.Post("/v1/units", company, admin.token).status, 201);
  for (int i = 0; i < 9; ++i) {
    const nlohmann::json team = {
        {"id", "team-" + std::to_string(i)}, {"kind", "team"}, {"name", "T"}, {"parent", "acme"}};
    ASSERT_EQ(okrd.Post("/v1/units", team, admin.token).status, 201);
  }
  const uint64_t head = okrd.HeadSeq();
  ASSERT_GE(head, 10u);
  testing::Reply stored = okrd.Get("/v1/events?raw=true", admin.token);
  ASSERT_EQ(stored.status, 200) << stored.body;
  auto client = Client::Connect("http://127.0.0.1:" + std::to_string(okrd.port()), admin.token);
  ASSERT_TRUE(client.ok());
  Frames got;
  Status s = FetchRawEvents(
      **client, head - 2,
      [&](uint64_t seq, std::string_view bytes) {
        got.emplace_back(seq, std::string(bytes));
        return true;
      },
      {}, 3);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(got.size(), head - 5);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].first, 4 + i);
    const nlohmann::json& item = stored.json["items"][3 + i];
    EXPECT_EQ(item["seq"], got[i].first);
    EXPECT_EQ(Base64Decode(item["raw"].get<std::string>()), got[i].second) << got[i].first;
  }
}

}  // namespace
}  // namespace okr::ctl
