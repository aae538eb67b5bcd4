#include "core/bus/client.h"

#include <map>
#include <set>
#include <random>
#include <unordered_map>

#include <mqtt/async_client.h>

#include "core/bus/tcp_nodelay.h"
#include "core/bus/topic_filter.h"
#include "core/log/log.h"

// Threads: Paho runs its callbacks on its own threads. Every Paho callback here (bridge below)
// copies what it needs into plain values and post()s a closure to the loop; the closure holds a
// weak_ptr to the loop-owned state and does nothing once the client is gone. No exception may
// leave a Paho callback (it would cross Paho's C frames), so each one catches everything.
//
// Reconnects are ours, not Paho's automatic_reconnect: Paho's back-off has one-second
// granularity, does not retry a failed first connect, and does not tell us whether the broker
// kept the session (we need session_present to know when to resubscribe). Each attempt is an
// ordinary connect() whose result we get with the CONNACK's session-present flag.
namespace hmq::core::bus {

namespace {

class bus_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "bus"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::ok: return "ok";
      case errc::bad_uri: return "bad broker uri";
      case errc::connect_failed: return "connect failed";
      case errc::not_authorized: return "not authorized";
      case errc::not_connected: return "not connected";
      case errc::publish_failed: return "publish failed";
      case errc::subscribe_failed: return "subscribe failed";
      case errc::timeout: return "timeout";
      case errc::stopped: return "stopped";
    }
    return "unknown bus error " + std::to_string(c);
  }
};

error make_error(errc e, std::string detail = {}) { return error{make_error_code(e), std::move(detail)}; }

struct broker_address {
  std::string paho_uri;  // tcp://host:port or ssl://host:port
  std::string host;
  int port = 0;
  bool tls = false;
};

// mqtt:// and mqtts:// are the names operators know; Paho only speaks tcp:// and ssl://.
result<broker_address> parse_uri(const std::string& uri) {
  broker_address a;
  std::string rest;
  auto take = [&](std::string_view scheme, bool tls) {
    if (uri.rfind(scheme, 0) != 0) return false;
    rest = uri.substr(scheme.size());
    a.tls = tls;
    return true;
  };
  if (!take("tcp://", false) && !take("mqtt://", false) && !take("ssl://", true) &&
      !take("mqtts://", true)) {
    return make_error(errc::bad_uri, "scheme must be tcp://, mqtt://, ssl:// or mqtts://: " + uri);
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find('/') != std::string::npos) return make_error(errc::bad_uri, uri);
  int port = a.tls ? 8883 : 1883;
  std::string host = rest;
  // [v6::addr]:port, host:port or host.
  if (rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) return make_error(errc::bad_uri, uri);
    host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return make_error(errc::bad_uri, uri);
    rest = rest.empty() ? "" : rest.substr(1);
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    rest = rest.substr(colon + 1);
  } else {
    rest.clear();
  }
  if (!rest.empty()) {
    char* end = nullptr;
    long p = std::strtol(rest.c_str(), &end, 10);
    if (*end != '\0' || p <= 0 || p > 65535) return make_error(errc::bad_uri, "bad port: " + uri);
    port = static_cast<int>(p);
  }
  if (host.empty()) return make_error(errc::bad_uri, uri);
  a.host = host;
  a.port = port;
  const bool v6 = host.find(':') != std::string::npos;
  a.paho_uri = std::string(a.tls ? "ssl://" : "tcp://") + (v6 ? "[" + host + "]" : host) + ":" +
               std::to_string(port);
  return a;
}

bool is_auth_failure(int reason) {
  return reason == mqtt::ReasonCode::NOT_AUTHORIZED ||
         reason == mqtt::ReasonCode::BAD_USER_NAME_OR_PASSWORD ||
         reason == mqtt::ReasonCode::BANNED;
}

std::string random_client_id() {
  std::random_device rd;
  std::uniform_int_distribution<uint64_t> d;
  char buf[32];
  std::snprintf(buf, sizeof buf, "hmq-%016llx", static_cast<unsigned long long>(d(rd)));
  return buf;
}

enum class op_kind { connect, publish, subscribe, unsubscribe };

