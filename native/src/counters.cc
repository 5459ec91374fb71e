#include "counters.h"

#include <cmath>

namespace wslab {

const char* const kCloseReasonNames[kCloseReasons] = {
    "normal", "going_away", "protocol_error", "too_big", "idle_timeout", "backpressure", "handshake_timeout", "error",
    "rejected",
};
const char* const kRejectReasonNames[kRejectReasons] = {
    "bad_request", "bad_version", "method", "headers_too_large", "conn_limit", "queue_full",
};
const char* const kCommandNames[kCommands] = {"echo", "wait", "block", "cpu", "fill", "binary", "invalid"};

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double seconds) {
  size_t i = 0;  // first bound >= seconds ("le" semantics); bounds are few, a linear scan is fine
  while (i < bounds_.size() && seconds > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(std::llround(seconds * 1e9)), std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s{std::vector<uint64_t>(bounds_.size() + 1), 0, 0};
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.count = running;  // taken from the buckets so that count == +Inf bucket in every snapshot
  s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

Counters::Counters(const std::vector<double>& bounds) : handshake(bounds) {
  for (auto& c : closed) c.store(0, std::memory_order_relaxed);
  for (auto& c : rejected) c.store(0, std::memory_order_relaxed);
  for (size_t i = 0; i < kCommands; ++i) commands.emplace_back(new Histogram(bounds));
}

}  // namespace wslab
