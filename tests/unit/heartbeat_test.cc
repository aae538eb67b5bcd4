// Heartbeat frames, the agent's counter reservation and the exchange's heartbeat tracker.
#include "agent/heartbeat.h"

#include <gtest/gtest.h>

#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "core/wire/heartbeat.h"
#include "exchange/db.h"
#include "exchange/heartbeat.h"

namespace {

using namespace hmq;
namespace crypto = core::crypto;
namespace wire = core::wire;
namespace fb = ::hmq::wire::fb;

struct pair_keys {
  crypto::box_keypair node = crypto::box_keypair::generate();
  crypto::box_keypair exchange = crypto::box_keypair::generate();
  crypto::shared_key node_side() const { return crypto::precompute(exchange.pk, node.sk); }
  crypto::shared_key exchange_side() const { return crypto::precompute(node.pk, exchange.sk); }
};

TEST(heartbeat_frame, fits_the_64_byte_budget_and_round_trips) {
  pair_keys k;
  auto f = wire::seal_frame(wire::frame_kind::heartbeat, 42, {3, 0xdeadbeef}, k.node_side());
  EXPECT_LE(f.size(), wire::max_heartbeat_frame_bytes);
  EXPECT_EQ(f.size(), 31u);  // 1 kind + 8 counter + 16 MAC + 6 body
  auto o = wire::open_frame(f, k.exchange_side());
  ASSERT_TRUE(o) << o.err().message();
  EXPECT_EQ(o->kind, wire::frame_kind::heartbeat);
  EXPECT_EQ(o->counter, 42u);
  EXPECT_EQ(o->body.running_agreements, 3);
  EXPECT_EQ(o->body.status_digest, 0xdeadbeefu);
}

TEST(heartbeat_frame, rejects_flipped_bit_anywhere) {
  pair_keys k;
  auto f = wire::seal_frame(wire::frame_kind::heartbeat, 7, {1, 2}, k.node_side());
  auto x = k.exchange_side();
  for (size_t i = 0; i < f.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto g = f;
      g[i] ^= static_cast<uint8_t>(1u << bit);
      EXPECT_FALSE(wire::open_frame(g, x)) << "byte " << i << " bit " << bit;
    }
  }
}

TEST(heartbeat_frame, rejects_another_nodes_key_and_oversized_frames) {
  pair_keys k, other;
  auto f = wire::seal_frame(wire::frame_kind::online, 1, {}, other.node_side());
  EXPECT_FALSE(wire::open_frame(f, k.exchange_side()));
  std::vector<uint8_t> big(65, 1);
  EXPECT_EQ(wire::open_frame(big, k.exchange_side()).code(),
            wire::make_error_code(wire::errc::too_large));
}

TEST(heartbeat_counter, restart_never_reuses_a_counter) {
  auto db = core::store::database::open_memory();
  ASSERT_TRUE(db);
  uint64_t last = 0;
  {
    agent::counter_reservation r(*db, 10);
    for (int i = 0; i < 15; ++i) {
      auto c = r.next();
      ASSERT_TRUE(c);
      EXPECT_GT(*c, last);
      last = *c;
    }
  }
  // A "restart" (new reservation object on the same store) after a crash at any point.
  agent::counter_reservation r2(*db, 10);
  auto c = r2.next();
  ASSERT_TRUE(c);
  EXPECT_GT(*c, last);
}

// fleetsim's counters: in memory, never 0 (receivers start at "last seen = 0"), and a sender
// restarted on the same source continues after the last counter it handed out.
TEST(heartbeat_counter, memory_counter_never_hands_out_zero_or_a_value_twice) {
  agent::memory_counter zero(0);
  auto first = zero.next();
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, 1u);
  agent::memory_counter c(1'000'000);
  agent::counter_source& src = c;
  uint64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    auto n = src.next();
    ASSERT_TRUE(n);
    EXPECT_GT(*n, last);
    last = *n;
  }
  EXPECT_EQ(last, 1'000'004u);
}

// A store with org acme, pattern acme/p (missing_heartbeat_interval 30 s), an agbot serving
// it and `nodes` registered nodes.
struct tracker_env {
  core::loop::manual_clock clock;
  crypto::box_keypair exchange = crypto::box_keypair::generate();
  crypto::box_keypair agbot = crypto::box_keypair::generate();
  std::vector<crypto::box_keypair> nodes;
  std::optional<exchange::db> d;

