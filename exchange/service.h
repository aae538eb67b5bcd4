#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/bus/credentials.h"
#include "core/common/result.h"
#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "core/store/group_commit.h"
#include "exchange/auth.h"
#include "exchange/db.h"
#include "exchange/events.h"

// The exchange's RPC service: authentication, authorization, validation and the store writes for
// one RpcRequest, with no bus (exchange/handler.h handles each request; docs/exchange.md, "Code
// layout"). The app feeds it opened requests and sends back the response and
// the addressed events; tests call it directly on an in-memory store.
//
// Thread contract: loop thread only (owns the db connection and the credential cache).
namespace hmq::exchange {

struct service_options {
  core::crypto::hash_strength strength = core::crypto::hash_strength::interactive;
  // Verified credentials remembered (principal -> keyed hash of the secret); cleared when full.
  size_t credential_cache_max = 100'000;
  uint32_t default_page = 100;
  uint32_t max_page = 1000;
  // --provision-broker: broker changes get their passwords and their secrets are kept.
  bool provision_broker = false;
};

// A change to the broker's client database (Mosquitto dynamic security) that a committed
// request calls for: the app applies it through exchange/broker_admin.h when --provision-broker
// is on, and ignores it otherwise. A node's or agbot's username is its mailbox id and its
// password is derived from its exchange token (core/bus/credentials.h derive_machine_password)
// by service::keep_broker_secrets, only with provisioning on; an exchange user's are derived
// from its password ("org/user", an Argon2id secret, an inbox id). The broker keeps only a
// salted hash of a password, and never one that is an exchange secret.
struct broker_change {
  enum class action { ensure, remove, set_password, set_recorder };
  action what = action::ensure;
  fb::AuthKind kind = fb::AuthKind::node;  // node, agbot or user: picks the shared role
  std::string username;
  std::string password;   // ensure, set_password: the broker password
  std::string token;      // nodes, agbots (ensure, set_password): what the password derives from
  std::string secret_of;  // nodes, agbots: the stored hash of that token (kept with the secret)
  std::string inbox;      // users (ensure): the topic level its answers come on
  std::string old_inbox;  // users (ensure): the inbox its role grants now, if another
  bool recorder = false;  // users (ensure, set_recorder): may read the whole bus
};

// A change to the broker identity `username` (a node's or agbot's mailbox, a user's org/user);
// `token`: a node's or agbot's exchange token (ensure, set_password).
broker_change party_broker_change(broker_change::action what, fb::AuthKind kind,
                                  std::string username, std::string token = {});
// The broker identity of an exchange user, to create or update (password and roles).
broker_change user_broker_change(const core::bus::user_identity& id, bool recorder,
                                 std::string old_inbox);

// What one request produced: the response, events to publish once it is committed, and broker
// identities to create or delete (applied before the response is sent).
struct outcome {
  fb::RpcResponseT response;
  std::vector<addressed_event> events;
  std::vector<broker_change> broker;
  // The inbox id of the exchange user the request authenticated as (empty: not a user, or a
  // user created before inboxes): the response goes to hmq/v1/r/<inbox>/<sender mailbox>.
  std::string reply_inbox;
};

class service {
 public:
  // `self` is the exchange's own key pair: registry tokens are sealed to it at rest.
  service(db& d, const core::crypto::box_keypair& self, const core::loop::clock& clock,
          service_options o = {});

  // Creates org "root" when missing and (re)sets root/root's password. An empty password leaves
  // an existing root user alone (and fails when there is none, since nobody could log in).
  // Returns the broker identity to (re)provision for root: none when the password was kept.
  result<std::vector<broker_change>> bootstrap_root(std::string_view root_password);

  outcome handle(const core::crypto::public_key& sender, const fb::RpcRequest& req);

  // The verified secrets remembered: exchange/auth_gate.h verifies off the loop and fills it.
  credential_cache& credentials() { return cache_; }
  uint64_t credential_cache_hits() const { return cache_.hits(); }
  // Requests refused because a node or agbot token came from a key other than the one it
  // registered (RegisterNode / AgbotHello excepted: they bind the key).
  uint64_t identity_mismatches() const { return identity_mismatches_; }
  uint64_t credential_cache_misses() const { return cache_.misses(); }
  // Mailbox claims refused because another node or agbot owns the mailbox (docs/security.md).
  uint64_t mailbox_conflicts() const { return mailbox_conflicts_; }
  // Broker passwords derived (an Argon2id each; a RegisterNode or AgbotHello with an unchanged
  // token reuses the stored one) and stored secrets that could not be read or written.
  uint64_t broker_derivations() const { return broker_derivations_; }
  uint64_t broker_secret_failures() const { return broker_secret_failures_; }

  // The identities among `usernames` (registered, but missing on the broker) whose broker
  // secret the exchange kept: an ensure for each, to create them again (docs/security.md
  // "Crash-safe broker administration"). Usernames without a kept secret are left out.
  result<std::vector<broker_change>> kept_identities(const std::set<std::string>& usernames);

  // Small secrets (registry tokens, broker passwords) sealed to the exchange's own key at rest:
  // "sealed:" + base64(nonce || box). open_secret returns "" for anything it cannot open.
  std::string seal_secret(std::string_view plain) const;
  std::string open_secret(std::string_view stored) const;

  using rpc_error = exchange::rpc_error;

 private:
  result<std::string> hash(std::string_view secret);
  // With provisioning on: gives each node and agbot change its derived password (reused from
  // the kept secret when the token is unchanged) and keeps every identity's secret, in the
  // request's transaction; removals forget it.
  void keep_broker_secrets(std::vector<broker_change>& changes);

  db& db_;
  const core::crypto::box_keypair& self_;
  const core::loop::clock& clock_;
  service_options opts_;
  credential_cache cache_;
  uint64_t identity_mismatches_ = 0;
  uint64_t mailbox_conflicts_ = 0;
  uint64_t broker_derivations_ = 0;
  uint64_t broker_secret_failures_ = 0;

  friend class handler;
};

// Group commit (docs/PERFORMANCE.md): handles `req` now, inside `group`'s open transaction, and
// calls `answer` once the group has committed. If the COMMIT failed, nothing of the group is
// stored and `answer` gets an internal error with no events and no broker changes instead.
void handle_in_group(service& s, core::store::group_commit& group,
                     const core::crypto::public_key& sender, const fb::RpcRequest& req,
                     std::function<void(outcome&)> answer);

}  // namespace hmq::exchange
