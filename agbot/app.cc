#include "agbot/app.h"

#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <utility>

#include "agbot/agreement_store.h"
#include "agbot/engine.h"
#include "agbot/exchange_adapter.h"
#include "agbot/group_seams.h"
#include "agbot/messenger_outbox.h"
#include "core/bus/client.h"
#include "core/bus/credentials.h"
#include "core/bus/messenger.h"
#include "core/control/control.h"
#include "core/crypto/crypto.h"
#include "core/log/log.h"
#include "core/loop/loop.h"
#include "core/wire/codec.h"
#include "exchange_client/client.h"

namespace hmq::agbot {
namespace {

int fail(const std::string& what) {
  std::cerr << "hmq-agbot: " << what << "\n";
  return 1;
}

core::control::json agreement_json(const agreement& a, std::optional<uint16_t> node_reason) {
  const auto reason = static_cast<fb::CancelReason>(a.reason);
  core::control::json j{{"id", a.id},
                        {"node", a.node()},
                        {"pattern", a.pattern},
                        {"service", a.service_org + "/" + a.service_url},
                        {"version", a.service_version},
                        {"arch", a.arch},
                        {"state", fb::EnumNameAgreementState(a.state)},
                        {"reason", a.reason},
                        {"reason_text", a.reason ? fb::EnumNameCancelReason(reason) : ""},
                        {"created_ms", a.created_ms},
                        {"updated_ms", a.updated_ms}};
  if (!a.supersedes.empty()) j["supersedes"] = a.supersedes;  // an upgrade not verified yet
  if (node_reason) {
    // Why the node said no (a negative reply); the agreement's own reason is then 202.
    j["node_reason"] = *node_reason;
    j["node_reason_text"] = fb::EnumNameCancelReason(static_cast<fb::CancelReason>(*node_reason));
  }
  return j;
}

// Broker options: a client id stable per key, so the persistent session follows the agbot, and
// its broker identity (docs/security.md).
core::result<core::bus::options> bus_options(const app_config& cfg, const std::string& mailbox) {
  core::bus::options bo;
  bo.broker_uri = cfg.broker;
  bo.client_id = "hmq-agbot-" + mailbox;  // stable per key: the persistent session follows it
  if (auto r =
          core::bus::apply_credentials(bo, {cfg.mqtt_user, cfg.mqtt_password_file, cfg.ca_file});
      !r)
    return r.err();
  if (cfg.mqtt_token_auth) {
    if (bo.username.empty()) bo.username = mailbox;
    // The password the exchange provisioned: derived from the token, never the token itself.
    if (bo.password.empty()) {
      auto pw = core::bus::derive_machine_password(mailbox, cfg.token);
      if (!pw) return pw.err();
      bo.password = std::move(*pw);
    }
  }
  // The exchange creates the agbot's broker client on `agbot create --mailbox` or AgbotHello, so
  // a refusal may be temporary: keep knocking.
  bo.retry_refused_credentials = !bo.username.empty();
  return bo;
}

engine_config engine_config_of(const app_config& cfg,
                               const core::crypto::public_key& exchange_key) {
  return {.org = cfg.org,
          .id = cfg.id,
          .exchange_key = exchange_key,
          .reply_timeout = cfg.reply_timeout,
          .retry_min = cfg.retry_min,
          .retry_max = cfg.retry_max,
          .max_concurrent = cfg.max_concurrent,
          .upgrade_timeout = cfg.upgrade_timeout};
}

// Every part of a running agbot, built in the order they depend on each other (and destroyed in
// reverse): bus, messenger, exchange client, the engine's seams behind group commit, the engine,
// and the control socket once start_control() made it.
struct agbot_parts {
  agbot_parts(core::loop::event_loop& loop, const app_config& cfg,
              const core::crypto::box_keypair& keys, const core::crypto::public_key& exchange_key,
              agreement_store& store, core::bus::options bo)
      : bus_opts(std::move(bo)),
        topics{cfg.topic_prefix},
        bus(loop, bus_opts),
        codec(keys, loop.time()),
        messenger(loop, bus, codec, topics),
        xclient(loop, messenger, exchange_key, topics),
        x(xclient, exchange_client::credentials::agbot(cfg.org, cfg.id, cfg.token)),
        out(loop, messenger),
        // Group commit (docs/PERFORMANCE.md): the agreement writes of one loop turn share one
        // transaction; the decorators hold what announces them until it is committed.
        group(store.db(), loop, {.max_requests = cfg.commit_batch}),
        gx(x, group),
        gout(out, group),
        eng(loop, engine_config_of(cfg, exchange_key), gx, gout, store, random_agreement_id) {
    if (cfg.commit_batch > 1) store.use_group(&group);
  }

  void stop(core::loop::event_loop& loop) {
    (void)group.flush();
    eng.stop();
    if (control) control->stop();
    messenger.stop();
    bus.stop();
    loop.stop();
  }

