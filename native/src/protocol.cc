#include "protocol.h"

#include <cstdio>

namespace wslab::protocol {

namespace {

// A decimal integer without sign: 1-9 digits (leading zeros allowed), at most `max`, as server/protocol.ts reads it.
bool decimal(std::string_view s, uint32_t max, uint32_t* out) {
  if (s.empty() || s.size() > 9) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > max) return false;
  *out = v;
  return true;
}

// The first 32 UTF-16 code units of valid UTF-8 `s`, re-encoded as UTF-8 exactly as JS `s.slice(0, 32)` would be
// sent: a supplementary character cut in half leaves a lone surrogate, which encodes as U+FFFD.
std::string first_utf16_units(std::string_view s, size_t units) {
  std::string out;
  size_t i = 0, used = 0;
  while (i < s.size() && used < units) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (len == 4 && used + 2 > units) {
      out += "\xEF\xBF\xBD";
      break;
    }
    out.append(s.substr(i, len));
    used += len == 4 ? 2 : 1;
    i += len;
  }
  return out;
}

Reply err(Command cmd, std::string_view id, std::string_view code, std::string_view detail) {
  Reply r{cmd, std::string(), {}, 0, false};
  r.head.reserve(id.size() + code.size() + detail.size() + 6);
  r.head.append(id).append(" err ").append(code).append(" ").append(detail);
  return r;
}

Reply bad_argument(std::string_view id, std::string_view verb, uint32_t max) {
  std::string detail(verb);
  detail += " takes an integer 0-";
  detail += std::to_string(max);
  return err(Command::invalid, id, "bad_argument", detail);
}

Reply ok(Command cmd, std::string_view id, std::string_view result) {
  Reply r{cmd, std::string(), {}, 0, false};
  r.head.reserve(id.size() + result.size() + 4);
  r.head.append(id).append(" ok ").append(result);
  return r;
}

}  // namespace

uint32_t cpu(uint32_t n, const Blocker* blocker) {
  uint32_t x = 0x9E3779B9u ^ n;
  for (uint32_t unit = 0; unit < n; ++unit) {
    if (blocker && blocker->stopping()) break;
    for (int i = 0; i < 1000; ++i) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
    }
  }
  return x;
}

// Error texts are those of server/protocol.ts, so that one protocol suite checks every design byte for byte.
Reply run(std::string_view req, Blocker& blocker) {
  const size_t sp = req.find(' ');
  const std::string_view id = req.substr(0, sp);
  if (id.empty() || id.size() > kMaxId)
    return err(Command::invalid, "-", "bad_request", "missing or oversized request id");
  if (sp == std::string_view::npos) return err(Command::invalid, id, "unknown_command", "missing command");
  const std::string_view rest = req.substr(sp + 1);
  const size_t sp2 = rest.find(' ');
  const std::string_view verb = rest.substr(0, sp2);
  const std::string_view arg = sp2 == std::string_view::npos ? std::string_view() : rest.substr(sp2 + 1);

  if (verb == "echo") {
    Reply r = ok(Command::echo, id, "");
    r.body = arg;  // everything after "echo ", possibly empty
    return r;
  }
  uint32_t n = 0;
  char text[16];
  if (verb == "wait" || verb == "block") {
    const Command cmd = verb == "wait" ? Command::wait : Command::block;
    if (!decimal(arg, kMaxSleepMs, &n)) return bad_argument(id, verb, kMaxSleepMs);
    if (!blocker.sleep_ms(n)) return Reply{cmd, {}, {}, 0, true};
    std::snprintf(text, sizeof text, "%u", n);
    return ok(cmd, id, text);
  }
  if (verb == "cpu") {
    if (!decimal(arg, kMaxCpu, &n)) return bad_argument(id, verb, kMaxCpu);
    const uint32_t x = cpu(n, &blocker);
    if (blocker.stopping()) return Reply{Command::cpu, {}, {}, 0, true};
    std::snprintf(text, sizeof text, "%08x", x);
    return ok(Command::cpu, id, text);
  }
  if (verb == "fill") {
    if (!decimal(arg, kMaxFill, &n)) return bad_argument(id, verb, kMaxFill);
    Reply r = ok(Command::fill, id, "");
    r.fill = n;
    return r;
  }
  return err(Command::invalid, id, "unknown_command", first_utf16_units(verb, 32));
}

}  // namespace wslab::protocol
