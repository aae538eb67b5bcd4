#include "agent/app.h"

#include <malloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>

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

// The heartbeat interval, as the broker's keep-alive too (see bus_options).
std::chrono::milliseconds heartbeat_interval(const config& c) {
  return std::chrono::milliseconds(static_cast<int64_t>(c.heartbeat_interval_s * 1000));
}

// Broker options: a client id stable per key (the persistent session keeps proposals while the
// node is offline) and the node's broker identity (docs/security.md). The last will is added by
// agent_parts, from the heartbeat sender.
result<core::bus::options> bus_options(const config& c, const std::string& mailbox) {
  core::bus::options bo;
  bo.broker_uri = c.broker;
  bo.client_id =
      "hmq-agent-" + mailbox;  // stable: the persistent session keeps proposals while offline
  // Keep-alive = heartbeat interval: the broker hears from us every interval anyway, so a
  // PINGREQ is only needed when a heartbeat could not go out; the broker declares the node gone
  // (and publishes the offline will) after 1.5 intervals of silence.
  bo.keepalive_s = std::max(1, static_cast<int>(std::ceil(c.heartbeat_interval_s)));
  core::bus::credentials_flags cf{c.mqtt_user, c.mqtt_password_file, c.ca_file};
  if (cf.user.empty() && !cf.password_file.empty()) cf.user = mailbox;
  if (auto r = core::bus::apply_credentials(bo, cf); !r) return r.err();
  // The node's own identity (username = its mailbox): the file holds the node token, and the
  // broker password is derived from it, as the exchange provisioned it.
  if (bo.username == mailbox && !bo.password.empty()) {
    auto pw = core::bus::derive_machine_password(mailbox, bo.password);
    if (!pw) return pw.err();
    bo.password = std::move(*pw);
  }
  // The exchange may create this node's broker client after the agent starts (or re-create it
  // on registration): keep knocking instead of exiting on a refusal.
  bo.retry_refused_credentials = !bo.username.empty();
  return bo;
}

core::bus::options with_will(core::bus::options bo, std::optional<core::bus::last_will> will) {
  bo.will = std::move(will);
  return bo;
}

// The workload runtime: the Docker Engine unless --runtime memory.
struct workload_runtime {
  std::unique_ptr<docker::client> docker;  // only for the docker runtime
  std::unique_ptr<runtime> rt;
};

workload_runtime make_runtime(core::loop::event_loop& loop, const config& c,
                              const core::bus::messenger& messenger) {
  auto lg = core::log::get("agent");
  workload_runtime w;
  if (c.runtime == "docker") {
    w.docker = std::make_unique<docker::client>(
        loop, docker::client_options{.socket_path = c.docker_socket});
    docker::runtime_options ro;
    ro.keep_images = c.keep_images;
    ro.crash_limit = c.crash_limit;
    ro.crash_window = std::chrono::seconds(c.crash_window_s);
    ro.engine_wait = std::chrono::seconds(c.docker_wait_s);
    ro.exchange_url = c.exchange_url.empty() ? c.broker : c.exchange_url;
    ro.owner = messenger.mailbox();
    auto drt = std::make_unique<docker::docker_runtime>(loop, *w.docker, ro);
    drt->start();
    w.rt = std::move(drt);
    lg->info("workload runtime: Docker Engine at {}", c.docker_socket);
  } else {
    w.rt = std::make_unique<memory_runtime>(loop, /*auto_complete=*/true);
    lg->warn("workload runtime: memory (no container will run)");
  }
  return w;
}

engine_options engine_options_of(const config& c) {
  engine_options eo;
  eo.finalize_timeout = std::chrono::seconds(c.finalize_timeout_s);
  eo.upgrade_verify_window =
      std::chrono::milliseconds(static_cast<int64_t>(c.upgrade_verify_window_s * 1000));
  return eo;
}

// Every part of a running agent, built in the order they depend on each other (and destroyed in
// reverse): the heartbeat before the bus (the bus's options carry its will), then messenger,
// exchange client, runtime and engine.
struct agent_parts {
  agent_parts(core::loop::event_loop& loop, const config& c, const crypto::box_keypair& keys,
              const crypto::public_key& xkey, agent_store& store, const std::string& mailbox,
              core::bus::options bo)
      : codec(keys, loop.time()),
        topics{c.topic_prefix},
        // Reads the engine's live count when it beats, which is only once the bus is up.
        hb(
            loop, store.db(), xkey, keys.sk, mailbox, topics,
            [this] {
              core::wire::heartbeat_body b;
              b.running_agreements =
                  static_cast<uint16_t>(std::min<size_t>(eng.live_agreements(), 0xffff));
              return b;
            },
            heartbeat_options{.interval = heartbeat_interval(c)}),
        bus_opts(with_will(std::move(bo), hb.will())),
        bus(loop, bus_opts),
        messenger(loop, bus, codec, topics),
        xclient(loop, messenger, xkey, topics),
        xa(xclient),
        out(messenger, loop.time(), static_cast<uint32_t>(c.finalize_timeout_s)),
        workloads(make_runtime(loop, c, messenger)),
        eng(loop, store, xa, out, *workloads.rt, engine_options_of(c)) {
    // What the node sends an agbot goes to the agbot's uplink topic (docs/security.md).
    messenger.send_on_uplinks();
    // One sender key cannot fill the mailbox (issue 16); fresh keys are met by the engine's
    // agbot-key lanes. The exchange's answers and events are never limited.
    messenger.limit_senders({.rate = c.mailbox_rate, .burst = c.mailbox_burst}, {}, {xkey});
    for (auto type :
         {fb::Body::Proposal, fb::Body::ReplyAck, fb::Body::Cancel, fb::Body::AgreementVerify})
      messenger.on(type, [this](const core::wire::opened& m) { eng.on_message(m); });
  }

