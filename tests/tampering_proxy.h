// A tampering proxy between a replica and its primary, for the tests
// that show a replica refuses what does not continue its log.
#pragma once

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "eventstore/event_json.h"

namespace okr::testing {

// Between a replica and its primary: forwards every GET to the primary's
// port of the moment and, when told, damages one event where it passes:
// a frame of the raw route's answers (SPEC §8 frames: an 8-byte seq, a
// 4-byte length, the bytes) or an event of the raw events stream (its
// stored bytes flipped under the hash it came with, dropped, or sent
// after the next), or garbles it (a frame's length past any event's, an
// event's data cut off mid-JSON, an event's block that never ends).
class Proxy {
 public:
  enum class Tamper { kNone, kFlipByte, kDrop, kSwap, kGarble, kEndless };

  explicit Proxy(int upstream) : upstream_(upstream) {
    server_.Get(".*", [this](const httplib::Request& req, httplib::Response& res) {
      httplib::Headers headers;
      if (req.has_header("Authorization")) {
        headers.emplace("Authorization", req.get_header_value("Authorization"));
      }
      if (req.path == "/v1/events/stream") return Stream(req.target, headers, res);
      httplib::Client client("127.0.0.1", upstream_.load());
      auto r = client.Get(req.target, headers);
      if (!r) {
        res.status = 502;
        return;
      }
      res.status = r->status;
      for (const char* name : {"Okrd-Head-Seq", "Okrd-Head-Hash", "Okrd-Head-Recorded-At"}) {
        if (r->has_header(name)) res.set_header(name, r->get_header_value(name));
      }
      std::string body = r->body;
      if (req.path == "/v1/events/raw" && r->status == 200) body = Damaged(std::move(body));
      res.set_content(body, r->get_header_value("Content-Type"));
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    // Bound already: connections wait in the backlog until it listens.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Proxy() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      for (httplib::Client* c : streams_) c->stop();
    }
    server_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void SetUpstream(int port) { upstream_ = port; }
  // From now on, damages the event `seq` (and, for kSwap, the next one)
  // wherever it passes. kFlipByte flips the byte in the middle of the
  // first `within` in the event's bytes (say, a name, so the event still
  // decodes), else in the middle of its bytes.
  void Set(Tamper tamper, uint64_t seq, std::string within = "") {
    std::lock_guard<std::mutex> lock(mu_);
    tamper_ = tamper;
    seq_ = seq;
    within_ = std::move(within);
  }

 private:
  struct Frame {
    uint64_t seq;
    std::string whole;  // header and bytes
  };

  // The events stream, passed on block by block as it comes.
  void Stream(const std::string& target, const httplib::Headers& headers, httplib::Response& res) {
    res.set_chunked_content_provider(
        "text/event-stream", [this, target, headers](size_t, httplib::DataSink& sink) {
          httplib::Client client("127.0.0.1", upstream_.load());
          {
            std::lock_guard<std::mutex> lock(mu_);
            if (stopping_) return false;
            streams_.push_back(&client);
          }
          std::string pending, held;  // a block not yet ended; a block held back (kSwap)
          client.Get(target, headers, [&](const char* data, size_t n) {
            pending.append(data, n);
            for (size_t end; (end = pending.find("\n\n")) != std::string::npos;) {
              std::string block = pending.substr(0, end + 2);
              pending.erase(0, end + 2);
              bool endless = false;
              std::string out = DamagedBlock(std::move(block), &held, &endless);
              if (!out.empty() && !sink.write(out.data(), out.size())) return false;
              if (endless) return SendEndlessBlock(sink);
            }
            return true;
          });
          std::lock_guard<std::mutex> lock(mu_);
          streams_.erase(std::find(streams_.begin(), streams_.end(), &client));
          sink.done();
          return true;
        });
  }

  // A block that never ends: data lines without the empty line that would
  // end it, until the replica stops reading (or 256 MiB, far past its
  // bound, so that a replica that never stops fails the test rather than
  // hanging it).
  static bool SendEndlessBlock(httplib::DataSink& sink) {
    const std::string line = "data: " + std::string(1 << 20, 'A') + "\n";
    for (int i = 0; i < 256; ++i) {
      if (!sink.write(line.data(), line.size())) return false;
    }
    return false;
  }

  // What to send for one block of the events stream; *endless when the
  // block is to be followed by SendEndlessBlock.
  std::string DamagedBlock(std::string block, std::string* held, bool* endless) {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string id = "id: " + std::to_string(seq_) + "\n";
    const std::string next_id = "id: " + std::to_string(seq_ + 1) + "\n";
    if (tamper_ == Tamper::kNone) return block;
    if (block.starts_with(id)) {
      if (tamper_ == Tamper::kDrop) return "";
      if (tamper_ == Tamper::kSwap) {
        *held = std::move(block);
        return "";
      }
      if (tamper_ == Tamper::kGarble) return block.substr(0, block.find("\"raw\"")) + "\n\n";
      if (tamper_ == Tamper::kEndless) {
        *endless = true;
        return block.substr(0, block.find("\n") + 1);
      }
      const size_t at = block.find("\"raw\":\"");
      const size_t end = block.find('"', at + 7);
      if (at != std::string::npos && end != std::string::npos) {
        auto bytes = Base64Decode(std::string_view(block).substr(at + 7, end - at - 7));
        if (bytes) {
          Flip(&*bytes);
          block.replace(at + 7, end - at - 7, Base64Encode(*bytes));
        }
      }
      return block;
    }
    if (block.starts_with(next_id) && !held->empty()) return block + std::exchange(*held, "");
    return block;
  }

  // Flips the byte Set chose in `bytes` (an event, or a frame holding one).
  void Flip(std::string* bytes) const {
    const size_t at = within_.empty() ? std::string::npos : bytes->find(within_);
    (*bytes)[at == std::string::npos ? bytes->size() / 2 : at + within_.size() / 2] ^= 0x01;
  }

  std::string Damaged(std::string body) {
    std::lock_guard<std::mutex> lock(mu_);
    if (tamper_ == Tamper::kNone) return body;
    std::vector<Frame> frames;
    for (size_t at = 0; at + 12 <= body.size();) {
      uint64_t seq = 0;
      uint32_t length = 0;
      for (int i = 0; i < 8; ++i) seq = seq << 8 | static_cast<unsigned char>(body[at + i]);
      for (int i = 8; i < 12; ++i) length = length << 8 | static_cast<unsigned char>(body[at + i]);
      frames.push_back({seq, body.substr(at, 12 + length)});
      at += 12 + length;
    }
    std::string out;
    for (size_t i = 0; i < frames.size(); ++i) {
      Frame& f = frames[i];
      if (f.seq == seq_ && tamper_ == Tamper::kFlipByte) Flip(&f.whole);
      if (f.seq == seq_ && tamper_ == Tamper::kDrop) continue;
      if (f.seq == seq_ && tamper_ == Tamper::kGarble) f.whole.replace(8, 4, 4, '\xff');
      if (f.seq == seq_ && tamper_ == Tamper::kSwap && i + 1 < frames.size()) {
        std::swap(f, frames[i + 1]);
      }
      out += f.whole;
    }
    return out;
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> upstream_;
  std::mutex mu_;
  bool stopping_ = false;
  std::vector<httplib::Client*> streams_;  // the upstream streams open
  Tamper tamper_ = Tamper::kNone;
  uint64_t seq_ = 0;
  std::string within_;
};

}  // namespace okr::testing
