#include "cli/commands.h"

#include <CLI/CLI.hpp>
#include <memory>
#include <ostream>

#include "cli/agent_commands.h"
#include "cli/command_context.h"
#include "cli/nouns.h"
#include "core/log/log.h"

namespace hmq::cli {

namespace {

// The command tree: one call per noun, in the order `hmq --help` lists them (docs/cli.md
// "Adding a command").
void build(CLI::App& app, command_context& ctx) {
  app.fallthrough();
  app.require_subcommand(1);
  // A command's output is its answer: bus chatter (connects, reconnects) only with -v.
  core::log::set_level("warn");
  auto verbose = std::make_shared<bool>(false);
  app.add_flag("-v,--verbose", *verbose, "Log bus activity to stderr")
      ->each([](const std::string&) { core::log::set_level("debug"); });

  add_key(app, ctx);
  add_agent_commands(app, ctx.out(), ctx.err(),
                     [&ctx](std::function<int()> f) { ctx.on_agent_run(std::move(f)); });
  add_exchange(app, ctx);
  add_rollout(app, ctx);
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  command_context ctx(out, err);
  CLI::App app("hmq: command line for Horizon-MQ (modelled on Open Horizon's hzn)", "hmq");
  build(app, ctx);
  std::vector<std::string> rev(args.rbegin(), args.rend());
  if (!rev.empty()) rev.pop_back();  // program name
  try {
    app.parse(rev);
  } catch (const CLI::CallForHelp& e) {
    out << app.help();
    return exit_ok;
  } catch (const CLI::CallForAllHelp& e) {
    out << app.help("", CLI::AppFormatMode::All);
    return exit_ok;
  } catch (const CLI::ParseError& e) {
    // Help of the subcommand that failed, when we know which one it was.
    err << "hmq: error: " << e.what() << "\n(run with --help for usage)\n";
    return exit_usage;
  }
  if (ctx.agent_action()) return ctx.agent_action()();
  if (!ctx.action()) {
    err << app.help();
    return exit_usage;
  }
  try {
    ctx.action()();
  } catch (const failure& f) {
    ctx.close();
    err << "hmq: error: " << f.message << "\n";
    return f.code;
  }
  ctx.close();
  return exit_ok;
}

}  // namespace hmq::cli
