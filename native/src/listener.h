// listener: the listening socket and the accept thread. The socket is bound synchronously (so that EADDRINUSE
// throws from startThreadsServer); the accept thread then loops on poll(listen fd, eventfd) and hands each accepted
// socket, blocking and with TCP_NODELAY, to the dispatcher.
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
  void start(Dispatcher& dispatcher, size_t stack_bytes);  // spawns the accept thread; throws StartError
  void stop();  // wakes and joins the accept thread, closes the listening socket; idempotent

 private:
  static void* entry(void* self);
  void run();

  int fd_ = -1;
  int wake_fd_ = -1;  // eventfd written by stop()
  int port_ = 0;
  Dispatcher* dispatcher_ = nullptr;
  pthread_t thread_{};
  bool running_ = false;
};

}  // namespace wslab
