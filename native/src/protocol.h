// protocol: the verbs of docs/protocol.md, without I/O. A text request becomes a Reply that the connection writes as
// one text frame: `head` (id, "ok"/"err", result) followed by `body` (echo payload, pointing into the request) and
// `fill` bytes of 'x' (written from a static buffer, never materialised).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "counters.h"

namespace wslab::protocol {

constexpr size_t kMaxId = 32;
constexpr uint32_t kMaxSleepMs = 60000, kMaxCpu = 1000000, kMaxFill = 8388608;

// What a command may block on. In this design `wait` and `block` both block the connection's own thread; the sleep is
// interruptible so that close() is never held up by it.
class Blocker {
 public:
  virtual ~Blocker() = default;
  virtual bool sleep_ms(uint32_t ms) = 0;  // false when interrupted by shutdown
  virtual bool stopping() const = 0;
};

struct Reply {
  Command command;
  std::string head;
  std::string_view body;
  size_t fill = 0;
  bool interrupted = false;  // shutdown cut the command short: no reply is sent
  size_t size() const { return head.size() + body.size() + fill; }
};

Reply run(std::string_view request, Blocker& blocker);

// The doc's xorshift32 work: n × 1000 rounds from 0x9E3779B9 ^ n. Checks `blocker.stopping()` once per unit.
uint32_t cpu(uint32_t n, const Blocker* blocker);

}  // namespace wslab::protocol
