#pragma once

#include <iostream>

#include <CLI/CLI.hpp>

// `hmq` commands that talk to the local agent over its control socket (docs/agent.md):
//   hmq register --node ORG/NODE --token T --pattern ORG/PATTERN [--input user-input.json] [--arch A]
//   hmq unregister
//   hmq agreement list [-o json]
//   hmq node status [-o json]
//   hmq key import -k publisher.pub [--name N]
// Each takes --agent-socket (env HMQ_AGENT_SOCKET, default /var/lib/hmq/agent/agent.sock).
// Tables for people, -o json for scripts; errors go to `err` and the command exits non-zero
// (CLI::RuntimeError). Subcommands `agreement`, `node` and `key` are reused if they exist.
namespace hmq::cli {

constexpr const char* default_agent_socket = "/var/lib/hmq/agent/agent.sock";

void add_agent_commands(CLI::App& app, std::ostream& out = std::cout, std::ostream& err = std::cerr);

}  // namespace hmq::cli
