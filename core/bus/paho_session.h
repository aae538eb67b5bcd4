#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/bus/broker_uri.h"
#include "core/bus/client.h"
#include "core/common/result.h"
#include "core/loop/loop.h"

// The adapter to Eclipse Paho MQTT C++ (mqtt::async_client, MQTT v5): the only code of the
// project that includes <mqtt/...>. It turns client operations into Paho calls and Paho's
// callbacks into events on the loop thread; it holds no subscription or reconnect logic.
namespace hmq::core::bus {

// What Paho said about one operation, copied out on Paho's thread.
struct op_result {
  bool ok = false;
  int rc = 0;      // Paho return code
  int reason = 0;  // MQTT v5 reason code (CONNACK/PUBACK/SUBACK); >= 0x80 is a refusal
  bool session_present = false;
  uint16_t topic_alias_maximum = 0;  // CONNACK property; absent = 0 (no aliases)
  bool subscription_ids = true;      // CONNACK property; absent = available
  int nodelay_sockets = 0;           // connect, tcp_nodelay on: sockets set (<= 0: none found)
  std::string detail;
};

// What the session reports. Each runs on the loop thread, and none runs once the session is
// destroyed.
struct session_events {
  std::function<void(uint64_t op, const op_result&)> op_done;  // an operation's outcome
  std::function<void(const inbound&)> message;
  std::function<void(const std::string& cause)> lost;  // lost socket or broker DISCONNECT
};

// One Paho async_client for one broker address and client id.
//
// Threads: Paho runs its callbacks on its own threads. Each callback copies what it needs into
// plain values and post()s a closure to the loop; the closure holds a weak_ptr to the events and
// does nothing once the session is destroyed. No exception leaves a Paho callback (it would
// cross Paho C's frames), and no Paho exception leaves this adapter: calls return a result.
//
// Lifecycle: create(), then connect() as often as the client's reconnect policy says; an
// operation that returns ok reports its outcome exactly once through op_done (unless the session
// is destroyed first). disconnect() silences every callback, then disconnects; the destructor
// destroys the Paho client, after which no Paho thread touches this object. Every method is
// called from the loop thread.
class paho_session {
 public:
  // Fails with errc::bad_uri when Paho rejects the address. `o` gives the offline buffer size
  // (max_inflight) and whether to set TCP_NODELAY after each connect.
  static result<std::unique_ptr<paho_session>> create(loop::scheduler& loop,
                                                      const broker_address& addr,
                                                      const std::string& client_id,
                                                      const options& o, session_events ev);
  ~paho_session();
  paho_session(const paho_session&) = delete;
  paho_session& operator=(const paho_session&) = delete;

  // CONNECT with `o`'s session, credentials, will and TLS settings (read now: set_will()
  // changes apply to the next attempt).
  result<void> connect(uint64_t op, const options& o);
  // One filter per SUBSCRIBE; subscription_id 0 sends none (a broker without identifiers).
  result<void> subscribe(uint64_t op, const std::string& filter, int qos, uint32_t subscription_id,
                         bool retain_as_published);
  result<void> unsubscribe(uint64_t op, const std::string& filter);
  // errc::not_connected when Paho's offline buffer is full, errc::publish_failed otherwise.
  result<void> publish(uint64_t op, const std::string& topic, const std::vector<uint8_t>& payload,
                       const publish_options& o);
  // Silences every callback, then sends DISCONNECT if connected and waits up to 2 s for it.
  // `publish_will`: reason 4, the broker publishes the will anyway.
  void disconnect(bool publish_will);

 private:
  struct impl;
  explicit paho_session(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace hmq::core::bus
