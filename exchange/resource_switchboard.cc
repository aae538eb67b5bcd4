// The switchboard: the key directory (a party's public key and mailbox) and the search for the
// nodes of a pattern, which agbots use to find whom to propose to.
#include "exchange/handler.h"
#include "exchange/validate.h"
#include "exchange_client/ids.h"

namespace hmq::exchange {

using exchange_client::split_qualified;

step handler::get_public_key(const fb::ResourceKey* k) {
  key_parts key;
  HMQ_CHECK(parse_key(k, key));
  std::string shown = shown_key(key);
  fb::KeyInfoT info;
  if (key.kind == fb::ResourceKind::node) {
    auto n = db_.load<fb::Node>(table::nodes, key.org, key.id);
    if (!n)
      return auth_.can_write(key.org) ? not_found("node", shown)
                                      : auth_.denied_on("read the key of", "node", shown);
    auto ok = auth_.may_read_node(key.org, key.id, n->pattern);
    if (!ok) return internal(ok.err());
    if (!*ok) return auth_.denied_on("read the key of", "node", shown);
    if (n->public_key.empty()) return not_found("key of node", shown);
    info.public_key = n->public_key;
    info.mailbox = n->mailbox;
  } else if (key.kind == fb::ResourceKind::agbot) {
    auto a = db_.load<fb::Agbot>(table::agbots, key.org, key.id);
    bool ok = auth_.can_write(key.org) || auth_.is_agbot(key.org, key.id) ||
              (p_.kind == fb::AuthKind::agbot && p_.org == key.org);
    if (!ok && a && p_.kind == fb::AuthKind::node) {
      // A node may look up an agbot that serves the node's pattern.
      auto q = split_qualified(auth_.caller_node_pattern());
      if (q) {
        auto serves = db_.agbot_serves(key.org, key.id, q->org, q->name, p_.org);
        if (!serves) return internal(serves.err());
        ok = *serves;
      }
    }
    if (!ok) return auth_.denied_on("read the key of", "agbot", shown);
    if (!a) return not_found("agbot", shown);
    if (a->public_key.empty()) return not_found("key of agbot", shown);
    info.public_key = a->public_key;
    info.mailbox = a->mailbox;
  } else {
    return invalid("key.kind", "must be node or agbot");
  }
  set_result(std::move(info));
  return {};
}

step handler::search_pattern_nodes(const fb::SearchPatternNodes& op) {
  std::string porg = str(op.pattern_org()), pat = str(op.pattern()), norg = str(op.node_org());
  std::string after = str(op.page_token());
  HMQ_CHECK(check_id("pattern_org", porg));
  HMQ_CHECK(check_id("pattern", pat));
  if (norg.empty()) norg = porg;
  HMQ_CHECK(check_id("node_org", norg));
  if (after.size() > max_id) return invalid("page_token", "too long");
  bool ok = auth_.can_write(norg);
  if (!ok && p_.kind == fb::AuthKind::agbot) {
    auto serves = db_.agbot_serves(p_.org, p_.id, porg, pat, norg);
    if (!serves) return internal(serves.err());
    ok = *serves;
  }
  if (!ok) return auth_.denied_on("search nodes of", "pattern", porg + "/" + pat);
  uint32_t limit = page_limit(op.limit());
  auto rows = db_.nodes_of_pattern(porg + "/" + pat, norg, after, limit + 1);
  if (!rows) return internal(rows.err());
  fb::NodeListT l;
  for (auto& n : *rows) {
    if (l.nodes.size() == limit) {
      l.next_page_token = l.nodes.back()->id;
      break;
    }
    l.nodes.push_back(std::make_unique<fb::NodeT>(std::move(n)));
  }
  set_result(std::move(l));
  return {};
}
}  // namespace hmq::exchange
