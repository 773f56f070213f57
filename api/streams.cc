#include "api/streams.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "api/errors.h"
#include "api/stream_parts.h"
#include "eventstore/base/thread_name.h"
#include "eventstore/event_json.h"
#include "projections/read/changes.h"

namespace okr::api {

namespace {

// A stream reads the log behind the ring this many events at a time,
// through a cursor of its own that it keeps for at most
// kCursorLifetime (an open iterator pins the files it reads) and that
// reads kCursorReadahead ahead: every stream may hold one.
constexpr uint64_t kBacklogEvents = 512;
constexpr auto kCursorLifetime = std::chrono::seconds(1);
// A stream is filled at most this many times in a turn of the loop, so a
// fast client catching up on a long log takes turns with the others.
constexpr int kFillsPerTurn = 4;
constexpr size_t kCursorReadahead = 256u << 10;
// While a change waits for the projection to fold its event (a few
// hundred µs after the head moves), the hub looks again this often.
constexpr std::chrono::milliseconds kFoldPoll{2};
// How long the watcher waits on the store's head before it looks whether
// the hub is stopping.
constexpr std::chrono::milliseconds kWatchSlice{200};

}  // namespace

using stream_parts::AppendFrame;
using stream_parts::ChangeData;
using stream_parts::Clock;
using stream_parts::EventData;
using stream_parts::Recent;
using stream_parts::Stream;

class StreamHub::Loop {
 public:
  Loop(EventStore* store, Projector* projector, StreamOptions options, Metrics* metrics,
       std::shared_ptr<spdlog::logger> log)
      : store_(store),
        projector_(projector),
        options_(options),
        metrics_(metrics),
        log_(std::move(log)) {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert(epoll_ >= 0 && wake_ >= 0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev);
    ring_through_ = store_->head().seq;
    io_ = NamedThread("okr:streams", [this] { Run(); });
    watcher_ = NamedThread("okr:stream-head", [this] { Watch(); });
  }
  ~Loop() {
    Stop();
    ::close(wake_);
    ::close(epoll_);
  }

  bool Reserve() {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || held_ >= options_.max_streams) return false;
    ++held_;
    return true;
  }

  void Adopt(int sock, std::function<void()> release, StreamRequest request) {
    auto s = std::make_unique<Stream>();
    s->fd = sock;
    s->release = std::move(release);
    s->next = request.after + 1;
    s->req = std::move(request);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {  // the loop has ended, or ends without taking it
        ::shutdown(sock, SHUT_RDWR);
        ::close(sock);
        s->release();
        --held_;
        return;
      }
      metrics_->StreamOpened();  // before the loop can close it
      adopted_.push_back(std::move(s));
    }
    Wake();
  }

  void Stop() {
    std::lock_guard<std::mutex> joining(stop_mu_);  // one caller joins
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    Wake();
    if (watcher_.joinable()) watcher_.join();
    if (io_.joinable()) io_.join();
  }

  void EndAll() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      end_all_ = true;
    }
    Wake();
  }

 private:
  void Wake() {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_, &one, sizeof one);
  }

  bool stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }

  // Wakes the loop whenever the log's head moves.
  void Watch() {
    uint64_t seen = store_->head().seq;
    while (!stopping()) {
      uint64_t head = store_->WaitForEvents(seen, kWatchSlice);
      if (head != seen) {
        seen = head;
        Wake();
      }
    }
  }

  void Run();
  int WaitMillis(Clock::time_point now) const;
  void OnReady(const epoll_event& ev);
  void TakeAdopted(Clock::time_point now);
  void Advance();
  void SignHead(Clock::time_point now);
  bool QueueCheckpoint(Stream& s, Clock::time_point now);
  void ClearRing();
  void ResolveCycles();
  bool Pump(Stream& s, Clock::time_point now);
  bool Fill(Stream& s, Clock::time_point now);
  void FillFromRing(Stream& s, Clock::time_point now);
  void FillFromStore(Stream& s, Clock::time_point now);
  void Tend(Clock::time_point now);
  void Close(int fd, const char* reason);
  // Each stream gets what it has waiting (as much as its socket takes
  // now) and `comment`, and closes.
  void CloseAll(const char* reason, const std::string& comment);
  bool TakeEndAll() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(end_all_, false);
  }

  EventStore* store_;
  Projector* projector_;
  const StreamOptions options_;
  Metrics* metrics_;
  std::shared_ptr<spdlog::logger> log_;
  int epoll_ = -1, wake_ = -1;
  std::thread io_, watcher_;

  std::mutex stop_mu_;
  std::mutex mu_;  // guards the four below
  bool stopping_ = false;
  bool end_all_ = false;  // EndAll() called: the loop ends every stream open
  size_t held_ = 0;       // places held: streams open or about to be
  std::vector<std::unique_ptr<Stream>> adopted_;

  // The I/O thread's own.
  std::unordered_map<int, std::unique_ptr<Stream>> streams_;
  std::deque<Recent> ring_;  // consecutive seqs, ending at ring_through_
  uint64_t ring_through_ = 0;
  size_t ring_bytes_ = 0;  // what the ring's entries hold
  bool busy_ = false;      // a stream used its turn up with more to send
  // The newest checkpoint signed for the raw events streams: its frame,
  // the tree size it signs, and when it was signed.
  std::string checkpoint_frame_;
  uint64_t checkpoint_size_ = 0;
  Clock::time_point checkpoint_at_{};
};

