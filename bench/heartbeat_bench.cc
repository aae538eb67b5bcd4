// 1,000 simulated nodes heartbeating every second into a real mosquitto + hmq-exchange: the
// exchange's CPU (from /proc/PID/stat) and its heartbeat write transactions per second.
//
// Usage: heartbeat_bench [--nodes N] [--seconds S] [--flush-ms MS]
// The nodes are written straight into the exchange's store before it starts (registration is
// not what is measured); one bus client then publishes each node's sealed heartbeat frame once a
// second, spread evenly over the second, exactly as an agent would (minus the topic alias).
// Frames come from the one codec (core/wire/heartbeat.h).
//
// Not on hmq-fleetsim (which sends the agent's real heartbeats now, --heartbeat-interval): the
// fleetsim needs the agbot, 1,000 registrations and agreements first, whose load would have to be
// waited out before the exchange's heartbeat CPU could be measured alone; here the nodes exist in
// the store before the exchange starts and nothing else runs.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/bus/client.h"
#include "core/bus/topics.h"
#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "core/wire/heartbeat.h"
#include "exchange/db.h"
#include "tests/support/fleet.h"
#include "tests/support/mosquitto.h"
#include "tests/support/process.h"

namespace {

namespace crypto = hmq::core::crypto;
namespace bus = hmq::core::bus;
namespace wire = hmq::core::wire;
namespace fb = hmq::wire::fb;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

// utime + stime of a process, in clock ticks.
long long cpu_ticks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = s.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  return utime + stime;
}

struct node_sim {
  std::string topic;
  crypto::shared_key key;
  uint64_t counter = 0;
};

}  // namespace

