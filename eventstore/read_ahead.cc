#include "eventstore/read_ahead.h"

#include <array>
#include <cassert>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "eventstore/base/thread_name.h"

namespace okr {
namespace {

// A batch is handed over when it holds this many events or bytes: large
// enough that the hand-off's cost is nothing per event, small enough to
// stay in the caches between the two threads.
constexpr size_t kBatchEvents = 1024;
constexpr size_t kBatchBytes = 256 << 10;
// One batch being filled, one being worked on, one waiting between them.
constexpr size_t kBatches = 3;

struct Batch {
  std::string bytes;                                // the events, one after another
  std::vector<std::pair<uint64_t, size_t>> events;  // each one's seq and end in `bytes`
};

// The batches between the two threads: empty ones go to the reader, full
// ones to the caller.
class Pipe {
 public:
  Pipe() {
    for (Batch& b : batches_) empty_.push_back(&b);
  }

  // The reader's next batch to fill; nullptr once the caller stopped.
  Batch* TakeEmpty() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stopped_ || !empty_.empty(); });
    if (stopped_) return nullptr;
    Batch* b = empty_.front();
    empty_.pop_front();
    b->bytes.clear();
    b->events.clear();
    return b;
  }

  void PutFull(Batch* b) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      full_.push_back(b);
    }
    cv_.notify_all();
  }

  // The reader is done: `status` is what its reading returned.
  void Finish(Status status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      status_ = std::move(status);
    }
    cv_.notify_all();
  }

  // The caller's next full batch; nullptr when the reader is done and
  // every batch it filled was taken.
  Batch* TakeFull() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_ || !full_.empty(); });
    if (full_.empty()) return nullptr;
    Batch* b = full_.front();
    full_.pop_front();
    return b;
  }

  void PutEmpty(Batch* b) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      empty_.push_back(b);
    }
    cv_.notify_all();
  }

  // The caller wants no more: the reader's sink refuses the next event.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
  }

  Status status() {
    std::lock_guard<std::mutex> lock(mu_);
    assert(done_);  // read only after the reader's thread ended
    return status_;
  }

 private:
  std::array<Batch, kBatches> batches_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch*> empty_, full_;
  bool done_ = false, stopped_ = false;
  Status status_;
};

void Fill(const std::function<Status(const EventSink&)>& read, Pipe* pipe) {
  Batch* b = pipe->TakeEmpty();
  Status s = Status::Ok();
  if (b != nullptr) {
    s = read([&](uint64_t seq, std::string_view bytes) {
      b->bytes.append(bytes);
      b->events.emplace_back(seq, b->bytes.size());
      if (b->events.size() < kBatchEvents && b->bytes.size() < kBatchBytes) return true;
      pipe->PutFull(b);
      b = pipe->TakeEmpty();
      return b != nullptr;
    });
  }
  if (b != nullptr && !b->events.empty()) pipe->PutFull(b);
  pipe->Finish(std::move(s));
}

}  // namespace

Status ReadAhead(const std::function<Status(const EventSink& sink)>& read, const EventSink& fn) {
  Pipe pipe;
  std::thread reader = NamedThread("okr:read-ahead", [&read, &pipe] { Fill(read, &pipe); });
  // However the caller's work ends (an exception included), the reader is
  // stopped and joined before the pipe goes.
  struct Join {
    Pipe* pipe;
    std::thread* reader;
    ~Join() {
      pipe->Stop();
      reader->join();
    }
  } join{&pipe, &reader};
  bool more = true;
  while (Batch* b = pipe.TakeFull()) {
    size_t begin = 0;
    for (const auto& [seq, end] : b->events) {
      more = fn(seq, std::string_view(b->bytes).substr(begin, end - begin));
      if (!more) break;
      begin = end;
    }
    pipe.PutEmpty(b);
    if (!more) return Status::Ok();
  }
  return pipe.status();
}

}  // namespace okr
