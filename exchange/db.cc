#include "exchange/db.h"

#include <array>

namespace hmq::exchange {
namespace {

using core::error;
using core::store::statement;

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

constexpr std::array<core::store::migration, 2> migrations{{{1, schema_v1}, {2, schema_v2}}};

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

std::span<const uint8_t> span_of(const std::vector<uint8_t>& v) {
  return {v.data(), v.size()};
}

// Runs a statement that returns rows of (org, id, public_key, mailbox).
result<std::vector<agbot_address>> read_addresses(statement* st) {
  std::vector<agbot_address> out;
  for (;;) {
    auto row = st->step();
    if (!row) return row.err();
    if (!*row) break;
    auto pk = st->column_blob(2);
    if (pk.size() != core::crypto::public_key_size) continue;
    agbot_address a;
    a.org = st->column_text(0);
    a.id = st->column_text(1);
    std::copy(pk.begin(), pk.end(), a.public_key.begin());
    a.mailbox = st->column_text(3);
    out.push_back(std::move(a));
  }
  return out;
}

result<bool> exists(statement* st) {
  auto row = st->step();
  if (!row) return row.err();
  bool found = *row;
  st->reset();
  return found;
}

}  // namespace

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
  return {};
}

result<void> db::org_update(const fb::OrgT& o) {
  auto st = db_.cached("UPDATE orgs SET blob = ? WHERE org = ?");
  if (!st) return st.err();
  auto blob = to_blob<fb::Org>(o);
  (*st)->bind(1, span_of(blob)).bind(2, o.name);
  if (auto r = (*st)->exec(); !r) return r.err();
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
      sql = "SELECT password_hash, admin FROM users WHERE org = ? AND id = ?";
      break;
    case fb::AuthKind::node:
      sql = "SELECT token_hash, 0 FROM nodes WHERE org = ? AND id = ?";
      break;
    case fb::AuthKind::agbot:
      sql = "SELECT token_hash, 0 FROM agbots WHERE org = ? AND id = ?";
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
  credential c{(*st)->column_text(0), (*st)->column_int(1) != 0};
  (*st)->reset();
  return std::optional<credential>(std::move(c));
}

// ---- users

result<void> db::user_insert(const fb::UserT& u, std::string_view password_hash) {
  auto st =
      db_.cached("INSERT INTO users (org, id, password_hash, admin, blob) VALUES (?, ?, ?, ?, ?)");
  if (!st) return st.err();
  auto blob = to_blob<fb::User>(u);
  (*st)
      ->bind(1, u.org)
      .bind(2, u.username)
      .bind(3, password_hash)
      .bind(4, int64_t{u.admin})
      .bind(5, span_of(blob));
  if (auto r = (*st)->exec(); !r) return r.err();
  return {};
}

