// The agent's HTTP/1.1 transport on a real unix socket, against a scripted fake Engine in this
// process: what the request looks like on the wire, streamed answers, cancellation by a
// stop_source (what client::stop() does to the events stream), timeouts and missing sockets; and
// the client's promise that every call completes exactly once on the loop.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "agent/docker/client.h"
#include "agent/docker/http.h"
#include "tests/support/loop_thread.h"

namespace hmq::agent::docker::http {
namespace {

// Accepts one connection, reads the request head (and a Content-Length body), then runs
// `script` with the connected fd and the request it read. Closes when the script returns.
class fake_engine {
 public:
  explicit fake_engine(std::function<void(int fd, const std::string& request)> script) {
    char tmpl[] = "/tmp/hmq-http-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/docker.sock";
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(listen_fd_, 4), 0);
    thread_ = std::thread([this, script = std::move(script)] {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      std::string req;
      char buf[4096];
      size_t need = std::string::npos;
      while (need == std::string::npos || req.size() < need) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
        auto end = req.find("\r\n\r\n");
        if (need == std::string::npos && end != std::string::npos) {
          size_t len = 0;
          auto cl = req.find("Content-Length: ");
          if (cl != std::string::npos && cl < end) len = std::stoul(req.substr(cl + 16));
          need = end + 4 + len;
        }
      }
      request_ = req;
      script(fd, req);
      ::close(fd);
    });
  }
  ~fake_engine() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);
    std::filesystem::remove_all(dir_);
  }
  const std::string& path() const { return path_; }
  void join() { thread_.join(); }
  const std::string& request_seen() const { return request_; }

 private:
  std::string dir_, path_;
  int listen_fd_ = -1;
  std::thread thread_;
  std::string request_;
};

void send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    s.remove_prefix(static_cast<size_t>(n));
  }
}

// Runs one transport coroutine to its end on an io_context of its own.
template <typename T>
result<T> run(asio::awaitable<result<T>> a) {
  asio::io_context io;
  std::optional<result<T>> out;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { out.emplace(co_await std::move(a)); }, asio::detached);
  io.run();
  if (!out) return core::error{make_error_code(errc::api), "the coroutine did not complete"};
  return std::move(*out);
}

// Blocks until the peer closes (or the test ends the connection).
void wait_for_close(int fd) {
  char b[256];
  while (::read(fd, b, sizeof b) > 0) {
  }
}

