#include "core/control/control.h"

#include <poll.h>
#include <sys/stat.h>

#include <asio/local/stream_protocol.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>
#include <set>

#include "core/log/log.h"

namespace hmq::core::control {

namespace {

using local = asio::local::stream_protocol;

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "control"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::ok:
        return "ok";
      case errc::bind_failed:
        return "cannot listen on the control socket";
      case errc::connect_failed:
        return "cannot connect to the control socket";
      case errc::io_error:
        return "control socket I/O error";
      case errc::timeout:
        return "no answer in time";
      case errc::bad_response:
        return "bad response";
      case errc::line_too_long:
        return "line too long";
    }
    return "unknown";
  }
};

error make_error(errc e, std::string detail) {
  return error{make_error_code(e), std::move(detail)};
}

}  // namespace

const std::error_category& category() {
  static const category_impl c;
  return c;
}
std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), category()};
}

json ok_response(json fields) {
  json r = json::object();
  if (fields.is_object()) r = std::move(fields);
  r["ok"] = true;
  return r;
}

json error_response(std::string_view message) {
  return json{{"ok", false}, {"error", std::string(message)}};
}

void dispatch_line(std::string_view line, const handler& h, const reply_fn& reply) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  json req = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded()) return reply(error_response("bad request: not valid JSON"));
  if (!req.is_object()) return reply(error_response("bad request: not a JSON object"));
  auto op = req.find("op");
  if (op == req.end() || !op->is_string())
    return reply(error_response("bad request: missing string field 'op'"));
  // A handler that throws (say, a field of the wrong JSON type) still gets exactly one answer.
  auto replied = std::make_shared<bool>(false);
  reply_fn once = [replied, reply](json r) {
    if (*replied) return;
    *replied = true;
    reply(std::move(r));
  };
  try {
    h(req, once);
  } catch (const std::exception& e) {
    once(error_response(std::string("bad request: ") + e.what()));
  }
}

// ---------------------------------------------------------------------------------------------
// server

struct server::impl : std::enable_shared_from_this<server::impl> {
  impl(asio::io_context& io, handler h, size_t max_line)
      : io(io), acceptor(io), h(std::move(h)), max_line(max_line) {}

  struct connection : std::enable_shared_from_this<connection> {
    connection(local::socket s, size_t max_line) : sock(std::move(s)), buf(max_line + 1) {}
    local::socket sock;
    asio::streambuf buf;
  };

  void accept() {
    acceptor.async_accept([self = shared_from_this()](std::error_code ec, local::socket s) {
      if (ec) {
        if (ec != asio::error::operation_aborted)
          log::get("control")->warn("accept failed: {}", ec.message());
        if (self->stopped) return;
        if (ec == asio::error::operation_aborted) return;
        return self->accept();
      }
      auto c = std::make_shared<connection>(std::move(s), self->max_line);
      self->connections.insert(c);
      self->read(c);
      self->accept();
    });
  }

  void read(const std::shared_ptr<connection>& c) {
    asio::async_read_until(c->sock, c->buf, '\n',
                           [self = shared_from_this(), c](std::error_code ec, size_t n) {
                             if (self->stopped) return;
                             if (ec == asio::error::not_found) {
                               // Line longer than the limit: answer once and hang up, never buffer
                               // more.
                               ++self->bad;
                               log::get("control")->warn(
                                   "control request longer than {} bytes refused", self->max_line);
                               return self->write(c, error_response("bad request: line too long"),
                                                  /*then_close=*/true);
                             }
                             if (ec) return self->close(c);
                             std::string line(asio::buffers_begin(c->buf.data()),
                                              asio::buffers_begin(c->buf.data()) + n - 1);
                             c->buf.consume(n);
                             ++self->count;
                             std::weak_ptr<impl> weak = self;
                             dispatch_line(line, self->h, [weak, c](json r) {
                               auto s = weak.lock();
                               if (!s || s->stopped) return;
                               if (!r.value("ok", false)) ++s->bad;
                               s->write(c, std::move(r), false);
                             });
                           });
  }

  void write(const std::shared_ptr<connection>& c, const json& r, bool then_close) {
    auto out =
        std::make_shared<std::string>(r.dump(-1, ' ', false, json::error_handler_t::replace));
    out->push_back('\n');
    asio::async_write(c->sock, asio::buffer(*out),
                      [self = shared_from_this(), c, out, then_close](std::error_code ec, size_t) {
                        if (self->stopped) return;
                        if (ec || then_close) return self->close(c);
                        self->read(c);
                      });
  }

