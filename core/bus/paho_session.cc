#include "core/bus/paho_session.h"

#include <mqtt/async_client.h>

#include <algorithm>
#include <mutex>
#include <utility>

#include "core/bus/tcp_nodelay.h"

namespace hmq::core::bus {

namespace {

error make_error(errc e, std::string detail) {
  return error{make_error_code(e), std::move(detail)};
}

// Process-wide Paho C setting that must come before the first client: Paho would initialise
// OpenSSL itself (configuration, error strings, every cipher) at the first client even for a
// plain tcp:// broker; OpenSSL >= 1.1 initialises what a connection needs on its own.
void init_paho_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    MQTTAsync_init_options init = MQTTAsync_init_options_initializer;
    init.do_openssl_init = 0;
    MQTTAsync_global_init(&init);
  });
}

// MQTT v5 publish properties of a received message (runs on Paho's thread; may throw, the
// caller catches).
void copy_properties(const mqtt::properties& p, inbound& in) {
  using P = mqtt::property;
  if (p.contains(P::MESSAGE_EXPIRY_INTERVAL))
    in.message_expiry_s = mqtt::get<uint32_t>(p, P::MESSAGE_EXPIRY_INTERVAL);
  if (p.contains(P::CONTENT_TYPE)) in.content_type = mqtt::get<std::string>(p, P::CONTENT_TYPE);
  if (p.contains(P::RESPONSE_TOPIC))
    in.response_topic = mqtt::get<std::string>(p, P::RESPONSE_TOPIC);
  if (p.contains(P::CORRELATION_DATA)) {
    auto c = mqtt::get<std::string>(p, P::CORRELATION_DATA);
    in.correlation_data.assign(c.begin(), c.end());
  }
  if (p.contains(P::PAYLOAD_FORMAT_INDICATOR))
    in.payload_utf8 = mqtt::get<uint8_t>(p, P::PAYLOAD_FORMAT_INDICATOR) == 1;
  // A v5 broker names the subscription(s) a copy was sent for; mosquitto 2 sends one copy per
  // matching subscription when filters overlap.
  const size_t ids = p.count(P::SUBSCRIPTION_IDENTIFIER);
  for (size_t i = 0; i < ids; ++i) {
    in.subscription_ids.push_back(
        static_cast<uint32_t>(mqtt::get<int>(p, P::SUBSCRIPTION_IDENTIFIER, i)));
  }
  const size_t n = p.count(P::USER_PROPERTY);
  for (size_t i = 0; i < n; ++i) {
    auto [k, v] = mqtt::get<mqtt::string_pair>(p, P::USER_PROPERTY, i);
    in.user_props.emplace_back(std::move(k), std::move(v));
  }
}

void* as_context(uint64_t op) {
  return reinterpret_cast<void*>(static_cast<uintptr_t>(op));
}

// Paho's callback and action-listener interfaces. Outlives the async_client (declared before it
// in impl, so destroyed after it). Never touches loop state: it posts.
class bridge final : public mqtt::callback, public mqtt::iaction_listener {
 public:
  bridge(loop::scheduler& loop, std::weak_ptr<session_events> events, broker_address addr,
         bool tcp_nodelay)
      : loop_(loop),
        events_(std::move(events)),
        addr_(std::move(addr)),
        tcp_nodelay_(tcp_nodelay) {}

  void connection_lost(const std::string& cause) override {
    try {
      post([cause](session_events& e) { e.lost(cause); });
    } catch (...) {
    }
  }
  // A v5 DISCONNECT from the broker (administrative action: an identity changed or removed;
  // server shutting down; session taken over). Paho C reports it here and not as a lost
  // connection, and does not reconnect by itself: without this the client stays down.
  void disconnected(mqtt::ReasonCode reason) {
    try {
      const std::string cause =
          "broker sent DISCONNECT, reason " + std::to_string(static_cast<int>(reason));
      post([cause](session_events& e) { e.lost(cause); });
    } catch (...) {
    }
  }
  void message_arrived(mqtt::const_message_ptr msg) override {
    try {
      if (!msg) return;
      inbound in;
      in.topic = msg->get_topic();
      const auto& p = msg->get_payload_ref();
      const auto* d = reinterpret_cast<const uint8_t*>(p.data());
      in.payload.assign(d, d + p.size());
      in.qos = msg->get_qos();
      in.retained = msg->is_retained();
      copy_properties(msg->get_properties(), in);
      post([in = std::move(in)](session_events& e) { e.message(in); });
    } catch (...) {
    }
  }
  void on_success(const mqtt::token& tok) override { complete(tok, true); }
  void on_failure(const mqtt::token& tok) override { complete(tok, false); }