// MQTT v5 publish properties of a received message (runs on Paho's thread; may throw, the
// caller catches).
void copy_properties(const mqtt::properties& p, inbound& in) {
  using P = mqtt::property;
  if (p.contains(P::MESSAGE_EXPIRY_INTERVAL)) in.message_expiry_s = mqtt::get<uint32_t>(p, P::MESSAGE_EXPIRY_INTERVAL);
  if (p.contains(P::CONTENT_TYPE)) in.content_type = mqtt::get<std::string>(p, P::CONTENT_TYPE);
  if (p.contains(P::RESPONSE_TOPIC)) in.response_topic = mqtt::get<std::string>(p, P::RESPONSE_TOPIC);
  if (p.contains(P::CORRELATION_DATA)) {
    auto c = mqtt::get<std::string>(p, P::CORRELATION_DATA);
    in.correlation_data.assign(c.begin(), c.end());
  }
  if (p.contains(P::PAYLOAD_FORMAT_INDICATOR)) {
    in.payload_utf8 = mqtt::get<uint8_t>(p, P::PAYLOAD_FORMAT_INDICATOR) == 1;
  }
  // A v5 broker names the subscription(s) a copy was sent for; mosquitto 2 sends one copy per
  // matching subscription when filters overlap.
  const size_t ids = p.count(P::SUBSCRIPTION_IDENTIFIER);
  for (size_t i = 0; i < ids; ++i) {
    in.subscription_ids.push_back(static_cast<uint32_t>(mqtt::get<int>(p, P::SUBSCRIPTION_IDENTIFIER, i)));
  }
  const size_t n = p.count(P::USER_PROPERTY);
  for (size_t i = 0; i < n; ++i) {
    auto [k, v] = mqtt::get<mqtt::string_pair>(p, P::USER_PROPERTY, i);
    in.user_props.emplace_back(std::move(k), std::move(v));
  }
}

// What a Paho completion tells the loop, copied out on Paho's thread.
struct op_result {
  bool ok = false;
  int rc = 0;             // Paho return code
  int reason = 0;         // MQTT v5 reason code (CONNACK/PUBACK/SUBACK)
  bool session_present = false;
  uint16_t topic_alias_maximum = 0;  // CONNACK property; absent = 0 (no aliases)
  bool subscription_ids = true;      // CONNACK property; absent = available
  std::string detail;
};

}  // namespace

const std::error_category& category() {
  static const bus_category c;
  return c;
}

std::error_code make_error_code(errc e) { return {static_cast<int>(e), category()}; }

// ---------------------------------------------------------------------------------------------

namespace {

// Loop-owned state of one client (see the thread notes at the top of the file).
struct client_state {
  // Paho's callback and action-listener interfaces. Lives as long as the async_client (declared
  // before it in impl, so destroyed after it). Never touches loop state directly.
  class bridge final : public mqtt::callback, public mqtt::iaction_listener {
   public:
    bridge(loop::scheduler& loop, std::weak_ptr<client_state> self) : loop_(loop), self_(std::move(self)) {}

    void connection_lost(const std::string& cause) override {
      try {
        post([cause](client_state& s) { s.on_connection_lost(cause); });
      } catch (...) {
      }
    }
    // A v5 DISCONNECT from the broker (administrative action: an identity changed or removed;
    // server shutting down; session taken over). Paho C reports it here and not as a lost
    // connection, and does not reconnect by itself: without this the client stays down.
    void disconnected(const mqtt::properties&, mqtt::ReasonCode reason) {
      try {
        const std::string cause = "broker sent DISCONNECT, reason " + std::to_string(static_cast<int>(reason));
        post([cause](client_state& s) { s.on_connection_lost(cause); });
      } catch (...) {
      }
    }
    void message_arrived(mqtt::const_message_ptr msg) override {
      try {
        if (!msg) return;
        inbound in;
        in.topic = msg->get_topic();
        const auto& p = msg->get_payload_ref();
        in.payload.assign(reinterpret_cast<const uint8_t*>(p.data()),
                          reinterpret_cast<const uint8_t*>(p.data()) + p.size());
        in.qos = msg->get_qos();
        in.retained = msg->is_retained();
        copy_properties(msg->get_properties(), in);
        post([in = std::move(in)](client_state& s) { s.on_message(in); });
      } catch (...) {
      }
    }
    void on_success(const mqtt::token& tok) override { complete(tok, true); }
    void on_failure(const mqtt::token& tok) override { complete(tok, false); }

