#include "eventstore/merkle.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <string>

#include "eventstore/event_codec.h"

namespace okr::merkle {
namespace {

constexpr char kLeafPrefix = 0x00;
constexpr char kNodePrefix = 0x01;

std::string_view Bytes(const Hash& h) {
  return {reinterpret_cast<const char*>(h.data()), h.size()};
}

// The largest power of two below n (n >= 2): where RFC 6962 splits a tree.
uint64_t SplitPoint(uint64_t n) {
  assert(n >= 2);
  return std::bit_floor(n - 1);
}

// Appends the ids of the perfect subtrees tiling leaves [begin, end),
// largest first. Every run an RFC 6962 split yields starts at a multiple of
// each of its pieces, so each piece is a stored node.
void AppendPieces(uint64_t begin, uint64_t end, std::vector<NodeId>* ids) {
  assert(begin < end);
  for (int level = std::bit_width(end - begin) - 1; level >= 0; --level) {
    uint64_t width = uint64_t{1} << level;
    if (((end - begin) & width) == 0) continue;
    assert(begin % width == 0 && "a run's pieces are aligned");
    ids->push_back(NodeId{static_cast<uint8_t>(level), begin >> level});
    begin += width;
  }
}

// The root over pieces[0, count), which nest rightwards (the peaks of a
// tree, largest first): fold from the right.
Hash FoldPieces(const Hash* pieces, size_t count) {
  assert(count > 0);
  Hash h = pieces[count - 1];
  for (size_t i = count - 1; i-- > 0;) h = NodeHash(pieces[i], h);
  return h;
}

// A run of leaves whose hash a root or proof needs, as the stored nodes
// that tile it: ids[first, first + count) of the one read.
struct Span {
  size_t first = 0;
  size_t count = 0;
};

// Collects the NodeIds of every run a root or proof needs, then reads them
// in one call and folds each run into its hash. A proof's walk adds at most
// one run that is not a perfect subtree (after it, every range is perfect),
// so a read holds at most about 2 log2(n) ids.
class Plan {
 public:
  void Add(uint64_t begin, uint64_t end) {
    size_t first = ids_.size();
    AppendPieces(begin, end, &ids_);
    spans_.push_back(Span{first, ids_.size() - first});
  }

  // The hash of each span, in the order they were added.
  Result<std::vector<Hash>> Resolve(const NodeReader& read) const {
    if (ids_.empty()) return std::vector<Hash>();  // one leaf, or from == to: no hash
    OKR_ASSIGN_OR_RETURN(std::vector<Hash> nodes, read(ids_));
    if (nodes.size() != ids_.size()) {
      return Status::Corruption("tree: the node reader answered " + std::to_string(nodes.size()) +
                                " hashes for " + std::to_string(ids_.size()) + " nodes");
    }
    std::vector<Hash> out;
    out.reserve(spans_.size());
    for (const Span& span : spans_) {
      Hash h = FoldPieces(nodes.data() + span.first, span.count);
      out.push_back(h);
    }
    return out;
  }

  // The walks add runs root first; proofs list them deepest first.
  void Reverse() { std::reverse(spans_.begin(), spans_.end()); }

 private:
  std::vector<NodeId> ids_;
  std::vector<Span> spans_;
};

// Right-shifts fn and sn together until fn's lowest bit is set or fn is 0
// (RFC 9162 §2.1.3.2 and §2.1.4.2).
void ShiftToOddOrZero(uint64_t* fn, uint64_t* sn) {
  while ((*fn & 1) == 0 && *fn != 0) {
    *fn >>= 1;
    *sn >>= 1;
  }
}

}  // namespace

Hash EmptyRoot() { return Sha256(std::string_view()); }

Hash LeafHash(std::string_view value) {
  return Sha256Concat({std::string_view(&kLeafPrefix, 1), value});
}

Hash NodeHash(const Hash& left, const Hash& right) {
  return Sha256Concat({std::string_view(&kNodePrefix, 1), Bytes(left), Bytes(right)});
}

Result<Hash> RootAt(uint64_t size, const NodeReader& read) {
  if (size == 0) return EmptyRoot();
  Plan plan;
  plan.Add(0, size);
  OKR_ASSIGN_OR_RETURN(std::vector<Hash> hashes, plan.Resolve(read));
  assert(hashes.size() == 1);
  return hashes[0];
}

Result<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size, const NodeReader& read) {
  if (index >= size) {
    return Status::Invalid("leaf " + std::to_string(index) + " is not in a tree of " +
                           std::to_string(size) + " leaves");
  }
  // PATH(m, D[lo:hi]) walks from the root down; its hashes go leaf side first.
  Plan plan;
  uint64_t lo = 0, hi = size;
  while (hi - lo > 1) {
    uint64_t k = SplitPoint(hi - lo);
    if (index < lo + k) {
      plan.Add(lo + k, hi);  // MTH(D[k:n])
      hi = lo + k;
    } else {
      plan.Add(lo, lo + k);  // MTH(D[0:k])
      lo += k;
    }
  }
  plan.Reverse();
  return plan.Resolve(read);
}

