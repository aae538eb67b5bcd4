// `hmq agreement list` and `hmq eventlog list`: what the local agent agreed and did.
#include <memory>

#include "cli/agent_control.h"
#include "cli/format.h"

namespace hmq::cli::agent_cli {

void add_agreement(CLI::App& app, const control_context& c) {
  auto o = std::make_shared<std::string>();
  auto* cmd = sub(app, "agreement", "Agreements")
                  ->add_subcommand("list", "This node's agreements: state, reason and times");
  add_list_output_option(cmd, *o);
  auto socket = add_agent_socket_option(cmd);
  cmd->callback(c.callback([socket, o, &out = c.out, &err = c.err] {
    check_output(*o, err);
    json r = ask(*socket, {{"op", "agreement_list"}}, err);
    print_list(
        out, *o, r["agreements"],
        {"ID", "STATE", "REASON", "SERVICE", "AGBOT", "ACCEPTED", "FINALIZED", "CANCELLED"},
        [](const json& a) -> std::vector<std::string> {
          const json& svc = a.contains("service") ? a["service"] : json::object();
          return {text(a, "id"),
                  text(a, "state"),
                  reason_of(a),
                  text(svc, "url") + "@" + text(svc, "version"),
                  text(a, "agbot"),
                  utc_time(a.value("accepted_ms", int64_t{0})),
                  utc_time(a.value("finalized_ms", int64_t{0})),
                  utc_time(a.value("cancelled_ms", int64_t{0}))};
        },
        "no agreements");
  }));
}

void add_eventlog(CLI::App& app, const control_context& c) {
  auto o = std::make_shared<std::string>();
  auto all = std::make_shared<bool>(false);
  auto ag = std::make_shared<std::string>();
  auto* cmd = sub(app, "eventlog", "The agent's event log")
                  ->add_subcommand("list",
                                   "What happened on this node: agreements, deploys, failures, "
                                   "cancels (the last 100; --all: every kept event)");
  cmd->add_flag("-a,--all", *all, "Every kept event (the log keeps the last 10,000)");
  cmd->add_option("--agreement", *ag, "Only the events of this agreement id");
  add_list_output_option(cmd, *o);
  auto socket = add_agent_socket_option(cmd);
  cmd->callback(c.callback([socket, o, all, ag, &out = c.out, &err = c.err] {
    check_output(*o, err);
    json req{{"op", "eventlog_list"}, {"all", *all}};
    if (!ag->empty()) req["agreement"] = *ag;
    json r = ask(*socket, req, err);
    print_list(
        out, *o, r["events"], {"TIME", "EVENT", "AGREEMENT", "SERVICE", "REASON", "MESSAGE"},
        [](const json& e) -> std::vector<std::string> {
          return {utc_time(e.value("time_ms", int64_t{0})),
                  text(e, "kind"),
                  text(e, "agreement"),
                  text(e, "service"),
                  reason_of(e),
                  text(e, "message")};
        },
        "no events");
  }));
}

}  // namespace hmq::cli::agent_cli
