// `hmq register`, `hmq unregister` and `hmq node status`: this node's registration, through
// the local agent.
#include <fstream>
#include <memory>

#include "cli/agent_control.h"
#include "cli/format.h"

namespace hmq::cli::agent_cli {

namespace {

// `hmq node status` for people: one "field: value" row each.
void print_node_status(std::ostream& out, const json& r) {
  std::vector<std::vector<std::string>> rows;
  if (r.value("registered", false)) {
    rows.push_back(
        {"node:",
         text(r, "node") + (r.value("confirmed", false) ? "" : " (waiting for the exchange)")});
    rows.push_back({"pattern:", text(r, "pattern")});
    rows.push_back({"arch:", text(r, "arch")});
    rows.push_back({"registered:", utc_time(r.value("registered_ms", int64_t{0}))});
  } else {
    rows.push_back({"node:", "not registered"});
  }
  rows.push_back({"broker:", r.value("broker_connected", false) ? "connected" : "disconnected"});
  rows.push_back({"mailbox:", text(r, "mailbox")});
  // Until the broker lets it in, the node's admin needs both to enrol it.
  if (!r.value("broker_connected", false) && r.contains("claim"))
    rows.push_back({"claim:", text(r, "claim")});
  rows.push_back({"agreements:", text(r, "live_agreements") + " live"});
  rows.push_back({"trusted keys:", text(r, "trusted_keys")});
  if (r.contains("counters")) {
    std::string c;
    for (const auto& [k, v] : r["counters"].items())
      c += (c.empty() ? "" : " ") + k + "=" + v.dump();
    rows.push_back({"counters:", c});
  }
  print_table(out, rows);
}

}  // namespace

void add_register(CLI::App& app, const control_context& c) {
  struct args {
    std::string node, token, pattern, input, arch;
  };
  auto a = std::make_shared<args>();
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
  auto socket = add_agent_socket_option(cmd);
  cmd->callback(c.callback([a, socket, &out = c.out, &err = c.err] {
    json req{{"op", "register"}, {"node", a->node}, {"token", a->token}, {"pattern", a->pattern}};
    if (!a->arch.empty()) req["arch"] = a->arch;
    if (!a->input.empty()) {
      std::ifstream f(a->input);
      json ui = json::parse(f, nullptr, false);
      if (ui.is_discarded()) die(err, a->input + ": not valid JSON");
      req["user_input"] = std::move(ui);
    }
    ask(*socket, req, err);
    out << "node " << a->node << " registered for pattern " << a->pattern << "\n";
  }));

  auto* un = app.add_subcommand("unregister",
                                "Cancel every agreement (105) and remove the node's registration");
  auto un_socket = add_agent_socket_option(un);
  un->callback(c.callback([un_socket, &out = c.out, &err = c.err] {
    ask(*un_socket, {{"op", "unregister"}}, err);
    out << "node unregistered\n";
  }));
}

void add_node(CLI::App& app, const control_context& c) {
  auto o = std::make_shared<std::string>();
  auto* cmd =
      sub(app, "node", "This node")
          ->add_subcommand("status", "Registration, broker connection and agreement counters");
  add_list_output_option(cmd, *o, "text");
  auto socket = add_agent_socket_option(cmd);
  cmd->callback(c.callback([socket, o, &out = c.out, &err = c.err] {
    check_output(*o, err);
    json r = ask(*socket, {{"op", "node_status"}}, err);
    r.erase("ok");
    if (*o == "json") {
      out << r.dump(2) << "\n";
      return;
    }
    print_node_status(out, r);
  }));
}

}  // namespace hmq::cli::agent_cli
