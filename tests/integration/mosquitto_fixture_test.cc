#include <gtest/gtest.h>

#include <csignal>

#include "tests/support/mosquitto.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace hmq::test {
namespace {

TEST(mosquitto_fixture, serves_the_shipped_config_on_a_private_port) {
  // The fixture must run the project's own broker settings, not mosquitto's defaults.
  mosquitto_broker broker;
  EXPECT_TRUE(port_accepts(broker.host(), broker.port()));
  EXPECT_EQ(broker.uri(), "tcp://127.0.0.1:" + std::to_string(broker.port()));
  EXPECT_NE(broker.log().find("mosquitto version"), std::string::npos) << broker.log();
}

TEST(mosquitto_fixture, restarts_on_the_same_port_after_a_hard_kill) {
  mosquitto_broker broker;
  const int port = broker.port();
  broker.kill_hard();
  EXPECT_FALSE(broker.running());
  EXPECT_FALSE(port_accepts(broker.host(), port));
  broker.restart();
  EXPECT_TRUE(broker.running());
  EXPECT_EQ(broker.port(), port);
  EXPECT_TRUE(port_accepts(broker.host(), port));
}

TEST(process, reports_exec_failure_with_errno) {
  process_spec spec;
  spec.argv = {"/nonexistent/hmq-no-such-program"};
  EXPECT_THROW(process::start(spec), std::system_error);
}

TEST(process, wait_for_returns_the_exit_status_and_kill_ends_a_child) {
  temp_dir dir;
  process_spec spec;
  spec.argv = {"/bin/sh", "-c", "echo hello-$HMQ_X; exit 3"};
  spec.env = {{"HMQ_X", "world"}};
  spec.log_file = dir / "log";
  auto p = process::start(spec);
  auto status = p.wait_for(std::chrono::seconds(30));
  ASSERT_TRUE(status);
  EXPECT_EQ(describe_wait_status(*status), "exited with 3");

  spec.argv = {"/bin/sleep", "600"};
  auto s = process::start(spec);
  EXPECT_TRUE(s.is_running());
  EXPECT_FALSE(s.wait_for(std::chrono::milliseconds(1)));
  EXPECT_TRUE(s.kill(SIGKILL));
  auto killed = s.wait_for(std::chrono::seconds(30));
  ASSERT_TRUE(killed);
  EXPECT_EQ(describe_wait_status(*killed), "killed by signal 9");
  EXPECT_FALSE(s.is_running());
}

}  // namespace
}  // namespace hmq::test