int main(int argc, char** argv) {
  int nodes = 1000, seconds = 10, flush_ms = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--nodes") == 0) nodes = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--flush-ms") == 0) flush_ms = std::atoi(argv[i + 1]);
  }
  crypto::init();
  fs::path self = fs::read_symlink("/proc/self/exe");
  fs::path exchange_bin = self.parent_path().parent_path() / "exchange" / "hmq-exchange";
  fs::path dir = fs::temp_directory_path() / ("hmq-heartbeat-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir / "data");
  hmq::test::mosquitto_broker broker({.extra_config = {"persistence false"}});

  auto xkeys = crypto::load_or_create_box_keypair(dir / "data" / "exchange.key");
  if (!xkeys) return std::fprintf(stderr, "bench: %s\n", xkeys.err().message().c_str()), 1;
  bus::topics topics;
  std::vector<node_sim> sims;
  {
    auto d = hmq::exchange::db::open(dir / "data" / "exchange.db");
    if (!d) return std::fprintf(stderr, "bench: %s\n", d.err().message().c_str()), 1;
    auto r = d->transaction([&]() -> hmq::core::result<void> {
      fb::OrgT o;
      o.name = "bench";
      if (auto x = d->org_insert(o); !x) return x;
      fb::PatternT p;
      p.org = "bench";
      p.name = "p";
      auto ps = std::make_unique<fb::PatternServiceT>();
      ps->service_org = "bench";
      ps->service_url = "https://bench.example/s";
      ps->node_health = std::make_unique<fb::NodeHealthT>();
      ps->node_health->missing_heartbeat_interval = 60;
      p.services.push_back(std::move(ps));
      if (auto x = d->pattern_put(p, true); !x) return x;
      for (int i = 0; i < nodes; ++i) {
        auto k = crypto::box_keypair::generate();
        fb::NodeT n;
        n.org = "bench";
        n.id = "n" + std::to_string(i);
        n.pattern = "bench/p";
        n.arch = "amd64";
        n.public_key.assign(k.pk.begin(), k.pk.end());
        n.mailbox = crypto::mailbox_id(k.pk);
        if (auto x = d->node_insert(n, "x"); !x) return x;
        sims.push_back({topics.heartbeat(n.mailbox), crypto::precompute(xkeys->pk, k.sk), 0});
      }
      return hmq::core::ok();
    });
    if (!r) return std::fprintf(stderr, "bench: %s\n", r.err().message().c_str()), 1;
  }

  const fs::path log = dir / "exchange.log";
  auto exchange = hmq::test::process::start(
      {.argv = {exchange_bin.string(), "--broker", broker.uri(), "--data-dir",
                (dir / "data").string(), "--root-password", "rootpw", "--hash-strength", "minimum",
                "--log-level", "info", "--heartbeat-flush", std::to_string(flush_ms)},
       .env = {},
       .log_file = log});
  if (!hmq::test::wait_for_log(log, "hmq-exchange ready", 1, 20s))
    return std::fprintf(stderr, "bench: exchange did not start:\n%s\n",
                        hmq::test::read_file(log).c_str()),
           1;

  hmq::core::loop::event_loop loop;
  bus::options bo;
  bo.broker_uri = broker.uri();
  bo.client_id = "hb-bench";
  bo.clean_start = true;
  bus::client client(loop, bo);
  std::promise<void> connected;
  loop.post([&] { client.start([&](hmq::core::result<void>) { connected.set_value(); }); });
  std::thread t([&] { loop.run(); });
  connected.get_future().wait_for(10s);

  // Every 10 ms, send what is due by the clock (nodes per second x elapsed): each node once a
  // second, evenly spread, without drifting when a tick runs late.
  std::atomic<uint64_t> sent{0};
  std::atomic<bool> stop{false};
  hmq::core::loop::timer_handle timer;
  const auto start = std::chrono::steady_clock::now();
  uint64_t next = 0;  // heartbeats sent so far; node = next % nodes
  std::function<void()> arm = [&] {
    timer = loop.call_after(10ms, [&] {
      if (stop) return;
      const double el =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const auto due = static_cast<uint64_t>(el * nodes);
      for (; next < due; ++next) {
        auto& s = sims[next % static_cast<uint64_t>(nodes)];
        bus::publish_options o;
        o.qos = 0;
        client.publish(
            s.topic, wire::seal_frame(wire::frame_kind::heartbeat, ++s.counter, {1, 0}, s.key), o);
        ++sent;
      }
      arm();
    });
  };
  loop.post([&] { arm(); });

  std::this_thread::sleep_for(2s);  // warm-up: every node looked up once
  const long long ticks0 = cpu_ticks(exchange.pid());
  const uint64_t sent0 = sent;
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  const long long ticks1 = cpu_ticks(exchange.pid());
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const uint64_t sent1 = sent;
  stop = true;
  loop.post([&] {
    timer.cancel();
    client.stop();
    loop.stop();
  });
  t.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * flush_ms));
  exchange.kill(SIGTERM);
  exchange.wait_for(20s);

  // The exchange's own count, from its shutdown stats line.
  std::string text = hmq::test::read_file(log);
  std::smatch m;
  std::regex re(R"(heartbeat stats: accepted=(\d+) .* transactions=(\d+) rows_written=(\d+))");
  uint64_t accepted = 0, transactions = 0, rows = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
       ++it) {
    accepted = std::stoull((*it)[1]);
    transactions = std::stoull((*it)[2]);
    rows = std::stoull((*it)[3]);
  }
  const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double cpu_pct = 100.0 * static_cast<double>(ticks1 - ticks0) / hz / elapsed;
  // Transactions over the whole run (warm-up included): the run lasted warm-up + seconds + drain.
  const double run_s = 2.0 + elapsed + 2.0 * flush_ms / 1000.0;
  std::printf("heartbeat bench: %d nodes x 1/s for %.1f s, flush every %d ms\n", nodes, elapsed,
              flush_ms);
  std::printf("  sent %.0f heartbeats/s; exchange accepted %llu in total, CPU %.1f%% of one core\n",
              static_cast<double>(sent1 - sent0) / elapsed,
              static_cast<unsigned long long>(accepted), cpu_pct);
  std::printf("  write transactions: %llu (%.2f/s), rows written %llu\n",
              static_cast<unsigned long long>(transactions),
              static_cast<double>(transactions) / run_s, static_cast<unsigned long long>(rows));
  std::printf(
      "BENCH_JSON {\"name\":\"heartbeat\",\"nodes\":%d,\"interval_s\":1,\"flush_ms\":%d,"
      "\"heartbeats_per_s\":%.1f,\"exchange_cpu_pct\":%.2f,\"accepted\":%llu,"
      "\"transactions_per_s\":%.2f,\"rows_written\":%llu}\n",
      nodes, flush_ms, static_cast<double>(sent1 - sent0) / elapsed, cpu_pct,
      static_cast<unsigned long long>(accepted), static_cast<double>(transactions) / run_s,
      static_cast<unsigned long long>(rows));
  std::fflush(stdout);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
