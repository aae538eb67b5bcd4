// Agreement formation latency (issue 4): from RegisterNode acknowledged (the agent's control
// `register` op returns once the exchange accepted) to the agreement finalized on both sides,
// with real mosquitto, hmq-exchange, hmq-agbot and N hmq-agent processes (tests/support/fleet.h),
// next to the raw MQTT QoS-1 round trip through the same broker, measured in the same run.
//
// Registrations run one at a time (register, wait finalized everywhere, unregister, wait until
// the agbot let go), agents round-robin, so each figure is one agreement's own latency.
// "Finalized on both sides" is the later of the agent's finalized_ms and the agbot's
// updated_ms of the finalized row: wall-clock milliseconds written by the daemons themselves,
// so the figure has 1 ms resolution and the bench's polling (2 ms) does not add to it.
//
// Usage: agreement_bench [agents=20] [cycles=10] [rtt_iterations=1000]
// Prints p50/p90/p99/max and one `BENCH_JSON {...}` line per figure (scripts/bench.sh).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/bus/client.h"
#include "core/control/control.h"
#include "core/log/log.h"
#include "tests/support/fleet.h"
#include "tests/support/loop_thread.h"

namespace {

using namespace std::chrono_literals;
namespace bus = hmq::core::bus;
using hmq::test::json;
using clk = std::chrono::steady_clock;

struct figures {
  std::vector<double> ms;
  double pct(double p) const {
    auto v = ms;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
  }
  void print(const char* name, const char* what) const {
    if (ms.empty()) {
      std::printf("%-44s no samples\n", name);
      return;
    }
    std::printf("%-44s n=%5zu  p50 %8.3f ms  p90 %8.3f ms  p99 %8.3f ms  max %8.3f ms\n", name,
                ms.size(), pct(0.5), pct(0.9), pct(0.99), *std::max_element(ms.begin(), ms.end()));
    std::printf(
        "BENCH_JSON {\"name\":\"%s\",\"what\":\"%s\",\"n\":%zu,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
        "\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
        name, what, ms.size(), pct(0.5), pct(0.9), pct(0.99),
        *std::max_element(ms.begin(), ms.end()));
    std::fflush(stdout);
  }
};

// Raw QoS-1 ping-pong between two clients through the fleet's broker (TCP_NODELAY on, as the
// daemons run): A publishes, B echoes, A receives. What bus_bench calls one round trip.
figures mqtt_round_trip(const std::string& uri, int n) {
  hmq::test::loop_thread lt;
  std::unique_ptr<bus::client> a, b;
  auto opts = [&](const char* id) {
    bus::options o;
    o.broker_uri = uri;
    o.client_id = id;
    o.clean_start = true;
    o.session_expiry_s = 0;
    return o;
  };
  auto ready = std::make_shared<std::promise<void>>();
  auto subs = std::make_shared<int>(0);
  figures f;
  std::promise<void> done;
  const int warmup = std::max(10, n / 20);
  int i = 0;
  clk::time_point t0;
  std::vector<uint8_t> payload(100, 0x5a);
  lt.call([&] {
    a = std::make_unique<bus::client>(lt.loop(), opts("agreement-bench-a"));
    b = std::make_unique<bus::client>(lt.loop(), opts("agreement-bench-b"));
    auto subscribed = [ready, subs](hmq::core::result<void> r) {
      if (!r) std::abort();
      if (++*subs == 2) ready->set_value();
    };
    b->subscribe(
        "bench/ping", 1, [&](const bus::inbound& in) { b->publish("bench/pong", in.payload); },
        subscribed);
    a->subscribe(
        "bench/pong", 1,
        [&](const bus::inbound&) {
          if (i++ >= warmup)
            f.ms.push_back(std::chrono::duration<double, std::milli>(clk::now() - t0).count());
          if (i >= n + warmup) return done.set_value();
          t0 = clk::now();
          a->publish("bench/ping", payload);
        },
        subscribed);
    a->start();
    b->start();
  });
  if (ready->get_future().wait_for(30s) != std::future_status::ready) std::abort();
  lt.call([&] {
    t0 = clk::now();
    a->publish("bench/ping", payload);
  });
  if (done.get_future().wait_for(120s) != std::future_status::ready) std::abort();
  lt.call([&] {
    a->stop();
    b->stop();
    a.reset();
    b.reset();
  });
  return f;
}

int64_t now_wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  const size_t agents = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 20;
  const int cycles = argc > 2 ? std::atoi(argv[2]) : 10;
  const int rtt_n = argc > 3 ? std::atoi(argv[3]) : 1000;
  hmq::core::log::set_level("warn");

