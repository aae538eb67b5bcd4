#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <vector>

#include "core/bus/client.h"
#include "core/bus/messenger.h"
#include "core/crypto/crypto.h"
#include "core/wire/codec.h"
#include "tests/support/loop_thread.h"
#include "tests/support/mosquitto.h"

namespace hmq::test {
namespace {

namespace bus = core::bus;
using namespace std::chrono_literals;

std::vector<uint8_t> seq_payload(uint32_t seq, size_t size = 100) {
  std::vector<uint8_t> p(std::max<size_t>(size, sizeof seq), 0xab);
  std::memcpy(p.data(), &seq, sizeof seq);
  return p;
}

uint32_t seq_of(const std::vector<uint8_t>& p) {
  uint32_t s = UINT32_MAX;
  if (p.size() >= sizeof s) std::memcpy(&s, p.data(), sizeof s);
  return s;
}

bus::options client_options(const mosquitto_broker& b, std::string id) {
  bus::options o;
  o.broker_uri = b.uri();
  o.client_id = std::move(id);
  o.min_retry = 50ms;  // reconnect quickly after the broker returns
  o.max_retry = 500ms;
  return o;
}

// Sequence numbers seen by a subscriber, shared with the test thread.
struct received {
  waiter w;
  std::vector<int> counts;  // per sequence number
  size_t total = 0;
  explicit received(size_t n) : counts(n, 0) {}

  bus::handler handler() {
    return [this](const bus::inbound& in) {
      w.update([&] {
        uint32_t s = seq_of(in.payload);
        if (s < counts.size()) ++counts[s];
        ++total;
      });
    };
  }
  bool wait_total(size_t n, std::chrono::milliseconds t = 30s) {
    return w.wait([&] { return total >= n; }, t);
  }
  // Every sequence number in [0, n) exactly once.
  std::string check_exactly_once(size_t n) {
    return w.read([&] {
      std::string bad;
      for (size_t i = 0; i < n; ++i) {
        if (counts[i] != 1) bad += " seq " + std::to_string(i) + " x" + std::to_string(counts[i]);
        if (bad.size() > 300) break;
      }
      return bad;
    });
  }
};

// One client on the loop thread; created and destroyed there.
struct loop_client {
  loop_thread& lt;
  std::unique_ptr<bus::client> c;
  waiter w;
  bool up = false;
  int ups = 0;

  loop_client(loop_thread& l, bus::options o) : lt(l) {
    lt.call([&] {
      c = std::make_unique<bus::client>(lt.loop(), std::move(o));
      c->on_connection_change([this](bool u) {
        w.update([&] {
          up = u;
          if (u) ++ups;
        });
      });
    });
  }
  ~loop_client() { reset(); }
  void reset() {
    if (c) lt.call([&] { c.reset(); });
  }
  core::result<void> start() {
    auto p = std::make_shared<std::promise<core::result<void>>>();
    auto f = p->get_future();
    lt.call([&] { c->start([p](core::result<void> r) { p->set_value(std::move(r)); }); });
    if (f.wait_for(30s) != std::future_status::ready) {
      return core::error{bus::make_error_code(bus::errc::timeout), "no first-connect outcome"};
    }
    return f.get();
  }
  core::result<void> subscribe(const std::string& filter, bus::handler h) {
    auto p = std::make_shared<std::promise<core::result<void>>>();
    auto f = p->get_future();
    lt.call([&] {
      c->subscribe(filter, 1, std::move(h),
                   [p](core::result<void> r) { p->set_value(std::move(r)); });
    });
    if (f.wait_for(30s) != std::future_status::ready) {
      return core::error{bus::make_error_code(bus::errc::timeout), "no SUBACK"};
    }
    return f.get();
  }
  bool wait_up(bool want, int min_ups = 0) {
    return w.wait([&] { return up == want && ups >= min_ups; });
  }
};

// Publishes [first, first+n) keeping at most `window` unacknowledged, all from the loop thread;
// counts outcomes. Pacing by completions is how a real sender stays within max_inflight.
struct publisher {
  waiter w;
  size_t ok = 0;
  size_t failed = 0;
  std::string last_error;

