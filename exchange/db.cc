#include "exchange/db.h"

#include <array>

#include "exchange/db_rows.h"

namespace hmq::exchange {
namespace {

using core::error;
using core::store::statement;
using db_rows::span_of;

// Version 1: every table. Each later change is a new entry; old entries are never edited.
constexpr std::string_view schema_v1 = R"sql(
CREATE TABLE orgs (
  org TEXT PRIMARY KEY,
  blob BLOB NOT NULL
);
CREATE TABLE users (
  org TEXT NOT NULL REFERENCES orgs(org) ON DELETE CASCADE,
  id TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  admin INTEGER NOT NULL,
  blob BLOB NOT NULL,
  PRIMARY KEY (org, id)
);
CREATE TABLE nodes (
  org TEXT NOT NULL REFERENCES orgs(org) ON DELETE CASCADE,
  id TEXT NOT NULL,
  token_hash TEXT NOT NULL,
  arch TEXT NOT NULL DEFAULT '',
  pattern TEXT NOT NULL DEFAULT '',
  public_key BLOB,
  mailbox TEXT NOT NULL DEFAULT '',
  last_heartbeat_ms INTEGER NOT NULL DEFAULT 0,
  registered_ms INTEGER NOT NULL DEFAULT 0,
  blob BLOB NOT NULL,
  PRIMARY KEY (org, id)
);
CREATE INDEX nodes_by_pattern ON nodes(pattern, org, id);
CREATE INDEX nodes_by_mailbox ON nodes(mailbox);
CREATE TABLE agbots (
  org TEXT NOT NULL REFERENCES orgs(org) ON DELETE CASCADE,
  id TEXT NOT NULL,
  token_hash TEXT NOT NULL,
  public_key BLOB,
  mailbox TEXT NOT NULL DEFAULT '',
  event_seq INTEGER NOT NULL DEFAULT 0,
  blob BLOB NOT NULL,
  PRIMARY KEY (org, id)
);
CREATE TABLE agbot_patterns (
  org TEXT NOT NULL,
  id TEXT NOT NULL,
  pattern_org TEXT NOT NULL,
  pattern TEXT NOT NULL,
  node_org TEXT NOT NULL,
  PRIMARY KEY (org, id, pattern_org, pattern, node_org),
  FOREIGN KEY (org, id) REFERENCES agbots(org, id) ON DELETE CASCADE
);
CREATE INDEX agbot_patterns_by_pattern ON agbot_patterns(pattern_org, pattern, node_org);
CREATE TABLE services (
  org TEXT NOT NULL REFERENCES orgs(org) ON DELETE CASCADE,
  id TEXT NOT NULL,
  url TEXT NOT NULL,
  version TEXT NOT NULL,
  arch TEXT NOT NULL,
  public INTEGER NOT NULL,
  blob BLOB NOT NULL,
  PRIMARY KEY (org, id)
);
CREATE INDEX services_by_url ON services(org, url, version, arch);
CREATE TABLE patterns (
  org TEXT NOT NULL REFERENCES orgs(org) ON DELETE CASCADE,
  id TEXT NOT NULL,
  public INTEGER NOT NULL,
  blob BLOB NOT NULL,
  PRIMARY KEY (org, id)
);
CREATE TABLE pattern_services (
  org TEXT NOT NULL,
  id TEXT NOT NULL,
  service_org TEXT NOT NULL,
  service_url TEXT NOT NULL,
  PRIMARY KEY (org, id, service_org, service_url),
  FOREIGN KEY (org, id) REFERENCES patterns(org, id) ON DELETE CASCADE
);
CREATE INDEX pattern_services_by_service ON pattern_services(service_org, service_url);
CREATE TABLE agreements (
  node_org TEXT NOT NULL,
  node_id TEXT NOT NULL,
  agreement_id TEXT NOT NULL,
  blob BLOB NOT NULL,
  PRIMARY KEY (node_org, node_id, agreement_id),
  FOREIGN KEY (node_org, node_id) REFERENCES nodes(org, id) ON DELETE CASCADE
);
)sql";

// Version 2: events wait here from the transaction that produced them until the broker has
// acknowledged their publish, so a crash between COMMIT and publish loses none.
constexpr std::string_view schema_v2 = R"sql(
CREATE TABLE event_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  recipient BLOB NOT NULL,
  mailbox TEXT NOT NULL,
  event BLOB NOT NULL
);
)sql";

