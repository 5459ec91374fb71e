// connection: serving one WebSocket connection on the calling thread with blocking I/O: the HTTP upgrade, then a
// read-frame / run-command / write-reply loop, then the close. Declared in server.h as `serve()`.
//
// Memory per connection is kept near the idle-pthread floor: a 2 KiB read buffer on the thread's stack (pages are
// only touched as far as data arrives), the request head and message payloads on the heap only while in use, and no
// other per-connection allocation (the registry link lives on the stack too).
#pragma once

#include "server.h"
