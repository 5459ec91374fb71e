// server: one running threads server. Owns the listener (accept thread), the dispatcher (thread per connection or
// fixed pool), the counters, and the registry of connections being served, which is how stop() reaches every
// connection thread: shutdown(fd, SHUT_RD) wakes a thread blocked in recv(), a condition variable wakes one sleeping in
// `wait`/`block`, and each thread then writes its own 1001 close frame (a connection has exactly one writer, its
// thread, so frames never interleave and stop() never writes to a socket).
#pragma once

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "address_limit.h"
#include "counters.h"

namespace wslab {

using Clock = std::chrono::steady_clock;

constexpr uint32_t kNoTimeout = UINT32_MAX;  // a send timeout of "block as long as it takes" (--no-defenses)

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  uint32_t pool = 0;                // 0: a thread per connection; N: N workers and a bounded queue
  uint32_t queue_limit = 4096;
  size_t thread_stack = 256 * 1024;
  bool task_threads = false;        // each command runs on a new thread (spawned, joined), as "a thread per task" does
  uint64_t max_payload = 1024 * 1024;
  uint32_t idle_timeout_ms = 120000;
  uint64_t max_backpressure = 1024 * 1024;
  uint32_t handshake_timeout_ms = 10000;
  uint32_t max_conns_per_ip = 0;    // 0: no limit
  bool defenses = true;             // false (--no-defenses): a write blocks as long as the client does not read
  std::vector<double> histogram_bounds;

  // A write that cannot make progress for this long ends the connection as a slow reader ('backpressure'): half the
  // idle timeout, within 100 ms..2 s; 2 s when there is no idle timeout; kNoTimeout without defenses. (The loop
  // designs drop a slow reader the moment its buffer passes the budget; a blocking writer can only notice that it
  // has stopped moving.)
  uint32_t send_timeout_ms() const;
};

// Start failures (bind, listen, thread creation) with an errno-style code for JS (`EADDRINUSE`, ...).
struct StartError : std::runtime_error {
  StartError(std::string code, const std::string& message) : std::runtime_error(message), code(std::move(code)) {}
  std::string code;
};

// A connection being served; lives on its thread's stack and is linked into the registry while served.
struct Link {
  int fd = -1;
  Link* prev = nullptr;
  Link* next = nullptr;
};

// Hands accepted sockets to threads: thread per connection (connection_thread.cc) or a fixed pool (pool.cc).
class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  // Takes ownership of `fd`; a socket it cannot place is closed at once: a full pool queue answers 503 and counts a
  // `queue_full` rejection, a thread that cannot be created counts 'error'.
  virtual void dispatch(int fd, Clock::time_point accepted) = 0;
  // Called once the accept thread is gone: close queued sockets, let idle workers exit.
  virtual void stop() = 0;
  // Joins every thread this dispatcher created; returns when all have exited.
  virtual void join() = 0;
};

class Listener;

class Server {
 public:
  // Binds, listens and starts the threads; throws StartError. Blocking: run it where a short block is fine.
  static std::unique_ptr<Server> start(const Options& options);
  ~Server();  // stops first if still running (blocking)

  int port() const { return port_; }
  Counters& counters() { return counters_; }
  AddressLimit& address_limit() { return address_limit_; }
  // Every accepted socket is closed here: its --max-conns-per-ip count is released first.
  void close_socket(int fd);
  const Options& options() const { return options_; }

  // Closes every connection with 1001, stops accepting and joins every thread. Blocking (runs off the JS thread),
  // idempotent and safe to call from several threads: later callers return when the first one has finished.
  void stop();
  bool stopped() const { return stopped_.load(); }

  // For connection threads.
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  bool enter(Link* link);  // registers; false when stopping (the caller closes the socket without serving it)
  void leave(Link* link);  // unregisters; always before the fd is closed, so stop() never touches a reused fd
  bool sleep_ms(uint32_t ms);  // interruptible sleep; false when cut short by stop()

 private:
  explicit Server(const Options& options);
  void wake_all(int how);

  Options options_;
  Counters counters_;
  AddressLimit address_limit_;
  int port_ = 0;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};

  std::mutex registry_mu_;
  std::condition_variable registry_cv_;  // signalled when the registry empties during stop()
  Link* registry_ = nullptr;

  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;

  std::mutex stop_mu_;
};

// Serves one accepted socket to the end (handshake, frames, close) on the calling thread, then closes it and counts
// the close. Defined in connection.cc; called by connection threads and pool workers.
void serve(Server& server, int fd, Clock::time_point accepted);

}  // namespace wslab