void StreamHub::Loop::Run() {
  std::vector<epoll_event> ready(64);
  while (true) {
    int n = ::epoll_wait(epoll_, ready.data(), static_cast<int>(ready.size()),
                         WaitMillis(Clock::now()));
    for (int i = 0; i < n; ++i) OnReady(ready[i]);
    if (stopping()) break;
    const auto now = Clock::now();
    TakeAdopted(now);
    if (TakeEndAll()) CloseAll("tokens_changed", ": okrd's tokens changed: reconnect\n\n");
    Advance();
    SignHead(now);
    ResolveCycles();
    busy_ = false;
    for (auto& [fd, s] : streams_) busy_ |= Pump(*s, now);
    Tend(now);
  }
  TakeAdopted(Clock::now());
  CloseAll("stopping", ": okrd is stopping\n\n");
}

// Until the next heartbeat or stall is due; briefly while a change waits
// for its event to be folded.
int StreamHub::Loop::WaitMillis(Clock::time_point now) const {
  if (busy_) return 0;
  if (!ring_.empty() && !ring_.back().cycle_known && !projector_->is_stuck())
    return static_cast<int>(kFoldPoll.count());
  auto step = std::min(options_.heartbeat, options_.stall);
  auto due = now + std::min<Clock::duration>(step, std::chrono::seconds(1));
  return static_cast<int>(std::max<int64_t>(
      1, std::chrono::duration_cast<std::chrono::milliseconds>(due - now).count()));
}

void StreamHub::Loop::OnReady(const epoll_event& ev) {
  if (ev.data.fd == wake_) {
    uint64_t count;
    [[maybe_unused]] ssize_t n = ::read(wake_, &count, sizeof count);
    return;
  }
  auto it = streams_.find(ev.data.fd);
  if (it == streams_.end()) return;
  if (ev.events & EPOLLOUT) it->second->blocked = false;
  if (ev.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    // A stream's client has nothing to say: what it sends is read away (a
    // bounded amount per wake); its end, or an error, closes the stream.
    char buf[4096];
    for (int i = 0; i < 16; ++i) {
      ssize_t got = ::recv(ev.data.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (got > 0) continue;
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (got < 0 && errno == EINTR) continue;
      return Close(ev.data.fd, "client_closed");
    }
  }
}

void StreamHub::Loop::TakeAdopted(Clock::time_point now) {
  std::vector<std::unique_ptr<Stream>> adopted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    adopted.swap(adopted_);
  }
  for (auto& s : adopted) {
    int fd = s->fd;
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kStreamSendBufferBytes, sizeof kStreamSendBufferBytes);
    s->Queue(s->req.head, now);
    s->Queue("retry: 1000\n\n", now);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    streams_.emplace(fd, std::move(s));
    if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) Close(fd, "client_closed");
  }
}

