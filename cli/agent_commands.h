#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <iostream>

// `hmq` commands that talk to the local agent over its control socket (docs/agent.md):
//   hmq register --node ORG/NODE --token T --pattern ORG/PATTERN [--input user-input.json]
//                [--arch A]
//   hmq unregister
//   hmq agreement list [-o json]
//   hmq eventlog list [-o json] [--all] [--agreement ID]
//   hmq node status [-o json]
//   hmq key import -k publisher.pub [--name N]
//   hmq agbot agreement list [-o json] [--all] | cancel ID   (the agbot's control socket)
// Each takes --agent-socket (env HMQ_AGENT_SOCKET, default /var/lib/hmq/agent/agent.sock).
// Tables for people, -o json for scripts; errors go to `err` with hmq's exit codes (1 usage,
// 2 refused, 3 unreachable). Subcommands `agreement`, `node` and `key` are reused if they exist
// (add these after hmq's own `key` command). One file per noun: cli/cmd_agent_*.cc and
// cli/cmd_agbot.cc, sharing cli/agent_control.h.
namespace hmq::cli {

constexpr const char* default_agent_socket = "/var/lib/hmq/agent/agent.sock";
// Where `hmq agbot ...` looks without --agbot-socket / HMQ_AGBOT_SOCKET (hmq-agbot's control
// socket is off unless --control-socket is given).
constexpr const char* default_agbot_socket = "/var/lib/hmq-agbot/agbot.sock";

// Receives a parsed command's work (returns its exit code) to run after parsing.
using deferred_action = std::function<void(std::function<int()>)>;

// Without `defer` a command runs inside its CLI11 callback and a failure throws
// CLI::RuntimeError(exit code). With it, the callback only hands the work over.
void add_agent_commands(CLI::App& app, std::ostream& out = std::cout, std::ostream& err = std::cerr,
                        deferred_action defer = {});

// `hmq agbot agreement list [-o json] [--all]` and `hmq agbot agreement cancel ID`, through the
// agbot's control socket (--agbot-socket, env HMQ_AGBOT_SOCKET). add_agent_commands adds them too.
void add_agbot_commands(CLI::App& app, std::ostream& out = std::cout, std::ostream& err = std::cerr,
                        deferred_action defer = {});

}  // namespace hmq::cli