// Version 3: who owns each mailbox (= broker username). One principal per mailbox; `proven` once
// the key holder sealed a RegisterNode / AgbotHello with that key (docs/security.md). Existing
// registrations are proven by their stored key.
constexpr std::string_view schema_v3 = R"sql(
CREATE TABLE mailbox_owners (
  mailbox TEXT PRIMARY KEY,
  kind INTEGER NOT NULL,
  org TEXT NOT NULL REFERENCES orgs(org) ON DELETE CASCADE,
  id TEXT NOT NULL,
  proven INTEGER NOT NULL
);
CREATE INDEX mailbox_owners_by_owner ON mailbox_owners(org, id, kind);
INSERT OR IGNORE INTO mailbox_owners SELECT mailbox, 2, org, id, 1 FROM nodes WHERE mailbox <> '';
INSERT OR IGNORE INTO mailbox_owners SELECT mailbox, 3, org, id, 1 FROM agbots WHERE mailbox <> '';
)sql";

// Version 4: the agbots of other orgs each org lets serve its nodes (index of Org.agbots,
// rewritten with the org). Existing orgs grant nothing: cross-org service needs the node
// org's consent from now on.
constexpr std::string_view schema_v4 = R"sql(
CREATE TABLE org_agbots (
  org TEXT NOT NULL REFERENCES orgs(org) ON DELETE CASCADE,
  agbot_org TEXT NOT NULL,
  agbot_id TEXT NOT NULL,
  PRIMARY KEY (org, agbot_org, agbot_id)
);
)sql";

// Version 5: exchange users get broker identities (docs/security.md "Operator identities"):
// `inbox` is the topic level the exchange answers a user on, derived with the broker secret
// from the password; existing users get one when their password is next set.
constexpr std::string_view schema_v5 = R"sql(
ALTER TABLE users ADD COLUMN inbox TEXT NOT NULL DEFAULT '';
)sql";

// Version 6: the broker password of every identity the exchange provisions, sealed to the
// exchange's own key, so that the start-up reconcile can create again an identity the broker
// does not have (docs/security.md "Crash-safe broker administration"). Identities provisioned
// before keep none until their token or password is next set.
constexpr std::string_view schema_v6 = R"sql(
CREATE TABLE broker_secrets (
  username TEXT PRIMARY KEY,
  kind INTEGER NOT NULL,
  sealed TEXT NOT NULL,
  secret_of TEXT NOT NULL
);
)sql";

constexpr std::array<core::store::migration, 6> migrations{{{1, schema_v1},
                                                            {2, schema_v2},
                                                            {3, schema_v3},
                                                            {4, schema_v4},
                                                            {5, schema_v5},
                                                            {6, schema_v6}}};

std::string_view table_name(table t) {
  switch (t) {
    case table::users:
      return "users";
    case table::nodes:
      return "nodes";
    case table::agbots:
      return "agbots";
    case table::services:
      return "services";
    case table::patterns:
      return "patterns";
  }
  return "users";
}

}  // namespace

namespace db_rows {

core::result<bool> exists(core::store::statement* st) {
  auto row = st->step();
  if (!row) return row.err();
  bool found = *row;
  st->reset();
  return found;
}

}  // namespace db_rows

result<db> db::open(const std::filesystem::path& path, core::store::open_options o) {
  auto d = core::store::database::open(path, o);
  if (!d) return d.err();
  db out(std::move(*d));
  if (auto r = out.migrate(); !r) return r.err();
  return out;
}

result<db> db::open_memory() {
  auto d = core::store::database::open_memory();
  if (!d) return d.err();
  db out(std::move(*d));
  if (auto r = out.migrate(); !r) return r.err();
  return out;
}

result<void> db::migrate() {
  if (auto r = db_.migrate(migrations); !r) return r;
  // Rollout progress (agbots publish it, `hmq rollout status` reads it). Created if missing
  // instead of a numbered migration so it merges with other schema work in any order.
  return db_.exec(R"sql(
CREATE TABLE IF NOT EXISTS rollout_status (
  pattern TEXT NOT NULL,
  service TEXT NOT NULL,
  agbot TEXT NOT NULL,
  blob BLOB NOT NULL,
  PRIMARY KEY (pattern, service, agbot)
);
)sql");
}

// ---- orgs

result<std::optional<fb::OrgT>> db::org_get(std::string_view name) {
  auto st = db_.cached("SELECT blob FROM orgs WHERE org = ?");
  if (!st) return st.err();
  (*st)->bind_all(name);
  auto row = (*st)->step();
  if (!row) return row.err();
  if (!*row) return std::optional<fb::OrgT>{};
  auto o = from_blob<fb::Org>(span_of((*st)->column_blob(0)));
  (*st)->reset();
  if (!o) return error{make_error_code(core::store::errc::corrupt), "org blob"};
  return o;
}

