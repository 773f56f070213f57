#include "api/heap.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <system_error>

namespace okr::api {

namespace {

constexpr int kMmapThreshold = 256 * 1024;
constexpr int kTrimThreshold = 16 * 1024 * 1024;
// What a projection takes in memory, about, per event (docs/BENCHMARKS.md:
// about 540 bytes at a million events).
constexpr size_t kProjectionBytesPerEvent = 512;
// Below this a load takes well under a second; above it, memory is still
// bounded.
constexpr size_t kLeastHeapForLoad = size_t{64} << 20;
constexpr size_t kMostHeapForLoad = size_t{1} << 30;

}  // namespace

void SetHeapPolicy() {
  mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
  mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
}

void ReturnFreePages() { malloc_trim(0); }

HeapForLoad::HeapForLoad(uint64_t events) {
  const size_t bytes =
      static_cast<size_t>(std::min<uint64_t>(events, kMostHeapForLoad / kProjectionBytesPerEvent)) *
      kProjectionBytesPerEvent;
  if (bytes < kLeastHeapForLoad) return;
  // One block from the heap (not a mapping of its own: the threshold is
  // above the block with its header), kept there once freed. A glibc that
  // caps the threshold lower is left as it is.
  if (mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes + (size_t{1} << 20))) == 0) return;
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
  void* block = std::malloc(bytes);
  mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
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
    faulting_ = std::thread([begin, end] {
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
  mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
}

}  // namespace okr::api