   private:
    void complete(const mqtt::token& tok, bool ok) {
      try {
        const auto id = reinterpret_cast<uintptr_t>(tok.get_user_context());
        op_result r;
        r.ok = ok;
        r.rc = tok.get_return_code();
        r.reason = static_cast<int>(tok.get_reason_code());
        if (ok && tok.get_type() == mqtt::token::Type::CONNECT) {
          const auto& cr = tok.get_connect_response();
          r.session_present = cr.is_session_present();
          if (cr.get_properties().contains(mqtt::property::TOPIC_ALIAS_MAXIMUM))
            r.topic_alias_maximum =
                mqtt::get<uint16_t>(cr.get_properties(), mqtt::property::TOPIC_ALIAS_MAXIMUM);
          if (cr.get_properties().contains(mqtt::property::SUBSCRIPTION_IDENTIFIERS_AVAILABLE))
            r.subscription_ids =
                mqtt::get<uint8_t>(cr.get_properties(), mqtt::property::SUBSCRIPTION_IDENTIFIERS_AVAILABLE) != 0;
        }
        // v5 SUBACK/PUBACK carry a reason code and Paho reports success even when it says
        // "refused" (>= 0x80). We send one filter per SUBSCRIBE, so the single reason code is
        // the whole answer (get_subscribe_response() is only filled for several filters).
        if (ok && r.reason >= 0x80) r.ok = false;
        if (!r.ok) r.detail = "paho rc " + std::to_string(r.rc) + ", reason " + std::to_string(r.reason);
        post([id, r = std::move(r)](client_state& s) { s.on_op_done(id, r); });
      } catch (...) {
      }
    }

    template <typename F>
    void post(F&& f) {
      loop_.post([w = self_, f = std::forward<F>(f)]() mutable {
        if (auto s = w.lock()) f(*s);
      });
    }

    loop::scheduler& loop_;
    std::weak_ptr<client_state> self_;
  };

  struct subscription {
    int qos = 1;
    handler h;
    uint32_t id = 0;                // MQTT v5 subscription identifier, fixed for its lifetime
    bool confirmed = false;         // the broker holds it in the current session
    uint64_t in_flight = 0;         // op id of the SUBSCRIBE on the wire, 0 when none
    std::vector<completion> waiting;  // subscribe() callers waiting for the SUBACK
  };
  struct op {
    op_kind kind;
    completion done;
    std::string filter;  // subscribe/unsubscribe
  };

  client_state(loop::scheduler& l, const options& o) : loop(l), opts(o), log(core::log::get("bus")) {}

  // --- set-up ----------------------------------------------------------------------------------

  void create() {
    auto parsed = parse_uri(opts.broker_uri);
    if (!parsed) {
      create_error = parsed.err();
      return;
    }
    addr = *parsed;
    if (opts.client_id.empty()) {
      opts.client_id = random_client_id();
      if (!opts.clean_start) {
        log->warn("no client_id given: using {}; the persistent session will not survive a restart",
                  opts.client_id);
      }
    }
    try {
      mqtt::create_options co(MQTTVERSION_5);
      // Offline buffering (Paho C createOptions): publish() while disconnected, even before the
      // first connect, is queued in memory and sent on the next successful connect. Oldest
      // messages are not dropped when full: the caller gets errc::not_connected instead.
      co.set_send_while_disconnected(true, true);
      co.set_max_buffered_messages(static_cast<int>(opts.max_inflight));
      co.set_delete_oldest_messages(false);
      // No Paho persistence (nullptr = in-memory only): a restarted process re-sends from its
      // own persisted protocol state, never from a Paho file store.
      cli = std::make_unique<mqtt::async_client>(addr.paho_uri, opts.client_id, co, nullptr);
      cli->set_callback(*bridge_);
      cli->set_disconnected_handler([b = bridge_.get()](const mqtt::properties& p, mqtt::ReasonCode r) {
        b->disconnected(p, r);
      });
    } catch (const std::exception& e) {
      create_error = make_error(errc::bad_uri, e.what());
      cli.reset();
    }
  }

