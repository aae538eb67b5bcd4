#pragma once

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "core/bus/credentials.h"
#include "tests/support/fleet.h"
#include "tests/support/mosquitto.h"
#include "tests/support/temp_dir.h"

// A mosquitto with the dynamic-security plugin set up by broker-config/init-dynsec.sh and an
// hmq-exchange that provisions broker identities (docs/security.md), plus the commands tests
// use on it: `hmq exchange` as any user, mosquitto_sub as any broker identity, an agbot that
// waits for its provisioning. Used by broker_identity_test and the attack_* suites.
namespace hmq::test {

using namespace std::chrono_literals;

struct secure_setup {
  temp_dir dir{"hmq-dynsec"};
  std::optional<mosquitto_broker> broker;
  std::optional<process> exchange;
  std::string key;

  // `broker_extra`: more mosquitto.conf lines for this test's broker (e.g. a small queue).
  explicit secure_setup(const std::vector<std::string>& broker_extra = {}) {
    auto r = run_command(
        {std::string(HMQ_SOURCE_DIR) + "/broker-config/init-dynsec.sh", dir.path().string()}, {},
        dir.path());
    EXPECT_EQ(r.exit, 0) << r.out << r.err;
    broker_options bo;
    bo.extra_config = {"allow_anonymous false",
                       "plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
                       "plugin_opt_config_file " + (dir.path() / "dynamic-security.json").string()};
    // The hygiene settings come from the shipped broker-config/mosquitto-secure.conf, so the
    // attack_* suites fail if it loses them: client id = username, no retained messages.
    std::ifstream shipped(std::string(HMQ_SOURCE_DIR) + "/broker-config/mosquitto-secure.conf");
    std::set<std::string> hygiene;
    for (std::string line; std::getline(shipped, line);)
      if (line.rfind("use_username_as_clientid ", 0) == 0 ||
          line.rfind("retain_available ", 0) == 0)
        hygiene.insert(line);
    EXPECT_EQ(hygiene.size(), 2u) << "mosquitto-secure.conf lost a hygiene setting";
    bo.extra_config.insert(bo.extra_config.end(), hygiene.begin(), hygiene.end());
    bo.extra_config.insert(bo.extra_config.end(), broker_extra.begin(), broker_extra.end());
    broker.emplace(bo);
    start_exchange({}, "exchange.log");
  }

