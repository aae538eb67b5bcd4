// `hmq rollout status ORG/PATTERN [--watch] [-o json]`: what agbots published about the
// pattern's upgrades (PutRolloutStatus), read from the exchange so it works from anywhere.
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cli/nouns.h"
#include "cli/rollout_view.h"

namespace hmq::cli {

namespace {

struct status_args {
  std::string pattern;
  std::string output = "table";
  bool watch = false;
  double interval = 1.0;
  std::string target;
};

// The same connection options as `hmq exchange` (and the same environment variables).
void add_connection_options(CLI::App* st, connection_opts& conn) {
  st->add_option("--exchange", conn.broker,
                 "Broker URI the exchange listens behind (env HMQ_EXCHANGE)");
  st->add_option("--exchange-key", conn.exchange_key,
                 "The exchange's public key: base64 or hex, @FILE or a .pub file path (env "
                 "HMQ_EXCHANGE_KEY; hmq-exchange --print-public-key)");
  st->add_option("--org", conn.org,
                 "Organization of the pattern when it is not qualified (env HMQ_ORG)");
  st->add_option("-u,--user-auth", conn.user_auth,
                 "User credentials [org/]user:password (env HMQ_EXCHANGE_USER_AUTH)");
  st->add_option("-n,--node-auth", conn.node_auth,
                 "Act as a node: [org/]node:token (env HMQ_EXCHANGE_NODE_AUTH)");
  st->add_option("--timeout", conn.timeout_s, "Seconds to wait for the broker and the exchange");
  st->add_option("--topic-prefix", conn.topic_prefix, "Topic prefix of the deployment");
}

// --watch: redraw in place on a terminal, one line per change otherwise (logs, pipes). Returns
// when every rollout settled; throws exit_halted when one halted.
void watch(command_context& ctx, const status_args& args, const std::string& org,
           const std::string& name, const std::function<std::vector<fb::RolloutStatusT>()>& fetch) {
  auto& out = ctx.out();
  const bool tty = &out == &std::cout && ::isatty(STDOUT_FILENO) == 1;
  std::vector<std::string> last;
  size_t drawn = 0;
  for (;;) {
    auto all = fetch();
    std::vector<std::string> lines;
    if (args.output == "json") {
      lines.push_back(rollout_json(all).dump());
    } else if (all.empty()) {
      lines.push_back("waiting for a rollout of " + org + "/" + name +
                      (args.target.empty() ? std::string() : " to " + args.target) + " ...");
    } else {
      for (const auto& r : all) lines.push_back(rollout_progress_line(r));
    }
    if (lines != last) {
      if (tty && drawn > 0) out << "\x1b[" << drawn << "F";  // back to the first line drawn
      for (const auto& l : lines) out << (tty ? "\x1b[2K" : "") << l << "\n";
      out.flush();
      drawn = lines.size();
      last = lines;
    }
    if (rollouts_settled(all)) {
      if (any_halted(all))
        throw failure{exit_halted, "rollout halted: its failure limit was reached"};
      return;
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(static_cast<int64_t>(args.interval * 1000)));
  }
}

void status(command_context& ctx, const status_args& args) {
  auto key = ctx.qualified(args.pattern);
  const std::string org = key.first, name = key.second;
  auto fetch = [&] {
    auto all = ctx.call<std::vector<fb::RolloutStatusT>>(
        [&](auto& c, auto& a, auto cb) { c.get_rollout_status(a, org, name, std::move(cb)); });
    if (!args.target.empty())
      std::erase_if(all,
                    [&](const fb::RolloutStatusT& r) { return r.target_version != args.target; });
    return all;
  };
  if (args.watch) return watch(ctx, args, org, name, fetch);
  auto all = fetch();
  ctx.json_or_table(
      args.output, [&] { return rollout_json(all); },
      [&] {
        if (all.empty())
          ctx.out() << "no rollout for pattern " << org << "/" << name << "\n";
        else
          ctx.out() << rollout_table(all);
      });
}

}  // namespace

void add_rollout(CLI::App& app, command_context& ctx) {
  auto* ro = app.add_subcommand("rollout", "Pattern upgrades rolled out by the agbots");
  ro->require_subcommand(1);
  auto args = std::make_shared<status_args>();
  auto* st =
      ro->add_subcommand("status", "Per version: nodes upgraded, in progress, failed, rolled back");
  st->add_option("pattern", args->pattern, "[org/]pattern")->required();
  add_output_option(st, args->output);
  st->add_flag(
      "-w,--watch", args->watch,
      "Follow the rollout with a progress bar until it completes (exit 0) or halts (exit 4)");
  st->add_option(
      "--target", args->target,
      "Only rollouts to this version (with --watch: wait for it to start, so a rollout that "
      "just finished is not mistaken for the one you published)");
  st->add_option("--interval", args->interval, "Seconds between refreshes with --watch")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  add_connection_options(st, ctx.conn());
  ctx.on_run(st, [&ctx, args] { status(ctx, *args); });
}

}  // namespace hmq::cli
