#include "handshake.h"

#include <cstring>

namespace wslab::handshake {

namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True when a comma-separated header value has `token` among its elements (case-insensitive).
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// A key is base64 of 16 bytes: 22 base64 characters and "==" (as ws checks it).
bool key_ok(std::string_view k) {
  if (k.size() != 24 || k[22] != '=' || k[23] != '=') return false;
  for (size_t i = 0; i < 22; ++i) {
    const char c = k[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
      return false;
  }
  return true;
}

const char* status_text(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 405: return "Method Not Allowed";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

std::string response(int status, std::string_view why, std::string_view extra_header) {
  std::string body = "wslab: ";
  body += why;
  body += '\n';
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) +
                  "\r\nConnection: close\r\nContent-Type: text/plain\r\n";
  r += extra_header;
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  r += body;
  return r;
}

Result bad(std::string_view why, RejectReason reason = RejectReason::bad_request, int status = 400) {
  const std::string_view extra = reason == RejectReason::bad_version ? "Sec-WebSocket-Version: 13\r\n"
                                 : status == 426                     ? "Upgrade: websocket\r\n"
                                                                     : "";
  return Result{false, response(status, why, extra), reason};
}

}  // namespace

size_t head_end(std::string_view buf, size_t from) {
  const size_t at = buf.find("\r\n\r\n", from >= 3 ? from - 3 : 0);
  return at == std::string_view::npos ? 0 : at + 4;
}

Result answer(std::string_view head) {
  size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  // Only path "/" (a query string is allowed and ignored), as every design serves the protocol on "/".
  if (line.substr(0, 4) != "GET ") return bad("method must be GET", RejectReason::method, 405);
  const size_t sp = line.find(' ', 4);
  if (sp == std::string_view::npos || line.substr(sp + 1) != "HTTP/1.1") return bad("expected HTTP/1.1");
  const std::string_view target = line.substr(4, sp - 4);
  if (target != "/" && target.substr(0, 2) != "/?") return bad("path must be /");

  bool upgrade = false, connection = false, version = false;
  std::string_view key;
  head.remove_prefix(eol + 2);
  while (!head.empty()) {
    eol = head.find("\r\n");
    const std::string_view h = head.substr(0, eol);
    head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 2);
    if (h.empty()) break;
    const size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return bad("malformed header line");
    const std::string_view name = h.substr(0, colon), value = trim(h.substr(colon + 1));
    if (iequals(name, "upgrade")) upgrade = upgrade || has_token(value, "websocket");
    else if (iequals(name, "connection")) connection = connection || has_token(value, "upgrade");
    else if (iequals(name, "sec-websocket-version")) version = value == "13";
    else if (iequals(name, "sec-websocket-key")) key = value;
  }
  if (!upgrade || !connection)
    return bad("WebSocket upgrade required (Upgrade: websocket, Connection: upgrade)", RejectReason::bad_request, 426);
  if (!key_ok(key)) return bad("Sec-WebSocket-Key missing or invalid");
  if (!version) return bad("Sec-WebSocket-Version: 13 required", RejectReason::bad_version);
  std::string r = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Accept: ";
  r += accept_key(key);
  r += "\r\n\r\n";
  return Result{true, std::move(r)};
}

std::string refusal(int status, std::string_view why) { return response(status, why, ""); }

std::string accept_key(std::string_view key) {
  char buf[64 + 36];
  const size_t n = key.size() < 64 ? key.size() : 64;
  std::memcpy(buf, key.data(), n);
  std::memcpy(buf + n, kGuid.data(), kGuid.size());
  uint8_t digest[20];
  sha1(reinterpret_cast<const uint8_t*>(buf), n + kGuid.size(), digest);
  return base64(digest, sizeof digest);
}

// FIPS 180-4 SHA-1; only ever hashes ~60 bytes here, so clarity over speed.
void sha1(const uint8_t* data, size_t len, uint8_t out[20]) {
  uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  const uint64_t bits = static_cast<uint64_t>(len) * 8;
  const size_t total = ((len + 8) / 64 + 1) * 64;  // message + 0x80 + zero padding + 64-bit length
  for (size_t off = 0; off < total; off += 64) {
    uint8_t block[64];
    for (size_t i = 0; i < 64; ++i) {
      const size_t at = off + i;
      if (at < len) block[i] = data[at];
      else if (at == len) block[i] = 0x80;
      else if (at >= total - 8) block[i] = static_cast<uint8_t>(bits >> (8 * (total - 1 - at)));
      else block[i] = 0;
    }
    uint32_t w[80];
    for (int i = 0; i < 16; ++i)
      w[i] = (uint32_t{block[4 * i]} << 24) | (uint32_t{block[4 * i + 1]} << 16) | (uint32_t{block[4 * i + 2]} << 8) |
             uint32_t{block[4 * i + 3]};
    for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
      uint32_t f, k;
      if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
      else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
      else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
      else { f = b ^ c ^ d; k = 0xCA62C1D6; }
      const uint32_t t = rol(a, 5) + f + e + k + w[i];
      e = d; d = c; c = rol(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
  }
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 4; ++j) out[4 * i + j] = static_cast<uint8_t>(h[i] >> (24 - 8 * j));
}

std::string base64(const uint8_t* d, size_t n) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t v = (uint32_t{d[i]} << 16) | (i + 1 < n ? uint32_t{d[i + 1]} << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < n ? kAlphabet[v & 63] : '=';
  }
  return out;
}

}  // namespace wslab::handshake
