#include "core/bus/tcp_nodelay.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

namespace hmq::core::bus {

namespace {

struct peer_addr {
  int family;
  sockaddr_storage addr;
};

bool same_peer(const sockaddr_storage& a, const peer_addr& b) {
  if (a.ss_family != b.family) return false;
  if (a.ss_family == AF_INET) {
    auto& x = reinterpret_cast<const sockaddr_in&>(a);
    auto& y = reinterpret_cast<const sockaddr_in&>(b.addr);
    return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
  }
  if (a.ss_family == AF_INET6) {
    auto& x = reinterpret_cast<const sockaddr_in6&>(a);
    auto& y = reinterpret_cast<const sockaddr_in6&>(b.addr);
    return x.sin6_port == y.sin6_port &&
           std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
  }
  return false;
}

}  // namespace

int set_tcp_nodelay_to_peer(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (::getaddrinfo(host.c_str(), service.c_str(), &hints, &res) != 0) return -1;
  std::vector<peer_addr> peers;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    peer_addr p{ai->ai_family, {}};
    std::memcpy(&p.addr, ai->ai_addr, ai->ai_addrlen);
    peers.push_back(p);
  }
  ::freeaddrinfo(res);

  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return -1;
  const int own = ::dirfd(dir);
  int count = 0;
  while (dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    long n = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || n == own) continue;
    int fd = static_cast<int>(n);
    // The fd may be closed and reused by another thread meanwhile; every check below is on the
    // live fd, so the worst case is setting TCP_NODELAY on another socket to the broker.
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    int type = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) continue;
    sockaddr_storage peer{};
    len = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;
    bool match = false;
    for (const auto& p : peers) match = match || same_peer(peer, p);
    if (!match) continue;
    int one = 1;
    if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0) ++count;
  }
  ::closedir(dir);
  return count;
}

}  // namespace hmq::core::bus
