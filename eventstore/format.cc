#include "eventstore/format.h"

#include <cstring>

namespace okr::format {

namespace {

template <typename T>
void PutBigEndian(std::string* out, T v) {
  char buf[sizeof(T)];
  for (int i = sizeof(T) - 1; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out->append(buf, sizeof(T));
}

template <typename T>
T GetBigEndian(const char* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>((v << 8) | static_cast<uint8_t>(p[i]));
  return v;
}

}  // namespace

void PutBigEndian64(std::string* out, uint64_t v) { PutBigEndian(out, v); }
uint64_t GetBigEndian64(const char* p) { return GetBigEndian<uint64_t>(p); }
void PutBigEndian32(std::string* out, uint32_t v) { PutBigEndian(out, v); }
uint32_t GetBigEndian32(const char* p) { return GetBigEndian<uint32_t>(p); }

std::string SeqKey(uint64_t seq) {
  std::string key;
  PutBigEndian64(&key, seq);
  return key;
}

bool ParseSeqKey(std::string_view key, uint64_t* seq) {
  if (key.size() != kSeqKeySize) return false;
  *seq = GetBigEndian64(key.data());
  return true;
}

std::string SnapshotKey(uint64_t seq, uint32_t part) {
  std::string key = SeqKey(seq);
  PutBigEndian32(&key, part);
  return key;
}

bool ParseSnapshotKey(std::string_view key, uint64_t* seq) {
  if (key.size() != kSeqKeySize && key.size() != kSeqKeySize + 4) return false;
  *seq = GetBigEndian64(key.data());
  return true;
}

std::string StreamPrefix(std::string_view entity) {
  std::string key(entity);
  key.push_back(kStreamSeparator);
  return key;
}

std::string StreamKey(std::string_view entity, uint64_t version) {
  std::string key = StreamPrefix(entity);
  PutBigEndian64(&key, version);
  return key;
}

std::string TreeKey(uint8_t level, uint64_t index) {
  std::string key(1, static_cast<char>(level));
  PutBigEndian64(&key, index);
  return key;
}

std::string TreeNodeName(uint8_t level, uint64_t index) {
  return "tree node (" + std::to_string(level) + ", " + std::to_string(index) + ")";
}

bool ParseTreeKey(std::string_view key, uint8_t* level, uint64_t* index) {
  if (key.size() != kTreeKeySize) return false;
  *level = static_cast<uint8_t>(key[0]);
  *index = GetBigEndian64(key.data() + 1);
  return true;
}

std::string EncodeHead(uint64_t seq, const Hash& hash, int64_t recorded_at_us) {
  std::string v;
  PutBigEndian64(&v, seq);
  v.append(reinterpret_cast<const char*>(hash.data()), hash.size());
  PutBigEndian64(&v, static_cast<uint64_t>(recorded_at_us));
  return v;
}

bool DecodeHead(std::string_view value, uint64_t* seq, Hash* hash, int64_t* recorded_at_us) {
  if (value.size() != kHeadValueSize) return false;
  *seq = GetBigEndian64(value.data());
  std::memcpy(hash->data(), value.data() + 8, kHashSize);
  *recorded_at_us = static_cast<int64_t>(GetBigEndian64(value.data() + 8 + kHashSize));
  return true;
}

}  // namespace okr::format
