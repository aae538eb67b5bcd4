// Exchange events (docs/protocol.md "Events"): each is checked against the per-agbot sequence
// number the exchange stamped on it (agbot/event_window.h) before the engine acts on it. A
// replayed event is dropped; a gap or an event too old to judge leads to a resync, which reads
// what the events would have said from the exchange: served patterns, patterns, nodes.
#include <algorithm>
#include <limits>

#include "agbot/engine.h"

namespace hmq::agbot {
namespace {

// A gap this old is not a late event from another replica but a lost one.
constexpr std::chrono::milliseconds gap_grace{2'000};
// Resyncs (a full node search) are at most this frequent, whatever asks for them.
constexpr std::chrono::milliseconds resync_spacing{10'000};

std::string str(const flatbuffers::String* s) {
  return s ? s->str() : std::string{};
}

// The node an event is about, as far as the event tells.
fb::NodeT node_of(const fb::Event& e) {
  fb::NodeT n;
  n.org = str(e.org());
  n.id = str(e.id());
  n.pattern = str(e.pattern());
  n.arch = str(e.node_arch());
  n.mailbox = str(e.node_mailbox());
  if (e.node_public_key())
    n.public_key.assign(e.node_public_key()->begin(), e.node_public_key()->end());
  return n;
}

}  // namespace

void engine::load_event_window() {
  auto& db = store_.db();
  if (auto r = event_window::create_table(db); !r) {
    log_->error("cannot keep event sequence numbers: {}", r.err().message());
    return;
  }
  auto w = event_window::load(db, cfg_.exchange_key);
  if (!w) {
    log_->error("cannot read event sequence numbers: {}", w.err().message());
    return;
  }
  events_seen_ = *w;
  if (!events_seen_.empty()) log_->debug("events up to {} seen before", events_seen_.high());
}

bool engine::fresh_event(const fb::Event& e) {
  if (e.seq() == 0) {
    ++stats_.dropped_invalid;
    log_->warn("dropped event {} without a sequence number", fb::EnumNameEventKind(e.kind()));
    return false;
  }
  switch (events_seen_.accept(e.seq())) {
    case event_window::verdict::replayed:
      ++stats_.events_replayed;
      // Also what an exchange that publishes its outbox again after a restart sends: the same
      // event (same number) in a new message. Acted on once either way.
      log_->info("dropped event {} ({}): seen before (sent again, or replayed)", e.seq(),
                 fb::EnumNameEventKind(e.kind()));
      return false;
    case event_window::verdict::too_old:
      ++stats_.events_replayed;
      log_->warn(
          "dropped event {} ({}): older than the last {} seen (up to {}); replayed, or the "
          "exchange's database was restored. Resyncing",
          e.seq(), fb::EnumNameEventKind(e.kind()), event_window::width, events_seen_.high());
      resync("an event older than the window");
      return false;
    case event_window::verdict::fresh:
      break;
  }
  save_event_window();
  if (events_seen_.missing() > 0 && !gap_timer_.active()) {
    gap_timer_ = loop_.call_after(gap_grace, guard([this] {
                                    const uint64_t n = events_seen_.missing();
                                    if (n == 0) return;
                                    ++stats_.event_gaps;
                                    log_->warn("{} event(s) before {} never arrived; resyncing", n,
                                               events_seen_.high());
                                    events_seen_.forget_gaps();
                                    save_event_window();
                                    resync("missing events");
                                  }));
  }
  return true;
}

void engine::save_event_window() {
  if (auto r = events_seen_.save(store_.db(), cfg_.exchange_key); !r)
    log_->error("cannot store event sequence numbers: {}", r.err().message());
}

void engine::resync(const std::string& why) {
  if (resync_timer_.active()) return;  // one is due already
  const int64_t now = loop_.time().now_ms();
  const int64_t wait = std::max<int64_t>(0, last_resync_ms_ + resync_spacing.count() - now);
  resync_timer_ = loop_.call_after(
      std::chrono::milliseconds(wait), guard([this, why] {
        last_resync_ms_ = loop_.time().now_ms();
        ++stats_.resyncs;
        log_->info("resync ({}): reading served patterns, patterns and nodes again", why);
        if (patterns_loaded_) load_agbot();
      }));
}

void engine::check_event_counter(uint64_t exchange_seq) {
  if (exchange_seq == 0 || events_seen_.empty() || exchange_seq >= events_seen_.high()) return;
  // Only the exchange's own answer can move the window back: its counter is behind what we
  // saw, so its database was restored or replaced and its numbers start over.
  log_->warn(
      "the exchange's event counter ({}) is behind the last event seen ({}): its database was "
      "restored or replaced; counting from {}",
      exchange_seq, events_seen_.high(), exchange_seq);
  events_seen_.restart_at(exchange_seq);
  save_event_window();
}

void engine::on_event(const core::wire::opened& m, const fb::Event& e) {
  if (m.sender != cfg_.exchange_key) {
    ++stats_.dropped_wrong_sender;
    log_->warn("dropped event not sent by the exchange");
    return;
  }
  if (!fresh_event(e)) return;
  ++stats_.events;
  const std::string org = str(e.org()), id = str(e.id()), pattern = str(e.pattern());
  switch (e.kind()) {
    case fb::EventKind::node_registered: {
      fb::NodeT hint = node_of(e);
      consider_request r{org, id, pattern, {}, {}};
      if (e.has_node_user_inputs()) {
        // The event carries all evaluate() needs: propose without fetching the node (one bus
        // round trip less between registration and agreement).
        if (e.node_user_inputs())
          for (const auto* ui : *e.node_user_inputs())
            if (ui)
              hint.user_inputs.push_back(std::unique_ptr<fb::ServiceUserInputT>(ui->UnPack()));
        r.node = std::move(hint);
      } else {
        r.hint = std::move(hint);  // from an older exchange: look the node up for its inputs
      }
      log_->info("node {}/{}: registered for {}", org, id, pattern);
      if (!patterns_loaded_) return early_.push_back(std::move(r));
      if (!patterns_.count(pattern)) {
        ++stats_.events_ignored;
        return;
      }
      return enqueue(std::move(r));
    }
    case fb::EventKind::node_unregistered: {
      // The node is gone: cancel locally, nobody to tell; the exchange dropped its records.
      std::vector<agreement> gone;
      for (const auto& [aid, a] : live_)
        if (a.node_org == org && a.node_id == id) gone.push_back(a);
      for (auto& a : gone) {
        a.exchange_synced = true;
        log_->info("agreement {} node {}: node unregistered", a.id, a.node());
        auto slot = a.slot();
        cancel(std::move(a), fb::CancelReason::user_requested, false);
        rollout_->on_abandoned(slot);
      }
      const std::string prefix = org + "/" + id + "|";
      std::erase_if(backoffs_, [&](const auto& kv) { return kv.first.starts_with(prefix); });
      return;
    }
    case fb::EventKind::pattern_changed: {
      auto key = org + "/" + id;
      if (!patterns_.count(key)) {
        ++stats_.events_ignored;
        return;
      }
      log_->info("pattern {}: changed, reloading", key);
      return load_pattern(key, {});
    }
    case fb::EventKind::node_offline:
      // Its last will: the node may only be restarting. Agreements stay until it is stale.
      log_->info("node {}/{}: offline (last will), waiting for its heartbeat", org, id);
      return;
    case fb::EventKind::node_stale:
      if (!patterns_.count(pattern)) {
        ++stats_.events_ignored;
        return;
      }
      return on_node_stale(org, id);
    case fb::EventKind::node_online: {
      if (!patterns_.count(pattern)) {
        ++stats_.events_ignored;
        return;
      }
      return on_node_online(consider_request{org, id, pattern, {}, node_of(e)});
    }
    case fb::EventKind::service_changed:
    case fb::EventKind::service_removed:
      for (auto& [key, pe] : patterns_) {
        pe.resolved.clear();
        ++pe.generation;
      }
      if (e.kind() == fb::EventKind::service_changed) on_service_changed(org, id);
      return;
    default:
      ++stats_.events_ignored;
  }
}

}  // namespace hmq::agbot