  // (Re)starts hmq-exchange on the same data dir with `extra` flags, logging to `log_name`;
  // waits for "ready". The previous process, if any, must have exited.
  void start_exchange(std::vector<std::string> extra, const std::string& log_name) {
    auto xdir = dir.path() / "exchange";
    std::filesystem::create_directories(xdir);
    std::vector<std::string> argv{exchange_binary(),
                                  "--broker",
                                  broker->uri(),
                                  "--data-dir",
                                  xdir.string(),
                                  "--root-password",
                                  "r",
                                  "--hash-strength",
                                  "minimum",
                                  "--mqtt-user",
                                  "hmq-exchange",
                                  "--mqtt-password-file",
                                  (dir.path() / "hmq-exchange.password").string(),
                                  "--provision-broker"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    exchange.reset();
    exchange.emplace(process::start({argv, {}, xdir / log_name}));
    EXPECT_TRUE(wait_for_log(xdir / log_name, "hmq-exchange ready", 1, 20s))
        << read_file(xdir / log_name);
    std::smatch m;
    std::string text = read_file(xdir / log_name);
    if (std::regex_search(text, m, std::regex("key=([A-Za-z0-9+/=]+)"))) key = m[1];
  }
  std::filesystem::path exchange_log(const std::string& log_name) const {
    return dir.path() / "exchange" / log_name;
  }

  // `hmq ARGS...`: with -u it connects as that exchange user's own broker identity.
  run_result raw_hmq(std::vector<std::string> args) {
    args.insert(args.begin(), hmq_binary());
    return run_command(
        args,
        {{"HMQ_EXCHANGE", broker->uri()}, {"HMQ_EXCHANGE_KEY", key}, {"HOME", dir.path().string()}},
        dir.path());
  }
  // The broker identity the exchange provisions for exchange user org/user (what hmq derives).
  static core::bus::user_identity user_identity(const std::string& org, const std::string& user,
                                                const std::string& password) {
    auto id = core::bus::derive_user_identity(org, user, password);
    EXPECT_TRUE(id);
    return id ? *id : core::bus::user_identity{};
  }
  // The broker password of the node or agbot with mailbox `mailbox` and exchange token `token`
  // (what the exchange provisions and the agent and the agbot derive).
  static std::string machine_password(const std::string& mailbox, const std::string& token) {
    auto pw = core::bus::derive_machine_password(mailbox, token);
    EXPECT_TRUE(pw);
    return pw ? *pw : std::string();
  }
  // What `node create` / `agbot create` needs to bind a mailbox: the mailbox id and its key
  // holder's claim (core/bus/credentials.h make_mailbox_claim).
  struct enrolment {
    std::string mailbox;
    std::string claim;
    // "--mailbox M --claim C" for an `hmq exchange ... create` command line.
    std::vector<std::string> flags() const { return {"--mailbox", mailbox, "--claim", claim}; }
  };
  // A new key pair held by the test, claiming its mailbox for `token` (an agent that was never
  // started, e.g. to provision a broker identity that mosquitto_sub then uses).
  enrolment new_enrolment(const std::string& token) const {
    auto kp = core::crypto::box_keypair::generate();
    auto xpk = core::crypto::parse_public_key(key);
    EXPECT_TRUE(xpk);
    enrolment e{core::crypto::mailbox_id(kp.pk), {}};
    if (xpk) e.claim = core::bus::make_mailbox_claim(kp, *xpk, machine_password(e.mailbox, token));
    return e;
  }
  // The enrolment an agent or agbot printed while the broker refused it (enrolment_command).
  static enrolment enrolment_in(const std::string& log_text) {
    std::smatch m;
    enrolment e;
    if (std::regex_search(log_text, m, std::regex("--mailbox ([a-z0-9]+)"))) e.mailbox = m[1];
    if (std::regex_search(log_text, m, std::regex("--claim ([A-Za-z0-9+/=]+)"))) e.claim = m[1];
    return e;
  }
  // `hmq exchange ARGS... <enrolment flags>`.
  run_result hmq_enrol(std::vector<std::string> args, const enrolment& e,
                       const std::string& as = "root/root:r") {
    auto f = e.flags();
    args.insert(args.end(), f.begin(), f.end());
    return hmq(std::move(args), as);
  }

  // `hmq exchange` as root, or as `as` ("org/user:password").
  run_result hmq(std::vector<std::string> args, const std::string& as = "root/root:r") {
    args.insert(args.begin(), {"exchange", "-u", as});
    return raw_hmq(std::move(args));
  }

  // hmq-agbot org/id with --mqtt-token-auth, its data and log in agbot-<id>/ (the same key on
  // every start).
  process start_agbot(const std::string& org, const std::string& id, const std::string& token) {
    const auto d = dir.path() / ("agbot-" + id);
    std::filesystem::create_directories(d);
    return process::start({{agbot_binary(), "--broker", broker->uri(), "--exchange-key", key,
                            "--org", org, "--id", id, "--token", token, "--data-dir", d.string(),
                            "--control-socket", (d / "agbot.sock").string(), "--mqtt-token-auth"},
                           {},
                           d / "agbot.log"});
  }
  // An agbot started before the exchange knows it: waits until the broker refuses it and
  // returns its mailbox and claim from the log line that says how to provision it.
  process start_unprovisioned_agbot(const std::string& org, const std::string& id,
                                    const std::string& token, enrolment& out) {
    auto p = start_agbot(org, id, token);
    EXPECT_TRUE(wait_for_log(agbot_log(id), "--claim", 1, 20s)) << read_file(agbot_log(id));
    out = enrolment_in(read_file(agbot_log(id)));
    return p;
  }
  std::filesystem::path agbot_log(const std::string& id) const {
    return dir.path() / ("agbot-" + id) / "agbot.log";
  }

  // hmq-agent (memory runtime, data, token file and log in agent/) with node token `token`,
  // started before the exchange knows it: waits until the broker refuses it and returns its
  // mailbox and claim from the log line that says how to provision it.
  process start_unprovisioned_agent(const std::string& token, enrolment& out) {
    const auto d = agent_dir();
    std::filesystem::create_directories(d);
    std::ofstream(d / "token") << token;
    auto p = process::start(
        {{agent_binary(), "--broker", broker->uri(), "--exchange-key", key, "--data-dir",
          d.string(), "--runtime", "memory", "--mqtt-password-file", (d / "token").string()},
         {},
         d / "agent.log"});
    EXPECT_TRUE(wait_for_log(d / "agent.log", "--claim", 1, 20s)) << read_file(d / "agent.log");
    out = enrolment_in(read_file(d / "agent.log"));
    return p;
  }
  std::filesystem::path agent_dir() const { return dir.path() / "agent"; }

  // mosquitto_sub -d as `user`: its output (SUBACK codes, connection errors).
  run_result sub(const std::string& user, const std::string& pw, std::vector<std::string> topics) {
    std::vector<std::string> argv{"/usr/bin/mosquitto_sub",
                                  "-h",
                                  "127.0.0.1",
                                  "-p",
                                  std::to_string(broker->port()),
                                  "-u",
                                  user,
                                  "-P",
                                  pw,
                                  "-V",
                                  "mqttv5",
                                  "-W",
                                  "1",
                                  "-d"};
    for (auto& t : topics) argv.insert(argv.end(), {"-t", t});
    auto r = run_command(argv, {}, dir.path(), 10s);
    r.out += r.err;
    return r;
  }
};

// The victim of the attack_* suites: agbot acme/ab1, provisioned and up (its AgbotHello proved
// its mailbox), serving pattern acme/gps. `still_works()` is a full round trip through its
// mailbox: a pattern change is an event sealed to it, and it reloads the pattern by RPC.
struct victim_agbot {
  secure_setup s;
  std::optional<process> agbot;
  secure_setup::enrolment enrolment;
  std::string mailbox;
  size_t reloads = 0;

