#include "agent/docker/http.h"

#include <sys/un.h>

#include <algorithm>
#include <asio/local/stream_protocol.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace hmq::agent::docker::http {
namespace {

core::error err(errc c, std::string detail) {
  return core::error{make_error_code(c), std::move(detail)};
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

// RFC 9110 token characters (header names, methods).
bool is_tchar(unsigned char c) {
  if (std::isalnum(c)) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Interim (1xx) answers skipped before the real one; more is a peer playing games.
constexpr int max_interim = 8;

}  // namespace

const std::string* response::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

result<void> response_parser::fail(errc c, std::string detail) {
  state_ = state::failed;
  line_.clear();
  line_.shrink_to_fit();
  error_ = err(c, "HTTP response: " + std::move(detail));
  return error_;
}

result<void> response_parser::feed(std::string_view in, const body_sink& sink) {
  size_t i = 0;
  while (i < in.size()) {
    switch (state_) {
      case state::failed:
        return error_;
      case state::done:
        return core::ok();  // bytes after a complete answer (we always close) are ignored
      case state::close_body: {
        auto r = emit(in.substr(i), sink);
        if (!r) return r;
        i = in.size();
        break;
      }
      case state::chunk_data:
      case state::length_body: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size() - i));
        auto r = emit(in.substr(i, n), sink);
        if (!r) return r;
        remaining_ -= n;
        i += n;
        if (remaining_ == 0) state_ = state_ == state::chunk_data ? state::chunk_end : state::done;
        break;
      }
      case state::status_line:
      case state::headers:
      case state::chunk_size:
      case state::chunk_end:
      case state::trailers: {
        size_t nl = in.find('\n', i);
        size_t take = (nl == std::string_view::npos ? in.size() : nl) - i;
        if (line_.size() + take > lim_.max_line)
          return fail(errc::too_large, "line over " + std::to_string(lim_.max_line) + " bytes");
        bool in_head =
            state_ == state::status_line || state_ == state::headers || state_ == state::trailers;
        if (in_head) {
          head_bytes_ += take + (nl == std::string_view::npos ? 0 : 1);
          if (head_bytes_ > lim_.max_header_bytes)
            return fail(errc::too_large,
                        "header block over " + std::to_string(lim_.max_header_bytes) + " bytes");
        }
        line_.append(in.substr(i, take));
        if (nl == std::string_view::npos) {
          i = in.size();
          break;
        }
        i = nl + 1;
        std::string_view line = line_;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        auto r = on_line(line, sink);
        if (state_ != state::failed) line_.clear();
        if (!r) return r;
        break;
      }
    }
  }
  return state_ == state::failed ? result<void>(error_) : core::ok();
}

result<void> response_parser::finish(const body_sink& sink) {
  (void)sink;
  switch (state_) {
    case state::done:
      return core::ok();
    case state::close_body:
      state_ = state::done;
      return core::ok();
    case state::failed:
      return error_;
    case state::status_line:
      if (line_.empty() && resp_.status == 0)
        return fail(errc::bad_response, "connection closed before an answer");
      return fail(errc::bad_response, "connection closed inside the status line");
    case state::headers:
      return fail(errc::bad_response, "connection closed inside the headers");
    case state::length_body:
      return fail(errc::bad_response, "connection closed " + std::to_string(remaining_) +
                                          " bytes before the end of the body");
    default:
      return fail(errc::bad_response, "connection closed inside the chunked body");
  }
}

result<void> response_parser::on_line(std::string_view line, const body_sink& sink) {
  (void)sink;
  switch (state_) {
    case state::status_line:
      return on_status_line(line);
    case state::headers:
      if (line.empty()) return end_of_headers();
      return on_header_line(line, false);
    case state::trailers:
      if (line.empty()) {
        state_ = state::done;
        return core::ok();
      }
      return on_header_line(line, true);
    case state::chunk_end:
      if (!line.empty()) return fail(errc::bad_response, "chunk data not followed by CRLF");
      state_ = state::chunk_size;
      return core::ok();
    case state::chunk_size: {
      uint64_t size = 0;
      size_t p = 0;
      for (; p < line.size() && hex_value(line[p]) >= 0; ++p) {
        if (size > (UINT64_MAX >> 4)) return fail(errc::too_large, "chunk size overflows");
        size = (size << 4) | static_cast<uint64_t>(hex_value(line[p]));
      }
      if (p == 0) return fail(errc::bad_response, "chunk size is not hexadecimal");
      std::string_view rest = trim_ows(line.substr(p));
      if (!rest.empty() && rest.front() != ';')
        return fail(errc::bad_response, "junk after the chunk size");
      if (size == 0) {
        state_ = state::trailers;
        head_bytes_ = 0;
        trailer_count_ = 0;
        return core::ok();
      }
      if (size > lim_.max_chunk)
        return fail(errc::too_large, "chunk of " + std::to_string(size) + " bytes");
      if (size > lim_.max_body - body_bytes_)
        return fail(errc::too_large, "body over " + std::to_string(lim_.max_body) + " bytes");
      remaining_ = size;
      state_ = state::chunk_data;
      return core::ok();
    }
    default:
      return fail(errc::bad_response, "internal: line in a body state");
  }
}

