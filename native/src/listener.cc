#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

#include "handshake.h"
#include "spawn.h"

namespace wslab {

namespace {

constexpr int kBacklog = 4096;     // the kernel caps it at net.core.somaxconn
constexpr int kBackoffMs = 50;     // after EMFILE/ENFILE/ENOBUFS, instead of spinning on a readable listen fd

std::string errno_code(int e) {
  switch (e) {
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EACCES: return "EACCES";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    default: return "E" + std::to_string(e);
  }
}

}  // namespace

Listener::Listener(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  const int gai = getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
  const std::string where = host + ":" + service;
  if (gai != 0) throw StartError("ENOTFOUND", "listen ENOTFOUND " + where + ": " + gai_strerror(gai));
  int err = 0;
  for (addrinfo* a = list; a != nullptr && fd_ < 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) { err = errno; continue; }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, kBacklog) == 0) {
      fd_ = fd;
    } else {
      err = errno;
      ::close(fd);
    }
  }
  freeaddrinfo(list);
  if (fd_ < 0) throw StartError(errno_code(err), "listen " + errno_code(err) + ": " + strerror(err) + " " + where);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                         : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    err = errno;
    ::close(fd_);
    throw StartError(errno_code(err), std::string("eventfd: ") + strerror(err));
  }
}

Listener::~Listener() {
  stop();
  if (fd_ >= 0) ::close(fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Listener::start(Server& server, Dispatcher& dispatcher, size_t stack_bytes) {
  server_ = &server;
  dispatcher_ = &dispatcher;
  const int rc = spawn(&thread_, stack_bytes < 65536 ? 65536 : stack_bytes, &Listener::entry, this);
  if (rc != 0) throw StartError(errno_code(rc), std::string("accept thread: ") + strerror(rc));
  running_ = true;
}

void Listener::stop() {
  if (running_) {
    const uint64_t one = 1;
    while (::write(wake_fd_, &one, sizeof one) < 0 && errno == EINTR) {}
    pthread_join(thread_, nullptr);
    running_ = false;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void* Listener::entry(void* self) {
  static_cast<Listener*>(self)->run();
  return nullptr;
}

void Listener::run() {
  pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  int timeout = -1;
  for (;;) {
    fds[0].events = timeout < 0 ? POLLIN : 0;  // while backing off, only the wake fd
    const int n = ::poll(fds, 2, timeout);
    if (n < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    timeout = -1;
    for (;;) {
      // Accepted sockets are blocking (O_NONBLOCK is not inherited on Linux): every read and write of a connection
      // thread is a plain blocking call, bounded by SO_RCVTIMEO / SO_SNDTIMEO.
      sockaddr_storage peer{};
      socklen_t peer_len = sizeof peer;
      const int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) timeout = kBackoffMs;
        break;  // EAGAIN: drained
      }
      const auto accepted = Clock::now();
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (!server_->address_limit().acquire(fd, peer)) {
        static const std::string kTooMany =
            handshake::refusal(429, "too many connections from your address (--max-conns-per-ip)");
        server_->counters().reject(RejectReason::conn_limit);
        refuse_now(*server_, fd, kTooMany);
        continue;
      }
      dispatcher_->dispatch(fd, accepted);
    }
  }
}

void refuse_now(Server& server, int fd, const std::string& response) {
  ::send(fd, response.data(), response.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_WR);
  char drop[4096];
  for (int i = 0; i < 4 && ::recv(fd, drop, sizeof drop, MSG_DONTWAIT) > 0; ++i) {}
  server.counters().close(CloseReason::rejected);
  server.close_socket(fd);
}

}  // namespace wslab
