#include "api/replica.h"

#include <httplib.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "api/routes/raw_frames.h"
#include "api/routes/request.h"

namespace okr::api {

namespace {

constexpr int kConnectTimeoutSeconds = 5;
constexpr int kReadTimeoutSeconds = 30;
constexpr size_t kRefusalBytes = 300;  // of a refusal's body, kept for the state's problem

}  // namespace

ReplicaFollower::ReplicaFollower(EventStore* store, Options options)
    : store_(store), options_(std::move(options)) {
  thread_ = std::thread([this] { Run(); });
}

ReplicaFollower::~ReplicaFollower() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  thread_.join();
}

ReplicaFollower::State ReplicaFollower::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

void ReplicaFollower::Set(State state) {
  std::lock_guard<std::mutex> lock(mu_);
  state_ = std::move(state);
}

bool ReplicaFollower::Wait(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  return !stop_cv_.wait_for(lock, d, [this] { return stopping_; });
}

// Pages until stopped or diverged; a failure to reach the primary, or an
// answer cut short, is retried with a growing wait from this log's head.
void ReplicaFollower::Run() {
  httplib::Client client(options_.primary);
  client.set_connection_timeout(kConnectTimeoutSeconds, 0);
  client.set_read_timeout(kReadTimeoutSeconds, 0);
  client.set_tcp_nodelay(true);
  std::chrono::milliseconds backoff = options_.poll;
  do {
    Result<uint64_t> stored = FetchPage(client);
    State now = state();
    if (stored.ok()) {
      backoff = options_.poll;
      now.connected = true;
      now.problem.clear();
      Set(now);
      if (*stored > 0 && store_->head().seq < now.primary_head) continue;  // catching up
      if (!Wait(options_.poll)) return;
      continue;
    }
    now.connected = false;
    now.problem = stored.status().message();
    if (stored.status().code() == Status::Code::kCorruption) {
      now.diverged = true;
      Set(now);
      return;
    }
    Set(now);
    if (!Wait(backoff)) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  } while (true);
}

Result<uint64_t> ReplicaFollower::FetchPage(httplib::Client& client) {
  const uint64_t after = store_->head().seq;
  RawFrameReader reader(after + 1, after + kMaxRawEvents);
  std::vector<StoredEvent> batch;
  uint64_t stored = 0;
  Status refused = Status::Ok();
  auto flush = [&] {
    if (batch.empty() || !refused.ok()) return refused.ok();
    auto appended = store_->AppendStored(std::move(batch));
    batch.clear();
    if (appended.ok()) stored = appended->last_seq - after;
    refused = appended.status();
    return refused.ok();
  };
  auto take = [&](uint64_t seq, std::string_view bytes) {
    batch.push_back({seq, std::string(bytes)});
    return batch.size() < kMaxEventsPerAppend || flush();
  };
  Status framed = Status::Ok();
  uint64_t primary_head = 0;
  int status = 0;
  std::string refusal;  // the start of a refusal's body
  const std::string path =
      "/v1/events/raw?after=" + std::to_string(after) + "&limit=" + std::to_string(kMaxRawEvents);
  auto res = client.Get(
      path, {{"Authorization", "Bearer " + options_.token}},
      [&](const httplib::Response& r) {
        status = r.status;
        primary_head = std::strtoull(r.get_header_value("Okrd-Head-Seq").c_str(), nullptr, 10);
        return true;
      },
      [&](const char* data, size_t n) {
        if (status != 200) {
          refusal.append(data,
                         std::min(n, kRefusalBytes - std::min(kRefusalBytes, refusal.size())));
          return true;
        }
        framed = reader.Feed(std::string_view(data, n), take);
        return framed.ok() && !reader.stopped();
      });
  if (!flush()) return refused;  // kCorruption when the events do not continue this log
  if (!framed.ok()) return Status::Corruption("the primary's answer: " + framed.message());
  if (!res)
    return Status::IOError("the primary did not answer: " + httplib::to_string(res.error()));
  if (status != 200) {
    return Status::IOError("the primary answered " + std::to_string(status) + ": " + refusal);
  }
  if (Status whole = reader.Finish(); !whole.ok()) {
    return Status::IOError("the primary's answer was cut short: " + whole.message());
  }
  if (primary_head < store_->head().seq) {
    return Status::Corruption("the primary's head is seq " + std::to_string(primary_head) +
                              ", behind this log's " + std::to_string(store_->head().seq));
  }
  State now = state();
  now.primary_head = primary_head;
  Set(now);
  return stored;
}

}  // namespace okr::api
