// ResponseCache: answers of state reads, kept while the log has not moved.
//
// A state read is a pure function of its path, the query parameters it
// reads and the projection's seq, so an answer computed at seq S is the
// answer to the same request while the projection stays at S (AnswerKey
// names "the same request"). Dashboards ask the same cascade
// again and again; this serves those repeats without rebuilding the JSON.
// Bounded in entries and bytes; least recently used entries go first.
// Thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace okr::api {

inline constexpr size_t kMaxCachedAnswers = 512;
inline constexpr size_t kMaxCachedBytes = 64u << 20;       // all bodies together
inline constexpr size_t kMaxCachedAnswerBytes = 8u << 20;  // larger answers are not kept

struct CachedAnswer {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // ETag, Content-Disposition
};

// The key of a state read's answer: its path, then — for each query
// parameter its route reads, in the route's fixed order — whether the
// parameter is present (nullptr: absent) and its value. Every field is
// length-prefixed, so no bytes in a path or a value ('\n', '=', '&' …)
// make two requests share a key; parameters the route does not read are
// no part of it.
std::string AnswerKey(std::string_view path, const std::vector<const std::string*>& values);

class ResponseCache {
 public:
  // The answer stored for `key` at exactly `seq`, if any.
  std::optional<CachedAnswer> Get(const std::string& key, uint64_t seq);
  // Keeps `answer` for `key` as computed at `seq`, replacing older ones.
  void Put(const std::string& key, uint64_t seq, CachedAnswer answer);
  // Forgets every answer (an erasure: they may show what it erased).
  void Clear();

 private:
  struct Entry {
    uint64_t seq;
    CachedAnswer answer;
    std::list<std::string>::iterator lru;
  };
  void EvictLocked();

  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // front: most recently used
  size_t bytes_ = 0;
};

}  // namespace okr::api