TEST(docker_http_transport, sends_the_request_and_reads_a_chunked_answer) {
  fake_engine e([](int fd, const std::string&) {
    send_all(fd, "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"Id\"\r\n");
    send_all(fd, "8\r\n:\"abc\"}\n\r\n0\r\n\r\n");
  });
  request r;
  r.method = "POST";
  r.target = "/v1.41/containers/create?name=x";
  r.headers = {"X-Registry-Auth: e30"};
  r.body = "{\"Image\":\"busybox\"}";
  r.content_type = "application/json";
  auto got = run(fetch(e.path(), r, {}));
  ASSERT_TRUE(got.ok()) << got.err().message();
  EXPECT_EQ(got->status, 201);
  EXPECT_EQ(got->body, "{\"Id\":\"abc\"}\n");
  e.join();
  EXPECT_EQ(e.request_seen().rfind("POST /v1.41/containers/create?name=x HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(e.request_seen().find("\r\nX-Registry-Auth: e30\r\n"), std::string::npos);
  EXPECT_NE(e.request_seen().find("\r\n\r\n{\"Image\":\"busybox\"}"), std::string::npos);
}

TEST(docker_http_transport, reads_until_close_when_the_answer_has_no_length) {
  fake_engine e([](int fd, const std::string&) { send_all(fd, "HTTP/1.1 200 OK\r\n\r\n[1,2,3]"); });
  request r;
  r.target = "/v1.41/containers/json";
  auto got = run(fetch(e.path(), r, {}));
  ASSERT_TRUE(got.ok()) << got.err().message();
  EXPECT_EQ(got->body, "[1,2,3]");
}

TEST(docker_http_transport, reports_a_truncated_answer) {
  fake_engine e([](int fd, const std::string&) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
  });
  request r;
  r.target = "/v1.41/_ping";
  EXPECT_EQ(run(fetch(e.path(), r, {})).code(), errc::bad_response);
}

TEST(docker_http_transport, refuses_an_oversized_body) {
  fake_engine e([](int fd, const std::string&) {
    send_all(fd, "HTTP/1.1 200 OK\r\n\r\n" + std::string(5000, 'x'));
  });
  request r;
  r.target = "/v1.41/containers/json";
  call_options o;
  o.lim.max_body = 4096;
  EXPECT_EQ(run(fetch(e.path(), r, o)).code(), errc::too_large);
}

TEST(docker_http_transport, streams_lines_until_stopped) {
  std::atomic<bool> closed{false};
  fake_engine e([&](int fd, const std::string&) {
    send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nline1\n\r\n");
    wait_for_close(fd);  // a stream without end, like /events
    closed = true;
  });
  auto stop = std::make_shared<stop_source>();
  request r;
  r.target = "/v1.41/events";
  call_options o;
  o.lim.max_body = UINT64_MAX;
  line_splitter lines(1024);
  std::vector<std::string> got;
  auto res = run(perform(
      e.path(), r, o,
      [&](const response&, std::string_view d) {
        return lines.feed(d, [&](std::string_view l) {
          got.emplace_back(l);
          stop->stop();  // what client::stop() does, here once the first event arrived
        });
      },
      stop));
  EXPECT_EQ(res.code(), errc::stopped);
  EXPECT_EQ(got, std::vector<std::string>{"line1"});
  e.join();
  EXPECT_TRUE(closed);  // the connection was closed, not leaked
}

TEST(docker_http_transport, times_out_when_the_engine_does_not_answer) {
  std::atomic<bool> closed{false};
  fake_engine e([&](int fd, const std::string&) {
    wait_for_close(fd);
    closed = true;
  });
  request r;
  r.target = "/v1.41/_ping";
  call_options o;
  o.timeout = std::chrono::milliseconds(200);
  auto res = run(fetch(e.path(), r, o));
  EXPECT_EQ(res.code(), errc::transport);
  EXPECT_NE(res.err().detail.find("timed out"), std::string::npos) << res.err().detail;
  e.join();
  EXPECT_TRUE(closed);
}

TEST(docker_http_transport, fails_clearly_without_a_listener) {
  request r;
  r.target = "/v1.41/_ping";
  auto res = run(fetch("/nonexistent/hmq/docker.sock", r, {}));
  EXPECT_EQ(res.code(), errc::transport);
  EXPECT_NE(res.err().detail.find("/nonexistent/hmq/docker.sock"), std::string::npos);
  EXPECT_EQ(run(fetch(std::string(200, 'x'), r, {})).code(),
            errc::transport);  // longer than sun_path
}

// Not the transport but the client, with the Engine away: while the events stream backs off
// between reconnects, every submitted call must still complete. (The back-off once waited on the
// old worker pool's condition variable and could swallow a job's wake-up: a deploy's clean-up
// then never ran.) Each call here is submitted by the previous one's callback, so one completion
// that never comes stops the chain for good; each must fail as the absent Engine says.
TEST(docker_client, jobs_run_while_the_events_stream_backs_off) {
  test::loop_thread lt;
  test::waiter w;
  int done = 0;
  int transport_errors = 0;
  constexpr int jobs = 30;
  std::unique_ptr<client> c;
  lt.call([&] {
    c = std::make_unique<client>(lt.loop(),
                                 client_options{.socket_path = "/nonexistent/hmq/docker.sock"});
    c->watch_events([](event) {}, [] {});
    return 0;
  });
  std::function<void()> next = [&] {
    c->submit<void>(api::ping(c->engine()), [&](result<void> r) {
      w.update([&] {
        ++done;
        if (r.code() == errc::transport) ++transport_errors;
      });
      if (w.read([&] { return done; }) < jobs) next();
    });
  };
  lt.call([&] {
    next();
    return 0;
  });
  EXPECT_TRUE(w.wait([&] { return done == jobs; }, std::chrono::seconds(20)))
      << "ran " << done << " of " << jobs;
  EXPECT_EQ(w.read([&] { return transport_errors; }), jobs);
  lt.call([&] {
    c.reset();
    return 0;
  });
}

// A call to an Engine that is not there completes, once, with the transport error that says
// where it looked (the old worker pool dropped a failing job's callback).
TEST(docker_client, call_to_an_absent_engine_completes_once_with_an_error) {
  test::loop_thread lt;
  test::waiter w;
  int calls = 0;
  std::optional<core::error> got;
  std::unique_ptr<client> c;
  lt.call([&] {
    c = std::make_unique<client>(lt.loop(),
                                 client_options{.socket_path = "/nonexistent/hmq/docker.sock"});
    c->submit<container_info>(api::inspect_container(c->engine(), "x"),
                              [&](result<container_info> r) {
                                w.update([&] {
                                  ++calls;
                                  if (!r) got = r.err();
                                });
                              });
    return 0;
  });
  ASSERT_TRUE(w.wait([&] { return calls >= 1; }, std::chrono::seconds(10)));
  // Let the loop run a few more rounds: a second completion would show here.
  for (int i = 0; i < 3; ++i) lt.call([] { return 0; });
  EXPECT_EQ(w.read([&] { return calls; }), 1);
  ASSERT_TRUE(w.read([&] { return got.has_value(); }));
  EXPECT_EQ(w.read([&] { return got->code; }), make_error_code(errc::transport));
  EXPECT_NE(w.read([&] { return got->detail; }).find("/nonexistent/hmq/docker.sock"),
            std::string::npos);
  lt.call([&] {
    c.reset();
    return 0;
  });
}

// stop() ends what is in flight (a call the Engine does not answer, a wait) at once: each
// callback runs once with errc::stopped, the connection is closed, and a call made after stop()
// ends the same way without touching the socket.
TEST(docker_client, stop_completes_calls_in_flight_with_stopped) {
  test::waiter w;
  bool request_seen = false;
  std::atomic<bool> closed{false};
  fake_engine e([&](int fd, const std::string&) {
    w.update([&] { request_seen = true; });
    wait_for_close(fd);
    closed = true;
  });
  test::loop_thread lt;
  std::vector<std::error_code> codes;
  std::unique_ptr<client> c;
  auto record = [&](const result<void>& r) {
    w.update([&] { codes.push_back(r ? std::error_code() : r.err().code); });
  };
  lt.call([&] {
    c = std::make_unique<client>(lt.loop(), client_options{.socket_path = e.path()});
    c->submit<void>(api::ping(c->engine()), record);
    c->submit<void>(api::sleep(c->engine(), std::chrono::hours(1)), record);
    return 0;
  });
  ASSERT_TRUE(w.wait([&] { return request_seen; }, std::chrono::seconds(10)));
  lt.call([&] {
    c->stop();
    c->submit<void>(api::ping(c->engine()), record);
    return 0;
  });
  ASSERT_TRUE(w.wait([&] { return codes.size() >= 3; }, std::chrono::seconds(10)));
  for (int i = 0; i < 3; ++i) lt.call([] { return 0; });
  auto got = w.read([&] { return codes; });
  EXPECT_EQ(got, std::vector<std::error_code>(3, make_error_code(errc::stopped)));
  e.join();
  EXPECT_TRUE(closed);
  lt.call([&] {
    c.reset();
    return 0;
  });
}

// After the client is destroyed nothing is called back, even for a call that was in flight.
TEST(docker_client, nothing_is_called_back_after_the_client_is_destroyed) {
  test::waiter w;
  bool request_seen = false;
  fake_engine e([&](int fd, const std::string&) {
    w.update([&] { request_seen = true; });
    wait_for_close(fd);
  });
  test::loop_thread lt;
  int calls = 0;
  std::unique_ptr<client> c;
  lt.call([&] {
    c = std::make_unique<client>(lt.loop(), client_options{.socket_path = e.path()});
    c->submit<void>(api::ping(c->engine()), [&](result<void>) { ++calls; });
    return 0;
  });
  ASSERT_TRUE(w.wait([&] { return request_seen; }, std::chrono::seconds(10)));
  lt.call([&] {
    c.reset();
    return 0;
  });
  for (int i = 0; i < 5; ++i) lt.call([] { return 0; });
  EXPECT_EQ(lt.call([&] { return calls; }), 0);
  e.join();
}

}  // namespace
}  // namespace hmq::agent::docker::http
