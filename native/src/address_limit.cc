#include "address_limit.h"

#include <netinet/in.h>

namespace wslab {

namespace {

// The address bytes (4 for IPv4, 16 for IPv6) without the port: the key of a source address.
std::string address_key(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss).sin_addr;
    return std::string(reinterpret_cast<const char*>(&a), sizeof a);
  }
  const auto& a = reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr;
  return std::string(reinterpret_cast<const char*>(&a), sizeof a);
}

}  // namespace

bool AddressLimit::acquire(int fd, const sockaddr_storage& peer) {
  if (max_ == 0) return true;
  std::string key = address_key(peer);
  std::lock_guard<std::mutex> lk(mu_);
  uint32_t& n = held_[key];
  if (n >= max_) return false;  // n > 0 here, so the entry was there already: nothing to erase
  ++n;
  by_fd_.emplace(fd, std::move(key));
  return true;
}

void AddressLimit::release(int fd) {
  if (max_ == 0) return;
  std::lock_guard<std::mutex> lk(mu_);
  const auto at = by_fd_.find(fd);
  if (at == by_fd_.end()) return;
  const auto held = held_.find(at->second);
  if (held != held_.end() && --held->second == 0) held_.erase(held);
  by_fd_.erase(at);
}

}  // namespace wslab