result<void> response_parser::on_status_line(std::string_view line) {
  // HTTP-version SP 3DIGIT SP reason-phrase (the reason may be empty, its SP is sometimes missing).
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || (line[7] != '0' && line[7] != '1') ||
      line[8] != ' ')
    return fail(errc::bad_response, "not an HTTP/1.x status line");
  int status = 0;
  for (size_t k = 9; k < 12; ++k) {
    if (line[k] < '0' || line[k] > '9')
      return fail(errc::bad_response, "status code is not 3 digits");
    status = status * 10 + (line[k] - '0');
  }
  if (line.size() > 12 && line[12] != ' ')
    return fail(errc::bad_response, "status code is not 3 digits");
  if (status < 100 || status > 599)
    return fail(errc::bad_response, "status code " + std::to_string(status));
  for (char c : line.substr(12))
    if (c == '\0' || c == '\r')
      return fail(errc::bad_response, "control character in the status line");
  resp_.status = status;
  state_ = state::headers;
  return core::ok();
}

result<void> response_parser::on_header_line(std::string_view line, bool trailer) {
  if (line.front() == ' ' || line.front() == '\t')
    return fail(errc::bad_response, "folded header line");
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0)
    return fail(errc::bad_response, "header line without a name");
  std::string_view name = line.substr(0, colon);
  for (char c : name)
    if (!is_tchar(static_cast<unsigned char>(c)))
      return fail(errc::bad_response, "bad character in a header name");
  std::string_view value = trim_ows(line.substr(colon + 1));
  for (char c : value)
    if (c == '\0' || c == '\r')
      return fail(errc::bad_response, "control character in a header value");
  if (trailer) {
    // Trailers are checked and counted but not kept: nothing in the Engine API uses them.
    if (++trailer_count_ > lim_.max_headers)
      return fail(errc::too_large,
                  "more than " + std::to_string(lim_.max_headers) + " trailer fields");
    return core::ok();
  }
  if (resp_.headers.size() >= lim_.max_headers)
    return fail(errc::too_large,
                "more than " + std::to_string(lim_.max_headers) + " header fields");
  std::string n(name);
  std::transform(n.begin(), n.end(), n.begin(), lower);
  resp_.headers.emplace_back(std::move(n), std::string(value));
  return core::ok();
}