  void close(const std::shared_ptr<connection>& c) {
    std::error_code ignored;
    c->sock.close(ignored);
    connections.erase(c);
  }

  asio::io_context& io;
  local::acceptor acceptor;
  handler h;
  size_t max_line;
  std::set<std::shared_ptr<connection>> connections;
  bool stopped = false;
  uint64_t count = 0;
  uint64_t bad = 0;
};

server::server(asio::io_context& io, std::filesystem::path socket_path, handler h, size_t max_line)
    : path_(std::move(socket_path)), impl_(std::make_shared<impl>(io, std::move(h), max_line)) {}

server::~server() {
  stop();
}

result<void> server::start() {
  std::error_code fec;
  if (path_.has_parent_path() && !std::filesystem::exists(path_.parent_path(), fec)) {
    std::filesystem::create_directories(path_.parent_path(), fec);
    if (fec)
      return make_error(errc::bind_failed, path_.parent_path().string() + ": " + fec.message());
    std::filesystem::permissions(path_.parent_path(), std::filesystem::perms::owner_all, fec);
  }
  auto st = std::filesystem::symlink_status(path_, fec);
  if (std::filesystem::exists(st)) {
    if (st.type() != std::filesystem::file_type::socket)
      return make_error(errc::bind_failed, path_.string() + " exists and is not a socket");
    // A live daemon answers a connect; a stale file from a crash does not.
    asio::io_context probe_io;
    local::socket probe(probe_io);
    std::error_code ec;
    probe.connect(local::endpoint(path_.string()), ec);
    if (!ec)
      return make_error(errc::bind_failed, path_.string() + ": another process is listening");
    std::filesystem::remove(path_, fec);
  }
  std::error_code ec;
  impl_->acceptor.open(local(), ec);
  if (ec) return make_error(errc::bind_failed, ec.message());
  // Created 0600 from the start (umask), not chmod-ed after a window where others could connect.
  mode_t old = ::umask(0177);
  impl_->acceptor.bind(local::endpoint(path_.string()), ec);
  ::umask(old);
  if (ec) return make_error(errc::bind_failed, path_.string() + ": " + ec.message());
  impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return make_error(errc::bind_failed, path_.string() + ": " + ec.message());
  impl_->stopped = false;
  impl_->accept();
  return ok();
}

void server::stop() {
  if (!impl_ || impl_->stopped || !impl_->acceptor.is_open()) return;
  impl_->stopped = true;
  std::error_code ec;
  impl_->acceptor.close(ec);
  for (const auto& c : impl_->connections) c->sock.close(ec);
  impl_->connections.clear();
  std::filesystem::remove(path_, ec);
}

uint64_t server::requests() const {
  return impl_->count;
}
uint64_t server::bad_requests() const {
  return impl_->bad;
}

// ---------------------------------------------------------------------------------------------
// client

result<json> call(const std::filesystem::path& socket_path, const json& request,
                  std::chrono::milliseconds timeout, size_t max_line) {
  asio::io_context io;
  local::socket sock(io);
  std::error_code ec;
  sock.connect(local::endpoint(socket_path.string()), ec);
  if (ec) return make_error(errc::connect_failed, socket_path.string() + ": " + ec.message());

  std::string line = request.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  asio::write(sock, asio::buffer(line), ec);
  if (ec) return make_error(errc::io_error, "write: " + ec.message());

  // Blocking reads with a deadline: poll() on the descriptor, then read what is there.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string in;
  char chunk[4096];
  for (;;) {
    auto nl = in.find('\n');
    if (nl != std::string::npos) {
      in.resize(nl);
      break;
    }
    if (in.size() > max_line) return make_error(errc::line_too_long, "response longer than limit");
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return make_error(errc::timeout, socket_path.string());
    pollfd p{sock.native_handle(), POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return make_error(errc::io_error, "poll failed");
    if (rc == 0) return make_error(errc::timeout, socket_path.string());
    size_t n = sock.read_some(asio::buffer(chunk), ec);
    if (ec)
      return make_error(errc::io_error, "connection closed before a response: " + ec.message());
    in.append(chunk, n);
  }
  json r = json::parse(in, nullptr, false);
  if (r.is_discarded() || !r.is_object() || !r.contains("ok") || !r["ok"].is_boolean())
    return make_error(errc::bad_response, "not a control response");
  return r;
}

}  // namespace hmq::core::control
