#include "core/bus/client.h"

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <unordered_map>

#include "core/bus/paho.h"
#include "core/bus/tcp_nodelay.h"
#include "core/bus/topic_filter.h"
#include "core/log/log.h"

// Paho MQTT C's asynchronous API, loaded at run time (core/bus/paho.h says why).
//
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
      case errc::ok:
        return "ok";
      case errc::bad_uri:
        return "bad broker uri";
      case errc::connect_failed:
        return "connect failed";
      case errc::not_authorized:
        return "not authorized";
      case errc::not_connected:
        return "not connected";
      case errc::publish_failed:
        return "publish failed";
      case errc::subscribe_failed:
        return "subscribe failed";
      case errc::timeout:
        return "timeout";
      case errc::stopped:
        return "stopped";
    }
    return "unknown bus error " + std::to_string(c);
  }
};

error make_error(errc e, std::string detail = {}) {
  return error{make_error_code(e), std::move(detail)};
}

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
  return reason == MQTTREASONCODE_NOT_AUTHORIZED ||
         reason == MQTTREASONCODE_BAD_USER_NAME_OR_PASSWORD || reason == MQTTREASONCODE_BANNED;
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
// caller catches). The property list is Paho's, read in place.
std::string as_string(const MQTTLenString& v) {
  return v.data ? std::string(v.data, static_cast<size_t>(v.len)) : std::string();
}

void copy_properties(const MQTTProperties& p, inbound& in) {
  for (int i = 0; i < p.count; ++i) {
    const MQTTProperty& q = p.array[i];
    switch (q.identifier) {
      case MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL:
        in.message_expiry_s = q.value.integer4;
        break;
      case MQTTPROPERTY_CODE_CONTENT_TYPE:
        in.content_type = as_string(q.value.data);
        break;
      case MQTTPROPERTY_CODE_RESPONSE_TOPIC:
        in.response_topic = as_string(q.value.data);
        break;
      case MQTTPROPERTY_CODE_CORRELATION_DATA: {
        const auto* d = reinterpret_cast<const uint8_t*>(q.value.data.data);
        if (d) in.correlation_data.assign(d, d + q.value.data.len);
        break;
      }
      case MQTTPROPERTY_CODE_PAYLOAD_FORMAT_INDICATOR:
        in.payload_utf8 = q.value.byte == 1;
        break;
      case MQTTPROPERTY_CODE_USER_PROPERTY:
        in.user_props.emplace_back(as_string(q.value.data), as_string(q.value.value));
        break;
      // A v5 broker names the subscription(s) a copy was sent for; mosquitto 2 sends one copy
      // per matching subscription when filters overlap.
      case MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER:
        in.subscription_ids.push_back(q.value.integer4);
        break;
      default:
        break;
    }
  }
}

// The strings and bytes a CONNECT points at.
struct options_copy {
  std::string username;
  std::string password;
  std::string will_topic;
  std::vector<uint8_t> will_payload;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

// Builds a Paho property list; Paho copies it into the packet, the destructor frees ours.
class property_list {
 public:
  explicit property_list(const paho::api& api) : api_(api) {}
  ~property_list() { api_.properties_free(&p_); }
  property_list(const property_list&) = delete;
  property_list& operator=(const property_list&) = delete;

  void add_int(MQTTPropertyCodes code, uint32_t v) {
    MQTTProperty q{};
    q.identifier = code;
    // Paho reads the member matching the property's type; the others are don't-care.
    q.value.byte = static_cast<unsigned char>(v);
    q.value.integer2 = static_cast<unsigned short>(v);
    q.value.integer4 = v;
    add(q);
  }
  void add_string(MQTTPropertyCodes code, std::string_view v, std::string_view user_value = {}) {
    MQTTProperty q{};
    q.identifier = code;
    q.value.data.data = const_cast<char*>(v.data());
    q.value.data.len = static_cast<int>(v.size());
    q.value.value.data = const_cast<char*>(user_value.data());
    q.value.value.len = static_cast<int>(user_value.size());
    add(q);
  }
  MQTTProperties* get() { return &p_; }
  const MQTTProperties& value() const { return p_; }

