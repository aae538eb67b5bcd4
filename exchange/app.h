#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>

#include "core/common/result.h"
#include "core/crypto/crypto.h"

// The hmq-exchange daemon: key pair, store, bus client and the RPC loop (docs/exchange.md).
namespace hmq::exchange {

struct app_options {
  std::string broker = "tcp://127.0.0.1:1883";
  std::filesystem::path data_dir = "exchange-data";
  std::string root_password;
  std::string hash_strength = "interactive";
  std::string topic_prefix = "hmq/v1";
  std::string log_level = "info";
  // Distinguishes replicas that share one data dir (and so one key): the MQTT client id must be
  // unique per connection or the broker disconnects the older one.
  std::string instance;
  bool print_public_key = false;
  // Heartbeat writes are batched: one transaction per this many milliseconds.
  int heartbeat_flush_ms = 1000;
  // Broker identity (docs/security.md): the exchange connects as the dynamic-security admin
  // made by broker-config/init-dynsec.sh; --ca-file for mqtts:// brokers.
  std::string mqtt_user;
  std::filesystem::path mqtt_password_file;
  std::filesystem::path ca_file;
  // Create/delete a broker client for every node and agbot (needs the admin identity).
  bool provision_broker = false;
  // Group commit (docs/PERFORMANCE.md): requests sharing one transaction, and the age after
  // which an open group is committed at the next request.
  int commit_batch = 1000;
  int commit_delay_ms = 20;
  // Per-sender RPC rate limit: requests a second and burst; 0 turns it off.
  double rpc_rate = 1000;
  double rpc_burst = 20000;
  // Credential checks (exchange/auth_gate.h): Argon2id workers, verifications that may wait
  // for one, and the failed attempts a principal or sender key has before back-off.
  int auth_threads = 2;
  int auth_queue = 64;
  int auth_free_failures = 5;
  // Fault injection for the crash tests (hidden flag --fault): "kill-before-broker-admin" makes
  // the process SIGKILL itself after a COMMIT whose broker-identity changes are not sent yet.
  std::string fault;
};

// Registers every flag on `cli` (main.cc adds --config on top).
void add_flags(CLI::App& cli, app_options& o);

core::result<core::crypto::hash_strength> parse_hash_strength(const std::string& s);

// Runs until SIGINT/SIGTERM; returns the process exit code. Prints
// "hmq-exchange ready: key=<b64> mailbox=<id>" to stderr once it serves requests.
int run(const app_options& o);

}  // namespace hmq::exchange
