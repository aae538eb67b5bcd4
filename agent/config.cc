#include "agent/config.h"

namespace hmq::agent {

void add_flags(CLI::App& app, config& c) {
  app.set_config("--config", "", "Read options from this TOML/INI file (same names as the flags)");
  app.add_option("--broker", c.broker, "MQTT broker URI (tcp://, ssl://)")->capture_default_str();
  app.add_option("--exchange-key", c.exchange_key,
                 "The exchange's public key: base64 or hex, @FILE, or the path of its .pub file")
      ->required();
  app.add_option(
         "--data-dir", c.data_dir,
         "Directory for the node key pair (agent.key, 0600) and the agent's SQLite (agent.db)")
      ->capture_default_str();
  app.add_option(
      "--control-socket", c.control_socket,
      "Unix socket of the local control API used by `hmq` (default <data-dir>/agent.sock)");
  app.add_option("--finalize-timeout", c.finalize_timeout_s,
                 "Seconds to wait for the agbot's ReplyAck after accepting; then cancel with 107")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  app.add_option("--topic-prefix", c.topic_prefix, "MQTT topic prefix shared by every party")
      ->capture_default_str();
  app.add_option("--log-level", c.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  // Workload runtime (agent/docker/): flags kept together so they are easy to find.
  app.add_option("--runtime", c.runtime,
                 "Workload runtime: docker (the Docker Engine) or memory (nothing runs)")
      ->capture_default_str()
      ->check(CLI::IsMember({"docker", "memory"}));
  app.add_option("--docker-socket", c.docker_socket,
                 "Docker Engine API socket (Podman's compatible socket works too)")
      ->capture_default_str();
  app.add_option("--docker-wait", c.docker_wait_s,
                 "Seconds a deploy waits (retrying with back-off) for a Docker Engine that refuses "
                 "connections before it cancels the agreement with 103; 0: do not wait")
      ->capture_default_str()
      ->check(CLI::Range(0, 86400));
  app.add_flag("--keep-images", c.keep_images,
               "Keep images no agreement uses any more instead of removing them");
  app.add_option("--crash-limit", c.crash_limit,
                 "Container deaths tolerated within --crash-window; one more cancels the agreement "
                 "(103/108)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app.add_option("--crash-window", c.crash_window_s,
                 "Seconds over which container deaths are counted")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  app.add_option(
         "--heartbeat-interval", c.heartbeat_interval_s,
         "Seconds between heartbeats to the exchange (fractions allowed); the MQTT keep-alive "
         "is set to the same value (at least 1 s), so heartbeats replace PINGREQs")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 86400.0));
  app.add_option(
         "--upgrade-verify-window", c.upgrade_verify_window_s,
         "Seconds a new version must run without crashing during an upgrade; a failure inside "
         "restores the previous version")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 86400.0));
  app.add_option("--mailbox-rate", c.mailbox_rate,
                 "Messages a second one sender key may put in this node's mailbox (the exchange "
                 "is exempt); more are dropped and counted; 0 = no limit")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--mailbox-burst", c.mailbox_burst,
                 "Messages one sender key may send this node in a burst")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 1e6));
  app.add_option(
      "--mqtt-user", c.mqtt_user,
      "Broker username (default with --mqtt-password-file: this node's mailbox id, shown by "
      "`hmq node status`)");
  app.add_option("--mqtt-password-file", c.mqtt_password_file,
                 "File whose first line is the node token. As this node's mailbox (the default "
                 "user) the agent connects with the broker password the exchange derives from "
                 "it; as any other --mqtt-user, the line is the password itself "
                 "(docs/security.md)");
  app.add_option("--ca-file", c.ca_file,
                 "CA certificate of the broker's TLS listener (mqtts:// URIs)");
  app.add_option("--exchange-url", c.exchange_url,
                 "HZN_EXCHANGE_URL given to containers (default: the broker URI)");
}

}  // namespace hmq::agent
