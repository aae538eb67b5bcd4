// `hmq exchange node ...`: edge nodes, their agreement records and their status as the
// exchange knows them.
#include <memory>
#include <tuple>

#include "cli/format.h"
#include "cli/nouns.h"
#include "cli/resource_view.h"

namespace hmq::cli {

namespace {

using json = nlohmann::json;

void add_create(CLI::App& node, command_context& ctx) {
  auto id_tok = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto arch = std::make_shared<std::string>();
  auto* c = node.add_subcommand("create", "Create a node with its token (as a user of the org)");
  c->add_option("node", *id_tok, "node:token (hzn: -n node:token)")->required();
  c->add_option("--name", *name, "Node name (default: the node id)");
  c->add_option("--arch", *arch, "Node architecture, e.g. amd64");
  auto mailbox = std::make_shared<std::string>();
  auto claim = std::make_shared<std::string>();
  add_mailbox_options(c, *mailbox, *claim, "agent");
  ctx.on_run(c, [&ctx, id_tok, name, arch, mailbox, claim] {
    fb::NodeT n;
    n.org = ctx.target_org();
    std::tie(n.id, n.token) = split_id_token(*id_tok, "node create", "node");
    n.name = name->empty() ? n.id : *name;
    n.arch = *arch;
    n.mailbox = *mailbox;
    n.claim = *claim;
    fb::ResourceUnion r;
    r.Set(n);
    ctx.create(r, "node " + n.org + "/" + n.id);
  });
}

// The exchange's agreement records of one node (ListAgreements): what agents and agbots
// recorded once an agreement was finalized.
void add_agreements(CLI::App& node, command_context& ctx) {
  auto id = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>("table");
  auto* c = node.add_subcommand("agreements", "Agreements the exchange records for a node");
  c->add_option("node", *id, "[org/]node")->required();
  add_output_option(c, *output);
  ctx.on_run(c, [&ctx, id, output] {
    auto key = ctx.qualified(*id);
    const std::string org = key.first, nid = key.second;
    auto recs = ctx.call<std::vector<fb::AgreementRecordT>>(
        [&](auto& c, auto& a, auto cb) { c.list_agreements(a, org, nid, std::move(cb)); });
    ctx.json_or_table(
        *output,
        [&] {
          json arr = json::array();
          for (const auto& r : recs) arr.push_back(agreement_record_json(r));
          return arr;
        },
        [&] {
          if (recs.empty()) {
            ctx.out() << "no agreements\n";
            return;
          }
          std::vector<std::vector<std::string>> rows;
          for (const auto& r : recs) {
            rows.push_back({r.agreement_id, fb::EnumNameAgreementState(r.state), r.pattern,
                            r.service_org + "/" + r.service_url + "@" + r.service_version, r.agbot,
                            utc_time(r.updated_ms)});
          }
          print_table(ctx.out(), {"ID", "STATE", "PATTERN", "SERVICE", "AGBOT", "UPDATED"}, rows);
        });
  });
}

json services_json(const fb::NodeStatusT& ns) {
  json services = json::array();
  if (ns.report)
    for (const auto& sv : ns.report->services)
      if (sv)
        services.push_back({{"agreement_id", sv->agreement_id},
                            {"service_url", sv->service_url},
                            {"service_version", sv->service_version},
                            {"state", fb::EnumNameServiceState(sv->state)},
                            {"restarts", sv->restarts},
                            {"last_error", sv->last_error}});
  return services;
}

void print_node_status(std::ostream& out, const fb::NodeStatusT& ns, const json& services) {
  out << "node " << ns.node_org << "/" << ns.node_id << ": " << (ns.online ? "online" : "offline")
      << "\nlast heartbeat: "
      << (ns.last_heartbeat_ms ? utc_time(ns.last_heartbeat_ms) : std::string("never"))
      << "\nrunning agreements: " << ns.running_agreements
      << "\nstatus reported: " << (ns.received_ms ? utc_time(ns.received_ms) : std::string("never"))
      << "\n";
  if (services.empty()) {
    out << "no services reported\n";
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& sv : services)
    rows.push_back(
        {sv["agreement_id"], sv["service_url"], sv["service_version"], sv["state"],
         std::to_string(sv["restarts"].get<uint32_t>()),
         sv["last_error"].get<std::string>().empty() ? "-" : sv["last_error"].get<std::string>()});
  print_table(out, {"AGREEMENT", "SERVICE", "VERSION", "STATE", "RESTARTS", "LAST ERROR"}, rows);
}

// The node's status as the exchange knows it: liveness from its heartbeats and the services
// of its latest StatusReport.
void add_status(CLI::App& node, command_context& ctx) {
  auto id = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>("table");
  auto* c = node.add_subcommand(
      "status", "A node's liveness and service status (heartbeats, status reports)");
  c->add_option("node", *id, "[org/]node")->required();
  add_output_option(c, *output);
  ctx.on_run(c, [&ctx, id, output] {
    auto key = ctx.qualified(*id);
    const std::string org = key.first, nid = key.second;
    auto ns = ctx.call<fb::NodeStatusT>(
        [&](auto& c, auto& a, auto cb) { c.get_node_status(a, org, nid, std::move(cb)); });
    json services = services_json(ns);
    ctx.json_or_table(
        *output,
        [&] {
          return json{{"node", ns.node_org + "/" + ns.node_id},
                      {"online", ns.online},
                      {"last_heartbeat_ms", ns.last_heartbeat_ms},
                      {"running_agreements", ns.running_agreements},
                      {"reported_ms", ns.report ? ns.report->reported_ms : 0},
                      {"received_ms", ns.received_ms},
                      {"services", services}};
        },
        [&] { print_node_status(ctx.out(), ns, services); });
  });
}

}  // namespace

void add_exchange_node(CLI::App& exchange, command_context& ctx) {
  auto* node = exchange.add_subcommand("node", "Edge nodes");
  node->require_subcommand(1);
  add_create(*node, ctx);
  add_resource_verbs(*node, ctx, fb::ResourceKind::node, "node");
  add_agreements(*node, ctx);
  add_status(*node, ctx);
}

}  // namespace hmq::cli
