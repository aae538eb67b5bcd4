#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/common/result.h"
#include "core/loop/loop.h"

// The one MQTT client of the project (Paho MQTT C++, MQTT v5). Paho's callbacks only copy bytes
// and post() them to the event loop; every handler here runs on the loop thread.
namespace hmq::core::bus {

enum class errc {
  ok = 0,
  bad_uri = 1,
  connect_failed = 2,  // first connect failed (broker down, refused, bad credentials)
  not_authorized = 3,  // broker refused credentials or the subscription
  not_connected = 4,   // publish while offline with no session to queue it
  publish_failed = 5,
  subscribe_failed = 6,
  timeout = 7,
  stopped = 8,  // client was stopped with the operation in flight
};
const std::error_category& category();
std::error_code make_error_code(errc e);

struct last_will {
  std::string topic;
  std::vector<uint8_t> payload;
  int qos = 1;
  bool retained = false;
};

struct tls_options {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

struct options {
  std::string broker_uri = "tcp://127.0.0.1:1883";  // tcp://, mqtt://, ssl://, mqtts://
  std::string client_id;                            // stable per identity for persistent sessions
  std::string username;
  std::string password;
  bool clean_start = false;  // persistent session by default
  uint32_t session_expiry_s = 7 * 24 * 3600;
  int keepalive_s = 60;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds min_retry{250};  // reconnect back-off, doubles up to max
  std::chrono::milliseconds max_retry{30'000};
  bool tcp_nodelay = true;  // see docs: Paho 1.3 never sets it
  std::optional<last_will> will;
  std::optional<tls_options> tls;
  size_t max_inflight = 1000;
  // MQTT v5 "retain as published" on every subscription: forwarded messages keep the retain
  // flag their publisher set. Off by default (components only care about the flag on messages
  // the broker replays from its retained store); hmq-replay's recorder turns it on.
  bool retain_as_published = false;
  // Keep reconnecting after the broker refused the credentials. Off: a refusal is final (a typo
  // in a password should fail fast). On for daemons whose broker identity the exchange may
  // create after they start (an agent waiting for `hmq exchange node create --mailbox`) or
  // delete and re-create; the first-connect completion still reports the refusal once.
  bool retry_refused_credentials = false;
};

// MQTT v5 user properties, in order (a key may repeat).
using user_properties = std::vector<std::pair<std::string, std::string>>;

struct publish_options {
  int qos = 1;
  bool retain = false;
  uint32_t message_expiry_s = 0;  // MQTT v5 message expiry; 0 = none
  // MQTT v5 topic alias (1..topic_alias_maximum()); 0 = none. With an alias the broker maps it
  // to `topic` for the rest of the connection; an empty `topic` then reuses the mapping. The
  // caller owns the mapping: it must re-send the topic after every reconnect.
  uint16_t topic_alias = 0;
  // Further MQTT v5 publish properties (hmq-replay plays recorded ones back); empty = absent.
  std::string content_type;
  std::string response_topic;
  std::vector<uint8_t> correlation_data;
  bool payload_utf8 = false;  // payload format indicator 1
  user_properties user_props;
};

// A received message, copied out of Paho.
struct inbound {
  std::string topic;
  std::vector<uint8_t> payload;
  int qos = 0;
  bool retained = false;
  // MQTT v5 properties as received (the protocol needs none of them; hmq-replay records them).
  uint32_t message_expiry_s = 0;  // remaining expiry the broker forwarded; 0 = none
  std::string content_type;
  std::string response_topic;
  std::vector<uint8_t> correlation_data;
  bool payload_utf8 = false;
  user_properties user_props;
  std::vector<uint32_t>
      subscription_ids;  // the subscriptions this copy was sent for (routing only)
};

using handler = std::function<void(const inbound&)>;
using completion = std::function<void(result<void>)>;

// Lifecycle: construct, subscribe() any number of filters, start(); stop() before destruction.
// start() connects in the background and reconnects forever with back-off; subscriptions are
// re-made after a reconnect whenever the broker lost the session. publish() before the first
// connect or while reconnecting is queued by Paho (up to max_inflight) and sent on reconnect.
// All methods are called from the loop thread; handlers and completions run on it too.
class client {
 public:
  client(loop::scheduler& loop, options o);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Start connecting. `on_first_connect` (optional) runs once with the outcome of the first
  // attempt; a failure there (bad URI, refused credentials) is reported, not retried forever.
  void start(completion on_first_connect = {});
  // Disconnect and cancel everything in flight (completions get errc::stopped). Blocks briefly.
  void stop();

  // Remember `filter` and route matching messages to `h`. Sent now if connected, else on connect.
  void subscribe(std::string filter, int qos, handler h, completion done = {});
  void unsubscribe(const std::string& filter);

  void publish(std::string topic, std::vector<uint8_t> payload, publish_options o = {},
               completion done = {});

  bool connected() const;
  // Replace the last will sent with the next CONNECT (e.g. a will carrying a fresh counter, so a
  // will published after a reconnect is not a replay of the previous one).
  void set_will(std::optional<last_will> w);
  // The broker's Topic Alias Maximum from the last CONNACK (0: the broker takes no aliases).
  uint16_t topic_alias_maximum() const;
  // Called on the loop thread with true on every (re)connect and false on every loss.
  void on_connection_change(std::function<void(bool)> fn);

  const options& config() const { return opts_; }

 private:
  struct impl;
  options opts_;
  std::unique_ptr<impl> impl_;
};

}  // namespace hmq::core::bus

template <>
struct std::is_error_code_enum<hmq::core::bus::errc> : std::true_type {};
