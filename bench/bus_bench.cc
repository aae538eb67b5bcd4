// Bus latency reference: round trips through a real mosquitto started by the test fixture.
//   1. raw MQTT QoS-1 ping-pong (client A -> broker -> client B -> broker -> A), with the
//      client's TCP_NODELAY work-around on and off, and with mosquitto's set_tcp_nodelay off;
//   2. messenger request/response: sealed (crypto_box) request, opened, answered, opened.
// Prints p50/p90/p99/max per scenario. Later benchmarks compare against these figures.
// Usage: bus_bench [iterations=2000]   (scenarios with Nagle on run iterations/10: ~88 ms each)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "core/bus/client.h"
#include "core/bus/messenger.h"
#include "core/crypto/crypto.h"
#include "core/log/log.h"
#include "core/wire/codec.h"
#include "tests/support/loop_thread.h"
#include "tests/support/mosquitto.h"

namespace {

using namespace std::chrono_literals;
namespace bus = hmq::core::bus;
namespace fb = hmq::core::wire::fb;
using hmq::test::loop_thread;
using hmq::test::mosquitto_broker;
using clk = std::chrono::steady_clock;

struct stats {
  std::vector<double> us;
  void print(const char* name) {
    std::sort(us.begin(), us.end());
    auto pct = [&](double p) {
      return us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))];
    };
    std::printf("%-58s n=%5zu  p50 %9.1f us  p90 %9.1f us  p99 %9.1f us  max %9.1f us\n", name,
                us.size(), pct(0.50), pct(0.90), pct(0.99), us.back());
  }
};

bus::options opts(const mosquitto_broker& b, std::string id, bool nodelay) {
  bus::options o;
  o.broker_uri = b.uri();
  o.client_id = std::move(id);
  o.clean_start = true;
  o.tcp_nodelay = nodelay;
  return o;
}

bool wait_connected(loop_thread& lt, bus::client& c) {
  auto p = std::make_shared<std::promise<bool>>();
  auto f = p->get_future();
  lt.call([&] { c.start([p](hmq::core::result<void> r) { p->set_value(r.ok()); }); });
  return f.wait_for(30s) == std::future_status::ready && f.get();
}

bool subscribed(loop_thread& lt, bus::client& c, const std::string& filter, bus::handler h) {
  auto p = std::make_shared<std::promise<bool>>();
  auto f = p->get_future();
  lt.call([&] {
    c.subscribe(filter, 1, std::move(h), [p](hmq::core::result<void> r) { p->set_value(r.ok()); });
  });
  return f.wait_for(30s) == std::future_status::ready && f.get();
}

stats raw_ping_pong(bool client_nodelay, bool broker_nodelay, int n) {
  hmq::test::broker_options bo;
  if (!broker_nodelay) bo.extra_config = {"set_tcp_nodelay false"};
  mosquitto_broker broker(bo);
  loop_thread lt;
  std::unique_ptr<bus::client> a, b;
  lt.call([&] {
    a = std::make_unique<bus::client>(lt.loop(), opts(broker, "bench-a", client_nodelay));
    b = std::make_unique<bus::client>(lt.loop(), opts(broker, "bench-b", client_nodelay));
  });
  stats s;
  if (!wait_connected(lt, *a) || !wait_connected(lt, *b)) std::abort();
  std::promise<void> done;
  const int warmup = std::max(10, n / 20);
  int i = 0;
  clk::time_point t0;
  std::vector<uint8_t> payload(100, 0x5a);
  if (!subscribed(lt, *b, "bench/ping",
                  [&](const bus::inbound& in) { b->publish("bench/pong", in.payload); }))
    std::abort();
  if (!subscribed(lt, *a, "bench/pong", [&](const bus::inbound&) {
        if (i++ >= warmup)
          s.us.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count());
        if (i >= n + warmup) return done.set_value();
        t0 = clk::now();
        a->publish("bench/ping", payload);
      })) {
    std::abort();
  }
  lt.call([&] {
    t0 = clk::now();
    a->publish("bench/ping", payload);
  });
  done.get_future().wait();
  lt.call([&] {
    a.reset();
    b.reset();
  });
  return s;
}

