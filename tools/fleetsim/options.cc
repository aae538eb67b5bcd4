// hmq-fleetsim's command line: every option of fleetsim::options with its --help text.
#include "tools/fleetsim/fleetsim.h"

namespace hmq::fleetsim {

void add_flags(CLI::App& app, options& o) {
  app.add_option("--broker", o.broker, "MQTT broker URI")->capture_default_str();
  app.add_option("--exchange-key", o.exchange_key,
                 "The exchange's public key: base64 or hex, @FILE, or the path of its .pub file")
      ->required();
  app.add_option("--org", o.org, "org of the simulated nodes")->required();
  app.add_option("--pattern", o.pattern,
                 "pattern the nodes register for: org/pattern (or a name in --org)")
      ->required();
  app.add_option(
      "-u,--user,--token", o.user,
      "[org/]user:password of a user of the org; with --create-nodes the nodes are created first");
  app.add_flag("--create-nodes", o.create_nodes,
               "create the nodes (and their tokens) in the exchange first");
  app.add_option("-n,--nodes", o.nodes, "number of simulated nodes")->capture_default_str();
  app.add_option("--node-prefix", o.node_prefix, "node ids are <prefix>0 .. <prefix>N-1")
      ->capture_default_str();
  app.add_option("--token-prefix", o.token_prefix, "node tokens are <prefix>i")
      ->capture_default_str();
  app.add_option("--arch", o.arch, "architecture the nodes report")->capture_default_str();
  app.add_option("--trust", o.trust_keys,
                 "publisher public key file (hmq key create) the nodes trust; repeatable");
  app.add_option("--connections", o.connections,
                 "MQTT connections shared by the nodes (0: one per 2500 nodes)")
      ->capture_default_str();
  app.add_option("--create-parallel", o.create_parallel, "node creation RPCs in flight")
      ->capture_default_str();
  app.add_option(
         "--heartbeat-interval", o.heartbeat_interval_s,
         "seconds between each node's heartbeats (the agent's sealed frame on hb/{mailbox}, QoS 0, "
         "spread evenly over the interval; 0: off). Default 60 = hmq-agent's default, so a fleet "
         "bench costs the broker and exchange what a real fleet at default settings does")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--stop-nodes", o.stop_nodes,
                 "nodes 0..K-1 stop --stop-after seconds after their first agreement: no "
                 "heartbeats, nothing "
                 "in or out (a node that lost power); the exchange marks them stale")
      ->capture_default_str();
  app.add_option("--stop-after", o.stop_after_s,
                 "seconds after its first agreement a --stop-nodes node stops")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option(
         "--crash-probability", o.crash_probability,
         "probability that a deployed workload crashes for good 1-5 s later (memory runtime)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--link-latency", o.link_latency_ms,
                 "one-way delay in ms added in the sim's routing layer");
  app.add_option("--link-loss", o.link_loss_pct,
                 "percent of messages dropped in the sim's routing layer")
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--duration", o.duration_s,
                 "run this many seconds (0: until every node has an agreement)");
  app.add_option("--timeout", o.timeout_s, "give up after this many seconds")
      ->capture_default_str();
  app.add_option("--progress", o.progress_s, "seconds between progress lines on stderr (0: none)")
      ->capture_default_str();
  app.add_option("--rpc-timeout", o.rpc_timeout_s, "seconds the nodes wait for an exchange answer")
      ->capture_default_str();
  app.add_option("--finalize-timeout", o.finalize_timeout_s, "agent finalize timeout in seconds")
      ->capture_default_str();
  app.add_option("--upgrade-verify-window", o.upgrade_verify_window_s,
                 "seconds a node runs a new service version before it confirms the upgrade (as "
                 "hmq-agent's flag)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--topic-prefix", o.topic_prefix, "MQTT topic prefix")->capture_default_str();
  app.add_option("-o,--output", o.output, "summary format: text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("--log-level", o.log_level, "log level of the simulated agents")
      ->capture_default_str();
}

}  // namespace hmq::fleetsim
