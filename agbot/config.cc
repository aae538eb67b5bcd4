#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "agbot/app.h"
#include "agbot/errc.h"

namespace hmq::agbot {

core::result<std::chrono::milliseconds> parse_duration(std::string_view s) {
  auto bad =
      core::error{make_error_code(errc::bad_config), "bad duration '" + std::string(s) + "'"};
  size_t i = 0;
  uint64_t n = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    n = n * 10 + static_cast<uint64_t>(s[i] - '0');
    if (n > 1'000'000'000ULL) return bad;
    ++i;
  }
  if (i == 0) return bad;
  auto unit = s.substr(i);
  uint64_t ms;
  if (unit.empty() || unit == "s")
    ms = n * 1000;
  else if (unit == "ms")
    ms = n;
  else if (unit == "m")
    ms = n * 60'000;
  else if (unit == "h")
    ms = n * 3'600'000;
  else
    return bad;
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

int parse_args(int argc, const char* const* argv, app_config& out) {
  CLI::App app{
      "hmq-agbot: agreement bot. Serves the deployment patterns assigned to it in the "
      "exchange: finds their nodes, proposes agreements and keeps them."};
  app.set_config("--config", "", "read options from this TOML/INI file (flags win)");
  std::string reply_timeout = "30s", retry_min = "5s", retry_max = "5m";
  app.add_option("--broker", out.broker, "MQTT broker URI (tcp://, ssl://)")->capture_default_str();
  app.add_option("--exchange-key", out.exchange_key,
                 "The exchange's public key: base64 or hex, @FILE, or the path of its .pub file")
      ->required();
  app.add_option("--org", out.org, "org of this agbot in the exchange")->required();
  app.add_option("--id", out.id, "id of this agbot in the exchange")->required();
  app.add_option("--token", out.token,
                 "agbot token for the exchange (default: environment HMQ_AGBOT_TOKEN)");
  app.add_option("--data-dir", out.data_dir,
                 "directory for agbot.key (its key pair, 0600) and agbot.db (agreements)")
      ->capture_default_str();
  app.add_option("--reply-timeout", reply_timeout,
                 "how long a proposal waits for the node's reply before cancel 201 (e.g. 30s)")
      ->capture_default_str();
  app.add_option("--retry-backoff-min", retry_min,
                 "first back-off before proposing to a node again after a failure")
      ->capture_default_str();
  app.add_option("--retry-backoff-max", retry_max, "cap of the doubling back-off")
      ->capture_default_str();
  app.add_option("--max-concurrent", out.max_concurrent,
                 "nodes being evaluated or awaiting a reply at once; others queue")
      ->capture_default_str();
  app.add_option(
         "--commit-batch", out.commit_batch,
         "group commit: at most this many agbot.db writes share one transaction (one fsync); "
         "1 commits every write on its own")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{100'000}));
  app.add_option("--topic-prefix", out.topic_prefix, "MQTT topic prefix")->capture_default_str();
  app.add_option("--mqtt-user", out.mqtt_user,
                 "broker username (default with --mqtt-token-auth: the mailbox id)");
  app.add_option("--mqtt-password-file", out.mqtt_password_file,
                 "file whose first line is the broker password");
  app.add_flag(
      "--mqtt-token-auth", out.mqtt_token_auth,
      "connect as the broker client the exchange provisions for this agbot: username = its "
      "mailbox id, password = derived from its token, as the exchange derives it "
      "(docs/security.md)");
  app.add_option("--ca-file", out.ca_file,
                 "CA certificate of the broker's TLS listener (mqtts:// URIs)");
  app.add_option("--mailbox-rate", out.mailbox_rate,
                 "messages a second one sender key may put in this agbot's mailbox; 0 = no limit")
      ->capture_default_str();
  app.add_option("--mailbox-burst", out.mailbox_burst,
                 "messages one sender key may send in a burst")
      ->capture_default_str();
  app.add_option("--log-level", out.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  std::string upgrade_timeout = "10m";
  app.add_option(
         "--upgrade-timeout", upgrade_timeout,
         "how long a finalized upgrade agreement may take to be verified by the node before it "
         "is cancelled and counts as failed (e.g. 10m)")
      ->capture_default_str();
  app.add_option("--control-socket", out.control_socket,
                 "unix socket for `hmq agbot agreement list` (off when empty)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (out.token.empty())
    if (const char* t = std::getenv("HMQ_AGBOT_TOKEN")) out.token = t;
  if (out.token.empty()) {
    std::cerr << "hmq-agbot: no token (--token or HMQ_AGBOT_TOKEN)\n";
    return 1;
  }
  for (auto [text, dst] :
       {std::pair{&reply_timeout, &out.reply_timeout}, std::pair{&retry_min, &out.retry_min},
        std::pair{&retry_max, &out.retry_max}, std::pair{&upgrade_timeout, &out.upgrade_timeout}}) {
    auto d = parse_duration(*text);
    if (!d || d->count() == 0) {
      std::cerr << "hmq-agbot: bad duration '" << *text << "'\n";
      return 1;
    }
    *dst = *d;
  }
  if (out.retry_max < out.retry_min) out.retry_max = out.retry_min;
  if (out.max_concurrent == 0) {
    std::cerr << "hmq-agbot: --max-concurrent must be at least 1\n";
    return 1;
  }
  return -1;
}

}  // namespace hmq::agbot
