// pool: the bounded design, as a synchronous worker server runs: N worker threads created at start, each taking the
// oldest accepted socket from a FIFO queue, doing its handshake and serving it until it closes, then taking the next.
// The queue holds at most `queue_limit` sockets beyond those an idle worker is about to take; a socket that does not
// fit is answered 503 at once, closed, and counted as a `queue_full` rejection.
#pragma once

#include <memory>

#include "server.h"

namespace wslab {

// Spawns the workers; throws StartError if one cannot be created (the ones that were are joined first).
std::unique_ptr<Dispatcher> make_pool(Server& server);

}  // namespace wslab
