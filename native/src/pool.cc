#include "pool.h"

#include <string.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <vector>

#include "handshake.h"
#include "listener.h"
#include "spawn.h"

namespace wslab {

namespace {

// Thread ownership: the workers are created by the constructor (on the JS thread, in startThreadsServer) and joined
// by join() (Server::stop(), off the JS thread). Queued sockets are owned by the queue until a worker pops one.
class Pool final : public Dispatcher {
 public:
  explicit Pool(Server& server) : server_(server), c_(server.counters()), limit_(server.options().queue_limit) {
    const size_t n = server.options().pool;
    workers_.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      pthread_t tid;
      const int rc = spawn(&tid, server.options().thread_stack, &Pool::entry, this);
      if (rc != 0) {
        stop();
        join();
        throw StartError(rc == EAGAIN ? "EAGAIN" : "E" + std::to_string(rc),
                         "pool worker " + std::to_string(i + 1) + " of " + std::to_string(n) + ": " + strerror(rc));
      }
      workers_.push_back(tid);
    }
  }

  void dispatch(int fd, Clock::time_point accepted) override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (queue_.size() < idle_ + limit_) {
        queue_.push_back(Queued{fd, accepted});
        c_.queued.fetch_add(1, std::memory_order_relaxed);
        cv_.notify_one();
        return;
      }
    }
    // Queue full: refused at once with 503, counted (on the accept thread, which is the caller).
    static const std::string kQueueFull = handshake::refusal(503, "every worker is busy and the queue is full (--queue-limit)");
    c_.reject(RejectReason::queue_full);
    refuse_now(server_, fd, kQueueFull);
  }

  void stop() override {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
    for (const Queued& q : queue_) {
      server_.close_socket(q.fd);  // never handshaken: the TCP connection just ends
      c_.queued.fetch_sub(1, std::memory_order_relaxed);
      c_.close(CloseReason::going_away);
    }
    queue_.clear();
    cv_.notify_all();
  }

  void join() override {
    for (pthread_t t : workers_) pthread_join(t, nullptr);
    workers_.clear();
  }

 private:
  struct Queued {
    int fd;
    Clock::time_point accepted;
  };

  static void* entry(void* self) {
    static_cast<Pool*>(self)->work();
    return nullptr;
  }

  void work() {
    c_.free.fetch_add(1, std::memory_order_relaxed);
    for (;;) {
      Queued q;
      {
        std::unique_lock<std::mutex> lk(mu_);
        ++idle_;
        cv_.wait(lk, [this] { return stopping_ || !queue_.empty(); });
        --idle_;
        if (stopping_) break;
        q = queue_.front();
        queue_.pop_front();
        c_.queued.fetch_sub(1, std::memory_order_relaxed);
      }
      StateScope busy(c_.free, c_.reading);
      serve(server_, q.fd, q.accepted);
    }
    c_.free.fetch_sub(1, std::memory_order_relaxed);
  }

  Server& server_;
  Counters& c_;
  const size_t limit_;
  std::vector<pthread_t> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Queued> queue_;
  size_t idle_ = 0;  // workers waiting on cv_
  bool stopping_ = false;
};

}  // namespace

std::unique_ptr<Dispatcher> make_pool(Server& server) { return std::make_unique<Pool>(server); }

}  // namespace wslab
