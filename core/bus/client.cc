#include "core/bus/client.h"

#include <cstdio>
#include <random>
#include <unordered_map>
#include <utility>

#include "core/bus/broker_uri.h"
#include "core/bus/paho_session.h"
#include "core/bus/reconnect_policy.h"
#include "core/bus/subscription_table.h"
#include "core/log/log.h"

// The client composes four parts, each in its own file:
// - paho_session: the Paho MQTT C++ adapter (the only code touching Paho; posts to the loop);
// - subscription_table: filters, subscription identifiers, SUBACK state, routing;
// - reconnect_policy: back-off and the refused-credentials rule;
// - broker_uri: the operator's URI turned into Paho's.
// What is left here is the state machine that ties them together, on the loop thread.
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

std::string random_client_id() {
  std::random_device rd;
  std::uniform_int_distribution<uint64_t> d;
  char buf[32];
  std::snprintf(buf, sizeof buf, "hmq-%016llx", static_cast<unsigned long long>(d(rd)));
  return buf;
}

enum class op_kind { connect, publish, subscribe, unsubscribe };

}  // namespace

const std::error_category& category() {
  static const bus_category c;
  return c;
}

std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), category()};
}

namespace {

// Loop-owned state of one client. Paho's events reach it only through the session's
// session_events, which run on the loop thread and stop when the session is destroyed. Each
// event holds the state alive while it runs (a weak_ptr, locked), so a handler that destroys
// the client does not pull the state from under the event that called it.
struct client_state {
  struct op {
    op_kind kind;
    completion done;
    std::string filter;  // subscribe/unsubscribe
  };

  client_state(loop::scheduler& l, const options& o)
      : loop(l),
        opts(o),
        log(core::log::get("bus")),
        policy(o.min_retry, o.max_retry, o.retry_refused_credentials) {}

  // The session goes first: its destructor silences Paho before the rest goes.
  ~client_state() { session.reset(); }

  // --- set-up ----------------------------------------------------------------------------------

  void create(const std::weak_ptr<client_state>& self) {
    auto parsed = parse_broker_uri(opts.broker_uri);
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
    session_events ev;
    ev.op_done = [self](uint64_t id, const op_result& r) {
      if (auto s = self.lock()) s->on_op_done(id, r);
    };
    ev.message = [self](const inbound& in) {
      if (auto s = self.lock()) s->on_message(in);
    };
    ev.lost = [self](const std::string& cause) {
      if (auto s = self.lock()) s->on_connection_lost(cause);
    };
    auto s = paho_session::create(loop, addr, opts.client_id, opts, std::move(ev));
    if (!s) {
      create_error = s.err();
      return;
    }
    session = std::move(*s);
  }

  // --- connection ------------------------------------------------------------------------------

  void connect_now() {
    if (stopping || !session || connecting) return;
    connecting = true;
    const uint64_t id = add_op(op_kind::connect, {});
    if (auto r = session->connect(id, opts); !r) {
      op_result res;
      res.rc = -1;
      res.detail = r.err().detail;
      on_op_done(id, res);
    }
  }

  void schedule_reconnect() {
    if (stopping) return;
    const auto d = policy.next_delay();
    if (!d) return;
    log->debug("reconnect to {} in {} ms", addr.paho_uri, d->count());
    retry_timer = loop.call_after(*d, [this] { connect_now(); });
  }

  void on_connect_result(const op_result& r) {
    connecting = false;
    if (stopping) return;
    if (!r.ok) {
      const auto v = policy.on_connect_failed(r.rc, r.reason, static_cast<bool>(first_connect));
      log->debug("connect to {} failed: {}", addr.paho_uri, r.detail);
      if (first_connect) {
        std::exchange(first_connect, {})(
            make_error(v.refused_credentials ? errc::not_authorized : errc::connect_failed,
                       addr.paho_uri + ": " + r.detail));
      }
      schedule_reconnect();
      return;
    }
    is_connected = true;
    alias_maximum = r.topic_alias_maximum;
    subscription_ids = r.subscription_ids;
    policy.on_connected();
    log->info("connected to {} as {} (session present: {})", addr.paho_uri, opts.client_id,
              r.session_present);
    if (opts.tcp_nodelay && r.nodelay_sockets <= 0) {
      log->warn("TCP_NODELAY: no socket to {}:{} found ({})", addr.host, addr.port,
                r.nodelay_sockets);
    }
    // Re-sent on every connect, not only without a session: subscription_table says why.
    // Re-subscribing an existing filter is harmless in MQTT (it replaces the subscription, queued
    // messages stay) and retain handling "on new only" avoids a second copy of retained messages.
    for (const auto& filter : subs.resubscribe_after_connect(r.session_present))
      send_subscribe(filter);
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
    auto* e = subs.find(filter);
    if (!e || !session) return;
    const uint64_t id = add_op(op_kind::subscribe, {}, filter);
    e->in_flight = id;
    auto r = session->subscribe(id, filter, e->qos, subscription_ids ? e->id : 0,
                                opts.retain_as_published);
    if (!r) {
      // Typically the connection dropped just now: the next connect resends it.
      ops.erase(id);
      e->in_flight = 0;
      log->debug("subscribe {} not sent: {}", filter, r.err().detail);
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
      case op_kind::subscribe:
        on_suback(id, o.filter, r);
        return;
      case op_kind::unsubscribe:
        return;
    }
  }

