// Message and transport defences against the real system (docs/security.md, issue 7): the TLS
// listener, a replayed proposal, a proposal from an agbot that does not serve the node's pattern
// and a flood of garbage to the mailboxes. Real mosquitto, hmq-exchange, hmq-agbot and hmq-agent
// (memory runtime) processes; the attacker is a raw bus client on the (anonymous) test broker.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <future>
#include <iostream>
#include <memory>
#include <random>

#include "core/bus/client.h"
#include "core/bus/credentials.h"
#include "core/bus/messenger.h"
#include "core/bus/topics.h"
#include "core/control/control.h"
#include "core/crypto/crypto.h"
#include "core/wire/codec.h"
#include "tests/support/fleet.h"
#include "tests/support/loop_thread.h"
#include "tests/support/mosquitto.h"
#include "tests/support/temp_dir.h"

namespace hmq::test {
namespace {

namespace bus = core::bus;
namespace fb = core::wire::fb;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

// ---- a raw bus client on a loop thread (the observer / attacker)

struct raw_client {
  loop_thread& lt;
  std::unique_ptr<bus::client> c;

  raw_client(loop_thread& l, bus::options o) : lt(l) {
    lt.call([&] { c = std::make_unique<bus::client>(lt.loop(), std::move(o)); });
  }
  ~raw_client() {
    lt.call([&] {
      c->stop();
      c.reset();
    });
  }
  // Starts and returns the outcome of the first connect (an error after 30 s without one).
  core::result<void> start() {
    auto p = std::make_shared<std::promise<core::result<void>>>();
    auto f = p->get_future();
    lt.call([&] { c->start([p](core::result<void> r) { p->set_value(std::move(r)); }); });
    if (f.wait_for(30s) != std::future_status::ready)
      return core::error{bus::make_error_code(bus::errc::timeout), "no first-connect outcome"};
    return f.get();
  }
  bool subscribe(const std::string& filter, bus::handler h) {
    auto p = std::make_shared<std::promise<bool>>();
    auto f = p->get_future();
    lt.call([&] {
      c->subscribe(filter, 1, std::move(h), [p](core::result<void> r) { p->set_value(r.ok()); });
    });
    return f.wait_for(30s) == std::future_status::ready && f.get();
  }
  // Publishes every payload at QoS 1, at most `window` unacknowledged at a time; returns how many
  // the broker acknowledged.
  size_t publish_all(const std::string& topic, const std::vector<std::vector<uint8_t>>& payloads,
                     size_t window = 500) {
    size_t acked = 0;
    for (size_t start = 0; start < payloads.size(); start += window) {
      const size_t n = std::min(window, payloads.size() - start);
      waiter w;
      size_t done = 0, ok = 0;
      lt.call([&] {
        for (size_t i = start; i < start + n; ++i)
          c->publish(topic, payloads[i], {}, [&](core::result<void> r) {
            w.update([&] {
              ++done;
              if (r) ++ok;
            });
          });
      });
      if (!w.wait([&] { return done == n; }, 60s)) return acked;
      acked += w.read([&] { return ok; });
    }
    return acked;
  }
};

bus::options plain_options(const std::string& uri, const std::string& id) {
  bus::options o;
  o.broker_uri = uri;
  o.client_id = id;
  o.clean_start = true;
  o.connect_timeout = 5s;
  return o;
}

json control(const fs::path& socket, const json& req) {
  auto r = core::control::call(socket, req, 10s);
  return r ? *r : json{{"ok", false}, {"error", r.err().message()}};
}

uint64_t sum_of(const json& counters) {
  uint64_t s = 0;
  for (const auto& [k, v] : counters.items()) s += v.get<uint64_t>();
  return s;
}

core::crypto::public_key parse_key(const std::string& b64) {
  auto k = core::crypto::parse_public_key(b64);
  EXPECT_TRUE(k.ok()) << b64;
  return k ? *k : core::crypto::public_key{};
}

// ---- 1. TLS listener

struct tls_broker {
  temp_dir certs{"hmq-certs"};
  temp_dir other_ca{"hmq-certs-other"};
  int tls_port = free_port();
  std::optional<mosquitto_broker> broker;

