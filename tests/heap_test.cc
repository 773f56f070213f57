// okrd's use of glibc's heap (api/heap.h), seen through glibc's own
// account of the blocks it mapped apart from its heaps (mallinfo2's
// hblks). AddressSanitizer replaces glibc's allocator, so under it there
// is no such policy to see and this test is not built (tests/CMakeLists.txt).
#include <malloc.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>

#include "api/heap.h"

namespace okr::api {
namespace {

constexpr size_t kBuffer = size_t{4} << 20;  // a replica append's write batch, say

// std::malloc, kept: a block that is allocated and freed unused may be
// left out by the compiler altogether.
void* Allocate(size_t bytes) {
  void* block = std::malloc(bytes);
  asm volatile("" : : "g"(block) : "memory");
  return block;
}

// Whether a block of kBuffer bytes, allocated now, is mapped apart.
bool BufferMapped() {
  const size_t before = mallinfo2().hblks;
  void* block = Allocate(kBuffer);
  const bool mapped = mallinfo2().hblks == before + 1;
  std::free(block);
  return mapped;
}

class HeapTest : public ::testing::Test {
 protected:
  void SetUp() override { SetHeapPolicy(); }
};

TEST_F(HeapTest, MegabyteBuffersAreMappedAndReturnedOutsideACopy) { EXPECT_TRUE(BufferMapped()); }

TEST_F(HeapTest, ACopyKeepsMegabyteBuffersInTheHeapAndReusesTheirPages) {
  {
    HeapForCopy copying;
    EXPECT_FALSE(BufferMapped());
    void* first = Allocate(kBuffer);
    std::free(first);
    void* again = Allocate(kBuffer);
    EXPECT_EQ(again, first) << "the freed buffer's pages were not reused";
    std::free(again);
  }
  EXPECT_TRUE(BufferMapped()) << "the policy did not come back when the copy ended";
}

TEST_F(HeapTest, ThePolicyComesBackWhenTheLastCopyEnds) {
  auto first = std::make_unique<HeapForCopy>();
  {
    HeapForCopy second;
    EXPECT_FALSE(BufferMapped());
  }
  EXPECT_FALSE(BufferMapped()) << "one copy ending ended the other's";
  first.reset();
  EXPECT_TRUE(BufferMapped());
}

TEST_F(HeapTest, ALoadDuringACopyLeavesTheCopysPolicy) {
  HeapForCopy copying;
  { HeapForLoad load(200'000); }  // about 100 MB grown at once
  // Not while the load's block is free in the heap: glibc maps a block
  // apart only when no free one fits.
  ReturnFreePages();
  EXPECT_FALSE(BufferMapped());
}

}  // namespace
}  // namespace okr::api