 private:
  void complete(const mqtt::token& tok, bool ok) {
    try {
      const auto op = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(tok.get_user_context()));
      op_result r;
      r.ok = ok;
      r.rc = tok.get_return_code();
      r.reason = static_cast<int>(tok.get_reason_code());
      if (ok && tok.get_type() == mqtt::token::Type::CONNECT) on_connected(tok, r);
      // v5 SUBACK/PUBACK carry a reason code and Paho reports success even when it says
      // "refused" (>= 0x80). The client sends one filter per SUBSCRIBE, so the single reason
      // code is the whole answer (get_subscribe_response() is only filled for several filters).
      if (ok && r.reason >= 0x80) r.ok = false;
      if (!r.ok)
        r.detail = "paho rc " + std::to_string(r.rc) + ", reason " + std::to_string(r.reason);
      post([op, r = std::move(r)](session_events& e) { e.op_done(op, r); });
    } catch (...) {
    }
  }

  void on_connected(const mqtt::token& tok, op_result& r) {
    const auto cr = tok.get_connect_response();
    const auto& props = cr.get_properties();
    r.session_present = cr.is_session_present();
    if (props.contains(mqtt::property::TOPIC_ALIAS_MAXIMUM))
      r.topic_alias_maximum = mqtt::get<uint16_t>(props, mqtt::property::TOPIC_ALIAS_MAXIMUM);
    if (props.contains(mqtt::property::SUBSCRIPTION_IDENTIFIERS_AVAILABLE)) {
      r.subscription_ids =
          mqtt::get<uint8_t>(props, mqtt::property::SUBSCRIPTION_IDENTIFIERS_AVAILABLE) != 0;
    }
    r.reason = 0;  // CONNACK success
    // Here, on Paho's thread, and not on the loop: set_tcp_nodelay_to_peer resolves the broker's
    // host with getaddrinfo, which may block on DNS for seconds, and the loop must never block.
    // Paho's thread may: it has just resolved the same name for its own connect, and messages
    // of this fresh connection wait a few microseconds more at worst.
    if (tcp_nodelay_) r.nodelay_sockets = set_tcp_nodelay_to_peer(addr_.host, addr_.port);
  }

  template <typename F>
  void post(F&& f) {
    loop_.post([w = events_, f = std::forward<F>(f)]() mutable {
      if (auto e = w.lock()) f(*e);
    });
  }

  loop::scheduler& loop_;
  std::weak_ptr<session_events> events_;
  const broker_address addr_;
  const bool tcp_nodelay_;
};

mqtt::connect_options make_connect_options(const broker_address& addr, const options& opts) {
  mqtt::connect_options co;
  co.set_mqtt_version(MQTTVERSION_5);
  co.set_clean_start(opts.clean_start);
  co.set_keep_alive_interval(opts.keepalive_s);
  // Paho's connect timeout is in whole seconds.
  co.set_connect_timeout(
      std::max<int>(1, static_cast<int>((opts.connect_timeout.count() + 999) / 1000)));
  co.set_automatic_reconnect(false);
  co.set_max_inflight(static_cast<int>(opts.max_inflight));
  mqtt::properties props;
  props.add({mqtt::property::SESSION_EXPIRY_INTERVAL, static_cast<int>(opts.session_expiry_s)});
  co.set_properties(props);
  if (!opts.username.empty()) co.set_user_name(opts.username);
  if (!opts.password.empty()) co.set_password(opts.password);
  if (opts.will) {
    const auto& w = *opts.will;
    co.set_will(mqtt::will_options(w.topic, w.payload.data(), w.payload.size(), w.qos, w.retained));
  }
  if (addr.tls) {
    mqtt::ssl_options ssl;
    if (opts.tls) {
      if (!opts.tls->ca_file.empty()) ssl.set_trust_store(opts.tls->ca_file);
      if (!opts.tls->cert_file.empty()) ssl.set_key_store(opts.tls->cert_file);
      if (!opts.tls->key_file.empty()) ssl.set_private_key(opts.tls->key_file);
    }
    ssl.set_enable_server_cert_auth(true);
    ssl.set_verify(true);  // host name must match the certificate
    co.set_ssl(ssl);
  }
  return co;
}

mqtt::properties publish_properties(const publish_options& o) {
  mqtt::properties props;
  if (o.message_expiry_s > 0)
    props.add({mqtt::property::MESSAGE_EXPIRY_INTERVAL, static_cast<int>(o.message_expiry_s)});
  if (o.topic_alias > 0) props.add({mqtt::property::TOPIC_ALIAS, static_cast<int>(o.topic_alias)});
  if (!o.content_type.empty()) props.add({mqtt::property::CONTENT_TYPE, o.content_type});
  if (!o.response_topic.empty()) props.add({mqtt::property::RESPONSE_TOPIC, o.response_topic});
  if (!o.correlation_data.empty()) {
    props.add({mqtt::property::CORRELATION_DATA,
               mqtt::binary(o.correlation_data.begin(), o.correlation_data.end())});
  }
  if (o.payload_utf8) props.add({mqtt::property::PAYLOAD_FORMAT_INDICATOR, 1});
  for (const auto& [k, v] : o.user_props) props.add({mqtt::property::USER_PROPERTY, k, v});
  return props;
}

}  // namespace

struct paho_session::impl {
  broker_address addr;
  // Shared with the closures Paho's threads post; reset by the destructor so that closures
  // still queued on the loop find nothing to call.
  std::shared_ptr<session_events> events;
  std::unique_ptr<bridge> bridge_;  // outlives cli (declared first, destroyed last)
  std::unique_ptr<mqtt::async_client> cli;
};

