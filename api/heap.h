// okrd's use of glibc's heap: when large buffers go back to the system,
// and a heap grown at once for the projection's load (docs/DECISIONS.md,
// "A heap grown at once for the load" and "4 KiB pages, not huge pages").
#pragma once

#include <cstdint>
#include <thread>

namespace okr::api {

// Buffers above 256 KiB (a snapshot being encoded, a large answer) are
// mapped and go back to the system when freed. glibc otherwise raises
// this threshold after the first such free and keeps later ones in the
// heap: resident memory then steps up with every snapshot, for good.
// A thread's heap gives its free top back to the system (madvise) once
// 128 KiB are free, and a streamed answer frees a piece of 64 KiB or more
// for each one it sends (cpp-httplib copies every chunk): each piece then
// cost a madvise and a TLB flush on every core, which made the
// whole-organisation cascade 2-5 times slower. Up to 16 MiB of free top
// stays with each heap instead.
void SetHeapPolicy();

// Gives every heap's free pages back to the system (malloc_trim), not
// only each heap's free top: after a snapshot, whose rebuilt state (as
// large as the projection) is freed in the middle of the snapshot
// thread's heap, which its top alone would keep resident for good.
void ReturnFreePages();

// While it lives, the heap is grown at once by about what the projection
// of a log of `events` takes (none for a small log), and faulted in on a
// second thread (MADV_POPULATE_WRITE). Grown a little at a time by the
// load itself, the heap is faulted in a page at a time as the load writes
// to it, which made most of the load's time at a million events.
// Faulting in changes no byte, so the load may already use the memory.
// What the load left unused goes back to the system afterwards, as any
// free top of the heap does. Construct on the thread that loads.
class HeapForLoad {
 public:
  explicit HeapForLoad(uint64_t events);
  ~HeapForLoad();
  HeapForLoad(const HeapForLoad&) = delete;
  HeapForLoad& operator=(const HeapForLoad&) = delete;

 private:
  std::thread faulting_;
};

// While one lives, buffers of up to 32 MiB come from the heaps and stay
// there once freed, so the next one of its size reuses their pages: a
// replica's catch-up makes an append of tens of thousands of copied
// events at a time, and its events, checks, write batch and table files
// were each mapped afresh and faulted in a page at a time, a fault
// costing several microseconds on a virtual machine ("A replica's
// catch-up on reused pages", docs/DECISIONS.md). When the last one goes,
// the 256 KiB threshold is back and every heap's free pages go back to
// the system (ReturnFreePages).
class HeapForCopy {
 public:
  HeapForCopy();
  ~HeapForCopy();
  HeapForCopy(const HeapForCopy&) = delete;
  HeapForCopy& operator=(const HeapForCopy&) = delete;
};

}  // namespace okr::api