result<void> db::org_insert(const fb::OrgT& o) {
  auto st = db_.cached("INSERT INTO orgs (org, blob) VALUES (?, ?)");
  if (!st) return st.err();
  auto blob = to_blob<fb::Org>(o);
  (*st)->bind(1, o.name).bind(2, span_of(blob));
  if (auto r = (*st)->exec(); !r) return r.err();
  return org_agbots_put(o);
}

result<void> db::org_update(const fb::OrgT& o) {
  auto st = db_.cached("UPDATE orgs SET blob = ? WHERE org = ?");
  if (!st) return st.err();
  auto blob = to_blob<fb::Org>(o);
  (*st)->bind(1, span_of(blob)).bind(2, o.name);
  if (auto r = (*st)->exec(); !r) return r.err();
  return org_agbots_put(o);
}

// Rewrites the org_agbots rows of `o` from o.agbots ("org/id", validated by the handler).
result<void> db::org_agbots_put(const fb::OrgT& o) {
  auto del = db_.cached("DELETE FROM org_agbots WHERE org = ?");
  if (!del) return del.err();
  (*del)->bind_all(o.name);
  if (auto r = (*del)->exec(); !r) return r.err();
  auto ins =
      db_.cached("INSERT OR IGNORE INTO org_agbots (org, agbot_org, agbot_id) VALUES (?, ?, ?)");
  if (!ins) return ins.err();
  for (const auto& a : o.agbots) {
    auto slash = a.find('/');
    if (slash == std::string::npos) continue;
    (*ins)->bind_all(o.name, std::string_view(a).substr(0, slash),
                     std::string_view(a).substr(slash + 1));
    if (auto r = (*ins)->exec(); !r) return r.err();
  }
  return {};
}

result<bool> db::org_delete(std::string_view name) {
  auto st = db_.cached("DELETE FROM orgs WHERE org = ?");
  if (!st) return st.err();
  (*st)->bind_all(name);
  auto r = (*st)->exec();
  if (!r) return r.err();
  return *r > 0;
}

result<std::vector<fb::OrgT>> db::org_list(std::string_view after, uint32_t limit) {
  auto st = db_.cached("SELECT blob FROM orgs WHERE org > ? ORDER BY org LIMIT ?");
  if (!st) return st.err();
  (*st)->bind(1, after).bind(2, static_cast<int64_t>(limit));
  std::vector<fb::OrgT> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row) return row.err();
    if (!*row) break;
    if (auto o = from_blob<fb::Org>(span_of((*st)->column_blob(0)))) out.push_back(std::move(*o));
  }
  return out;
}

// ---- generic rows

result<std::optional<std::vector<uint8_t>>> db::blob_get(table t, std::string_view org,
                                                         std::string_view id) {
  auto st =
      db_.cached("SELECT blob FROM " + std::string(table_name(t)) + " WHERE org = ? AND id = ?");
  if (!st) return st.err();
  (*st)->bind_all(org, id);
  auto row = (*st)->step();
  if (!row) return row.err();
  if (!*row) return std::optional<std::vector<uint8_t>>{};
  auto blob = (*st)->column_blob(0);
  (*st)->reset();
  return std::optional<std::vector<uint8_t>>(std::move(blob));
}

result<bool> db::row_delete(table t, std::string_view org, std::string_view id) {
  auto st = db_.cached("DELETE FROM " + std::string(table_name(t)) + " WHERE org = ? AND id = ?");
  if (!st) return st.err();
  (*st)->bind_all(org, id);
  auto r = (*st)->exec();
  if (!r) return r.err();
  return *r > 0;
}

result<std::vector<blob_row>> db::blob_list(table t, std::string_view org, std::string_view after,
                                            uint32_t limit, bool public_only) {
  std::string sql = "SELECT org, id, blob FROM " + std::string(table_name(t)) +
                    " WHERE org = ? AND id > ?" + (public_only ? " AND public = 1" : "") +
                    " ORDER BY id LIMIT ?";
  auto st = db_.cached(sql);
  if (!st) return st.err();
  (*st)->bind(1, org).bind(2, after).bind(3, static_cast<int64_t>(limit));
  std::vector<blob_row> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row) return row.err();
    if (!*row) break;
    out.push_back({(*st)->column_text(0), (*st)->column_text(1), (*st)->column_blob(2)});
  }
  return out;
}

// ---- credentials

