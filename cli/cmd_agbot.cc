// `hmq agbot agreement list|cancel`: the local agbot's agreements, through its control socket.
#include <memory>

#include "cli/agent_control.h"
#include "cli/format.h"

namespace hmq::cli::agent_cli {

namespace {

std::vector<std::string> agbot_agreement_row(const json& a) {
  std::string reason = reason_of(a);
  if (a.contains("node_reason"))
    reason += " (node: " + text(a, "node_reason") + " " + text(a, "node_reason_text") + ")";
  return {text(a, "id"),
          text(a, "node"),
          text(a, "state"),
          reason,
          text(a, "pattern"),
          text(a, "service") + "@" + text(a, "version"),
          utc_time(a.value("created_ms", int64_t{0})),
          utc_time(a.value("updated_ms", int64_t{0}))};
}

}  // namespace

void add_agbot_agreement(CLI::App& app, const control_context& c) {
  CLI::App* agreement = sub(*sub(app, "agbot", "The local agbot (through its control socket)"),
                            "agreement", "The agbot's agreements");
  auto o = std::make_shared<std::string>();
  auto all = std::make_shared<bool>(false);
  auto limit = std::make_shared<size_t>(1000);
  auto* list = agreement->add_subcommand(
      "list", "The agbot's live agreements (--all: cancelled ones too, newest first)");
  add_list_output_option(list, *o);
  list->add_flag("-a,--all", *all, "Include cancelled agreements");
  list->add_option("--limit", *limit, "At most this many rows with --all")->capture_default_str();
  auto socket = add_agbot_socket_option(list);
  list->callback(c.callback([socket, o, all, limit, &out = c.out, &err = c.err] {
    check_output(*o, err);
    json req{{"op", "agreement.list"}};
    if (*all) {
      req["all"] = true;
      req["limit"] = *limit;
    }
    json r = ask(*socket, req, err, agbot_hint);
    print_list(out, *o, r["agreements"],
               {"ID", "NODE", "STATE", "REASON", "PATTERN", "SERVICE", "CREATED", "UPDATED"},
               agbot_agreement_row, "no agreements");
  }));

  auto id = std::make_shared<std::string>();
  auto* cancel = agreement->add_subcommand(
      "cancel",
      "Cancel a live agreement (206, the node is told) and propose again after the back-off");
  cancel->add_option("id", *id, "Agreement id (from hmq agbot agreement list)")->required();
  auto cancel_socket = add_agbot_socket_option(cancel);
  cancel->callback(c.callback([cancel_socket, id, &out = c.out, &err = c.err] {
    ask(*cancel_socket, {{"op", "agreement.cancel"}, {"id", *id}}, err, agbot_hint);
    out << "agreement " << *id << " cancelled\n";
  }));
}

}  // namespace hmq::cli::agent_cli