  hmq::test::fleet_options o;
  o.agents = agents;
  o.log_level = "warn";
  o.retry_min = "50ms";
  std::fprintf(stderr, "starting broker, exchange, agbot and %zu agents...\n", agents);
  hmq::test::fleet f(o);
  if (f.agents() != agents || !f.agbot_running()) {
    std::fprintf(stderr, "fleet did not start\n%s", f.logs().c_str());
    return 1;
  }

  figures rtt = mqtt_round_trip(f.broker().uri(), rtt_n);

  figures formed, seen;
  int failures = 0;
  for (int c = 0; c < cycles; ++c) {
    for (size_t i = 0; i < agents; ++i) {
      json req{{"op", "register"},
               {"node", f.qualified_node(i)},
               {"token", o.token_prefix + std::to_string(i)},
               {"pattern", o.org + "/" + o.pattern},
               {"arch", "amd64"}};
      auto r = hmq::core::control::call(f.agent_socket(i), req, 30s);
      const int64_t t0_us = now_wall_us();
      const auto t0 = clk::now();
      if (!r || !(*r).value("ok", false)) {
        std::fprintf(stderr, "register node %zu failed: %s\n", i,
                     r ? r->dump().c_str() : r.err().message().c_str());
        return 1;
      }
      json agent_row, agbot_row;
      bool ok = hmq::test::eventually(
          [&] {
            agent_row = nullptr;
            for (const auto& a : f.agent_agreements(i))
              if (a.value("state", "") == "finalized") agent_row = a;
            if (agent_row.is_null()) return false;
            for (const auto& a : f.agbot_agreements_of(i))
              if (a.value("id", "") == agent_row["id"] && a.value("state", "") == "finalized")
                agbot_row = a;
            return !agbot_row.is_null();
          },
          30s, 2ms);
      if (!ok) {
        ++failures;
        std::fprintf(stderr, "node %zu cycle %d: no agreement in 30 s\n", i, c);
      } else {
        seen.ms.push_back(std::chrono::duration<double, std::milli>(clk::now() - t0).count());
        const int64_t fin_ms = std::max(agent_row.value("finalized_ms", int64_t{0}),
                                        agbot_row.value("updated_ms", int64_t{0}));
        formed.ms.push_back(
            std::max(0.0, static_cast<double>(fin_ms) - static_cast<double>(t0_us) / 1000.0));
      }
      auto u = hmq::core::control::call(f.agent_socket(i), {{"op", "unregister"}}, 30s);
      if (!u || !(*u).value("ok", false)) {
        std::fprintf(stderr, "unregister node %zu failed\n", i);
        return 1;
      }
      hmq::test::eventually([&] { return f.agbot_agreements_of(i).empty(); }, 30s, 2ms);
    }
  }

  std::printf("agreement_bench: %zu agents x %d cycles, sequential registrations\n", agents,
              cycles);
  rtt.print("mqtt_qos1_round_trip", "raw MQTT QoS-1 ping-pong through the same broker");
  formed.print("register_ack_to_finalized_both_sides",
               "RegisterNode acknowledged -> finalized on agent and agbot (daemon timestamps, 1 ms "
               "resolution)");
  seen.print("register_ack_to_finalized_observed",
             "same, as seen by the bench polling control sockets every 2 ms");
  if (!formed.ms.empty() && !rtt.ms.empty()) {
    const double ratio = formed.pct(0.5) / rtt.pct(0.5);
    std::printf("p50 agreement / p50 MQTT round trip = %.1fx (target <= 10x)\n", ratio);
    std::printf(
        "BENCH_JSON {\"name\":\"agreement_over_mqtt_rtt\",\"ratio_p50\":%.2f,\"failures\":%d}\n",
        ratio, failures);
  }
  return failures == 0 ? 0 : 2;
}
