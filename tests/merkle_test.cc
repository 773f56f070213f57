// The Merkle tree math (eventstore/merkle.h) against RFC 6962 §2.1 computed
// directly over the leaf list: roots, proofs from stored perfect nodes,
// the verifiers, and the Frontier that produces the stored nodes.
#include "eventstore/merkle.h"

#include <gtest/gtest.h>

#include <bit>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "eventstore/event_codec.h"

namespace okr::merkle {
namespace {

// ---- RFC 6962 §2.1, written from its recursive definitions ----------------

uint64_t Split(uint64_t n) { return std::bit_floor(n - 1); }

// MTH(D[lo:hi]).
Hash Mth(const std::vector<Hash>& leaves, uint64_t lo, uint64_t hi) {
  if (hi == lo) return Sha256("");
  if (hi - lo == 1) return leaves[lo];
  uint64_t k = Split(hi - lo);
  return NodeHash(Mth(leaves, lo, lo + k), Mth(leaves, lo + k, hi));
}

// PATH(m, D[lo:hi]).
std::vector<Hash> Path(const std::vector<Hash>& leaves, uint64_t m, uint64_t lo, uint64_t hi) {
  if (hi - lo == 1) return {};
  uint64_t k = Split(hi - lo);
  std::vector<Hash> out;
  if (m < k) {
    out = Path(leaves, m, lo, lo + k);
    out.push_back(Mth(leaves, lo + k, hi));
  } else {
    out = Path(leaves, m - k, lo + k, hi);
    out.push_back(Mth(leaves, lo, lo + k));
  }
  return out;
}

// SUBPROOF(m, D[lo:hi], b).
std::vector<Hash> Subproof(const std::vector<Hash>& leaves, uint64_t m, uint64_t lo, uint64_t hi,
                           bool b) {
  if (m == hi - lo) {
    if (b) return {};
    return {Mth(leaves, lo, hi)};
  }
  uint64_t k = Split(hi - lo);
  std::vector<Hash> out;
  if (m <= k) {
    out = Subproof(leaves, m, lo, lo + k, b);
    out.push_back(Mth(leaves, lo + k, hi));
  } else {
    out = Subproof(leaves, m - k, lo + k, hi, false);
    out.push_back(Mth(leaves, lo, lo + k));
  }
  return out;
}

// ---- a log's stored nodes --------------------------------------------------

std::string Data(uint64_t i) { return "event " + std::to_string(i); }

Hash Flipped(Hash h) {
  h[7] ^= 0x10;
  return h;
}

// The leaves and the nodes a writer would store for them: a map filled by
// Frontier::Append, read through a NodeReader that counts its calls.
class Tree {
 public:
  explicit Tree(uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) Append(Data(i));
  }

  void Append(std::string_view value) {
    Hash leaf = LeafHash(value);
    leaves_.push_back(leaf);
    std::vector<std::pair<NodeId, Hash>> completed;
    frontier_.Append(leaf, &completed);
    for (const auto& [id, hash] : completed) {
      bool inserted = nodes_.emplace(std::make_pair(id.level, id.index), hash).second;
      EXPECT_TRUE(inserted) << "node " << int(id.level) << "/" << id.index << " completed twice";
    }
  }

  NodeReader Reader() {
    return [this](const std::vector<NodeId>& ids) -> Result<std::vector<Hash>> {
      ++reads_;
      std::vector<Hash> out;
      for (const NodeId& id : ids) {
        auto it = nodes_.find({id.level, id.index});
        if (it == nodes_.end()) return Status::NotFound("no node");
        out.push_back(it->second);
      }
      return out;
    };
  }

  Hash Root(uint64_t size) const { return Mth(leaves_, 0, size); }

  const std::vector<Hash>& leaves() const { return leaves_; }
  std::map<std::pair<uint8_t, uint64_t>, Hash>& nodes() { return nodes_; }
  const Frontier& frontier() const { return frontier_; }
  int reads() const { return reads_; }