  explicit tracker_env(size_t n) {
    auto db = exchange::db::open_memory();
    EXPECT_TRUE(db);
    d.emplace(std::move(*db));
    fb::OrgT o;
    o.name = "acme";
    EXPECT_TRUE(d->org_insert(o));
    fb::PatternT p;
    p.org = "acme";
    p.name = "p";
    auto ps = std::make_unique<fb::PatternServiceT>();
    ps->service_org = "acme";
    ps->service_url = "https://acme.example/s";
    ps->node_health = std::make_unique<fb::NodeHealthT>();
    ps->node_health->missing_heartbeat_interval = 30;
    p.services.push_back(std::move(ps));
    EXPECT_TRUE(d->pattern_put(p, true));
    fb::AgbotT a;
    a.org = "acme";
    a.id = "bot";
    a.public_key.assign(agbot.pk.begin(), agbot.pk.end());
    a.mailbox = crypto::mailbox_id(agbot.pk);
    EXPECT_TRUE(d->agbot_insert(a, "hash"));
    fb::AgbotPatternT ap;
    ap.pattern_org = "acme";
    ap.pattern = "p";
    ap.node_org = "acme";
    EXPECT_TRUE(d->agbot_add_pattern("acme", "bot", ap));
    for (size_t i = 0; i < n; ++i) {
      nodes.push_back(crypto::box_keypair::generate());
      fb::NodeT nd;
      nd.org = "acme";
      nd.id = "n" + std::to_string(i);
      nd.pattern = "acme/p";
      nd.arch = "amd64";
      nd.public_key.assign(nodes.back().pk.begin(), nodes.back().pk.end());
      nd.mailbox = crypto::mailbox_id(nodes.back().pk);
      EXPECT_TRUE(d->node_insert(nd, "hash"));
    }
  }
  std::string mailbox(size_t i) const { return crypto::mailbox_id(nodes[i].pk); }
  std::vector<uint8_t> frame(size_t i, uint64_t counter,
                             wire::frame_kind kind = wire::frame_kind::heartbeat) const {
    return wire::seal_frame(kind, counter, {1, 0}, crypto::precompute(exchange.pk, nodes[i].sk));
  }
  int64_t stored_heartbeat(size_t i) {
    auto st = d->sql().prepare("SELECT last_heartbeat_ms FROM nodes WHERE id = ?");
    st->bind(1, "n" + std::to_string(i));
    EXPECT_TRUE(*st->step());
    return st->column_int(0);
  }
};

TEST(heartbeat_tracker, many_heartbeats_are_written_in_one_transaction) {
  tracker_env env(200);
  exchange::heartbeat_tracker t(*env.d, env.exchange, env.clock);
  ASSERT_TRUE(t.load());
  env.clock.advance(std::chrono::seconds(1));
  for (size_t i = 0; i < env.nodes.size(); ++i) t.on_heartbeat(env.mailbox(i), env.frame(i, 1));
  EXPECT_EQ(t.stats().accepted, 200u);
  auto evs = t.flush();
  ASSERT_TRUE(evs) << evs.err().message();
  EXPECT_TRUE(evs->empty());
  EXPECT_EQ(t.stats().transactions, 1u);
  EXPECT_EQ(t.stats().rows_written, 200u);
  EXPECT_EQ(env.stored_heartbeat(0), env.clock.now_ms());
  EXPECT_EQ(env.stored_heartbeat(199), env.clock.now_ms());
  // Nothing new: no transaction at all.
  ASSERT_TRUE(t.flush());
  EXPECT_EQ(t.stats().transactions, 1u);
}