// Encodes the events the head has moved past into the ring, once for
// every stream; keeps the newest kStreamRingEvents, in at most
// kStreamRingBytes. With no stream open
// there is nobody to encode them for.
void StreamHub::Loop::Advance() {
  const uint64_t head = store_->head().seq;
  if (head <= ring_through_) return;
  if (streams_.empty()) {
    ClearRing();
    ring_through_ = head;
    return;
  }
  uint64_t from = ring_through_ + 1;
  if (head - ring_through_ > kStreamRingEvents) {
    ClearRing();  // a burst: streams read what is skipped from the store
    from = head - kStreamRingEvents + 1;
  }
  uint64_t expected = from;
  bool erasure = false;
  store_->Scan(from, head, [&](uint64_t seq, std::string_view bytes) {
    auto decoded = DecodedEvent::Decode(bytes);
    if (seq != expected || !decoded.ok()) return false;
    auto ev = (*decoded)->event();
    erasure = erasure || ev.which() == schema::Event::Which::SUBJECT_ERASED;
    Recent r;
    r.seq = seq;
    r.type = EventTypeName(ev.which());
    r.entity = ev.getEntity().cStr();
    r.bytes.assign(bytes);
    AppendFrame(seq, r.type, EventData(ev, bytes, false), &r.frame);
    ring_bytes_ += r.bytes.size() + r.frame.size();
    ring_.push_back(std::move(r));
    ++expected;
    return true;
  });
  if (erasure || expected == from) {
    // An erasure (its key went before the head moved): what the ring holds
    // may show what it erased, and every stream resumes from the store,
    // rendered afresh.
    // Or nothing readable there (the store failed or an event would not
    // decode): the ring starts after the head, and streams read from the
    // store, where they stop at that event too.
    ClearRing();
    ring_through_ = head;
    if (erasure) CloseAll("subject_erased", ": a person's data was erased: reconnect\n\n");
    return;
  }
  if (expected <= head) ClearRing();  // a hole: keep the ring consecutive
  ring_through_ = expected - 1;
  while (ring_.size() > kStreamRingEvents || ring_bytes_ > kStreamRingBytes) {
    ring_bytes_ -=
        ring_.front().bytes.size() + ring_.front().frame.size() + ring_.front().raw_frame.size();
    ring_.pop_front();
  }
}

void StreamHub::Loop::ClearRing() {
  ring_.clear();
  ring_bytes_ = 0;
}

// Gives the ring's events their cycles once the projection has folded them.
void StreamHub::Loop::ResolveCycles() {
  auto first =
      std::find_if(ring_.begin(), ring_.end(), [](const Recent& r) { return !r.cycle_known; });
  if (first == ring_.end()) return;
  projector_->Read([&](const Projection& p) {
    for (auto it = first; it != ring_.end() && it->seq <= p.seq(); ++it) {
      it->cycle = CycleOfEntity(p, it->entity);
      it->cycle_known = true;
    }
  });
}

// Sends what the stream has, filling it again up to kFillsPerTurn times;
// true when it stopped with more to send and a socket that takes it.
bool StreamHub::Loop::Pump(Stream& s, Clock::time_point now) {
  for (int fills = 0; !s.blocked;) {
    if (!s.pending()) {
      if (fills == kFillsPerTurn) return true;
      if (!Fill(s, now)) return false;
      ++fills;
      if (!s.pending()) continue;  // it moved past events another cycle's
    }
    ssize_t n = ::send(s.fd, s.out.data() + s.sent_off, s.out.size() - s.sent_off,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      s.sent_off += static_cast<size_t>(n);
      s.waiting_since = now;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      s.blocked = true;
      return false;
    }
    if (n < 0 && errno == EINTR) continue;
    s.blocked = s.broken = true;  // Tend closes it
    return false;
  }
  return false;
}

// Queues the stream's next events, up to about kStreamBufferBytes; false
// when it moved past none (a change stream of one cycle may move past
// events without queuing any).
bool StreamHub::Loop::Fill(Stream& s, Clock::time_point now) {
  if (s.next > ring_through_) return QueueCheckpoint(s, now);
  const uint64_t from = s.next;
  if (!ring_.empty() && s.next >= ring_.front().seq) {
    FillFromRing(s, now);
  } else {
    FillFromStore(s, now);
  }
  const bool checkpoint = QueueCheckpoint(s, now);
  return s.next != from || checkpoint;
}

