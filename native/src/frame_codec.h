// frame_codec: RFC 6455 framing without I/O: header checks for client frames, the server's header serializer,
// unmasking, close-code rules and an incremental UTF-8 validator (text may be split across fragments).
#pragma once

#include <cstddef>
#include <cstdint>

namespace wslab::frame {

enum Opcode : uint8_t { kContinuation = 0x0, kText = 0x1, kBinary = 0x2, kClose = 0x8, kPing = 0x9, kPong = 0xA };

constexpr uint16_t kNormal = 1000, kGoingAway = 1001, kProtocolError = 1002, kPolicyViolation = 1008;
constexpr uint16_t kInvalidPayload = 1007, kTooBig = 1009;
constexpr size_t kMaxControlPayload = 125;
constexpr size_t kMaxServerHeader = 10;  // server frames are never masked

// The first two bytes of a client frame.
struct Head {
  bool fin;
  uint8_t rsv;  // the three RSV bits, shifted down
  uint8_t opcode;
  bool masked;
  uint8_t len7;

  static Head parse(uint8_t b0, uint8_t b1) {
    return Head{(b0 & 0x80) != 0, static_cast<uint8_t>((b0 >> 4) & 0x7), static_cast<uint8_t>(b0 & 0x0F),
                (b1 & 0x80) != 0, static_cast<uint8_t>(b1 & 0x7F)};
  }
  bool control() const { return opcode >= 0x8; }
  // Bytes of extended payload length that follow: 0, 2 or 8.
  size_t ext_bytes() const { return len7 == 126 ? 2 : len7 == 127 ? 8 : 0; }
};

// Checks everything that can be decided from the first two bytes; returns false for a protocol error (1002).
// Non-minimal length encodings are accepted, as ws and uWebSockets accept them.
bool head_ok(const Head& h);

// Decodes the extended length (big endian). Returns false when the 64-bit form has its top bit set (1002).
bool ext_length(const uint8_t* p, size_t n, uint64_t* out);

// XORs `n` payload bytes with the masking key, `offset` bytes into the frame's payload.
void unmask(uint8_t* p, size_t n, const uint8_t key[4], uint64_t offset);

// Writes a FIN frame header for a server (unmasked) frame; returns its length (2, 4 or 10).
size_t write_header(uint8_t out[kMaxServerHeader], uint8_t opcode, uint64_t payload_len);

// Status codes a client may send in a close frame (RFC 6455 §7.4, as ws checks them).
bool close_code_ok(uint16_t code);

// Incremental UTF-8 validator (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF). Fails fast on the
// first bad byte, so a bad fragment is rejected before the message ends.
class Utf8 {
 public:
  bool feed(const uint8_t* p, size_t n);
  bool complete() const { return need_ == 0; }
  void reset() { need_ = 0; lo_ = 0x80; hi_ = 0xBF; }

 private:
  uint8_t need_ = 0, lo_ = 0x80, hi_ = 0xBF;  // continuation bytes still expected; range of the next one
};

inline bool valid_utf8(const uint8_t* p, size_t n) {
  Utf8 v;
  return v.feed(p, n) && v.complete();
}

}  // namespace wslab::frame