  void run(loop_thread& lt, bus::client& c, std::string topic, uint32_t first, uint32_t n,
           size_t window = 200) {
    auto next = std::make_shared<uint32_t>(first);
    auto send = std::make_shared<std::function<void()>>();
    *send = [this, &c, topic, next, end = first + n, weak = std::weak_ptr(send)] {
      if (*next >= end) return;
      uint32_t s = (*next)++;
      c.publish(topic, seq_payload(s), {}, [this, weak](core::result<void> r) {
        w.update([&] {
          if (r) {
            ++ok;
          } else {
            ++failed;
            last_error = r.err().message();
          }
        });
        if (auto f = weak.lock()) (*f)();
      });
    };
    keep_ = send;
    lt.call([&] {
      for (size_t i = 0; i < window; ++i) (*send)();
    });
  }
  bool wait_done(size_t n, std::chrono::milliseconds t = 60s) {
    return w.wait([&] { return ok + failed >= n; }, t);
  }

 private:
  std::shared_ptr<std::function<void()>> keep_;
};

TEST(bus_client, delivers_ten_thousand_qos1_messages_exactly_once_in_order_of_arrival) {
  // QoS 1 end to end through a real broker: nothing lost, nothing duplicated at the handler.
  mosquitto_broker broker;
  loop_thread lt;
  constexpr uint32_t n = 10'000;
  received got(n);
  {
    loop_client sub(lt, client_options(broker, "sub-10k"));
    loop_client pub(lt, client_options(broker, "pub-10k"));
    ASSERT_TRUE(sub.start()) << broker.log();
    ASSERT_TRUE(pub.start()) << broker.log();
    ASSERT_TRUE(sub.subscribe("hmq/v1/mb/sub10k", got.handler()));

    publisher p;
    p.run(lt, *pub.c, "hmq/v1/mb/sub10k", 0, n);
    ASSERT_TRUE(p.wait_done(n)) << "published " << p.ok;
    EXPECT_EQ(p.failed, 0u) << p.last_error;
    ASSERT_TRUE(got.wait_total(n)) << "received " << got.total;
    EXPECT_EQ(got.check_exactly_once(n), "");
    pub.reset();
    sub.reset();
  }
  EXPECT_EQ(got.total, n);  // nothing late arrived after the count was reached
}

TEST(bus_client, routes_by_filter_with_wildcards_and_shared_prefix) {
  mosquitto_broker broker;
  loop_thread lt;
  loop_client c(lt, client_options(broker, "router"));
  ASSERT_TRUE(c.start());
  waiter w;
  std::vector<std::string> plus, hash, shared;
  auto rec = [&w](std::vector<std::string>& v) {
    return [&w, &v](const bus::inbound& in) { w.update([&] { v.push_back(in.topic); }); };
  };
  ASSERT_TRUE(c.subscribe("hmq/v1/hb/+", rec(plus)));
  ASSERT_TRUE(c.subscribe("hmq/v1/ev/#", rec(hash)));
  ASSERT_TRUE(c.subscribe("$share/exchange/hmq/v1/x/rpc", rec(shared)));
  lt.call([&] {
    c.c->publish("hmq/v1/hb/node1", seq_payload(1));
    c.c->publish("hmq/v1/ev/tag/sub", seq_payload(2));
    c.c->publish("hmq/v1/x/rpc", seq_payload(3));
  });
  ASSERT_TRUE(w.wait([&] { return plus.size() + hash.size() + shared.size() >= 3; }));
  w.read([&] {
    EXPECT_EQ(plus, std::vector<std::string>{"hmq/v1/hb/node1"});
    EXPECT_EQ(hash, std::vector<std::string>{"hmq/v1/ev/tag/sub"});
    EXPECT_EQ(shared, std::vector<std::string>{"hmq/v1/x/rpc"});
  });
}

// Exact filters are routed by lookup and wildcard filters by matching (many mailboxes on one
// connection, hmq-fleetsim): a message matching both reaches both, and no exact filter sees
// another topic. (Mosquitto sends one copy per matching subscription, so counts are not checked.)
TEST(bus_client, routes_to_exact_and_overlapping_wildcard_filters_alike) {
  // mosquitto 2 sends one copy of a message per matching subscription when filters overlap;
  // with subscription identifiers each handler still sees each message exactly once.
  // The records outlive the client: a late copy must never reach a destroyed container.
  waiter w;
  std::vector<std::string> a, b, plus;
  mosquitto_broker broker;
  loop_thread lt;
  loop_client c(lt, client_options(broker, "router2"));
  ASSERT_TRUE(c.start());
  auto rec = [&w](std::vector<std::string>& v) {
    return [&w, &v](const bus::inbound& in) { w.update([&] { v.push_back(in.topic); }); };
  };
  ASSERT_TRUE(c.subscribe("hmq/v1/mb/aaaa", rec(a)));
  ASSERT_TRUE(c.subscribe("hmq/v1/mb/bbbb", rec(b)));
  ASSERT_TRUE(c.subscribe("hmq/v1/mb/+", rec(plus)));
  lt.call([&] {
    c.c->publish("hmq/v1/mb/aaaa", seq_payload(1));
    c.c->publish("hmq/v1/mb/cccc", seq_payload(2));
    c.c->publish("hmq/v1/mb/bbbb", seq_payload(3));
    // The broker keeps one publisher's order towards one subscriber: once this last message
    // is in, any duplicate of the first three would already have arrived.
    c.c->publish("hmq/v1/mb/dddd", seq_payload(4));
  });
  ASSERT_TRUE(
      w.wait([&] { return std::find(plus.begin(), plus.end(), "hmq/v1/mb/dddd") != plus.end(); }));
  w.read([&] {
    EXPECT_EQ(a, std::vector<std::string>{"hmq/v1/mb/aaaa"});
    EXPECT_EQ(b, std::vector<std::string>{"hmq/v1/mb/bbbb"});
    EXPECT_EQ(plus, (std::vector<std::string>{"hmq/v1/mb/aaaa", "hmq/v1/mb/cccc", "hmq/v1/mb/bbbb",
                                              "hmq/v1/mb/dddd"}));
  });
}

TEST(bus_client, persistent_session_receives_messages_queued_while_offline_across_broker_kill9) {
  // The broker crashes (SIGKILL, no clean save) while a subscriber is offline with messages
  // queued for it. After the broker restarts from its persistence file, the subscriber's
  // session and its queue must still be there.
  mosquitto_broker broker;
  loop_thread lt;
  constexpr uint32_t n = 50;
  const std::string mailbox = "hmq/v1/mb/offline1";
  received got(n);

  {  // Subscriber creates its persistent session, then goes away cleanly.
    loop_client sub(lt, client_options(broker, "offline-sub"));
    ASSERT_TRUE(sub.start());
    ASSERT_TRUE(sub.subscribe(mailbox, got.handler()));
    sub.reset();
  }
  {  // Messages published while the subscriber is offline: the broker queues them.
    loop_client pub(lt, client_options(broker, "offline-pub"));
    ASSERT_TRUE(pub.start());
    publisher p;
    p.run(lt, *pub.c, mailbox, 0, n, 10);
    ASSERT_TRUE(p.wait_done(n));
    ASSERT_EQ(p.ok, n) << p.last_error;
    pub.reset();
  }
  EXPECT_EQ(got.w.read([&] { return got.total; }), 0u);  // really offline

  // The crash comes after the broker's next autosave (at most autosave_interval later): what
  // is on disk by then must survive. Without persistence this test fails.
  ASSERT_TRUE(broker.wait_for_autosave()) << broker.log();
  broker.kill_hard();
  broker.restart();

  loop_client sub(lt, client_options(broker, "offline-sub"));
  // Handlers are registered before start(); the broker's session delivers at once on connect.
  lt.call([&] { sub.c->subscribe(mailbox, 1, got.handler()); });
  ASSERT_TRUE(sub.start()) << broker.log();
  ASSERT_TRUE(got.wait_total(n)) << "received " << got.total << " of " << n << "\n" << broker.log();
  EXPECT_EQ(got.check_exactly_once(n), "");
}

TEST(bus_client, publish_while_broker_is_down_is_delivered_after_it_returns) {
  mosquitto_broker broker;
  loop_thread lt;
  constexpr uint32_t n = 20;
  const std::string mailbox = "hmq/v1/mb/buffered";
  received got(n);

  loop_client sub(lt, client_options(broker, "buf-sub"));
  loop_client pub(lt, client_options(broker, "buf-pub"));
  ASSERT_TRUE(sub.start());
  ASSERT_TRUE(pub.start());
  ASSERT_TRUE(sub.subscribe(mailbox, got.handler()));
  // The subscriber's session must be on disk before the crash (else the broker honestly
  // forgets it and the publishes below have no one to go to).
  ASSERT_TRUE(broker.wait_for_autosave()) << broker.log();
  broker.kill_hard();
  ASSERT_TRUE(pub.wait_up(false));
  ASSERT_TRUE(sub.wait_up(false));

  publisher p;
  p.run(lt, *pub.c, mailbox, 0, n, n);  // all while offline: Paho buffers them
  EXPECT_EQ(p.w.read([&] { return p.ok + p.failed; }), 0u);

  broker.restart();
  ASSERT_TRUE(p.wait_done(n)) << broker.log();
  EXPECT_EQ(p.ok, n) << p.last_error;
  ASSERT_TRUE(got.wait_total(n)) << "received " << got.total << "\n" << broker.log();
  EXPECT_EQ(got.check_exactly_once(n), "");
}

TEST(bus_client, reconnects_after_a_clean_broker_restart) {
  // A clean stop (SIGTERM, e.g. systemctl restart mosquitto) may say goodbye with a v5
  // DISCONNECT instead of just dropping the socket; either way the client must come back.
  mosquitto_broker broker;
  loop_thread lt;
  const std::string mailbox = "hmq/v1/mb/clean-restart";
  received got(1);
  loop_client sub(lt, client_options(broker, "clean-sub"));
  ASSERT_TRUE(sub.start());
  ASSERT_TRUE(sub.subscribe(mailbox, got.handler()));
  broker.stop();
  ASSERT_TRUE(sub.wait_up(false));
  broker.restart();
  ASSERT_TRUE(sub.wait_up(true, 2)) << broker.log();
  loop_client pub(lt, client_options(broker, "clean-pub"));
  ASSERT_TRUE(pub.start());
  publisher p;
  p.run(lt, *pub.c, mailbox, 0, 1, 1);
  ASSERT_TRUE(p.wait_done(1));
  EXPECT_TRUE(got.wait_total(1)) << broker.log();
}

TEST(bus_client, resubscribes_after_reconnect_when_broker_lost_the_session) {
  // The broker comes back without its database: the client must notice (session present =
  // false) and make its subscriptions again, or it would silently hear nothing.
  mosquitto_broker broker;
  loop_thread lt;
  const std::string mailbox = "hmq/v1/mb/resub";
  received got(1);

  loop_client sub(lt, client_options(broker, "resub-sub"));
  ASSERT_TRUE(sub.start());
  ASSERT_TRUE(sub.subscribe(mailbox, got.handler()));
  broker.kill_hard();
  std::filesystem::remove(broker.persistence_file());
  ASSERT_TRUE(sub.wait_up(false));
  broker.restart();
  ASSERT_TRUE(sub.wait_up(true, 2));

  loop_client pub(lt, client_options(broker, "resub-pub"));
  ASSERT_TRUE(pub.start());
  // The resubscribe races with this publish; repeat until one arrives (bounded by the wait).
  publisher p;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  uint32_t sent = 0;
  while (!got.wait_total(1, 100ms) && std::chrono::steady_clock::now() < deadline) {
    p.run(lt, *pub.c, mailbox, 0, 1, 1);
    ++sent;
  }
  EXPECT_GE(got.total, 1u) << "after " << sent << " publishes\n" << broker.log();
}

TEST(bus_client, first_connect_to_a_dead_port_reports_connect_failed) {
  loop_thread lt;
  bus::options o;
  o.broker_uri = "tcp://127.0.0.1:" + std::to_string(free_port());
  o.client_id = "nobody-home";
  o.connect_timeout = 1000ms;
  loop_client c(lt, o);
  auto r = c.start();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), bus::errc::connect_failed) << r.err().message();
}