// Signs the head for the raw events streams, at most once per
// kStreamCheckpointEvery, and only when it moved since the last: so once
// a second while it moves and once when it comes to rest.
void StreamHub::Loop::SignHead(Clock::time_point now) {
  if (!options_.checkpoint || ring_through_ == 0 || ring_through_ == checkpoint_size_ ||
      now - checkpoint_at_ < kStreamCheckpointEvery) {
    return;
  }
  const bool wanted = std::any_of(streams_.begin(), streams_.end(), [](const auto& entry) {
    return entry.second->req.kind == StreamKind::kEvents && entry.second->req.raw;
  });
  if (!wanted) return;
  checkpoint_at_ = now;
  std::optional<std::string> data = options_.checkpoint(ring_through_);
  if (!data) return;
  checkpoint_size_ = ring_through_;
  checkpoint_frame_ = "event: checkpoint\ndata: " + *data + "\n\n";
}

// The newest checkpoint, to a raw events stream that has sent every event
// it signs and not yet this checkpoint. It has no id: a client resuming
// with Last-Event-ID resumes after its newest event.
bool StreamHub::Loop::QueueCheckpoint(Stream& s, Clock::time_point now) {
  if (s.req.kind != StreamKind::kEvents || !s.req.raw || checkpoint_size_ == 0 ||
      s.checkpoint_sent >= checkpoint_size_ || s.next <= checkpoint_size_) {
    return false;
  }
  s.Queue(checkpoint_frame_, now);
  s.checkpoint_sent = checkpoint_size_;
  return true;
}

void StreamHub::Loop::FillFromRing(Stream& s, Clock::time_point now) {
  for (size_t i = s.next - ring_.front().seq; i < ring_.size(); ++i) {
    if (s.out.size() - s.sent_off >= kStreamBufferBytes) break;
    Recent& r = ring_[i];
    if (s.req.kind == StreamKind::kEvents) {
      if (s.req.raw && r.raw_frame.empty()) {
        auto decoded = DecodedEvent::Decode(r.bytes);
        if (!decoded.ok()) break;
        AppendFrame(r.seq, r.type, EventData((*decoded)->event(), r.bytes, true), &r.raw_frame);
        ring_bytes_ += r.raw_frame.size();
      }
      s.Queue(s.req.raw ? r.raw_frame : r.frame, now);
      ++s.events;
    } else {
      if (!r.cycle_known) break;
      if (FollowsCycle(s.req.cycle, r.cycle)) {
        std::string frame;
        AppendFrame(r.seq, r.type, ChangeData(r.seq, r.type, r.entity, r.cycle), &frame);
        s.Queue(frame, now);
        ++s.events;
      }
    }
    s.next = r.seq + 1;
  }
}

