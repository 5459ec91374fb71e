// address_limit: --max-conns-per-ip for the threads design. The accept thread asks acquire() for every accepted
// socket; a socket let in is released exactly once, by Server::close_socket(), right before its fd is closed (so a
// reused fd number can never release someone else's count). Called from the accept thread, connection threads and
// pool workers, hence one mutex; with a limit of 0 (the default) both calls return at once without locking.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace wslab {

class AddressLimit {
 public:
  explicit AddressLimit(uint32_t max) : max_(max) {}

  // Counts `fd` against its peer address; false (nothing counted) when that address already holds `max` sockets.
  bool acquire(int fd, const sockaddr_storage& peer);
  // Uncounts `fd` if it was counted; a no-op otherwise.
  void release(int fd);

 private:
  const uint32_t max_;
  std::mutex mu_;
  std::unordered_map<std::string, uint32_t> held_;  // address bytes -> sockets open from it
  std::unordered_map<int, std::string> by_fd_;      // counted socket -> its address bytes
};

}  // namespace wslab
