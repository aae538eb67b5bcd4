// Nodes: create, update, get, delete; registration (binds the node's key and mailbox and tells
// the agbots of its pattern) and its status reports.
#include "core/crypto/crypto.h"
#include "exchange/handler.h"
#include "exchange/validate.h"
#include "exchange_client/ids.h"

namespace hmq::exchange {

namespace crypto = core::crypto;
using exchange_client::split_qualified;

step handler::put_node(const void* in, bool insert) {
  auto n = unpack<fb::Node>(in);
  HMQ_CHECK(check_party(n.org, n.id, n.name, n.token, insert));
  if (!n.arch.empty()) HMQ_CHECK(check_arch("arch", n.arch));
  HMQ_CHECK(check_service_user_inputs("user_inputs", n.user_inputs));
  std::string key = n.org + "/" + n.id;
  HMQ_CHECK(may_put(fb::ResourceKind::node, insert, n.org, n.id));
  // On create, `mailbox` names the node's broker identity in advance (the agent's mailbox, from
  // `hmq node status`), so the agent can connect before it registers. docs/security.md.
  party_credentials cred;
  HMQ_CHECK(take_credentials(insert, n.mailbox, n.claim, n.token, cred));
  n.claim.clear();
  fb::NodeT stored;
  HMQ_CHECK(tx([&]() -> step {
    HMQ_CHECK(need_org(n.org));
    auto cur = db_.load<fb::Node>(table::nodes, n.org, n.id);
    HMQ_CHECK(expect_existing(insert, cur.has_value(), "node", key));
    if (insert) {
      if (!cred.enrolled.empty())
        HMQ_CHECK(claim_mailbox(fb::AuthKind::node, n.org, n.id, cred.enrolled, true));
      // Registration state is the exchange's: set only by RegisterNode.
      n.pattern.clear();
      n.public_key.clear();
      n.mailbox.clear();
      n.broker_user = cred.enrolled;
      n.last_heartbeat_ms = 0;
      n.registered_ms = 0;
      stored = n;
      auto r = db_.node_insert(stored, cred.hash);
      if (!r) return internal(r.err());
    } else {
      stored = std::move(*cur);
      stored.name = n.name;
      if (!n.arch.empty()) stored.arch = n.arch;
      stored.user_inputs = std::move(n.user_inputs);
      auto r = db_.node_update(stored, cred.hash);
      if (!r) return internal(r.err());
    }
    return {};
  }));
  credentials_changed(fb::AuthKind::node, insert, stored.org, stored.id, stored.broker_user, cred);
  set_item(std::move(stored));
  return {};
}

// Org writers, the node itself and the agbots serving its pattern.
step handler::get_node(const key_parts& k) {
  auto n = db_.load<fb::Node>(table::nodes, k.org, k.id);
  if (!n) {
    if (!auth_.can_write(k.org)) return auth_.denied("read", k.org);
    return missing(k);
  }
  auto ok = auth_.may_read_node(k.org, k.id, n->pattern);
  if (!ok) return internal(ok.err());
  if (!*ok) return auth_.denied_on("read", "node", shown_key(k));
  set_item(std::move(*n));
  return {};
}

// Its broker client goes too: the broker disconnects it and refuses it from now on.
step handler::remove_node(const key_parts& k) {
  HMQ_CHECK(tx([&]() -> step {
    auto n = db_.load<fb::Node>(table::nodes, k.org, k.id);
    if (!n) return missing(k);
    if (!n->pattern.empty())
      HMQ_CHECK(
          add_events(address_node_event(db_, fb::EventKind::node_unregistered, *n, n->pattern)));
    HMQ_CHECK(release_broker_user(fb::AuthKind::node, n->org, n->id, n->broker_user));
    auto d = db_.row_delete(table::nodes, k.org, k.id);
    if (!d) return internal(d.err());
    return {};
  }));
  s_.cache_.forget(fb::AuthKind::node, k.org, k.id);
  return {};
}

step handler::register_node(const fb::RegisterNode& op) {
  if (p_.kind != fb::AuthKind::node) return forbidden("only a node may register itself");
  if (!crypto::usable_box_key(sender_))
    return invalid("sender_key", "not a usable X25519 public key");
  std::string pattern = str(op.pattern()), arch = str(op.arch()), name = str(op.name());
  HMQ_CHECK(check_qualified("pattern", pattern));
  HMQ_CHECK(check_arch("arch", arch));
  HMQ_CHECK(check_text("name", name, max_name));
  fb::RegisterNodeT full;
  op.UnPackTo(&full);
  HMQ_CHECK(check_service_user_inputs("user_inputs", full.user_inputs));
  auto q = *split_qualified(pattern);
  fb::NodeT stored;
  HMQ_CHECK(tx([&]() -> step {
    auto pat = db_.load<fb::Pattern>(table::patterns, q.org, q.name);
    if (!pat || (!pat->public_ && pat->org != p_.org))
      return invalid("pattern", "pattern '" + pattern + "' not found");
    auto n = db_.load<fb::Node>(table::nodes, p_.org, p_.id);
    if (!n) return not_found("node", p_.str());
    std::string old_pattern = n->pattern;
    if (!old_pattern.empty() && old_pattern != pattern) {
      HMQ_CHECK(
          add_events(address_node_event(db_, fb::EventKind::node_unregistered, *n, old_pattern)));
      if (auto r = db_.agreement_delete_all(n->org, n->id); !r) return internal(r.err());
    }
    n->pattern = pattern;
    n->arch = arch;
    if (!name.empty()) n->name = name;
    n->public_key.assign(sender_.begin(), sender_.end());
    n->mailbox = crypto::mailbox_id(sender_);
    // The broker identity follows the registered key: its mailbox is the username, the token
    // just verified the password. A different earlier identity (another key) is deleted.
    if (n->broker_user != n->mailbox)
      HMQ_CHECK(release_broker_user(fb::AuthKind::node, n->org, n->id, n->broker_user));
    HMQ_CHECK(claim_mailbox(fb::AuthKind::node, n->org, n->id, n->mailbox, true));
    n->broker_user = n->mailbox;
    HMQ_CHECK(broker_ensure_self(fb::AuthKind::node, n->org, n->id, n->broker_user));
    n->user_inputs = std::move(full.user_inputs);
    n->registered_ms = s_.clock_.now_ms();
    if (auto r = db_.node_update(*n, ""); !r) return internal(r.err());
    HMQ_CHECK(add_events(address_node_event(db_, fb::EventKind::node_registered, *n, pattern)));
    stored = std::move(*n);
    return {};
  }));
  set_result(std::move(stored));
  return {};
}

step handler::unregister_node() {
  if (p_.kind != fb::AuthKind::node) return forbidden("only a node may unregister itself");
  fb::NodeT stored;
  HMQ_CHECK(tx([&]() -> step {
    auto n = db_.load<fb::Node>(table::nodes, p_.org, p_.id);
    if (!n) return not_found("node", p_.str());
    if (!n->pattern.empty())
      HMQ_CHECK(
          add_events(address_node_event(db_, fb::EventKind::node_unregistered, *n, n->pattern)));
    if (auto r = db_.agreement_delete_all(n->org, n->id); !r) return internal(r.err());
    n->pattern.clear();
    n->public_key.clear();
    n->mailbox.clear();
    n->registered_ms = 0;
    if (auto r = db_.node_update(*n, ""); !r) return internal(r.err());
    stored = std::move(*n);
    return {};
  }));
  set_result(std::move(stored));
  return {};
}

// Only the node itself stores its status; the report is bounded and re-serialized from the
// verified object form, so nothing unverified is stored.
step handler::put_node_status(const fb::PutNodeStatus& op) {
  if (p_.kind != fb::AuthKind::node)
    return auth_.denied_on("report the status of", "node", p_.str());
  if (!op.report()) return invalid("report", "required");
  fb::StatusReportT r;
  op.report()->UnPackTo(&r);
  HMQ_CHECK(check_count("report.services", r.services.size(), 256));
  for (const auto& sv : r.services) {
    if (!sv) return invalid("report.services", "null entry");
    HMQ_CHECK(check_text("report.services.agreement_id", sv->agreement_id, 128));
    HMQ_CHECK(check_text("report.services.service_url", sv->service_url, 512));
    HMQ_CHECK(check_text("report.services.service_version", sv->service_version, 128));
    if (sv->last_error.size() > 1024) sv->last_error.resize(1024);  // keep the head, not refuse
  }
  const int64_t now = s_.clock_.now_ms();
  auto blob = to_blob<fb::StatusReport>(r);
  HMQ_CHECK(tx([&]() -> step {
    auto n = db_.load<fb::Node>(table::nodes, p_.org, p_.id);
    if (!n) return not_found("node", p_.str());
    if (auto e = db_.node_status_put(p_.org, p_.id, blob, now); !e) return internal(e.err());
    return {};
  }));
  set_empty();
  return {};
}

// The node, org writers and agbots serving its pattern (as for agreement records).
step handler::get_node_status(const fb::GetNodeStatus& op) {
  std::string org = str(op.node_org()), id = str(op.node_id());
  HMQ_CHECK(check_id("node_org", org));
  HMQ_CHECK(check_id("node_id", id));
  std::optional<fb::NodeT> node;
  HMQ_CHECK(auth_.may_touch_agreements(org, id, node));
  auto row = db_.node_status_get(org, id);
  if (!row) return internal(row.err());
  if (!*row) return not_found("node", org + "/" + id);
  fb::NodeStatusT ns;
  ns.node_org = org;
  ns.node_id = id;
  ns.received_ms = (*row)->received_ms;
  ns.last_heartbeat_ms = (*row)->last_heartbeat_ms;
  if (auto rep = from_blob<fb::StatusReport>((*row)->report))
    ns.report = std::make_unique<fb::StatusReportT>(std::move(*rep));
  set_result(std::move(ns));
  return {};
}

}  // namespace hmq::exchange
