#pragma once

#include <asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <system_error>

#include "core/common/result.h"

// Local control API of a daemon (agent now, agbot later): a unix stream socket carrying one JSON
// object per line. Request {"op": "...", ...} -> response {"ok": true, ...} or
// {"ok": false, "error": "..."}. The socket file is created with mode 0600, so only the daemon's
// user (and root) can talk to it; lines longer than the limit are refused, never buffered.
namespace hmq::core::control {

using json = nlohmann::json;

enum class errc {
  ok = 0,
  bind_failed = 1,     // socket path unusable, or another daemon is listening on it
  connect_failed = 2,  // no daemon listening (client side)
  io_error = 3,        // read/write failed or the peer closed mid-request
  timeout = 4,
  bad_response = 5,  // the server answered with something that is not a JSON object
  line_too_long = 6,
};
const std::error_category& category();
std::error_code make_error_code(errc e);

constexpr size_t default_max_line = 256 * 1024;

// {"ok": true} merged with `fields` (an object, or null for none).
json ok_response(json fields = nullptr);
// {"ok": false, "error": message}.
json error_response(std::string_view message);

// Answers one request. Called on the io_context's thread; `reply` must be called exactly once,
// on that thread, now or later (handlers may wait for the exchange).
using reply_fn = std::function<void(json response)>;
using handler = std::function<void(const json& request, reply_fn reply)>;

// Pure line handling, separate from the socket so it can be tested without one: parses one
// line and, if it is a JSON object with a string "op", passes it to `h`; otherwise replies with
// an error at once. Never throws.
void dispatch_line(std::string_view line, const handler& h, const reply_fn& reply);

// Lifecycle: construct, start() (binds and listens), stop() (closes the listener and every
// connection, removes the socket file). Loop thread only. Each connection is served one request
// at a time, in order.
class server {
 public:
  server(asio::io_context& io, std::filesystem::path socket_path, handler h,
         size_t max_line = default_max_line);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Refuses a path where another process is listening; replaces a stale socket file left by a
  // crash. Creates the parent directory (0700) if missing.
  result<void> start();
  void stop();

  const std::filesystem::path& path() const { return path_; }
  uint64_t requests() const;
  uint64_t bad_requests() const;

 private:
  struct impl;
  std::filesystem::path path_;
  std::shared_ptr<impl> impl_;
};

// Blocking one-shot client for CLIs: connect, send one request line, read one response line.
// A response that is not a JSON object is errc::bad_response; {"ok": false} is returned as a
// value (the caller prints its error).
result<json> call(const std::filesystem::path& socket_path, const json& request,
                  std::chrono::milliseconds timeout = std::chrono::seconds(30),
                  size_t max_line = default_max_line);

}  // namespace hmq::core::control

template <>
struct std::is_error_code_enum<hmq::core::control::errc> : std::true_type {};