result<void> response_parser::end_of_headers() {
  if (resp_.status < 200) {
    if (resp_.status == 101) return fail(errc::bad_response, "protocol switch (101) not supported");
    // Interim answer (100 Continue, 103 Early Hints): the real one follows.
    if (++interim_ > max_interim) return fail(errc::bad_response, "too many interim (1xx) answers");
    resp_ = response{};
    head_bytes_ = 0;
    state_ = state::status_line;
    return core::ok();
  }
  const std::string* te = nullptr;
  bool have_length = false;
  uint64_t length = 0;
  for (const auto& [k, v] : resp_.headers) {
    if (k == "transfer-encoding") {
      if (te) return fail(errc::bad_response, "more than one Transfer-Encoding field");
      te = &v;
    } else if (k == "content-length") {
      if (v.empty() || v.size() > 19) return fail(errc::bad_response, "bad Content-Length");
      uint64_t n = 0;
      for (char c : v) {
        if (c < '0' || c > '9') return fail(errc::bad_response, "bad Content-Length");
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      if (have_length && n != length)
        return fail(errc::bad_response, "conflicting Content-Length fields");
      have_length = true;
      length = n;
    }
  }
  if (head_request_ || resp_.status == 204 || resp_.status == 304) {
    state_ = state::done;
    return core::ok();
  }
  if (te) {
    // A message with both is how request smuggling starts; the Engine never sends it.
    if (have_length) return fail(errc::bad_response, "both Transfer-Encoding and Content-Length");
    if (!iequals(*te, "chunked"))
      return fail(errc::bad_response, "unsupported Transfer-Encoding '" + te->substr(0, 40) + "'");
    chunked_ = true;
    state_ = state::chunk_size;
    return core::ok();
  }
  if (have_length) {
    if (length > lim_.max_body)
      return fail(errc::too_large, "Content-Length " + std::to_string(length) + " over " +
                                       std::to_string(lim_.max_body) + " bytes");
    remaining_ = length;
    state_ = length == 0 ? state::done : state::length_body;
    return core::ok();
  }
  state_ = state::close_body;
  return core::ok();
}

result<void> response_parser::emit(std::string_view data, const body_sink& sink) {
  if (data.empty()) return core::ok();
  if (data.size() > lim_.max_body - body_bytes_)
    return fail(errc::too_large, "body over " + std::to_string(lim_.max_body) + " bytes");
  body_bytes_ += data.size();
  if (sink && !sink(resp_, data)) return fail(errc::stopped, "the receiver stopped the answer");
  return core::ok();
}

bool line_splitter::feed(std::string_view data,
                         const std::function<void(std::string_view)>& on_line) {
  size_t start = 0;
  if (buf_.empty()) {
    // Common case: whole lines in one read, no copy.
    size_t nl;
    while ((nl = data.find('\n', start)) != std::string_view::npos) {
      on_line(data.substr(start, nl - start));
      start = nl + 1;
    }
    if (data.size() - start > max_) return false;
    buf_.assign(data.substr(start));
    return true;
  }
  size_t nl = data.find('\n');
  if (nl == std::string_view::npos) {
    if (buf_.size() + data.size() > max_) return false;
    buf_.append(data);
    return true;
  }
  if (buf_.size() + nl > max_) return false;
  buf_.append(data.substr(0, nl));
  on_line(buf_);
  buf_.clear();
  return feed(data.substr(nl + 1), on_line);
}

result<std::string> serialize(const request& r) {
  if (r.method.empty()) return err(errc::bad_request, "empty method");
  for (char c : r.method)
    if (!is_tchar(static_cast<unsigned char>(c)))
      return err(errc::bad_request, "bad character in the method");
  if (r.target.empty() || r.target.front() != '/')
    return err(errc::bad_request, "request target must start with '/'");
  for (unsigned char c : r.target)
    if (c <= ' ' || c >= 0x7f)
      return err(errc::bad_request, "control, space or non-ASCII character in the request target");
  auto field_ok = [](std::string_view f) {
    for (char c : f)
      if (c == '\r' || c == '\n' || c == '\0') return false;
    return true;
  };
  std::string out;
  out.reserve(128 + r.target.size() + r.body.size());
  out += r.method;
  out += ' ';
  out += r.target;
  out += " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: hmq-agent\r\nConnection: close\r\n";
  for (const auto& h : r.headers) {
    auto colon = h.find(':');
    if (colon == std::string::npos || colon == 0 || !field_ok(h))
      return err(errc::bad_request, "malformed request header");
    out += h;
    out += "\r\n";
  }
  if (!r.body.empty() || r.method == "POST" || r.method == "PUT") {
    if (!r.content_type.empty()) {
      if (!field_ok(r.content_type)) return err(errc::bad_request, "malformed content type");
      out += "Content-Type: " + r.content_type + "\r\n";
    }
    out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  }
  out += "\r\n";
  out += r.body;
  return out;
}

void stop_source::stop() {
  if (stopped_) return;
  stopped_ = true;
  auto hooks = std::move(hooks_);
  hooks_.clear();
  for (auto& [id, h] : hooks) h();
}

uint64_t stop_source::add(std::function<void()> hook) {
  if (stopped_) return 0;
  hooks_.emplace(++next_, std::move(hook));
  return next_;
}

namespace {

using asio::local::stream_protocol;

// The socket and the deadline of one call. Shared with the timer's and stop()'s handlers, which
// may run after the call's coroutine has returned.
struct call_state {
  explicit call_state(const asio::any_io_executor& ex) : sock(ex), deadline(ex) {}
  stream_protocol::socket sock;
  asio::steady_timer deadline;
  bool timed_out = false;
  bool stopped = false;
  void close() {
    asio::error_code ec;
    sock.close(ec);
  }
};

// Registers `st` with `stop` for the life of a call: stop() closes its socket.
class stop_hook {
 public:
  stop_hook(const std::shared_ptr<stop_source>& stop, const std::shared_ptr<call_state>& st)
      : stop_(stop) {
    if (!stop_) return;
    id_ = stop_->add([w = std::weak_ptr<call_state>(st)] {
      if (auto s = w.lock()) {
        s->stopped = true;
        s->deadline.cancel();
        s->close();
      }
    });
    if (id_ == 0) st->stopped = true;
  }
  ~stop_hook() {
    if (stop_ && id_) stop_->remove(id_);
  }
  stop_hook(const stop_hook&) = delete;
  stop_hook& operator=(const stop_hook&) = delete;

 private:
  std::shared_ptr<stop_source> stop_;
  uint64_t id_ = 0;
};

// Arms the call's deadline: when it passes first, the socket is closed and the call reports a
// timeout.
void arm(const std::shared_ptr<call_state>& st, std::chrono::milliseconds d) {
  st->deadline.cancel();
  if (d.count() <= 0) return;
  st->deadline.expires_after(d);
  st->deadline.async_wait([w = std::weak_ptr<call_state>(st)](const asio::error_code& ec) {
    if (ec) return;
    if (auto s = w.lock()) {
      s->timed_out = true;
      s->close();
    }
  });
}

}  // namespace

asio::awaitable<result<response>> perform(std::string socket_path, request r, call_options o,
                                          response_parser::body_sink sink,
                                          std::shared_ptr<stop_source> stop) {
  auto wire = serialize(r);
  if (!wire) co_return wire.err();
  std::string where = r.method + " " + r.target.substr(0, 200) + " via " + socket_path;
  if (socket_path.empty() || socket_path.size() >= sizeof(sockaddr_un::sun_path))
    co_return err(errc::transport, "bad unix socket path '" + socket_path + "'");

  auto st = std::make_shared<call_state>(co_await asio::this_coro::executor);
  stop_hook hook(stop, st);
  // Why the socket failed: stop() and the deadline close it, which the I/O reports as aborted.
  auto failure = [&](const char* op, const asio::error_code& ec) -> core::error {
    if (st->stopped) return err(errc::stopped, where + ": cancelled");
    if (st->timed_out) return err(errc::transport, where + ": timed out");
    return err(errc::transport, where + ": " + op + ": " + ec.message());
  };
  auto finish = [&]() {
    st->deadline.cancel();
    st->close();
  };
  if (st->stopped) co_return err(errc::stopped, where + ": cancelled");

  asio::error_code ec;
  // A unix-socket connect only waits while the listener's backlog is full.
  arm(st, o.connect_timeout);
  co_await st->sock.async_connect(stream_protocol::endpoint(socket_path),
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec || st->stopped || st->timed_out) {
    auto e = failure("connect", ec ? ec : asio::error::operation_aborted);
    finish();
    co_return e;
  }
  arm(st, o.timeout);

  co_await asio::async_write(st->sock, asio::buffer(*wire),
                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec || st->stopped || st->timed_out) {
    auto e = failure("send", ec ? ec : asio::error::operation_aborted);
    finish();
    co_return e;
  }

  auto wrap = [&](const core::error& e) { return core::error{e.code, where + ": " + e.detail}; };
  response_parser p(o.lim, r.method == "HEAD");
  std::vector<char> buf(16 << 10);
  for (;;) {
    size_t n = co_await st->sock.async_read_some(asio::buffer(buf),
                                                 asio::redirect_error(asio::use_awaitable, ec));
    if (st->stopped || st->timed_out) {
      auto e = failure("read", asio::error::operation_aborted);
      finish();
      co_return e;
    }
    if (ec == asio::error::eof) {
      finish();
      auto f = p.finish(sink);
      if (!f) co_return wrap(f.err());
      co_return p.head();
    }
    if (ec) {
      auto e = failure("read", ec);
      finish();
      co_return e;
    }
    auto f = p.feed(std::string_view(buf.data(), n), sink);
    if (!f || p.done()) finish();
    if (!f) co_return wrap(f.err());
    if (p.done()) co_return p.head();
  }
}

asio::awaitable<result<buffered_response>> fetch(std::string socket_path, request r, call_options o,
                                                 std::shared_ptr<stop_source> stop) {
  auto out = std::make_shared<buffered_response>();
  // Named, not a temporary of the co_await expression (GCC 12 mishandles those).
  response_parser::body_sink sink = [out](const response&, std::string_view d) {
    out->body.append(d);
    return true;
  };
  auto h =
      co_await perform(std::move(socket_path), std::move(r), std::move(o), sink, std::move(stop));
  if (!h) co_return h.err();
  out->status = h->status;
  co_return std::move(*out);
}

asio::awaitable<result<void>> sleep(std::chrono::milliseconds d,
                                    std::shared_ptr<stop_source> stop) {
  auto st = std::make_shared<call_state>(co_await asio::this_coro::executor);
  stop_hook hook(stop, st);
  if (st->stopped) co_return err(errc::stopped, "cancelled");
  st->deadline.expires_after(d);
  asio::error_code ec;
  co_await st->deadline.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (st->stopped) co_return err(errc::stopped, "cancelled");
  co_return core::ok();
}

}  // namespace hmq::agent::docker::http
