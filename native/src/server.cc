#include "server.h"

#include <sys/socket.h>
#include <unistd.h>

#include "connection_thread.h"
#include "listener.h"
#include "pool.h"

namespace wslab {

namespace {
// How long stop() lets connection threads finish on their own (close frame, short linger) before it also shuts the
// write side of what is left, which fails a send blocked on a client that does not read.
constexpr auto kStopGrace = std::chrono::milliseconds(2000);
}  // namespace

uint32_t Options::send_timeout_ms() const {
  if (!defenses) return kNoTimeout;
  if (idle_timeout_ms == 0) return 2000;
  const uint32_t half = idle_timeout_ms / 2;
  return half < 100 ? 100 : half > 2000 ? 2000 : half;
}

Server::Server(const Options& options)
    : options_(options), counters_(options.histogram_bounds), address_limit_(options.max_conns_per_ip) {}

void Server::close_socket(int fd) {
  address_limit_.release(fd);
  ::close(fd);
}

Server::~Server() { stop(); }  // a no-op after close(); otherwise never free memory threads still use

std::unique_ptr<Server> Server::start(const Options& options) {
  std::unique_ptr<Server> s(new Server(options));
  s->listener_ = std::make_unique<Listener>(options.host, options.port);  // throws on bind/listen failure
  s->port_ = s->listener_->port();
  s->dispatcher_ = options.pool > 0 ? make_pool(*s) : make_thread_per_connection(*s);  // the pool spawns here
  try {
    s->listener_->start(*s, *s->dispatcher_, options.thread_stack);
  } catch (...) {
    s->stop();
    throw;
  }
  return s;
}

bool Server::enter(Link* link) {
  std::lock_guard<std::mutex> lk(registry_mu_);
  if (stopping()) return false;  // read under the lock: stop() either sees this link or we see its flag
  link->prev = nullptr;
  link->next = registry_;
  if (registry_) registry_->prev = link;
  registry_ = link;
  return true;
}

void Server::leave(Link* link) {
  std::lock_guard<std::mutex> lk(registry_mu_);
  if (link->prev) link->prev->next = link->next;
  else registry_ = link->next;
  if (link->next) link->next->prev = link->prev;
  link->prev = link->next = nullptr;
  if (registry_ == nullptr && stopping()) registry_cv_.notify_all();
}

bool Server::sleep_ms(uint32_t ms) {
  std::unique_lock<std::mutex> lk(sleep_mu_);
  return !sleep_cv_.wait_for(lk, std::chrono::milliseconds(ms), [this] { return stopping(); });
}

void Server::wake_all(int how) {
  // Caller holds registry_mu_. shutdown() of the read side makes a blocked recv() return 0 at once.
  for (Link* l = registry_; l != nullptr; l = l->next) ::shutdown(l->fd, how);
}

void Server::stop() {
  std::lock_guard<std::mutex> once(stop_mu_);
  if (stopped_.load()) return;
  {
    std::lock_guard<std::mutex> lk(registry_mu_);
    stopping_.store(true);
  }
  if (listener_) listener_->stop();      // no new connections: joins the accept thread
  if (dispatcher_) dispatcher_->stop();  // queued sockets closed, idle workers released
  {
    std::unique_lock<std::mutex> lk(registry_mu_);
    wake_all(SHUT_RD);
  }
  {
    std::lock_guard<std::mutex> lk(sleep_mu_);
    sleep_cv_.notify_all();
  }
  {
    std::unique_lock<std::mutex> lk(registry_mu_);
    if (!registry_cv_.wait_for(lk, kStopGrace, [this] { return registry_ == nullptr; })) {
      wake_all(SHUT_RDWR);
      registry_cv_.wait(lk, [this] { return registry_ == nullptr; });
    }
  }
  if (dispatcher_) dispatcher_->join();
  stopped_.store(true);
}

}  // namespace wslab
