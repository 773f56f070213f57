// The log as an RFC 6962 Merkle tree (SPEC §7, RFC 9162 §2.1): leaf i
// (0-based) is event seq i+1, its hash SHA-256(0x00 || stored value); an
// inner node is SHA-256(0x01 || left || right); a tree of n leaves splits
// at the largest power of two below n.
//
// Only perfect subtrees are ever stored: node (level, index) is the root of
// the 2^level leaves from index * 2^level on. Every root and proof of any
// size is made from O(log n) of them, read through a NodeReader, so this
// file does not know where they are kept (the `tree` column family,
// docs/FORMAT.md; an auditor's saved right edge).
//
// The verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 and need no stored
// node: they are what an auditor runs on what the server answered.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <utility>
#include <vector>

#include "eventstore/base/status.h"
#include "eventstore/format.h"

namespace okr::merkle {

using Hash = format::Hash;

// SHA-256 of no bytes: the root of the empty tree.
Hash EmptyRoot();
Hash LeafHash(std::string_view value);
Hash NodeHash(const Hash& left, const Hash& right);

// The root of the perfect subtree of 2^level leaves from index * 2^level.
struct NodeId {
  uint8_t level = 0;
  uint64_t index = 0;
  bool operator==(const NodeId&) const = default;
};

// Reads perfect nodes, all of `ids` at once (the store: one MultiGet of
// the stored ones, one of the events under the lower ones), in their
// order. kNotFound or kCorruption when one is missing or malformed.
using NodeReader = std::function<Result<std::vector<Hash>>(const std::vector<NodeId>& ids)>;

// The root of the first `size` leaves (size 0: EmptyRoot()).
Result<Hash> RootAt(uint64_t size, const NodeReader& read);
// The audit path of leaf `index` in the tree of `size` leaves
// (index < size), leaf side first: RFC 9162 §2.1.3.1.
Result<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size, const NodeReader& read);
// The consistency proof from the tree of `from` leaves to that of `to`
// (1 <= from <= to): RFC 9162 §2.1.4.1; empty when from == to.
Result<std::vector<Hash>> ConsistencyProof(uint64_t from, uint64_t to, const NodeReader& read);

// RFC 9162 §2.1.3.2: true when `proof` proves `leaf` is leaf `index` of the
// tree of `size` leaves whose root is `root`.
bool VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf,
                     const std::vector<Hash>& proof, const Hash& root);
// RFC 9162 §2.1.4.2: true when `proof` proves the tree of `from` leaves
// with root `from_root` is a prefix of the tree of `to` leaves with root
// `to_root`. from == to needs an empty proof and equal roots.
bool VerifyConsistency(uint64_t from, uint64_t to, const Hash& from_root, const Hash& to_root,
                       const std::vector<Hash>& proof);

// The right edge of a growing tree: the roots of its perfect subtrees,
// largest (leftmost) first, one per bit set in size(). Enough to append
// leaves and to compute the root, so the writer keeps one in memory and an
// auditor saves one between runs. Not thread-safe.
class Frontier {
 public:
  Frontier() = default;
  // The edge of the tree of `size` leaves, from its stored nodes.
  static Result<Frontier> Load(uint64_t size, const NodeReader& read);
  // From its parts (an auditor's saved state): false when `peaks` does not
  // hold one hash per bit set in `size`.
  static bool FromPeaks(uint64_t size, std::vector<Hash> peaks, Frontier* out);

  // Adds the next leaf; appends to `completed` (when not null) every
  // perfect node it completes, the leaf itself (level 0) first: exactly
  // the nodes to store.
  void Append(const Hash& leaf, std::vector<std::pair<NodeId, Hash>>* completed);
  Hash Root() const;
  uint64_t size() const { return size_; }
  const std::vector<Hash>& peaks() const { return peaks_; }

 private:
  uint64_t size_ = 0;
  std::vector<Hash> peaks_;  // one per bit of size_, largest subtree first
};

}  // namespace okr::merkle
