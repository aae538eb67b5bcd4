#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exchange/auth.h"
#include "exchange/rpc_error.h"
#include "exchange/service.h"

// One RpcRequest, from credentials to response: the exchange's request handler.
//
// run() authenticates the caller (exchange/auth.h), then dispatches: the generic resource
// operations (create, update, get, delete, list) go through the resource traits table
// (exchange/resources.cc), which names for each kind of resource who may do what and which
// member function does it; the other operations have one member each. Members are defined in one
// file per resource: exchange/resource_<name>.cc. handler.cc holds dispatch and what every
// operation shares (transactions, events, broker identities, replies).
//
// Lifecycle: made for one request by service::handle and dropped with it. Thread contract: the
// service's (loop thread only).
namespace hmq::exchange {

class handler;

// A parsed ResourceKey.
struct key_parts {
  fb::ResourceKind kind;
  std::string org;
  std::string id;
};

// What the exchange knows about one kind of resource: its name in messages, who may do each
// generic operation, and the members that do them. Adding a resource is one row here and one
// exchange/resource_<name>.cc.
struct resource_traits {
  fb::ResourceKind kind;
  fb::Resource type;      // its member of the Resource union
  std::string_view name;  // as messages name it: "node 'org/id' not found"
  table rows;             // where its records live (orgs have a table of their own: unused)
  rule create;
  rule update;
  rule read;
  rule remove;
  rule list;
  bool public_listing;  // callers outside the org list its public records
  step (handler::*put)(const void* r, bool insert);
  step (handler::*get)(const key_parts& k);
  step (handler::*drop)(const key_parts& k);
  step (handler::*list_page)(const resource_traits& t, const std::string& org,
                             const std::string& after, uint32_t limit);
  // One stored row as a list item; leaves `item` empty to skip a row that does not decode.
  step (handler::*present)(blob_row& r, fb::ResourceItemT& item);
};

// A verified union member (CreateResource/UpdateResource.resource) in object form.
template <typename Table>
typename Table::NativeTableType unpack(const void* r) {
  typename Table::NativeTableType o;
  static_cast<const Table*>(r)->UnPackTo(&o);
  return o;
}

// nullptr for a kind or union member the exchange does not know.
const resource_traits* traits_of(fb::ResourceKind k);
const resource_traits* traits_of(fb::Resource r);

class handler {
 public:
  handler(service& s, const core::crypto::public_key& sender);

  outcome run(const fb::RpcRequest& req);

  // ---- one member per resource operation, each in exchange/resource_<name>.cc

  // resource_orgs.cc
  step put_org(const void* r, bool insert);
  step get_org(const key_parts& k);
  step remove_org(const key_parts& k);
  step list_orgs(const resource_traits& t, const std::string& org, const std::string& after,
                 uint32_t limit);
  // resource_users.cc
  step put_user(const void* r, bool insert);
  step get_user(const key_parts& k);
  step remove_user(const key_parts& k);
  // resource_nodes.cc
  step put_node(const void* r, bool insert);
  step get_node(const key_parts& k);
  step remove_node(const key_parts& k);
  step register_node(const fb::RegisterNode& op);
  step unregister_node();
  step put_node_status(const fb::PutNodeStatus& op);
  step get_node_status(const fb::GetNodeStatus& op);
  // resource_agbots.cc
  step put_agbot(const void* r, bool insert);
  step get_agbot(const key_parts& k);
  step remove_agbot(const key_parts& k);
  step present_agbot(blob_row& r, fb::ResourceItemT& item);
  step agbot_pattern(const std::string& org, const std::string& id, const fb::AgbotPattern* pat,
                     bool add);
  step agbot_hello();
  // resource_services.cc
  step put_service(const void* r, bool insert);
  step get_service(const key_parts& k);
  step remove_service(const key_parts& k);
  step present_service_row(blob_row& r, fb::ResourceItemT& item);
  // resource_patterns.cc
  step put_pattern(const void* r, bool insert);
  step get_pattern(const key_parts& k);
  step remove_pattern(const key_parts& k);
  // resource_agreements.cc
  step put_agreement(const fb::PutAgreement& op);
  step list_agreements(const fb::ListAgreements& op);
  step delete_agreement(const fb::DeleteAgreement& op);
  // resource_rollouts.cc
  step put_rollout_status(const fb::PutRolloutStatus& op);
  step get_rollout_status(const fb::GetRolloutStatus& op);
  // resource_switchboard.cc
  step get_public_key(const fb::ResourceKey* k);
  step search_pattern_nodes(const fb::SearchPatternNodes& op);

  // ---- generic resource operations (handler.cc)

  // Lists the rows of `t.rows` in `org`: the org's writers see all, others the public ones when
  // the resource has public records.
  step list_rows(const resource_traits& t, const std::string& org, const std::string& after,
                 uint32_t limit);
  // A stored row decoded as `Table`, for lists.
  template <typename Table>
  step present_blob(blob_row& r, fb::ResourceItemT& item) {
    if (auto v = from_blob<Table>(r.blob)) item.resource.Set(std::move(*v));
    return {};
  }

