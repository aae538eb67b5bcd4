// `list`, `get` and `remove`: the verbs every resource noun of `hmq exchange` has.
#include <memory>

#include "cli/nouns.h"
#include "cli/resource_view.h"

namespace hmq::cli {

namespace {

namespace xc = ::hmq::exchange_client;
using json = nlohmann::json;

// The org and name `id` names: an org is its own org, anything else is [org/]name.
std::pair<std::string, std::string> resource_key(command_context& ctx, fb::ResourceKind kind,
                                                 const std::string& id) {
  return kind == fb::ResourceKind::org ? std::make_pair(id, id) : ctx.qualified(id);
}

}  // namespace

void add_resource_verbs(CLI::App& parent, command_context& ctx, fb::ResourceKind kind,
                        const std::string& noun) {
  auto output = std::make_shared<std::string>("table");
  const std::string org_hint = "; use --org for the org after this subcommand";

  auto* list =
      parent.add_subcommand("list", "List " + noun + "s of the org (--org, else the org of -u)");
  add_output_option(list, *output, org_hint);
  ctx.on_run(list, [&ctx, kind, output] {
    auto org = kind == fb::ResourceKind::org ? std::string() : ctx.target_org();
    auto items = ctx.call<std::vector<fb::ResourceUnion>>(
        [&](auto& c, auto& a, auto cb) { c.list_all_resources(a, kind, org, std::move(cb)); });
    ctx.json_or_table(
        *output,
        [&] {
          json arr = json::array();
          for (const auto& i : items) arr.push_back(resource_json(i));
          return arr;
        },
        [&] {
          std::vector<std::vector<std::string>> rows;
          for (const auto& i : items) rows.push_back(row_of(i));
          print_table(ctx.out(), head_of(kind), rows);
        });
  });

  auto id = std::make_shared<std::string>();
  auto* get = parent.add_subcommand("get", "Show one " + noun);
  get->add_option("id", *id,
                  noun == "service" ? "Service: [org/]id (id = url_version_arch, as in hzn)"
                                    : "[org/]" + noun + " name")
      ->required();
  add_output_option(get, *output, org_hint);
  ctx.on_run(get, [&ctx, kind, id, output] {
    // Plain variables, not structured bindings: clang 14 (the fuzz preset) cannot capture those.
    auto key = resource_key(ctx, kind, *id);
    const std::string org = key.first, name = key.second;
    auto r = ctx.call<fb::ResourceUnion>(
        [&](auto& c, auto& a, auto cb) { c.get_resource(a, kind, org, name, std::move(cb)); });
    ctx.json_or_table(
        *output, [&] { return resource_json(r); }, [&] { print_resource_detail(ctx.out(), r); });
  });

  auto rid = std::make_shared<std::string>();
  auto* remove = parent.add_subcommand("remove", "Remove one " + noun);
  remove->add_option("id", *rid, "[org/]" + noun + " name")->required();
  remove->add_flag("-f,--force")
      ->description("Do not ask (accepted for hzn compatibility; hmq never asks)");
  ctx.on_run(remove, [&ctx, kind, rid, noun] {
    auto key = resource_key(ctx, kind, *rid);
    const std::string org = key.first, name = key.second;
    ctx.call_void(
        [&](auto& c, auto& a, auto cb) { c.delete_resource(a, kind, org, name, std::move(cb)); });
    ctx.out() << noun << " " << (kind == fb::ResourceKind::org ? name : org + "/" + name)
              << " removed\n";
  });
}

void add_mailbox_options(CLI::App* create, std::string& mailbox, std::string& claim,
                         std::string_view party) {
  const std::string who(party);
  auto* m = create->add_option(
      "--mailbox", mailbox,
      "The " + who + "'s mailbox id: the exchange provisions its broker identity now, so the " +
          who + " can connect before it registers (docs/security.md)");
  auto* c = create->add_option("--claim", claim,
                               "The claim the " + who +
                                   " prints next to --mailbox while it waits (started with this "
                                   "token): proves the mailbox's key holder named this token");
  m->needs(c);
  c->needs(m);
}

}  // namespace hmq::cli
