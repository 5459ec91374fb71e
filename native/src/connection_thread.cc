#include "connection_thread.h"

#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <new>

#include "spawn.h"

namespace wslab {

namespace {

// Thread ownership: each connection thread is created by the accept thread (dispatch()) and joined by the *next*
// connection thread to exit, which finds it in `last_` (a chain: at most one exited thread is ever unjoined, and no
// reaper thread or timer is needed). The last one of the chain is joined by join(), i.e. by Server::stop(), once
// `live_` is 0. A thread touches nothing of the server after its final `live_` decrement.
class ThreadPerConnection final : public Dispatcher {
 public:
  explicit ThreadPerConnection(Server& server) : server_(server) {}

  void dispatch(int fd, Clock::time_point accepted) override {
    Job* job = new (std::nothrow) Job{this, fd, accepted};
    {
      std::lock_guard<std::mutex> lk(mu_);
      ++live_;
    }
    pthread_t tid;
    const int rc = job ? spawn(&tid, server_.options().thread_stack, &ThreadPerConnection::entry, job) : ENOMEM;
    if (rc == 0) return;
    // EAGAIN (threads-max, pid_max, RLIMIT_NPROC, memory for the stack): refuse this connection, keep serving.
    delete job;
    server_.close_socket(fd);
    server_.counters().close(CloseReason::error);
    std::lock_guard<std::mutex> lk(mu_);
    if (--live_ == 0) cv_.notify_all();
  }

  void stop() override {}

  void join() override {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [this] { return live_ == 0; });
    if (has_last_) pthread_join(last_, nullptr);
    has_last_ = false;
  }

 private:
  struct Job {  // owned by the new thread, which deletes it first thing
    ThreadPerConnection* self;
    int fd;
    Clock::time_point accepted;
  };

  static void* entry(void* arg) {
    const Job job = *static_cast<Job*>(arg);
    delete static_cast<Job*>(arg);
    Counters& c = job.self->server_.counters();
    c.reading.fetch_add(1, std::memory_order_relaxed);
    serve(job.self->server_, job.fd, job.accepted);
    c.reading.fetch_sub(1, std::memory_order_relaxed);
    job.self->exited();
    return nullptr;
  }

  void exited() {
    pthread_t prev{};
    bool had_prev;
    {
      std::lock_guard<std::mutex> lk(mu_);
      had_prev = has_last_;
      prev = last_;
      last_ = pthread_self();
      has_last_ = true;
    }
    if (had_prev) pthread_join(prev, nullptr);  // prev has passed its own decrement: this returns promptly
    std::lock_guard<std::mutex> lk(mu_);
    if (--live_ == 0) cv_.notify_all();
  }

  Server& server_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t live_ = 0;  // spawned and not yet finished with the server
  pthread_t last_{};
  bool has_last_ = false;
};

}  // namespace

std::unique_ptr<Dispatcher> make_thread_per_connection(Server& server) {
  return std::make_unique<ThreadPerConnection>(server);
}

}  // namespace wslab