// Behind the ring: reads up to kBacklogEvents from the store. A change
// waits for its event to be folded (its cycle comes from the projection).
void StreamHub::Loop::FillFromStore(Stream& s, Clock::time_point now) {
  const uint64_t behind = ring_.empty() ? ring_through_ : ring_.front().seq - 1;
  const bool changes = s.req.kind == StreamKind::kChanges;
  uint64_t last = changes ? std::min(behind, projector_->seq()) : behind;
  if (last < s.next) return;
  if (s.cursor && (s.cursor_next != s.next || s.next > s.cursor_last ||
                   now - s.cursor_opened > kCursorLifetime)) {
    s.cursor.reset();
  }
  if (!s.cursor) {
    s.cursor = store_->OpenCursor(s.next, behind, kCursorReadahead);
    s.cursor_last = behind;
    s.cursor_opened = now;
  }
  last = std::min({last, s.cursor_last, s.next + kBacklogEvents - 1});
  struct Change {
    uint64_t seq;
    std::string type, entity;
  };
  std::vector<Change> read;
  uint64_t expected = s.next;
  bool damaged = false;
  // Every event the cursor hands over is taken (EventCursor::Next): the
  // callback stops after one, never before it.
  s.cursor->Next([&](uint64_t seq, std::string_view bytes) {
    auto decoded = DecodedEvent::Decode(bytes);
    damaged = seq != expected || !decoded.ok();
    if (damaged) return false;  // a hole or a bad event: the stream stops before it
    auto ev = (*decoded)->event();
    ++expected;
    if (changes) {
      read.push_back({seq, EventTypeName(ev.which()), ev.getEntity().cStr()});
      return seq < last;
    }
    std::string frame;
    AppendFrame(seq, EventTypeName(ev.which()), EventData(ev, bytes, s.req.raw), &frame);
    s.Queue(frame, now);
    ++s.events;
    return seq < last && s.out.size() - s.sent_off < kStreamBufferBytes;
  });
  if (damaged || expected == s.next) s.cursor.reset();  // look afresh next time
  s.cursor_next = expected;
  if (changes && !read.empty()) {
    std::vector<std::string> cycles(read.size());
    projector_->Read([&](const Projection& p) {
      for (size_t i = 0; i < read.size(); ++i) cycles[i] = CycleOfEntity(p, read[i].entity);
    });
    for (size_t i = 0; i < read.size(); ++i) {
      if (!FollowsCycle(s.req.cycle, cycles[i])) continue;
      std::string frame;
      AppendFrame(read[i].seq, read[i].type,
                  ChangeData(read[i].seq, read[i].type, read[i].entity, cycles[i]), &frame);
      s.Queue(frame, now);
      ++s.events;
    }
  }
  s.next = expected;
}

// Heartbeats for idle streams; closes those whose client stopped reading.
void StreamHub::Loop::Tend(Clock::time_point now) {
  std::vector<int> slow, gone;
  for (auto& [fd, s] : streams_) {
    if (s->cursor && now - s->cursor_opened > kCursorLifetime) s->cursor.reset();
    if (s->broken) {
      gone.push_back(fd);
    } else if (s->pending() && now - s->waiting_since >= options_.stall) {
      slow.push_back(fd);
    } else if (!s->pending() && now - s->last_queued >= options_.heartbeat) {
      s->Queue(": head " + std::to_string(store_->head().seq) + "\n\n", now);
      Pump(*s, now);
    }
  }
  for (int fd : slow) Close(fd, "slow");
  for (int fd : gone) Close(fd, "client_closed");
}

void StreamHub::Loop::Close(int fd, const char* reason) {
  auto it = streams_.find(fd);
  assert(it != streams_.end());
  std::unique_ptr<Stream> s = std::move(it->second);
  streams_.erase(it);
  ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
  // Counted before the client can see the end, so a client that reads
  // the metrics after its stream ended finds the close there.
  metrics_->StreamClosed(reason);
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
  s->release();
  LogLine(*log_, options_.log_format, spdlog::level::info, "stream_closed",
          {{"id", s->req.request_id},
           {"reason", reason},
           {"events", s->events},
           {"next_seq", s->next}});
  std::lock_guard<std::mutex> lock(mu_);
  --held_;
}

void StreamHub::Loop::CloseAll(const char* reason, const std::string& comment) {
  const auto now = Clock::now();
  std::vector<int> fds;
  for (auto& [fd, s] : streams_) {
    s->Queue(comment, now);
    s->blocked = false;
    ::send(fd, s->out.data() + s->sent_off, s->out.size() - s->sent_off,
           MSG_NOSIGNAL | MSG_DONTWAIT);
    fds.push_back(fd);
  }
  for (int fd : fds) Close(fd, reason);
}

StreamHub::StreamHub(EventStore* store, Projector* projector, StreamOptions options,
                     Metrics* metrics, std::shared_ptr<spdlog::logger> log)
    : loop_(std::make_unique<Loop>(store, projector, options, metrics, std::move(log))) {}

StreamHub::~StreamHub() = default;

bool StreamHub::Reserve() { return loop_->Reserve(); }

void StreamHub::Adopt(int sock, std::function<void()> release, StreamRequest request) {
  loop_->Adopt(sock, std::move(release), std::move(request));
}

void StreamHub::Stop() { loop_->Stop(); }

void StreamHub::EndAll() { loop_->EndAll(); }

}  // namespace okr::api
