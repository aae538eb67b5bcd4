#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "core/bus/client.h"
#include "core/bus/topics.h"
#include "core/common/result.h"
#include "core/common/token_bucket.h"
#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "core/wire/codec.h"

// Sealed messaging on top of the bus client: one identity's mailbox, routing of opened messages
// by body type, and request/response with correlation id + reply mailbox inside the payload.
namespace hmq::core::bus {

enum class rpc_errc { ok = 0, timeout = 1, stopped = 2 };
const std::error_category& rpc_category();
std::error_code make_error_code(rpc_errc e);

// Lifecycle: construct with a started-or-not client; on(...) handlers; start() subscribes to the
// own mailbox (and any extra topics given to listen()); stop() fails pending requests with
// rpc_errc::stopped. Loop thread only.
class messenger {
 public:
  using message_handler = std::function<void(const wire::opened&)>;
  using response_handler = std::function<void(result<wire::opened>)>;

  messenger(loop::scheduler& loop, client& c, wire::codec& codec, topics t = {});
  ~messenger();

  // This identity's mailbox id and topic.
  const std::string& mailbox() const { return mailbox_; }
  std::string mailbox_topic() const { return topics_.mailbox(mailbox_); }

  // Route opened messages whose body is `type` to h (replaces an earlier handler). Messages
  // with no handler and responses with no pending request are dropped and counted.
  void on(wire::fb::Body type, message_handler h);
  // Also open and route messages arriving on `filter` (e.g. the exchange's shared RPC topic).
  void listen(std::string filter);
  // Also receive on exchange user inbox `inbox` (topics::inbox(inbox, own mailbox)), and ask
  // for answers there: requests carry `inbox` as reply_to, which the exchange honours only when
  // it is the inbox of the user the request authenticated as. The own mailbox becomes optional:
  // a broker that refuses it (an exchange user may read only its inbox there) is logged at
  // debug, not as an error.
  void listen_inbox(const std::string& inbox);
  // An agbot: also receive on the own uplink topic (topics::uplink), where nodes send to it.
  void listen_uplink() { listen(topics_.uplink(mailbox_)); }
  // A node: send() and respond() without a topic go to the recipient's uplink topic instead of
  // its mailbox (a node's broker identity may publish only there: docs/security.md).
  void send_on_uplinks() { send_on_uplinks_ = true; }
  void start();
  // Open and route a message that a subscription other than our own received (hmq-fleetsim
  // shares one connection among many identities and routes by topic itself). Same checks as a
  // message from the own subscription; ignored before start() and after stop().
  void deliver(const inbound& in) { on_inbound(in); }
  void stop();

  // Seal `message` (a finished Message buffer) to `recipient` and publish it on `topic`
  // (default: the recipient's mailbox, or its uplink after send_on_uplinks()).
  void send(const crypto::public_key& recipient, std::span<const uint8_t> message,
            publish_options o = {}, std::string topic = {}, completion done = {});

  // Request/response: fills correlation_id and reply_to (own mailbox, or the inbox of
  // listen_inbox) into `h`, builds the
  // message, seals and publishes it, and calls `on_response` once with the response (a
  // message with the same correlation id from `recipient`) or rpc_errc::timeout.
  void request(
      const crypto::public_key& recipient, std::string topic, wire::header h, wire::fb::Body type,
      const std::function<flatbuffers::Offset<void>(flatbuffers::FlatBufferBuilder&)>& body,
      std::chrono::milliseconds timeout, response_handler on_response, publish_options o = {});

  // Reply to a request `req`: correlation id copied, sealed to its sender and sent where send()
  // would, or to `topic` (an exchange user's inbox) when given.
  void respond(
      const wire::opened& req, wire::fb::Body type,
      const std::function<flatbuffers::Offset<void>(flatbuffers::FlatBufferBuilder&)>& body,
      publish_options o = {}, std::string topic = {});

  // Per-sender flood limit on opened messages that are not responses to our own requests
  // (off by default). Keyed by the authenticated sender key, so a forger cannot spend someone
  // else's budget. A message over the limit is dropped and counted; `on_first_reject` (optional)
  // sees the first dropped message of each exhausted window, e.g. to answer rate_limited once.
  // Keys in `exempt` are never limited (an agbot exempts the exchange, whose events arrive in
  // bursts as large as a fleet's registrations).
  void limit_senders(token_bucket_options o, message_handler on_first_reject = {},
                     std::vector<crypto::public_key> exempt = {});

  uint64_t dropped_unrouted() const { return dropped_unrouted_; }
  uint64_t dropped_rejected() const { return dropped_rejected_; }
  // Opened messages larger than wire::max_message_bytes(body type) (core/wire/size_caps.h).
  uint64_t dropped_oversize() const { return dropped_oversize_; }
  // Messages dropped by limit_senders().
  uint64_t dropped_rate_limited() const { return limiter_.rejected(); }

 private:
  void on_inbound(const inbound& in);
  // Remembers a message we are about to act on (replay memory); false if it must be dropped.
  bool keep(const wire::opened& msg);
  std::string default_topic(const crypto::public_key& recipient) const;

  loop::scheduler& loop_;
  client& client_;
  wire::codec& codec_;
  topics topics_;
  std::string mailbox_;
  std::vector<std::string> extra_filters_;
  bool mailbox_optional_ = false;
  bool send_on_uplinks_ = false;
  std::string reply_to_;  // what requests carry as reply_to (default: the own mailbox)
  std::unordered_map<uint8_t, message_handler> handlers_;
  struct pending {
    crypto::public_key peer;
    response_handler cb;
    loop::timer_handle timer;
  };
  std::unordered_map<uint64_t, pending> pending_;
  uint64_t dropped_unrouted_ = 0;
  uint64_t dropped_rejected_ = 0;
  uint64_t dropped_oversize_ = 0;
  struct key_hash {
    size_t operator()(const crypto::public_key& k) const;
  };
  token_buckets<crypto::public_key, key_hash> limiter_;
  message_handler on_limited_;
  std::vector<crypto::public_key> exempt_;
  bool started_ = false;
  // Cleared on destruction: bus completions already posted to the loop check it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hmq::core::bus

template <>
struct std::is_error_code_enum<hmq::core::bus::rpc_errc> : std::true_type {};
