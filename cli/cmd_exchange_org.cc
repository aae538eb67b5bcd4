// `hmq exchange org ...`: organizations.
#include <algorithm>
#include <memory>

#include "cli/nouns.h"

namespace hmq::cli {

void add_exchange_org(CLI::App& exchange, command_context& ctx) {
  auto* org = exchange.add_subcommand("org", "Organizations");
  org->require_subcommand(1);
  auto name = std::make_shared<std::string>();
  auto label = std::make_shared<std::string>();
  auto desc = std::make_shared<std::string>();
  auto* c = org->add_subcommand("create", "Create an organization (superuser)");
  c->add_option("name", *name, "Organization id")->required();
  c->add_option("-l,--label", *label, "Label");
  c->add_option("-d,--description", *desc, "Description");
  ctx.on_run(c, [&ctx, name, label, desc] {
    fb::OrgT o;
    o.name = *name;
    o.label = label->empty() ? *name : *label;
    o.description = *desc;
    fb::ResourceUnion r;
    r.Set(std::move(o));
    ctx.create(r, "org " + *name);
  });
  add_resource_verbs(*org, ctx, fb::ResourceKind::org, "org");

  // The node org's half of cross-org service (docs/security.md "Org boundaries").
  for (const bool allow : {true, false}) {
    auto agbot = std::make_shared<std::string>();
    auto* g = org->add_subcommand(
        allow ? "allow-agbot" : "disallow-agbot",
        allow ? "Let an agbot of another org serve this org's nodes (org admin; --org, else the "
                "org of -u). The agbot's org still adds the pattern: agbot addpattern ... NODE_ORG"
              : "Stop an agbot of another org from serving this org's nodes");
    g->add_option("agbot", *agbot, "The agbot: org/id")->required();
    ctx.on_run(g, [&ctx, allow, agbot] {
      if (agbot->find('/') == std::string::npos)
        throw failure{2, "agbot must be org/id (an agbot of another org), got '" + *agbot + "'"};
      const std::string name = ctx.target_org();
      auto r = ctx.call<fb::ResourceUnion>([&](auto& c, auto& a, auto cb) {
        c.get_resource(a, fb::ResourceKind::org, name, "", std::move(cb));
      });
      auto* o = r.AsOrg();
      if (!o) throw failure{1, "the exchange answered something other than an org"};
      auto& list = o->agbots;
      const auto at = std::find(list.begin(), list.end(), *agbot);
      const bool had = at != list.end();
      if (allow == had) {
        ctx.out() << "org " << name << (allow ? " already lets " : " does not let ") << *agbot
                  << " serve its nodes\n";
        return;
      }
      if (allow)
        list.push_back(*agbot);
      else
        list.erase(at);
      ctx.call_void([&](auto& c, auto& a, auto cb) { c.update_resource(a, r, std::move(cb)); });
      ctx.out() << "org " << name << (allow ? " lets " : " no longer lets ") << *agbot
                << " serve its nodes\n";
    });
  }
}

}  // namespace hmq::cli