TEST(bus_client, rejects_unknown_uri_scheme) {
  loop_thread lt;
  bus::options o;
  o.broker_uri = "http://127.0.0.1:1883";
  loop_client c(lt, o);
  auto r = c.start();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), bus::errc::bad_uri);
}

TEST(bus_client, stop_fails_in_flight_operations_with_stopped) {
  loop_thread lt;
  bus::options o;
  o.broker_uri = "tcp://127.0.0.1:" + std::to_string(free_port());
  o.client_id = "stopper";
  loop_client c(lt, o);
  waiter w;
  std::vector<std::error_code> codes;
  lt.call([&] {
    c.c->publish("t", seq_payload(1), {},
                 [&](core::result<void> r) { w.update([&] { codes.push_back(r.code()); }); });
    c.c->stop();
  });
  ASSERT_TRUE(w.wait([&] { return !codes.empty(); }));
  EXPECT_EQ(codes.front(), bus::errc::stopped);
}

// --- messenger: sealed request/response over a real broker --------------------------------------

namespace fb = core::wire::fb;

// One identity on the loop: key pair, client, codec and messenger.
struct party {
  loop_thread& lt;
  core::crypto::box_keypair keys = core::crypto::box_keypair::generate();
  std::unique_ptr<bus::client> c;
  std::unique_ptr<core::wire::codec> codec;
  std::unique_ptr<bus::messenger> m;