 private:
  std::vector<Hash> leaves_;
  std::map<std::pair<uint8_t, uint64_t>, Hash> nodes_;
  Frontier frontier_;
  int reads_ = 0;
};

// ---- known answers ------------------------------------------------------------

std::string Unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

// The Certificate Transparency reference leaves and the roots of their
// first 0..8 (RFC 6962 implementations all test against these).
TEST(Merkle, RootsMatchTheCertificateTransparencyVectors) {
  const std::vector<std::string> data = {"",
                                         "00",
                                         "10",
                                         "2021",
                                         "3031",
                                         "40414243",
                                         "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f"};
  const std::vector<std::string> roots = {
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
      "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
      "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
      "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
      "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
      "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
  EXPECT_EQ(ToHex(EmptyRoot()), roots[0]);
  Tree tree(0);
  for (size_t n = 1; n <= data.size(); ++n) {
    tree.Append(Unhex(data[n - 1]));
    EXPECT_EQ(ToHex(tree.frontier().Root()), roots[n]) << n;
    auto root = RootAt(n, tree.Reader());
    ASSERT_TRUE(root.ok()) << root.status().ToString();
    EXPECT_EQ(ToHex(*root), roots[n]) << n;
  }
}

// C2SP merkle-tree.md's example, the 7-leaf tree of RFC 6962 §2.1.3 (whose
// labels differ: C2SP's h, i, j, l are RFC 6962's g, h, i, l, and C2SP's g
// is RFC 6962's j).
TEST(Merkle, TheSevenLeafExampleOfC2spAndRfc6962) {
  Tree tree(7);
  const std::vector<Hash>& d = tree.leaves();
  const Hash &a = d[0], &b = d[1], &c = d[2], &dd = d[3], &f = d[5], &g = d[6];
  Hash h = NodeHash(a, b), i = NodeHash(c, dd), j = NodeHash(d[4], f);
  Hash k = NodeHash(h, i), l = NodeHash(j, g), root = NodeHash(k, l);
  ASSERT_EQ(*RootAt(7, tree.Reader()), root);

  const std::vector<std::pair<uint64_t, std::vector<Hash>>> inclusion = {
      {0, {b, i, l}}, {3, {c, h, l}}, {4, {f, g, k}}, {6, {j, k}}};
  for (const auto& [index, want] : inclusion) {
    auto proof = InclusionProof(index, 7, tree.Reader());
    ASSERT_TRUE(proof.ok());
    EXPECT_EQ(*proof, want) << "leaf " << index;
    EXPECT_TRUE(VerifyInclusion(index, 7, d[index], *proof, root));
  }
  const std::vector<std::pair<uint64_t, std::vector<Hash>>> consistency = {
      {3, {c, dd, h, l}}, {4, {l}}, {6, {j, g, k}}};
  for (const auto& [from, want] : consistency) {
    auto proof = ConsistencyProof(from, 7, tree.Reader());
    ASSERT_TRUE(proof.ok());
    EXPECT_EQ(*proof, want) << "from " << from;
    EXPECT_TRUE(VerifyConsistency(from, 7, tree.Root(from), root, *proof));
  }
}

// ---- every proof up to 64 leaves ----------------------------------------------

void ExpectInclusionRejections(const Tree& tree, uint64_t index, uint64_t n,
                               const std::vector<Hash>& proof) {
  const Hash& leaf = tree.leaves()[index];
  Hash root = tree.Root(n);
  for (size_t p = 0; p < proof.size(); ++p) {
    std::vector<Hash> bad = proof;
    bad[p] = Flipped(bad[p]);
    EXPECT_FALSE(VerifyInclusion(index, n, leaf, bad, root)) << index << "/" << n << " hash " << p;
  }
  EXPECT_FALSE(VerifyInclusion(index, n + 1, leaf, proof, tree.Root(n + 1))) << index << "/" << n;
  if (index + 1 < n) {
    EXPECT_FALSE(VerifyInclusion(index, n - 1, leaf, proof, tree.Root(n - 1)));
  }
  EXPECT_FALSE(VerifyInclusion(index, n, LeafHash("another event"), proof, root));
  EXPECT_FALSE(VerifyInclusion(n, n, leaf, proof, root));
  EXPECT_FALSE(VerifyInclusion(index, n, leaf, proof, Flipped(root)));
}

void ExpectConsistencyRejections(const Tree& tree, uint64_t m, uint64_t n,
                                 const std::vector<Hash>& proof) {
  Hash from_root = tree.Root(m), to_root = tree.Root(n);
  for (size_t p = 0; p < proof.size(); ++p) {
    std::vector<Hash> bad = proof;
    bad[p] = Flipped(bad[p]);
    EXPECT_FALSE(VerifyConsistency(m, n, from_root, to_root, bad)) << m << "->" << n << " " << p;
  }
  EXPECT_FALSE(VerifyConsistency(m, n + 1, from_root, tree.Root(n + 1), proof)) << m << "->" << n;
  if (m > 1) {
    EXPECT_FALSE(VerifyConsistency(m - 1, n, tree.Root(m - 1), to_root, proof));
  }
  EXPECT_FALSE(VerifyConsistency(m, n, Flipped(from_root), to_root, proof));
  EXPECT_FALSE(VerifyConsistency(m, n, from_root, Flipped(to_root), proof));
  EXPECT_FALSE(VerifyConsistency(0, n, from_root, to_root, proof));
  EXPECT_FALSE(VerifyConsistency(n + 1, n, from_root, to_root, proof));
}

TEST(Merkle, EveryInclusionProofUpTo64LeavesIsRfc6962sPath) {
  Tree tree(65);
  for (uint64_t n = 1; n <= 64; ++n) {
    for (uint64_t index = 0; index < n; ++index) {
      int reads = tree.reads();
      auto proof = InclusionProof(index, n, tree.Reader());
      ASSERT_TRUE(proof.ok()) << proof.status().ToString();
      EXPECT_EQ(tree.reads(), reads + (n > 1 ? 1 : 0)) << "one read per proof, none for no hash";
      ASSERT_EQ(*proof, Path(tree.leaves(), index, 0, n)) << index << "/" << n;
      EXPECT_TRUE(VerifyInclusion(index, n, tree.leaves()[index], *proof, tree.Root(n)));
      ExpectInclusionRejections(tree, index, n, *proof);
    }
  }
}

TEST(Merkle, EveryConsistencyProofUpTo64LeavesIsRfc6962sProof) {
  Tree tree(65);
  for (uint64_t n = 1; n <= 64; ++n) {
    for (uint64_t m = 1; m <= n; ++m) {
      int reads = tree.reads();
      auto proof = ConsistencyProof(m, n, tree.Reader());
      ASSERT_TRUE(proof.ok()) << proof.status().ToString();
      EXPECT_EQ(tree.reads(), reads + (m < n ? 1 : 0)) << "one read per proof, none for no hash";
      ASSERT_EQ(*proof, Subproof(tree.leaves(), m, 0, n, true)) << m << "->" << n;
      EXPECT_TRUE(VerifyConsistency(m, n, tree.Root(m), tree.Root(n), *proof));
      ExpectConsistencyRejections(tree, m, n, *proof);
    }
  }
}

TEST(Merkle, ProofsOutOfRangeAreInvalid) {
  Tree tree(8);
  EXPECT_EQ(InclusionProof(8, 8, tree.Reader()).status().code(), Status::Code::kInvalid);
  EXPECT_EQ(InclusionProof(0, 0, tree.Reader()).status().code(), Status::Code::kInvalid);
  EXPECT_EQ(ConsistencyProof(0, 8, tree.Reader()).status().code(), Status::Code::kInvalid);
  EXPECT_EQ(ConsistencyProof(5, 4, tree.Reader()).status().code(), Status::Code::kInvalid);
  EXPECT_FALSE(VerifyConsistency(4, 4, tree.Root(4), tree.Root(4), {tree.leaves()[0]}));
  EXPECT_TRUE(VerifyConsistency(4, 4, tree.Root(4), tree.Root(4), {}));
  EXPECT_FALSE(VerifyConsistency(4, 4, tree.Root(4), tree.Root(5), {}));
}

// ---- the Frontier --------------------------------------------------------------

TEST(Merkle, FrontierStoresExactlyThePerfectNodesAndKnowsEveryRoot) {
  Tree tree(0);
  for (uint64_t n = 1; n <= 200; ++n) {
    tree.Append(Data(n - 1));
    Hash want = tree.Root(n);
    EXPECT_EQ(tree.frontier().Root(), want) << n;
    auto root = RootAt(n, tree.Reader());
    ASSERT_TRUE(root.ok());
    EXPECT_EQ(*root, want) << n;

    auto loaded = Frontier::Load(n, tree.Reader());
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded->size(), n);
    EXPECT_EQ(loaded->peaks(), tree.frontier().peaks()) << n;
  }
  // Every perfect subtree of the 200 leaves, and nothing else.
  size_t perfect = 0;
  for (uint8_t level = 0; (uint64_t{1} << level) <= 200; ++level) {
    uint64_t width = uint64_t{1} << level;
    for (uint64_t index = 0; (index + 1) * width <= 200; ++index, ++perfect) {
      auto it = tree.nodes().find({level, index});
      ASSERT_NE(it, tree.nodes().end()) << int(level) << "/" << index;
      EXPECT_EQ(it->second, Mth(tree.leaves(), index * width, (index + 1) * width));
    }
  }
  EXPECT_EQ(tree.nodes().size(), perfect);
}

TEST(Merkle, AFrontierLoadedOrRebuiltKeepsGrowingTheSameTree) {
  Tree tree(37);
  auto loaded = Frontier::Load(37, tree.Reader());
  ASSERT_TRUE(loaded.ok());
  Frontier rebuilt;
  ASSERT_TRUE(Frontier::FromPeaks(37, tree.frontier().peaks(), &rebuilt));
  for (uint64_t i = 37; i < 50; ++i) {
    tree.Append(Data(i));
    loaded->Append(tree.leaves()[i], nullptr);
    rebuilt.Append(tree.leaves()[i], nullptr);
  }
  EXPECT_EQ(loaded->Root(), tree.Root(50));
  EXPECT_EQ(rebuilt.Root(), tree.Root(50));
}

TEST(Merkle, FromPeaksRejectsTheWrongNumberOfPeaks) {
  Tree tree(13);  // 8 + 4 + 1: three peaks
  std::vector<Hash> peaks = tree.frontier().peaks();
  ASSERT_EQ(peaks.size(), 3u);
  Frontier f;
  EXPECT_FALSE(Frontier::FromPeaks(13, {peaks[0], peaks[1]}, &f));
  EXPECT_FALSE(Frontier::FromPeaks(12, peaks, &f));
  EXPECT_FALSE(Frontier::FromPeaks(0, {peaks[0]}, &f));
  EXPECT_TRUE(Frontier::FromPeaks(0, {}, &f));
  EXPECT_EQ(f.Root(), EmptyRoot());
  ASSERT_TRUE(Frontier::FromPeaks(13, peaks, &f));
  EXPECT_EQ(f.Root(), tree.Root(13));
}

// ---- damaged storage -----------------------------------------------------------

TEST(Merkle, AMissingNodeIsAnErrorNotACrash) {
  Tree tree(13);
  tree.nodes().erase({2, 2});  // leaves 8..11: a peak of 13, on most paths
  auto code = [](const auto& result) { return result.status().code(); };
  EXPECT_EQ(code(RootAt(13, tree.Reader())), Status::Code::kNotFound);
  EXPECT_EQ(code(InclusionProof(0, 13, tree.Reader())), Status::Code::kNotFound);
  EXPECT_EQ(code(ConsistencyProof(5, 13, tree.Reader())), Status::Code::kNotFound);
  EXPECT_EQ(code(Frontier::Load(13, tree.Reader())), Status::Code::kNotFound);
  // Sizes that do not need the node still answer.
  EXPECT_TRUE(RootAt(8, tree.Reader()).ok());

  NodeReader short_reader = [](const std::vector<NodeId>& ids) -> Result<std::vector<Hash>> {
    return std::vector<Hash>(ids.size() - 1);
  };
  EXPECT_EQ(code(RootAt(13, short_reader)), Status::Code::kCorruption);
  EXPECT_EQ(code(InclusionProof(3, 13, short_reader)), Status::Code::kCorruption);
  EXPECT_EQ(code(Frontier::Load(13, short_reader)), Status::Code::kCorruption);
}

}  // namespace
}  // namespace okr::merkle
