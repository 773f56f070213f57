#include "api/routes/raw_frames.h"

#include <cassert>

#include "eventstore/format.h"

namespace okr::api {

namespace {

constexpr size_t kFrameHeaderBytes = 12;  // seq (8) and length (4)

}  // namespace

RawFrameReader::RawFrameReader(uint64_t first, uint64_t last) : next_(first), last_(last) {
  assert(first >= 1);
}

// Takes whole frames off the front of *data; leaves a partial one there.
Status RawFrameReader::TakeFrames(std::string_view* data, const RawEventFn& fn) {
  while (!stopped_ && data->size() >= kFrameHeaderBytes) {
    const uint64_t seq = format::GetBigEndian64(data->data());
    const uint32_t length = format::GetBigEndian32(data->data() + 8);
    if (seq != next_) {
      return Status::Corruption("okrd served seq " + std::to_string(seq) + " where seq " +
                                std::to_string(next_) + " was due");
    }
    if (seq > last_) {
      return Status::Corruption("okrd served seq " + std::to_string(seq) +
                                ", past the last one asked for (" + std::to_string(last_) + ")");
    }
    if (length > format::kMaxEventBytes) {
      return Status::Corruption("the frame of seq " + std::to_string(seq) + " claims " +
                                std::to_string(length) + " bytes, more than an event may hold");
    }
    if (data->size() - kFrameHeaderBytes < length) break;
    ++next_;
    stopped_ = !fn(seq, data->substr(kFrameHeaderBytes, length));
    data->remove_prefix(kFrameHeaderBytes + length);
  }
  return Status::Ok();
}

Status RawFrameReader::Feed(std::string_view data, const RawEventFn& fn) {
  if (stopped_) return Status::Ok();
  if (!pending_.empty()) {
    // Complete the pending frame from the new bytes, then go on in place.
    pending_.append(data);
    std::string_view rest(pending_);
    OKR_RETURN_IF_ERROR(TakeFrames(&rest, fn));
    pending_.erase(0, pending_.size() - rest.size());
    return Status::Ok();
  }
  OKR_RETURN_IF_ERROR(TakeFrames(&data, fn));
  if (!stopped_) pending_.assign(data);
  return Status::Ok();
}

Status RawFrameReader::Finish() const {
  if (stopped_ || pending_.empty()) return Status::Ok();
  if (pending_.size() < kFrameHeaderBytes) {
    return Status::Corruption("okrd's answer ends inside the header of the frame of seq " +
                              std::to_string(next_));
  }
  return Status::Corruption(
      "okrd's answer ends inside the frame of seq " + std::to_string(next_) + ": " +
      std::to_string(pending_.size() - kFrameHeaderBytes) + " of its " +
      std::to_string(format::GetBigEndian32(pending_.data() + 8)) + " bytes arrived");
}

}  // namespace okr::api