result<void> db::user_update(const fb::UserT& u, std::string_view password_hash) {
  auto st = db_.cached(
      "UPDATE users SET password_hash = CASE WHEN ? = '' THEN password_hash ELSE ? END, admin = ?, "
      "blob = ? WHERE org = ? AND id = ?");
  if (!st) return st.err();
  auto blob = to_blob<fb::User>(u);
  (*st)
      ->bind(1, password_hash)
      .bind(2, password_hash)
      .bind(3, int64_t{u.admin})
      .bind(4, span_of(blob));
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

// ---- agbots

result<void> db::agbot_insert(const fb::AgbotT& a, std::string_view token_hash) {
  auto st = db_.cached(
      "INSERT INTO agbots (org, id, token_hash, public_key, mailbox, blob) VALUES (?, ?, ?, ?, ?, "
      "?)");
  if (!st) return st.err();
  fb::AgbotT stored = a;
  stored.patterns.clear();
  auto blob = to_blob<fb::Agbot>(stored);
  (*st)->bind(1, a.org).bind(2, a.id).bind(3, token_hash).bind(4, span_of(a.public_key));
  (*st)->bind(5, a.mailbox).bind(6, span_of(blob));
  if (auto r = (*st)->exec(); !r) return r.err();
  return {};
}

result<void> db::agbot_update(const fb::AgbotT& a, std::string_view token_hash) {
  auto st = db_.cached(
      "UPDATE agbots SET token_hash = CASE WHEN ? = '' THEN token_hash ELSE ? END, public_key = ?, "
      "mailbox = ?, blob = ? WHERE org = ? AND id = ?");
  if (!st) return st.err();
  fb::AgbotT stored = a;
  stored.patterns.clear();
  auto blob = to_blob<fb::Agbot>(stored);
  (*st)->bind(1, token_hash).bind(2, token_hash).bind(3, span_of(a.public_key)).bind(4, a.mailbox);
  (*st)->bind(5, span_of(blob)).bind(6, a.org).bind(7, a.id);
  if (auto r = (*st)->exec(); !r) return r.err();
  return {};
}

result<std::vector<fb::AgbotPatternT>> db::agbot_patterns(std::string_view org,
                                                          std::string_view id) {
  auto st = db_.cached(
      "SELECT pattern_org, pattern, node_org FROM agbot_patterns WHERE org = ? AND id = ? "
      "ORDER BY pattern_org, pattern, node_org");
  if (!st) return st.err();
  (*st)->bind_all(org, id);
  std::vector<fb::AgbotPatternT> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row) return row.err();
    if (!*row) break;
    fb::AgbotPatternT p;
    p.pattern_org = (*st)->column_text(0);
    p.pattern = (*st)->column_text(1);
    p.node_org = (*st)->column_text(2);
    out.push_back(std::move(p));
  }
  return out;
}

result<bool> db::agbot_add_pattern(std::string_view org, std::string_view id,
                                   const fb::AgbotPatternT& p) {
  auto st = db_.cached(
      "INSERT OR IGNORE INTO agbot_patterns (org, id, pattern_org, pattern, node_org) VALUES (?, "
      "?, ?, ?, ?)");
  if (!st) return st.err();
  (*st)->bind_all(org, id, p.pattern_org, p.pattern, p.node_org);
  auto r = (*st)->exec();
  if (!r) return r.err();
  return *r > 0;
}

result<bool> db::agbot_remove_pattern(std::string_view org, std::string_view id,
                                      const fb::AgbotPatternT& p) {
  auto st = db_.cached(
      "DELETE FROM agbot_patterns WHERE org = ? AND id = ? AND pattern_org = ? AND pattern = ? AND "
      "node_org = ?");
  if (!st) return st.err();
  (*st)->bind_all(org, id, p.pattern_org, p.pattern, p.node_org);
  auto r = (*st)->exec();
  if (!r) return r.err();
  return *r > 0;
}

result<bool> db::agbot_serves(std::string_view org, std::string_view id,
                              std::string_view pattern_org, std::string_view pattern,
                              std::string_view node_org) {
  auto st = db_.cached(
      "SELECT 1 FROM agbot_patterns WHERE org = ? AND id = ? AND pattern_org = ? AND pattern = ? "
      "AND (? = '' OR node_org = ?) LIMIT 1");
  if (!st) return st.err();
  (*st)->bind_all(org, id, pattern_org, pattern, node_org, node_org);
  return exists(*st);
}

result<bool> db::agbot_serves_service(std::string_view org, std::string_view id,
                                      std::string_view service_org, std::string_view service_url) {
  auto st = db_.cached(
      "SELECT 1 FROM agbot_patterns p JOIN pattern_services s ON s.org = p.pattern_org AND s.id = "
      "p.pattern "
      "WHERE p.org = ? AND p.id = ? AND s.service_org = ? AND s.service_url = ? LIMIT 1");
  if (!st) return st.err();
  (*st)->bind_all(org, id, service_org, service_url);
  return exists(*st);
}

