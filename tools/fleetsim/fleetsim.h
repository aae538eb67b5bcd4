#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

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
//
// Heartbeats: every node runs the agent's own heartbeat_sender (agent/heartbeat.h) on its shared
// connection once the exchange acknowledged its registration: the same sealed 31-byte frame on
// hb/{mailbox}, QoS 0, counters in memory (a fresh identity every run; seeded with the wall clock
// in microseconds all the same, so even a node key kept across runs would never repeat a nonce).
// Differences from hmq-agent, all forced by the shared connection: no topic alias (each sender
// would claim alias 1), no presence frames or last will (one will per connection cannot speak
// for its nodes), and heartbeats bypass --link-latency / --link-loss (they go straight to the
// connection). The first beats are spread evenly over one interval (node i at i/N of it).
namespace hmq::fleetsim {

struct options {
  std::string broker = "tcp://127.0.0.1:1883";
  std::string exchange_key;  // base64/hex or path to the exchange's .pub file
  std::string org;           // org of the nodes
  std::string pattern;       // "org/pattern" or "pattern" (then in --org)
  std::string user;          // "[org/]user:password": creates the nodes (--create-nodes)
  bool create_nodes = false;
  size_t nodes = 100;
  std::string node_prefix = "sim";      // nodes <prefix>0 ... <prefix>N-1
  std::string token_prefix = "simtok";  // node tokens <token_prefix>i
  std::string arch = "amd64";
  std::vector<std::string> trust_keys;  // publisher Ed25519 public key files the nodes trust
  size_t connections = 0;               // 0: one per 2500 nodes, at least 1
  size_t create_parallel = 64;          // node creation RPCs in flight
  // Seconds between each node's heartbeats (agent/heartbeat.h, the agent's own sender); 0: off.
  // Default: hmq-agent's default, so a simulated fleet loads the broker and the exchange like a
  // real fleet of the same size at default settings (docs/PERFORMANCE.md).
  double heartbeat_interval_s = 60;
  // Nodes 0 .. stop_nodes-1 stop stop_after_s seconds after their first agreement: no
  // heartbeats, nothing in or out (a node that lost power); the exchange marks them stale.
  size_t stop_nodes = 0;
  double stop_after_s = 5;
  double crash_probability = 0;  // per deployed workload
  double link_latency_ms = 0;    // one way, inside the sim's routing layer
  double link_loss_pct = 0;
  double duration_s = 0;  // 0: until every node has an agreement (or --timeout)
  double timeout_s = 600;
  double progress_s = 1;    // progress line period on stderr (0: none)
  int rpc_timeout_s = 120;  // exchange RPCs of the nodes (a burst queues at the exchange)
  int finalize_timeout_s = 60;
  // Each engine keeps a new service version this long before it confirms an upgrade (the agent's
  // --upgrade-verify-window); a rollout's floor is batches x this window.
  double upgrade_verify_window_s = 30;
  std::string topic_prefix = "hmq/v1";
  std::string output = "text";  // text | json
  std::string log_level = "warn";
};

// Adds every option (with its --help text) to `app`.
void add_flags(CLI::App& app, options& o);

// Runs the simulation; prints progress to stderr and the summary to stdout. Exit code: 0 when
// every node reached an agreement (or --duration ran out), 1 on a set-up error, 2 when nodes
// were still without agreement at the end.
int run(const options& o);

}  // namespace hmq::fleetsim