TEST(heartbeat_tracker, replayed_heartbeat_is_rejected_also_after_a_restart) {
  tracker_env env(1);
  auto f5 = env.frame(0, 5);
  {
    exchange::heartbeat_tracker t(*env.d, env.exchange, env.clock);
    t.on_heartbeat(env.mailbox(0), f5);
    t.on_heartbeat(env.mailbox(0), f5);
    t.on_heartbeat(env.mailbox(0), env.frame(0, 4));
    EXPECT_EQ(t.stats().accepted, 1u);
    EXPECT_EQ(t.stats().rejected_replay, 2u);
    ASSERT_TRUE(t.flush());
  }
  exchange::heartbeat_tracker t2(*env.d, env.exchange, env.clock);
  ASSERT_TRUE(t2.load());
  t2.on_heartbeat(env.mailbox(0), f5);
  EXPECT_EQ(t2.stats().rejected_replay, 1u);
  t2.on_heartbeat(env.mailbox(0), env.frame(0, 6));
  EXPECT_EQ(t2.stats().accepted, 1u);
}

TEST(heartbeat_tracker, unknown_mailbox_and_forged_frames_are_counted_not_taken) {
  tracker_env env(1);
  exchange::heartbeat_tracker t(*env.d, env.exchange, env.clock);
  t.on_heartbeat("nosuchmailbox000", env.frame(0, 1));
  EXPECT_EQ(t.stats().unknown_node, 1u);
  auto f = env.frame(0, 1);
  f.back() ^= 1;
  t.on_heartbeat(env.mailbox(0), f);
  EXPECT_EQ(t.stats().rejected_frame, 1u);
  EXPECT_EQ(t.stats().accepted, 0u);
}

TEST(heartbeat_tracker, silent_node_goes_stale_after_its_patterns_interval_and_online_again) {
  tracker_env env(2);
  exchange::heartbeat_tracker t(*env.d, env.exchange, env.clock);
  ASSERT_TRUE(t.load());
  env.clock.advance(std::chrono::seconds(29));
  t.on_heartbeat(env.mailbox(1), env.frame(1, 1));  // node 1 keeps heartbeating
  auto evs = t.flush();
  ASSERT_TRUE(evs);
  EXPECT_TRUE(evs->empty());
  env.clock.advance(std::chrono::seconds(2));  // node 0: 31 s of silence > 30 s
  evs = t.flush();
  ASSERT_TRUE(evs);
  ASSERT_EQ(evs->size(), 1u);  // one agbot serves the pattern
  EXPECT_EQ((*evs)[0].event.kind, fb::EventKind::node_stale);
  EXPECT_EQ((*evs)[0].event.id, "n0");
  EXPECT_EQ((*evs)[0].event.pattern, "acme/p");
  EXPECT_EQ((*evs)[0].mailbox, crypto::mailbox_id(env.agbot.pk));
  // Stale once, not every flush.
  env.clock.advance(std::chrono::seconds(5));
  evs = t.flush();
  ASSERT_TRUE(evs);
  EXPECT_TRUE(evs->empty());
  t.on_heartbeat(env.mailbox(0), env.frame(0, 1));
  evs = t.flush();
  ASSERT_TRUE(evs);
  ASSERT_EQ(evs->size(), 1u);
  EXPECT_EQ((*evs)[0].event.kind, fb::EventKind::node_online);
  EXPECT_EQ(t.stats().stale_events, 1u);
  EXPECT_EQ(t.stats().online_events, 1u);
}

TEST(heartbeat_tracker, offline_will_is_announced_at_once_and_taken_once) {
  tracker_env env(1);
  exchange::heartbeat_tracker t(*env.d, env.exchange, env.clock);
  ASSERT_TRUE(t.load());
  auto offline = env.frame(0, 3, wire::frame_kind::offline);
  t.on_presence(env.mailbox(0), offline);
  auto evs = t.flush();
  ASSERT_TRUE(evs);
  ASSERT_EQ(evs->size(), 1u);
  EXPECT_EQ((*evs)[0].event.kind, fb::EventKind::node_offline);
  EXPECT_EQ(t.stats().stale_events, 0u) << "offline alone must not cost the node its agreements";
  t.on_presence(env.mailbox(0), env.frame(0, 4, wire::frame_kind::online));
  // The same will again (a replay) does not mark it offline a second time.
  t.on_presence(env.mailbox(0), offline);
  evs = t.flush();
  ASSERT_TRUE(evs);
  ASSERT_EQ(evs->size(), 1u);
  EXPECT_EQ((*evs)[0].event.kind, fb::EventKind::node_online);
  EXPECT_EQ(t.stats().rejected_replay, 1u);
}

}  // namespace
