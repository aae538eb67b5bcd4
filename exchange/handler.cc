#include "exchange/handler.h"

#include <algorithm>

#include "core/bus/credentials.h"
#include "core/log/log.h"
#include "exchange/validate.h"

namespace hmq::exchange {

namespace crypto = core::crypto;

namespace {

const std::shared_ptr<spdlog::logger>& logger() {
  static const auto l = core::log::get("exchange");
  return l;
}

}  // namespace

handler::handler(service& s, const crypto::public_key& sender)
    : s_(s), db_(s.db_), sender_(sender), auth_(s.db_, s.cache_, sender), p_(auth_.caller()) {}

outcome handler::run(const fb::RpcRequest& req) {
  if (auto e = auth_.authenticate(req.auth())) return fail(*e);
  if (auto e = auth_.check_bound_key(req.op_type())) {
    ++s_.identity_mismatches_;
    return fail(*e);
  }
  step e = dispatch(req);
  if (e) return fail(*e);
  out_.response.status = fb::RpcStatus::ok;
  out_.events = std::move(events_);
  out_.broker = std::move(broker_);
  out_.reply_inbox = p_.inbox;
  return std::move(out_);
}

outcome handler::fail(const rpc_error& e) {
  outcome o;
  o.reply_inbox = p_.inbox;  // empty unless authenticated as a user
  o.response.status = e.status;
  o.response.error_message = e.message;
  o.response.error_field = e.field;
  return o;
}

step handler::dispatch(const fb::RpcRequest& req) {
  // The Verifier accepts a union whose type is set but whose table is absent: every op_as_*()
  // below would then be null (found by tests/fuzz/rpc_request_fuzz.cc).
  if (req.op() == nullptr) return invalid("op", "required");
  switch (req.op_type()) {
    case fb::RpcOp::CreateResource: {
      const auto* op = req.op_as_CreateResource();
      return put(op->resource_type(), op->resource(), true);
    }
    case fb::RpcOp::UpdateResource: {
      const auto* op = req.op_as_UpdateResource();
      return put(op->resource_type(), op->resource(), false);
    }
    case fb::RpcOp::GetResource:
      return get(req.op_as_GetResource()->key());
    case fb::RpcOp::DeleteResource:
      return remove(req.op_as_DeleteResource()->key());
    case fb::RpcOp::ListResources:
      return list(*req.op_as_ListResources());
    case fb::RpcOp::RegisterNode:
      return register_node(*req.op_as_RegisterNode());
    case fb::RpcOp::UnregisterNode:
      return unregister_node();
    case fb::RpcOp::PutAgreement:
      return put_agreement(*req.op_as_PutAgreement());
    case fb::RpcOp::ListAgreements:
      return list_agreements(*req.op_as_ListAgreements());
    case fb::RpcOp::DeleteAgreement:
      return delete_agreement(*req.op_as_DeleteAgreement());
    case fb::RpcOp::GetPublicKey:
      return get_public_key(req.op_as_GetPublicKey()->key());
    case fb::RpcOp::SearchPatternNodes:
      return search_pattern_nodes(*req.op_as_SearchPatternNodes());
    case fb::RpcOp::AgbotAddPattern: {
      const auto* op = req.op_as_AgbotAddPattern();
      return agbot_pattern(str(op->agbot_org()), str(op->agbot_id()), op->pattern(), true);
    }
    case fb::RpcOp::AgbotRemovePattern: {
      const auto* op = req.op_as_AgbotRemovePattern();
      return agbot_pattern(str(op->agbot_org()), str(op->agbot_id()), op->pattern(), false);
    }
    case fb::RpcOp::AgbotHello:
      return agbot_hello();
    case fb::RpcOp::PutNodeStatus:
      return put_node_status(*req.op_as_PutNodeStatus());
    case fb::RpcOp::GetNodeStatus:
      return get_node_status(*req.op_as_GetNodeStatus());
    case fb::RpcOp::PutRolloutStatus:
      return put_rollout_status(*req.op_as_PutRolloutStatus());
    case fb::RpcOp::GetRolloutStatus:
      return get_rollout_status(*req.op_as_GetRolloutStatus());
    default:
      return invalid("op", "unknown operation");
  }
}

// ---- generic resource operations: the row of the traits table decides who and what

step handler::put(fb::Resource type, const void* r, bool insert) {
  const auto* t = traits_of(type);
  if (!r || !t) return invalid("resource", "required");
  return (this->*t->put)(r, insert);
}

step handler::may_put(fb::ResourceKind k, bool insert, std::string_view org, std::string_view id) {
  const auto& t = *traits_of(k);
  return auth_.require(insert ? t.create : t.update, k, org, id);
}

step handler::get(const fb::ResourceKey* k) {
  key_parts key;
  HMQ_CHECK(parse_key(k, key));
  const auto& t = *traits_of(key.kind);
  if (t.read.who != access::by_record) HMQ_CHECK(auth_.require(t.read, key.kind, key.org, key.id));
  return (this->*t.get)(key);
}

step handler::remove(const fb::ResourceKey* k) {
  key_parts key;
  HMQ_CHECK(parse_key(k, key));
  const auto& t = *traits_of(key.kind);
  HMQ_CHECK(auth_.require(t.remove, key.kind, key.org, key.id));
  HMQ_CHECK((this->*t.drop)(key));
  set_empty();
  return {};
}

step handler::list(const fb::ListResources& op) {
  const auto* t = traits_of(op.kind());
  std::string org = str(op.org()), after = str(op.page_token());
  uint32_t limit = page_limit(op.limit());
  if (!t) return invalid("kind", "must be one of org, user, node, agbot, service, pattern");
  if (after.size() > max_url + 64) return invalid("page_token", "too long");
  return (this->*t->list_page)(*t, org, after, limit);
}

step handler::list_rows(const resource_traits& t, const std::string& org, const std::string& after,
                        uint32_t limit) {
  HMQ_CHECK(check_id("org", org));
  bool reader = auth_.allowed(t.list.who, t.kind, org, {});
  if (!reader && !t.public_listing) return auth_.denied(t.list.verb, org);
  auto rows = db_.blob_list(t.rows, org, after, limit + 1, !reader);
  if (!rows) return internal(rows.err());
  fb::ResourceListT page;
  std::string last;
  for (auto& r : *rows) {
    if (page.items.size() == limit) {
      page.next_page_token = last;
      break;
    }
    auto item = std::make_unique<fb::ResourceItemT>();
    HMQ_CHECK((this->*t.present)(r, *item));
    if (item->resource.type == fb::Resource::NONE) continue;
    last = r.id;
    page.items.push_back(std::move(item));
  }
  set_result(std::move(page));
  return {};
}

// ---- keys and pages

step handler::parse_key(const fb::ResourceKey* k, key_parts& out) {
  if (!k) return invalid("key", "required");
  out.kind = k->kind();
  out.org = str(k->org());
  out.id = str(k->id());
  if (!traits_of(out.kind))
    return invalid("key.kind", "must be one of org, user, node, agbot, service, pattern");
  HMQ_CHECK(check_id("key.org", out.org));
  if (out.kind != fb::ResourceKind::org) {
    if (out.id.empty()) return invalid("key.id", "required");
    if (out.id.size() > max_url + 64) return invalid("key.id", "too long");
  }
  return {};
}

std::string handler::shown_key(const key_parts& k) const {
  return k.kind == fb::ResourceKind::org ? k.org : k.org + "/" + k.id;
}

rpc_error handler::missing(const key_parts& k) const {
  return not_found(traits_of(k.kind)->name, shown_key(k));
}

uint32_t handler::page_limit(uint32_t asked) const {
  if (asked == 0) return s_.opts_.default_page;
  return std::min(asked, s_.opts_.max_page);
}

step handler::need_org(std::string_view org) {
  auto o = db_.org_get(org);
  if (!o) return internal(o.err());
  if (!*o) return not_found("org", org);
  return {};
}

// ---- credentials of nodes and agbots, broker identities

step handler::take_credentials(bool insert, const std::string& mailbox, const std::string& claim,
                               std::string& token_field, party_credentials& out) {
  out.enrolled = insert ? mailbox : std::string();
  if (!out.enrolled.empty() && !valid_mailbox(out.enrolled))
    return invalid("mailbox", "must be a mailbox id: 16 characters a-z, 2-7");
  if (!claim.empty() && out.enrolled.empty())
    return invalid("claim", "goes with the mailbox it claims, on create only");
  if (!out.enrolled.empty()) {
    // A mailbox is bound only to a token its key holder named (docs/security.md "Mailbox
    // ownership"): nobody can pre-claim the mailbox of an agent that has not enrolled yet.
    if (claim.empty())
      return invalid("claim",
                     "binding mailbox " + out.enrolled +
                         " needs its key holder's claim: give the --claim value the agent or "
                         "agbot prints next to --mailbox (started with its token)");
    auto pw = core::bus::derive_machine_password(out.enrolled, token_field);
    if (!pw)
      return rpc_error{
          fb::RpcStatus::internal, "cannot derive the broker password: " + pw.err().message(), {}};
    if (auto ok = core::bus::open_mailbox_claim(claim, out.enrolled, s_.self_.sk, *pw); !ok) {
      ++s_.mailbox_conflicts_;
      return rpc_error{fb::RpcStatus::forbidden, "mailbox " + out.enrolled + ": " + ok.err().detail,
                       "claim"};
    }
    out.broker_password = std::move(*pw);
  }
  out.token = token_field;
  if (!token_field.empty()) {
    auto r = s_.hash(token_field);
    if (!r)
      return rpc_error{fb::RpcStatus::internal, "cannot hash token: " + r.err().message(), {}};
    out.hash = std::move(*r);
  }
  token_field.clear();
  return {};
}

step handler::check_party(const std::string& org, const std::string& id, const std::string& name,
                          const std::string& token, bool insert) {
  HMQ_CHECK(check_id("org", org));
  HMQ_CHECK(check_id("id", id));
  HMQ_CHECK(check_text("name", name, max_name));
  return check_secret("token", token, insert);
}

void handler::credentials_changed(fb::AuthKind kind, bool insert, const std::string& org,
                                  const std::string& id, const std::string& broker_user,
                                  const party_credentials& c) {
  if (!c.hash.empty()) s_.cache_.forget(kind, org, id);
  if (insert)
    broker_ensure(kind, broker_user, c.token, c.hash, c.broker_password);
  else
    broker_password(kind, broker_user, c.token, c.hash);
}

step handler::expect_existing(bool insert, bool found, std::string_view what,
                              std::string_view key) {
  if (insert && found) return already_exists(what, key);
  if (!insert && !found) return not_found(what, key);
  return {};
}

namespace {

std::string_view party_kind(fb::AuthKind k) {
  return k == fb::AuthKind::agbot ? "agbot" : k == fb::AuthKind::node ? "node" : "principal";
}

bool owned_by(const mailbox_owner& o, fb::AuthKind kind, const std::string& org,
              const std::string& id) {
  return o.kind == kind && o.org == org && o.id == id;
}

}  // namespace

step handler::claim_mailbox(fb::AuthKind kind, const std::string& org, const std::string& id,
                            const std::string& mailbox, bool proven) {
  auto cur = db_.mailbox_owner_of(mailbox);
  if (!cur) return internal(cur.err());
  mailbox_owner me{kind, org, id, proven};
  if (*cur && owned_by(**cur, kind, org, id)) {
    me.proven = proven || (*cur)->proven;
  } else if (*cur) {
    const auto& o = **cur;
    if (!proven || o.proven) {
      ++s_.mailbox_conflicts_;
      // Another org's principals are not named to this caller.
      std::string whom = o.org == p_.org || p_.org == "root"
                             ? std::string(party_kind(o.kind)) + " " + o.org + "/" + o.id
                             : "a node or agbot of another org";
      return rpc_error{fb::RpcStatus::conflict,
                       "mailbox " + mailbox + " is already bound to " + whom +
                           (proven ? " (one key registers as one node or agbot)"
                                   : " (only the holder of its key can move it)"),
                       "mailbox"};
    }
    logger()->warn(
        "mailbox {}: taken by its key holder {} {}/{} from the unproven claim of {} {}/{}", mailbox,
        party_kind(kind), org, id, party_kind(o.kind), o.org, o.id);
  }
  if (auto r = db_.mailbox_bind(mailbox, me); !r) return internal(r.err());
  return {};
}

step handler::release_broker_user(fb::AuthKind kind, const std::string& org, const std::string& id,
                                  const std::string& user) {
  if (!user.empty()) {
    auto cur = db_.mailbox_owner_of(user);
    if (!cur) return internal(cur.err());
    if (!*cur || owned_by(**cur, kind, org, id))
      broker_remove(kind, user);
    else
      logger()->info("broker identity {} kept: it belongs to {} {}/{} now", user,
                     party_kind((*cur)->kind), (*cur)->org, (*cur)->id);
  }
  if (auto r = db_.mailbox_release(kind, org, id); !r) return internal(r.err());
  return {};
}

void handler::broker_ensure(fb::AuthKind kind, const std::string& user, const std::string& token,
                            const std::string& token_hash, const std::string& password) {
  if (user.empty() || token.empty()) return;
  broker_.push_back(party_broker_change(broker_change::action::ensure, kind, user, token));
  broker_.back().secret_of = token_hash;
  // Derived already (a claim was checked): the service need not derive it again.
  broker_.back().password = password;
}
step handler::broker_ensure_self(fb::AuthKind kind, const std::string& org, const std::string& id,
                                 const std::string& user) {
  auto cred = db_.credential_of(kind, org, id);
  if (!cred) return internal(cred.err());
  broker_ensure(kind, user, auth_.secret(), *cred ? (*cred)->hash : std::string());
  return {};
}
void handler::broker_remove(fb::AuthKind kind, const std::string& user) {
  if (!user.empty())
    broker_.push_back(party_broker_change(broker_change::action::remove, kind, user));
}
void handler::broker_password(fb::AuthKind kind, const std::string& user, const std::string& token,
                              const std::string& token_hash) {
  if (user.empty() || token.empty()) return;
  broker_.push_back(party_broker_change(broker_change::action::set_password, kind, user, token));
  broker_.back().secret_of = token_hash;
}

// ---- transactions

step handler::tx(const std::function<step()>& fn) {
  step refused;
  auto r = db_.transaction([&]() -> result<void> {
    refused = fn();
    if (refused) return core::error{make_error_code(core::store::errc::constraint), "refused"};
    return {};
  });
  if (refused) {
    events_.clear();
    broker_.clear();
    return refused;
  }
  if (!r) {
    events_.clear();
    broker_.clear();
    return internal(r.err());
  }
  return {};
}

step handler::add_events(result<std::vector<addressed_event>> ev) {
  if (!ev) return internal(ev.err());
  for (auto& e : *ev) events_.push_back(std::move(e));
  return {};
}

}  // namespace hmq::exchange
