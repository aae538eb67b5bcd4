// Rollout of a new service version across a fleet (issue 6): real mosquitto, hmq-exchange,
// hmq-agbot and N hmq-agent processes on the memory runtime (tests/support/fleet.h). There is no
// agent simulator (hmq-fleetsim) yet, so N real agents stand in for the 1,000-node target.
//
// Measures, from the moment the new pattern is published (`hmq exchange pattern publish`
// returned) until every agent runs the new version with its old agreement given up: the
// rollout time, with the pattern's upgradePolicy max_in_flight M and no batch pause. Each
// agent's verification window is W seconds (the agent keeps the new version W before it
// confirms), so the floor is ceil(N / M) * W.
//
// Usage: rollout_bench [agents=50] [max_in_flight=10] [verify_window_s=0.2]
// Prints one `BENCH_JSON {...}` line (scripts/bench.sh).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/log/log.h"
#include "tests/support/fleet.h"

namespace {

using namespace std::chrono_literals;
using hmq::test::json;
using clk = std::chrono::steady_clock;

bool runs(hmq::test::fleet& f, size_t i, const std::string& version) {
  int live = 0;
  bool on = false;
  for (const auto& a : f.agent_agreements(i)) {
    auto st = a.value("state", std::string{});
    if (st == "accepted" || st == "finalized") ++live;
    if (st == "finalized" && a["service"].value("version", std::string{}) == version) on = true;
  }
  return live == 1 && on;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t agents = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 50;
  const unsigned in_flight = argc > 2 ? static_cast<unsigned>(std::strtoul(argv[2], nullptr, 10)) : 10;
  const std::string window = argc > 3 ? argv[3] : "0.2";
  hmq::core::log::set_level("warn");

  hmq::test::fleet_options o;
  o.agents = agents;
  o.log_level = "warn";
  o.retry_min = "50ms";
  o.agent_args = {"--upgrade-verify-window", window};
  std::fprintf(stderr, "starting broker, exchange, agbot and %zu agents...\n", agents);
  hmq::test::fleet f(o);
  if (f.agents() != agents || !f.agbot_running()) {
    std::fprintf(stderr, "fleet did not start\n%s", f.logs().c_str());
    return 1;
  }
  for (size_t i = 0; i < agents; ++i)
    if (f.register_node(i).exit != 0) {
      std::fprintf(stderr, "register %zu failed\n", i);
      return 1;
    }
  for (size_t i = 0; i < agents; ++i)
    if (!hmq::test::eventually([&] { return runs(f, i, "1.0.0"); }, 120s, 50ms)) {
      std::fprintf(stderr, "node %zu never reached 1.0.0\n%s", i, f.logs().c_str());
      return 1;
    }
  std::fprintf(stderr, "%zu agents on 1.0.0; publishing 1.1.0 (max in flight %u)\n", agents, in_flight);

  f.publish_service_version("1.1.0");
  const auto t0 = clk::now();
  f.publish_pattern_versions({"1.1.0", "1.0.0"}, in_flight, 0, 0);
  size_t done = 0;
  // The rollout is done when every agent runs 1.1.0 on one agreement (the agbot published
  // "complete" at the same moment, modulo its 200 ms progress coalescing).
  bool ok = hmq::test::eventually(
      [&] {
        while (done < agents && runs(f, done, "1.1.0")) ++done;
        return done == agents;
      },
      600s, 20ms);
  const double secs = std::chrono::duration<double>(clk::now() - t0).count();
  auto ab = f.agbot_call({{"op", "rollout.status"}});
  const size_t peak = ab.value("peak_in_flight", size_t{0});
  if (!ok) {
    std::fprintf(stderr, "rollout did not finish: %zu of %zu\n%s", done, agents, f.logs().c_str());
    return 1;
  }
  const double floor_s = std::ceil(double(agents) / in_flight) * std::atof(window.c_str());
  std::printf("rollout of 1.1.0 to %zu nodes, max in flight %u (peak %zu), verify window %s s: %.2f s "
              "(floor from batches x window: %.2f s)\n",
              agents, in_flight, peak, window.c_str(), secs, floor_s);
  std::printf("BENCH_JSON {\"name\":\"rollout_complete\",\"what\":\"pattern publish to every node on the new "
              "version\",\"nodes\":%zu,\"simulated\":false,\"max_in_flight\":%u,\"peak_in_flight\":%zu,"
              "\"verify_window_s\":%s,\"seconds\":%.3f,\"floor_seconds\":%.3f}\n",
              agents, in_flight, peak, window.c_str(), secs, floor_s);
  return 0;
}
