#include "agbot/app.h"

#include <iostream>
#include <memory>
#include <optional>

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
  core::bus::topics topics{cfg.topic_prefix};
  const std::string mailbox = core::crypto::mailbox_id(keys->pk);

  core::bus::options bo;
  bo.broker_uri = cfg.broker;
  bo.client_id = "hmq-agbot-" + mailbox;  // stable per key: the persistent session follows it
  if (auto r =
          core::bus::apply_credentials(bo, {cfg.mqtt_user, cfg.mqtt_password_file, cfg.ca_file});
      !r)
    return fail(r.err().message());
  if (cfg.mqtt_token_auth) {
    if (bo.username.empty()) bo.username = mailbox;
    if (bo.password.empty()) bo.password = cfg.token;
  }
  // The exchange creates the agbot's broker client on `agbot create --mailbox` or AgbotHello, so
  // a refusal may be temporary: keep knocking.
  bo.retry_refused_credentials = !bo.username.empty();
  core::bus::client bus(loop, bo);
  core::wire::codec codec(*keys, loop.time());
  core::bus::messenger messenger(loop, bus, codec, topics);
  exchange_client::client xclient(loop, messenger, *exchange_key, topics);
  exchange_adapter x(xclient, exchange_client::credentials::agbot(cfg.org, cfg.id, cfg.token));
  messenger_outbox out(loop, messenger);

  engine_config ec_cfg;
  ec_cfg.org = cfg.org;
  ec_cfg.id = cfg.id;
  ec_cfg.exchange_key = *exchange_key;
  ec_cfg.reply_timeout = cfg.reply_timeout;
  ec_cfg.retry_min = cfg.retry_min;
  ec_cfg.retry_max = cfg.retry_max;
  ec_cfg.max_concurrent = cfg.max_concurrent;
  ec_cfg.upgrade_timeout = cfg.upgrade_timeout;
  // Group commit (docs/PERFORMANCE.md): the agreement writes of one loop turn share one
  // transaction; the decorators hold what announces them until it is committed.
  core::store::group_commit group(store->db(), loop, {.max_requests = cfg.commit_batch});
  if (cfg.commit_batch > 1) store->use_group(&group);
  group_exchange gx(x, group);
  group_outbox gout(out, group);
  engine eng(loop, ec_cfg, gx, gout, *store, random_agreement_id);

  for (auto type : {fb::Body::Event, fb::Body::Reply, fb::Body::Cancel, fb::Body::AgreementVerify,
                    fb::Body::AgreementVerifyReply})
    messenger.on(type, [&eng](const core::wire::opened& m) { eng.on_message(m); });
  // Exchange responses are never limited (messenger exempts answers to our own requests); every
  // other sender (nodes, or anyone holding broker credentials) gets a token bucket.
  messenger.limit_senders({.rate = cfg.mailbox_rate, .burst = cfg.mailbox_burst}, {},
                          {*exchange_key});

  // `hmq agbot agreement list|cancel` (docs/agbot.md "Control socket").
  std::unique_ptr<core::control::server> control;
  if (!cfg.control_socket.empty()) {
    control = std::make_unique<core::control::server>(
        loop.io(), cfg.control_socket,
        [&eng, &store, &messenger, &codec, &group](const core::control::json& req,
                                                   core::control::reply_fn reply) {
          const auto op = req.value("op", std::string{});
          if (op == "stats") {
            // What the mailbox dropped and why (docs/security.md "Counters").
            core::control::json rejected = core::control::json::object();
            for (size_t e = 1; e < static_cast<size_t>(core::wire::errc::count_); ++e)
              rejected[std::string(core::wire::name(static_cast<core::wire::errc>(e)))] =
                  codec.stats().get(static_cast<core::wire::errc>(e));
            return reply(core::control::ok_response(
                {{"accepted", codec.stats().accepted()},
                 {"rejected", rejected},
                 {"dropped_rejected", messenger.dropped_rejected()},
                 {"dropped_oversize", messenger.dropped_oversize()},
                 {"dropped_rate_limited", messenger.dropped_rate_limited()},
                 {"dropped_unrouted", messenger.dropped_unrouted()},
                 // Group commit: fsyncs of agbot.db (store_commits) against writes made.
                 {"store_commits", store->db().commits()},
                 {"store_writes", group.stats().requests},
                 {"store_groups", group.stats().groups}}));
          }
          if (op == "agreement.cancel") {
            const auto id = req.value("id", std::string{});
            if (!eng.cancel_agreement(id))
              return reply(core::control::error_response("no live agreement '" + id + "'"));
            return reply(core::control::ok_response({}));
          }
          if (op == "rollout.status") {
            // Rollouts as the agbot sees them, plus the largest number of upgrades it ever had
            // in flight at once (tests assert max_in_flight with it).
            core::control::json list = core::control::json::array();
            for (const auto& st : eng.rollouts().status()) {
              core::control::json versions = core::control::json::array();
              for (const auto& v : st.versions)
                if (v)
                  versions.push_back({{"version", v->version},
                                      {"running", v->running},
                                      {"upgraded", v->upgraded},
                                      {"in_progress", v->in_progress},
                                      {"pending", v->pending},
                                      {"failed", v->failed},
                                      {"rolled_back", v->rolled_back}});
              list.push_back({{"pattern", st.pattern},
                              {"service", st.service_org + "/" + st.service_url},
                              {"state", fb::EnumNameRolloutState(st.state)},
                              {"target", st.target_version},
                              {"failed_nodes", st.failed_nodes},
                              {"open_nodes", st.open_nodes},
                              {"versions", std::move(versions)}});
            }
            return reply(
                core::control::ok_response({{"rollouts", std::move(list)},
                                            {"peak_in_flight", eng.rollouts().peak_in_flight()},
                                            {"in_flight", eng.rollouts().in_flight()}}));
          }
          if (op != "agreement.list")
            return reply(core::control::error_response("unknown op '" + op + "'"));
          core::control::json list = core::control::json::array();
          if (req.value("all", false)) {
            auto rows = store->list(req.value("limit", size_t{1000}));
            if (!rows) return reply(core::control::error_response(rows.err().message()));
            for (const auto& a : *rows) list.push_back(agreement_json(a, eng.node_reason(a.id)));
          } else {
            for (const auto& a : eng.live_agreements())
              list.push_back(agreement_json(a, eng.node_reason(a.id)));
          }
          reply(core::control::ok_response({{"agreements", std::move(list)}}));
        });
    if (auto r = control->start(); !r) return fail("control socket: " + r.err().message());
  }

  int exit_code = 0;
  auto shutdown = [&] {
    (void)group.flush();
    eng.stop();
    if (control) control->stop();
    messenger.stop();
    bus.stop();
    loop.stop();
  };
  loop.on_signals([&](int sig) {
    log->info(
        "signal {}: stopping; group commit: {} writes in {} groups (largest {}), {} failed; {} "
        "store commits in all",
        sig, group.stats().requests, group.stats().groups, group.stats().largest,
        group.stats().failed_groups, store->db().commits());
    shutdown();
  });
  loop.post([&] {
    messenger.start();
    bus.start([&](core::result<void> r) {
      if (!r && bo.retry_refused_credentials && r.code() == core::bus::errc::not_authorized) {
        log->warn(
            "broker {} refused user {}: waiting for the exchange to provision it (hmq exchange "
            "agbot "
            "create ID:TOKEN --mailbox {}); retrying",
            cfg.broker, bo.username, mailbox);
        // The engine starts on the first successful connect.
        bus.on_connection_change([&, started = false](bool up) mutable {
          if (!up) return;
          if (std::exchange(started, true)) return eng.on_reconnected();
          log->info("agbot {}/{} up, mailbox {}", cfg.org, cfg.id, mailbox);
          eng.start();
        });
        return;
      }
      if (!r) {
        log->error("cannot reach broker {}: {}", cfg.broker, r.err().message());
        exit_code = 3;
        return shutdown();
      }
      log->info("agbot {}/{} up, mailbox {}", cfg.org, cfg.id, mailbox);
      eng.start();
      // After a broker crash: what it lost of the agreement protocol is sent again.
      bus.on_connection_change([&](bool up) {
        if (up) eng.on_reconnected();
      });
    });
  });
  loop.run();
  return exit_code;
}

}  // namespace hmq::agbot