paho_session::paho_session(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

paho_session::~paho_session() {
  try {
    impl_->cli->disable_callbacks();
  } catch (...) {
  }
  impl_->cli.reset();  // no Paho callback runs after this
  impl_->events.reset();
}

result<std::unique_ptr<paho_session>> paho_session::create(loop::scheduler& loop,
                                                           const broker_address& addr,
                                                           const std::string& client_id,
                                                           const options& o, session_events ev) {
  init_paho_once();
  auto i = std::make_unique<impl>();
  i->addr = addr;
  i->events = std::make_shared<session_events>(std::move(ev));
  i->bridge_ = std::make_unique<bridge>(loop, i->events, addr, o.tcp_nodelay);
  try {
    mqtt::create_options co(MQTTVERSION_5);
    // Offline buffering (Paho C createOptions): publish() while disconnected, even before the
    // first connect, is queued in memory and sent on the next successful connect. Oldest
    // messages are not dropped when full: the caller gets errc::not_connected instead.
    co.set_send_while_disconnected(true, true);
    co.set_max_buffered_messages(static_cast<int>(o.max_inflight));
    co.set_delete_oldest_messages(false);
    // No Paho persistence (nullptr = in-memory only): a restarted process re-sends from its own
    // persisted protocol state, never from a Paho file store.
    i->cli = std::make_unique<mqtt::async_client>(addr.paho_uri, client_id, co, nullptr);
    i->cli->set_callback(*i->bridge_);
    i->cli->set_disconnected_handler(
        [b = i->bridge_.get()](const mqtt::properties&, mqtt::ReasonCode r) {
          b->disconnected(r);
        });
  } catch (const std::exception& e) {
    return make_error(errc::bad_uri, addr.paho_uri + ": " + e.what());
  }
  return std::unique_ptr<paho_session>(new paho_session(std::move(i)));
}

result<void> paho_session::connect(uint64_t op, const options& o) {
  try {
    // Built fresh for every attempt and passed as an lvalue: Paho C++ 1.2's connect_options
    // loses its MQTT v5 properties (the session expiry!) when move-assigned, because the C
    // struct keeps pointing at the moved-from property list.
    mqtt::connect_options co = make_connect_options(impl_->addr, o);
    impl_->cli->connect(co, as_context(op), *impl_->bridge_);
    return ok();
  } catch (const std::exception& e) {
    return make_error(errc::connect_failed, e.what());
  }
}

result<void> paho_session::subscribe(uint64_t op, const std::string& filter, int qos,
                                     uint32_t subscription_id, bool retain_as_published) {
  try {
    // Retained messages only for a new subscription: a re-subscribe after a reconnect does not
    // replay them.
    const mqtt::subscribe_options so(false, retain_as_published,
                                     mqtt::subscribe_options::SEND_RETAINED_ON_NEW);
    mqtt::properties props;
    if (subscription_id != 0) {
      props.add(mqtt::property(mqtt::property::SUBSCRIPTION_IDENTIFIER,
                               static_cast<int>(subscription_id)));
    }
    impl_->cli->subscribe(filter, qos, as_context(op), *impl_->bridge_, so, props);
    return ok();
  } catch (const std::exception& e) {
    return make_error(errc::subscribe_failed, e.what());
  }
}

result<void> paho_session::unsubscribe(uint64_t op, const std::string& filter) {
  try {
    impl_->cli->unsubscribe(filter, as_context(op), *impl_->bridge_);
    return ok();
  } catch (const std::exception& e) {
    return make_error(errc::subscribe_failed, e.what());
  }
}

result<void> paho_session::publish(uint64_t op, const std::string& topic,
                                   const std::vector<uint8_t>& payload, const publish_options& o) {
  try {
    auto msg = mqtt::message::create(topic, payload.data(), payload.size(), o.qos, o.retain,
                                     publish_properties(o));
    impl_->cli->publish(msg, as_context(op), *impl_->bridge_);
    return ok();
  } catch (const mqtt::exception& e) {
    // MQTTASYNC_MAX_BUFFERED_MESSAGES / DISCONNECTED: the offline buffer is full.
    const bool offline = e.get_return_code() == MQTTASYNC_MAX_BUFFERED_MESSAGES ||
                         e.get_return_code() == MQTTASYNC_DISCONNECTED;
    return make_error(offline ? errc::not_connected : errc::publish_failed, e.what());
  } catch (const std::exception& e) {
    return make_error(errc::publish_failed, e.what());
  }
}

void paho_session::disconnect(bool publish_will) {
  try {
    impl_->cli->disable_callbacks();
    if (impl_->cli->is_connected()) {
      mqtt::disconnect_options d(1000);
      if (publish_will) d.set_reason_code(mqtt::ReasonCode::DISCONNECT_WITH_WILL_MESSAGE);
      impl_->cli->disconnect(d)->wait_for(std::chrono::seconds(2));
    }
  } catch (...) {
    // Best effort: the broker sees the socket close instead (and publishes the will).
  }
}

}  // namespace hmq::core::bus
