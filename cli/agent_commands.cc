#include "cli/agent_commands.h"

#include <ctime>
#include <fstream>
#include <functional>
#include <iomanip>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/format.h"
#include "core/control/control.h"

namespace hmq::cli {
namespace {

using json = nlohmann::json;

struct socket_opt {
  std::string path = default_agent_socket;
};

CLI::App* sub(CLI::App& parent, const std::string& name, const std::string& help) {
  for (auto* s : parent.get_subcommands([](CLI::App*) { return true; }))
    if (s->get_name() == name) return s;
  auto* s = parent.add_subcommand(name, help);
  s->require_subcommand(1);
  return s;
}

void add_socket_option(CLI::App* cmd, const std::shared_ptr<socket_opt>& s) {
  cmd->add_option("--agent-socket", s->path, "Control socket of the local hmq-agent")
      ->envname("HMQ_AGENT_SOCKET")
      ->capture_default_str();
}

// Exit codes as the rest of hmq (cli/commands.h): 1 usage, 2 refused, 3 unreachable.
constexpr int exit_ok = 0, exit_usage = 1, exit_refused = 2, exit_unreachable = 3;

struct command_failed {
  int code;
};

[[noreturn]] void die(std::ostream& err, const std::string& msg, int code = exit_usage) {
  err << "hmq: error: " << msg << "\n";
  throw command_failed{code};
}

// Runs a command body: its exit code (the message is already on `err`).
int exit_code_of(const std::function<void()>& work) {
  try {
    work();
  } catch (const command_failed& f) {
    return f.code;
  }
  return exit_ok;
}

// The CLI11 callback of a command: hand the work to `defer` (the hmq binary runs it after
// parsing) or run it now and report failure as CLI::RuntimeError(code).
std::function<void()> as_callback(std::function<void()> work, const deferred_action& defer) {
  return [work = std::move(work), defer] {
    if (defer) return defer([work] { return exit_code_of(work); });
    if (int rc = exit_code_of(work)) throw CLI::RuntimeError(rc);
  };
}

// One request; a refusal ({"ok": false}) or a transport failure ends the command.
json ask(const std::string& socket, const json& req, std::ostream& err,
         const std::string& hint =
             "the agent at {} (is hmq-agent running? set --agent-socket or HMQ_AGENT_SOCKET)") {
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

void check_output(const std::string& o, std::ostream& err) {
  if (!o.empty() && o != "json" && o != "table") die(err, "-o must be json or table");
}

// The agbot's control socket (hmq-agbot --control-socket), for `hmq agbot ...`.
struct agbot_socket_opt {
  std::string path = default_agbot_socket;
};

void add_agbot_socket_option(CLI::App* cmd, const std::shared_ptr<agbot_socket_opt>& s) {
  cmd->add_option("--agbot-socket", s->path,
                  "Control socket of the hmq-agbot (its --control-socket)")
      ->envname("HMQ_AGBOT_SOCKET")
      ->capture_default_str();
}

const std::string agbot_hint =
    "the agbot at {} (is hmq-agbot running with --control-socket? set --agbot-socket or "
    "HMQ_AGBOT_SOCKET)";

}  // namespace

void add_agent_commands(CLI::App& app, std::ostream& out, std::ostream& err,
                        deferred_action defer) {
  // register
  {
    struct args {
      std::string node, token, pattern, input, arch;
    };
    auto a = std::make_shared<args>();
    auto s = std::make_shared<socket_opt>();
    auto* cmd = app.add_subcommand(
        "register", "Register this node with the exchange for a pattern (through the local agent)");
    cmd->add_option("--node,-n", a->node, "ORG/NODE: the node's org and id in the exchange")
        ->required();
    cmd->add_option("--token,-t", a->token, "The node's token (also HMQ_NODE_TOKEN)")
        ->envname("HMQ_NODE_TOKEN")
        ->required();
    cmd->add_option("--pattern,-p", a->pattern, "ORG/PATTERN to run")->required();
    cmd->add_option("--input,-f", a->input,
                    "Horizon user input JSON file (userInput array or hzn input file)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--arch", a->arch,
                    "Override the node's arch (default: this machine's, in Horizon names)");
    add_socket_option(cmd, s);
    cmd->callback(as_callback(
        [a, s, &out, &err] {
          json req{
              {"op", "register"}, {"node", a->node}, {"token", a->token}, {"pattern", a->pattern}};
          if (!a->arch.empty()) req["arch"] = a->arch;
          if (!a->input.empty()) {
            std::ifstream f(a->input);
            json ui = json::parse(f, nullptr, false);
            if (ui.is_discarded()) die(err, a->input + ": not valid JSON");
            req["user_input"] = std::move(ui);
          }
          ask(s->path, req, err);
          out << "node " << a->node << " registered for pattern " << a->pattern << "\n";
        },
        defer));
  }
  // unregister
  {
    auto s = std::make_shared<socket_opt>();
    auto* cmd = app.add_subcommand(
        "unregister", "Cancel every agreement (105) and remove the node's registration");
    add_socket_option(cmd, s);
    cmd->callback(as_callback(
        [s, &out, &err] {
          ask(s->path, {{"op", "unregister"}}, err);
          out << "node unregistered\n";
        },
        defer));
  }
  // agreement list
  {
    auto s = std::make_shared<socket_opt>();
    auto o = std::make_shared<std::string>();
    auto* cmd = sub(app, "agreement", "Agreements")
                    ->add_subcommand("list", "This node's agreements: state, reason and times");
    cmd->add_option("-o,--output", *o, "json for scripts (default: a table)");
    add_socket_option(cmd, s);
    cmd->callback(as_callback(
        [s, o, &out, &err] {
          check_output(*o, err);
          json r = ask(s->path, {{"op", "agreement_list"}}, err);
          const json& list = r["agreements"];
          if (*o == "json") {
            out << list.dump(2) << "\n";
            return;
          }
          std::vector<std::vector<std::string>> rows{
              {"ID", "STATE", "REASON", "SERVICE", "AGBOT", "ACCEPTED", "FINALIZED", "CANCELLED"}};
          for (const auto& a : list) {
            std::string reason = "-";
            if (a.value("reason", 0) != 0)
              reason = std::to_string(a.value("reason", 0)) + " " + text(a, "reason_text");
            const json& svc = a.contains("service") ? a["service"] : json::object();
            rows.push_back({text(a, "id"), text(a, "state"), reason,
                            text(svc, "url") + "@" + text(svc, "version"), text(a, "agbot"),
                            utc_time(a.value("accepted_ms", int64_t{0})),
                            utc_time(a.value("finalized_ms", int64_t{0})),
                            utc_time(a.value("cancelled_ms", int64_t{0}))});
          }
          if (rows.size() == 1) {
            out << "no agreements\n";
            return;
          }
          print_table(out, rows);
        },
        defer));
  }
  // eventlog list
  {
    auto s = std::make_shared<socket_opt>();
    auto o = std::make_shared<std::string>();
    auto all = std::make_shared<bool>(false);
    auto ag = std::make_shared<std::string>();
    auto* cmd =
        sub(app, "eventlog", "The agent's event log")
            ->add_subcommand("list",
                             "What happened on this node: agreements, deploys, failures, cancels "
                             "(the last 100; --all: every kept event)");
    cmd->add_flag("-a,--all", *all, "Every kept event (the log keeps the last 10,000)");
    cmd->add_option("--agreement", *ag, "Only the events of this agreement id");
    cmd->add_option("-o,--output", *o, "json for scripts (default: a table)");
    add_socket_option(cmd, s);
    cmd->callback(as_callback(
        [s, o, all, ag, &out, &err] {
          check_output(*o, err);
          json req{{"op", "eventlog_list"}, {"all", *all}};
          if (!ag->empty()) req["agreement"] = *ag;
          json r = ask(s->path, req, err);
          const json& list = r["events"];
          if (*o == "json") {
            out << list.dump(2) << "\n";
            return;
          }
          std::vector<std::vector<std::string>> rows{
              {"TIME", "EVENT", "AGREEMENT", "SERVICE", "REASON", "MESSAGE"}};
          for (const auto& e : list) {
            std::string reason = "-";
            if (e.value("reason", 0) != 0)
              reason = std::to_string(e.value("reason", 0)) + " " + text(e, "reason_text");
            rows.push_back({utc_time(e.value("time_ms", int64_t{0})), text(e, "kind"),
                            text(e, "agreement"), text(e, "service"), reason, text(e, "message")});
          }
          if (rows.size() == 1) {
            out << "no events\n";
            return;
          }
          print_table(out, rows);
        },
        defer));
  }
  // node status
  {
    auto s = std::make_shared<socket_opt>();
    auto o = std::make_shared<std::string>();
    auto* cmd =
        sub(app, "node", "This node")
            ->add_subcommand("status", "Registration, broker connection and agreement counters");
    cmd->add_option("-o,--output", *o, "json for scripts (default: text)");
    add_socket_option(cmd, s);
    cmd->callback(as_callback(
        [s, o, &out, &err] {
          check_output(*o, err);
          json r = ask(s->path, {{"op", "node_status"}}, err);
          r.erase("ok");
          if (*o == "json") {
            out << r.dump(2) << "\n";
            return;
          }
          std::vector<std::vector<std::string>> rows;
          if (r.value("registered", false)) {
            rows.push_back(
                {"node:", text(r, "node") +
                              (r.value("confirmed", false) ? "" : " (waiting for the exchange)")});
            rows.push_back({"pattern:", text(r, "pattern")});
            rows.push_back({"arch:", text(r, "arch")});
            rows.push_back({"registered:", utc_time(r.value("registered_ms", int64_t{0}))});
          } else {
            rows.push_back({"node:", "not registered"});
          }
          rows.push_back(
              {"broker:", r.value("broker_connected", false) ? "connected" : "disconnected"});
          rows.push_back({"mailbox:", text(r, "mailbox")});
          rows.push_back({"agreements:", text(r, "live_agreements") + " live"});
          rows.push_back({"trusted keys:", text(r, "trusted_keys")});
          if (r.contains("counters")) {
            std::string c;
            for (const auto& [k, v] : r["counters"].items())
              c += (c.empty() ? "" : " ") + k + "=" + v.dump();
            rows.push_back({"counters:", c});
          }
          print_table(out, rows);
        },
        defer));
  }
  // key import
  {
    auto s = std::make_shared<socket_opt>();
    auto file = std::make_shared<std::string>();
    auto name = std::make_shared<std::string>();
    auto* cmd =
        sub(app, "key", "Keys")
            ->add_subcommand("import",
                             "Trust a publisher's Ed25519 public key for deployment signatures");
    cmd->add_option("-k,--key", *file, "Publisher public key file (one line of base64)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--name", *name, "Name shown in the trust store (default: the file name)");
    add_socket_option(cmd, s);
    cmd->callback(as_callback(
        [s, file, name, &out, &err] {
          std::ifstream f(*file);
          std::string line;
          std::getline(f, line);
          while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
          if (line.empty()) die(err, *file + ": empty key file");
          std::string n = name->empty() ? std::filesystem::path(*file).filename().string() : *name;
          json r = ask(s->path, {{"op", "key_import"}, {"key", line}, {"name", n}}, err);
          out << "trusted publisher key " << text(r, "key") << " (" << n << ")\n";
        },
        defer));
  }
  add_agbot_commands(app, out, err, defer);
}

void add_agbot_commands(CLI::App& app, std::ostream& out, std::ostream& err,
                        deferred_action defer) {
  CLI::App* agreement = sub(*sub(app, "agbot", "The local agbot (through its control socket)"),
                            "agreement", "The agbot's agreements");
  // agbot agreement list
  {
    auto s = std::make_shared<agbot_socket_opt>();
    auto o = std::make_shared<std::string>();
    auto all = std::make_shared<bool>(false);
    auto limit = std::make_shared<size_t>(1000);
    auto* cmd = agreement->add_subcommand(
        "list", "The agbot's live agreements (--all: cancelled ones too, newest first)");
    cmd->add_option("-o,--output", *o, "json for scripts (default: a table)");
    cmd->add_flag("-a,--all", *all, "Include cancelled agreements");
    cmd->add_option("--limit", *limit, "At most this many rows with --all")->capture_default_str();
    add_agbot_socket_option(cmd, s);
    cmd->callback(as_callback(
        [s, o, all, limit, &out, &err] {
          check_output(*o, err);
          json req{{"op", "agreement.list"}};
          if (*all) {
            req["all"] = true;
            req["limit"] = *limit;
          }
          json r = ask(s->path, req, err, agbot_hint);
          const json& list = r["agreements"];
          if (*o == "json") {
            out << list.dump(2) << "\n";
            return;
          }
          std::vector<std::vector<std::string>> rows{
              {"ID", "NODE", "STATE", "REASON", "PATTERN", "SERVICE", "CREATED", "UPDATED"}};
          for (const auto& a : list) {
            std::string reason = "-";
            if (a.value("reason", 0) != 0)
              reason = std::to_string(a.value("reason", 0)) + " " + text(a, "reason_text");
            if (a.contains("node_reason"))
              reason +=
                  " (node: " + text(a, "node_reason") + " " + text(a, "node_reason_text") + ")";
            rows.push_back({text(a, "id"), text(a, "node"), text(a, "state"), reason,
                            text(a, "pattern"), text(a, "service") + "@" + text(a, "version"),
                            utc_time(a.value("created_ms", int64_t{0})),
                            utc_time(a.value("updated_ms", int64_t{0}))});
          }
          if (rows.size() == 1) {
            out << "no agreements\n";
            return;
          }
          print_table(out, rows);
        },
        defer));
  }
  // agbot agreement cancel
  {
    auto s = std::make_shared<agbot_socket_opt>();
    auto id = std::make_shared<std::string>();
    auto* cmd = agreement->add_subcommand(
        "cancel",
        "Cancel a live agreement (206, the node is told) and propose again after the back-off");
    cmd->add_option("id", *id, "Agreement id (from hmq agbot agreement list)")->required();
    add_agbot_socket_option(cmd, s);
    cmd->callback(as_callback(
        [s, id, &out, &err] {
          ask(s->path, {{"op", "agreement.cancel"}, {"id", *id}}, err, agbot_hint);
          out << "agreement " << *id << " cancelled\n";
        },
        defer));
  }
}

}  // namespace hmq::cli