 private:
  void add(const MQTTProperty& q) {
    if (api_.properties_add(&p_, &q) != 0) throw std::runtime_error("cannot add MQTT property");
  }
  const paho::api& api_;
  MQTTProperties p_ = MQTTProperties_initializer;
};

// What a Paho completion tells the loop, copied out on Paho's thread.
struct op_result {
  bool ok = false;
  int rc = 0;      // Paho return code
  int reason = 0;  // MQTT v5 reason code (CONNACK/PUBACK/SUBACK)
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

std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), category()};
}

// ---------------------------------------------------------------------------------------------

namespace {

// Loop-owned state of one client (see the thread notes at the top of the file).
struct client_state {
  // The context of Paho's callbacks. Lives as long as the Paho handle (declared before it in
  // client_state, so destroyed after it). Never touches loop state directly.
  class bridge {
   public:
    bridge(loop::scheduler& loop, std::weak_ptr<client_state> self)
        : loop_(loop), self_(std::move(self)) {}
    ~bridge() {
      for (auto* c : contexts_) delete c;
    }
    bridge(const bridge&) = delete;
    bridge& operator=(const bridge&) = delete;

    // One per operation handed to Paho: the callback of that operation takes it back. What
    // Paho drops without a callback (pending operations of a destroyed handle) is freed here.
    struct op_context {
      bridge* b;
      uint64_t id;
      op_kind kind;
    };
    op_context* context(uint64_t id, op_kind kind) {
      auto* c = new op_context{this, id, kind};
      std::lock_guard lock(mutex_);
      contexts_.insert(c);
      return c;
    }
    void release(op_context* c) {
      {
        std::lock_guard lock(mutex_);
        contexts_.erase(c);
      }
      delete c;
    }

    static void on_connection_lost(void* context, char* cause) {
      auto* b = static_cast<bridge*>(context);
      try {
        std::string why = cause ? cause : "";
        b->post([why](client_state& s) { s.on_connection_lost(why); });
      } catch (...) {
      }
    }
    // A v5 DISCONNECT from the broker (administrative action: an identity changed or removed;
    // server shutting down; session taken over). Paho C reports it here and not as a lost
    // connection, and does not reconnect by itself: without this the client stays down.
    static void on_disconnected(void* context, MQTTProperties*, enum MQTTReasonCodes reason) {
      auto* b = static_cast<bridge*>(context);
      try {
        const std::string cause =
            "broker sent DISCONNECT, reason " + std::to_string(static_cast<int>(reason));
        b->post([cause](client_state& s) { s.on_connection_lost(cause); });
      } catch (...) {
      }
    }
    static int on_message(void* context, char* topic, int topic_len, MQTTAsync_message* msg) {
      auto* b = static_cast<bridge*>(context);
      try {
        if (topic && msg && !b->stopped_.load()) {
          inbound in;
          // topic_len is 0 unless the topic holds a NUL.
          in.topic.assign(topic,
                          topic_len > 0 ? static_cast<size_t>(topic_len) : std::strlen(topic));
          const auto* p = static_cast<const uint8_t*>(msg->payload);
          if (p && msg->payloadlen > 0) in.payload.assign(p, p + msg->payloadlen);
          in.qos = msg->qos;
          in.retained = msg->retained != 0;
          copy_properties(msg->properties, in);
          b->post([in = std::move(in)](client_state& s) { s.on_message(in); });
        }
      } catch (...) {
      }
      b->api_->free_message(&msg);
      b->api_->free(topic);
      return 1;  // taken
    }
    static void on_success(void* context, MQTTAsync_successData5* d) {
      complete(context, true, d, nullptr);
    }
    static void on_failure(void* context, MQTTAsync_failureData5* d) {
      complete(context, false, nullptr, d);
    }

    // stop(): Paho's messages are dropped from now on; the DISCONNECT's outcome is awaited.
    void stop() { stopped_ = true; }
    static void on_disconnect_done(void* context, MQTTAsync_successData5*) {
      static_cast<bridge*>(context)->disconnect_done();
    }
    static void on_disconnect_failed(void* context, MQTTAsync_failureData5*) {
      static_cast<bridge*>(context)->disconnect_done();
    }
    bool wait_disconnected(std::chrono::milliseconds limit) {
      std::unique_lock lock(mutex_);
      return disconnected_cv_.wait_for(lock, limit, [&] { return disconnected_; });
    }

