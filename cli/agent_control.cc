#include "cli/agent_control.h"

#include "cli/format.h"
#include "core/control/control.h"

namespace hmq::cli::agent_cli {

namespace {

// Exit codes as the rest of hmq (cli/commands.h): 1 usage, 2 refused, 3 unreachable.
constexpr int exit_ok = 0, exit_refused = 2, exit_unreachable = 3;

struct command_failed {
  int code;
};

// Runs a command body: its exit code (the message is already on `err`).
int exit_code_of(const std::function<void()>& work) {
  try {
    work();
  } catch (const command_failed& f) {
    return f.code;
  }
  return exit_ok;
}

}  // namespace

const std::string agent_hint =
    "the agent at {} (is hmq-agent running? set --agent-socket or HMQ_AGENT_SOCKET)";
const std::string agbot_hint =
    "the agbot at {} (is hmq-agbot running with --control-socket? set --agbot-socket or "
    "HMQ_AGBOT_SOCKET)";

std::function<void()> control_context::callback(std::function<void()> work) const {
  return [work = std::move(work), defer = defer] {
    if (defer) return defer([work] { return exit_code_of(work); });
    if (int rc = exit_code_of(work)) throw CLI::RuntimeError(rc);
  };
}

CLI::App* sub(CLI::App& parent, const std::string& name, const std::string& help) {
  for (auto* s : parent.get_subcommands([](CLI::App*) { return true; }))
    if (s->get_name() == name) return s;
  auto* s = parent.add_subcommand(name, help);
  s->require_subcommand(1);
  return s;
}

std::shared_ptr<std::string> add_agent_socket_option(CLI::App* cmd) {
  auto path = std::make_shared<std::string>(default_agent_socket);
  cmd->add_option("--agent-socket", *path, "Control socket of the local hmq-agent")
      ->envname("HMQ_AGENT_SOCKET")
      ->capture_default_str();
  return path;
}

std::shared_ptr<std::string> add_agbot_socket_option(CLI::App* cmd) {
  auto path = std::make_shared<std::string>(default_agbot_socket);
  cmd->add_option("--agbot-socket", *path, "Control socket of the hmq-agbot (its --control-socket)")
      ->envname("HMQ_AGBOT_SOCKET")
      ->capture_default_str();
  return path;
}

[[noreturn]] void die(std::ostream& err, const std::string& msg, int code) {
  err << "hmq: error: " << msg << "\n";
  throw command_failed{code};
}

json ask(const std::string& socket, const json& req, std::ostream& err, const std::string& hint) {
  auto r = core::control::call(socket, req);
  if (!r) {
    if (r.code() == core::control::make_error_code(core::control::errc::connect_failed)) {
      std::string where = hint;
      where.replace(where.find("{}"), 2, socket);
      die(err, "cannot reach " + where + ": " + r.err().detail, exit_unreachable);
    }
    die(err, r.err().message(), exit_unreachable);
  }
  if (!(*r)["ok"].get<bool>())
    die(err, (*r).value("error", std::string("request failed")), exit_refused);
  return std::move(*r);
}

std::string text(const json& j, const char* k) {
  auto it = j.find(k);
  if (it == j.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

std::string reason_of(const json& j) {
  if (j.value("reason", 0) == 0) return "-";
  return std::to_string(j.value("reason", 0)) + " " + text(j, "reason_text");
}

void add_list_output_option(CLI::App* cmd, std::string& format, const std::string& fallback) {
  cmd->add_option("-o,--output", format, "json for scripts (default: " + fallback + ")");
}

void check_output(const std::string& o, std::ostream& err) {
  if (!o.empty() && o != "json" && o != "table") die(err, "-o must be json or table");
}

void print_list(std::ostream& out, const std::string& format, const json& list,
                std::vector<std::string> head,
                const std::function<std::vector<std::string>(const json&)>& row,
                const std::string& empty) {
  if (format == "json") {
    out << list.dump(2) << "\n";
    return;
  }
  if (list.empty()) {
    out << empty << "\n";
    return;
  }
  std::vector<std::vector<std::string>> rows{std::move(head)};
  for (const auto& item : list) rows.push_back(row(item));
  print_table(out, rows);
}

}  // namespace hmq::cli::agent_cli
