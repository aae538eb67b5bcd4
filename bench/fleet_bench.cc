// Fleet convergence (issue 8): for each fleet size, a fresh system (mosquitto, hmq-exchange,
// hmq-agbot as processes, tests/support/fleet.h) and one hmq-fleetsim run that creates the nodes
// and registers all of them at once. Reports time until every node has a finalized agreement and
// the agreement latency percentiles (RegisterNode sent -> agreement finalized on the node), and
// keeps each run's full JSON (agreed_at_s, latencies_ms) in bench/results/fleetsim_<N>.json for
// the plots. Also the RSS of one real hmq-agent with a finalized agreement (memory runtime).
//
// The exchange runs with --hash-strength minimum (the fixture's setting): creating 10,000 nodes
// would otherwise be 10,000 Argon2id hashes, a set-up cost that is not what this measures.
//
// Usage: fleet_bench [sizes=1000,10000] [--commit-batch N]
//   --commit-batch passes the flag to hmq-exchange and hmq-agbot: 1 turns group commit off (one
//   transaction and one fsync per write, the behaviour before docs/PERFORMANCE.md's fix).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/log/log.h"
#include "tests/support/fleet.h"

namespace {

using namespace std::chrono_literals;
using hmq::test::json;

std::string fleetsim_binary() {
  return std::string(HMQ_BINARY_DIR) + "/tools/fleetsim/hmq-fleetsim";
}
std::string results_dir() {
  return std::string(HMQ_SOURCE_DIR) + "/bench/results";
}

long rss_kb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

std::vector<std::string> commit_args;

int run_fleet(size_t n) {
  hmq::test::fleet_options fo;
  fo.agents = 0;
  fo.log_level = "warn";
  fo.exchange_args = commit_args;
  fo.agbot_args = commit_args;
  std::fprintf(stderr, "fleet_bench: %zu nodes: starting broker, exchange, agbot\n", n);
  hmq::test::fleet f(fo);
  if (!f.agbot_running()) {
    std::fprintf(stderr, "fleet did not start\n%s", f.logs().c_str());
    return 1;
  }
  std::vector<std::string> argv{fleetsim_binary(),
                                "--broker",
                                f.broker().uri(),
                                "--exchange-key",
                                f.exchange_key(),
                                "--org",
                                fo.org,
                                "--pattern",
                                fo.pattern,
                                "-u",
                                fo.org + "/admin:admin-pw",
                                "--create-nodes",
                                "--trust",
                                f.signing_public_key().string(),
                                "--nodes",
                                std::to_string(n),
                                "--timeout",
                                "600",
                                "-o",
                                "json"};
  // stderr (progress) goes to a file next to the results; stdout is the JSON summary.
  auto r = hmq::test::run_command(argv, {}, f.dir(), std::chrono::seconds(900));
  std::ofstream(results_dir() + "/fleetsim_" + std::to_string(n) + ".log") << r.err;
  std::fputs(r.err.c_str(), stderr);
  json s;
  try {
    s = json::parse(r.out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fleetsim %zu: exit %d, no summary: %s\n%s\n", n, r.exit, e.what(),
                 f.logs().c_str());
    return 1;
  }
  std::ofstream(results_dir() + "/fleetsim_" + std::to_string(n) + ".json") << s.dump();
  json fig{{"name", "fleet_convergence_" + std::to_string(n)},
           {"what", "hmq-fleetsim: N nodes register at once; one broker, one exchange, one agbot"},
           {"nodes", n},
           {"commit_batch", commit_args.empty() ? std::string("default") : commit_args[1]},
           {"agreed", s["agreed"]},
           {"time_to_all_agreed_s", s.value("time_to_all_agreed_s", -1.0)},
           {"time_to_all_registered_s", s.value("time_to_all_registered_s", -1.0)},
           {"create_s", s["create_s"]},
           {"latency_ms", s["agreement_latency_ms"]},
           {"sim_rss_kb", s.value("rss_kb", 0)},
           {"connections", s["connections"]}};
  std::printf(
      "fleet %6zu nodes: %s agreed in %.2f s (registered in %.2f s); latency p50 %.0f ms p99 %.0f "
      "ms\n",
      n, s["agreed"].dump().c_str(), fig["time_to_all_agreed_s"].get<double>(),
      fig["time_to_all_registered_s"].get<double>(), s["agreement_latency_ms"].value("p50", -1.0),
      s["agreement_latency_ms"].value("p99", -1.0));
  std::printf("BENCH_JSON %s\n", fig.dump().c_str());
  std::fflush(stdout);
  return r.exit == 0 ? 0 : 2;
}

// One real hmq-agent (memory runtime) after its agreement is finalized.
int agent_rss() {
  hmq::test::fleet_options fo;
  fo.agents = 1;
  fo.log_level = "warn";
  hmq::test::fleet f(fo);
  f.register_node(0);
  if (f.wait_finalized_everywhere(0, 60s).empty()) {
    std::fprintf(stderr, "agent did not reach an agreement\n%s", f.logs().c_str());
    return 1;
  }
  const long kb = rss_kb(f.agent_process(0).pid());
  std::printf("hmq-agent RSS with one finalized agreement (memory runtime): %ld KiB\n", kb);
  std::printf(
      "BENCH_JSON {\"name\":\"agent_rss\",\"what\":\"VmRSS of hmq-agent, one agreement, memory "
      "runtime\","
      "\"rss_kb\":%ld}\n",
      kb);
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  hmq::core::log::set_level("warn");
  std::vector<size_t> sizes{1000, 10000};
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--commit-batch") {
      commit_args = {"--commit-batch", argv[i + 1]};
      argc = i;  // sizes come before the flag
    }
  if (argc > 1) {
    sizes.clear();
    std::stringstream ss(argv[1]);
    std::string item;
    while (std::getline(ss, item, ',')) sizes.push_back(std::strtoul(item.c_str(), nullptr, 10));
  }
  int status = agent_rss();
  for (size_t n : sizes) status = std::max(status, run_fleet(n));
  return status;
}
