#include "agent/app.h"

#include <malloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "agent/control_api.h"
#include "agent/docker/client.h"
#include "agent/docker/runtime.h"
#include "agent/engine.h"
#include "agent/exchange_adapter.h"
#include "agent/heartbeat.h"
#include "agent/messenger_outbox.h"
#include "core/bus/client.h"
#include "core/bus/credentials.h"
#include "core/bus/messenger.h"
#include "core/control/control.h"
#include "core/crypto/crypto.h"
#include "core/log/log.h"
#include "core/loop/loop.h"
#include "core/wire/codec.h"
#include "exchange_client/client.h"

namespace hmq::agent {
namespace {

int fail(const std::string& what) {
  std::fprintf(stderr, "hmq-agent: %s\n", what.c_str());
  return 1;
}

// The agent is a long-lived, mostly idle daemon on small devices (issue 5: an idle agent with one
// agreement under 10 MB RSS; docs/agent.md "Memory"). One process-wide setting that must come
// before any thread exists: glibc gives each thread that allocates its own malloc arena (up to 8
// per core), and each arena keeps its touched pages resident; the agent's threads allocate
// little, so two do. (For a tcp:// broker, OpenSSL is not even loaded: core/bus/paho.h.)
void trim_process_memory() {
  ::mallopt(M_ARENA_MAX, 2);
}

}  // namespace

int run(const config& c) {
  trim_process_memory();
  if (!core::log::set_level(c.log_level)) return fail("unknown log level " + c.log_level);
  auto lg = core::log::get("agent");
  crypto::init();
  // Everything the agent writes (key, database with the node token, socket) is owner-only.
  ::umask(0077);
  std::error_code ec;
  std::filesystem::create_directories(c.data_dir, ec);
  if (ec) return fail("cannot create data dir " + c.data_dir.string() + ": " + ec.message());

  auto keys = crypto::load_or_create_box_keypair(c.data_dir / "agent.key");
  if (!keys) return fail("node key: " + keys.err().message());
  auto xkey = crypto::load_public_key(c.exchange_key);
  if (!xkey) return fail("--exchange-key: " + xkey.err().message());
  auto store = agent_store::open(c.data_dir / "agent.db");
  if (!store) return fail("agent.db: " + store.err().message());

  core::loop::event_loop loop;
  core::wire::codec codec(*keys, loop.time());
  core::bus::topics topics{c.topic_prefix};
  const std::string mailbox = crypto::mailbox_id(keys->pk);
  core::bus::options bo;
  bo.broker_uri = c.broker;
  bo.client_id =
      "hmq-agent-" + mailbox;  // stable: the persistent session keeps proposals while offline
  // Keep-alive = heartbeat interval: the broker hears from us every interval anyway, so a
  // PINGREQ is only needed when a heartbeat could not go out; the broker declares the node gone
  // (and publishes the offline will) after 1.5 intervals of silence.
  const auto hb_interval =
      std::chrono::milliseconds(static_cast<int64_t>(c.heartbeat_interval_s * 1000));
  bo.keepalive_s = std::max(1, static_cast<int>(std::ceil(c.heartbeat_interval_s)));
  // The engine is built after the bus; the heartbeat reads its live count through this pointer.
  const engine* eng_ptr = nullptr;
  heartbeat_sender hb(
      loop, store->db(), *xkey, keys->sk, mailbox, topics,
      [&eng_ptr] {
        core::wire::heartbeat_body b;
        if (eng_ptr)
          b.running_agreements =
              static_cast<uint16_t>(std::min<size_t>(eng_ptr->live_agreements(), 0xffff));
        return b;
      },
      heartbeat_options{.interval = hb_interval});
  bo.will = hb.will();
  {
    core::bus::credentials_flags cf{c.mqtt_user, c.mqtt_password_file, c.ca_file};
    if (cf.user.empty() && !cf.password_file.empty()) cf.user = mailbox;
    if (auto r = core::bus::apply_credentials(bo, cf); !r) return fail(r.err().message());
  }
  // The exchange may create this node's broker client after the agent starts (or re-create it
  // on registration): keep knocking instead of exiting on a refusal.
  bo.retry_refused_credentials = !bo.username.empty();
  core::bus::client bus(loop, bo);
  core::bus::messenger messenger(loop, bus, codec, topics);
  hmq::exchange_client::client xclient(loop, messenger, *xkey, topics);

  exchange_adapter xa(xclient);
  messenger_outbox out(messenger, loop.time(), static_cast<uint32_t>(c.finalize_timeout_s));
  // The workload runtime: the Docker Engine unless --runtime memory.
  std::unique_ptr<docker::client> dclient;
  std::unique_ptr<runtime> rt_owner;
  if (c.runtime == "docker") {
    dclient = std::make_unique<docker::client>(
        loop, docker::client_options{.socket_path = c.docker_socket});
    docker::runtime_options ro;
    ro.keep_images = c.keep_images;
    ro.crash_limit = c.crash_limit;
    ro.crash_window = std::chrono::seconds(c.crash_window_s);
    ro.engine_wait = std::chrono::seconds(c.docker_wait_s);
    ro.exchange_url = c.exchange_url.empty() ? c.broker : c.exchange_url;
    ro.owner = messenger.mailbox();
    auto drt = std::make_unique<docker::docker_runtime>(loop, *dclient, ro);
    drt->start();
    rt_owner = std::move(drt);
    lg->info("workload runtime: Docker Engine at {}", c.docker_socket);
  } else {
    rt_owner = std::make_unique<memory_runtime>(loop, /*auto_complete=*/true);
    lg->warn("workload runtime: memory (no container will run)");
  }
  runtime& rt = *rt_owner;
  engine_options eo;
  eo.finalize_timeout = std::chrono::seconds(c.finalize_timeout_s);
  eo.upgrade_verify_window =
      std::chrono::milliseconds(static_cast<int64_t>(c.upgrade_verify_window_s * 1000));
  engine eng(loop, *store, xa, out, rt, eo);
  eng_ptr = &eng;
  for (auto type :
       {fb::Body::Proposal, fb::Body::ReplyAck, fb::Body::Cancel, fb::Body::AgreementVerify})
    messenger.on(type, [&eng](const core::wire::opened& m) { eng.on_message(m); });

  if (auto s = eng.start(); !s) return fail("resuming from agent.db: " + s.err().message());

  control_api api(eng,
                  {mailbox, crypto::to_base64(keys->pk), [&bus] { return bus.connected(); },
                   [&codec, &messenger] {
                     json rejected = json::object();
                     for (size_t e = 1; e < static_cast<size_t>(core::wire::errc::count_); ++e)
                       rejected[std::string(core::wire::name(static_cast<core::wire::errc>(e)))] =
                           codec.stats().get(static_cast<core::wire::errc>(e));
                     return json{{"accepted", codec.stats().accepted()},
                                 {"rejected", rejected},
                                 {"dropped_oversize", messenger.dropped_oversize()},
                                 {"dropped_unrouted", messenger.dropped_unrouted()}};
                   }});
  core::control::server ctl(loop.io(), c.socket_path(),
                            [&api](const core::control::json& req, core::control::reply_fn reply) {
                              api.handle(req, std::move(reply));
                            });
  if (auto s = ctl.start(); !s) return fail("control socket: " + s.err().message());

  int exit_code = 0;
  auto shutdown = [&] {
    hb.stop();
    ctl.stop();
    eng.stop();
    messenger.stop();
    bus.stop();
    loop.stop();
  };
  loop.on_signals([&](int sig) {
    lg->info("signal {}: stopping", sig);
    shutdown();
  });
  messenger.start();
  hb.start(bus);
  bus.start([&](result<void> r) {
    if (r) {
      lg->info("connected to {} as mailbox {}", c.broker, mailbox);
      return;
    }
    if (bo.retry_refused_credentials && r.code() == core::bus::errc::not_authorized) {
      lg->warn(
          "broker {} refused user {}: waiting for the exchange to provision it (hmq exchange node "
          "create "
          "NODE:TOKEN --mailbox {}); retrying",
          c.broker, bo.username, mailbox);
      return;
    }
    lg->error("broker {}: {}", c.broker, r.err().message());
    exit_code = 1;
    shutdown();
  });
  lg->info("hmq-agent running: data {} control {}", c.data_dir.string(), c.socket_path().string());
  loop.run();
  return exit_code;
}

}  // namespace hmq::agent
