#include "spawn.h"

#include <signal.h>
#include <unistd.h>

#include <climits>

namespace wslab {

size_t stack_size(size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t s = bytes < static_cast<size_t>(PTHREAD_STACK_MIN) ? static_cast<size_t>(PTHREAD_STACK_MIN) : bytes;
  return (s + page - 1) / page * page;
}

int spawn(pthread_t* out, size_t stack_bytes, void* (*fn)(void*), void* arg) {
  pthread_attr_t attr;
  int rc = pthread_attr_init(&attr);
  if (rc != 0) return rc;
  rc = pthread_attr_setstacksize(&attr, stack_size(stack_bytes));
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);  // the new thread inherits the blocked mask
  if (rc == 0) rc = pthread_create(out, &attr, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  return rc;
}

}  // namespace wslab
