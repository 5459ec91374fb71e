// listener: the listening socket and the accept thread. The socket is bound synchronously (so that EADDRINUSE
// throws from startThreadsServer); the accept thread then loops on poll(listen fd, eventfd) and hands each accepted
// socket, blocking and with TCP_NODELAY, to the dispatcher, unless its source address is over --max-conns-per-ip:
// that one is answered 429 at once, by the accept thread, so an address over the limit costs no thread.
// Thread ownership: the accept thread is created by start() (on the JS thread) and joined by stop().
#pragma once

#include <pthread.h>

#include <string>

#include "server.h"

namespace wslab {

class Listener {
 public:
  Listener(const std::string& host, int port);  // binds and listens; throws StartError
  ~Listener();
  int port() const { return port_; }
  // Spawns the accept thread; throws StartError.
  void start(Server& server, Dispatcher& dispatcher, size_t stack_bytes);
  void stop();  // wakes and joins the accept thread, closes the listening socket; idempotent

 private:
  static void* entry(void* self);
  void run();

  int fd_ = -1;
  int wake_fd_ = -1;  // eventfd written by stop()
  int port_ = 0;
  Server* server_ = nullptr;
  Dispatcher* dispatcher_ = nullptr;
  pthread_t thread_{};
  bool running_ = false;
};

// Answers a just-accepted socket with a short HTTP refusal (a complete response from handshake::refusal) without
// blocking or reading the request, and closes it through server.close_socket(). For the accept thread: the answer
// fits an empty send buffer, and what the client has sent so far is read and dropped first, so that the close is a
// FIN behind the answer rather than a reset.
void refuse_now(Server& server, int fd, const std::string& response);

}  // namespace wslab