Result<std::vector<Hash>> ConsistencyProof(uint64_t from, uint64_t to, const NodeReader& read) {
  if (from == 0 || from > to) {
    return Status::Invalid("no consistency proof from " + std::to_string(from) + " to " +
                           std::to_string(to) + " leaves");
  }
  // SUBPROOF(m, D[lo:hi], b) walks from the root down; its hashes go
  // deepest first.
  Plan plan;
  uint64_t lo = 0, hi = to, m = from;
  bool whole_old_tree = true;  // b: the old root is the verifier's own
  while (m != hi - lo) {
    uint64_t k = SplitPoint(hi - lo);
    if (m <= k) {
      plan.Add(lo + k, hi);
      hi = lo + k;
    } else {
      plan.Add(lo, lo + k);
      lo += k;
      m -= k;
      whole_old_tree = false;
    }
  }
  if (!whole_old_tree) plan.Add(lo, hi);
  plan.Reverse();
  return plan.Resolve(read);
}

bool VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf,
                     const std::vector<Hash>& proof, const Hash& root) {
  if (index >= size) return false;
  uint64_t fn = index, sn = size - 1;
  Hash r = leaf;
  for (const Hash& p : proof) {
    if (sn == 0) return false;
    if ((fn & 1) != 0 || fn == sn) {
      r = NodeHash(p, r);
      ShiftToOddOrZero(&fn, &sn);
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && r == root;
}

bool VerifyConsistency(uint64_t from, uint64_t to, const Hash& from_root, const Hash& to_root,
                       const std::vector<Hash>& proof) {
  if (from == 0 || from > to) return false;
  if (from == to) return proof.empty() && from_root == to_root;
  if (proof.empty()) return false;
  // A power-of-two old tree is a node of the new one: its root starts the path.
  bool seeded = std::has_single_bit(from);
  size_t next = seeded ? 0 : 1;
  Hash fr = seeded ? from_root : proof[0];
  Hash sr = fr;
  uint64_t fn = from - 1, sn = to - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  for (; next < proof.size(); ++next) {
    const Hash& c = proof[next];
    if (sn == 0) return false;
    if ((fn & 1) != 0 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      ShiftToOddOrZero(&fn, &sn);
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && fr == from_root && sr == to_root;
}

Result<Frontier> Frontier::Load(uint64_t size, const NodeReader& read) {
  Frontier f;
  if (size == 0) return f;
  std::vector<NodeId> ids;
  AppendPieces(0, size, &ids);
  OKR_ASSIGN_OR_RETURN(std::vector<Hash> peaks, read(ids));
  if (!FromPeaks(size, std::move(peaks), &f)) {
    return Status::Corruption("tree: the node reader answered the wrong number of peaks");
  }
  return f;
}

bool Frontier::FromPeaks(uint64_t size, std::vector<Hash> peaks, Frontier* out) {
  if (peaks.size() != static_cast<size_t>(std::popcount(size))) return false;
  out->size_ = size;
  out->peaks_ = std::move(peaks);
  return true;
}

void Frontier::Append(const Hash& leaf, std::vector<std::pair<NodeId, Hash>>* completed) {
  // Each set low bit of size_ is a peak the new leaf's subtree now pairs with.
  Hash h = leaf;
  uint8_t level = 0;
  if (completed != nullptr) completed->emplace_back(NodeId{0, size_}, h);
  while ((size_ >> level) & 1) {
    assert(!peaks_.empty());
    h = NodeHash(peaks_.back(), h);
    peaks_.pop_back();
    ++level;
    if (completed != nullptr) completed->emplace_back(NodeId{level, size_ >> level}, h);
  }
  peaks_.push_back(h);
  ++size_;
  assert(peaks_.size() == static_cast<size_t>(std::popcount(size_)));
}

Hash Frontier::Root() const {
  if (peaks_.empty()) return EmptyRoot();
  return FoldPieces(peaks_.data(), peaks_.size());
}

}  // namespace okr::merkle
