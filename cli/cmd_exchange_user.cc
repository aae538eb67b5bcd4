// `hmq exchange user ...`: users of an organization.
#include <memory>

#include "cli/nouns.h"

namespace hmq::cli {

void add_exchange_user(CLI::App& exchange, command_context& ctx) {
  auto* user = exchange.add_subcommand("user", "Users of an organization");
  user->require_subcommand(1);
  auto name = std::make_shared<std::string>();
  auto pw = std::make_shared<std::string>();
  auto email = std::make_shared<std::string>();
  auto admin = std::make_shared<bool>(false);
  auto* c = user->add_subcommand("create", "Create a user in the org (--org, else the org of -u)");
  c->add_option("user", *name, "User name")->required();
  c->add_option("password", *pw, "Password")->required();
  c->add_option("email", *email, "Email");
  c->add_flag("-A,--admin", *admin, "Make the user an org admin");
  ctx.on_run(c, [&ctx, name, pw, email, admin] {
    fb::UserT u;
    u.org = ctx.target_org();
    u.username = *name;
    u.password = *pw;
    u.email = *email;
    u.admin = *admin;
    fb::ResourceUnion r;
    r.Set(u);
    ctx.create(r, "user " + u.org + "/" + u.username);
  });
  add_resource_verbs(*user, ctx, fb::ResourceKind::user, "user");
}

}  // namespace hmq::cli