    const paho::api* api_ = nullptr;

   private:
    static void complete(void* context, bool ok, MQTTAsync_successData5* sd,
                         MQTTAsync_failureData5* fd) {
      auto* c = static_cast<op_context*>(context);
      bridge* b = c->b;
      const uint64_t id = c->id;
      const op_kind kind = c->kind;
      b->release(c);
      try {
        op_result r;
        r.ok = ok;
        if (sd) r.reason = static_cast<int>(sd->reasonCode);
        if (fd) {
          r.rc = fd->code;
          r.reason = static_cast<int>(fd->reasonCode);
        }
        if (ok && sd && kind == op_kind::connect) {
          r.session_present = sd->alt.connect.sessionPresent != 0;
          const MQTTProperties& p = sd->properties;
          for (int i = 0; i < p.count; ++i) {
            if (p.array[i].identifier == MQTTPROPERTY_CODE_TOPIC_ALIAS_MAXIMUM) {
              r.topic_alias_maximum = p.array[i].value.integer2;
            } else if (p.array[i].identifier ==
                       MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIERS_AVAILABLE) {
              r.subscription_ids = p.array[i].value.byte != 0;
            }
          }
          r.reason = 0;  // CONNACK success
        }
        // v5 SUBACK/PUBACK carry a reason code, and Paho may report success even when it says
        // "refused" (>= 0x80). We send one filter per SUBSCRIBE, so the single reason code is
        // the whole answer.
        if (ok && r.reason >= 0x80) r.ok = false;
        if (!r.ok) {
          r.detail = "paho rc " + std::to_string(r.rc) + ", reason " + std::to_string(r.reason);
          if (fd && fd->message) r.detail += std::string(": ") + fd->message;
        }
        b->post([id, r = std::move(r)](client_state& s) { s.on_op_done(id, r); });
      } catch (...) {
      }
    }
    void disconnect_done() {
      {
        std::lock_guard lock(mutex_);
        disconnected_ = true;
      }
      disconnected_cv_.notify_all();
    }

    template <typename F>
    void post(F&& f) {
      loop_.post([w = self_, f = std::forward<F>(f)]() mutable {
        if (auto s = w.lock()) f(*s);
      });
    }

    loop::scheduler& loop_;
    std::weak_ptr<client_state> self_;
    std::atomic<bool> stopped_{false};
    std::mutex mutex_;
    std::set<op_context*> contexts_;
    std::condition_variable disconnected_cv_;
    bool disconnected_ = false;
  };

  struct subscription {
    int qos = 1;
    handler h;
    uint32_t id = 0;                  // MQTT v5 subscription identifier, fixed for its lifetime
    bool confirmed = false;           // the broker holds it in the current session
    uint64_t in_flight = 0;           // op id of the SUBSCRIBE on the wire, 0 when none
    std::vector<completion> waiting;  // subscribe() callers waiting for the SUBACK
  };
  struct op {
    op_kind kind;
    completion done;
    std::string filter;  // subscribe/unsubscribe
  };

  client_state(loop::scheduler& l, const options& o)
      : loop(l), opts(o), log(core::log::get("bus")) {}

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
    std::string why;
    api = paho::load(addr.tls, why);
    if (!api) {
      create_error = make_error(errc::connect_failed, why);
      return;
    }
    bridge_->api_ = api;
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
    // Offline buffering: publish() while disconnected, even before the first connect, is queued
    // in memory and sent on the next successful connect. Oldest messages are not dropped when
    // full: the caller gets errc::not_connected instead.
    co.sendWhileDisconnected = 1;
    co.allowDisconnectedSendAtAnyTime = 1;
    co.maxBufferedMessages = static_cast<int>(opts.max_inflight);
    co.deleteOldestMessages = 0;
    // No Paho persistence (in memory only): a restarted process re-sends from its own persisted
    // protocol state, never from a Paho file store.
    int rc = api->create(&handle, addr.paho_uri.c_str(), opts.client_id.c_str(),
                         MQTTCLIENT_PERSISTENCE_NONE, nullptr, &co);
    if (rc == MQTTASYNC_SUCCESS) {
      rc = api->set_callbacks(handle, bridge_.get(), &bridge::on_connection_lost,
                              &bridge::on_message, nullptr);
    }
    if (rc == MQTTASYNC_SUCCESS)
      rc = api->set_disconnected(handle, bridge_.get(), &bridge::on_disconnected);
    if (rc != MQTTASYNC_SUCCESS) {
      create_error = make_error(errc::bad_uri, addr.paho_uri + ": " + paho_error(rc));
      if (handle) api->destroy(&handle);
      handle = nullptr;
    }
  }

