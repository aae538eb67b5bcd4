#include "agent/heartbeat.h"

#include "core/log/log.h"

namespace hmq::agent {
namespace {

auto lg() {
  static auto l = core::log::get("agent.hb");
  return l;
}

}  // namespace

core::result<uint64_t> counter_reservation::next() {
  if (!loaded_) {
    if (auto r = db_.exec("CREATE TABLE IF NOT EXISTS heartbeat_counter ("
                          "id INTEGER PRIMARY KEY CHECK (id = 1), reserved INTEGER NOT NULL)");
        !r)
      return r.err();
    auto st = db_.prepare("SELECT reserved FROM heartbeat_counter WHERE id = 1");
    if (!st) return st.err();
    auto row = st->step();
    if (!row) return row.err();
    // Counter 0 is never used: receivers start at "last seen = 0".
    next_ = *row ? static_cast<uint64_t>(st->column_int(0)) : 1;
    if (next_ == 0) next_ = 1;
    reserved_ = next_;
    loaded_ = true;
  }
  if (next_ >= reserved_) {
    const uint64_t mark = next_ + block_;
    auto st = db_.prepare(
        "INSERT INTO heartbeat_counter (id, reserved) VALUES (1, ?) "
        "ON CONFLICT(id) DO UPDATE SET reserved = excluded.reserved");
    if (!st) return st.err();
    st->bind(1, static_cast<int64_t>(mark));
    if (auto r = st->exec(); !r) return r.err();
    reserved_ = mark;
  }
  return next_++;
}

heartbeat_sender::heartbeat_sender(core::loop::scheduler& loop, core::store::database& db,
                                   const core::crypto::public_key& exchange_key,
                                   const core::crypto::secret& node_sk, std::string mailbox,
                                   core::bus::topics topics, body_fn body, heartbeat_options o)
    : loop_(loop),
      owned_counters_(std::make_unique<counter_reservation>(db, o.reserve_block)),
      counters_(*owned_counters_),
      key_(core::crypto::precompute(exchange_key, node_sk)),
      mailbox_(std::move(mailbox)),
      topics_(std::move(topics)),
      body_(std::move(body)),
      opts_(o) {}

heartbeat_sender::heartbeat_sender(core::loop::scheduler& loop, counter_source& counters,
                                   const core::crypto::public_key& exchange_key,
                                   const core::crypto::secret& node_sk, std::string mailbox,
                                   core::bus::topics topics, body_fn body, heartbeat_options o)
    : loop_(loop),
      counters_(counters),
      key_(core::crypto::precompute(exchange_key, node_sk)),
      mailbox_(std::move(mailbox)),
      topics_(std::move(topics)),
      body_(std::move(body)),
      opts_(o) {}

std::optional<core::bus::last_will> heartbeat_sender::will() {
  auto c = counters_.next();
  if (!c) {
    lg()->error("heartbeat counter: {}", c.err().message());
    return std::nullopt;
  }
  core::bus::last_will w;
  w.topic = topics_.presence(mailbox_);
  w.payload = core::wire::seal_frame(core::wire::frame_kind::offline, *c, {}, key_);
  w.qos = 1;
  // Not retained: secure brokers keep no retained messages (retain_available false), and the
  // exchange takes presence through its persistent QoS 1 subscription.
  w.retained = false;
  return w;
}

void heartbeat_sender::start(core::bus::client& c) {
  client_ = &c;
  c.on_connection_change([this, alive = alive_](bool up) {
    if (*alive) on_connection(up);
  });
  arm(opts_.first_beat.value_or(opts_.interval));
}

void heartbeat_sender::stop() {
  *alive_ = false;
  timer_.cancel();
}

void heartbeat_sender::arm(std::chrono::milliseconds after) {
  timer_ = loop_.call_after(after, [this, alive = alive_] {
    if (!*alive) return;
    beat();
    arm(opts_.interval);
  });
}

void heartbeat_sender::on_connection(bool up) {
  alias_sent_ = false;  // topic aliases live as long as one connection
  if (!client_) return;
  if (!opts_.presence) {
    // A shared connection: no will and no online frame of our own, but the heartbeat right away
    // as below, so the exchange sees the node back without waiting an interval.
    if (up) beat();
    return;
  }
  if (!up) {
    // The next connection gets a will with a new counter: the exchange takes each offline frame
    // once, so re-using the old one would read as a replay.
    if (auto w = will()) client_->set_will(std::move(w));
    return;
  }
  auto c = counters_.next();
  if (!c) {
    lg()->error("heartbeat counter: {}", c.err().message());
    return;
  }
  core::bus::publish_options o;
  o.qos = 1;
  client_->publish(topics_.presence(mailbox_),
                   core::wire::seal_frame(core::wire::frame_kind::online, *c, {}, key_), o);
  // A heartbeat right away: the exchange sees the node back without waiting an interval.
  beat();
}

void heartbeat_sender::beat() {
  if (!client_ || !client_->connected()) {
    ++skipped_;
    return;
  }
  auto c = counters_.next();
  if (!c) {
    ++skipped_;
    lg()->error("heartbeat counter: {}", c.err().message());
    return;
  }
  auto frame = core::wire::seal_frame(core::wire::frame_kind::heartbeat, *c,
                                      body_ ? body_() : core::wire::heartbeat_body{}, key_);
  if (frame.empty()) {
    ++skipped_;
    return;
  }
  core::bus::publish_options o;
  o.qos = 0;
  std::string topic = topics_.heartbeat(mailbox_);
  // Late by more than half an interval (the process was stopped or starved): the broker has
  // probably dropped the connection (keep-alive = interval) without Paho noticing yet. An
  // alias-only PUBLISH would then wait in Paho's queue and reach the NEW connection, where the
  // alias means nothing: a protocol error and another disconnect. Re-sending the topic with the
  // alias is valid on any connection.
  const int64_t now = loop_.time().now_ms();
  if (last_beat_ms_ != 0 && now - last_beat_ms_ > opts_.interval.count() * 3 / 2)
    alias_sent_ = false;
  last_beat_ms_ = now;
  if (opts_.topic_alias != 0 && client_->topic_alias_maximum() >= opts_.topic_alias) {
    o.topic_alias = opts_.topic_alias;
    if (alias_sent_) topic.clear();  // the broker maps alias 1 to the topic already
    alias_sent_ = true;
  }
  client_->publish(std::move(topic), std::move(frame), o);
  ++sent_;
}

}  // namespace hmq::agent
