#pragma once

#include <string>

// Work-around for Debian's Paho C 1.3, which never sets TCP_NODELAY on its sockets (a connect
// option for it came upstream later). Nagle's algorithm plus delayed ACKs turn every
// request/response over the bus into an ~44-88 ms stall (ENVIRONMENT.md). Paho does not expose
// its socket, so after each (re)connect we find it: walk /proc/self/fd, keep the TCP sockets
// whose peer address is the broker's, and set TCP_NODELAY on them.
namespace hmq::core::bus {

// Sets TCP_NODELAY on every TCP socket of this process connected to host:port (host numeric
// or a name, resolved with getaddrinfo). Returns how many sockets were set, or -1 if the host
// cannot be resolved or /proc/self/fd cannot be read. Setting it twice is harmless, and other
// connections to the same broker (another client in the process) gain from it too.
// Thread-safe; cost: one syscall per open fd, run once per connect.
int set_tcp_nodelay_to_peer(const std::string& host, int port);

}  // namespace hmq::core::bus
