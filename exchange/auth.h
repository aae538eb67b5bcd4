#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/crypto/crypto.h"
#include "exchange/db.h"
#include "exchange/rpc_error.h"

// Authentication and authorisation of the exchange: the one place that says who is calling and
// what that caller may do. handler::run authenticates every request here before it dispatches
// anything, and every operation asks an `authority` (directly or through the rules of its row in
// the resource traits table, exchange/resources.h) before it touches a record.
//
// Thread contract: loop thread only, like the service that owns the credential cache.
namespace hmq::exchange {

// An authenticated caller.
struct principal {
  fb::AuthKind kind = fb::AuthKind::unspecified;
  std::string org;
  std::string id;
  bool admin = false;  // org admin user
  bool root = false;   // root/root: the superuser
  std::string inbox;   // users: the inbox its answers go to ("" = none yet)
  std::string str() const;
};

std::string_view auth_name(fb::AuthKind k);

// Verified credentials remembered (principal -> keyed BLAKE2b of the secret), so a busy caller
// pays Argon2id once. An entry is valid only for the stored hash it was verified against: a
// hash changed by another replica misses.
class credential_cache {
 public:
  explicit credential_cache(size_t max);

  static std::string key_of(fb::AuthKind k, std::string_view org, std::string_view id);

  // Does `secret` match `stored_hash`? Remembered under `key` when it does.
  bool verify(const std::string& key, const std::string& stored_hash, std::string_view secret);
  // The same without Argon2id: true only when `secret` was verified against `stored_hash`
  // before (exchange/auth_gate.h asks this first, and verifies off the loop otherwise). Not
  // counted in hits(): the service's own verify() of the same request counts it.
  bool hit(const std::string& key, const std::string& stored_hash, std::string_view secret);
  // `secret` was verified against `stored_hash` (by a worker).
  void remember(const std::string& key, const std::string& stored_hash, std::string_view secret);
  // Keyed BLAKE2b of a secret (the key is this process's, random): what entries hold.
  core::crypto::bytes mac_of(std::string_view secret) const;
  void forget(fb::AuthKind k, std::string_view org, std::string_view id) {
    entries_.erase(key_of(k, org, id));
  }
  void clear() { entries_.clear(); }

  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

 private:
  struct entry {
    std::string stored_hash;  // the hash it was verified against
    core::crypto::bytes mac;  // keyed BLAKE2b of the secret
  };
  size_t max_;
  core::crypto::secret key_;
  std::unordered_map<std::string, entry> entries_;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

// Who may do an operation on a resource of an org: the rows of the resource traits table.
enum class access {
  root,            // root/root only
  org_admin,       // root, or an admin user of the org
  org_writer,      // root, or any user of the org
  org_member,      // an org writer, or any node or agbot of the org
  admin_or_self,   // an org admin, or the very user, node or agbot the key names
  writer_or_self,  // an org writer, or the very user, node or agbot the key names
  by_record,       // decided from the stored record by the resource's own file
};

// A rule and the verb its refusal names ("<principal> may not <verb> org <org>").
struct rule {
  access who = access::root;
  std::string_view verb;
};

// One request's caller: authenticated once, then asked for every decision.
class authority {
 public:
  authority(db& d, credential_cache& cache, const core::crypto::public_key& sender)
      : db_(d), cache_(cache), sender_(sender) {}

  // Who is calling: the credentials are checked against the stored Argon2id hash.
  step authenticate(const fb::Auth* a);
  // A node or agbot token is bound to the key that registered it (see auth.cc).
  step check_bound_key(fb::RpcOp op);

  const principal& caller() const { return p_; }
  // The caller's verified secret: a node/agbot token is its broker password.
  const std::string& secret() const { return secret_; }

  bool is_user() const { return p_.kind == fb::AuthKind::user; }
  bool can_admin(std::string_view org) const;
  bool can_write(std::string_view org) const;
  bool is_node(std::string_view org, std::string_view id) const;
  bool is_agbot(std::string_view org, std::string_view id) const;
  // Is the caller the principal of kind `k` named org/id?
  bool is_self(fb::ResourceKind k, std::string_view org, std::string_view id) const;

  // Does `r` let the caller act on resource kind `k` named org/id? by_record is never allowed
  // here: the resource's file decides it from the record.
  bool allowed(access r, fb::ResourceKind k, std::string_view org, std::string_view id) const;
  // nullopt when allowed, else the refusal "<caller> may not <verb> org <org>".
  step require(const rule& r, fb::ResourceKind k, std::string_view org,
               std::string_view id = {}) const;

  rpc_error denied(std::string_view verb, std::string_view org) const;
  rpc_error denied_on(std::string_view verb, std::string_view what, std::string_view key) const;

  // Record-based decisions.
  // The registered pattern of the calling node ("" when the caller is not a registered node).
  std::string caller_node_pattern();
  // Can the caller read node org/id (whose registered pattern is `pattern`)?
  result<bool> may_read_node(std::string_view org, std::string_view id, std::string_view pattern);
  result<bool> may_read_pattern(const fb::PatternT& p);
  result<bool> may_read_service(const fb::ServiceT& s);
  // Registry tokens are given to org writers and the agbots that put them in proposals.
  result<bool> may_see_dockauth_tokens(const fb::ServiceT& s);
  // The node itself, org writers, or an agbot that serves the node's pattern. `node` gets the
  // stored node (nullopt when there is none).
  step may_touch_agreements(std::string_view org, std::string_view id,
                            std::optional<fb::NodeT>& node);

 private:
  result<bool> agbot_serves_dependency(std::string_view org, std::string_view url);

  db& db_;
  credential_cache& cache_;
  const core::crypto::public_key& sender_;
  principal p_;
  std::string secret_;
};

}  // namespace hmq::exchange
