// connection_thread: the unbounded design: one pthread per accepted connection, limited only by the OS.
#pragma once

#include <memory>

#include "server.h"

namespace wslab {

std::unique_ptr<Dispatcher> make_thread_per_connection(Server& server);

}  // namespace wslab
