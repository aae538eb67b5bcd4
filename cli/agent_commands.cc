#include "cli/agent_commands.h"

#include "cli/agent_control.h"

namespace hmq::cli {

void add_agent_commands(CLI::App& app, std::ostream& out, std::ostream& err,
                        deferred_action defer) {
  const agent_cli::control_context c{out, err, std::move(defer)};
  agent_cli::add_register(app, c);
  agent_cli::add_agreement(app, c);
  agent_cli::add_eventlog(app, c);
  agent_cli::add_node(app, c);
  agent_cli::add_key_import(app, c);
  agent_cli::add_agbot_agreement(app, c);
}

void add_agbot_commands(CLI::App& app, std::ostream& out, std::ostream& err,
                        deferred_action defer) {
  agent_cli::add_agbot_agreement(app, {out, err, std::move(defer)});
}

}  // namespace hmq::cli
