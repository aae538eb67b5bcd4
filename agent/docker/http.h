#pragma once

#include <asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/docker/errors.h"
#include "core/common/result.h"

// A small HTTP/1.1 client over a unix stream socket, just what the Docker Engine API needs (it
// replaced libcurl, whose dependency tree cost the agent several MB of resident memory; see
// docs/agent.md "Memory"). One request per connection (`Connection: close`), no TLS, no
// redirects, no keep-alive. The transport is Asio's unix stream socket, driven as a coroutine on
// the agent's event loop: no thread, no blocking call.
//
// Everything the Engine sends is untrusted: response_parser bounds every line, the header block,
// the header count, every chunk and the body, and answers malformed input with a clear error
// (errc::bad_response / errc::too_large), never a crash or an unbounded allocation.
namespace hmq::agent::docker::http {

using core::result;

struct limits {
  size_t max_line = 8 << 10;           // status line, one header line, one chunk-size line
  size_t max_header_bytes = 64 << 10;  // the whole header block (and the trailer block)
  size_t max_headers = 100;            // header fields (and trailer fields)
  size_t max_chunk = 16 << 20;         // one chunk of a chunked body
  uint64_t max_body = 16 << 20;        // decoded body; UINT64_MAX for a stream without end
};

struct response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed
  // The first header named `name` (lower case), or nullptr.
  const std::string* header(std::string_view name) const;
};

// Incremental HTTP/1.1 response parser: feed it the bytes as they arrive, in any split. Decoded
// body bytes go to the sink as they are parsed (no copy of the body is kept). 1xx interim answers
// are skipped. Framing: no body for HEAD, 204 and 304; chunked transfer coding; Content-Length;
// otherwise the body runs until the peer closes (call finish() at end of stream).
class response_parser {
 public:
  // Returns false to abort: feed() then fails with errc::stopped.
  using body_sink = std::function<bool(const response&, std::string_view)>;

  explicit response_parser(limits l = {}, bool head_request = false)
      : lim_(l), head_request_(head_request) {}

  // Consumes all of `in`. After an error the parser stays failed.
  result<void> feed(std::string_view in, const body_sink& sink);
  // End of stream: fine when the response is complete or runs until close, an error otherwise.
  result<void> finish(const body_sink& sink);

  bool head_done() const { return state_ > state::headers; }
  bool done() const { return state_ == state::done; }
  const response& head() const { return resp_; }
  uint64_t body_bytes() const { return body_bytes_; }

 private:
  enum class state {
    status_line,
    headers,
    chunk_size,
    chunk_data,
    chunk_end,
    trailers,
    length_body,
    close_body,
    done,
    failed
  };
  result<void> fail(errc c, std::string detail);
  result<void> on_line(std::string_view line, const body_sink& sink);
  result<void> on_status_line(std::string_view line);
  result<void> on_header_line(std::string_view line, bool trailer);
  result<void> end_of_headers();
  result<void> emit(std::string_view data, const body_sink& sink);

  limits lim_;
  bool head_request_;
  state state_ = state::status_line;
  response resp_;
  std::string line_;       // the line being assembled (bounded by max_line)
  size_t head_bytes_ = 0;  // bytes of the current header or trailer block
  size_t trailer_count_ = 0;
  uint64_t remaining_ = 0;  // of the current chunk or of the Content-Length body
  uint64_t body_bytes_ = 0;
  bool chunked_ = false;
  int interim_ = 0;
  core::error error_;  // what failed the parser (returned again by later calls)
};

// Splits a streamed body into '\n'-terminated lines (the Engine's events and pull progress are
// JSON lines). A line longer than `max_line` fails the split.
class line_splitter {
 public:
  explicit line_splitter(size_t max_line) : max_(max_line) {}
  // Calls on_line for every complete line (without '\n'); false when a line is too long.
  bool feed(std::string_view data, const std::function<void(std::string_view)>& on_line);
  // The unterminated rest, if any (end of stream).
  std::string_view rest() const { return buf_; }

 private:
  size_t max_;
  std::string buf_;
};

struct request {
  std::string method = "GET";
  std::string target;                // "/v1.41/containers/json?all=1"
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  std::string content_type;  // sent with a body or a POST
};

struct call_options {
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds timeout{0};  // whole call, 0 = none (the events stream)
  limits lim;
};

// What stop() reaches: every call and wait started with a stop_source ends with errc::stopped
// once stop() ran (at once when it is already stopped). The client shares one with its calls so
// a call that outlives the client stays safe. Loop thread only.
class stop_source {
 public:
  bool stopped() const { return stopped_; }
  // Runs every registered hook once (they close sockets, cancel timers); later add()s are
  // refused.
  void stop();
  // Registers a hook; 0 when already stopped (the caller then ends at once).
  uint64_t add(std::function<void()> hook);
  void remove(uint64_t id) { hooks_.erase(id); }

 private:
  bool stopped_ = false;
  uint64_t next_ = 0;
  std::map<uint64_t, std::function<void()>> hooks_;
};

// The request as bytes on the wire; errc::bad_request when a method, target or header carries a
// byte that would let it forge another header or request (CR, LF, NUL, a space in the target).
result<std::string> serialize(const request& r);

// A coroutine on the caller's executor (the agent's loop): connects to the unix socket at
// `socket_path`, sends `r`, and streams the answer to `sink`. Returns the response head once the
// answer is complete (or the sink stopped it: errc::stopped). errc::transport for socket errors
// and timeouts, errc::stopped when `stop` (optional) fired. Parameters are taken by value: the
// coroutine frame owns them.
asio::awaitable<result<response>> perform(std::string socket_path, request r, call_options o,
                                          response_parser::body_sink sink,
                                          std::shared_ptr<stop_source> stop = nullptr);

struct buffered_response {
  int status = 0;
  std::string body;
};
// perform() that collects the body (at most o.lim.max_body bytes, else errc::too_large).
asio::awaitable<result<buffered_response>> fetch(std::string socket_path, request r, call_options o,
                                                 std::shared_ptr<stop_source> stop = nullptr);

// Waits `d` on the caller's executor; errc::stopped when `stop` fired first.
asio::awaitable<result<void>> sleep(std::chrono::milliseconds d, std::shared_ptr<stop_source> stop);

}  // namespace hmq::agent::docker::http