  std::string paho_error(int rc) const {
    const char* e = api ? api->strerror(rc) : nullptr;
    return e ? std::string(e) : "paho rc " + std::to_string(rc);
  }

  // Everything a CONNECT points at, kept until the next attempt (Paho copies it, but only
  // while it processes the connect on its own thread).
  struct connect_request {
    explicit connect_request(const paho::api& api) : properties(api) {}
    MQTTAsync_connectOptions options = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    property_list properties;
    options_copy copy;
  };

  void fill_connect_request(connect_request& r, bridge::op_context* ctx) const {
    r.copy = {opts.username,
              opts.password,
              opts.will ? opts.will->topic : std::string(),
              opts.will ? opts.will->payload : std::vector<uint8_t>(),
              opts.tls ? opts.tls->ca_file : std::string(),
              opts.tls ? opts.tls->cert_file : std::string(),
              opts.tls ? opts.tls->key_file : std::string()};
    MQTTAsync_connectOptions& co = r.options;
    co.MQTTVersion = MQTTVERSION_5;
    co.cleanstart = opts.clean_start ? 1 : 0;
    co.keepAliveInterval = opts.keepalive_s;
    // Paho's connect timeout is in whole seconds.
    co.connectTimeout =
        std::max<int>(1, static_cast<int>((opts.connect_timeout.count() + 999) / 1000));
    co.automaticReconnect = 0;
    co.maxInflight = static_cast<int>(opts.max_inflight);
    r.properties.add_int(MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL, opts.session_expiry_s);
    co.connectProperties = r.properties.get();
    if (!r.copy.username.empty()) co.username = r.copy.username.c_str();
    if (!r.copy.password.empty()) {
      co.binarypwd.data = r.copy.password.data();
      co.binarypwd.len = static_cast<int>(r.copy.password.size());
    }
    if (opts.will) {
      r.will.topicName = r.copy.will_topic.c_str();
      r.will.message = nullptr;  // binary payload below
      r.will.payload.data = r.copy.will_payload.data();
      r.will.payload.len = static_cast<int>(r.copy.will_payload.size());
      r.will.qos = opts.will->qos;
      r.will.retained = opts.will->retained ? 1 : 0;
      co.will = &r.will;
    }
    if (addr.tls) {
      if (!r.copy.ca_file.empty()) r.ssl.trustStore = r.copy.ca_file.c_str();
      if (!r.copy.cert_file.empty()) r.ssl.keyStore = r.copy.cert_file.c_str();
      if (!r.copy.key_file.empty()) r.ssl.privateKey = r.copy.key_file.c_str();
      r.ssl.enableServerCertAuth = 1;
      r.ssl.verify = 1;  // host name must match the certificate
      co.ssl = &r.ssl;
    }
    co.onSuccess5 = &bridge::on_success;
    co.onFailure5 = &bridge::on_failure;
    co.context = ctx;
  }

  // --- connection ------------------------------------------------------------------------------

