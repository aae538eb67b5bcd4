#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "cli/agent_commands.h"

// What every `hmq` command that talks to a local control socket shares (the agent's, or the
// agbot's for `hmq agbot ...`): the socket option, one request with its errors and exit codes,
// and "print a list as a table or JSON". The nouns are in cli/cmd_agent_*.cc and cmd_agbot.cc;
// agent_commands.cc adds them in order.
namespace hmq::cli::agent_cli {

using json = nlohmann::json;

// Where a command writes and how its work runs (agent_commands.h: deferred_action). Lives as
// long as the CLI::App the commands are added to; the referenced streams must outlive it too.
struct control_context {
  std::ostream& out;
  std::ostream& err;
  deferred_action defer;

  // The CLI11 callback of a command: hand `work` to `defer` (the hmq binary runs it after
  // parsing) or run it now and report failure as CLI::RuntimeError(code).
  std::function<void()> callback(std::function<void()> work) const;
};

// The subcommand `name` of `parent`, added (requiring a subcommand) unless it exists.
CLI::App* sub(CLI::App& parent, const std::string& name, const std::string& help);

// --agent-socket (env HMQ_AGENT_SOCKET) / --agbot-socket (env HMQ_AGBOT_SOCKET) on `cmd`,
// stored in the returned string.
std::shared_ptr<std::string> add_agent_socket_option(CLI::App* cmd);
std::shared_ptr<std::string> add_agbot_socket_option(CLI::App* cmd);

// What "cannot reach" names when a socket does not answer ({} is the socket path).
extern const std::string agent_hint;
extern const std::string agbot_hint;

// Print "hmq: error: msg" and end the command with `code` (1 usage, 2 refused, 3 unreachable).
[[noreturn]] void die(std::ostream& err, const std::string& msg, int code = 1);

// One request; a refusal ({"ok": false}) or a transport failure ends the command.
json ask(const std::string& socket, const json& req, std::ostream& err,
         const std::string& hint = agent_hint);

// The field as text: "" when absent or null, other values as JSON.
std::string text(const json& j, const char* k);
// "-" without a reason code, else "CODE TEXT" (fields reason, reason_text).
std::string reason_of(const json& j);

// `-o,--output` as the control commands have it: "", "table" or "json".
void add_list_output_option(CLI::App* cmd, std::string& format,
                            const std::string& fallback = "a table");
void check_output(const std::string& o, std::ostream& err);

// `list` as JSON for -o json, else a table of `head` and row(item), or `empty` when there are
// no items.
void print_list(std::ostream& out, const std::string& format, const json& list,
                std::vector<std::string> head,
                const std::function<std::vector<std::string>(const json&)>& row,
                const std::string& empty);

// The nouns.
void add_register(CLI::App& app, const control_context& c);         // register, unregister
void add_agreement(CLI::App& app, const control_context& c);        // agreement list
void add_eventlog(CLI::App& app, const control_context& c);         // eventlog list
void add_node(CLI::App& app, const control_context& c);             // node status
void add_key_import(CLI::App& app, const control_context& c);       // key import
void add_agbot_agreement(CLI::App& app, const control_context& c);  // agbot agreement ...

}  // namespace hmq::cli::agent_cli
