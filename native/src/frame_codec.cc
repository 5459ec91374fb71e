#include "frame_codec.h"

#include <cstring>

namespace wslab::frame {

bool head_ok(const Head& h) {
  if (h.rsv != 0 || !h.masked) return false;  // no extensions are negotiated; client frames must be masked
  switch (h.opcode) {
    case kContinuation: case kText: case kBinary: return true;
    case kClose: case kPing: case kPong: return h.fin && h.len7 <= kMaxControlPayload;
    default: return false;
  }
}

bool ext_length(const uint8_t* p, size_t n, uint64_t* out) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
  *out = v;
  return !(n == 8 && (p[0] & 0x80));
}

void unmask(uint8_t* p, size_t n, const uint8_t key[4], uint64_t offset) {
  uint8_t k[8];
  for (size_t i = 0; i < 8; ++i) k[i] = key[(offset + i) & 3];
  uint64_t k64;
  std::memcpy(&k64, k, 8);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    w ^= k64;
    std::memcpy(p + i, &w, 8);
  }
  for (; i < n; ++i) p[i] ^= k[i & 7];
}

size_t write_header(uint8_t out[kMaxServerHeader], uint8_t opcode, uint64_t len) {
  out[0] = static_cast<uint8_t>(0x80 | opcode);
  if (len < 126) {
    out[1] = static_cast<uint8_t>(len);
    return 2;
  }
  if (len <= 0xFFFF) {
    out[1] = 126;
    out[2] = static_cast<uint8_t>(len >> 8);
    out[3] = static_cast<uint8_t>(len);
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<uint8_t>(len >> (56 - 8 * i));
  return 10;
}

bool close_code_ok(uint16_t c) {
  return (c >= 1000 && c <= 1014 && c != 1004 && c != 1005 && c != 1006) || (c >= 3000 && c <= 4999);
}

bool Utf8::feed(const uint8_t* p, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (need_ == 0) {
      // ASCII fast path, eight bytes at a time
      while (i + 8 <= n) {
        uint64_t w;
        std::memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ULL) break;
        i += 8;
      }
      if (i == n) break;
      const uint8_t c = p[i++];
      if (c < 0x80) continue;
      lo_ = 0x80;
      hi_ = 0xBF;
      if (c >= 0xC2 && c <= 0xDF) {
        need_ = 1;
      } else if (c >= 0xE0 && c <= 0xEF) {
        need_ = 2;
        if (c == 0xE0) lo_ = 0xA0;       // overlong
        else if (c == 0xED) hi_ = 0x9F;  // surrogates
      } else if (c >= 0xF0 && c <= 0xF4) {
        need_ = 3;
        if (c == 0xF0) lo_ = 0x90;       // overlong
        else if (c == 0xF4) hi_ = 0x8F;  // > U+10FFFF
      } else {
        return false;
      }
    } else {
      const uint8_t c = p[i++];
      if (c < lo_ || c > hi_) return false;
      --need_;
      lo_ = 0x80;
      hi_ = 0xBF;
    }
  }
  return true;
}

}  // namespace wslab::frame
