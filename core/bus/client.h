#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "core/common/result.h"
#include "core/loop/loop.h"

// The one MQTT client of the project (Paho MQTT C++, MQTT v5). Paho's callbacks only copy bytes
// and post() them to the event loop; every handler here runs on the loop thread.
namespace hmq::core::bus {

enum class errc {
  ok = 0,
  bad_uri = 1,
  connect_failed = 2,     // first connect failed (broker down, refused, bad credentials)
  not_authorized = 3,     // broker refused credentials or the subscription
  not_connected = 4,      // publish while offline with no session to queue it
  publish_failed = 5,
  subscribe_failed = 6,
  timeout = 7,
  stopped = 8,            // client was stopped with the operation in flight
};
const std::error_category& category();
std::error_code make_error_code(errc e);

struct last_will {
  std::string topic;
  std::vector<uint8_t> payload;
  int qos = 1;
  bool retained = true;
};

struct tls_options {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

struct options {
  std::string broker_uri = "tcp://127.0.0.1:1883";  // tcp://, mqtt://, ssl://, mqtts://
  std::string client_id;                             // stable per identity for persistent sessions
  std::string username;
  std::string password;
  bool clean_start = false;                          // persistent session by default
  uint32_t session_expiry_s = 7 * 24 * 3600;
  int keepalive_s = 60;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds min_retry{250};          // reconnect back-off, doubles up to max
  std::chrono::milliseconds max_retry{30'000};
  bool tcp_nodelay = true;                           // see docs: Paho 1.3 never sets it
  std::optional<last_will> will;
  std::optional<tls_options> tls;
  size_t max_inflight = 1000;
  // Keep reconnecting after the broker refused the credentials. Off: a refusal is final (a typo
  // in a password should fail fast). On for daemons whose broker identity the exchange may
  // create after they start (an agent waiting for `hmq exchange node create --mailbox`) or
  // delete and re-create; the first-connect completion still reports the refusal once.
  bool retry_refused_credentials = false;
};

struct publish_options {
  int qos = 1;
  bool retain = false;
  uint32_t message_expiry_s = 0;  // MQTT v5 message expiry; 0 = none
};

// A received message, copied out of Paho.
struct inbound {
  std::string topic;
  std::vector<uint8_t> payload;
  int qos = 0;
  bool retained = false;
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

  void publish(std::string topic, std::vector<uint8_t> payload, publish_options o = {}, completion done = {});

  bool connected() const;
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
