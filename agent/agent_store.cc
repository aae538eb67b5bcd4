#include "agent/agent_store.h"

#include <array>
#include <cstring>

namespace hmq::agent {
namespace {

constexpr std::array<core::store::migration, 1> migrations{{
    {1, R"sql(
CREATE TABLE registration (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  node_org TEXT NOT NULL, node_id TEXT NOT NULL, token TEXT NOT NULL,
  pattern TEXT NOT NULL, arch TEXT NOT NULL, user_input TEXT NOT NULL,
  registered_ms INTEGER NOT NULL, confirmed INTEGER NOT NULL);
CREATE TABLE agreements (
  id TEXT PRIMARY KEY, state INTEGER NOT NULL, agbot TEXT NOT NULL, agbot_key BLOB NOT NULL,
  pattern TEXT NOT NULL, service_org TEXT NOT NULL, service_url TEXT NOT NULL,
  service_version TEXT NOT NULL, proposal BLOB NOT NULL,
  accepted_ms INTEGER NOT NULL, finalized_ms INTEGER NOT NULL, cancelled_ms INTEGER NOT NULL,
  reason INTEGER NOT NULL, reason_message TEXT NOT NULL, exchange_synced INTEGER NOT NULL,
  cancel_unsent INTEGER NOT NULL DEFAULT 0);
CREATE TABLE trusted_keys (key BLOB PRIMARY KEY, name TEXT NOT NULL, added_ms INTEGER NOT NULL);
)sql"},
}};

crypto::public_key to_key(const std::vector<uint8_t>& b) {
  crypto::public_key k{};
  if (b.size() == k.size()) std::memcpy(k.data(), b.data(), k.size());
  return k;
}

}  // namespace

std::string_view state_name(agreement_state s) {
  switch (s) {
    case agreement_state::accepted:
      return "accepted";
    case agreement_state::finalized:
      return "finalized";
    case agreement_state::cancelled:
      return "cancelled";
  }
  return "unknown";
}

result<agent_store> agent_store::init(result<core::store::database> db) {
  if (!db) return db.err();
  if (auto m = db->migrate(migrations); !m) return m.err();
  return agent_store(std::move(*db));
}

result<agent_store> agent_store::open(const std::filesystem::path& db_path) {
  return init(core::store::database::open(db_path));
}

result<agent_store> agent_store::open_memory() {
  return init(core::store::database::open_memory());
}

result<std::optional<stored_registration>> agent_store::registration() {
  auto st = db_.cached(
      "SELECT node_org, node_id, token, pattern, arch, user_input, registered_ms, confirmed "
      "FROM registration WHERE id = 1");
  if (!st) return st.err();
  auto row = (*st)->step();
  if (!row) return row.err();
  if (!*row) return std::optional<stored_registration>();
  stored_registration r;
  auto& s = **st;
  r.node = {s.column_text(0), s.column_text(1), s.column_text(2)};
  r.pattern = s.column_text(3);
  r.arch = s.column_text(4);
  r.user_input_json = s.column_text(5);
  r.registered_ms = s.column_int(6);
  r.confirmed = s.column_int(7) != 0;
  return std::optional<stored_registration>(std::move(r));
}

result<void> agent_store::put_registration(const stored_registration& r) {
  auto st = db_.cached(
      "INSERT OR REPLACE INTO registration (id, node_org, node_id, token, pattern, arch, "
      "user_input, "
      "registered_ms, confirmed) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!st) return st.err();
  (*st)->bind_all(r.node.org, r.node.id, r.node.token, r.pattern, r.arch, r.user_input_json,
                  r.registered_ms, int64_t{r.confirmed ? 1 : 0});
  auto e = (*st)->exec();
  if (!e) return e.err();
  return core::ok();
}

result<void> agent_store::clear_registration() {
  return db_.exec("DELETE FROM registration");
}

result<std::vector<stored_agreement>> agent_store::agreements() {
  auto st = db_.cached(
      "SELECT id, state, agbot, agbot_key, pattern, service_org, service_url, service_version, "
      "proposal, accepted_ms, finalized_ms, cancelled_ms, reason, reason_message, exchange_synced, "
      "cancel_unsent FROM agreements ORDER BY accepted_ms, id");
  if (!st) return st.err();
  std::vector<stored_agreement> out;
  auto& s = **st;
  for (;;) {
    auto row = s.step();
    if (!row) return row.err();
    if (!*row) break;
    stored_agreement a;
    a.id = s.column_text(0);
    a.state = static_cast<agreement_state>(s.column_int(1));
    a.agbot = s.column_text(2);
    a.agbot_key = to_key(s.column_blob(3));
    a.pattern = s.column_text(4);
    a.service_org = s.column_text(5);
    a.service_url = s.column_text(6);
    a.service_version = s.column_text(7);
    a.proposal = s.column_blob(8);
    a.accepted_ms = s.column_int(9);
    a.finalized_ms = s.column_int(10);
    a.cancelled_ms = s.column_int(11);
    a.reason = static_cast<uint16_t>(s.column_int(12));
    a.reason_message = s.column_text(13);
    a.exchange_synced = s.column_int(14) != 0;
    a.cancel_unsent = s.column_int(15) != 0;
    out.push_back(std::move(a));
  }
  return out;
}

result<void> agent_store::put_agreement(const stored_agreement& a) {
  auto st = db_.cached(
      "INSERT OR REPLACE INTO agreements (id, state, agbot, agbot_key, pattern, service_org, "
      "service_url, service_version, proposal, accepted_ms, finalized_ms, cancelled_ms, reason, "
      "reason_message, exchange_synced, cancel_unsent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
      "?, ?, ?, ?)");
  if (!st) return st.err();
  auto& s = **st;
  s.bind(1, a.id).bind(2, int64_t{static_cast<int>(a.state)}).bind(3, a.agbot);
  s.bind(4, std::span<const uint8_t>(a.agbot_key)).bind(5, a.pattern).bind(6, a.service_org);
  s.bind(7, a.service_url).bind(8, a.service_version).bind(9, std::span<const uint8_t>(a.proposal));
  s.bind(10, a.accepted_ms).bind(11, a.finalized_ms).bind(12, a.cancelled_ms);
  s.bind(13, int64_t{a.reason})
      .bind(14, a.reason_message)
      .bind(15, int64_t{a.exchange_synced ? 1 : 0});
  s.bind(16, int64_t{a.cancel_unsent ? 1 : 0});
  auto e = s.exec();
  if (!e) return e.err();
  return core::ok();
}

result<void> agent_store::delete_agreement(const std::string& id) {
  auto st = db_.cached("DELETE FROM agreements WHERE id = ?");
  if (!st) return st.err();
  (*st)->bind(1, id);
  auto e = (*st)->exec();
  if (!e) return e.err();
  return core::ok();
}

result<std::vector<trusted_key>> agent_store::trusted_keys() {
  auto st = db_.cached("SELECT key, name, added_ms FROM trusted_keys ORDER BY added_ms, name");
  if (!st) return st.err();
  std::vector<trusted_key> out;
  auto& s = **st;
  for (;;) {
    auto row = s.step();
    if (!row) return row.err();
    if (!*row) break;
    out.push_back({to_key(s.column_blob(0)), s.column_text(1), s.column_int(2)});
  }
  return out;
}

result<bool> agent_store::is_trusted(const crypto::public_key& k) {
  auto st = db_.cached("SELECT 1 FROM trusted_keys WHERE key = ?");
  if (!st) return st.err();
  (*st)->bind(1, std::span<const uint8_t>(k));
  auto row = (*st)->step();
  if (!row) return row.err();
  return *row;
}

result<void> agent_store::add_trusted_key(const trusted_key& k) {
  auto st = db_.cached(
      "INSERT INTO trusted_keys (key, name, added_ms) VALUES (?, ?, ?) "
      "ON CONFLICT(key) DO UPDATE SET name = excluded.name");
  if (!st) return st.err();
  (*st)->bind(1, std::span<const uint8_t>(k.key)).bind(2, k.name).bind(3, k.added_ms);
  auto e = (*st)->exec();
  if (!e) return e.err();
  return core::ok();
}

}  // namespace hmq::agent
