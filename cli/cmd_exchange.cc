// `hmq exchange`: the connection options every exchange command shares, `status`/`version`,
// and the nouns below it (cli/cmd_exchange_*.cc).
#include <chrono>
#include <sstream>

#include "cli/nouns.h"

namespace hmq::cli {

namespace xc = ::hmq::exchange_client;

void add_exchange(CLI::App& app, command_context& ctx) {
  auto* ex = app.add_subcommand(
      "exchange", "Work with the exchange (orgs, users, nodes, agbots, services, patterns)");
  ex->require_subcommand(1);
  auto& conn = ctx.conn();
  ex->add_option("--exchange", conn.broker,
                 "Broker URI the exchange listens behind (env HMQ_EXCHANGE)")
      ->capture_default_str();
  ex->add_option("--exchange-key", conn.exchange_key,
                 "The exchange's public key: base64 or hex, @FILE or a .pub file path (env "
                 "HMQ_EXCHANGE_KEY; hmq-exchange --print-public-key)");
  ex->add_option("-o,--org", conn.org,
                 "Organization to work in (env HMQ_ORG); after list/get use --org");
  ex->add_option("-u,--user-auth", conn.user_auth,
                 "User credentials [org/]user:password (env HMQ_EXCHANGE_USER_AUTH); the superuser "
                 "is root/root:PASSWORD");
  ex->add_option(
      "-n,--node-auth", conn.node_auth,
      "Act as a node: [org/]node:token (env HMQ_EXCHANGE_NODE_AUTH); takes precedence over -u");
  ex->add_option("--timeout", conn.timeout_s, "Seconds to wait for the broker and the exchange")
      ->capture_default_str();
  ex->add_option("--topic-prefix", conn.topic_prefix, "Topic prefix of the deployment")
      ->capture_default_str();

  add_exchange_status(*ex, ctx);
  add_exchange_org(*ex, ctx);
  add_exchange_user(*ex, ctx);
  add_exchange_node(*ex, ctx);
  add_exchange_agbot(*ex, ctx);
  add_exchange_service(*ex, ctx);
  add_exchange_pattern(*ex, ctx);
}

// status / version: any answer from the exchange (even a refusal) proves it is there.
void add_exchange_status(CLI::App& exchange, command_context& ctx) {
  for (const char* name : {"status", "version"}) {
    auto* st = exchange.add_subcommand(name, "Check that the broker and the exchange answer");
    ctx.on_run(st, [&ctx] {
      auto& s = ctx.connect();
      const auto& conn = ctx.conn();
      xc::credentials a = conn.user_auth.empty() && conn.node_auth.empty()
                              ? xc::credentials::user("root", "anonymous", "-")
                              : ctx.auth();
      auto t0 = std::chrono::steady_clock::now();
      auto r = s.try_run<xc::resource_page>([&](xc::client::callback<xc::resource_page> cb) {
        s.client().list_resources(a, fb::ResourceKind::org, "", "", 1, std::move(cb));
      });
      auto ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (!r && !xc::is_refusal(r.code())) throw to_failure(r.err());
      std::ostringstream t;
      t.precision(3);
      t << ms;
      ctx.out() << "exchange answered in " << t.str() << " ms through broker " << conn.broker
                << "\n";
    });
  }
}

}  // namespace hmq::cli