  tls_broker() {
    for (const auto& d : {certs.path(), other_ca.path()}) {
      auto r = run_command({std::string(HMQ_SOURCE_DIR) + "/broker-config/make-certs.sh",
                            d.string(), "localhost", "127.0.0.1"},
                           {}, d);
      EXPECT_EQ(r.exit, 0) << r.out << r.err;
    }
    // The secure config's TLS listener (broker-config/mosquitto-secure.conf) on a free port.
    broker_options bo;
    bo.extra_config = {"listener " + std::to_string(tls_port) + " 127.0.0.1",
                       "cafile " + (certs.path() / "ca.crt").string(),
                       "certfile " + (certs.path() / "server.crt").string(),
                       "keyfile " + (certs.path() / "server.key").string(), "tls_version tlsv1.2"};
    broker.emplace(bo);
  }
  std::string tls_uri() const { return "mqtts://127.0.0.1:" + std::to_string(tls_port); }
};

// One sealed identity over TLS: client, codec and messenger.
struct tls_party {
  loop_thread& lt;
  core::crypto::box_keypair keys = core::crypto::box_keypair::generate();
  std::unique_ptr<bus::client> c;
  std::unique_ptr<core::wire::codec> codec;
  std::unique_ptr<bus::messenger> m;

  tls_party(loop_thread& l, bus::options o) : lt(l) {
    lt.call([&] {
      c = std::make_unique<bus::client>(lt.loop(), std::move(o));
      codec = std::make_unique<core::wire::codec>(keys, lt.loop().time());
      m = std::make_unique<bus::messenger>(lt.loop(), *c, *codec);
    });
  }
  ~tls_party() {
    lt.call([&] {
      m->stop();
      c->stop();
      m.reset();
      c.reset();
    });
  }
  core::result<void> start() {
    auto p = std::make_shared<std::promise<core::result<void>>>();
    auto f = p->get_future();
    lt.call([&] {
      m->start();
      c->start([p](core::result<void> r) { p->set_value(std::move(r)); });
    });
    if (f.wait_for(30s) != std::future_status::ready)
      return core::error{bus::make_error_code(bus::errc::timeout), "no first-connect outcome"};
    return f.get();
  }
};

bus::options tls_options(const tls_broker& b, const std::string& id, const fs::path& ca) {
  auto o = plain_options(b.tls_uri(), id);
  bus::credentials_flags cf;
  cf.ca_file = ca;
  auto r = bus::apply_credentials(o, cf);
  EXPECT_TRUE(r.ok()) << r.err().message();
  return o;
}

TEST(security_tls,
     mqtts_client_with_the_ca_does_request_response_and_plain_or_wrong_ca_clients_are_refused) {
  tls_broker b;
  loop_thread lt;

  // Plain MQTT to the TLS port: the TLS handshake never happens, the connect fails.
  {
    raw_client plain(lt, plain_options("tcp://127.0.0.1:" + std::to_string(b.tls_port), "plain-1"));
    auto r = plain.start();
    EXPECT_FALSE(r.ok()) << "plain TCP client connected to the TLS listener";
  }
  // A CA file with a plain URI is refused before any byte goes out.
  {
    auto o = plain_options("tcp://127.0.0.1:" + std::to_string(b.tls_port), "plain-2");
    bus::credentials_flags cf;
    cf.ca_file = b.certs.path() / "ca.crt";
    EXPECT_FALSE(bus::apply_credentials(o, cf).ok());
  }
  // TLS with a CA that did not sign the broker's certificate: refused.
  {
    raw_client wrong(lt, tls_options(b, "wrong-ca", b.other_ca.path() / "ca.crt"));
    auto r = wrong.start();
    EXPECT_FALSE(r.ok()) << "client trusting another CA connected";
  }
  // TLS with the right CA: a sealed request/response round trip.
  tls_party server(lt, tls_options(b, "tls-server", b.certs.path() / "ca.crt"));
  tls_party caller(lt, tls_options(b, "tls-caller", b.certs.path() / "ca.crt"));
  lt.call([&] {
    server.m->on(fb::Body::RpcRequest, [&](const core::wire::opened& req) {
      server.m->respond(req, fb::Body::RpcResponse, [](flatbuffers::FlatBufferBuilder& fbb) {
        return fb::CreateRpcResponse(fbb, fb::RpcStatus::ok).Union();
      });
    });
  });
  auto sr = server.start();
  ASSERT_TRUE(sr.ok()) << sr.err().message() << "\n" << b.broker->log();
  auto cr = caller.start();
  ASSERT_TRUE(cr.ok()) << cr.err().message() << "\n" << b.broker->log();
  // The server's mailbox subscription is made on connect; a request sent before the broker holds
  // it would be lost (no session yet): retry until answered, bounded.
  std::optional<core::result<core::wire::opened>> got;
  for (int attempt = 0; attempt < 10 && !(got && got->ok()); ++attempt) {
    waiter w;
    std::optional<core::result<core::wire::opened>> r;
    lt.call([&] {
      caller.m->request(
          server.keys.pk, {}, {}, fb::Body::RpcRequest,
          [](flatbuffers::FlatBufferBuilder& fbb) { return fb::CreateRpcRequest(fbb).Union(); }, 2s,
          [&](core::result<core::wire::opened> x) { w.update([&] { r.emplace(std::move(x)); }); });
    });
    ASSERT_TRUE(w.wait([&] { return r.has_value(); }, 30s));
    got = std::move(r);
  }
  ASSERT_TRUE(got && got->ok()) << (got ? got->err().message() : "none") << "\n" << b.broker->log();
  EXPECT_TRUE(core::crypto::equal(got->value().sender, server.keys.pk));
  EXPECT_EQ(got->value().message()->body_as_RpcResponse()->status(), fb::RpcStatus::ok);
}

// ---- 2. replayed proposal

// Envelopes captured on a topic.
struct capture {
  waiter w;
  std::vector<std::vector<uint8_t>> seen;
  bus::handler handler() {
    return [this](const bus::inbound& in) { w.update([&] { seen.push_back(in.payload); }); };
  }
};

TEST(security_replay, a_captured_proposal_replayed_later_is_rejected_and_leaves_one_agreement) {
  fleet_options o;
  o.agents = 1;
  fleet f(o);
  json st = f.agent_call(0, {{"op", "node_status"}});
  ASSERT_TRUE(st.value("ok", false)) << st.dump();
  const std::string mb_topic = bus::topics{}.mailbox(st["mailbox"].get<std::string>());
  const auto exchange_key = parse_key(f.exchange_key());

  loop_thread lt;
  raw_client eve(lt, plain_options(f.broker().uri(), "observer-replay"));
  ASSERT_TRUE(eve.start().ok());
  capture cap;
  ASSERT_TRUE(eve.subscribe(mb_topic, cap.handler()));

  ASSERT_EQ(f.register_node(0).exit, 0);
  const std::string id = f.wait_finalized_everywhere(0);
  ASSERT_FALSE(id.empty()) << f.logs();

  // The first envelope to the node from a key other than the exchange's is the agbot's Proposal.
  std::vector<uint8_t> proposal;
  std::string agbot_key;
  cap.w.read([&] {
    for (const auto& e : cap.seen) {
      auto sender = core::wire::codec::peek_sender(e, 256 * 1024);
      if (sender && !core::crypto::equal(*sender, exchange_key)) {
        proposal = e;
        agbot_key = core::crypto::to_base64(*sender);
        break;
      }
    }
    return 0;
  });
  ASSERT_FALSE(proposal.empty()) << "no agbot envelope captured";

  auto status = [&] { return f.agent_call(0, {{"op", "node_status"}}); };
  auto wire_rejects = [&](const json& s) {
    return s["wire"]["rejected"].value("duplicate", 0ull) +
           s["wire"]["rejected"].value("too_old", 0ull) +
           s["wire"]["rejected"].value("too_new", 0ull);
  };
  json before = status();
  ASSERT_TRUE(before.contains("wire")) << before.dump();

  // Replay to the running agent: its envelope memory rejects it.
  ASSERT_EQ(eve.publish_all(mb_topic, {proposal}), 1u);
  json after;
  EXPECT_TRUE(eventually([&] {
    after = status();
    return wire_rejects(after) > wire_rejects(before);
  })) << after.dump()
      << f.logs();
  EXPECT_EQ(after["counters"].value("proposals", 0), before["counters"].value("proposals", 0))
      << after.dump();

  // Replay after a restart (envelope memory gone, still inside the skew window): the engine
  // knows the agreement id and counts a duplicate; it does not form a second agreement.
  f.kill_agent(0);
  f.start_agent(0);
  ASSERT_TRUE(eventually([&] { return status().value("broker_connected", false); })) << f.logs();
  before = status();
  ASSERT_EQ(eve.publish_all(mb_topic, {proposal}), 1u);
  EXPECT_TRUE(eventually([&] {
    after = status();
    return wire_rejects(after) > wire_rejects(before) ||
           after["counters"].value("duplicates", 0) > before["counters"].value("duplicates", 0);
  })) << after.dump()
      << f.logs();
  std::cout << "replay after restart: counters " << after["counters"].dump() << " wire "
            << after["wire"].dump() << "\n";

  json live = json::array();
  for (const auto& a : f.agent_agreements(0))
    if (a.value("state", "") != "cancelled") live.push_back(a);
  ASSERT_EQ(live.size(), 1u) << live.dump();
  EXPECT_EQ(live[0].value("id", ""), id) << live.dump();
  EXPECT_EQ(f.agbot_agreements_of(0).size(), 1u);
}

// The exchange's events to a restarted agbot (issue 16): the codec's replay memory is gone, the
// agbot's event window (agbot.db) is not. The harmful replay: the node left and came back, and
// the old "node unregistered" event would make the agbot drop the node's new agreement.
TEST(security_replay, an_exchange_event_replayed_to_a_restarted_agbot_is_dropped_and_counted) {
  fleet_options o;
  o.agents = 1;
  fleet f(o);
  auto agbot_keys = core::crypto::load_or_create_box_keypair(f.dir() / "agbot" / "agbot.key");
  ASSERT_TRUE(agbot_keys.ok());
  const std::string mb_topic = bus::topics{}.mailbox(core::crypto::mailbox_id(agbot_keys->pk));
  const auto exchange_key = parse_key(f.exchange_key());

  loop_thread lt;
  raw_client eve(lt, plain_options(f.broker().uri(), "observer-events"));
  ASSERT_TRUE(eve.start().ok());
  capture cap;
  ASSERT_TRUE(eve.subscribe(mb_topic, cap.handler()));

  ASSERT_EQ(f.register_node(0).exit, 0);
  ASSERT_FALSE(f.wait_finalized_everywhere(0).empty()) << f.logs();
  const size_t mark = cap.w.read([&] { return cap.seen.size(); });
  auto u = f.unregister_node(0);
  ASSERT_EQ(u.exit, 0) << u.out << u.err;
  ASSERT_TRUE(eventually([&] { return f.agbot_agreements_of(0).empty(); })) << f.logs();
  // What the exchange sent the agbot since: the unregistration event (and answers to its
  // requests, which a replay cannot route anywhere).
  std::vector<std::vector<uint8_t>> from_exchange;
  cap.w.read([&] {
    for (size_t i = mark; i < cap.seen.size(); ++i) {
      auto sender = core::wire::codec::peek_sender(cap.seen[i], 256 * 1024);
      if (sender && core::crypto::equal(*sender, exchange_key))
        from_exchange.push_back(cap.seen[i]);
    }
    return 0;
  });
  ASSERT_FALSE(from_exchange.empty()) << "no event to the agbot captured";

  ASSERT_EQ(f.register_node(0).exit, 0);
  const std::string id = f.wait_finalized_everywhere(0);
  ASSERT_FALSE(id.empty()) << f.logs();
  f.kill_agbot();
  f.start_agbot();
  auto stats = [&] { return f.agbot_call({{"op", "stats"}}); };
  ASSERT_TRUE(eventually([&] { return stats().value("accepted", 0) >= 1; })) << f.logs();
  const json before = stats();

  ASSERT_EQ(eve.publish_all(mb_topic, from_exchange), from_exchange.size());
  json after;
  EXPECT_TRUE(eventually([&] {
    after = stats();
    return after.value("events_replayed", 0) > before.value("events_replayed", 0);
  })) << after.dump()
      << f.logs();
  std::cout << "event replay to a restarted agbot: " << after.dump() << "\n";
  // The victim keeps working: the agreement is live on both sides.
  auto live = f.agbot_agreements_of(0);
  ASSERT_EQ(live.size(), 1u) << live.dump() << f.logs();
  EXPECT_EQ(live[0].value("id", ""), id);
  EXPECT_EQ(f.wait_finalized_everywhere(0), id);
}

// ---- 3. proposal from an agbot that does not serve the node's pattern

TEST(security_foreign_agbot,
     a_sealed_proposal_from_an_agbot_not_serving_the_pattern_is_dropped_and_counted) {
  fleet_options o;
  o.agents = 1;
  o.start_agbot = false;
  fleet f(o);
  // A second, real agbot identity in the exchange that serves nothing: its process says hello
  // (the exchange records its key) and is then the attacker's key.
  auto c = f.admin({"agbot", "create", "rogue:roguetok"});
  ASSERT_EQ(c.exit, 0) << c.out << c.err;
  const fs::path rogue_dir = f.dir() / "rogue";
  fs::create_directories(rogue_dir);
  const fs::path rogue_sock = rogue_dir / "rogue.sock";
  process rogue =
      process::start({{agbot_binary(), "--broker", f.broker().uri(), "--exchange-key",
                       f.exchange_key(), "--org", f.options().org, "--id", "rogue", "--data-dir",
                       rogue_dir.string(), "--control-socket", rogue_sock.string()},
                      {{"HMQ_AGBOT_TOKEN", "roguetok"}},
                      rogue_dir / "rogue.log"});
  // The hello was answered once the rogue's codec opened a message (the exchange's response).
  ASSERT_TRUE(eventually([&] {
    return control(rogue_sock, {{"op", "stats"}}).value("accepted", 0) >= 1;
  })) << read_file(rogue_dir / "rogue.log");
  auto rogue_keys = core::crypto::load_or_create_box_keypair(rogue_dir / "agbot.key");
  ASSERT_TRUE(rogue_keys.ok());

  ASSERT_EQ(f.register_node(0).exit, 0);
  json st = f.agent_call(0, {{"op", "node_status"}});
  ASSERT_TRUE(st.value("ok", false)) << st.dump();
  const auto node_key = parse_key(st["public_key"]);
  const std::string mb_topic = bus::topics{}.mailbox(st["mailbox"].get<std::string>());

  loop_thread lt;
  core::wire::codec codec(*rogue_keys, lt.loop().time());
  fb::ProposalT p;
  p.agreement_id = "0123456789abcdef0123456789abcdef";
  p.pattern = f.options().org + "/" + f.options().pattern;
  p.node_org = f.options().org;
  p.node_id = f.node(0);
  p.arch = "amd64";
  p.agbot = f.options().org + "/rogue";
  auto msg = lt.call([&] {
    return core::wire::build_message(
        {}, lt.loop().time(), fb::Body::Proposal,
        [&](flatbuffers::FlatBufferBuilder& b) { return fb::CreateProposal(b, &p).Union(); });
  });
  const auto envelope = codec.seal(msg, node_key);

  raw_client eve(lt, plain_options(f.broker().uri(), "attacker-rogue"));
  ASSERT_TRUE(eve.start().ok());
  ASSERT_EQ(eve.publish_all(mb_topic, {envelope}), 1u);
  json after;
  EXPECT_TRUE(eventually([&] {
    after = f.agent_call(0, {{"op", "node_status"}});
    return after["counters"].value("dropped_bad_agbot", 0) >= 1;
  })) << after.dump()
      << f.logs();
  EXPECT_EQ(after["counters"].value("accepted", -1), 0) << after.dump();
  EXPECT_EQ(after.value("live_agreements", -1), 0) << after.dump();
  EXPECT_TRUE(f.agent_agreements(0).empty()) << f.agent_agreements(0).dump();
  EXPECT_TRUE(f.exchange_agreements(0).empty());
  std::cout << "foreign agbot: counters " << after["counters"].dump() << "\n";

  // The node itself is fine: the agbot that serves its pattern forms an agreement.
  f.start_agbot();
  EXPECT_FALSE(f.wait_finalized_everywhere(0).empty()) << f.logs();
  rogue.kill(SIGKILL);
  rogue.wait_for(10s);
}

// ---- 4. flood of garbage

// `n` payloads: half random bytes (1..400 long), half well-formed envelopes sealed to
// `recipient` by a throw-away key with one ciphertext bit flipped (MAC fails).
std::vector<std::vector<uint8_t>> garbage(size_t n, const core::crypto::public_key& recipient,
                                          loop_thread& lt) {
  std::mt19937_64 rng(std::random_device{}());
  auto forger = core::crypto::box_keypair::generate();
  core::wire::codec codec(forger, lt.loop().time());
  std::vector<std::vector<uint8_t>> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (i % 2 == 0) {
      std::vector<uint8_t> b(1 + rng() % 400);
      for (auto& x : b) x = static_cast<uint8_t>(rng());
      out.push_back(std::move(b));
      continue;
    }
    auto msg = lt.call([&] {
      return core::wire::build_message(
          {}, lt.loop().time(), fb::Body::Cancel, [](flatbuffers::FlatBufferBuilder& b) {
            return fb::CreateCancel(b, b.CreateString("0123456789abcdef0123456789abcdef")).Union();
          });
    });
    auto env = codec.seal(msg, recipient);
    auto* ct = const_cast<flatbuffers::Vector<uint8_t>*>(fb::GetEnvelope(env.data())->ciphertext());
    const auto at = static_cast<flatbuffers::uoffset_t>(rng() % ct->size());
    ct->Mutate(at, static_cast<uint8_t>(ct->Get(at) ^ 0x01));
    out.push_back(std::move(env));
  }
  return out;
}

TEST(security_flood,
     ten_thousand_garbage_messages_per_mailbox_are_counted_and_agreements_still_form) {
  fleet_options o;
  o.agents = 2;
  fleet f(o);
  json st = f.agent_call(0, {{"op", "node_status"}});
  ASSERT_TRUE(st.value("ok", false)) << st.dump();
  const auto node_key = parse_key(st["public_key"]);
  const std::string node_topic = bus::topics{}.mailbox(st["mailbox"].get<std::string>());
  auto agbot_keys = core::crypto::load_or_create_box_keypair(f.dir() / "agbot" / "agbot.key");
  ASSERT_TRUE(agbot_keys.ok());
  const std::string agbot_topic = bus::topics{}.mailbox(core::crypto::mailbox_id(agbot_keys->pk));

  constexpr size_t n = 10'000;
  loop_thread lt;
  auto to_node = garbage(n, node_key, lt);
  auto to_agbot = garbage(n, agbot_keys->pk, lt);
  raw_client eve(lt, plain_options(f.broker().uri(), "attacker-flood"));
  ASSERT_TRUE(eve.start().ok());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(eve.publish_all(node_topic, to_node), n);
  EXPECT_EQ(eve.publish_all(agbot_topic, to_agbot), n);
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Every message reaches its target and is counted as a reject by reason.
  json node_wire, agbot_stats;
  EXPECT_TRUE(eventually(
      [&] {
        node_wire = f.agent_call(0, {{"op", "node_status"}})["wire"];
        return node_wire.is_object() && sum_of(node_wire["rejected"]) >= n;
      },
      120s))
      << node_wire.dump();
  EXPECT_TRUE(eventually(
      [&] {
        agbot_stats = f.agbot_call({{"op", "stats"}});
        return agbot_stats.contains("rejected") && sum_of(agbot_stats["rejected"]) >= n;
      },
      120s))
      << agbot_stats.dump();
  EXPECT_EQ(sum_of(node_wire["rejected"]), n) << node_wire.dump();
  EXPECT_EQ(node_wire["rejected"].value("decrypt_failed", 0ull), n / 2) << node_wire.dump();
  EXPECT_EQ(sum_of(agbot_stats["rejected"]), n) << agbot_stats.dump();
  EXPECT_EQ(agbot_stats["rejected"].value("decrypt_failed", 0ull), n / 2) << agbot_stats.dump();
  std::cout << "flood: " << 2 * n << " messages published (QoS 1) in " << secs
            << " s = " << (2 * n / secs) << " msg/s\n  agent wire " << node_wire.dump()
            << "\n  agbot " << agbot_stats.dump() << "\n";

  EXPECT_TRUE(f.agent_process(0).is_running());
  EXPECT_TRUE(f.agbot_running());
  // Both still work: the flooded node and a fresh one form agreements with the flooded agbot.
  ASSERT_EQ(f.register_node(0).exit, 0);
  ASSERT_EQ(f.register_node(1).exit, 0);
  EXPECT_FALSE(f.wait_finalized_everywhere(0).empty()) << f.logs();
  EXPECT_FALSE(f.wait_finalized_everywhere(1).empty()) << f.logs();
}

}  // namespace
}  // namespace hmq::test
