// Checking the hash chain of the log from its stored values alone, one
// value at a time, in seq order (docs/FORMAT.md, "What a verifier checks",
// rules 1-6; rule 7, the head record, is EventStore::Verify's alone).
// EventStore::Verify feeds it from RocksDB; okrctl feeds it the raw bytes
// okrd serves, so neither trusts anything but the bytes themselves.
#pragma once

#include <climits>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "eventstore/event_codec.h"

namespace okr {

// Where a check resumes: after event `after_seq`, whose stored value
// hashed to `prev_hash` and was recorded at `recorded_at_us`, all three
// trusted by the caller (a checkpoint it verified, an auditor's saved
// state). Versions of entities before it are unknown, so an entity's
// versions are checked to be dense from the first event of it seen.
struct ChainResume {
  uint64_t after_seq = 0;
  Hash prev_hash{};
  int64_t recorded_at_us = INT64_MIN;
};

// What a chain check found.
struct VerifyReport {
  bool ok = true;
  uint64_t events = 0;         // events that passed, in order from seq 1
  Hash head_hash{};            // hash of the last good event
  uint64_t first_bad_seq = 0;  // 0 when ok
  std::string problem;         // what is wrong at first_bad_seq
};

// Where the values come from; only the wording of problems differs, so a
// report says "stored" of the log on disk and "served" of okrd's answers.
enum class ChainSource { kStored, kServed };

// The chain's rules over a stream of values: seqs dense from 1, each value
// decodes (DecodeCheck::kFull), its seq field is its position, its prevHash
// is the SHA-256 of the previous value, recordedAt never goes back, and
// per-entity versions are dense from 1. Stops at the first problem.
//
// Cost per value: one decode into a reused buffer, one SHA-256, one
// lookup by entity in a flat table (EntityVersions) whose cache miss is
// started before the SHA-256 and so overlaps it; memory grows only with
// the number of entities, so it suits a start-up check over millions of
// events. Not thread-safe: one per check.
class ChainChecker {
 public:
  explicit ChainChecker(ChainSource source = ChainSource::kStored) : source_(source) {}
  ChainChecker(ChainSource source, const ChainResume& resume);
  ChainChecker(const ChainChecker&) = delete;
  ChainChecker& operator=(const ChainChecker&) = delete;

  // Checks the value stored (or served) as `seq`; the view need only live
  // during the call. False once the chain is broken; the report then says
  // where, and later calls change nothing.
  bool Add(uint64_t seq, std::string_view bytes);

  // Records a problem the caller found itself (a malformed key, a storage
  // error, a head record that disagrees) at `seq`, unless one is already
  // recorded: the first problem is the one reported. Returns false.
  bool Fail(uint64_t seq, std::string problem);

  // Makes room for `entities` entities at once. A check that knows about
  // how many it will meet (an earlier check's count) skips the table's
  // doublings, each of which faults in fresh pages and places every entity
  // again.
  void Reserve(size_t entities) { versions_.Reserve(entities); }
  // How many entities the check has met so far.
  size_t entities() const { return versions_.size(); }

  // The seq the next Add expects.
  uint64_t next_seq() const { return report_.events + 1; }
  const VerifyReport& report() const { return report_; }

 private:
  // Each entity's last version seen, in one open-addressing table of
  // 32-byte slots: an id of up to 16 bytes (every id okrd makes) is kept in
  // its slot, so a lookup costs one cache miss and no allocation; a longer
  // id is kept once in `long_ids_`. A std::unordered_map of strings cost
  // three misses a lookup, a sixth of a verify (docs/DECISIONS.md). At a
  // million events the table outgrows every cache, so a lookup comes in two
  // steps: Prepare starts fetching the slot, Of reads it after other work.
  class EntityVersions {
   public:
    // Makes room for one more entity and starts fetching `entity`'s first
    // slot into the cache; returns its tag, for Of. Changes no version.
    uint32_t Prepare(std::string_view entity);
    // The entity's last version seen, inserting 0 for a new one; `tag` is
    // Prepare's answer for the same entity, with no call between them. The
    // reference lives until the next call.
    uint64_t& Of(std::string_view entity, uint32_t tag);
    void Reserve(size_t entities);
    size_t size() const { return size_; }
    // What Of inserts for an entity not seen before: 0, or kUnknown when
    // the check resumed after events this checker did not see.
    static constexpr uint64_t kUnknown = UINT64_MAX;
    uint64_t first_version = 0;

   private:
    static constexpr size_t kInlineBytes = 16;
    struct Slot {
      uint64_t version = 0;
      uint32_t length = 0;
      uint32_t tag = 0;            // the id's hash, odd; 0: a free slot
      char id[kInlineBytes] = {};  // the id, or its offset in long_ids_
    };
    static_assert(sizeof(Slot) == 32);
    std::string_view IdOf(const Slot& s) const;
    // Where a tag's probe starts: from the tag alone, so Grow moves slots
    // without hashing their ids again.
    size_t HomeOf(uint32_t tag) const { return (tag >> 1) & (slots_.size() - 1); }
    void Grow() { Rehash(slots_.empty() ? 1024 : slots_.size() * 2); }
    // Moves every entity to a table of `slots` slots, a power of two.
    void Rehash(size_t slots);

    std::vector<Slot> slots_;  // a power of two long, at most three quarters full
    size_t size_ = 0;
    std::string long_ids_;  // ids longer than kInlineBytes, one after another
  };

  ChainSource source_;
  VerifyReport report_;
  Hash prev_ = kZeroHash;
  int64_t last_time_ = INT64_MIN;
  EntityVersions versions_;
  EventScratch scratch_;
};

}  // namespace okr
