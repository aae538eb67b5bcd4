// Memory of a real, idle hmq-agent process holding one finalized agreement (issue 5's target:
// under 10 MB RSS). Starts the fleet of tests/support (mosquitto, hmq-exchange, hmq-agbot, one
// hmq-agent) from this build's binaries, registers the node, waits for the agreement, lets the
// agent idle, then reads /proc/PID/smaps_rollup (Rss, Pss, Private_*, Shared_*) and the thread
// count from /proc/PID/status. Prints one BENCH_JSON line per runtime:
//   - memory: the in-memory runtime (no container runs);
//   - docker: the Docker Engine runtime with the example pattern (consumer, gps, cpu) pulled
//     from a private registry (skipped without a Docker Engine).
// Run it on a Release build (scripts/bench.sh agent_rss_bench). It asserts nothing.
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/example_registry.h"
#include "support/fleet.h"

namespace {

using namespace std::chrono_literals;
using hmq::test::fleet;
using hmq::test::fleet_options;
using json = nlohmann::json;

// Every "Key: N kB" line of smaps_rollup, and Threads/VmHWM of status.
std::map<std::string, long> proc_memory(pid_t pid) {
  std::map<std::string, long> out;
  auto scan = [&](const std::string& file) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/" + file);
    std::string line;
    while (std::getline(f, line)) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::istringstream v(line.substr(colon + 1));
      long n = 0;
      if (v >> n) out[line.substr(0, colon)] = n;
    }
  };
  scan("smaps_rollup");
  scan("status");
  return out;
}

// Resident KiB per mapped file (anonymous mappings as "[anon]"), largest first, to stderr: where
// the RSS goes.
void print_mappings(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/smaps");
  std::map<std::string, long> by_file;
  std::string line, current = "[anon]";
  while (std::getline(f, line)) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
        line.find('-') < 16) {
      std::istringstream in(line);
      std::string range, perms, offset, dev, inode, path;
      in >> range >> perms >> offset >> dev >> inode >> path;
      current = path.empty() ? "[anon]" : path;
    } else if (line.rfind("Rss:", 0) == 0) {
      by_file[current] += std::stol(line.substr(4));
    }
  }
  std::vector<std::pair<long, std::string>> sorted;
  for (const auto& [file, kib] : by_file) sorted.emplace_back(kib, file);
  std::sort(sorted.rbegin(), sorted.rend());
  for (size_t i = 0; i < sorted.size() && sorted[i].first > 0; ++i)
    std::fprintf(stderr, "  %6ld KiB  %s\n", sorted[i].first, sorted[i].second.c_str());
}

void measure(const std::string& runtime, fleet_options o) {
  o.agents = 1;
  o.agent_runtime = runtime;
  o.log_level = "warn";
  fleet f(o);
  auto fail = [&](const std::string& why) {
    std::printf("BENCH_JSON %s\n",
                json{{"bench", "agent_rss"}, {"runtime", runtime}, {"error", why}}.dump().c_str());
    std::fprintf(stderr, "%s\n", f.logs().c_str());
  };
  if (f.register_node(0).exit != 0) return fail("register failed");
  auto id = f.wait_finalized_everywhere(0, 180s);
  if (id.empty()) return fail("no agreement");
  // Idle: the deploy finished (docker: containers running), nothing in flight.
  std::this_thread::sleep_for(5s);
  if (f.agent_agreements(0).size() != 1) return fail("agreement lost while idling");
  auto m = proc_memory(f.agent_process(0).pid());
  json j{{"bench", "agent_rss"},
         {"runtime", runtime},
         {"agreements", 1},
         {"rss_kib", m["Rss"]},
         {"pss_kib", m["Pss"]},
         {"private_clean_kib", m["Private_Clean"]},
         {"private_dirty_kib", m["Private_Dirty"]},
         {"shared_clean_kib", m["Shared_Clean"]},
         {"shared_dirty_kib", m["Shared_Dirty"]},
         {"anonymous_kib", m["Anonymous"]},
         {"hwm_kib", m["VmHWM"]},
         {"threads", m["Threads"]}};
  std::printf("BENCH_JSON %s\n", j.dump().c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "hmq-agent (%s runtime) resident memory by mapping:\n", runtime.c_str());
  print_mappings(f.agent_process(0).pid());
  if (runtime == "docker") {
    f.kill_agent(0);
    (void)hmq::test::shell("docker ps -aq --filter label=hmq.agreement=" + id +
                           " | xargs -r docker rm -f");
    (void)hmq::test::shell("docker network ls -q --filter name=hmq-" + id.substr(0, 12) +
                           " | xargs -r docker network rm");
  }
}

}  // namespace

int main() {
  measure("memory", {});
  struct stat st;
  if (::stat("/var/run/docker.sock", &st) != 0) {
    std::printf("BENCH_JSON %s\n",
                json{{"bench", "agent_rss"}, {"runtime", "docker"}, {"skipped", "no Docker Engine"}}
                    .dump()
                    .c_str());
    return 0;
  }
  hmq::test::example_registry reg;
  if (!reg.start()) {
    std::printf(
        "BENCH_JSON %s\n",
        json{{"bench", "agent_rss"}, {"runtime", "docker"}, {"error", reg.error()}}.dump().c_str());
    return 0;
  }
  fleet_options o;
  o.pattern = "hmq-example";
  o.agent_args = {"--docker-socket", "/var/run/docker.sock"};
  o.publish = [&reg](fleet& f) {
    if (auto e = hmq::test::publish_examples(f, reg); !e.empty())
      std::fprintf(stderr, "%s\n", e.c_str());
  };
  measure("docker", o);
  return 0;
}
