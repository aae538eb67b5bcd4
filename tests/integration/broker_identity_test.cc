#include <gtest/gtest.h>

#include <regex>

#include "tests/support/fleet.h"
#include "tests/support/mosquitto.h"
#include "tests/support/temp_dir.h"

// Broker identities with the real mosquitto dynamic-security plugin: the exchange provisions a
// client per node (docs/security.md) and the broker enforces its ACLs.
namespace hmq::test {
namespace {

using namespace std::chrono_literals;

struct secure_setup {
  temp_dir dir{"hmq-dynsec"};
  std::optional<mosquitto_broker> broker;
  std::optional<process> exchange;
  std::string key;

  secure_setup() {
    auto r = run_command({std::string(HMQ_SOURCE_DIR) + "/broker-config/init-dynsec.sh", dir.path().string()}, {},
                         dir.path());
    EXPECT_EQ(r.exit, 0) << r.out << r.err;
    broker_options bo;
    bo.extra_config = {"allow_anonymous false",
                       "plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
                       "plugin_opt_config_file " + (dir.path() / "dynamic-security.json").string()};
    broker.emplace(bo);
    auto xdir = dir.path() / "exchange";
    std::filesystem::create_directories(xdir);
    exchange.emplace(process::start(
        {{exchange_binary(), "--broker", broker->uri(), "--data-dir", xdir.string(), "--root-password", "r",
          "--hash-strength", "minimum", "--mqtt-user", "hmq-exchange", "--mqtt-password-file",
          (dir.path() / "hmq-exchange.password").string(), "--provision-broker"},
         {},
         xdir / "exchange.log"}));
    EXPECT_TRUE(wait_for_log(xdir / "exchange.log", "hmq-exchange ready", 1, 20s)) << read_file(xdir / "exchange.log");
    std::smatch m;
    std::string text = read_file(xdir / "exchange.log");
    if (std::regex_search(text, m, std::regex("key=([A-Za-z0-9+/=]+)"))) key = m[1];
  }

  run_result hmq(std::vector<std::string> args) {
    args.insert(args.begin(), {hmq_binary(), "exchange", "-u", "root/root:r"});
    return run_command(args,
                       {{"HMQ_EXCHANGE", broker->uri()},
                        {"HMQ_EXCHANGE_KEY", key},
                        {"HMQ_MQTT_USER", "hmq-operator"},
                        {"HMQ_MQTT_PASSWORD_FILE", (dir.path() / "hmq-operator.password").string()},
                        {"HOME", dir.path().string()}},
                       dir.path());
  }

  // mosquitto_sub -d as `user`: its output (SUBACK codes, connection errors).
  run_result sub(const std::string& user, const std::string& pw, std::vector<std::string> topics) {
    std::vector<std::string> argv{"/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(broker->port()),
                                  "-u", user, "-P", pw, "-V", "mqttv5", "-W", "1", "-d"};
    for (auto& t : topics) argv.insert(argv.end(), {"-t", t});
    auto r = run_command(argv, {}, dir.path(), 10s);
    r.out += r.err;
    return r;
  }
};

constexpr const char* mb = "abcdefghijklmnop";

TEST(broker_identity, node_reads_only_its_own_mailbox_and_removed_node_is_refused) {
  secure_setup s;
  ASSERT_FALSE(s.key.empty());
  ASSERT_EQ(s.hmq({"org", "create", "acme"}).exit, 0);
  auto c = s.hmq({"--org", "acme", "node", "create", "n1:tok1", "--mailbox", mb});
  ASSERT_EQ(c.exit, 0) << c.out << c.err;
  // Own mailbox granted (0), another mailbox and # refused (135 = not authorized).
  auto r = s.sub(mb, "tok1", {std::string("hmq/v1/mb/") + mb, "hmq/v1/mb/zzzzzzzzzzzzzzzz", "#"});
  EXPECT_NE(r.out.find("Subscribed (mid: 1): 0, 135, 135"), std::string::npos) << r.out;
  // Wrong password refused.
  r = s.sub(mb, "wrong", {std::string("hmq/v1/mb/") + mb});
  EXPECT_NE(r.out.find("Not authorized"), std::string::npos) << r.out;
  // Anonymous refused.
  r = run_command({"/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(s.broker->port()), "-t", "#",
                   "-W", "1"},
                  {}, s.dir.path(), 10s);
  EXPECT_NE((r.out + r.err).find("not authorised"), std::string::npos) << r.out << r.err;
  // Removing the node removes its broker client.
  ASSERT_EQ(s.hmq({"--org", "acme", "node", "remove", "n1"}).exit, 0);
  r = s.sub(mb, "tok1", {std::string("hmq/v1/mb/") + mb});
  EXPECT_NE(r.out.find("Not authorized"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace hmq::test
