// A real hmq-agent behind a slow, lossy link (issue 8): the agent runs in its own network
// namespace, joined to the host by a veth pair whose both ends carry
// `tc qdisc netem delay 300ms loss 5% rate 64kbit` (or, on a kernel without sch_netem, tbf at
// 64 kbit/s + iptables 5 % random drop per direction, no delay); mosquitto gets a second listener
// on the host end. Measures (1) joining: RegisterNode until the agreement is finalized on agent,
// agbot and exchange, and the workload runs (memory runtime: no image is pulled over the link), and
// (2) idle traffic: bytes on the wire (rx + tx of the host's veth end, i.e. every frame with its
// Ethernet/IP/TCP headers that crossed the link in either direction, from
// /sys/class/net/<veth>/statistics) during `idle_minutes` after the agreement, scaled to a day.
// Needs root (ip netns, tc). Writes bench/results/idle_bytes.dat (minute, bytes) for the plot.
//
// Usage: netem_bench [idle_minutes=10] [hmq-agent flags...]   e.g. netem_bench 5
// --heartbeat-interval 1200
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "core/log/log.h"
#include "tests/support/fleet.h"
#include "tests/support/temp_dir.h"

namespace {

using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

const char* const netem = "netem delay 300ms loss 5% rate 64kbit";

bool sh(const std::string& cmd) {
  if (std::system(cmd.c_str()) == 0) return true;
  std::fprintf(stderr, "netem_bench: failed: %s\n", cmd.c_str());
  return false;
}

uint64_t counter(const std::string& dev, const char* name) {
  std::ifstream in("/sys/class/net/" + dev + "/statistics/" + name);
  uint64_t v = 0;
  in >> v;
  return v;
}

// The namespace and the veth pair; removed again on every exit path.
struct netem_link {
  std::string ns, host_dev, node_dev, host_ip, node_ip;
  bool up = false;
  netem_link() {
    const std::string id = std::to_string(getpid() % 100000);
    ns = "hmqbench" + id;
    host_dev = "hmqh" + id;
    node_dev = "hmqn" + id;
    // A /30 of its own, so two runs at once do not share a route.
    const std::string net = "10.199." + std::to_string(getpid() % 250) + ".";
    host_ip = net + "1";
    node_ip = net + "2";
    up = sh("ip netns add " + ns) &&
         sh("ip link add " + host_dev + " type veth peer name " + node_dev) &&
         sh("ip link set " + node_dev + " netns " + ns) &&
         sh("ip addr add " + host_ip + "/30 dev " + host_dev) &&
         sh("ip link set " + host_dev + " up") &&
         sh("ip -n " + ns + " addr add " + node_ip + "/30 dev " + node_dev) &&
         sh("ip -n " + ns + " link set " + node_dev + " up") &&
         sh("ip -n " + ns + " link set lo up") && shape();
  }
  // netem where the kernel has it; else (this build VM's kernel has no sch_netem) the same rate
  // with tbf and the same loss with iptables' statistic match in both directions, no delay.
  bool shape() {
    if (std::system(("tc qdisc add dev " + host_dev + " root " + netem + " 2>/dev/null").c_str()) ==
        0) {
      method = std::string("tc ") + netem;
      return sh("ip netns exec " + ns + " tc qdisc add dev " + node_dev + " root " + netem);
    }
    method = "tbf rate 64kbit + iptables statistic 5% drop each direction (no sch_netem: no delay)";
    const std::string tbf = " root tbf rate 64kbit burst 1600 latency 2s";
    const std::string drop = " -m statistic --mode random --probability 0.05 -j DROP";
    return sh("tc qdisc add dev " + host_dev + tbf) &&
           sh("ip netns exec " + ns + " tc qdisc add dev " + node_dev + tbf) &&
           sh("ip netns exec " + ns + " iptables -A INPUT" + drop) &&
           sh("ip netns exec " + ns + " iptables -A OUTPUT" + drop);
  }
  std::string method;
  ~netem_link() {
    (void)std::system(("ip link del " + host_dev + " 2>/dev/null").c_str());
    (void)std::system(("ip netns del " + ns + " 2>/dev/null").c_str());
  }
  uint64_t bytes() const { return counter(host_dev, "rx_bytes") + counter(host_dev, "tx_bytes"); }
  uint64_t packets() const {
    return counter(host_dev, "rx_packets") + counter(host_dev, "tx_packets");
  }
};

}  // namespace

