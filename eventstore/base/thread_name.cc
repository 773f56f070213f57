#include "eventstore/base/thread_name.h"

#include <pthread.h>

#include <cstring>

namespace okr {

void NameThisThread(const char* name) {
  constexpr size_t kMostBytes = 15;  // the kernel's TASK_COMM_LEN, less its NUL
  char cut[kMostBytes + 1] = {};
  std::strncpy(cut, name, kMostBytes);
  (void)pthread_setname_np(pthread_self(), cut);
}

}  // namespace okr
