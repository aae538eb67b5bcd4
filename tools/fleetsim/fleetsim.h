#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

// hmq-fleetsim: N simulated edge nodes in one process, for scale benchmarks (docs/PERFORMANCE.md).
// Each node is a real hmq::agent::engine with its own X25519 identity, mailbox, in-memory agent
// store and an in-memory workload runtime; they talk to a real broker, hmq-exchange and hmq-agbot.
//
// Connections: the nodes share a small pool of MQTT connections (--connections). Each
// connection subscribes to the mailboxes of its nodes and the sim routes every message by topic
// to the node's messenger (messenger::deliver). The broker cannot tell the difference: a mailbox
// is just a topic. One Paho client per node would cost a socket, a session and Paho state each,
// and Paho's connect start-up per client; a pool keeps 10,000 nodes at a few connections.
// The routing layer is also where --link-latency / --link-loss act.
namespace hmq::fleetsim {

struct options {
  std::string broker = "tcp://127.0.0.1:1883";
  std::string exchange_key;        // base64/hex or path to the exchange's .pub file
  std::string org;                 // org of the nodes
  std::string pattern;             // "org/pattern" or "pattern" (then in --org)
  std::string user;                // "[org/]user:password": creates the nodes (--create-nodes)
  bool create_nodes = false;
  size_t nodes = 100;
  std::string node_prefix = "sim";       // nodes <prefix>0 ... <prefix>N-1
  std::string token_prefix = "simtok";   // node tokens <token_prefix>i
  std::string arch = "amd64";
  std::vector<std::string> trust_keys;   // publisher Ed25519 public key files the nodes trust
  size_t connections = 0;                // 0: one per 2500 nodes, at least 1
  size_t create_parallel = 64;           // node creation RPCs in flight
  double heartbeat_interval_s = 0;       // not wired yet: the engine has no heartbeat API
  double crash_probability = 0;          // per deployed workload
  double link_latency_ms = 0;            // one way, inside the sim's routing layer
  double link_loss_pct = 0;
  double duration_s = 0;                 // 0: until every node has an agreement (or --timeout)
  double timeout_s = 600;
  double progress_s = 1;                 // progress line period on stderr (0: none)
  int rpc_timeout_s = 120;               // exchange RPCs of the nodes (a burst queues at the exchange)
  int finalize_timeout_s = 60;
  // Each engine keeps a new service version this long before it confirms an upgrade (the agent's
  // --upgrade-verify-window); a rollout's floor is batches x this window.
  double upgrade_verify_window_s = 30;
  std::string topic_prefix = "hmq/v1";
  std::string output = "text";           // text | json
  std::string log_level = "warn";
};

// Adds every option (with its --help text) to `app`.
void add_flags(CLI::App& app, options& o);

// Runs the simulation; prints progress to stderr and the summary to stdout. Exit code: 0 when
// every node reached an agreement (or --duration ran out), 1 on a set-up error, 2 when nodes
// were still without agreement at the end.
int run(const options& o);

}  // namespace hmq::fleetsim