  party(loop_thread& l, const mosquitto_broker& b, const std::string& id) : lt(l) {
    lt.call([&] {
      c = std::make_unique<bus::client>(lt.loop(), client_options(b, id));
      codec = std::make_unique<core::wire::codec>(keys, lt.loop().time());
      m = std::make_unique<bus::messenger>(lt.loop(), *c, *codec);
    });
  }
  ~party() {
    lt.call([&] {
      m.reset();
      c.reset();
    });
  }
  // Start listening and connect; returns once the own mailbox subscription is acknowledged.
  bool start() {
    auto p = std::make_shared<std::promise<bool>>();
    auto f = p->get_future();
    lt.call([&] {
      m->start();
      c->start();
      // A second subscribe of the same filter completes once the broker holds it.
      c->subscribe(m->mailbox_topic(), 1, nullptr,
                   [p](core::result<void> r) { p->set_value(r.ok()); });
    });
    if (f.wait_for(30s) != std::future_status::ready || !f.get()) return false;
    // subscribe() above replaced the messenger's handler with nullptr: restart it to put it back.
    lt.call([&] {
      m->stop();
      m->start();
    });
    return true;
  }
};

auto empty_request = [](flatbuffers::FlatBufferBuilder& b) {
  return fb::CreateRpcRequest(b).Union();
};