  void connect_now() {
    if (stopping || !handle || connecting) return;
    connecting = true;
    const uint64_t id = add_op(op_kind::connect, {});
    auto* ctx = bridge_->context(id, op_kind::connect);
    int rc = MQTTASYNC_FAILURE;
    std::string detail;
    try {
      connecting_with = std::make_unique<connect_request>(*api);
      fill_connect_request(*connecting_with, ctx);
      rc = api->connect(handle, &connecting_with->options);
      detail = paho_error(rc);
    } catch (const std::exception& e) {
      detail = e.what();
    }
    if (rc != MQTTASYNC_SUCCESS) {
      bridge_->release(ctx);
      op_result r;
      r.rc = rc;
      r.detail = detail;
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
        cb(make_error(auth ? errc::not_authorized : errc::connect_failed,
                      addr.paho_uri + ": " + r.detail));
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

  // Where Paho reports the outcome of one operation.
  static MQTTAsync_responseOptions response_options(bridge::op_context* ctx) {
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess5 = &bridge::on_success;
    ro.onFailure5 = &bridge::on_failure;
    ro.context = ctx;
    return ro;
  }

  void send_subscribe(const std::string& filter) {
    auto it = subs.find(filter);
    if (it == subs.end() || !handle) return;
    const uint64_t id = add_op(op_kind::subscribe, {}, filter);
    it->second.in_flight = id;
    auto* ctx = bridge_->context(id, op_kind::subscribe);
    int rc = MQTTASYNC_FAILURE;
    try {
      property_list props(*api);
      if (subscription_ids) props.add_int(MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER, it->second.id);
      MQTTAsync_responseOptions ro = response_options(ctx);
      ro.properties = props.value();  // a shallow view: Paho copies it, props frees it
      ro.subscribeOptions.noLocal = 0;
      ro.subscribeOptions.retainAsPublished = opts.retain_as_published ? 1 : 0;
      ro.subscribeOptions.retainHandling = 1;  // retained messages only for a new subscription
      rc = api->subscribe(handle, filter.c_str(), it->second.qos, &ro);
    } catch (const std::exception&) {
    }
    if (rc != MQTTASYNC_SUCCESS) {
      // Typically the connection dropped just now: the next connect resends it.
      bridge_->release(ctx);
      ops.erase(id);
      it->second.in_flight = 0;
      log->debug("subscribe {} not sent: {}", filter, paho_error(rc));
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
          o.done(make_error(is_auth_failure(r.reason) ? errc::not_authorized : errc::publish_failed,
                            r.detail));
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
      if (auto it = subs.find(in.topic); it != subs.end() && !is_pattern(it->first))
        targets.push_back(it->second.h);
      for (const auto& filter : patterns) {
        if (auto it = subs.find(filter); it != subs.end() && topic_matches(filter, in.topic))
          targets.push_back(it->second.h);
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
    if (handle) {
      bridge_->stop();
      if (api->is_connected(handle)) {
        // DISCONNECT with reason 4 asks the broker to publish our will anyway: a clean stop is
        // an "offline" as much as a crash is (presence topic).
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
        d.timeout = 1000;
        if (opts.will) d.reasonCode = MQTTREASONCODE_DISCONNECT_WITH_WILL_MESSAGE;
        d.onSuccess5 = &bridge::on_disconnect_done;
        d.onFailure5 = &bridge::on_disconnect_failed;
        d.context = bridge_.get();
        const int rc = api->disconnect(handle, &d);
        if (rc != MQTTASYNC_SUCCESS) {
          log->debug("disconnect: {}", paho_error(rc));
        } else if (!bridge_->wait_disconnected(std::chrono::seconds(2))) {
          log->debug("disconnect: no outcome within 2 s");
        }
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

  const paho::api* api = nullptr;
  std::unique_ptr<bridge> bridge_;  // outlives the handle (declared first, destroyed last)
  MQTTAsync handle = nullptr;
  std::unique_ptr<connect_request> connecting_with;

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

client::client(loop::scheduler& loop, options o)
    : opts_(std::move(o)), impl_(std::make_unique<impl>()) {
  auto s = std::make_shared<client_state>(loop, opts_);
  s->bridge_ = std::make_unique<client_state::bridge>(loop, s);
  s->retry_delay = opts_.min_retry;
  s->create();
  impl_->s = std::move(s);
}

client::~client() {
  stop();
  client_state& s = **impl_;
  if (s.handle) {
    s.api->destroy(&s.handle);  // no Paho callback runs after this
    s.handle = nullptr;
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

void client::stop() {
  (*impl_)->stop();
}

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
  for (auto& w : waiting)
    s.fail_later(std::move(w), make_error(errc::subscribe_failed, "unsubscribed"));
  if (s.is_connected && s.handle) {
    const uint64_t id = s.add_op(op_kind::unsubscribe, {}, filter);
    auto* ctx = s.bridge_->context(id, op_kind::unsubscribe);
    MQTTAsync_responseOptions ro = client_state::response_options(ctx);
    const int rc = s.api->unsubscribe(s.handle, filter.c_str(), &ro);
    if (rc != MQTTASYNC_SUCCESS) {
      s.bridge_->release(ctx);
      s.ops.erase(id);
      s.log->debug("unsubscribe {} not sent: {}", filter, s.paho_error(rc));
    }
  }
}

void client::publish(std::string topic, std::vector<uint8_t> payload, publish_options o,
                     completion done) {
  client_state& s = **impl_;
  if (s.stopping) return s.fail_later(std::move(done), make_error(errc::stopped));
  if (s.create_error) return s.fail_later(std::move(done), *s.create_error);
  if (s.terminal)
    return s.fail_later(std::move(done),
                        make_error(errc::not_authorized, "client gave up connecting"));
  const uint64_t id = s.add_op(op_kind::publish, std::move(done));
  auto* ctx = s.bridge_->context(id, op_kind::publish);
  int rc = MQTTASYNC_FAILURE;
  std::string detail;
  try {
    property_list props(*s.api);
    if (o.message_expiry_s > 0)
      props.add_int(MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL, o.message_expiry_s);
    if (o.topic_alias > 0) props.add_int(MQTTPROPERTY_CODE_TOPIC_ALIAS, o.topic_alias);
    if (!o.content_type.empty()) props.add_string(MQTTPROPERTY_CODE_CONTENT_TYPE, o.content_type);
    if (!o.response_topic.empty())
      props.add_string(MQTTPROPERTY_CODE_RESPONSE_TOPIC, o.response_topic);
    if (!o.correlation_data.empty()) {
      props.add_string(MQTTPROPERTY_CODE_CORRELATION_DATA,
                       std::string_view(reinterpret_cast<const char*>(o.correlation_data.data()),
                                        o.correlation_data.size()));
    }
    if (o.payload_utf8) props.add_int(MQTTPROPERTY_CODE_PAYLOAD_FORMAT_INDICATOR, 1);
    for (const auto& [k, v] : o.user_props) props.add_string(MQTTPROPERTY_CODE_USER_PROPERTY, k, v);
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = payload.data();
    msg.payloadlen = static_cast<int>(payload.size());
    msg.qos = o.qos;
    msg.retained = o.retain ? 1 : 0;
    msg.properties = props.value();  // a shallow view: Paho copies the message, props frees it
    MQTTAsync_responseOptions ro = client_state::response_options(ctx);
    rc = s.api->send_message(s.handle, topic.c_str(), &msg, &ro);
    detail = s.paho_error(rc);
  } catch (const std::exception& e) {
    detail = e.what();
  }
  if (rc != MQTTASYNC_SUCCESS) {
    s.bridge_->release(ctx);
    auto it = s.ops.find(id);
    completion d = std::move(it->second.done);
    s.ops.erase(it);
    // MQTTASYNC_MAX_BUFFERED_MESSAGES / DISCONNECTED: the offline buffer is full.
    const bool offline = rc == MQTTASYNC_MAX_BUFFERED_MESSAGES || rc == MQTTASYNC_DISCONNECTED;
    s.fail_later(std::move(d),
                 make_error(offline ? errc::not_connected : errc::publish_failed, detail));
  }
}

bool client::connected() const {
  return (*impl_)->is_connected;
}

void client::set_will(std::optional<last_will> w) {
  (*impl_)->opts.will = std::move(w);
}

uint16_t client::topic_alias_maximum() const {
  return (*impl_)->topic_alias_maximum;
}

void client::on_connection_change(std::function<void(bool)> fn) {
  (*impl_)->conn_listeners.push_back(std::move(fn));
}

}  // namespace hmq::core::bus
