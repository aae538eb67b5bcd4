#pragma once

// What the RPC benchmarks share (exchange_bench, auth_flood_bench): a bus identity on its own
// loop thread, closed-loop clients with their latency percentiles, and the printed lines that
// scripts/bench.sh collects (BENCH_JSON).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/bus/client.h"
#include "core/bus/messenger.h"
#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "core/wire/codec.h"
#include "tests/support/fleet.h"
#include "tests/support/mosquitto.h"
#include "tests/support/process.h"

namespace hmq::bench {

namespace crypto = hmq::core::crypto;
namespace bus = hmq::core::bus;
namespace wire = hmq::core::wire;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// One bus identity on its own loop thread.
struct endpoint {
  hmq::core::loop::event_loop loop;
  crypto::box_keypair keys = crypto::box_keypair::generate();
  wire::codec codec{keys, loop.time()};
  std::unique_ptr<bus::client> client;
  std::unique_ptr<bus::messenger> messenger;
  std::thread thread;

  explicit endpoint(const std::string& uri, bool with_messenger = true) {
    bus::options o;
    o.broker_uri = uri;
    o.client_id = "bench-" + crypto::mailbox_id(keys.pk);
    o.clean_start = true;
    client = std::make_unique<bus::client>(loop, o);
    if (with_messenger) messenger = std::make_unique<bus::messenger>(loop, *client, codec);
    thread = std::thread([this] { loop.run(); });
    std::promise<bool> up;
    loop.post([&] {
      client->start([&](hmq::core::result<void> r) {
        if (r && messenger) messenger->start();
        up.set_value(r.ok());
      });
    });
    if (!up.get_future().get()) std::fprintf(stderr, "bench: connect to %s failed\n", uri.c_str());
  }
  ~endpoint() {
    loop.post([this] {
      if (messenger) messenger->stop();
      client->stop();
      loop.stop();
    });
    thread.join();
  }
};

struct result_line {
  double per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  uint64_t errors = 0;
};

// Runs `clients` closed loops for `dur`: start(i, done) issues one request and calls done(ok)
// on its loop thread when it is answered.
template <typename Start>
inline result_line closed_loop(int clients, std::chrono::milliseconds dur,
                               std::vector<hmq::core::loop::event_loop*> loops, Start start) {
  std::mutex mu;
  std::vector<double> lat;
  std::atomic<uint64_t> count{0}, errors{0};
  std::atomic<bool> stop{false};
  std::atomic<int> running{clients};
  std::promise<void> all_done;
  auto t0 = steady::now();
  std::vector<std::function<void()>> next(clients);
  for (int i = 0; i < clients; ++i) {
    next[i] = [&, i] {
      auto sent = steady::now();
      start(i, [&, i, sent](bool ok) {
        double ms = std::chrono::duration<double, std::milli>(steady::now() - sent).count();
        if (ok) {
          ++count;
          std::lock_guard lk(mu);
          lat.push_back(ms);
        } else {
          ++errors;
        }
        if (stop.load()) {
          if (--running == 0) all_done.set_value();
          return;
        }
        next[i]();
      });
    };
  }
  for (int i = 0; i < clients; ++i) loops[i]->post(next[i]);
  std::this_thread::sleep_for(dur);
  stop = true;
  auto elapsed = std::chrono::duration<double>(steady::now() - t0).count();
  all_done.get_future().wait_for(40s);
  result_line r;
  r.per_second = static_cast<double>(count.load()) / elapsed;
  r.errors = errors.load();
  std::lock_guard lk(mu);
  std::sort(lat.begin(), lat.end());
  if (!lat.empty()) {
    r.p50_ms = lat[lat.size() / 2];
    r.p99_ms = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
  }
  return r;
}

inline void print(const char* what, int clients, const result_line& r) {
  std::printf("%-22s clients=%d  %9.0f round trips/s   p50 %7.3f ms   p99 %7.3f ms   errors %llu\n",
              what, clients, r.per_second, r.p50_ms, r.p99_ms,
              static_cast<unsigned long long>(r.errors));
  // One machine-readable line per figure for scripts/bench.sh (bench/results/latest.json).
  std::printf(
      "BENCH_JSON {\"name\":\"%s\",\"clients\":%d,\"round_trips_per_s\":%.1f,"
      "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"errors\":%llu}\n",
      what, clients, r.per_second, r.p50_ms, r.p99_ms, static_cast<unsigned long long>(r.errors));
  std::fflush(stdout);
}

// A real mosquitto (persistence off: nothing here measures disk) and a real hmq-exchange with
// root/root's password "rootpw", in a temporary directory removed at the end.
struct bench_exchange {
  std::filesystem::path dir;
  std::filesystem::path log;
  std::unique_ptr<hmq::test::mosquitto_broker> broker;
  crypto::box_keypair keys;
  std::optional<hmq::test::process> exchange;

  ~bench_exchange() {
    exchange.reset();
    broker.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

// Starts one for benchmark `name` with Argon2id `strength` and `extra` flags; nullptr (after
// saying why on stderr) when the exchange does not come up.
inline std::unique_ptr<bench_exchange> start_exchange(const std::string& name,
                                                      const std::string& strength,
                                                      const std::vector<std::string>& extra = {}) {
  namespace fs = std::filesystem;
  auto b = std::make_unique<bench_exchange>();
  const fs::path self = fs::read_symlink("/proc/self/exe");
  const fs::path bin = self.parent_path().parent_path() / "exchange" / "hmq-exchange";
  b->dir = fs::temp_directory_path() / ("hmq-" + name + "-" + std::to_string(::getpid()));
  fs::create_directories(b->dir);
  b->broker = std::make_unique<hmq::test::mosquitto_broker>(
      hmq::test::broker_options{.extra_config = {"persistence false"}});
  auto k = crypto::load_or_create_box_keypair(b->dir / "data" / "exchange.key");
  if (!k) {
    std::fprintf(stderr, "bench: %s\n", k.err().message().c_str());
    return nullptr;
  }
  b->keys = std::move(*k);
  b->log = b->dir / "exchange.log";
  std::vector<std::string> argv{
      bin.string(),      "--broker", b->broker->uri(),  "--data-dir", (b->dir / "data").string(),
      "--root-password", "rootpw",   "--hash-strength", strength};
  argv.insert(argv.end(), extra.begin(), extra.end());
  b->exchange.emplace(hmq::test::process::start({.argv = argv, .env = {}, .log_file = b->log}));
  if (!hmq::test::wait_for_log(b->log, "hmq-exchange ready", 1, 60s)) {
    std::fprintf(stderr, "bench: exchange did not start:\n%s\n",
                 hmq::test::read_file(b->log).c_str());
    return nullptr;
  }
  return b;
}

}  // namespace hmq::bench