TEST(bus_messenger, request_gets_the_response_from_the_key_it_was_sent_to) {
  // Sealed round trip: agent -> exchange mailbox -> response to the agent's mailbox.
  mosquitto_broker broker;
  loop_thread lt;
  party agent(lt, broker, "agent-1");
  party exchange(lt, broker, "exchange-1");
  lt.call([&] {
    exchange.m->on(fb::Body::RpcRequest, [&](const core::wire::opened& req) {
      exchange.m->respond(req, fb::Body::RpcResponse, [](flatbuffers::FlatBufferBuilder& b) {
        return fb::CreateRpcResponse(b, fb::RpcStatus::ok).Union();
      });
    });
  });
  ASSERT_TRUE(agent.start());
  ASSERT_TRUE(exchange.start());

  waiter w;
  std::optional<core::result<core::wire::opened>> got;
  lt.call([&] {
    agent.m->request(
        exchange.keys.pk, {}, {}, fb::Body::RpcRequest, empty_request, 30s,
        [&](core::result<core::wire::opened> r) { w.update([&] { got.emplace(std::move(r)); }); });
  });
  ASSERT_TRUE(w.wait([&] { return got.has_value(); }));
  ASSERT_TRUE(got->ok()) << got->err().message();
  const auto& resp = got->value();
  EXPECT_TRUE(core::crypto::equal(resp.sender, exchange.keys.pk));
  ASSERT_EQ(resp.message()->body_type(), fb::Body::RpcResponse);
  EXPECT_EQ(resp.message()->body_as_RpcResponse()->status(), fb::RpcStatus::ok);
}

