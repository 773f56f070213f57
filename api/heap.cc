#include "api/heap.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <mutex>
#include <system_error>

#include "eventstore/base/thread_name.h"

namespace okr::api {

namespace {

constexpr int kMmapThreshold = 256 * 1024;
// While a replica copies: its appends of copied events, their write
// batches and the pages read run to megabytes each.
constexpr int kCopyMmapThreshold = 32 * 1024 * 1024;
constexpr int kTrimThreshold = 16 * 1024 * 1024;
// What a projection takes in memory, about, per event (docs/BENCHMARKS.md:
// about 540 bytes at a million events).
constexpr size_t kProjectionBytesPerEvent = 512;
// Below this a load takes well under a second; above it, memory is still
// bounded.
constexpr size_t kLeastHeapForLoad = size_t{64} << 20;
constexpr size_t kMostHeapForLoad = size_t{1} << 30;

// The threshold is the process's: HeapForLoad's and HeapForCopy's
// changes of it are made under one lock, each leaving it as the other
// needs it.
std::mutex policy_mu;
int copies = 0;  // HeapForCopy objects alive; guarded by policy_mu

int MmapThresholdLocked() { return copies > 0 ? kCopyMmapThreshold : kMmapThreshold; }

}  // namespace

void SetHeapPolicy() {
  std::lock_guard<std::mutex> lock(policy_mu);
  mallopt(M_MMAP_THRESHOLD, MmapThresholdLocked());
  mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
}

void ReturnFreePages() { malloc_trim(0); }

HeapForLoad::HeapForLoad(uint64_t events) {
  const size_t bytes =
      static_cast<size_t>(std::min<uint64_t>(events, kMostHeapForLoad / kProjectionBytesPerEvent)) *
      kProjectionBytesPerEvent;
  if (bytes < kLeastHeapForLoad) return;
  std::lock_guard<std::mutex> lock(policy_mu);
  // One block from the heap (not a mapping of its own: the threshold is
  // above the block with its header), kept there once freed. A glibc that
  // caps the threshold lower is left as it is.
  if (mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes + (size_t{1} << 20))) == 0) return;
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
  void* block = std::malloc(bytes);
  mallopt(M_MMAP_THRESHOLD, MmapThresholdLocked());
  const auto at = reinterpret_cast<uintptr_t>(block);
  std::free(block);
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (at + page - 1) & ~(page - 1);
  const uintptr_t end = (at + bytes) & ~(page - 1);
  if (block == nullptr || end <= begin) {
    mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
    return;
  }
  try {
    faulting_ = NamedThread("okr:heap-fault", [begin, end] {
      // Best effort: a kernel before 5.14 answers EINVAL, and the load
      // faults the pages in itself.
      (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
    });
  } catch (const std::system_error&) {
    mallopt(M_TRIM_THRESHOLD, kTrimThreshold);  // no thread: the load faults them in
  }
}

HeapForLoad::~HeapForLoad() {
  if (faulting_.joinable()) faulting_.join();
  std::lock_guard<std::mutex> lock(policy_mu);
  mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
}

HeapForCopy::HeapForCopy() {
  std::lock_guard<std::mutex> lock(policy_mu);
  ++copies;
  mallopt(M_MMAP_THRESHOLD, MmapThresholdLocked());
}

HeapForCopy::~HeapForCopy() {
  {
    std::lock_guard<std::mutex> lock(policy_mu);
    --copies;
    mallopt(M_MMAP_THRESHOLD, MmapThresholdLocked());
    if (copies > 0) return;
  }
  ReturnFreePages();
}

}  // namespace okr::api
