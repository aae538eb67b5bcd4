#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <string>

// hmq-agent's configuration: flags, or the same names in a --config file (TOML/INI).
namespace hmq::agent {

struct config {
  std::string broker = "tcp://127.0.0.1:1883";
  std::string exchange_key;  // base64/hex, or a path to the exchange's .pub file
  std::filesystem::path data_dir = "/var/lib/hmq/agent";
  std::filesystem::path control_socket;  // empty: <data_dir>/agent.sock
  int finalize_timeout_s = 60;
  std::string topic_prefix = "hmq/v1";
  std::string log_level = "info";
  // Workload runtime (docs/containers.md): "docker" on the Engine's socket, or "memory" (tests).
  std::string runtime = "docker";
  std::string docker_socket = "/var/run/docker.sock";
  bool keep_images = false;
  int crash_limit = 5;
  int crash_window_s = 60;
  // Seconds between heartbeats; also the MQTT keep-alive, so heartbeats stand in for PINGREQs.
  double heartbeat_interval_s = 60;
  int docker_wait_s = 60;    // how long a deploy waits for an Engine that refuses connections
  std::string exchange_url;  // HZN_EXCHANGE_URL for the containers; default: the broker URI
  // Seconds a new version must run without failing during an upgrade before the old one is
  // given up (fractions allowed, for tests).
  double upgrade_verify_window_s = 30;
  // Broker identity (docs/security.md): username defaults to the node's mailbox id (what the
  // exchange provisions), the password file holds the node token; --ca-file for mqtts://.
  // Per-sender flood limit on the mailbox (the exchange is exempt): messages a second and burst.
  double mailbox_rate = 20;
  double mailbox_burst = 100;
  std::string mqtt_user;
  std::filesystem::path mqtt_password_file;
  std::filesystem::path ca_file;

  std::filesystem::path socket_path() const {
    return control_socket.empty() ? data_dir / "agent.sock" : control_socket;
  }
};

// Adds every option (with its --help text) to `app`.
void add_flags(CLI::App& app, config& c);

}  // namespace hmq::agent
