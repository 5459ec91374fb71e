// spawn: every thread of the addon (accept thread, pool workers, connection threads) is created here: joinable, with
// the configured stack size, and with every signal blocked so that SIGINT/SIGTERM/SIGCHLD reach Node's own threads
// and never interrupt a blocking recv()/send() of ours. Whoever spawns a thread names who joins it.
#pragma once

#include <pthread.h>

#include <cstddef>

namespace wslab {

// Rounds `bytes` up to at least PTHREAD_STACK_MIN and a whole number of pages.
size_t stack_size(size_t bytes);

// Returns 0 or the pthread_create error (EAGAIN when the machine is out of threads or memory for stacks).
int spawn(pthread_t* out, size_t stack_bytes, void* (*fn)(void*), void* arg);

}  // namespace wslab