result<std::optional<credential>> db::credential_of(fb::AuthKind kind, std::string_view org,
                                                    std::string_view id) {
  std::string_view sql;
  switch (kind) {
    case fb::AuthKind::user:
      sql = "SELECT password_hash, admin, inbox FROM users WHERE org = ? AND id = ?";
      break;
    case fb::AuthKind::node:
      sql = "SELECT token_hash, 0, '' FROM nodes WHERE org = ? AND id = ?";
      break;
    case fb::AuthKind::agbot:
      sql = "SELECT token_hash, 0, '' FROM agbots WHERE org = ? AND id = ?";
      break;
    default:
      return std::optional<credential>{};
  }
  auto st = db_.cached(sql);
  if (!st) return st.err();
  (*st)->bind_all(org, id);
  auto row = (*st)->step();
  if (!row) return row.err();
  if (!*row) return std::optional<credential>{};
  credential c{(*st)->column_text(0), (*st)->column_int(1) != 0, (*st)->column_text(2)};
  (*st)->reset();
  return std::optional<credential>(std::move(c));
}

// ---- users

result<void> db::user_insert(const fb::UserT& u, std::string_view password_hash,
                             std::string_view inbox) {
  auto st = db_.cached(
      "INSERT INTO users (org, id, password_hash, admin, blob, inbox) VALUES (?, ?, ?, ?, ?, ?)");
  if (!st) return st.err();
  auto blob = to_blob<fb::User>(u);
  (*st)
      ->bind(1, u.org)
      .bind(2, u.username)
      .bind(3, password_hash)
      .bind(4, int64_t{u.admin})
      .bind(5, span_of(blob))
      .bind(6, inbox);
  if (auto r = (*st)->exec(); !r) return r.err();
  return {};
}

result<void> db::user_update(const fb::UserT& u, std::string_view password_hash,
                             std::string_view inbox) {
  auto st = db_.cached(
      "UPDATE users SET password_hash = CASE WHEN ?1 = '' THEN password_hash ELSE ?1 END, "
      "inbox = CASE WHEN ?1 = '' THEN inbox ELSE ?2 END, admin = ?3, blob = ?4 "
      "WHERE org = ?5 AND id = ?6");
  if (!st) return st.err();
  auto blob = to_blob<fb::User>(u);
  (*st)->bind(1, password_hash).bind(2, inbox).bind(3, int64_t{u.admin}).bind(4, span_of(blob));
  (*st)->bind(5, u.org).bind(6, u.username);
  if (auto r = (*st)->exec(); !r) return r.err();
  return {};
}

// ---- nodes

result<void> db::node_insert(const fb::NodeT& n, std::string_view token_hash) {
  auto st = db_.cached(
      "INSERT INTO nodes (org, id, token_hash, arch, pattern, public_key, mailbox, "
      "last_heartbeat_ms, "
      "registered_ms, blob) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!st) return st.err();
  auto blob = to_blob<fb::Node>(n);
  (*st)->bind(1, n.org).bind(2, n.id).bind(3, token_hash).bind(4, n.arch).bind(5, n.pattern);
  (*st)->bind(6, span_of(n.public_key)).bind(7, n.mailbox).bind(8, n.last_heartbeat_ms);
  (*st)->bind(9, n.registered_ms).bind(10, span_of(blob));
  if (auto r = (*st)->exec(); !r) return r.err();
  return {};
}

result<void> db::node_update(const fb::NodeT& n, std::string_view token_hash) {
  auto st = db_.cached(
      "UPDATE nodes SET token_hash = CASE WHEN ? = '' THEN token_hash ELSE ? END, arch = ?, "
      "pattern = ?, public_key = ?, mailbox = ?, last_heartbeat_ms = ?, registered_ms = ?, blob = "
      "? "
      "WHERE org = ? AND id = ?");
  if (!st) return st.err();
  auto blob = to_blob<fb::Node>(n);
  (*st)->bind(1, token_hash).bind(2, token_hash).bind(3, n.arch).bind(4, n.pattern);
  (*st)->bind(5, span_of(n.public_key)).bind(6, n.mailbox).bind(7, n.last_heartbeat_ms);
  (*st)->bind(8, n.registered_ms).bind(9, span_of(blob)).bind(10, n.org).bind(11, n.id);
  if (auto r = (*st)->exec(); !r) return r.err();
  return {};
}

result<std::vector<fb::NodeT>> db::nodes_of_pattern(std::string_view pattern,
                                                    std::string_view node_org,
                                                    std::string_view after, uint32_t limit) {
  auto st = db_.cached(
      "SELECT blob FROM nodes WHERE pattern = ? AND org = ? AND id > ? ORDER BY id LIMIT ?");
  if (!st) return st.err();
  (*st)->bind(1, pattern).bind(2, node_org).bind(3, after).bind(4, static_cast<int64_t>(limit));
  std::vector<fb::NodeT> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row) return row.err();
    if (!*row) break;
    if (auto n = from_blob<fb::Node>(span_of((*st)->column_blob(0)))) out.push_back(std::move(*n));
  }
  return out;
}

}  // namespace hmq::exchange
