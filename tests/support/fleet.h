#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/mosquitto.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

// Whole-system fixtures for integration and end-to-end tests: the real hmq-exchange, hmq-agbot,
// hmq-agent and hmq binaries as processes around a private mosquitto.
namespace hmq::test {

using json = nlohmann::json;

// Paths of the built binaries (HMQ_BINARY_DIR comes from tests/CMakeLists.txt).
std::string exchange_binary();
std::string agbot_binary();
std::string agent_binary();
std::string hmq_binary();

// The whole file ("" if it cannot be read).
std::string read_file(const std::filesystem::path& p);

// Waits (inotify on the file's directory, no polling) until `needle` occurs `count` times in
// the file. False on timeout.
bool wait_for_log(const std::filesystem::path& file, const std::string& needle, size_t count,
                  std::chrono::milliseconds timeout);

// Cross-process state (another process's store, seen through its control socket or the
// exchange) has no event a test could wait on: check `pred` every `step` until it holds or the
// deadline passes. Returns pred()'s last value. Never an assertion on time, only a bound.
template <typename P>
bool eventually(P pred, std::chrono::milliseconds timeout = std::chrono::seconds(30),
                std::chrono::milliseconds step = std::chrono::milliseconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(step);
  }
  return pred();
}

// A finished command: its exit code (128 + signal when killed, -1 when it could not start or
// did not end within the timeout) and what it printed.
struct run_result {
  int exit = -1;
  std::string out;
  std::string err;
};

// Runs argv with the test's environment plus `env` (which wins), stdout and stderr captured
// separately through files in `scratch`. Bounded by `timeout` (then SIGKILL).
run_result run_command(std::vector<std::string> argv, const std::map<std::string, std::string>& env,
                       const std::filesystem::path& scratch,
                       std::chrono::milliseconds timeout = std::chrono::seconds(60));

// One hmq-exchange process on `data_dir` (key, database), logging to data_dir/<instance>.log.
// start() returns once the exchange printed its "hmq-exchange ready: key=..." line (a gtest
// failure otherwise); key() is the public key from that line. One owner thread.
class exchange_process {
 public:
  exchange_process(const std::filesystem::path& data_dir, std::string broker_uri,
                   std::string instance = "", std::string root_password = "rootpw",
                   std::vector<std::string> extra_args = {});
  void start();
  // SIGKILL and reap.
  void kill_hard();
  // SIGTERM and wait for a clean exit (a gtest failure otherwise).
  void stop();
  std::filesystem::path log_file() const;
  const std::string& key() const { return key_; }
  bool running() { return proc_ && proc_->is_running(); }

 private:
  std::filesystem::path dir_;
  std::string uri_;
  std::string instance_;
  std::string root_password_;
  std::vector<std::string> extra_args_;
  size_t starts_ = 0;
  std::string key_;
  std::optional<process> proc_;
};

class fleet;

struct fleet_options {
  size_t agents = 3;
  bool start_agbot = true;  // else start_agbot() later
  // Names; long and distinctive so a byte search of the wire cannot match by chance.
  std::string org = "acme";
  std::string pattern = "gps";       // the pattern the agbot serves
  std::string service = "gps";       // service https://<org>.example/<service>
  std::string node_prefix = "node";  // nodes <prefix>0, <prefix>1, ...
  std::string token_prefix = "tok";  // node tokens <token_prefix>0, ...
  std::string agbot_token = "bottok";
  std::string image = "gpsimage";  // 127.0.0.1:1/<image>@sha256:aa..
  // `hmq exchange service publish -r` (REGISTRY:USER:TOKEN), empty for none.
  std::string registry_auth;
  // hmq-agbot flags.
  std::string reply_timeout = "20s";
  std::string retry_min = "200ms";
  std::string retry_max = "2s";
  int finalize_timeout_s = 60;
  std::string log_level = "info";
  // The published pattern's nodeHealth (seconds).
  int missing_heartbeat_interval_s = 600;
  int check_agreement_status_s = 120;
  // hmq-agent's workload runtime: "memory" (nothing runs) or "docker" (the real Engine), and
  // any further hmq-agent flags (e.g. --heartbeat-interval).
  std::string agent_runtime = "memory";
  std::vector<std::string> agent_args;
  // Further flags for agent i only (after agent_args), e.g. one docker agent in a memory fleet:
  // a --runtime here wins over agent_runtime.
  std::map<size_t, std::vector<std::string>> agent_args_of;
  std::vector<std::string> agbot_args;     // extra hmq-agbot flags
  std::vector<std::string> exchange_args;  // extra hmq-exchange flags
  // When set, publishes the pattern the agbot serves (opts.pattern) instead of the default
  // one-service pattern with a fake image; called once the org, admin and signing key exist.
  std::function<void(fleet&)> publish;
  // Lines appended to mosquitto's config (e.g. a second listener on a veth address).
  std::vector<std::string> broker_extra_config;
  // hmq-agent runs as wrapper + its argv (e.g. {"ip", "netns", "exec", NS}) and connects to
  // agent_broker_uri when that is set (the broker as seen from inside the wrapper).
  std::vector<std::string> agent_wrapper;
  std::string agent_broker_uri;
};

