#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "core/common/result.h"

// hmq-agbot as a program: configuration from flags / config file, and run() which owns the
// event loop, bus client, messenger, exchange client, store and engine until SIGINT/SIGTERM.
namespace hmq::agbot {

struct app_config {
  std::string broker = "tcp://127.0.0.1:1883";
  std::string exchange_key;  // base64 / hex, or @file
  std::string org;
  std::string id;
  std::string token;  // or HMQ_AGBOT_TOKEN
  std::filesystem::path data_dir = "/var/lib/hmq-agbot";
  std::chrono::milliseconds reply_timeout{30'000};
  std::chrono::milliseconds retry_min{5'000};
  std::chrono::milliseconds retry_max{300'000};
  size_t max_concurrent = 256;
  // Group commit (docs/PERFORMANCE.md): agbot.db writes sharing one transaction; 1 commits each
  // write on its own (what every write did before group commit).
  size_t commit_batch = 1000;
  std::string topic_prefix = "hmq/v1";
  std::string log_level = "info";
  std::filesystem::path control_socket;                // empty: no control socket
  std::chrono::milliseconds upgrade_timeout{600'000};  // see engine_config::upgrade_timeout
  // Broker identity (docs/security.md). With mqtt_token_auth the agbot connects as the client
  // the exchange provisions for it: username = its mailbox id, password = its token.
  std::string mqtt_user;
  std::filesystem::path mqtt_password_file;
  bool mqtt_token_auth = false;
  std::filesystem::path ca_file;
  // Per-sender flood limit on the agbot's mailbox (messages a second, burst); 0 = off.
  double mailbox_rate = 100;
  double mailbox_burst = 500;
};

// "30s", "500ms", "2m", "1h" or a bare number of seconds.
core::result<std::chrono::milliseconds> parse_duration(std::string_view s);

// Parses argv (CLI11, with --config FILE). Returns the exit code to use when the program should
// end now (help printed, bad flags), else fills `out` and returns -1.
int parse_args(int argc, const char* const* argv, app_config& out);

// Runs the agbot until a signal. Returns the process exit code (0 clean, 1 config, 3 broker).
int run(const app_config& cfg);

}  // namespace hmq::agbot