stats messenger_round_trip(int n) {
  mosquitto_broker broker;
  loop_thread lt;
  auto ka = hmq::core::crypto::box_keypair::generate();
  auto kb = hmq::core::crypto::box_keypair::generate();
  std::unique_ptr<bus::client> ca, cb;
  std::unique_ptr<hmq::core::wire::codec> xa, xb;
  std::unique_ptr<bus::messenger> ma, mb;
  lt.call([&] {
    ca = std::make_unique<bus::client>(lt.loop(), opts(broker, "bench-ma", true));
    cb = std::make_unique<bus::client>(lt.loop(), opts(broker, "bench-mb", true));
    xa = std::make_unique<hmq::core::wire::codec>(ka, lt.loop().time());
    xb = std::make_unique<hmq::core::wire::codec>(kb, lt.loop().time());
    ma = std::make_unique<bus::messenger>(lt.loop(), *ca, *xa);
    mb = std::make_unique<bus::messenger>(lt.loop(), *cb, *xb);
    mb->on(fb::Body::RpcRequest, [&](const hmq::core::wire::opened& req) {
      mb->respond(req, fb::Body::RpcResponse, [](flatbuffers::FlatBufferBuilder& b) {
        return fb::CreateRpcResponse(b, fb::RpcStatus::ok).Union();
      });
    });
    ma->start();
    mb->start();
  });
  if (!wait_connected(lt, *ca) || !wait_connected(lt, *cb)) std::abort();
  // The mailbox subscriptions are acknowledged once a confirming re-subscribe completes.
  auto confirm = [&](bus::client& c, bus::messenger& m) {
    auto p = std::make_shared<std::promise<void>>();
    auto f = p->get_future();
    lt.call([&] {
      c.subscribe(m.mailbox_topic(), 1, nullptr, [p](hmq::core::result<void>) { p->set_value(); });
    });
    f.wait();
    lt.call([&] {
      m.stop();
      m.start();
    });
  };
  confirm(*ca, *ma);
  confirm(*cb, *mb);

  stats s;
  std::promise<void> done;
  const int warmup = std::max(10, n / 20);
  int i = 0;
  std::function<void()> one = [&] {
    auto t0 = clk::now();
    ma->request(
        kb.pk, {}, {}, fb::Body::RpcRequest,
        [](flatbuffers::FlatBufferBuilder& b) { return fb::CreateRpcRequest(b).Union(); }, 30s,
        [&, t0](hmq::core::result<hmq::core::wire::opened> r) {
          if (!r) {
            std::fprintf(stderr, "request failed: %s\n", r.err().message().c_str());
            std::abort();
          }
          if (i++ >= warmup)
            s.us.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count());
          if (i >= n + warmup) return done.set_value();
          one();
        });
  };
  lt.call([&] { one(); });
  done.get_future().wait();
  lt.call([&] {
    ma.reset();
    mb.reset();
    ca.reset();
    cb.reset();
  });
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  hmq::core::log::set_level("warn");
  const int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  const int slow = std::max(20, n / 10);
  std::printf("bus round trips, 100-byte payloads, QoS 1, loopback mosquitto\n");
  raw_ping_pong(true, true, n).print("raw QoS1 ping-pong, client NODELAY on,  broker nodelay on");
  raw_ping_pong(true, false, slow)
      .print("raw QoS1 ping-pong, client NODELAY on,  broker nodelay off");
  raw_ping_pong(false, true, slow)
      .print("raw QoS1 ping-pong, client NODELAY off, broker nodelay on");
  raw_ping_pong(false, false, slow)
      .print("raw QoS1 ping-pong, client NODELAY off, broker nodelay off");
  messenger_round_trip(n).print("messenger sealed request/response (NODELAY on both sides)");
  return 0;
}