TEST(bus_messenger, drops_a_forged_response_from_another_key_and_garbage) {
  // A third party that learns the correlation id must not be able to answer in the exchange's
  // name, and bytes that are no envelope are counted, not fatal.
  mosquitto_broker broker;
  loop_thread lt;
  party agent(lt, broker, "agent-2");
  party exchange(lt, broker, "exchange-2");
  party mallory(lt, broker, "mallory-2");
  lt.call([&] {
    exchange.m->on(fb::Body::RpcRequest, [&](const core::wire::opened& req) {
      // Mallory answers first, with the right correlation id, to the agent's mailbox.
      core::wire::header h;
      h.correlation_id = req.message()->correlation_id();
      auto forged = core::wire::build_message(
          h, lt.loop().time(), fb::Body::RpcResponse, [](flatbuffers::FlatBufferBuilder& b) {
            return fb::CreateRpcResponse(b, fb::RpcStatus::forbidden).Union();
          });
      mallory.m->send(req.sender, forged, {}, {}, [&, req](core::result<void>) {
        // Then the real answer, once the forgery is at the broker (same client order is not
        // guaranteed across two publishers, so chain on the PUBACK).
        exchange.m->respond(req, fb::Body::RpcResponse, [](flatbuffers::FlatBufferBuilder& b) {
          return fb::CreateRpcResponse(b, fb::RpcStatus::ok).Union();
        });
      });
    });
  });
  ASSERT_TRUE(agent.start());
  ASSERT_TRUE(exchange.start());
  ASSERT_TRUE(mallory.start());

  waiter w;
  std::optional<core::result<core::wire::opened>> got;
  lt.call([&] {
    agent.c->publish(agent.m->mailbox_topic(),
                     {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20});
    agent.m->request(
        exchange.keys.pk, {}, {}, fb::Body::RpcRequest, empty_request, 30s,
        [&](core::result<core::wire::opened> r) { w.update([&] { got.emplace(std::move(r)); }); });
  });
  ASSERT_TRUE(w.wait([&] { return got.has_value(); }));
  ASSERT_TRUE(got->ok()) << got->err().message();
  EXPECT_TRUE(core::crypto::equal(got->value().sender, exchange.keys.pk));
  EXPECT_EQ(got->value().message()->body_as_RpcResponse()->status(), fb::RpcStatus::ok);
  auto [unrouted, rejected] =
      lt.call([&] { return std::pair(agent.m->dropped_unrouted(), agent.m->dropped_rejected()); });
  EXPECT_EQ(unrouted, 1u);  // the forgery
  EXPECT_EQ(rejected, 1u);  // the garbage
}

TEST(bus_messenger, request_without_answer_times_out) {
  mosquitto_broker broker;
  loop_thread lt;
  party agent(lt, broker, "agent-3");
  auto nobody = core::crypto::box_keypair::generate();
  ASSERT_TRUE(agent.start());
  waiter w;
  std::optional<std::error_code> code;
  lt.call([&] {
    agent.m->request(
        nobody.pk, {}, {}, fb::Body::RpcRequest, empty_request, 200ms,
        [&](core::result<core::wire::opened> r) { w.update([&] { code = r.code(); }); });
  });
  ASSERT_TRUE(w.wait([&] { return code.has_value(); }));
  EXPECT_EQ(*code, bus::rpc_errc::timeout);
}

TEST(bus_messenger, stop_fails_pending_requests_with_stopped) {
  mosquitto_broker broker;
  loop_thread lt;
  party agent(lt, broker, "agent-4");
  auto nobody = core::crypto::box_keypair::generate();
  ASSERT_TRUE(agent.start());
  std::optional<std::error_code> code;
  lt.call([&] {
    agent.m->request(nobody.pk, {}, {}, fb::Body::RpcRequest, empty_request, 30s,
                     [&](core::result<core::wire::opened> r) { code = r.code(); });
    agent.m->stop();
  });
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, bus::rpc_errc::stopped);
}

}  // namespace
}  // namespace hmq::test