 private:
  outcome fail(const rpc_error& e);
  step dispatch(const fb::RpcRequest& req);
  step put(fb::Resource type, const void* r, bool insert);
  step get(const fb::ResourceKey* k);
  step remove(const fb::ResourceKey* k);
  step list(const fb::ListResources& op);

  // ---- what operations share

  // May the caller create (insert) or update resource kind `k` named org/id? The rule is its row's.
  step may_put(fb::ResourceKind k, bool insert, std::string_view org, std::string_view id);
  step need_org(std::string_view org);
  step parse_key(const fb::ResourceKey* k, key_parts& out);
  std::string shown_key(const key_parts& k) const;
  // "<kind> '<key>' not found"
  rpc_error missing(const key_parts& k) const;
  uint32_t page_limit(uint32_t asked) const;

  // Node and agbot create/update: the broker identity named in advance (create only, with the
  // claim of its key holder: core/bus/credentials.h make_mailbox_claim) and the token, taken out
  // of the record (kept in clear only for the broker) and hashed for the store.
  struct party_credentials {
    std::string enrolled;         // the mailbox bound on create, "" for none
    std::string token;            // the new token, "" when unchanged
    std::string hash;             // its Argon2id hash for the store
    std::string broker_password;  // derived from the token while checking the claim
  };
  step take_credentials(bool insert, const std::string& mailbox, const std::string& claim,
                        std::string& token_field, party_credentials& out);
  // The fields every node and agbot has; the token is required on create.
  step check_party(const std::string& org, const std::string& id, const std::string& name,
                   const std::string& token, bool insert);
  // After a node or agbot create/update: a new token drops the cached credential and is the
  // broker password of the party's broker identity (created on insert).
  void credentials_changed(fb::AuthKind kind, bool insert, const std::string& org,
                           const std::string& id, const std::string& broker_user,
                           const party_credentials& c);
  // A create must find nothing under `key`, an update must find the record.
  step expect_existing(bool insert, bool found, std::string_view what, std::string_view key);
  // An agbot may only serve patterns that exist and that it can read (public or its own org).
  step check_servable(const std::string& field, const fb::AgbotPatternT& ap,
                      std::string_view agbot_org);
  // Appends the agbot's served patterns (kept in their own table) to `a`.
  step attach_patterns(fb::AgbotT& a);
  // Service as returned to the caller: registry tokens opened or removed.
  result<fb::ServiceT> present_service(fb::ServiceT s);

  // A mailbox (= broker username) is one principal's (docs/security.md "Mailbox ownership").
  // `proven`: this request was sealed by the mailbox's own key. An unproven claim (create with a
  // mailbox) is refused while another principal holds the mailbox; a proven one takes it from
  // an unproven claimant and is refused only when another principal proved it first.
  step claim_mailbox(fb::AuthKind kind, const std::string& org, const std::string& id,
                     const std::string& mailbox, bool proven);
  // The broker identity `user` of principal kind/org/id goes, unless another principal owns
  // that mailbox now; the principal's ownership rows go in any case. In a tx().
  step release_broker_user(fb::AuthKind kind, const std::string& org, const std::string& id,
                           const std::string& user);

  // Broker identities, applied by the app after the commit.
  // A node's or agbot's identity `user` with exchange token `token`, whose stored hash is
  // `token_hash` (the service derives the password from the token, or reuses the one it kept
  // for that hash).
  // `password`: derived from `token` already, or "".
  void broker_ensure(fb::AuthKind kind, const std::string& user, const std::string& token,
                     const std::string& token_hash, const std::string& password = {});
  void broker_remove(fb::AuthKind kind, const std::string& user);
  void broker_password(fb::AuthKind kind, const std::string& user, const std::string& token,
                       const std::string& token_hash);
  // The same for the principal this request authenticated as (RegisterNode / AgbotHello).
  step broker_ensure_self(fb::AuthKind kind, const std::string& org, const std::string& id,
                          const std::string& user);

  // Runs fn in one write transaction; any error (refusal or store failure) rolls everything back,
  // including the events fn addressed.
  step tx(const std::function<step()>& fn);
  step add_events(result<std::vector<addressed_event>> ev);

  template <typename T>
  void set_result(T&& v) {
    out_.response.result.Set(std::forward<T>(v));
  }
  template <typename T>
  void set_item(T&& v) {
    fb::ResourceItemT item;
    item.resource.Set(std::forward<T>(v));
    set_result(std::move(item));
  }
  void set_empty() { set_result(fb::EmptyT{}); }

  service& s_;
  db& db_;
  const core::crypto::public_key& sender_;
  authority auth_;
  const principal& p_;  // auth_'s caller, once authenticated
  outcome out_;
  std::vector<addressed_event> events_;
  std::vector<broker_change> broker_;
};

}  // namespace hmq::exchange
