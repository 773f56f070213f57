// crash_writer DIR THREADS SEED: appends events to the log in DIR from
// THREADS threads until it is killed. durability_test SIGKILLs it at a random
// moment and then checks that everything it acknowledged survived.
//
// For every append the store acknowledged, one line goes to stdout:
//   first_seq last_seq sha256hex(event first_seq) ... sha256hex(event last_seq)
// The hashes are of the exact stored bytes, read back after Append returned.
// Each line is a single write(2) of less than PIPE_BUF bytes, so a reader of
// the pipe sees whole lines only, whatever moment the kill lands on.
//
// Every append carries the idempotency key "g<k>-s<seed>-t<thread>-<n>",
// where k is the number of events in it (1..3): the key is stored in each of
// its events, so a scan of the log can tell whether an append was half
// written.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "eventstore/event_codec.h"
#include "eventstore/event_store.h"
#include "tests/test_support.h"

namespace {

[[noreturn]] void Die(const std::string& message) {
  std::string line = "crash_writer: " + message + "\n";
  ssize_t ignored = write(2, line.data(), line.size());
  (void)ignored;
  _exit(3);
}

// One write(2) per line keeps lines whole in the pipe (atomic below PIPE_BUF).
void WriteLine(const std::string& line) {
  if (line.size() > 4096) Die("line too long for an atomic pipe write");
  for (;;) {
    ssize_t n = write(1, line.data(), line.size());
    if (n == static_cast<ssize_t>(line.size())) return;
    if (n < 0 && errno == EINTR) continue;
    Die("short write to stdout");
  }
}

okr::AppendRequest MakeAppend(std::mt19937_64& rng, uint64_t seed, int thread, uint64_t n) {
  // Mostly single events, with enough 2- and 3-event appends that a torn
  // batch would show.
  const size_t size = rng() % 5 < 2 ? 2 + rng() % 2 : 1;
  okr::AppendRequest request;
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "literal" + string&&.
  std::string& key = request.idempotency_key;
  key.append("g").append(std::to_string(size));
  key.append("-s").append(std::to_string(seed));
  key.append("-t").append(std::to_string(thread));
  key.append("-").append(std::to_string(n));
  request.fingerprint = okr::Sha256(request.idempotency_key);
  for (size_t i = 0; i < size; ++i) {
    std::string suffix = request.idempotency_key + "-" + std::to_string(i);
    if (rng() % 4 == 0) {
      request.events.push_back(
          okr::testing::UnitCreatedDraft("crash-writer", "unit-" + suffix, "Unit " + suffix));
    } else {
      // A few key results shared by all threads and processes, so per-entity
      // versions interleave across appends, threads and crashes.
      std::string kr = "kr-" + std::to_string(rng() % 12);
      request.events.push_back(okr::testing::CheckInDraft("crash-writer", kr, "ci-" + suffix,
                                                          static_cast<double>(rng() % 1000)));
    }
  }
  return request;
}

void AppendForever(okr::EventStore* store, uint64_t seed, int thread) {
  std::mt19937_64 rng(seed * 1000003 + thread);
  for (uint64_t n = 0;; ++n) {
    okr::AppendRequest request = MakeAppend(rng, seed, thread, n);
    const size_t size = request.events.size();
    auto result = store->Append(std::move(request));
    if (!result.ok()) Die("append failed: " + result.status().ToString());
    if (result->replayed) Die("a fresh idempotency key was answered as a replay");
    if (result->last_seq - result->first_seq + 1 != size) Die("append got the wrong seq range");
    auto events = store->Read(result->first_seq - 1, size);
    if (!events.ok()) Die("read back failed: " + events.status().ToString());
    if (events->size() != size) Die("read back fewer events than were appended");
    std::string line = std::to_string(result->first_seq) + " " + std::to_string(result->last_seq);
    for (size_t i = 0; i < size; ++i) {
      if ((*events)[i].seq != result->first_seq + i) Die("read back a different seq");
      line.append(" ").append(okr::ToHex(okr::Sha256((*events)[i].bytes)));
    }
    line += "\n";
    WriteLine(line);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) Die("usage: crash_writer DIR THREADS SEED");
  const std::string dir = argv[1];
  const int threads = std::atoi(argv[2]);
  const uint64_t seed = std::strtoull(argv[3], nullptr, 10);
  if (threads < 1 || threads > 64) Die("THREADS must be 1..64");

  auto opened = okr::EventStore::Open(dir);
  if (!opened.ok()) Die("open failed: " + opened.status().ToString());
  std::unique_ptr<okr::EventStore> store = std::move(opened.value());

  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back(AppendForever, store.get(), seed, t);
  }
  // The threads only stop by dying; the parent kills the whole process.
  for (auto& w : workers) w.join();
  return 0;
}
