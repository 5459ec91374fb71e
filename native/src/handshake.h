// handshake: the HTTP/1.1 upgrade request (RFC 6455 §4.2.1) without I/O: parse and check the request head, compute
// Sec-WebSocket-Accept (self-contained SHA-1 and base64: no OpenSSL), and build the 101 and 400 responses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "counters.h"

namespace wslab::handshake {

constexpr size_t kMaxRequestHead = 8192;  // a larger request head is refused with 431 (as every design: docs/defenses.md)

// Offset just past the "\r\n\r\n" ending the request head, searching from `from`; 0 when not there yet.
size_t head_end(std::string_view buf, size_t from);

struct Result {
  bool ok;
  std::string response;  // 101 Switching Protocols, or the refusal naming what was wrong
  RejectReason reason = RejectReason::bad_request;  // when !ok
};
// Checks a complete request head (GET / HTTP/1.1, Upgrade: websocket, Connection: upgrade, a key, version 13) in the
// order and with the statuses of server/upgrade-check.ts: 405 method, 426 not an upgrade, 400 key / version / syntax.
Result answer(std::string_view head);

// A complete HTTP refusal with `Connection: close` (429, 431, 503, ...); `why` is its one-line body.
std::string refusal(int status, std::string_view why);

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + RFC 6455 GUID)).
std::string accept_key(std::string_view key);

void sha1(const uint8_t* data, size_t len, uint8_t out[20]);
std::string base64(const uint8_t* data, size_t len);

}  // namespace wslab::handshake
