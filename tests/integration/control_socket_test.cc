#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>

#include "core/control/control.h"
#include "core/loop/loop.h"

namespace hmq::core::control {
namespace {

// A control server on a real unix socket in a fresh temp dir, served by an event loop thread.
class control_socket : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hmq-control-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ / "test.sock";
  }
  void TearDown() override {
    stop();
    std::filesystem::remove_all(dir_);
  }
  void start(size_t max_line = default_max_line) {
    srv_ = std::make_unique<server>(
        loop_.io(), path_,
        [](const json& req, reply_fn reply) {
          if (req["op"] == "echo")
            return reply(ok_response({{"value", req.value("value", json())}}));
          reply(error_response("unknown op"));
        },
        max_line);
    ASSERT_TRUE(srv_->start().ok());
    thread_ = std::thread([this] { loop_.run(); });
  }
  void stop() {
    if (!thread_.joinable()) return;
    loop_.post([this] { srv_->stop(); });
    loop_.stop();
    thread_.join();
  }
  // Sends raw bytes and returns everything read until the server closes or a newline arrives.
  std::string raw_exchange(const std::string& bytes) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;  // the server may hang up on an over-long line
      off += static_cast<size_t>(n);
    }
    std::string out;
    char c;
    while (::read(fd, &c, 1) == 1) {
      out.push_back(c);
      if (c == '\n') break;
    }
    ::close(fd);
    return out;
  }

  std::filesystem::path dir_, path_;
  loop::event_loop loop_;
  std::unique_ptr<server> srv_;
  std::thread thread_;
};

TEST_F(control_socket, round_trips_a_request) {
  start();
  auto r = call(path_, {{"op", "echo"}, {"value", "hello"}});
  ASSERT_TRUE(r.ok()) << r.err().message();
  EXPECT_EQ((*r)["ok"], true);
  EXPECT_EQ((*r)["value"], "hello");
}

TEST_F(control_socket, socket_file_is_owner_only) {
  start();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(control_socket, bad_json_line_gets_error_and_connection_keeps_serving) {
  start();
  std::string out = raw_exchange("this is not json\n");
  auto r = json::parse(out);
  EXPECT_EQ(r["ok"], false);
  // The server is still alive for the next client.
  auto again = call(path_, {{"op", "echo"}, {"value", 1}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)["value"], 1);
}

TEST_F(control_socket, over_long_line_is_refused_without_crashing) {
  start(/*max_line=*/1024);
  std::string out = raw_exchange(std::string(64 * 1024, 'x') + "\n");
  if (!out.empty()) {
    EXPECT_EQ(json::parse(out)["ok"], false);
  }
  auto again = call(path_, {{"op", "echo"}});
  ASSERT_TRUE(again.ok());
}

TEST_F(control_socket, client_reports_no_daemon_as_connect_failed) {
  auto r = call(dir_ / "nobody.sock", {{"op", "echo"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), make_error_code(errc::connect_failed));
}

TEST_F(control_socket, second_server_on_a_live_path_is_refused) {
  start();
  loop::event_loop other;
  server second(other.io(), path_, [](const json&, reply_fn r) { r(ok_response()); });
  auto s = second.start();
  EXPECT_FALSE(s.ok());
}

TEST_F(control_socket, stale_socket_file_is_replaced) {
  // A socket file left by a crashed daemon (nobody listening) does not block a restart.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
  start();
  EXPECT_TRUE(call(path_, {{"op", "echo"}}).ok());
}

}  // namespace
}  // namespace hmq::core::control
