// Rollout of a new service version across a fleet (issue 6): real mosquitto, hmq-exchange,
// hmq-agbot (tests/support/fleet.h) and either N hmq-agent processes on the memory runtime, or
// (--sim N) N simulated nodes in one hmq-fleetsim process: real agent engines, each with its own
// identity, mailbox and store, on the fleetsim's in-memory runtime (docs/PERFORMANCE.md). Real
// agents cost a process each, so the 1,000-node figure of issue 6 uses --sim.
//
// Measures, from the moment the new pattern is published (`hmq exchange pattern publish`
// returned) until every agent runs the new version with its old agreement given up: the
// rollout time, with the pattern's upgradePolicy max_in_flight M and no batch pause. Each
// agent's verification window is W seconds (the agent keeps the new version W before it
// confirms), so the floor is ceil(N / M) * W.
//
// Usage: rollout_bench [agents=50] [max_in_flight=10] [verify_window_s=0.2]
//        rollout_bench --sim N [max_in_flight=100] [verify_window_s=1]
// With --sim the end is `hmq rollout status ORG/PATTERN --watch --target 1.1.0 --interval 0.2`
// exiting 0 (the agbot published "complete"; it coalesces its status to one write per 200 ms, so
// the figure is up to ~0.4 s late), and the fleetsim's version census must then show all N nodes on
// 1.1.0 and nothing else.
// Prints one `BENCH_JSON {...}` line (scripts/bench.sh). With --sim it also writes the rollout's
// progress over time to bench/results/rollout_progress_<N>.{json,dat} (under the working
// directory, or $HMQ_BENCH_RESULTS): every status the agbot published, as `hmq rollout status
// --watch -o json` saw it, at its updatedMs relative to the pattern publish; bench/plot.sh draws
// docs' rollout_progress.png from it.
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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

std::string fleetsim_binary() {
  return std::string(HMQ_BINARY_DIR) + "/tools/fleetsim/hmq-fleetsim";
}

// The last JSON object line of a log (the fleetsim's -o json summary); null when there is none.
json last_json_line(const std::string& text) {
  std::stringstream ss(text);
  std::string line;
  json j;
  while (std::getline(ss, line)) {
    if (line.empty() || line[0] != '{') continue;
    try {
      j = json::parse(line);
    } catch (const std::exception&) {
    }
  }
  return j;
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One point of the progress series: the target version's counts in one published status.
struct progress_point {
  double t_s = 0;  // since the pattern publish
  uint64_t upgraded = 0, in_progress = 0, failed = 0, rolled_back = 0, pending = 0;
  std::string state;
};

// The series from `hmq rollout status --watch -o json` output: one JSON array per line, printed
// whenever the status changed. The time is the agbot's updatedMs (its wall clock, this machine).
std::vector<progress_point> progress_series(const std::string& watch_out, const std::string& target,
                                            int64_t t0_wall_ms) {
  std::vector<progress_point> v{progress_point{}};
  std::stringstream ss(watch_out);
  std::string line;
  while (std::getline(ss, line)) {
    if (line.empty() || line[0] != '[') continue;
    json a = json::parse(line, nullptr, false);
    if (!a.is_array()) continue;
    for (const auto& r : a) {
      if (r.value("targetVersion", std::string{}) != target) continue;
      progress_point p;
      p.t_s = static_cast<double>(r.value("updatedMs", int64_t{0}) - t0_wall_ms) / 1000.0;
      p.state = r.value("state", std::string{});
      for (const auto& ver : r.value("versions", json::array())) {
        if (ver.value("version", std::string{}) != target) continue;
        p.upgraded = ver.value("upgraded", uint64_t{0});
        p.in_progress = ver.value("inProgress", uint64_t{0});
        p.failed = ver.value("failed", uint64_t{0});
        p.rolled_back = ver.value("rolledBack", uint64_t{0});
        p.pending = ver.value("pending", uint64_t{0});
      }
      if (p.t_s >= v.back().t_s) v.push_back(p);
    }
  }
  return v;
}

void write_series(const std::vector<progress_point>& v, size_t nodes, unsigned in_flight,
                  double window_s) {
  namespace fs = std::filesystem;
  const char* env = std::getenv("HMQ_BENCH_RESULTS");
  fs::path dir = env && *env ? fs::path(env) : fs::path("bench/results");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) dir = ".";
  const std::string stem = "rollout_progress_" + std::to_string(nodes);
  json pts = json::array();
  std::ofstream dat(dir / (stem + ".dat"));
  dat << "# rollout of 1.1.0 to " << nodes << " simulated nodes, max in flight " << in_flight
      << ", verify window " << window_s
      << " s\n# seconds upgraded in_progress failed rolled_back pending\n";
  for (const auto& p : v) {
    dat << p.t_s << " " << p.upgraded << " " << p.in_progress << " " << p.failed << " "
        << p.rolled_back << " " << p.pending << "\n";
    pts.push_back({{"t_s", p.t_s},
                   {"upgraded", p.upgraded},
                   {"in_progress", p.in_progress},
                   {"failed", p.failed},
                   {"rolled_back", p.rolled_back},
                   {"pending", p.pending},
                   {"state", p.state}});
  }
  std::ofstream(dir / (stem + ".json")) << json{{"nodes", nodes},
                                                {"max_in_flight", in_flight},
                                                {"verify_window_s", window_s},
                                                {"target_version", "1.1.0"},
                                                {"series", pts}}
                                               .dump(1)
                                        << "\n";
  std::fprintf(stderr, "rollout progress series (%zu points) in %s/%s.{dat,json}\n", v.size(),
               dir.c_str(), stem.c_str());
}

