// Checking the hash chain of the log from its stored values alone, one
// value at a time, in seq order (docs/FORMAT.md, "What a verifier checks",
// rules 1-6; rule 7, the head record, is EventStore::Verify's alone).
// EventStore::Verify feeds it from RocksDB; okrctl feeds it the raw bytes
// okrd serves, so neither trusts anything but the bytes themselves.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "eventstore/event_codec.h"

namespace okr {

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
// Cost per value: one decode into a reused buffer, one SHA-256, one map
// lookup by entity; memory grows only with the number of entities (an
// entity's id is copied once, when first seen), so it suits a start-up
// check over millions of events. Not thread-safe: one per check.
class ChainChecker {
 public:
  explicit ChainChecker(ChainSource source = ChainSource::kStored) : source_(source) {}
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

  // The seq the next Add expects.
  uint64_t next_seq() const { return report_.events + 1; }
  const VerifyReport& report() const { return report_; }

 private:
  // Looks an entity's id up by view: an id already seen costs no copy.
  struct IdHash {
    using is_transparent = void;
    size_t operator()(std::string_view id) const { return std::hash<std::string_view>{}(id); }
  };
  // The entity's last version seen, inserting 0 for a new one.
  uint64_t& VersionOf(std::string_view entity);

  ChainSource source_;
  VerifyReport report_;
  Hash prev_ = kZeroHash;
  int64_t last_time_ = INT64_MIN;
  std::unordered_map<std::string, uint64_t, IdHash, std::equal_to<>> versions_;
  EventScratch scratch_;
};

}  // namespace okr