// The whole system on this machine for one test: mosquitto, hmq-exchange, an org with an admin
// user, a signing key (hmq key create, in HOME=<dir>), a digest-pinned service and a pattern
// signed with it, an agbot resource serving the pattern, the hmq-agbot process (with a control
// socket) and N hmq-agent processes (memory runtime, each its own data dir and control socket,
// trusting the signing key), each with a node <prefix>i created in the exchange. Nodes are not
// registered: register() does that through `hmq register`.
//
// Waits are bounded polls of the control sockets and the exchange (eventually()); every
// wait_* returns false on timeout and the test prints logs() for the post-mortem.
// One owner thread (the test's main thread).
class fleet {
 public:
  explicit fleet(fleet_options o = {});
  ~fleet();
  fleet(const fleet&) = delete;
  fleet& operator=(const fleet&) = delete;

  const fleet_options& options() const { return opts_; }
  mosquitto_broker& broker() { return broker_; }
  exchange_process& exchange() { return *exchange_; }
  const std::string& exchange_key() const { return exchange_->key(); }
  const std::filesystem::path& dir() const { return dir_.path(); }
  // The publisher's Ed25519 public key file (hmq key create).
  std::filesystem::path signing_public_key() const;

  // ---- the hmq CLI (HMQ_EXCHANGE, HMQ_EXCHANGE_KEY and HOME set for this fleet)
  run_result hmq(std::vector<std::string> args, std::map<std::string, std::string> env = {});
  // `hmq exchange -u <org>/admin:admin-pw ARGS...`
  run_result admin(std::vector<std::string> args);
  // Publish service https://<org>.example/<service> (image 127.0.0.1:1/<image>@sha256:...) and
  // pattern `name` using it, signed with the key in `key_dir` (default: hmq key create's).
  void publish_pattern(const std::string& name, const std::string& service,
                       const std::string& image, const std::filesystem::path& key_dir = {});

  // Upgrades (docs/agbot.md "Rollouts"): publish version `version` of the served service (same
  // image) with extra container `environment` (e.g. the memory runtime's TEST-ONLY
  // HMQ_TEST_CRASH=1), then republish the served pattern listing `versions`, most preferred
  // first (priority 1, 2, ...; retries 0), with an upgradePolicy.
  void publish_service_version(const std::string& version,
                               const std::vector<std::string>& environment = {});
  void publish_pattern_versions(const std::vector<std::string>& versions, unsigned max_in_flight,
                                unsigned batch_pause_s, unsigned max_failures);

  // ---- agents (index i: node <prefix>i)
  size_t agents() const { return agents_.size(); }
  // Start one more agent (and create its node in the exchange); returns its index.
  size_t add_agent(bool trust_publisher = true);
  std::string node(size_t i) const { return opts_.node_prefix + std::to_string(i); }
  std::string qualified_node(size_t i) const { return opts_.org + "/" + node(i); }
  std::filesystem::path agent_socket(size_t i) const;
  std::filesystem::path agent_log(size_t i) const;
  process& agent_process(size_t i) { return *agents_.at(i).proc; }
  void start_agent(size_t i);
  void kill_agent(size_t i);
  // A control request to agent i ({"ok": false, "error"} when the socket does not answer).
  json agent_call(size_t i, const json& req);
  // Its agreements (agreement_list), [] when it does not answer.
  json agent_agreements(size_t i);
  // `hmq register` for pattern <org>/<pattern> (default: the served one); the exit code.
  run_result register_node(size_t i, const std::string& pattern = "");
  run_result unregister_node(size_t i);

  // ---- the agbot
  std::filesystem::path agbot_socket() const;
  std::filesystem::path agbot_log() const;
  void start_agbot();
  void kill_agbot();
  bool agbot_running();
  process& agbot_process() { return *agbot_; }
  json agbot_call(const json& req);
  // Live agreements (all: cancelled too), [] when the agbot does not answer.
  json agbot_agreements(bool all = false);
  // The agbot's agreements for node i only.
  json agbot_agreements_of(size_t i, bool all = false);

  // ---- the exchange's records (ListAgreements through `hmq exchange node agreements -o json`)
  json exchange_agreements(size_t i);

  // ---- waits
  // Agent i has exactly one live agreement, finalized and synced to the exchange; returns its
  // id, or "" on timeout.
  std::string wait_agent_finalized(size_t i,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // The agbot lists agreement `id` as finalized (and no other live one for node i).
  bool wait_agbot_finalized(size_t i, const std::string& id,
                            std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // The exchange records exactly agreement `id` for node i, finalized.
  bool wait_exchange_finalized(size_t i, const std::string& id,
                               std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // All three; returns the agreement id or "".
  std::string wait_finalized_everywhere(
      size_t i, std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Every process's log, for failure messages.
  std::string logs();

 private:
  struct agent_slot {
    std::optional<process> proc;
    bool trust_publisher = true;
  };
  void setup();

  fleet_options opts_;
  temp_dir dir_{"hmq-fleet"};
  mosquitto_broker broker_{broker_options{.extra_config = opts_.broker_extra_config}};
  std::optional<exchange_process> exchange_;
  std::optional<process> agbot_;
  std::vector<agent_slot> agents_;
};

}  // namespace hmq::test
