// Orgs: create, update, get, delete, list.
#include "exchange/handler.h"
#include "exchange/validate.h"
#include "exchange_client/ids.h"

namespace hmq::exchange {

using exchange_client::split_qualified;

step handler::put_org(const void* in, bool insert) {
  auto o = unpack<fb::Org>(in);
  HMQ_CHECK(check_id("name", o.name));
  HMQ_CHECK(check_text("label", o.label, max_name));
  HMQ_CHECK(check_text("description", o.description, max_text));
  HMQ_CHECK(check_count("agbots", o.agbots.size(), 256));
  for (const auto& a : o.agbots) {
    HMQ_CHECK(check_qualified("agbots", a));
    if (split_qualified(a)->org == o.name)
      return invalid("agbots", "'" + a + "' is an agbot of this org: it serves its nodes anyway");
  }
  HMQ_CHECK(may_put(fb::ResourceKind::org, insert, o.name, {}));
  HMQ_CHECK(tx([&]() -> step {
    auto cur = db_.org_get(o.name);
    if (!cur) return internal(cur.err());
    HMQ_CHECK(expect_existing(insert, bool(*cur), "org", o.name));
    auto r = insert ? db_.org_insert(o) : db_.org_update(o);
    if (!r) return internal(r.err());
    return {};
  }));
  set_item(std::move(o));
  return {};
}

step handler::get_org(const key_parts& k) {
  auto o = db_.org_get(k.org);
  if (!o) return internal(o.err());
  if (!*o) return missing(k);
  set_item(std::move(**o));
  return {};
}

// Users, patterns, services, nodes and agbots go with the org; so do their broker identities.
step handler::remove_org(const key_parts& k) {
  if (k.org == "root") return forbidden("org root cannot be deleted");
  HMQ_CHECK(tx([&]() -> step {
    // Patterns and services go with the org: tell the agbots that served them.
    auto pats = db_.blob_list(table::patterns, k.org, "", UINT32_MAX);
    if (!pats) return internal(pats.err());
    for (const auto& r : *pats)
      HMQ_CHECK(
          add_events(address_pattern_event(db_, fb::EventKind::pattern_removed, r.org, r.id)));
    // Its registered nodes go too, possibly from patterns of other orgs.
    auto nodes = db_.blob_list(table::nodes, k.org, "", UINT32_MAX);
    if (!nodes) return internal(nodes.err());
    for (const auto& r : *nodes) {
      auto n = from_blob<fb::Node>(r.blob);
      if (n) HMQ_CHECK(release_broker_user(fb::AuthKind::node, n->org, n->id, n->broker_user));
      if (!n || n->pattern.empty()) continue;
      HMQ_CHECK(
          add_events(address_node_event(db_, fb::EventKind::node_unregistered, *n, n->pattern)));
    }
    auto users = db_.user_identities(k.org);
    if (!users) return internal(users.err());
    for (const auto& u : *users) broker_remove(fb::AuthKind::user, u);
    auto bots = db_.blob_list(table::agbots, k.org, "", UINT32_MAX);
    if (!bots) return internal(bots.err());
    for (const auto& r : *bots)
      if (auto a = from_blob<fb::Agbot>(r.blob))
        HMQ_CHECK(release_broker_user(fb::AuthKind::agbot, a->org, a->id, a->broker_user));
    auto deleted = db_.org_delete(k.org);
    if (!deleted) return internal(deleted.err());
    if (!*deleted) return missing(k);
    return {};
  }));
  s_.cache_.clear();  // every principal of the org is gone
  return {};
}

// Root lists every org; everyone else sees only its own.
step handler::list_orgs(const resource_traits&, const std::string&, const std::string& after,
                        uint32_t limit) {
  fb::ResourceListT page;
  if (!p_.root) {
    auto o = db_.org_get(p_.org);
    if (!o) return internal(o.err());
    if (*o && p_.org > after) {
      auto item = std::make_unique<fb::ResourceItemT>();
      item->resource.Set(std::move(**o));
      page.items.push_back(std::move(item));
    }
    set_result(std::move(page));
    return {};
  }
  auto rows = db_.org_list(after, limit + 1);
  if (!rows) return internal(rows.err());
  for (auto& o : *rows) {
    if (page.items.size() == limit) {
      page.next_page_token = page.items.empty() ? "" : page.items.back()->resource.AsOrg()->name;
      break;
    }
    auto item = std::make_unique<fb::ResourceItemT>();
    item->resource.Set(std::move(o));
    page.items.push_back(std::move(item));
  }
  set_result(std::move(page));
  return {};
}

}  // namespace hmq::exchange