  victim_agbot() {
    EXPECT_FALSE(s.key.empty());
    EXPECT_EQ(s.hmq({"org", "create", "acme"}).exit, 0);
    EXPECT_EQ(s.raw_hmq({"key", "create"}).exit, 0);
    const auto svc = s.dir.path() / "service.json";
    std::ofstream(svc) << R"({"org": "acme", "url": "https://acme.com/gps", "version": "1.0.0",
      "arch": "amd64", "sharable": "multiple", "deployment": {"services": {"gps":
      {"image": "127.0.0.1:1/gps@sha256:)" +
                              std::string(64, 'a') + R"("}}}})";
    auto r = s.hmq({"--org", "acme", "service", "publish", "-f", svc.string()});
    EXPECT_EQ(r.exit, 0) << r.out << r.err;
    publish_pattern("first");
    // The agbot reads its served patterns once, after its AgbotHello (AgbotAddPattern sends it
    // no event yet): learn its mailbox from a first run, provision it and add the pattern, then
    // start it for good (same data dir, same key, same mailbox).
    {
      auto probe = s.start_unprovisioned_agbot("acme", "ab1", "abtok", enrolment);
      probe.kill(SIGTERM);
      EXPECT_TRUE(probe.wait_for(10s));
    }
    mailbox = enrolment.mailbox;
    r = s.hmq_enrol({"--org", "acme", "agbot", "create", "ab1:abtok"}, enrolment);
    EXPECT_EQ(r.exit, 0) << r.out << r.err;
    r = s.hmq({"--org", "acme", "agbot", "addpattern", "ab1", "acme", "gps"});
    EXPECT_EQ(r.exit, 0) << r.out << r.err;
    agbot.emplace(s.start_agbot("acme", "ab1", "abtok"));
    EXPECT_TRUE(wait_for_log(s.agbot_log("ab1"), "agbot acme/ab1 up", 1, 30s))
        << read_file(s.agbot_log("ab1"));
    EXPECT_TRUE(wait_for_log(s.agbot_log("ab1"), "serving 1 pattern(s)", 1, 30s))
        << read_file(s.agbot_log("ab1"));
  }

  void publish_pattern(const std::string& description) {
    const auto pat = s.dir.path() / "pattern.json";
    std::ofstream(pat) << R"({"org": "acme", "name": "gps", "description": ")" + description +
                              R"(", "services": [{"serviceUrl": "https://acme.com/gps",
      "serviceOrgid": "acme", "serviceArch": "amd64", "serviceVersions": [{"version": "1.0.0"}]}]})";
    auto r = s.hmq({"--org", "acme", "pattern", "publish", "-f", pat.string()});
    EXPECT_EQ(r.exit, 0) << r.out << r.err;
  }

  // The agbot hears an event in its mailbox and answers it with an RPC, over its one session.
  void expect_still_works() {
    ASSERT_TRUE(agbot && agbot->is_running());
    publish_pattern("change " + std::to_string(++reloads));
    EXPECT_TRUE(wait_for_log(s.agbot_log("ab1"), "changed, reloading", reloads, 20s))
        << read_file(s.agbot_log("ab1"));
    const std::string log = read_file(s.agbot_log("ab1"));
    EXPECT_EQ(log.find("broker sent DISCONNECT"), std::string::npos) << log;
    EXPECT_EQ(s.broker->log().find("administrative action"), std::string::npos) << s.broker->log();
  }
};

}  // namespace hmq::test
