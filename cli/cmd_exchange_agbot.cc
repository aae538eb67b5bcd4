// `hmq exchange agbot ...`: agreement bots and the patterns they serve.
#include <memory>
#include <tuple>

#include "cli/nouns.h"

namespace hmq::cli {

namespace {

void add_create(CLI::App& agbot, command_context& ctx) {
  auto id_tok = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto* c = agbot.add_subcommand("create", "Create an agbot with its token");
  c->add_option("agbot", *id_tok, "agbot:token")->required();
  c->add_option("--name", *name, "Agbot name (default: the agbot id)");
  auto mailbox = std::make_shared<std::string>();
  auto claim = std::make_shared<std::string>();
  add_mailbox_options(c, *mailbox, *claim, "agbot");
  ctx.on_run(c, [&ctx, id_tok, name, mailbox, claim] {
    fb::AgbotT ab;
    ab.org = ctx.target_org();
    std::tie(ab.id, ab.token) = split_id_token(*id_tok, "agbot create", "agbot");
    ab.name = name->empty() ? ab.id : *name;
    ab.mailbox = *mailbox;
    ab.claim = *claim;
    fb::ResourceUnion r;
    r.Set(ab);
    ctx.create(r, "agbot " + ab.org + "/" + ab.id);
  });
}

// addpattern (add) or removepattern.
void add_pattern_verb(CLI::App& agbot, command_context& ctx, bool add) {
  auto ag = std::make_shared<std::string>();
  auto porg = std::make_shared<std::string>();
  auto pat = std::make_shared<std::string>();
  auto norg = std::make_shared<std::string>();
  auto* p = agbot.add_subcommand(
      add ? "addpattern" : "removepattern",
      add ? "Let the agbot serve a pattern" : "Stop the agbot serving a pattern");
  p->add_option("agbot", *ag, "[org/]agbot")->required();
  p->add_option("patternorg", *porg, "Org of the pattern")->required();
  p->add_option("pattern", *pat, "Pattern name")->required();
  p->add_option("nodeorg", *norg, "Org of the nodes to serve (default: the pattern org)");
  ctx.on_run(p, [&ctx, add, ag, porg, pat, norg] {
    auto key = ctx.qualified(*ag);
    const std::string aorg = key.first, aid = key.second;
    fb::AgbotPatternT ap;
    ap.pattern_org = *porg;
    ap.pattern = *pat;
    ap.node_org = norg->empty() ? *porg : *norg;
    ctx.call_void([&](auto& c, auto& a, auto cb) {
      if (add) {
        c.agbot_add_pattern(a, aorg, aid, ap, std::move(cb));
      } else {
        c.agbot_remove_pattern(a, aorg, aid, ap, std::move(cb));
      }
    });
    ctx.out() << "agbot " << aorg << "/" << aid << (add ? " serves " : " no longer serves ")
              << ap.pattern_org << "/" << ap.pattern << "\n";
  });
}

}  // namespace

void add_exchange_agbot(CLI::App& exchange, command_context& ctx) {
  auto* agbot = exchange.add_subcommand("agbot", "Agreement bots");
  agbot->require_subcommand(1);
  add_create(*agbot, ctx);
  add_resource_verbs(*agbot, ctx, fb::ResourceKind::agbot, "agbot");
  for (bool add : {true, false}) add_pattern_verb(*agbot, ctx, add);
}

}  // namespace hmq::cli