result<std::vector<agbot_address>> db::agbots_serving_pattern(std::string_view pattern_org,
                                                              std::string_view pattern,
                                                              std::string_view node_org) {
  auto st = db_.cached(
      "SELECT DISTINCT a.org, a.id, a.public_key, a.mailbox FROM agbots a JOIN agbot_patterns p "
      "ON p.org = a.org AND p.id = a.id WHERE p.pattern_org = ? AND p.pattern = ? "
      "AND (? = '' OR p.node_org = ?) ORDER BY a.org, a.id");
  if (!st) return st.err();
  (*st)->bind_all(pattern_org, pattern, node_org, node_org);
  return read_addresses(*st);
}

result<std::vector<agbot_address>> db::agbots_serving_service(std::string_view service_org,
                                                              std::string_view service_url) {
  auto st = db_.cached(
      "SELECT DISTINCT a.org, a.id, a.public_key, a.mailbox FROM agbots a JOIN agbot_patterns p "
      "ON p.org = a.org AND p.id = a.id JOIN pattern_services s ON s.org = p.pattern_org "
      "AND s.id = p.pattern WHERE s.service_org = ? AND s.service_url = ? ORDER BY a.org, a.id");
  if (!st) return st.err();
  (*st)->bind_all(service_org, service_url);
  return read_addresses(*st);
}

result<uint64_t> db::next_event_seq(std::string_view org, std::string_view id) {
  auto st = db_.cached(
      "UPDATE agbots SET event_seq = event_seq + 1 WHERE org = ? AND id = ? RETURNING event_seq");
  if (!st) return st.err();
  (*st)->bind_all(org, id);
  auto row = (*st)->step();
  if (!row) return row.err();
  if (!*row) return error{make_error_code(core::store::errc::sql_error), "agbot vanished"};
  auto seq = static_cast<uint64_t>((*st)->column_int(0));
  (*st)->reset();
  return seq;
}

// ---- event outbox

result<int64_t> db::outbox_add(const core::crypto::public_key& recipient, std::string_view mailbox,
                               const fb::EventT& e) {
  auto st = db_.cached("INSERT INTO event_outbox (recipient, mailbox, event) VALUES (?, ?, ?)");
  if (!st) return st.err();
  auto blob = to_blob<fb::Event>(e);
  (*st)->bind(1, std::span<const uint8_t>(recipient)).bind(2, mailbox).bind(3, span_of(blob));
  if (auto r = (*st)->exec(); !r) return r.err();
  return db_.last_insert_rowid();
}

result<void> db::outbox_delete(int64_t id) {
  auto st = db_.cached("DELETE FROM event_outbox WHERE id = ?");
  if (!st) return st.err();
  (*st)->bind(1, id);
  if (auto r = (*st)->exec(); !r) return r.err();
  return {};
}

result<std::vector<outbox_entry>> db::outbox_all() {
  auto st = db_.cached("SELECT id, recipient, mailbox, event FROM event_outbox ORDER BY id");
  if (!st) return st.err();
  std::vector<outbox_entry> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row) return row.err();
    if (!*row) break;
    auto pk = (*st)->column_blob(1);
    auto e = from_blob<fb::Event>(span_of((*st)->column_blob(3)));
    if (pk.size() != core::crypto::public_key_size || !e) continue;
    outbox_entry o;
    o.id = (*st)->column_int(0);
    std::copy(pk.begin(), pk.end(), o.recipient.begin());
    o.mailbox = (*st)->column_text(2);
    o.event = std::move(*e);
    out.push_back(std::move(o));
  }
  return out;
}

// ---- services

result<void> db::service_put(const fb::ServiceT& s, std::string_view id, bool insert) {
  auto st = db_.cached(
      insert ? "INSERT INTO services (url, version, arch, public, blob, org, id) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)"
             : "UPDATE services SET url = ?, version = ?, arch = ?, public = ?, blob = ? "
               "WHERE org = ? AND id = ?");
  if (!st) return st.err();
  auto blob = to_blob<fb::Service>(s);
  (*st)->bind(1, s.url).bind(2, s.version).bind(3, s.arch).bind(4, int64_t{s.public_});
  (*st)->bind(5, span_of(blob)).bind(6, s.org).bind(7, id);
  if (auto r = (*st)->exec(); !r) return r.err();
  return {};
}