int run_sim(size_t nodes, unsigned in_flight, const std::string& window) {
  hmq::test::fleet_options o;
  o.agents = 0;
  o.log_level = "warn";
  o.retry_min = "50ms";
  std::fprintf(
      stderr,
      "rollout_bench --sim: starting broker, exchange, agbot; hmq-fleetsim with %zu nodes\n",
      nodes);
  hmq::test::fleet f(o);
  if (!f.agbot_running()) {
    std::fprintf(stderr, "fleet did not start\n%s", f.logs().c_str());
    return 1;
  }
  // Runs in the background for as long as the rollout takes (--duration is only the upper bound;
  // SIGTERM below ends it and makes it print its summary).
  const auto sim_log = f.dir() / "fleetsim.log";
  auto sim = hmq::test::process::start({{fleetsim_binary(),
                                         "--broker",
                                         f.broker().uri(),
                                         "--exchange-key",
                                         f.exchange_key(),
                                         "--org",
                                         o.org,
                                         "--pattern",
                                         o.pattern,
                                         "-u",
                                         o.org + "/admin:admin-pw",
                                         "--create-nodes",
                                         "--trust",
                                         f.signing_public_key().string(),
                                         "--nodes",
                                         std::to_string(nodes),
                                         "--upgrade-verify-window",
                                         window,
                                         "--duration",
                                         "3600",
                                         "--timeout",
                                         "3700",
                                         "--progress",
                                         "1",
                                         "-o",
                                         "json"},
                                        {},
                                        sim_log});
  const auto t_setup = clk::now();
  if (!hmq::test::wait_for_log(
          sim_log, "agreed " + std::to_string(nodes) + "/" + std::to_string(nodes) + " ", 1,
          600s)) {
    std::fprintf(stderr, "the simulated nodes never all agreed\n%s\n%s",
                 hmq::test::read_file(sim_log).c_str(), f.logs().c_str());
    return 1;
  }
  const double agree_s = std::chrono::duration<double>(clk::now() - t_setup).count();
  std::fprintf(stderr,
               "%zu simulated nodes on 1.0.0 (%.1f s incl. node creation); publishing 1.1.0 (max "
               "in flight %u)\n",
               nodes, agree_s, in_flight);

  f.publish_service_version("1.1.0");
  const auto t0 = clk::now();
  const int64_t t0_wall = wall_ms();
  f.publish_pattern_versions({"1.1.0", "1.0.0"}, in_flight, 0, 0);
  const double publish_s = std::chrono::duration<double>(clk::now() - t0).count();
  auto watch = hmq::test::run_command(
      {hmq::test::hmq_binary(), "rollout", "status", o.org + "/" + o.pattern, "--watch", "--target",
       "1.1.0", "--interval", "0.2", "-o", "json", "-u", o.org + "/admin:admin-pw"},
      {{"HMQ_EXCHANGE", f.broker().uri()},
       {"HMQ_EXCHANGE_KEY", f.exchange_key()},
       {"HOME", f.dir().string()}},
      f.dir(), 1800s);
  const double secs = std::chrono::duration<double>(clk::now() - t0).count();
  auto ab = f.agbot_call({{"op", "rollout.status"}});
  const size_t peak = ab.value("peak_in_flight", size_t{0});

  sim.kill(SIGTERM);
  sim.wait_for(120s);
  const std::string sim_text = hmq::test::read_file(sim_log);
  const json summary = last_json_line(sim_text);
  if (watch.exit != 0) {
    std::fprintf(stderr, "hmq rollout status --watch exited %d\n%s\n%s\n%s", watch.exit,
                 watch.err.c_str(), sim_text.c_str(), f.logs().c_str());
    return 1;
  }
  const auto series = progress_series(watch.out, "1.1.0", t0_wall);
  write_series(series, nodes, in_flight, std::atof(window.c_str()));
  const json versions =
      summary.is_object() ? summary.value("running_versions", json::object()) : json::object();
  const bool all_on_target = versions == json{{"1.1.0", nodes}};
  const double floor_s = std::ceil(double(nodes) / in_flight) * std::atof(window.c_str());
  std::printf(
      "rollout of 1.1.0 to %zu simulated nodes (hmq-fleetsim), max in flight %u (peak %zu), verify "
      "window "
      "%s s: %.2f s (floor from batches x window: %.2f s); nodes per version after: %s\n",
      nodes, in_flight, peak, window.c_str(), secs, floor_s, versions.dump().c_str());
  json fig{{"bench", "rollout"},
           {"name", "rollout_complete_sim_" + std::to_string(nodes)},
           {"what", "pattern publish to hmq rollout status --watch --target 1.1.0 exit 0"},
           {"nodes", nodes},
           {"simulated", true},
           {"max_in_flight", in_flight},
           {"peak_in_flight", peak},
           {"verify_window_s", std::atof(window.c_str())},
           {"seconds", std::round(secs * 1000) / 1000},
           {"floor_seconds", floor_s},
           {"pattern_publish_s", std::round(publish_s * 1000) / 1000},
           {"all_on_target", all_on_target},
           {"running_versions", versions},
           {"upgrades", summary.is_object() ? summary["engine"].value("upgrades", 0) : 0},
           {"rollbacks", summary.is_object() ? summary["engine"].value("rollbacks", 0) : 0},
           {"sim_rss_kb", summary.is_object() ? summary.value("rss_kb", 0) : 0},
           {"progress_points", series.size()},
           {"progress_series", "rollout_progress_" + std::to_string(nodes) + ".json"}};
  std::printf("BENCH_JSON %s\n", fig.dump().c_str());
  std::fflush(stdout);
  if (!all_on_target) {
    std::fprintf(stderr, "not every node runs 1.1.0 only\n%s", sim_text.c_str());
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2 && std::strcmp(argv[1], "--sim") == 0) {
    hmq::core::log::set_level("warn");
    const size_t n = std::strtoul(argv[2], nullptr, 10);
    const unsigned m = argc > 3 ? static_cast<unsigned>(std::strtoul(argv[3], nullptr, 10)) : 100;
    return run_sim(n, m, argc > 4 ? argv[4] : "1");
  }
  const size_t agents = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 50;
  const unsigned in_flight =
      argc > 2 ? static_cast<unsigned>(std::strtoul(argv[2], nullptr, 10)) : 10;
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
  std::fprintf(stderr, "%zu agents on 1.0.0; publishing 1.1.0 (max in flight %u)\n", agents,
               in_flight);

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
  std::printf(
      "rollout of 1.1.0 to %zu nodes, max in flight %u (peak %zu), verify window %s s: %.2f s "
      "(floor from batches x window: %.2f s)\n",
      agents, in_flight, peak, window.c_str(), secs, floor_s);
  std::printf(
      "BENCH_JSON {\"name\":\"rollout_complete\",\"what\":\"pattern publish to every node on the "
      "new "
      "version\",\"nodes\":%zu,\"simulated\":false,\"max_in_flight\":%u,\"peak_in_flight\":%zu,"
      "\"verify_window_s\":%s,\"seconds\":%.3f,\"floor_seconds\":%.3f}\n",
      agents, in_flight, peak, window.c_str(), secs, floor_s);
  return 0;
}
