#include "api/response_cache.h"

namespace okr::api {

std::string AnswerKey(std::string_view path, const std::vector<const std::string*>& values) {
  std::string key;
  auto field = [&key](std::string_view text) {
    key += std::to_string(text.size());
    key += ':';
    key += text;
  };
  field(path);
  for (const std::string* value : values) {
    if (value == nullptr) {
      key += '-';
    } else {
      key += '+';
      field(*value);
    }
  }
  return key;
}

std::optional<CachedAnswer> ResponseCache::Get(const std::string& key, uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.seq != seq) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.answer;
}

void ResponseCache::Put(const std::string& key, uint64_t seq, CachedAnswer answer) {
  if (answer.body.size() > kMaxCachedAnswerBytes) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = entries_.find(key); it != entries_.end()) {
    bytes_ -= it->second.answer.body.size();
    lru_.erase(it->second.lru);
    entries_.erase(it);
  }
  bytes_ += answer.body.size();
  lru_.push_front(key);
  entries_.emplace(key, Entry{seq, std::move(answer), lru_.begin()});
  EvictLocked();
}

void ResponseCache::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.clear();
  lru_.clear();
  bytes_ = 0;
}

void ResponseCache::EvictLocked() {
  while (!lru_.empty() && (entries_.size() > kMaxCachedAnswers || bytes_ > kMaxCachedBytes)) {
    auto it = entries_.find(lru_.back());
    bytes_ -= it->second.answer.body.size();
    entries_.erase(it);
    lru_.pop_back();
  }
}

}  // namespace okr::api