result<std::optional<bool>> db::service_public(std::string_view org, std::string_view url,
                                               std::string_view version, std::string_view arch) {
  auto st = db_.cached(
      "SELECT MAX(public) FROM services WHERE org = ? AND url = ? AND version = ? AND (? = '*' OR "
      "arch = ?) "
      "HAVING COUNT(*) > 0");
  if (!st) return st.err();
  (*st)->bind_all(org, url, version, arch, arch);
  auto row = (*st)->step();
  if (!row) return row.err();
  if (!*row) return std::optional<bool>{};
  bool pub = (*st)->column_int(0) != 0;
  (*st)->reset();
  return std::optional<bool>(pub);
}

// ---- patterns

result<void> db::pattern_put(const fb::PatternT& p, bool insert) {
  auto st =
      db_.cached(insert ? "INSERT INTO patterns (public, blob, org, id) VALUES (?, ?, ?, ?)"
                        : "UPDATE patterns SET public = ?, blob = ? WHERE org = ? AND id = ?");
  if (!st) return st.err();
  auto blob = to_blob<fb::Pattern>(p);
  (*st)->bind(1, int64_t{p.public_}).bind(2, span_of(blob)).bind(3, p.org).bind(4, p.name);
  if (auto r = (*st)->exec(); !r) return r.err();
  auto del = db_.cached("DELETE FROM pattern_services WHERE org = ? AND id = ?");
  if (!del) return del.err();
  (*del)->bind_all(p.org, p.name);
  if (auto r = (*del)->exec(); !r) return r.err();
  for (const auto& s : p.services) {
    if (!s) continue;
    auto ins = db_.cached(
        "INSERT OR IGNORE INTO pattern_services (org, id, service_org, service_url) VALUES (?, ?, "
        "?, ?)");
    if (!ins) return ins.err();
    (*ins)->bind_all(p.org, p.name, s->service_org, s->service_url);
    if (auto r = (*ins)->exec(); !r) return r.err();
  }
  return {};
}

result<bool> db::pattern_references(std::string_view org, std::string_view name,
                                    std::string_view service_org, std::string_view service_url) {
  auto st = db_.cached(
      "SELECT 1 FROM pattern_services WHERE org = ? AND id = ? AND service_org = ? AND service_url "
      "= ?");
  if (!st) return st.err();
  (*st)->bind_all(org, name, service_org, service_url);
  return exists(*st);
}

// ---- agreements

result<void> db::agreement_put(const fb::AgreementRecordT& r) {
  auto st = db_.cached(
      "INSERT INTO agreements (node_org, node_id, agreement_id, blob) VALUES (?, ?, ?, ?) "
      "ON CONFLICT (node_org, node_id, agreement_id) DO UPDATE SET blob = excluded.blob");
  if (!st) return st.err();
  auto blob = to_blob<fb::AgreementRecord>(r);
  (*st)->bind(1, r.node_org).bind(2, r.node_id).bind(3, r.agreement_id).bind(4, span_of(blob));
  if (auto e = (*st)->exec(); !e) return e.err();
  return {};
}

result<std::vector<fb::AgreementRecordT>> db::agreement_list(std::string_view node_org,
                                                             std::string_view node_id) {
  auto st = db_.cached(
      "SELECT blob FROM agreements WHERE node_org = ? AND node_id = ? ORDER BY agreement_id");
  if (!st) return st.err();
  (*st)->bind_all(node_org, node_id);
  std::vector<fb::AgreementRecordT> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row) return row.err();
    if (!*row) break;
    if (auto r = from_blob<fb::AgreementRecord>(span_of((*st)->column_blob(0))))
      out.push_back(std::move(*r));
  }
  return out;
}

result<bool> db::agreement_delete(std::string_view node_org, std::string_view node_id,
                                  std::string_view id) {
  auto st =
      db_.cached("DELETE FROM agreements WHERE node_org = ? AND node_id = ? AND agreement_id = ?");
  if (!st) return st.err();
  (*st)->bind_all(node_org, node_id, id);
  auto r = (*st)->exec();
  if (!r) return r.err();
  return *r > 0;
}

