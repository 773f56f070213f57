#include "projections/domain/interned.h"

#include <atomic>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <vector>

namespace okr {

namespace {

// A handle's text: where its bytes are and how many.
struct Entry {
  const char* data;
  uint32_t size;
};

// Handles index a directory of fixed chunks of entries: a chunk, once
// published, never moves, so reading a handle needs no lock.
constexpr unsigned kChunkBits = 16;
constexpr size_t kChunkSize = size_t{1} << kChunkBits;
constexpr size_t kMaxChunks = size_t{1} << (32 - kChunkBits);
// Bytes are copied into blocks of this size; a longer text gets its own.
constexpr size_t kBlockBytes = size_t{1} << 20;

}  // namespace

class InternTable {
 public:
  // Never destroyed: a handle may be read by a thread that outlives main's
  // static destructors.
  static InternTable& Get() {
    static InternTable* table = new InternTable();
    return *table;
  }

  Interned Of(std::string_view text, bool* added) {
    if (added != nullptr) *added = false;
    if (text.empty()) return Interned();
    const uint64_t hash = HashText(text);
    {
      std::shared_lock lock(mu_);
      if (uint32_t h = Probe(text, hash, nullptr)) return Interned(h);
    }
    std::unique_lock lock(mu_);
    size_t slot = 0;
    if (uint32_t h = Probe(text, hash, &slot)) return Interned(h);  // a racer interned it
    if ((count_ + 1) * 2 > slots_.size()) {
      Grow();
      (void)Probe(text, hash, &slot);
    }
    const uint32_t h = Append(text);
    slots_[slot] = (hash << 32) | h;
    if (added != nullptr) *added = true;
    return Interned(h);
  }

  std::optional<Interned> Find(std::string_view text) const {
    if (text.empty()) return Interned();
    std::shared_lock lock(mu_);
    if (uint32_t h = Probe(text, HashText(text), nullptr)) return Interned(h);
    return std::nullopt;
  }

  size_t Count() const {
    std::shared_lock lock(mu_);
    return count_;
  }

  std::string_view View(uint32_t h) const {
    if (h == 0) return std::string_view("", 0);
    const Entry* chunk = chunks_[h >> kChunkBits].load(std::memory_order_acquire);
    assert(chunk != nullptr && "a handle is only ever made for an interned text");
    const Entry& e = chunk[h & (kChunkSize - 1)];
    return {e.data, e.size};
  }

 private:
  // A slot holds the hash's low half (which also places it, so growing
  // reads no text) and a handle; 0 is free (the empty text, handle 0, is
  // never stored in a slot).
  static constexpr uint64_t kHandleMask = 0xffffffffULL;

  InternTable() : slots_(1024, 0) {}

  // The handle of `text` (0 when absent); *free_slot gets where it would go.
  uint32_t Probe(std::string_view text, uint64_t hash, size_t* free_slot) const {
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & kHandleMask & mask;; i = (i + 1) & mask) {
      const uint64_t s = slots_[i];
      if (s == 0) {
        if (free_slot != nullptr) *free_slot = i;
        return 0;
      }
      const uint32_t h = static_cast<uint32_t>(s & kHandleMask);
      if ((s >> 32) == (hash & kHandleMask) && View(h) == text) return h;
    }
  }

  // Doubles the slots, each placed again by the hash half it holds.
  void Grow() {
    std::vector<uint64_t> old = std::move(slots_);
    slots_.assign(old.size() * 2, 0);
    const size_t mask = slots_.size() - 1;
    for (uint64_t s : old) {
      if (s == 0) continue;
      size_t i = (s >> 32) & mask;
      while (slots_[i] != 0) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }

  // Copies `text` into the byte blocks and gives it the next handle.
  uint32_t Append(std::string_view text) {
    if (count_ == UINT32_MAX) {
      std::fputs("okrd: more than 4 billion distinct texts interned\n", stderr);
      std::abort();  // beyond any log okrd is built for; a handle would wrap
    }
    const uint32_t h = count_;
    // Only this writer (holding mu_) stores chunk pointers.
    Entry* chunk = chunks_[h >> kChunkBits].load(std::memory_order_relaxed);
    if (chunk == nullptr) {
      chunk = new Entry[kChunkSize];  // never freed, as the table itself
      chunks_[h >> kChunkBits].store(chunk, std::memory_order_release);
    }
    chunk[h & (kChunkSize - 1)] = Entry{StoreBytes(text), static_cast<uint32_t>(text.size())};
    ++count_;
    return h;
  }

  // Each text is stored with a NUL after it, so its view can be handed to
  // APIs that want C strings (Cap'n Proto's text setters check for it).
  const char* StoreBytes(std::string_view text) {
    const size_t bytes = text.size() + 1;
    char* out = nullptr;
    if (bytes > kBlockBytes / 4) {
      blocks_.push_back(std::make_unique<char[]>(bytes));
      out = blocks_.back().get();
    } else {
      if (block_left_ < bytes) {
        blocks_.push_back(std::make_unique<char[]>(kBlockBytes));
        block_ = blocks_.back().get();
        block_left_ = kBlockBytes;
      }
      out = block_;
      block_ += bytes;
      block_left_ -= bytes;
    }
    std::memcpy(out, text.data(), text.size());
    out[text.size()] = '\0';
    return out;
  }

  mutable std::shared_mutex mu_;
  std::vector<uint64_t> slots_;  // open addressing, at most half full
  uint32_t count_ = 1;           // handle 0 is the empty text
  std::atomic<Entry*> chunks_[kMaxChunks] = {};
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* block_ = nullptr;
  size_t block_left_ = 0;
};

Interned Interned::Of(std::string_view text, bool* added) {
  return InternTable::Get().Of(text, added);
}

std::optional<Interned> Interned::Find(std::string_view text) {
  return InternTable::Get().Find(text);
}

size_t Interned::Count() { return InternTable::Get().Count(); }

std::string_view Interned::view() const { return InternTable::Get().View(handle_); }

uint64_t HashText(std::string_view text) { return std::hash<std::string_view>{}(text); }

}  // namespace okr