  void on_suback(uint64_t id, const std::string& filter, const op_result& r) {
    using suback = subscription_table::suback;
    // Without a SUBACK (reason < 0x80 and not ok: the connection dropped) the next connect
    // re-sends the filter and its waiters keep waiting.
    const suback outcome = r.ok              ? suback::granted
                           : r.reason < 0x80 ? suback::lost
                                             : suback::refused;
    auto waiting = subs.settle(filter, id, outcome);
    if (!waiting) return;
    // The subscriber's completion reports it (an exchange user's own mailbox is refused by
    // design: core/bus/messenger.h listen_inbox).
    if (outcome == suback::refused)
      log->debug("broker refused subscription {}: {}", filter, r.detail);
    for (auto& w : *waiting) {
      if (r.ok) {
        w(ok());
      } else {
        w(make_error(is_auth_failure(r.reason) ? errc::not_authorized : errc::subscribe_failed,
                     filter + ": " + r.detail));
      }
    }
  }

  void on_message(const inbound& in) {
    if (stopping) return;
    // Paho delivers every message through one callback: the table says whose it is.
    const auto targets = subs.route(in);
    for (const auto& h : targets) {
      if (h) h(in);
    }
    if (targets.empty()) {
      ++unrouted;
      log->debug("message on {} matches no subscription; dropped", in.topic);
    }
  }

  void stop() {
    if (stopping) return;
    stopping = true;
    retry_timer.cancel();
    // DISCONNECT with reason 4 asks the broker to publish our will anyway: a clean stop is an
    // "offline" as much as a crash is (presence topic).
    if (session) session->disconnect(opts.will.has_value());
    const bool was = is_connected;
    is_connected = false;
    auto pending = std::exchange(ops, {});
    std::vector<completion> waiters = subs.take_all_waiters();
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
  reconnect_policy policy;
  subscription_table subs;
  std::unique_ptr<paho_session> session;

  bool subscription_ids = true;  // the broker takes MQTT v5 subscription identifiers
  std::unordered_map<uint64_t, op> ops;
  uint64_t next_op = 0;
  uint64_t unrouted = 0;
  std::vector<std::function<void(bool)>> conn_listeners;
  completion first_connect;
  loop::timer_handle retry_timer;
  bool started = false;
  bool connecting = false;
  bool is_connected = false;
  uint16_t alias_maximum = 0;
  bool stopping = false;
};

}  // namespace

struct client::impl {
  std::shared_ptr<client_state> s;
};

client::client(loop::scheduler& loop, options o)
    : opts_(std::move(o)), impl_(std::make_unique<impl>()) {
  impl_->s = std::make_shared<client_state>(loop, opts_);
  impl_->s->create(impl_->s);
}

client::~client() {
  stop();
  impl_->s->session.reset();  // no Paho callback runs after this
}

void client::start(completion on_first_connect) {
  client_state& s = *impl_->s;
  if (s.started || s.stopping) return;
  s.started = true;
  if (s.create_error) {
    s.policy.give_up();
    s.fail_later(std::move(on_first_connect), *s.create_error);
    return;
  }
  s.first_connect = std::move(on_first_connect);
  s.connect_now();
}

void client::stop() {
  impl_->s->stop();
}

void client::subscribe(std::string filter, int qos, handler h, completion done) {
  client_state& s = *impl_->s;
  if (s.stopping) return s.fail_later(std::move(done), make_error(errc::stopped));
  if (s.create_error) return s.fail_later(std::move(done), *s.create_error);
  auto& sub = s.subs.add(filter, qos, std::move(h));
  if (done) sub.waiting.push_back(std::move(done));
  if (sub.confirmed) {
    // Already held by the broker: only the handler changed.
    auto waiting = std::exchange(sub.waiting, {});
    for (auto& w : waiting) s.loop.post([w = std::move(w)] { w(ok()); });
    return;
  }
  if (s.is_connected && sub.in_flight == 0) s.send_subscribe(filter);
}

void client::unsubscribe(const std::string& filter) {
  client_state& s = *impl_->s;
  auto waiting = s.subs.remove(filter);
  if (!waiting) return;
  for (auto& w : *waiting)
    s.fail_later(std::move(w), make_error(errc::subscribe_failed, "unsubscribed"));
  if (s.is_connected && s.session) {
    const uint64_t id = s.add_op(op_kind::unsubscribe, {}, filter);
    if (auto r = s.session->unsubscribe(id, filter); !r) {
      s.ops.erase(id);
      s.log->debug("unsubscribe {} not sent: {}", filter, r.err().detail);
    }
  }
}

void client::publish(std::string topic, std::vector<uint8_t> payload, publish_options o,
                     completion done) {
  client_state& s = *impl_->s;
  if (s.stopping) return s.fail_later(std::move(done), make_error(errc::stopped));
  if (s.create_error) return s.fail_later(std::move(done), *s.create_error);
  if (s.policy.terminal())
    return s.fail_later(std::move(done),
                        make_error(errc::not_authorized, "client gave up connecting"));
  const uint64_t id = s.add_op(op_kind::publish, std::move(done));
  if (auto r = s.session->publish(id, topic, payload, o); !r) {
    auto it = s.ops.find(id);
    completion d = std::move(it->second.done);
    s.ops.erase(it);
    s.fail_later(std::move(d), r.err());
  }
}

bool client::connected() const {
  return impl_->s->is_connected;
}

void client::set_will(std::optional<last_will> w) {
  impl_->s->opts.will = std::move(w);
}

uint16_t client::topic_alias_maximum() const {
  return impl_->s->alias_maximum;
}

void client::on_connection_change(std::function<void(bool)> fn) {
  impl_->s->conn_listeners.push_back(std::move(fn));
}

}  // namespace hmq::core::bus
