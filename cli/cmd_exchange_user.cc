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

  // Recording the bus (hmq-replay record) is a right root grants a user explicitly
  // (docs/security.md "Operator identities").
  for (const bool allow : {true, false}) {
    auto who = std::make_shared<std::string>();
    auto* g = user->add_subcommand(
        allow ? "allow-record" : "disallow-record",
        allow ? "Let a user record the whole bus with hmq-replay record (superuser): its broker "
                "identity gets the role hmq-recorder"
              : "Take the right to record the bus from a user (superuser)");
    g->add_option("user", *who, "The user: [org/]name (org: --org, else the org of -u)")
        ->required();
    ctx.on_run(g, [&ctx, allow, who] {
      const auto q = ctx.qualified(*who);
      const std::string& org = q.first;
      const std::string& name = q.second;
      auto r = ctx.call<fb::ResourceUnion>([&](auto& c, auto& a, auto cb) {
        c.get_resource(a, fb::ResourceKind::user, org, name, std::move(cb));
      });
      auto* u = r.AsUser();
      if (!u) throw failure{1, "the exchange answered something other than a user"};
      const std::string key = org + "/" + name;
      if (u->recorder == allow) {
        ctx.out() << "user " << key << (allow ? " may already" : " may not") << " record the bus\n";
        return;
      }
      u->recorder = allow;
      ctx.call_void([&](auto& c, auto& a, auto cb) { c.update_resource(a, r, std::move(cb)); });
      ctx.out() << "user " << key << (allow ? " may now" : " may no longer") << " record the bus\n";
    });
  }
}

}  // namespace hmq::cli
