// counters: every statistic of the threads server as std::atomic, written by connection threads with relaxed
// ordering and read by the JS thread at scrape time (stats()). Connection threads never call into JS.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace wslab {

// The `reason` label of wslab_connections_closed_total, in metrics/connections.ts order.
enum class CloseReason : uint8_t {
  normal, going_away, protocol_error, too_big, idle_timeout, backpressure, handshake_timeout, error, rejected, count_
};
// The `reason` label of wslab_handshakes_rejected_total, in metrics/connections.ts order (REJECT_REASONS).
enum class RejectReason : uint8_t {
  bad_request, bad_version, method, headers_too_large, conn_limit, queue_full, count_
};
// The `command` label of wslab_command_duration_seconds, in metrics/messages.ts order.
enum class Command : uint8_t { echo, wait, block, cpu, fill, binary, invalid, count_ };

constexpr size_t kCloseReasons = static_cast<size_t>(CloseReason::count_);
constexpr size_t kCommands = static_cast<size_t>(Command::count_);
constexpr size_t kRejectReasons = static_cast<size_t>(RejectReason::count_);
extern const char* const kCloseReasonNames[kCloseReasons];
extern const char* const kRejectReasonNames[kRejectReasons];
extern const char* const kCommandNames[kCommands];

// A fixed-bucket histogram: one atomic per bucket (non-cumulative inside, cumulated when read), the sum in ns.
class Histogram {
 public:
  explicit Histogram(const std::vector<double>& bounds);
  void observe(double seconds);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // bounds.size() + 1 entries, the last one is +Inf (== count)
    double sum_seconds;
    uint64_t count;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<uint64_t> sum_ns_{0};
};

struct Counters {
  explicit Counters(const std::vector<double>& bounds);

  std::atomic<int64_t> open{0};       // handshake completed, not yet closed
  std::atomic<uint64_t> accepted{0};  // handshakes completed
  std::array<std::atomic<uint64_t>, kCloseReasons> closed{};
  std::array<std::atomic<uint64_t>, kRejectReasons> rejected{};  // each also ends as closed[rejected]
  // Connection threads by state; their sum is the number of live connection (or pool worker) threads.
  std::atomic<int64_t> working{0}, reading{0}, free{0};
  std::atomic<int64_t> queued{0};
  std::atomic<uint64_t> messages_received{0}, messages_sent{0}, bytes_received{0}, bytes_sent{0};
  std::atomic<int64_t> buffered_bytes{0};
  std::atomic<uint64_t> send_dropped{0};
  Histogram handshake;
  std::vector<std::unique_ptr<Histogram>> commands;  // indexed by Command

  void close(CloseReason r) { closed[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed); }
  void reject(RejectReason r) { rejected[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed); }
  Histogram& command(Command c) { return *commands[static_cast<size_t>(c)]; }
};

// Moves one thread from one state gauge to another for the lifetime of a scope.
class StateScope {
 public:
  StateScope(std::atomic<int64_t>& from, std::atomic<int64_t>& to) : from_(from), to_(to) {
    from_.fetch_sub(1, std::memory_order_relaxed);
    to_.fetch_add(1, std::memory_order_relaxed);
  }
  ~StateScope() {
    to_.fetch_sub(1, std::memory_order_relaxed);
    from_.fetch_add(1, std::memory_order_relaxed);
  }
  StateScope(const StateScope&) = delete;
  StateScope& operator=(const StateScope&) = delete;

 private:
  std::atomic<int64_t>& from_;
  std::atomic<int64_t>& to_;
};

}  // namespace wslab
