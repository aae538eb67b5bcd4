#pragma once

#include <flatbuffers/flatbuffers.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"
#include "core/crypto/crypto.h"
#include "core/store/store.h"
#include "schema/exchange_generated.h"
#include "schema/types_generated.h"

// The exchange's persistence: schema migrations and typed row access on core/store.
//
// Every resource row has its key columns, the columns that queries filter on (pattern, mailbox,
// url, ...) and a `blob`: the resource's FlatBuffer with every secret removed. Secrets live only
// as Argon2id hashes in their own column (users.password_hash, nodes/agbots.token_hash); registry
// tokens (services' dockauths) are sealed to the exchange's own key before they reach the blob.
//
// Thread contract: like core::store::database, one owner thread. Writes are grouped by the caller
// in one transaction (database::transaction); nothing here opens its own.
namespace hmq::exchange {

namespace fb = ::hmq::wire::fb;
using core::result;

// Pack a native (object API) table into a standalone buffer.
template <typename Table>
std::vector<uint8_t> to_blob(const typename Table::NativeTableType& o) {
  flatbuffers::FlatBufferBuilder b(256);
  b.Finish(Table::Pack(b, &o));
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

// Verify and unpack a standalone buffer; nullopt when it is not a valid `Table`.
template <typename Table>
std::optional<typename Table::NativeTableType> from_blob(std::span<const uint8_t> blob) {
  if (blob.empty()) return std::nullopt;
  flatbuffers::Verifier v(blob.data(), blob.size());
  if (!v.VerifyBuffer<Table>(nullptr)) return std::nullopt;
  typename Table::NativeTableType o;
  flatbuffers::GetRoot<Table>(blob.data())->UnPackTo(&o);
  return o;
}

// The stored secret hash of a principal, for credential checks.
struct credential {
  std::string hash;
  bool admin = false;  // users only
  std::string inbox;   // users only: where its answers go ("" = no broker identity yet)
};

// A broker identity's password as the exchange keeps it (schema v6), sealed to its own key, so
// that an identity the broker lost can be created again.
struct broker_secret {
  fb::AuthKind kind = fb::AuthKind::node;
  std::string sealed;     // service::seal_secret of the broker password
  std::string secret_of;  // nodes, agbots: the token hash the password was derived under
};

// An agbot that must hear about a change: where to seal and send the event.
struct agbot_address {
  std::string org;
  std::string id;
  core::crypto::public_key public_key{};
  std::string mailbox;
};

// An event waiting for the broker's acknowledgement.
struct outbox_entry {
  int64_t id = 0;
  core::crypto::public_key recipient{};
  std::string mailbox;
  fb::EventT event;
};

// The principal a mailbox (broker username) belongs to.
struct mailbox_owner {
  fb::AuthKind kind = fb::AuthKind::unspecified;
  std::string org;
  std::string id;
  bool proven = false;  // the key holder sealed a RegisterNode / AgbotHello or made the claim
};

// One page of keys+blobs.
struct blob_row {
  std::string org;
  std::string id;
  std::vector<uint8_t> blob;
};

// Tables with the (org, id, blob) shape share the generic accessors below.
enum class table { users, nodes, agbots, services, patterns };

class db {
 public:
  static result<db> open(const std::filesystem::path& path, core::store::open_options o = {});
  static result<db> open_memory();

  core::store::database& sql() { return db_; }
  result<void> transaction(const std::function<result<void>()>& fn) { return db_.transaction(fn); }
  result<void> integrity_check() { return db_.integrity_check(); }

  // ---- orgs
  result<std::optional<fb::OrgT>> org_get(std::string_view name);
  result<void> org_insert(const fb::OrgT& o);
  result<void> org_update(const fb::OrgT& o);
  result<bool> org_delete(std::string_view name);
  result<std::vector<fb::OrgT>> org_list(std::string_view after, uint32_t limit);

  // ---- generic (org, id, blob) rows
  result<std::optional<std::vector<uint8_t>>> blob_get(table t, std::string_view org,
                                                       std::string_view id);
  result<bool> row_delete(table t, std::string_view org, std::string_view id);
  result<std::vector<blob_row>> blob_list(table t, std::string_view org, std::string_view after,
                                          uint32_t limit, bool public_only = false);
  // A row decoded as `Table`; nullopt when absent, unreadable or not a valid `Table`.
  template <typename Table>
  std::optional<typename Table::NativeTableType> load(table t, std::string_view org,
                                                      std::string_view id) {
    auto b = blob_get(t, org, id);
    if (!b || !*b) return std::nullopt;
    return from_blob<Table>(**b);
  }

  // ---- credentials
  result<std::optional<credential>> credential_of(fb::AuthKind kind, std::string_view org,
                                                  std::string_view id);

  // ---- users
  // `inbox`: of the user's broker identity, derived with the password (core/bus/credentials.h).
  result<void> user_insert(const fb::UserT& u, std::string_view password_hash,
                           std::string_view inbox);
  // An empty hash keeps the stored hash and inbox.
  result<void> user_update(const fb::UserT& u, std::string_view password_hash,
                           std::string_view inbox);
  // The broker usernames ("org/user") of the users of `org` ("" = every org) that have a broker
  // identity.
  result<std::set<std::string>> user_identities(std::string_view org);

  // ---- nodes (pattern, key and mailbox come from the NodeT)
  result<void> node_insert(const fb::NodeT& n, std::string_view token_hash);
  result<void> node_update(const fb::NodeT& n, std::string_view token_hash);
  result<std::vector<fb::NodeT>> nodes_of_pattern(std::string_view pattern,
                                                  std::string_view node_org, std::string_view after,
                                                  uint32_t limit);

  // ---- agbots (patterns live in agbot_patterns, not in the blob)
  result<void> agbot_insert(const fb::AgbotT& a, std::string_view token_hash);
  result<void> agbot_update(const fb::AgbotT& a, std::string_view token_hash);
  result<std::vector<fb::AgbotPatternT>> agbot_patterns(std::string_view org, std::string_view id);
  result<bool> agbot_add_pattern(std::string_view org, std::string_view id,
                                 const fb::AgbotPatternT& p);
  result<bool> agbot_remove_pattern(std::string_view org, std::string_view id,
                                    const fb::AgbotPatternT& p);
  // Does agbot org/id serve pattern_org/pattern for nodes of node_org (empty = any node org)?
  result<bool> agbot_serves(std::string_view org, std::string_view id, std::string_view pattern_org,
                            std::string_view pattern, std::string_view node_org);
  // Does the agbot serve a pattern that references service org+url?
  result<bool> agbot_serves_service(std::string_view org, std::string_view id,
                                    std::string_view service_org, std::string_view service_url);
  // Agbots with a known key that serve the pattern (for nodes of node_org if non-empty).
  result<std::vector<agbot_address>> agbots_serving_pattern(std::string_view pattern_org,
                                                            std::string_view pattern,
                                                            std::string_view node_org);
  // Agbots with a known key that serve a pattern referencing service org+url.
  result<std::vector<agbot_address>> agbots_serving_service(std::string_view service_org,
                                                            std::string_view service_url);
  // Bump and return the agbot's event sequence (persisted: survives restarts and is shared by
  // replicas on the same store).
  result<uint64_t> next_event_seq(std::string_view org, std::string_view id);
  // The last sequence number next_event_seq() gave the agbot (0: none yet).
  result<uint64_t> event_seq(std::string_view org, std::string_view id);

  // Index of Org.agbots (rewritten by org_insert/org_update).
  result<void> org_agbots_put(const fb::OrgT& o);

  // ---- mailbox owners (exchange/db_mailboxes.cc)
  result<std::optional<mailbox_owner>> mailbox_owner_of(std::string_view mailbox);
  // Binds `mailbox` to `owner` (replacing any earlier owner) and drops the owner's other
  // mailboxes.
  result<void> mailbox_bind(std::string_view mailbox, const mailbox_owner& owner);
  // Every bound mailbox (broker_admin::reconcile compares them with the broker's clients).
  result<std::set<std::string>> mailbox_all();
  // Drops every mailbox of principal kind/org/id.
  result<void> mailbox_release(fb::AuthKind kind, std::string_view org, std::string_view id);

  // ---- kept broker secrets (exchange/db_mailboxes.cc), by broker username
  result<std::optional<broker_secret>> broker_secret_get(std::string_view username);
  result<void> broker_secret_put(std::string_view username, const broker_secret& s);
  result<void> broker_secret_delete(std::string_view username);

  // ---- event outbox (written in the change's transaction, deleted once published)
  result<int64_t> outbox_add(const core::crypto::public_key& recipient, std::string_view mailbox,
                             const fb::EventT& e);
  result<void> outbox_delete(int64_t id);
  result<std::vector<outbox_entry>> outbox_all();

  // ---- services
  result<void> service_put(const fb::ServiceT& s, std::string_view id, bool insert);
  // Any service org/url/version with this arch ("*" = any arch)?
  result<std::optional<bool>> service_public(std::string_view org, std::string_view url,
                                             std::string_view version, std::string_view arch);

  // ---- patterns (pattern_services index is rewritten from the PatternT)
  result<void> pattern_put(const fb::PatternT& p, bool insert);
  // Does pattern org/name reference service org+url?
  result<bool> pattern_references(std::string_view org, std::string_view name,
                                  std::string_view service_org, std::string_view service_url);

  // ---- agreements
  result<void> agreement_put(const fb::AgreementRecordT& r);
  result<std::vector<fb::AgreementRecordT>> agreement_list(std::string_view node_org,
                                                           std::string_view node_id);
  result<bool> agreement_delete(std::string_view node_org, std::string_view node_id,
                                std::string_view id);
  result<int64_t> agreement_delete_all(std::string_view node_org, std::string_view node_id);

  // ---- node status (the node's latest StatusReport; own table, created on first use)
  struct node_status_row {
    std::vector<uint8_t> report;  // a finished StatusReport buffer
    int64_t received_ms = 0;
    int64_t last_heartbeat_ms = 0;
  };
  result<void> node_status_put(std::string_view org, std::string_view id,
                               std::span<const uint8_t> report, int64_t received_ms);
  // The stored report (empty when none) and nodes.last_heartbeat_ms; nullopt: no such node.
  result<std::optional<node_status_row>> node_status_get(std::string_view org, std::string_view id);
  // ---- rollout progress, one row per pattern, service and publishing agbot
  result<void> rollout_put(const fb::RolloutStatusT& s);
  result<std::vector<fb::RolloutStatusT>> rollout_list(std::string_view pattern);  // "org/name"

 private:
  explicit db(core::store::database d) : db_(std::move(d)) {}
  result<void> migrate();

  result<void> ensure_status_table();

  core::store::database db_;
  bool status_table_ = false;
};

}  // namespace hmq::exchange
