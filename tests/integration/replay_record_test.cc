// hmq-replay record and play against a real mosquitto: QoS, retain flag and MQTT v5 properties
// survive recording and playing back; an unreachable broker is exit code 3.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <future>

#include "core/bus/client.h"
#include "tests/support/fleet.h"
#include "tests/support/loop_thread.h"
#include "tests/support/mosquitto.h"

namespace hmq::test {
namespace {

using namespace std::chrono_literals;
namespace bus = core::bus;
namespace fs = std::filesystem;

std::string replay_binary() {
  return std::string(HMQ_BINARY_DIR) + "/tools/replay/hmq-replay";
}

// A bus client living on its own loop thread.
struct test_client {
  loop_thread lt;
  std::unique_ptr<bus::client> c;
  explicit test_client(const std::string& uri) {
    bus::options o;
    o.broker_uri = uri;
    o.clean_start = true;
    o.retain_as_published = true;
    lt.call([&] { c = std::make_unique<bus::client>(lt.loop(), o); });
  }
  ~test_client() {
    lt.call([&] {
      c->stop();
      c.reset();
    });
  }
  core::result<void> start() {
    std::promise<core::result<void>> p;
    lt.call([&] { c->start([&](core::result<void> r) { p.set_value(r); }); });
    return p.get_future().get();
  }
  core::result<void> publish(const std::string& topic, const std::string& payload,
                             bus::publish_options o) {
    std::promise<core::result<void>> p;
    lt.call([&] {
      c->publish(topic, {payload.begin(), payload.end()}, o,
                 [&](core::result<void> r) { p.set_value(r); });
    });
    return p.get_future().get();
  }
};

bus::publish_options rich_options() {
  bus::publish_options o;
  o.qos = 1;
  o.retain = true;
  o.message_expiry_s = 300;
  o.content_type = "application/x-test";
  o.response_topic = "test/reply";
  o.correlation_data = {0xde, 0xad, 0xbe, 0xef};
  o.payload_utf8 = true;
  o.user_props = {{"a", "1"}, {"a", "2"}, {"b", "x"}};
  return o;
}

json find_topic(const json& messages, const std::string& topic) {
  for (const auto& m : messages)
    if (m.value("topic", "") == topic) return m;
  return json();
}

TEST(replay_record, keeps_qos_retain_and_v5_properties_and_play_publishes_them_again) {
  mosquitto_broker broker;
  temp_dir dir("replay-record");
  const fs::path file = dir / "r.hmqrec";
  auto recorder = process::start({{replay_binary(), "-v", "record", "-t", "test/#", "-o",
                                   file.string(), "--broker", broker.uri(), "--count", "3"},
                                  {},
                                  dir / "record.log"});
  ASSERT_TRUE(wait_for_log(dir / "record.log", "hmq-replay: recording", 1, 20s))
      << read_file(dir / "record.log");

  test_client pub(broker.uri());
  ASSERT_TRUE(pub.start());
  bus::publish_options q0;
  q0.qos = 0;
  bus::publish_options q2;
  q2.qos = 2;
  ASSERT_TRUE(pub.publish("test/plain", "zero", q0));
  ASSERT_TRUE(pub.publish("test/rich", "{\"x\":1}", rich_options()));
  ASSERT_TRUE(pub.publish("test/two", "two", q2));
  // --count 3: the recorder ends by itself with a complete file.
  auto st = recorder.wait_for(20s);
  ASSERT_TRUE(st) << read_file(dir / "record.log");
  ASSERT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0)
      << describe_wait_status(*st) << read_file(dir / "record.log");