result<int64_t> db::agreement_delete_all(std::string_view node_org, std::string_view node_id) {
  auto st = db_.cached("DELETE FROM agreements WHERE node_org = ? AND node_id = ?");
  if (!st) return st.err();
  (*st)->bind_all(node_org, node_id);
  return (*st)->exec();
}

result<void> db::ensure_status_table() {
  if (status_table_) return core::ok();
  if (auto r =
          db_.exec("CREATE TABLE IF NOT EXISTS node_status (org TEXT NOT NULL, id TEXT NOT NULL, "
                   "received_ms INTEGER NOT NULL, report BLOB NOT NULL, PRIMARY KEY (org, id), "
                   "FOREIGN KEY (org, id) REFERENCES nodes(org, id) ON DELETE CASCADE)");
      !r)
    return r.err();
  status_table_ = true;
  return core::ok();
}

result<void> db::node_status_put(std::string_view org, std::string_view id,
                                 std::span<const uint8_t> report, int64_t received_ms) {
  if (auto r = ensure_status_table(); !r) return r.err();
  auto st = db_.cached(
      "INSERT INTO node_status (org, id, received_ms, report) VALUES (?, ?, ?, ?) "
      "ON CONFLICT(org, id) DO UPDATE SET received_ms = excluded.received_ms, "
      "report = excluded.report");
  if (!st) return st.err();
  (*st)->bind(1, org).bind(2, id).bind(3, received_ms).bind(4, report);
  if (auto r = (*st)->exec(); !r) return r.err();
  return core::ok();
}

result<std::optional<db::node_status_row>> db::node_status_get(std::string_view org,
                                                               std::string_view id) {
  if (auto r = ensure_status_table(); !r) return r.err();
  auto st = db_.cached(
      "SELECT n.last_heartbeat_ms, s.received_ms, s.report FROM nodes n LEFT JOIN node_status s "
      "ON s.org = n.org AND s.id = n.id WHERE n.org = ? AND n.id = ?");
  if (!st) return st.err();
  (*st)->bind(1, org).bind(2, id);
  auto row = (*st)->step();
  if (!row) return row.err();
  if (!*row) {
    (*st)->reset();
    return std::optional<node_status_row>{};
  }
  node_status_row out;
  out.last_heartbeat_ms = (*st)->column_int(0);
  if (!(*st)->column_is_null(1)) {
    out.received_ms = (*st)->column_int(1);
    out.report = (*st)->column_blob(2);
  }
  (*st)->reset();
  return std::optional<node_status_row>{std::move(out)};
}

// ---- rollouts

result<void> db::rollout_put(const fb::RolloutStatusT& s) {
  auto st = db_.cached(
      "INSERT INTO rollout_status (pattern, service, agbot, blob) VALUES (?, ?, ?, ?) "
      "ON CONFLICT (pattern, service, agbot) DO UPDATE SET blob = excluded.blob");
  if (!st) return st.err();
  auto blob = to_blob<fb::RolloutStatus>(s);
  (*st)->bind_all(s.pattern, s.service_org + "/" + s.service_url, s.agbot);
  (*st)->bind(4, span_of(blob));
  if (auto e = (*st)->exec(); !e) return e.err();
  return {};
}

result<std::vector<fb::RolloutStatusT>> db::rollout_list(std::string_view pattern) {
  auto st = db_.cached("SELECT blob FROM rollout_status WHERE pattern = ? ORDER BY service, agbot");
  if (!st) return st.err();
  (*st)->bind_all(pattern);
  std::vector<fb::RolloutStatusT> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row) return row.err();
    if (!*row) break;
    if (auto r = from_blob<fb::RolloutStatus>(span_of((*st)->column_blob(0))))
      out.push_back(std::move(*r));
  }
  return out;
}

}  // namespace hmq::exchange
