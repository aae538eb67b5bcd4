#include "exchange/heartbeat.h"

#include <algorithm>

#include "core/log/log.h"
#include "exchange_client/ids.h"

namespace hmq::exchange {

using exchange_client::service_id;
using exchange_client::split_qualified;
namespace {

namespace wire = core::wire;
namespace crypto = core::crypto;

auto lg() {
  static auto l = core::log::get("exchange.hb");
  return l;
}

// Counters survive an exchange restart so an old frame cannot be replayed to it then.
constexpr std::string_view counters_table =
    "CREATE TABLE IF NOT EXISTS heartbeat_counters ("
    "mailbox TEXT PRIMARY KEY, counter INTEGER NOT NULL, offline INTEGER NOT NULL)";

}  // namespace

heartbeat_tracker::heartbeat_tracker(db& d, const crypto::box_keypair& self,
                                     const core::loop::clock& clock, heartbeat_options o)
    : db_(d), self_(self), clock_(clock), opts_(o) {}

result<void> heartbeat_tracker::load() {
  if (auto r = db_.sql().exec(counters_table); !r) return r.err();
  schema_ready_ = true;
  auto st = db_.sql().prepare(
      "SELECT n.org, n.id, n.pattern, n.public_key, n.mailbox, n.arch, "
      "IFNULL(c.counter, 0), IFNULL(c.offline, 0) FROM nodes n "
      "LEFT JOIN heartbeat_counters c ON c.mailbox = n.mailbox "
      "WHERE n.pattern != '' AND n.mailbox != ''");
  if (!st) return st.err();
  const int64_t now = clock_.now_ms();
  for (;;) {
    auto row = st->step();
    if (!row) return row.err();
    if (!*row) break;
    entry e;
    e.node.org = st->column_text(0);
    e.node.id = st->column_text(1);
    e.node.pattern = st->column_text(2);
    e.node.public_key = st->column_blob(3);
    e.node.mailbox = st->column_text(4);
    e.node.arch = st->column_text(5);
    e.last_counter = static_cast<uint64_t>(st->column_int(6));
    e.last_offline = static_cast<uint64_t>(st->column_int(7));
    e.last_ms = now;
    entries_[e.node.mailbox] = std::move(e);
  }
  return core::ok();
}

heartbeat_tracker::entry* heartbeat_tracker::find(std::string_view mailbox) {
  std::string mb(mailbox);
  if (auto it = entries_.find(mb); it != entries_.end()) return &it->second;
  if (unknown_.count(mb)) return nullptr;
  if (!schema_ready_) {
    if (auto r = db_.sql().exec(counters_table); !r) return nullptr;
    schema_ready_ = true;
  }
  auto st = db_.sql().cached(
      "SELECT n.org, n.id, n.pattern, n.public_key, n.arch, IFNULL(c.counter, 0), "
      "IFNULL(c.offline, 0) FROM nodes n LEFT JOIN heartbeat_counters c ON c.mailbox = n.mailbox "
      "WHERE n.mailbox = ? AND n.pattern != '' LIMIT 1");
  if (!st) return nullptr;
  (*st)->bind(1, mb);
  auto row = (*st)->step();
  if (!row || !*row) {
    (*st)->reset();
    if (unknown_.size() >= opts_.max_unknown) unknown_.clear();
    unknown_.insert(mb);
    return nullptr;
  }
  entry e;
  e.node.org = (*st)->column_text(0);
  e.node.id = (*st)->column_text(1);
  e.node.pattern = (*st)->column_text(2);
  e.node.public_key = (*st)->column_blob(3);
  e.node.mailbox = mb;
  e.node.arch = (*st)->column_text(4);
  e.last_counter = static_cast<uint64_t>((*st)->column_int(5));
  e.last_offline = static_cast<uint64_t>((*st)->column_int(6));
  e.last_ms = clock_.now_ms();
  (*st)->reset();
  return &(entries_[mb] = std::move(e));
}

void heartbeat_tracker::forget(const std::string& mailbox) {
  entries_.erase(mailbox);
  unknown_.erase(mailbox);
}

std::optional<wire::opened_frame> heartbeat_tracker::open(entry& e,
                                                          std::span<const uint8_t> frame) {
  if (e.key.k.size() == 0) {
    if (e.node.public_key.size() != crypto::public_key_size) return std::nullopt;
    crypto::public_key pk{};
    std::copy(e.node.public_key.begin(), e.node.public_key.end(), pk.begin());
    e.key = crypto::precompute(pk, self_.sk);
  }
  auto f = wire::open_frame(frame, e.key);
  if (!f) {
    ++stats_.rejected_frame;
    lg()->debug("node {}/{}: heartbeat frame refused: {}", e.node.org, e.node.id,
                f.err().message());
    return std::nullopt;
  }
  return *f;
}

void heartbeat_tracker::on_heartbeat(std::string_view mailbox, std::span<const uint8_t> frame) {
  if (frame.size() > wire::max_heartbeat_frame_bytes) {
    ++stats_.rejected_frame;
    return;
  }
  entry* e = find(mailbox);
  if (!e) {
    ++stats_.unknown_node;
    return;
  }
  auto f = open(*e, frame);
  if (!f) return;
  if (f->kind != wire::frame_kind::heartbeat) {
    ++stats_.rejected_frame;
    return;
  }
  if (f->counter <= e->last_counter) {
    ++stats_.rejected_replay;
    lg()->debug("node {}/{}: heartbeat counter {} <= {}: replay refused", e->node.org, e->node.id,
                f->counter, e->last_counter);
    return;
  }
  ++stats_.accepted;
  e->heard = true;
  e->last_counter = f->counter;
  e->last_ms = clock_.now_ms();
  e->running = f->body.running_agreements;
  e->dirty = true;
  if (e->stale || e->offline) mark(*e, transition::online);
}

void heartbeat_tracker::on_presence(std::string_view mailbox, std::span<const uint8_t> frame) {
  if (frame.empty()) return;  // a retained message being cleared
  if (frame.size() > wire::max_heartbeat_frame_bytes) {
    ++stats_.rejected_frame;
    return;
  }
  entry* e = find(mailbox);
  if (!e) {
    ++stats_.unknown_node;
    return;
  }
  auto f = open(*e, frame);
  if (!f) return;
  if (f->kind == wire::frame_kind::heartbeat) {
    ++stats_.rejected_frame;
    return;
  }
  uint64_t& mark_counter = f->kind == wire::frame_kind::offline ? e->last_offline : e->last_counter;
  if (f->counter <= mark_counter) {
    // Also the normal case for a retained frame we already took before a restart.
    ++stats_.rejected_replay;
    return;
  }
  ++stats_.presence;
  mark_counter = f->counter;
  e->dirty = true;
  if (f->kind == wire::frame_kind::offline) {
    if (!e->stale && !e->offline) mark(*e, transition::offline);
  } else {
    e->heard = true;
    e->last_ms = clock_.now_ms();
    if (e->stale || e->offline) mark(*e, transition::online);
  }
}

void heartbeat_tracker::mark(entry& e, transition t) {
  const char* what = "online again";
  switch (t) {
    case transition::stale:
      e.stale = true;
      ++stats_.stale_events;
      what = "stale";
      break;
    case transition::offline:
      e.offline = true;
      ++stats_.offline_events;
      what = "offline (last will)";
      break;
    case transition::online:
      e.stale = e.offline = false;
      ++stats_.online_events;
      break;
  }
  lg()->info("node {}/{}: {}", e.node.org, e.node.id, what);
  pending_.emplace_back(e.node.mailbox, t);
}

int64_t heartbeat_tracker::threshold_ms(const std::string& pattern) {
  const int64_t now = clock_.now_ms();
  auto& t = thresholds_[pattern];
  if (t.read_ms != 0 && now - t.read_ms < opts_.pattern_ttl.count()) return t.ms;
  t.read_ms = now;
  t.ms = opts_.default_missing_s * 1000;
  auto q = split_qualified(pattern);
  if (!q) return t.ms;
  auto blob = db_.blob_get(table::patterns, q->org, q->name);
  if (!blob || !*blob) return t.ms;
  auto p = from_blob<fb::Pattern>(**blob);
  if (!p) return t.ms;
  int64_t best = 0;
  for (const auto& ps : p->services)
    if (ps && ps->node_health && ps->node_health->missing_heartbeat_interval > 0) {
      int64_t s = ps->node_health->missing_heartbeat_interval;
      best = best == 0 ? s : std::min(best, s);
    }
  if (best > 0) t.ms = best * 1000;
  return t.ms;
}

result<std::vector<addressed_event>> heartbeat_tracker::flush() {
  const int64_t now = clock_.now_ms();
  for (auto& [mb, e] : entries_) {
    if (e.stale) continue;
    if (now - e.last_ms > threshold_ms(e.node.pattern)) mark(e, transition::stale);
  }
  std::vector<entry*> dirty;
  for (auto& [mb, e] : entries_)
    if (e.dirty) dirty.push_back(&e);
  if (dirty.empty() && pending_.empty()) return std::vector<addressed_event>{};
  if (!schema_ready_) {
    if (auto r = db_.sql().exec(counters_table); !r) return r.err();
    schema_ready_ = true;
  }
  std::vector<addressed_event> events;
  auto r = db_.transaction([&]() -> result<void> {
    auto hb = db_.sql().cached("UPDATE nodes SET last_heartbeat_ms = ? WHERE mailbox = ?");
    if (!hb) return hb.err();
    for (entry* e : dirty) {
      (*hb)->bind(1, e->last_ms).bind(2, e->node.mailbox);
      if (auto x = (*hb)->exec(); !x) return x.err();
      (*hb)->reset();
    }
    auto ctr = db_.sql().cached(
        "INSERT INTO heartbeat_counters (mailbox, counter, offline) VALUES (?, ?, ?) "
        "ON CONFLICT(mailbox) DO UPDATE SET counter = excluded.counter, offline = "
        "excluded.offline");
    if (!ctr) return ctr.err();
    for (entry* e : dirty) {
      (*ctr)
          ->bind(1, e->node.mailbox)
          .bind(2, static_cast<int64_t>(e->last_counter))
          .bind(3, static_cast<int64_t>(e->last_offline));
      if (auto x = (*ctr)->exec(); !x) return x.err();
      (*ctr)->reset();
    }
    for (const auto& [mb, t] : pending_) {
      auto it = entries_.find(mb);
      if (it == entries_.end()) continue;
      const auto kind = t == transition::stale     ? fb::EventKind::node_stale
                        : t == transition::offline ? fb::EventKind::node_offline
                                                   : fb::EventKind::node_online;
      auto evs = address_node_event(db_, kind, it->second.node, it->second.node.pattern);
      if (!evs) return evs.err();
      for (auto& ev : *evs) events.push_back(std::move(ev));
    }
    return core::ok();
  });
  ++stats_.transactions;
  if (!r) {
    lg()->error("heartbeat flush of {} rows failed: {}", dirty.size(), r.err().message());
    return r.err();  // rows stay dirty, events stay pending: the next flush retries
  }
  stats_.rows_written += dirty.size();
  for (entry* e : dirty) e->dirty = false;
  pending_.clear();
  return events;
}

std::optional<heartbeat_tracker::node_view> heartbeat_tracker::node(std::string_view org,
                                                                    std::string_view id) const {
  for (const auto& [mb, e] : entries_)
    if (e.node.org == org && e.node.id == id)
      return node_view{e.heard ? e.last_ms : 0, !e.stale && !e.offline, e.running};
  return std::nullopt;
}

}  // namespace hmq::exchange
