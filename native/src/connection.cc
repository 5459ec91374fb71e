#include "connection.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <string_view>

#include "frame_codec.h"
#include "handshake.h"
#include "protocol.h"
#include "spawn.h"

namespace wslab {

namespace {

constexpr size_t kReadBuf = 2048;            // header bytes and small frames; big payloads are read in place
constexpr size_t kKeepMessage = 1024;        // a message buffer larger than this is freed after its message
constexpr size_t kPayloadStep = 1 << 20;     // payload is read (and the message buffer grown) this much at a time
constexpr int kLingerMs = 1000;              // after our close frame, how long we wait for the client's FIN
constexpr size_t kLingerBytes = 1 << 20;     // ... and how much we read and discard meanwhile
constexpr size_t kMaxIov = 32;

// `fill` replies are written from this buffer, never materialised.
constexpr size_t kFillChunk = 16384;
constexpr std::array<char, kFillChunk> make_fill() {
  std::array<char, kFillChunk> a{};
  for (size_t i = 0; i < kFillChunk; ++i) a[i] = 'x';
  return a;
}
constexpr std::array<char, kFillChunk> kFill = make_fill();

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// `ms` 0 or kNoTimeout: no timeout (the call blocks until it can proceed).
void set_timeout(int fd, int opt, uint32_t ms) {
  if (ms == kNoTimeout) ms = 0;
  timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

enum class Io { ok, eof, idle, failed };
constexpr uint8_t kRaw = 0;  // write() without a frame header (HTTP responses); servers never send continuations
enum class Sent { ok, stalled_between_frames, stalled_mid_frame, failed };

// Why the connection ends. `code` 0: no close frame (the TCP connection just ends).
struct End {
  CloseReason reason;
  uint16_t code = 0;
  const char* text = "";
  bool answered = false;  // an HTTP error response was written: linger so that the client can read it
};

class Connection final : public protocol::Blocker {
 public:
  Connection(Server& s, int fd, Clock::time_point accepted)
      : server_(s), c_(s.counters()), opt_(s.options()), fd_(fd), accepted_(accepted),
        send_timeout_ms_(opt_.send_timeout_ms()) {
    link_.fd = fd;
  }

  void run() {
    if (!server_.enter(&link_)) {  // stop() already ran its wake-up pass
      server_.close_socket(fd_);
      c_.close(CloseReason::going_away);
      return;
    }
    End end{CloseReason::error};
    try {
      set_timeout(fd_, SO_SNDTIMEO, send_timeout_ms_);
      const std::optional<End> failed = handshake();
      end = failed ? *failed : frames();
    } catch (const std::bad_alloc&) {
      // Out of memory for a message or the request head: this connection goes, the process stays.
      end = open_ && writable_ ? End{CloseReason::too_big, frame::kTooBig} : End{CloseReason::error};
    } catch (...) {
      end = End{CloseReason::error};  // nothing may escape a connection thread (std::terminate)
    }
    finish(end);
  }

  bool sleep_ms(uint32_t ms) override { return server_.sleep_ms(ms); }
  bool stopping() const override { return server_.stopping(); }

 private:
  // ---- handshake ------------------------------------------------------------------------------------------------

  std::optional<End> handshake() {
    // The handshake timeout runs from accept(), queue time included, as the loops' deadline does. Counted from when a
    // pool worker takes the socket, a queue of slowloris connections would hold the pool for (queued / workers)
    // timeouts; from accept, a worker drops a queued connection whose time is up at once, and the pool is free
    // again within one handshake timeout of the attack.
    const auto deadline = accepted_ + std::chrono::milliseconds(opt_.handshake_timeout_ms);
    std::string req;
    size_t end = 0;
    while (end == 0) {
      if (stopping()) return End{CloseReason::going_away};
      if (opt_.handshake_timeout_ms > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return End{CloseReason::handshake_timeout};
        set_timeout(fd_, SO_RCVTIMEO, static_cast<uint32_t>(left));
      }
      // At most kReadBuf per read, so what follows the head (a client may pipeline frames) fits in buf_.
      const size_t old = req.size();
      req.resize(old + kReadBuf);
      const ssize_t n = ::recv(fd_, &req[old], kReadBuf, 0);
      const int err = errno;
      req.resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
      if (n < 0) {
        if (err == EINTR) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) return End{CloseReason::handshake_timeout};
        return End{CloseReason::error};
      }
      if (n == 0) return End{stopping() ? CloseReason::going_away : CloseReason::error};
      end = handshake::head_end(req, old);
      if (end == 0 && req.size() > handshake::kMaxRequestHead) return refused(too_large(), RejectReason::headers_too_large);
    }
    if (end > handshake::kMaxRequestHead) return refused(too_large(), RejectReason::headers_too_large);
    handshake::Result res = handshake::answer(std::string_view(req.data(), end));
    if (!res.ok) return refused(res.response, res.reason);
    rend_ = req.size() - end;
    std::memcpy(buf_, req.data() + end, rend_);
    std::string().swap(req);

    // Counted before the 101 is written, so a client that has read it already sees itself in stats().
    open_ = true;
    c_.accepted.fetch_add(1, std::memory_order_relaxed);
    c_.open.fetch_add(1, std::memory_order_relaxed);
    c_.handshake.observe(seconds_since(accepted_));
    if (!write_raw(res.response)) return End{CloseReason::error};

    // idle/2 without a byte: ping; another idle/2: close. 0 = block forever.
    const uint32_t idle = opt_.idle_timeout_ms;
    set_timeout(fd_, SO_RCVTIMEO, idle == 0 ? 0 : idle < 2 ? 1 : idle / 2);
    if (opt_.max_backpressure > 0) {
      // The send budget: the kernel queues at most this many bytes not yet sent to the peer, and a write (or poll for
      // POLLOUT) waits while that many are queued. Unlike a small SO_SNDBUF it does not limit bytes in flight, which
      // on loopback collapses throughput to one 64 KiB segment per delayed ACK (8 MiB took 4 s with a 64 KiB SO_SNDBUF).
      const uint64_t b = opt_.max_backpressure;
      const int v = b > (1u << 30) ? (1 << 30) : static_cast<int>(b);
      setsockopt(fd_, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, sizeof v);
    }
    return std::nullopt;
  }

  static const std::string& too_large() {
    static const std::string r = handshake::refusal(431, "request head over 8 KiB");
    return r;
  }

  // An upgrade refused with an HTTP answer: counted by cause here, as a `rejected` close by finish().
  End refused(const std::string& response, RejectReason why) {
    c_.reject(why);
    write_raw(response);
    return End{CloseReason::rejected, 0, "", true};
  }

  bool write_raw(std::string_view s) { return write(kRaw, s, {}, 0, send_timeout_ms_, false) == Sent::ok; }

  // ---- frames ---------------------------------------------------------------------------------------------------

  End frames() {
    for (;;) {
      if (stopping()) return shutting_down();
      Io r = fill(2);
      if (r != Io::ok) return io_end(r);
      const frame::Head h = frame::Head::parse(buf_[rpos_], buf_[rpos_ + 1]);
      if (!frame::head_ok(h)) return End{CloseReason::protocol_error, frame::kProtocolError};
      const size_t head_len = 2 + h.ext_bytes() + 4;
      if ((r = fill(head_len)) != Io::ok) return io_end(r);
      uint64_t len = h.len7;
      if (h.ext_bytes() && !frame::ext_length(buf_ + rpos_ + 2, h.ext_bytes(), &len))
        return End{CloseReason::protocol_error, frame::kProtocolError};
      uint8_t key[4];
      std::memcpy(key, buf_ + rpos_ + head_len - 4, 4);
      rpos_ += head_len;

      if (h.control()) {
        uint8_t payload[frame::kMaxControlPayload];
        if ((r = read_exact(payload, len)) != Io::ok) return io_end(r);
        frame::unmask(payload, len, key, 0);
        if (std::optional<End> e = control(h.opcode, payload, len)) return *e;
        continue;
      }
      if (h.opcode == frame::kContinuation) {
        if (!in_message_) return End{CloseReason::protocol_error, frame::kProtocolError};
      } else {
        if (in_message_) return End{CloseReason::protocol_error, frame::kProtocolError};
        in_message_ = true;
        msg_opcode_ = h.opcode;
        utf8_.reset();
      }
      // Checked on the declared length, before a byte of payload is read or allocated.
      if (len > opt_.max_payload - msg_.size()) return End{CloseReason::too_big, frame::kTooBig};
      // Read in steps, so that memory follows the bytes that actually arrived (not what a client declared) and
      // invalid UTF-8 is refused as soon as it arrives, even inside one large frame.
      for (uint64_t off = 0; off < len;) {
        const size_t step = static_cast<size_t>(std::min<uint64_t>(len - off, kPayloadStep));
        const size_t at = msg_.size();
        msg_.resize(at + step);
        uint8_t* p = reinterpret_cast<uint8_t*>(&msg_[0]) + at;
        if ((r = read_exact(p, step)) != Io::ok) return io_end(r);
        frame::unmask(p, step, key, off);
        if (msg_opcode_ == frame::kText && !utf8_.feed(p, step))
          return End{CloseReason::protocol_error, frame::kInvalidPayload};
        off += step;
      }
      if (!h.fin) continue;
      if (msg_opcode_ == frame::kText && !utf8_.complete())
        return End{CloseReason::protocol_error, frame::kInvalidPayload};
      in_message_ = false;
      if (std::optional<End> e = message()) return *e;
      if (msg_.capacity() > kKeepMessage) std::string().swap(msg_);
      else msg_.clear();
    }
  }

  std::optional<End> control(uint8_t opcode, const uint8_t* p, size_t n) {
    if (opcode == frame::kPong) return std::nullopt;
    if (opcode == frame::kPing) {
      const Sent s = write(frame::kPong, std::string_view(reinterpret_cast<const char*>(p), n), {}, 0,
                           send_timeout_ms_, false);
      return s == Sent::ok ? std::nullopt : std::optional<End>(send_end(s));
    }
    // Close: echo the client's status code (1000 when it sent none), count it as a normal close.
    if (n == 1) return End{CloseReason::protocol_error, frame::kProtocolError};
    uint16_t code = frame::kNormal;
    if (n >= 2) {
      code = static_cast<uint16_t>((p[0] << 8) | p[1]);
      if (!frame::close_code_ok(code)) return End{CloseReason::protocol_error, frame::kProtocolError};
      if (!frame::valid_utf8(p + 2, n - 2)) return End{CloseReason::protocol_error, frame::kInvalidPayload};
    }
    return End{CloseReason::normal, code};
  }

  std::optional<End> message() {
    c_.messages_received.fetch_add(1, std::memory_order_relaxed);
    c_.bytes_received.fetch_add(msg_.size(), std::memory_order_relaxed);
    StateScope working(c_.reading, c_.working);
    const auto t0 = Clock::now();
    const std::string_view body(msg_.data(), msg_.size());
    Command cmd = Command::binary;
    Sent s;
    size_t size = body.size();
    if (msg_opcode_ == frame::kBinary) {
      s = write(frame::kBinary, {}, body, 0, send_timeout_ms_, true);
    } else {
      const protocol::Reply reply = run_command(body);
      if (reply.interrupted) return shutting_down();
      cmd = reply.command;
      size = reply.size();
      s = write(frame::kText, reply.head, reply.body, reply.fill, send_timeout_ms_, true);
    }
    if (s != Sent::ok) {
      if (s != Sent::failed) c_.send_dropped.fetch_add(1, std::memory_order_relaxed);
      return send_end(s);
    }
    c_.messages_sent.fetch_add(1, std::memory_order_relaxed);
    c_.bytes_sent.fetch_add(size, std::memory_order_relaxed);
    c_.command(cmd).observe(seconds_since(t0));
    return std::nullopt;
  }

  // The command on this thread, or with --thread-per-task on a new one that this thread spawns and joins (the seed's
  // "every step a new thread": creation, two switches and the exit are the price). A thread that cannot be created
  // (EAGAIN: out of threads or stack memory) leaves the command to this thread: the connection is still served.
  protocol::Reply run_command(std::string_view body) {
    if (!opt_.task_threads) return protocol::run(body, *this);
    struct Task {
      std::string_view body;
      Connection* self;
      std::optional<protocol::Reply> reply;
    } task{body, this, std::nullopt};
    pthread_t t;
    const int rc = spawn(&t, opt_.thread_stack, [](void* arg) -> void* {
      auto* k = static_cast<Task*>(arg);
      try {
        k->reply.emplace(protocol::run(k->body, *k->self));
      } catch (...) {  // bad_alloc: the reply stays empty and the command runs again on the connection's thread
      }
      return nullptr;
    }, &task);
    if (rc != 0) return protocol::run(body, *this);
    pthread_join(t, nullptr);
    return task.reply ? std::move(*task.reply) : protocol::run(body, *this);
  }

  End shutting_down() const { return End{CloseReason::going_away, frame::kGoingAway, "server shutting down"}; }

  End io_end(Io r) const {
    switch (r) {
      case Io::idle: return End{CloseReason::idle_timeout, frame::kGoingAway, "idle timeout"};
      case Io::eof: return stopping() ? shutting_down() : End{CloseReason::error};  // TCP ended without a close
      default: return End{CloseReason::error};
    }
  }

  End send_end(Sent s) {
    writable_ = false;
    if (stopping()) return End{CloseReason::going_away};  // close() shut the socket under a blocked write
    switch (s) {
      // Between frames the stream is still well-formed: a 1008 close frame is tried (without waiting).
      case Sent::stalled_between_frames:
        writable_ = true;
        return End{CloseReason::backpressure, frame::kPolicyViolation, "backpressure"};
      // Mid-frame nothing more can be written that the client could parse: the TCP connection just ends.
      case Sent::stalled_mid_frame: return End{CloseReason::backpressure};
      default: return End{CloseReason::error};
    }
  }

  // ---- reading --------------------------------------------------------------------------------------------------

  Io recv_some(uint8_t* dst, size_t cap, size_t* got) {
    for (;;) {
      const ssize_t n = ::recv(fd_, dst, cap, 0);
      if (n > 0) {
        *got = static_cast<size_t>(n);
        ping_sent_ = false;
        return Io::ok;
      }
      if (n == 0) return Io::eof;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return Io::failed;
      // SO_RCVTIMEO (idle/2) passed without a byte: ping first, give up after a second silent half.
      if (ping_sent_) return Io::idle;
      if (write(frame::kPing, {}, {}, 0, send_timeout_ms_, false) != Sent::ok) return Io::failed;
      ping_sent_ = true;
    }
  }

  // Makes at least `n` (<= 14) bytes available at buf_ + rpos_.
  Io fill(size_t n) {
    if (rpos_ == rend_) rpos_ = rend_ = 0;
    else if (kReadBuf - rpos_ < n) {
      std::memmove(buf_, buf_ + rpos_, rend_ - rpos_);
      rend_ -= rpos_;
      rpos_ = 0;
    }
    while (rend_ - rpos_ < n) {
      size_t got;
      const Io r = recv_some(buf_ + rend_, kReadBuf - rend_, &got);
      if (r != Io::ok) return r;
      rend_ += got;
    }
    return Io::ok;
  }

  // Copies `n` payload bytes to dst: buffered bytes first, then small remainders through buf_ (which may pick up the
  // next frames in the same read) and large ones straight into dst.
  Io read_exact(uint8_t* dst, size_t n) {
    for (;;) {
      const size_t take = std::min(n, rend_ - rpos_);
      std::memcpy(dst, buf_ + rpos_, take);
      rpos_ += take;
      dst += take;
      n -= take;
      if (n == 0) return Io::ok;
      size_t got;
      if (n < kReadBuf) {
        rpos_ = rend_ = 0;
        const Io r = recv_some(buf_, kReadBuf, &got);
        if (r != Io::ok) return r;
        rend_ = got;
      } else {
        const Io r = recv_some(dst, n, &got);
        if (r != Io::ok) return r;
        dst += got;
        n -= got;
      }
    }
  }

  // ---- writing --------------------------------------------------------------------------------------------------
  // Only this thread writes to the socket, so frames (pong, ping, reply, close) can never interleave.

  // Writes one frame: header (none for kRaw), `head`, `body`, then `fill` × 'x'.
  // The first attempt does not block. If the kernel takes nothing (its send queue is at the budget), wait up to
  // `wait_ms` for room: no room means a slow reader, caught at a frame boundary. Once part of the frame is written,
  // the rest is written blocking; SO_SNDTIMEO ends a write that makes no progress for the send timeout.
  Sent write(uint8_t opcode, std::string_view head, std::string_view body, size_t fill, uint32_t wait_ms,
             bool data) {
    uint8_t hdr[frame::kMaxServerHeader];
    const uint64_t payload = head.size() + body.size() + fill;
    const size_t hlen = opcode == kRaw ? 0 : frame::write_header(hdr, opcode, payload);
    const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
    const uint64_t total = hlen + payload;
    uint64_t sent = 0;
    if (data) c_.buffered_bytes.fetch_add(static_cast<int64_t>(total), std::memory_order_relaxed);
    Sent result = Sent::ok;
    while (sent < total) {
      iovec iov[kMaxIov];
      size_t cnt = 0;
      uint64_t skip = sent;
      auto add = [&](const void* p, size_t len) {
        if (cnt == kMaxIov) return;
        if (skip >= len) { skip -= len; return; }
        iov[cnt++] = iovec{const_cast<char*>(static_cast<const char*>(p)) + skip, static_cast<size_t>(len - skip)};
        skip = 0;
      };
      add(hdr, hlen);
      add(head.data(), head.size());
      add(body.data(), body.size());
      for (size_t left = fill; left > 0 && cnt < kMaxIov;) {
        const size_t chunk = left < kFillChunk ? left : kFillChunk;
        add(kFill.data(), chunk);
        left -= chunk;
      }
      msghdr mh{};
      mh.msg_iov = iov;
      mh.msg_iovlen = cnt;
      const ssize_t n = ::sendmsg(fd_, &mh, MSG_NOSIGNAL | (sent == 0 ? MSG_DONTWAIT : 0));
      if (n > 0) {
        sent += static_cast<uint64_t>(n);
        if (data) c_.buffered_bytes.fetch_sub(n, std::memory_order_relaxed);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (sent > 0) { result = Sent::stalled_mid_frame; break; }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        pollfd pfd{fd_, POLLOUT, 0};
        const int pr = wait_ms == kNoTimeout ? ::poll(&pfd, 1, -1) : left > 0 ? ::poll(&pfd, 1, static_cast<int>(left)) : 0;
        if (pr > 0 && !(pfd.revents & (POLLERR | POLLHUP))) continue;
        if (pr < 0 && errno == EINTR) continue;
        result = pr > 0 ? Sent::failed : Sent::stalled_between_frames;
        break;
      }
      result = Sent::failed;
      break;
    }
    if (data && sent < total) c_.buffered_bytes.fetch_sub(static_cast<int64_t>(total - sent), std::memory_order_relaxed);
    return result;
  }

  // ---- closing --------------------------------------------------------------------------------------------------

  void finish(const End& e) {
    // Counted first, so a client that has seen our close frame or FIN already sees the close in stats().
    if (open_) c_.open.fetch_sub(1, std::memory_order_relaxed);
    c_.close(e.reason);
    bool linger = e.answered;
    if (open_ && e.code != 0 && writable_) {
      uint8_t p[2 + 32];
      const size_t tlen = std::strlen(e.text) < 32 ? std::strlen(e.text) : 32;
      p[0] = static_cast<uint8_t>(e.code >> 8);
      p[1] = static_cast<uint8_t>(e.code);
      std::memcpy(p + 2, e.text, tlen);
      uint32_t wait = send_timeout_ms_;
      if (e.reason == CloseReason::backpressure) {
        // The budget is full (that is why we are here): let the close frame past it, without waiting. With the
        // linger below it then reaches the client behind the queued replies whenever the client reads again.
        const int unlimited = INT32_MAX;
        setsockopt(fd_, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &unlimited, sizeof unlimited);
        wait = 0;
      }
      linger = write(frame::kClose, std::string_view(reinterpret_cast<char*>(p), 2 + tlen), {}, 0, wait, false) ==
               Sent::ok;
    }
    if (linger) {
      // Half-close and read until the client's FIN, so that our last bytes are not destroyed by an RST (closing a
      // socket with unread data resets it). Bounded in time and bytes; stop() cuts it short via SHUT_RD.
      ::shutdown(fd_, SHUT_WR);
      const auto deadline = Clock::now() + std::chrono::milliseconds(kLingerMs);
      size_t drained = 0;
      while (drained < kLingerBytes) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) break;
        set_timeout(fd_, SO_RCVTIMEO, static_cast<uint32_t>(left));
        const ssize_t n = ::recv(fd_, buf_, kReadBuf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        drained += static_cast<size_t>(n);
      }
    }
    server_.leave(&link_);
    server_.close_socket(fd_);
  }

  Server& server_;
  Counters& c_;
  const Options& opt_;
  const int fd_;
  const Clock::time_point accepted_;
  const uint32_t send_timeout_ms_;
  Link link_;
  bool open_ = false;      // handshake completed
  bool writable_ = true;   // false once a write failed or stalled mid-frame
  bool ping_sent_ = false;
  bool in_message_ = false;
  uint8_t msg_opcode_ = 0;
  frame::Utf8 utf8_;
  std::string msg_;        // the message being assembled (heap only while in use)
  size_t rpos_ = 0, rend_ = 0;
  uint8_t buf_[kReadBuf];
};

}  // namespace

void serve(Server& server, int fd, Clock::time_point accepted) {
  Connection c(server, fd, accepted);
  c.run();
}

}  // namespace wslab