int main(int argc, char** argv) {
  const int minutes = argc > 1 ? std::atoi(argv[1]) : 10;
  hmq::core::log::set_level("warn");
  if (geteuid() != 0) {
    std::fprintf(stderr, "netem_bench: needs root (ip netns, tc); skipped\n");
    return 0;
  }
  netem_link l;
  if (!l.up) return 1;
  const int port = hmq::test::free_port();
  hmq::test::fleet_options fo;
  fo.agents = 0;
  fo.log_level = "warn";
  fo.broker_extra_config = {"listener " + std::to_string(port) + " " + l.host_ip};
  fo.agent_wrapper = {"/usr/sbin/ip", "netns", "exec", l.ns};
  fo.agent_broker_uri = "tcp://" + l.host_ip + ":" + std::to_string(port);
  fo.agent_runtime = "memory";
  for (int a = 2; a < argc; ++a) fo.agent_args.push_back(argv[a]);
  hmq::test::fleet f(fo);
  const uint64_t b_connect0 = l.bytes();
  const auto t_connect0 = clk::now();
  f.add_agent();  // connects over the link (start_agent waits for broker_connected), trusts the
                  // publisher
  const double connect_s = std::chrono::duration<double>(clk::now() - t_connect0).count();
  const uint64_t b0 = l.bytes();
  const auto t0 = clk::now();
  auto r = f.register_node(0);
  const std::string id = r.exit == 0 ? f.wait_finalized_everywhere(0, 600s) : "";
  if (id.empty()) {
    std::fprintf(stderr, "netem_bench: no agreement over the link (register exit %d)\n%s%s\n",
                 r.exit, r.err.c_str(), f.logs().c_str());
    return 1;
  }
  const double join_s = std::chrono::duration<double>(clk::now() - t0).count();
  const uint64_t join_bytes = l.bytes() - b0;
  std::printf(
      "join over the slow link (%s): connect %.1f s (%llu B), register -> agreement finalized "
      "everywhere %.1f s (%llu B on the wire)\n",
      l.method.c_str(), connect_s, static_cast<unsigned long long>(b0 - b_connect0), join_s,
      static_cast<unsigned long long>(join_bytes));
  std::printf(
      "BENCH_JSON {\"name\":\"join_over_slow_link\",\"what\":\"register -> agreement finalized "
      "everywhere\","
      "\"link\":\"%s\",\"connect_s\":%.2f,\"join_s\":%.2f,\"join_bytes\":%llu}\n",
      l.method.c_str(), connect_s, join_s, static_cast<unsigned long long>(join_bytes));
  std::fflush(stdout);

  // Idle: nothing happens but what the agent and the broker do on their own.
  std::this_thread::sleep_for(5s);  // let the last acknowledgements of the join settle
  std::string suffix;
  for (int a = 2; a < argc; ++a) suffix += std::string(a == 2 ? "" : "_") + argv[a];
  const std::string dat =
      std::string(HMQ_SOURCE_DIR) + "/bench/results/idle_bytes" + suffix + ".dat";
  std::ofstream out(dat);
  const uint64_t i0 = l.bytes(), p0 = l.packets();
  out << "0 0\n";
  for (int m = 1; m <= minutes; ++m) {
    std::this_thread::sleep_for(60s);
    out << m << " " << (l.bytes() - i0) << "\n" << std::flush;
    std::fprintf(stderr, "netem_bench: idle minute %d: %llu B\n", m,
                 static_cast<unsigned long long>(l.bytes() - i0));
  }
  const uint64_t idle = l.bytes() - i0, pk = l.packets() - p0;
  const double per_day = static_cast<double>(idle) * 1440.0 / minutes;
  std::printf(
      "idle agent: %llu B in %d min (%llu frames) -> %.0f B/day (%.1f KB/day; target <= 100 "
      "KB/day)\n",
      static_cast<unsigned long long>(idle), minutes, static_cast<unsigned long long>(pk), per_day,
      per_day / 1000);
  std::printf(
      "BENCH_JSON {\"name\":\"idle_bytes_per_day\",\"what\":\"idle hmq-agent, rx+tx frames on the "
      "veth, "
      "scaled to 24 h\",\"minutes\":%d,\"bytes\":%llu,\"frames\":%llu,\"bytes_per_day\":%.0f}\n",
      minutes, static_cast<unsigned long long>(idle), static_cast<unsigned long long>(pk), per_day);
  return 0;
}
