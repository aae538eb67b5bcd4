// `hmq exchange org ...`: organizations.
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
}

}  // namespace hmq::cli
