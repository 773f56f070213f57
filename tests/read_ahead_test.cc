// Reading the log ahead on a thread of its own (eventstore/read_ahead.h):
// every event arrives once, whole and in order, whatever the batches; a
// stop, an error and an exception each end the reading cleanly.
#include "eventstore/read_ahead.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

namespace okr {
namespace {

// Events of every size from empty to 600 KiB (larger than a batch), each
// filled with a byte of its own, so a torn or shifted view shows.
std::vector<std::string> Events(size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    size_t size = i % 9973 == 0 ? (600u << 10) : (i * 37) % 700;
    out.emplace_back(size, static_cast<char>('a' + i % 26));
  }
  return out;
}

// A reader of `events` (seq = index + 1) that stops when the sink says so,
// counting what it offered.
auto ReaderOf(const std::vector<std::string>& events, std::atomic<size_t>* offered,
              Status end = Status::Ok()) {
  return [&events, offered, end](const EventSink& sink) {
    for (size_t i = 0; i < events.size(); ++i) {
      offered->fetch_add(1);
      if (!sink(i + 1, events[i])) return Status::Ok();
    }
    return end;
  };
}

TEST(ReadAhead, EveryEventArrivesOnceWholeAndInOrder) {
  const std::vector<std::string> events = Events(20'000);
  std::atomic<size_t> offered{0};
  size_t got = 0;
  Status s = ReadAhead(ReaderOf(events, &offered), [&](uint64_t seq, std::string_view bytes) {
    EXPECT_EQ(seq, got + 1);
    EXPECT_EQ(bytes, events[got]) << seq;
    ++got;
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(got, events.size());
  EXPECT_EQ(offered.load(), events.size());
}

TEST(ReadAhead, FalseStopsTheReadingSoonAndAnswersOk) {
  const std::vector<std::string> events = Events(200'000);
  std::atomic<size_t> offered{0};
  size_t got = 0;
  Status s = ReadAhead(ReaderOf(events, &offered), [&](uint64_t seq, std::string_view) {
    ++got;
    return seq < 10;
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(got, 10u);  // nothing after the false
  // The reader is at most a few batches ahead, then stopped.
  EXPECT_LT(offered.load(), 10'000u);
}

TEST(ReadAhead, TheReadersErrorComesAfterEveryEventBeforeIt) {
  const std::vector<std::string> events = Events(5'000);
  std::atomic<size_t> offered{0};
  size_t got = 0;
  Status s = ReadAhead(ReaderOf(events, &offered, Status::IOError("disk gone")),
                       [&](uint64_t, std::string_view) {
                         ++got;
                         return true;
                       });
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_EQ(s.message(), "disk gone");
  EXPECT_EQ(got, events.size());
}

TEST(ReadAhead, AnExceptionFromTheCallerStopsAndJoinsTheReader) {
  const std::vector<std::string> events = Events(200'000);
  std::atomic<size_t> offered{0};
  EXPECT_THROW(ReadAhead(ReaderOf(events, &offered),
                         [&](uint64_t seq, std::string_view) -> bool {
                           if (seq == 3000) throw std::runtime_error("fold failed");
                           return true;
                         }),
               std::runtime_error);
  EXPECT_LT(offered.load(), events.size());
}

TEST(ReadAhead, AnEmptyReadCallsNothing) {
  const std::vector<std::string> none;
  std::atomic<size_t> offered{0};
  bool called = false;
  EXPECT_TRUE(ReadAhead(ReaderOf(none, &offered), [&](uint64_t, std::string_view) {
                called = true;
                return true;
              }).ok());
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace okr