  // What the mailbox dropped before the engine saw it (control_api's node_facts).
  json wire_counters() const {
    json rejected = json::object();
    for (size_t e = 1; e < static_cast<size_t>(core::wire::errc::count_); ++e)
      rejected[std::string(core::wire::name(static_cast<core::wire::errc>(e)))] =
          codec.stats().get(static_cast<core::wire::errc>(e));
    return json{{"accepted", codec.stats().accepted()},
                {"rejected", rejected},
                {"dropped_oversize", messenger.dropped_oversize()},
                {"dropped_unrouted", messenger.dropped_unrouted()},
                {"dropped_rate_limited", messenger.dropped_rate_limited()},
                {"replay_window_shortened", codec.window_shortened()}};
  }

  core::wire::codec codec;
  core::bus::topics topics;
  heartbeat_sender hb;
  const core::bus::options bus_opts;
  core::bus::client bus;
  core::bus::messenger messenger;
  hmq::exchange_client::client xclient;
  exchange_adapter xa;
  messenger_outbox out;
  workload_runtime workloads;
  engine eng;
};

// What the bus's first connect attempt means: connected, waiting for the exchange to provision
// the node's broker client, or a broker that cannot be used (exit code 1).
// `enrol`: the command that provisions it (core/bus/credentials.h enrolment_command).
core::bus::completion on_first_connect(const config& c, agent_parts& p, const std::string& mailbox,
                                       const std::string& enrol,
                                       std::function<void(int exit_code)> stop) {
  return [&c, &p, &mailbox, &enrol, stop = std::move(stop)](result<void> r) {
    auto lg = core::log::get("agent");
    if (r) {
      lg->info("connected to {} as mailbox {}", c.broker, mailbox);
      return;
    }
    if (p.bus_opts.retry_refused_credentials && r.code() == core::bus::errc::not_authorized) {
      lg->warn("broker {} refused user {}: waiting for the exchange to provision it ({}); retrying",
               c.broker, p.bus_opts.username, enrol);
      return;
    }
    lg->error("broker {}: {}", c.broker, r.err().message());
    stop(1);
  };
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
  const std::string mailbox = crypto::mailbox_id(keys->pk);
  auto bo = bus_options(c, mailbox);
  if (!bo) return fail(bo.err().message());
  agent_parts parts(loop, c, *keys, *xkey, *store, mailbox, std::move(*bo));
  if (auto s = parts.eng.start(); !s) return fail("resuming from agent.db: " + s.err().message());

  // What enrols this node (docs/security.md "Mailbox ownership"): shown by `hmq node status`
  // and in the log while the broker refuses it.
  const std::string claim = core::bus::own_mailbox_claim(parts.bus_opts, *keys, *xkey);
  control_api api(parts.eng, {mailbox, crypto::to_base64(keys->pk), claim,
                              [&parts] { return parts.bus.connected(); },
                              [&parts] { return parts.wire_counters(); }});
  core::control::server ctl(loop.io(), c.socket_path(),
                            [&api](const core::control::json& req, core::control::reply_fn reply) {
                              api.handle(req, std::move(reply));
                            });
  if (auto s = ctl.start(); !s) return fail("control socket: " + s.err().message());

  int exit_code = 0;
  auto shutdown = [&] {
    parts.hb.stop();
    ctl.stop();
    parts.eng.stop();
    parts.messenger.stop();
    parts.bus.stop();
    loop.stop();
  };
  loop.on_signals([&](int sig) {
    lg->info("signal {}: stopping", sig);
    shutdown();
  });
  parts.messenger.start();
  parts.hb.start(parts.bus);
  const std::string enrol = core::bus::enrolment_command("node", mailbox, claim);
  parts.bus.start(on_first_connect(c, parts, mailbox, enrol, [&](int code) {
    exit_code = code;
    shutdown();
  }));
  lg->info("hmq-agent running: data {} control {}", c.data_dir.string(), c.socket_path().string());
  loop.run();
  return exit_code;
}

}  // namespace hmq::agent