  const core::bus::options bus_opts;
  core::bus::topics topics;
  core::bus::client bus;
  core::wire::codec codec;
  core::bus::messenger messenger;
  exchange_client::client xclient;
  exchange_adapter x;
  messenger_outbox out;
  core::store::group_commit group;
  group_exchange gx;
  group_outbox gout;
  engine eng;
  std::unique_ptr<core::control::server> control;
};

// The engine's mailbox messages, and the flood limit on the mailbox.
void route_mailbox(const app_config& cfg, agbot_parts& p,
                   const core::crypto::public_key& exchange_key) {
  for (auto type : {fb::Body::Event, fb::Body::Reply, fb::Body::Cancel, fb::Body::AgreementVerify,
                    fb::Body::AgreementVerifyReply})
    p.messenger.on(type, [&eng = p.eng](const core::wire::opened& m) { eng.on_message(m); });
  // Nodes send to the agbot's uplink topic (they may not publish to mailboxes).
  p.messenger.listen_uplink();
  // Exchange responses are never limited (messenger exempts answers to our own requests); every
  // other sender (nodes, or anyone holding broker credentials) gets a token bucket.
  p.messenger.limit_senders({.rate = cfg.mailbox_rate, .burst = cfg.mailbox_burst}, {},
                            {exchange_key});
}

// What the mailbox dropped and why (docs/security.md "Counters"), and group commit's work.
core::control::json stats_json(agbot_parts& p, agreement_store& store) {
  core::control::json rejected = core::control::json::object();
  for (size_t e = 1; e < static_cast<size_t>(core::wire::errc::count_); ++e)
    rejected[std::string(core::wire::name(static_cast<core::wire::errc>(e)))] =
        p.codec.stats().get(static_cast<core::wire::errc>(e));
  return {{"accepted", p.codec.stats().accepted()},
          {"rejected", rejected},
          {"dropped_rejected", p.messenger.dropped_rejected()},
          {"dropped_oversize", p.messenger.dropped_oversize()},
          {"dropped_rate_limited", p.messenger.dropped_rate_limited()},
          {"dropped_unrouted", p.messenger.dropped_unrouted()},
          // Group commit: fsyncs of agbot.db (store_commits) against writes made.
          {"store_commits", store.db().commits()},
          {"store_writes", p.group.stats().requests},
          {"store_groups", p.group.stats().groups},
          // The exchange's events (agbot/event_window.h): replays dropped, gaps, resyncs.
          {"events", p.eng.stats().events},
          {"events_replayed", p.eng.stats().events_replayed},
          {"event_gaps", p.eng.stats().event_gaps},
          {"resyncs", p.eng.stats().resyncs},
          {"replay_window_shortened", p.codec.window_shortened()}};
}

// How many of the rollout's nodes are where with one version.
core::control::json version_json(const fb::RolloutVersionStatusT& v) {
  return {{"version", v.version},         {"running", v.running}, {"upgraded", v.upgraded},
          {"in_progress", v.in_progress}, {"pending", v.pending}, {"failed", v.failed},
          {"rolled_back", v.rolled_back}};
}

// One rollout as `hmq agbot rollout status` shows it, with a line per version.
core::control::json rollout_json(const fb::RolloutStatusT& st) {
  core::control::json versions = core::control::json::array();
  for (const auto& v : st.versions)
    if (v) versions.push_back(version_json(*v));
  return {{"pattern", st.pattern},
          {"service", st.service_org + "/" + st.service_url},
          {"state", fb::EnumNameRolloutState(st.state)},
          {"target", st.target_version},
          {"failed_nodes", st.failed_nodes},
          {"open_nodes", st.open_nodes},
          {"versions", std::move(versions)}};
}

// Rollouts as the agbot sees them, plus the largest number of upgrades it ever had in flight at
// once (tests assert max_in_flight with it).
core::control::json rollouts_json(const engine& eng) {
  core::control::json list = core::control::json::array();
  for (const auto& st : eng.rollouts().status()) list.push_back(rollout_json(st));
  return {{"rollouts", std::move(list)},
          {"peak_in_flight", eng.rollouts().peak_in_flight()},
          {"in_flight", eng.rollouts().in_flight()}};
}

// One control request: `hmq agbot agreement list|cancel`, `rollout status`, `stats`
// (docs/agbot.md "Control socket").
void handle_control(agbot_parts& p, agreement_store& store, const core::control::json& req,
                    const core::control::reply_fn& reply) {
  const auto op = req.value("op", std::string{});
  if (op == "stats") return reply(core::control::ok_response(stats_json(p, store)));
  if (op == "agreement.cancel") {
    const auto id = req.value("id", std::string{});
    if (!p.eng.cancel_agreement(id))
      return reply(core::control::error_response("no live agreement '" + id + "'"));
    return reply(core::control::ok_response({}));
  }
  if (op == "rollout.status") return reply(core::control::ok_response(rollouts_json(p.eng)));
  if (op != "agreement.list")
    return reply(core::control::error_response("unknown op '" + op + "'"));
  core::control::json list = core::control::json::array();
  if (req.value("all", false)) {
    auto rows = store.list(req.value("limit", size_t{1000}));
    if (!rows) return reply(core::control::error_response(rows.err().message()));
    for (const auto& a : *rows) list.push_back(agreement_json(a, p.eng.node_reason(a.id)));
  } else {
    for (const auto& a : p.eng.live_agreements())
      list.push_back(agreement_json(a, p.eng.node_reason(a.id)));
  }
  reply(core::control::ok_response({{"agreements", std::move(list)}}));
}

core::result<void> start_control(core::loop::event_loop& loop, const std::filesystem::path& socket,
                                 agbot_parts& p, agreement_store& store) {
  p.control = std::make_unique<core::control::server>(
      loop.io(), socket,
      [&p, &store](const core::control::json& req, core::control::reply_fn reply) {
        handle_control(p, store, req, reply);
      });
  return p.control->start();
}

// Connects to the broker; the engine starts on the first successful connect and resends what a
// crashed broker may have lost on every reconnect. A broker that cannot be reached ends the run
// with exit code 3.
// `enrol`: the command that provisions it (core/bus/credentials.h enrolment_command).
void connect_and_start(const app_config& cfg, agbot_parts& p, const std::string& mailbox,
                       const std::string& enrol, std::function<void(int exit_code)> stop) {
  auto log = core::log::get("agbot");
  p.messenger.start();
  p.bus.start([&cfg, &p, &mailbox, &enrol, log, stop = std::move(stop)](core::result<void> r) {
    if (!r && p.bus_opts.retry_refused_credentials && r.code() == core::bus::errc::not_authorized) {
      log->warn(
          "broker {} refused user {}: waiting for the exchange to provision it ({}); retrying",
          cfg.broker, p.bus_opts.username, enrol);
      // The engine starts on the first successful connect.
      p.bus.on_connection_change([&cfg, &p, &mailbox, log, started = false](bool up) mutable {
        if (!up) return;
        if (std::exchange(started, true)) return p.eng.on_reconnected();
        log->info("agbot {}/{} up, mailbox {}", cfg.org, cfg.id, mailbox);
        p.eng.start();
      });
      return;
    }
    if (!r) {
      log->error("cannot reach broker {}: {}", cfg.broker, r.err().message());
      return stop(3);
    }
    log->info("agbot {}/{} up, mailbox {}", cfg.org, cfg.id, mailbox);
    p.eng.start();
    // After a broker crash: what it lost of the agreement protocol is sent again.
    p.bus.on_connection_change([&p](bool up) {
      if (up) p.eng.on_reconnected();
    });
  });
}

}  // namespace

int run(const app_config& cfg) {
  if (!core::log::set_level(cfg.log_level)) return fail("unknown --log-level " + cfg.log_level);
  auto log = core::log::get("agbot");
  core::crypto::init();

  auto exchange_key = core::crypto::load_public_key(cfg.exchange_key);
  if (!exchange_key) return fail("--exchange-key: " + exchange_key.err().message());
  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  if (ec) return fail("cannot create " + cfg.data_dir.string() + ": " + ec.message());
  auto keys = core::crypto::load_or_create_box_keypair(cfg.data_dir / "agbot.key");
  if (!keys) return fail("key pair: " + keys.err().message());
  auto store = agreement_store::open(cfg.data_dir / "agbot.db");
  if (!store) return fail("agbot.db: " + store.err().message());

  core::loop::event_loop loop;
  const std::string mailbox = core::crypto::mailbox_id(keys->pk);
  auto bo = bus_options(cfg, mailbox);
  if (!bo) return fail(bo.err().message());
  agbot_parts parts(loop, cfg, *keys, *exchange_key, *store, std::move(*bo));
  route_mailbox(cfg, parts, *exchange_key);
  if (!cfg.control_socket.empty())
    if (auto r = start_control(loop, cfg.control_socket, parts, *store); !r)
      return fail("control socket: " + r.err().message());

  int exit_code = 0;
  loop.on_signals([&](int sig) {
    const auto& g = parts.group.stats();
    log->info(
        "signal {}: stopping; group commit: {} writes in {} groups (largest {}), {} failed; {} "
        "store commits in all",
        sig, g.requests, g.groups, g.largest, g.failed_groups, store->db().commits());
    parts.stop(loop);
  });
  const std::string enrol = core::bus::enrolment_command(
      "agbot", mailbox, core::bus::own_mailbox_claim(parts.bus_opts, *keys, *exchange_key));
  loop.post([&] {
    connect_and_start(cfg, parts, mailbox, enrol, [&](int code) {
      exit_code = code;
      parts.stop(loop);
    });
  });
  loop.run();
  return exit_code;
}

}  // namespace hmq::agbot