  auto ins = run_command({replay_binary(), "inspect", file.string(), "-o", "json"}, {}, dir.path());
  ASSERT_EQ(ins.exit, 0) << ins.err;
  json doc = json::parse(ins.out);
  ASSERT_EQ(doc["messages"].size(), 3u) << ins.out;
  json plain = find_topic(doc["messages"], "test/plain"),
       rich = find_topic(doc["messages"], "test/rich"),
       two = find_topic(doc["messages"], "test/two");
  EXPECT_EQ(plain["qos"], 0);
  EXPECT_EQ(plain["retain"], false);
  EXPECT_FALSE(plain.contains("properties"));
  EXPECT_TRUE(plain["envelope"].is_null());
  EXPECT_EQ(two["qos"], 2);
  EXPECT_EQ(rich["qos"], 1);
  EXPECT_EQ(rich["retain"], true);
  EXPECT_EQ(rich["size"], 7);
  const json& p = rich["properties"];
  EXPECT_GT(p.value("message_expiry_s", 0), 250);
  EXPECT_LE(p.value("message_expiry_s", 0), 300);
  EXPECT_EQ(p["content_type"], "application/x-test");
  EXPECT_EQ(p["response_topic"], "test/reply");
  EXPECT_EQ(p["correlation_data"], "deadbeef");
  EXPECT_EQ(p["payload_utf8"], true);
  EXPECT_EQ(p["user_properties"], json::parse(R"([["a","1"],["a","2"],["b","x"]])"));

  // Play into a second broker, recording it again there: the same messages come out.
  mosquitto_broker broker2;
  const fs::path file2 = dir / "r2.hmqrec";
  auto rec2 = process::start({{replay_binary(), "-v", "record", "-t", "#", "-o", file2.string(),
                               "--broker", broker2.uri(), "--count", "3"},
                              {},
                              dir / "record2.log"});
  ASSERT_TRUE(wait_for_log(dir / "record2.log", "hmq-replay: recording", 1, 20s));
  auto play = run_command({replay_binary(), "play", file.string(), "--broker", broker2.uri(),
                           "--speed", "0", "-o", "json"},
                          {}, dir.path());
  ASSERT_EQ(play.exit, 0) << play.err;
  EXPECT_EQ(json::parse(play.out)["published"], 3);
  ASSERT_TRUE(rec2.wait_for(20s));
  auto ins2 =
      run_command({replay_binary(), "inspect", file2.string(), "-o", "json"}, {}, dir.path());
  ASSERT_EQ(ins2.exit, 0) << ins2.err;
  json again = find_topic(json::parse(ins2.out)["messages"], "test/rich");
  EXPECT_EQ(again["retain"], true);
  EXPECT_EQ(again["properties"]["content_type"], "application/x-test");
  EXPECT_EQ(again["properties"]["user_properties"], p["user_properties"]);
  EXPECT_EQ(again["properties"]["correlation_data"], "deadbeef");
}

TEST(replay_record, unreachable_broker_exits_3_and_leaves_no_file) {
  temp_dir dir("replay-record");
  const fs::path file = dir / "r.hmqrec";
  auto r = run_command({replay_binary(), "record", "-t", "#", "-o", file.string(), "--broker",
                        "tcp://127.0.0.1:" + std::to_string(free_port())},
                       {}, dir.path());
  EXPECT_EQ(r.exit, 3) << r.err;
  EXPECT_NE(r.err.find("cannot connect to the broker"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(file));
}

TEST(replay_record, sigterm_ends_the_recording_with_a_complete_file) {
  mosquitto_broker broker;
  temp_dir dir("replay-record");
  const fs::path file = dir / "r.hmqrec";
  auto recorder = process::start(
      {{replay_binary(), "-v", "record", "-t", "#", "-o", file.string(), "--broker", broker.uri()},
       {},
       dir / "log"});
  ASSERT_TRUE(wait_for_log(dir / "log", "hmq-replay: recording", 1, 20s));
  test_client pub(broker.uri());
  ASSERT_TRUE(pub.start());
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(pub.publish("t/" + std::to_string(i), std::string(100, 'x'), {}));
  ASSERT_TRUE(wait_for_log(dir / "log", "recorded 50 messages", 1, 20s)) << read_file(dir / "log");
  recorder.kill(SIGTERM);
  auto st = recorder.wait_for(20s);
  ASSERT_TRUE(st);
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << describe_wait_status(*st);
  auto ins = run_command({replay_binary(), "inspect", file.string()}, {}, dir.path());
  EXPECT_EQ(ins.exit, 0) << ins.err;
  EXPECT_EQ(std::count(ins.out.begin(), ins.out.end(), '\n'), 50);
}

}  // namespace
}  // namespace hmq::test
