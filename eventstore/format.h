// On-disk constants of the okrd log. docs/FORMAT.md describes every byte;
// this header only names the constants it describes.
//
// FROZEN: every name and number here is part of the on-disk format. Never
// change one, never reuse a retired one; add new ones below the old.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace okr::format {

// Column families.
inline constexpr char kEventsCf[] = "events";            // seq -> Event
inline constexpr char kStreamsCf[] = "streams";          // entity, version -> seq
inline constexpr char kIdempotencyCf[] = "idempotency";  // key -> first answer
inline constexpr char kMetaCf[] = "meta";                // "head", "format"
inline constexpr char kSnapshotsCf[] = "snapshots";      // seq -> Snapshot (a cache)
inline constexpr char kIdsCf[] = "ids";                  // id -> seq that created it

// Keys of the meta column family.
inline constexpr char kHeadKey[] = "head";
inline constexpr char kFormatKey[] = "format";
// The `ids` column family holds every id created by events up to this seq
// (8, BE); logs written before it existed are indexed once at open.
inline constexpr char kIdsThroughKey[] = "ids_through";
inline constexpr uint32_t kFormatVersion = 1;
// Value: seq (8, BE). Every idempotency record of an append at or before
// this seq that had expired has been deleted (docs/FORMAT.md).
inline constexpr char kIdempotencyPrunedKey[] = "idempotency_pruned";

// The log's Merkle tree (SPEC §7): level (1) | index (8, BE) -> the 32-byte
// root of the perfect subtree of 2^level leaves from leaf index * 2^level.
inline constexpr char kTreeCf[] = "tree";
inline constexpr size_t kTreeKeySize = 1 + 8;
// Only nodes of this level and above are stored; a lower one is computed
// from its 2^level (at most 8) events when a root or proof needs it.
inline constexpr uint8_t kTreeLowestStoredLevel = 4;
// Value: seq (8, BE). The tree holds every node of the events up to it;
// logs written before it existed get their tree built once at open.
inline constexpr char kTreeThroughKey[] = "tree_through";
// Value: the newest signed checkpoint note the writer stored (SPEC §7).
inline constexpr char kCheckpointKey[] = "checkpoint";

inline constexpr size_t kSeqKeySize = 8;        // big-endian uint64
inline constexpr size_t kHashSize = 32;         // SHA-256
inline constexpr char kStreamSeparator = '\0';  // ids never contain it
// meta/head value: seq (8, BE) | hash of the last value (32) | recordedAt (8, BE)
inline constexpr size_t kHeadValueSize = 8 + kHashSize + 8;
// idempotency value: fingerprint (32) | first seq (8, BE) | last seq (8, BE)
inline constexpr size_t kIdempotencyValueSize = kHashSize + 8 + 8;

// Largest stored event value the decoder accepts; requests are capped far
// below this (1 MiB bodies), so only corruption reaches it.
inline constexpr size_t kMaxEventBytes = 8u << 20;

using Hash = std::array<uint8_t, kHashSize>;

void PutBigEndian64(std::string* out, uint64_t v);
uint64_t GetBigEndian64(const char* p);
// The same in 4 bytes (the length in a raw-event frame, SPEC §8).
void PutBigEndian32(std::string* out, uint32_t v);
uint32_t GetBigEndian32(const char* p);

std::string SeqKey(uint64_t seq);
// False when the key is not exactly kSeqKeySize bytes.
bool ParseSeqKey(std::string_view key, uint64_t* seq);

// A snapshot's part: seq (8, BE) | part (4, BE). A snapshot written before
// snapshots had parts is one value under the bare seq key.
std::string SnapshotKey(uint64_t seq, uint32_t part);
// The seq of either form; false for any other key.
bool ParseSnapshotKey(std::string_view key, uint64_t* seq);

// entity | 0x00 | version (8, BE): one entity's events sort together, by version.
std::string StreamKey(std::string_view entity, uint64_t version);
std::string StreamPrefix(std::string_view entity);

std::string TreeKey(uint8_t level, uint64_t index);
// "tree node (level, index)", as messages name it.
std::string TreeNodeName(uint8_t level, uint64_t index);
// False when the key is not exactly kTreeKeySize bytes.
bool ParseTreeKey(std::string_view key, uint8_t* level, uint64_t* index);

std::string EncodeHead(uint64_t seq, const Hash& hash, int64_t recorded_at_us);
bool DecodeHead(std::string_view value, uint64_t* seq, Hash* hash, int64_t* recorded_at_us);

}  // namespace okr::format