  mqtt::connect_options make_connect_options() const {
    mqtt::connect_options co;
    co.set_mqtt_version(MQTTVERSION_5);
    co.set_clean_start(opts.clean_start);
    co.set_keep_alive_interval(opts.keepalive_s);
    // Paho's connect timeout is in whole seconds.
    co.set_connect_timeout(std::max<int>(1, static_cast<int>((opts.connect_timeout.count() + 999) / 1000)));
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

  // --- connection ------------------------------------------------------------------------------

  void connect_now() {
    if (stopping || !cli || connecting) return;
    connecting = true;
    const uint64_t id = add_op(op_kind::connect, {});
    try {
      // Built fresh for every attempt and passed as an lvalue: Paho C++ 1.2's connect_options
      // loses its MQTT v5 properties (the session expiry!) when move-assigned, because the C
      // struct keeps pointing at the moved-from property list.
      mqtt::connect_options co = make_connect_options();
      cli->connect(co, reinterpret_cast<void*>(static_cast<uintptr_t>(id)), *bridge_);
    } catch (const std::exception& e) {
      op_result r;
      r.rc = -1;
      r.detail = e.what();
      on_op_done(id, r);
    }
  }

  void schedule_reconnect() {
    if (stopping || terminal) return;
    // Exponential back-off with +-25% jitter so a fleet does not reconnect in lock-step after a
    // broker restart.
    std::uniform_real_distribution<double> jitter(0.75, 1.25);
    auto d = std::chrono::milliseconds(static_cast<int64_t>(retry_delay.count() * jitter(rng)));
    retry_delay = std::min(retry_delay * 2, opts.max_retry);
    log->debug("reconnect to {} in {} ms", addr.paho_uri, d.count());
    retry_timer = loop.call_after(d, [this] { connect_now(); });
  }

  void on_connect_result(const op_result& r) {
    connecting = false;
    if (stopping) return;
    if (!r.ok) {
      // Paho C reports a v5 CONNACK refusal as rc = the reason code (135, reason 0) and some
      // failures with the code in reason; v3.1.1 says 5 (not authorized).
      const bool auth = is_auth_failure(r.reason) || is_auth_failure(r.rc) || r.rc == 5;
      log->debug("connect to {} failed: {}", addr.paho_uri, r.detail);
      if (first_connect) {
        auto cb = std::exchange(first_connect, {});
        if (auth && !opts.retry_refused_credentials) terminal = true;  // retrying cannot help
        cb(make_error(auth ? errc::not_authorized : errc::connect_failed, addr.paho_uri + ": " + r.detail));
      }
      schedule_reconnect();
      return;
    }
    is_connected = true;
    topic_alias_maximum = r.topic_alias_maximum;
    subscription_ids = r.subscription_ids;
    retry_delay = opts.min_retry;
    log->info("connected to {} as {} (session present: {})", addr.paho_uri, opts.client_id,
              r.session_present);
    if (opts.tcp_nodelay) {
      int n = set_tcp_nodelay_to_peer(addr.host, addr.port);
      if (n <= 0) log->warn("TCP_NODELAY: no socket to {}:{} found ({})", addr.host, addr.port, n);
    }
    // Subscriptions are re-sent on every connect, not only when the broker reports no session
    // (session present = false): a broker that crashed between its SUBACK and its next autosave
    // comes back with our session but without that subscription, and says "session present".
    // Re-subscribing an existing filter is harmless in MQTT (it replaces the subscription, queued
    // messages stay) and retain handling "on new only" avoids a second copy of retained messages.
    for (auto& [filter, sub] : subs) {
      if (!r.session_present) sub.confirmed = false;
      sub.in_flight = 0;  // SUBSCRIBEs of the previous connection are gone
      send_subscribe(filter);
    }
    if (first_connect) std::exchange(first_connect, {})(ok());
    notify(true);
  }

  void on_connection_lost(const std::string& cause) {
    if (stopping || !is_connected) return;  // both a DISCONNECT and the lost socket may report it
    is_connected = false;
    log->warn("connection to {} lost: {}", addr.paho_uri, cause.empty() ? "(no cause)" : cause);
    notify(false);
    schedule_reconnect();
  }

  void notify(bool up) {
    // Copy: a listener may register another listener.
    auto fns = conn_listeners;
    for (auto& fn : fns) fn(up);
  }

  // --- operations ------------------------------------------------------------------------------

  uint64_t add_op(op_kind k, completion done, std::string filter = {}) {
    const uint64_t id = ++next_op;
    ops.emplace(id, op{k, std::move(done), std::move(filter)});
    return id;
  }

  void fail_later(completion done, error e) {
    if (!done) return;
    loop.post([done = std::move(done), e = std::move(e)] { done(e); });
  }

  void send_subscribe(const std::string& filter) {
    auto it = subs.find(filter);
    if (it == subs.end() || !cli) return;
    const uint64_t id = add_op(op_kind::subscribe, {}, filter);
    it->second.in_flight = id;
    try {
      const mqtt::subscribe_options so(false, opts.retain_as_published,
                                       mqtt::subscribe_options::SEND_RETAINED_ON_NEW);
      mqtt::properties props;
      if (subscription_ids) props.add(mqtt::property(mqtt::property::SUBSCRIPTION_IDENTIFIER, static_cast<int>(it->second.id)));
      cli->subscribe(filter, it->second.qos, reinterpret_cast<void*>(static_cast<uintptr_t>(id)),
                     *bridge_, so, props);
    } catch (const std::exception& e) {
      // Typically the connection dropped just now: the next connect resends it.
      ops.erase(id);
      it->second.in_flight = 0;
      log->debug("subscribe {} not sent: {}", filter, e.what());
    }
  }

  void on_op_done(uint64_t id, const op_result& r) {
    auto it = ops.find(id);
    if (it == ops.end()) return;  // failed by stop() already
    op o = std::move(it->second);
    ops.erase(it);
    switch (o.kind) {
      case op_kind::connect:
        on_connect_result(r);
        return;
      case op_kind::publish:
        if (!o.done) return;
        if (r.ok) {
          o.done(ok());
        } else {
          o.done(make_error(is_auth_failure(r.reason) ? errc::not_authorized : errc::publish_failed, r.detail));
        }
        return;
      case op_kind::subscribe: {
        auto s = subs.find(o.filter);
        if (s == subs.end() || s->second.in_flight != id) return;  // unsubscribed or superseded
        s->second.in_flight = 0;
        if (r.ok) {
          s->second.confirmed = true;
        } else if (r.reason < 0x80) {
          // No SUBACK (the connection dropped): the next connect resends it. Keep the waiters.
          return;
        } else {
          log->warn("broker refused subscription {}: {}", o.filter, r.detail);
        }
        auto waiting = std::exchange(s->second.waiting, {});
        for (auto& w : waiting) {
          if (r.ok) {
            w(ok());
          } else {
            w(make_error(is_auth_failure(r.reason) ? errc::not_authorized : errc::subscribe_failed,
                         o.filter + ": " + r.detail));
          }
        }
        return;
      }
      case op_kind::unsubscribe:
        return;
    }
  }

  void on_message(const inbound& in) {
    if (stopping) return;
    // Paho delivers every message through one callback: route it. Each subscription carries an
    // MQTT v5 subscription identifier, and a broker that sends one copy per overlapping
    // subscription (mosquitto 2) names the one each copy is for: that copy goes to that handler
    // only, so no handler sees a message twice. A copy without identifiers (a broker without
    // them, or one queued for a previous process's session) goes to every matching filter.
    // A filter without wildcards matches only its own topic: one lookup instead of a scan, so a
    // client holding thousands of mailbox subscriptions (hmq-fleetsim) routes in O(log n).
    bool routed = false;
    std::vector<handler> targets;
    for (uint32_t sid : in.subscription_ids) {
      auto f = filter_of_id.find(sid);
      if (f == filter_of_id.end()) continue;
      auto it = subs.find(f->second);
      if (it != subs.end() && topic_matches(it->first, in.topic)) targets.push_back(it->second.h);
    }
    if (targets.empty()) {
      if (auto it = subs.find(in.topic); it != subs.end() && !is_pattern(it->first)) targets.push_back(it->second.h);
      for (const auto& filter : patterns) {
        if (auto it = subs.find(filter); it != subs.end() && topic_matches(filter, in.topic)) targets.push_back(it->second.h);
      }
    }
    for (auto& h : targets) {
      routed = true;
      if (h) h(in);
    }
    if (!routed) {
      ++unrouted;
      log->debug("message on {} matches no subscription; dropped", in.topic);
    }
  }

  void stop() {
    if (stopping) return;
    stopping = true;
    retry_timer.cancel();
    if (cli) {
      try {
        cli->disable_callbacks();
        if (cli->is_connected()) {
          // DISCONNECT with reason 4 asks the broker to publish our will anyway: a clean stop is
          // an "offline" as much as a crash is (presence topic).
          mqtt::disconnect_options d(1000);
          if (opts.will) d.set_reason_code(mqtt::ReasonCode::DISCONNECT_WITH_WILL_MESSAGE);
          cli->disconnect(d)->wait_for(std::chrono::seconds(2));
        }
      } catch (const std::exception& e) {
        log->debug("disconnect: {}", e.what());
      }
    }
    const bool was = is_connected;
    is_connected = false;
    auto pending = std::exchange(ops, {});
    std::vector<completion> waiters;
    for (auto& [filter, sub] : subs) {
      for (auto& w : sub.waiting) waiters.push_back(std::move(w));
      sub.waiting.clear();
    }
    if (first_connect) waiters.push_back(std::exchange(first_connect, {}));
    for (auto& [id, o] : pending) {
      if (o.done) waiters.push_back(std::move(o.done));
    }
    for (auto& w : waiters) w(make_error(errc::stopped));
    if (was) notify(false);
  }

  loop::scheduler& loop;
  options opts;
  std::shared_ptr<spdlog::logger> log;
  broker_address addr;
  std::optional<error> create_error;

  std::unique_ptr<bridge> bridge_;            // outlives cli (declared first, destroyed last)
  std::unique_ptr<mqtt::async_client> cli;

  std::map<std::string, subscription> subs;
  // The keys of `subs` that can match more than their own text (wildcards, shared subscriptions).
  std::set<std::string> patterns;
  static bool is_pattern(std::string_view f) {
    return f.find_first_of("+#") != std::string_view::npos || f.starts_with("$share/");
  }
  std::unordered_map<uint32_t, std::string> filter_of_id;  // subscription identifier -> key of subs
  uint32_t next_sub_id = 0;
  bool subscription_ids = true;
  uint32_t take_sub_id() {
    // 1 .. 268,435,455 (a variable byte integer); an id is never reused while its filter lives.
    do {
      next_sub_id = next_sub_id % 268435455u + 1;
    } while (filter_of_id.contains(next_sub_id));
    return next_sub_id;
  }
  std::unordered_map<uint64_t, op> ops;
  uint64_t next_op = 0;
  uint64_t unrouted = 0;
  std::vector<std::function<void(bool)>> conn_listeners;
  completion first_connect;
  loop::timer_handle retry_timer;
  std::chrono::milliseconds retry_delay{0};
  std::minstd_rand rng{std::random_device{}()};
  bool started = false;
  bool connecting = false;
  bool is_connected = false;
  uint16_t topic_alias_maximum = 0;
  bool stopping = false;
  bool terminal = false;  // refused credentials: no more attempts
};

// ---------------------------------------------------------------------------------------------

}  // namespace

// The client's state is shared so that closures posted by Paho's threads can hold a weak_ptr
// to it and become no-ops once the client is destroyed.
struct client::impl {
  std::shared_ptr<client_state> s;
  client_state* operator->() const { return s.get(); }
  client_state& operator*() const { return *s; }
};

client::client(loop::scheduler& loop, options o) : opts_(std::move(o)), impl_(std::make_unique<impl>()) {
  auto s = std::make_shared<client_state>(loop, opts_);
  s->bridge_ = std::make_unique<client_state::bridge>(loop, s);
  s->retry_delay = opts_.min_retry;
  s->create();
  impl_->s = std::move(s);
}

client::~client() {
  stop();
  client_state& s = **impl_;
  if (s.cli) {
    try {
      s.cli->disable_callbacks();
    } catch (...) {
    }
    s.cli.reset();  // no Paho callback runs after this
  }
}

void client::start(completion on_first_connect) {
  client_state& s = **impl_;
  if (s.started || s.stopping) return;
  s.started = true;
  if (s.create_error) {
    s.terminal = true;
    s.fail_later(std::move(on_first_connect), *s.create_error);
    return;
  }
  s.first_connect = std::move(on_first_connect);
  s.connect_now();
}

void client::stop() { (*impl_)->stop(); }

void client::subscribe(std::string filter, int qos, handler h, completion done) {
  client_state& s = **impl_;
  if (s.stopping) return s.fail_later(std::move(done), make_error(errc::stopped));
  if (s.create_error) return s.fail_later(std::move(done), *s.create_error);
  if (client_state::is_pattern(filter)) s.patterns.insert(filter);
  auto& sub = s.subs[filter];
  if (sub.id == 0) {
    sub.id = s.take_sub_id();
    s.filter_of_id.emplace(sub.id, filter);
  }
  const bool changed_qos = sub.qos != qos;
  sub.qos = qos;
  sub.h = std::move(h);
  if (done) sub.waiting.push_back(std::move(done));
  if (changed_qos) sub.confirmed = false;
  if (sub.confirmed) {
    // Already held by the broker: only the handler changed.
    auto waiting = std::exchange(sub.waiting, {});
    for (auto& w : waiting) s.loop.post([w = std::move(w)] { w(ok()); });
    return;
  }
  if (s.is_connected && sub.in_flight == 0) s.send_subscribe(filter);
}

void client::unsubscribe(const std::string& filter) {
  client_state& s = **impl_;
  auto it = s.subs.find(filter);
  if (it == s.subs.end()) return;
  auto waiting = std::exchange(it->second.waiting, {});
  s.filter_of_id.erase(it->second.id);
  s.subs.erase(it);
  s.patterns.erase(filter);
  for (auto& w : waiting) s.fail_later(std::move(w), make_error(errc::subscribe_failed, "unsubscribed"));
  if (s.is_connected && s.cli) {
    const uint64_t id = s.add_op(op_kind::unsubscribe, {}, filter);
    try {
      s.cli->unsubscribe(filter, reinterpret_cast<void*>(static_cast<uintptr_t>(id)), *s.bridge_);
    } catch (const std::exception& e) {
      s.ops.erase(id);
      s.log->debug("unsubscribe {} not sent: {}", filter, e.what());
    }
  }
}

void client::publish(std::string topic, std::vector<uint8_t> payload, publish_options o, completion done) {
  client_state& s = **impl_;
  if (s.stopping) return s.fail_later(std::move(done), make_error(errc::stopped));
  if (s.create_error) return s.fail_later(std::move(done), *s.create_error);
  if (s.terminal) return s.fail_later(std::move(done), make_error(errc::not_authorized, "client gave up connecting"));
  mqtt::properties props;
  if (o.message_expiry_s > 0) {
    props.add({mqtt::property::MESSAGE_EXPIRY_INTERVAL, static_cast<int>(o.message_expiry_s)});
  }
  if (o.topic_alias > 0) {
    props.add({mqtt::property::TOPIC_ALIAS, static_cast<int>(o.topic_alias)});
  }
  if (!o.content_type.empty()) props.add({mqtt::property::CONTENT_TYPE, o.content_type});
  if (!o.response_topic.empty()) props.add({mqtt::property::RESPONSE_TOPIC, o.response_topic});
  if (!o.correlation_data.empty()) {
    props.add({mqtt::property::CORRELATION_DATA,
               mqtt::binary(o.correlation_data.begin(), o.correlation_data.end())});
  }
  if (o.payload_utf8) props.add({mqtt::property::PAYLOAD_FORMAT_INDICATOR, 1});
  for (const auto& [k, v] : o.user_props) props.add({mqtt::property::USER_PROPERTY, k, v});
  auto msg = mqtt::message::create(std::move(topic), payload.data(), payload.size(), o.qos, o.retain, props);
  const uint64_t id = s.add_op(op_kind::publish, std::move(done));
  try {
    s.cli->publish(msg, reinterpret_cast<void*>(static_cast<uintptr_t>(id)), *s.bridge_);
  } catch (const mqtt::exception& e) {
    auto it = s.ops.find(id);
    completion d = std::move(it->second.done);
    s.ops.erase(it);
    // MQTTASYNC_MAX_BUFFERED_MESSAGES / DISCONNECTED: the offline buffer is full.
    const bool offline = e.get_return_code() == MQTTASYNC_MAX_BUFFERED_MESSAGES ||
                         e.get_return_code() == MQTTASYNC_DISCONNECTED;
    s.fail_later(std::move(d), make_error(offline ? errc::not_connected : errc::publish_failed, e.what()));
  } catch (const std::exception& e) {
    auto it = s.ops.find(id);
    completion d = std::move(it->second.done);
    s.ops.erase(it);
    s.fail_later(std::move(d), make_error(errc::publish_failed, e.what()));
  }
}

bool client::connected() const { return (*impl_)->is_connected; }

void client::set_will(std::optional<last_will> w) { (*impl_)->opts.will = std::move(w); }

uint16_t client::topic_alias_maximum() const { return (*impl_)->topic_alias_maximum; }

void client::on_connection_change(std::function<void(bool)> fn) {
  (*impl_)->conn_listeners.push_back(std::move(fn));
}

}  // namespace hmq::core::bus
