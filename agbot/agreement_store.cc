#include "agbot/agreement_store.h"

#include <cstring>

#include "agbot/store_rows.h"

namespace hmq::agbot {
namespace {

using core::store::migration;

constexpr migration migrations[] = {
    {1, R"sql(
CREATE TABLE agreements (
  id TEXT PRIMARY KEY,
  node_org TEXT NOT NULL,
  node_id TEXT NOT NULL,
  pattern TEXT NOT NULL,
  service_org TEXT NOT NULL,
  service_url TEXT NOT NULL,
  service_version TEXT NOT NULL,
  arch TEXT NOT NULL,
  node_key BLOB NOT NULL,
  state INTEGER NOT NULL,
  reason INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  deadline_ms INTEGER NOT NULL DEFAULT 0,
  message_confirmed INTEGER NOT NULL DEFAULT 0,
  exchange_synced INTEGER NOT NULL DEFAULT 0,
  proposal BLOB
);
-- At most one live (proposed = 1, finalized = 3) agreement per node, pattern and service.
CREATE UNIQUE INDEX agreements_one_live
  ON agreements(node_org, node_id, pattern, service_org, service_url) WHERE state IN (1, 3);
CREATE INDEX agreements_updated ON agreements(updated_ms);
)sql"},
    // Upgrades: a live agreement may be shadowed by one live agreement that supersedes it
    // (docs/agbot.md "Rollouts"); still never two plain or two superseding ones per slot.
    {2, R"sql(
ALTER TABLE agreements ADD COLUMN supersedes TEXT NOT NULL DEFAULT '';
DROP INDEX agreements_one_live;
CREATE UNIQUE INDEX agreements_one_live
  ON agreements(node_org, node_id, pattern, service_org, service_url, supersedes <> '')
  WHERE state IN (1, 3);
)sql"},
};

constexpr std::string_view columns =
    "id, node_org, node_id, pattern, service_org, service_url, service_version, arch, node_key, "
    "state, reason, created_ms, updated_ms, deadline_ms, message_confirmed, exchange_synced, "
    "proposal, supersedes";

agreement read_row(const core::store::statement& s) {
  agreement a;
  a.id = s.column_text(0);
  a.node_org = s.column_text(1);
  a.node_id = s.column_text(2);
  a.pattern = s.column_text(3);
  a.service_org = s.column_text(4);
  a.service_url = s.column_text(5);
  a.service_version = s.column_text(6);
  a.arch = s.column_text(7);
  auto key = s.column_blob(8);
  if (key.size() == a.node_key.size()) std::memcpy(a.node_key.data(), key.data(), key.size());
  a.state = static_cast<fb::AgreementState>(s.column_int(9));
  a.reason = static_cast<uint16_t>(s.column_int(10));
  a.created_ms = s.column_int(11);
  a.updated_ms = s.column_int(12);
  a.deadline_ms = s.column_int(13);
  a.message_confirmed = s.column_int(14) != 0;
  a.exchange_synced = s.column_int(15) != 0;
  a.proposal = s.column_blob(16);
  a.supersedes = s.column_text(17);
  return a;
}

core::result<std::vector<agreement>> query(core::store::database& db, const std::string& sql,
                                           std::optional<int64_t> arg = {}) {
  auto st = db.prepare(sql);
  if (!st) return st.err();
  if (arg) st->bind(1, *arg);
  return read_rows<agreement>(*st, read_row);
}

}  // namespace

std::string agreement::slot() const {
  return node_org + "/" + node_id + "|" + pattern + "|" + service_org + "/" + service_url;
}

core::result<agreement_store> agreement_store::open(const std::filesystem::path& path) {
  auto db = core::store::database::open(path);
  if (!db) return db.err();
  agreement_store s(std::move(*db));
  if (auto r = s.init(); !r) return r.err();
  return s;
}

core::result<agreement_store> agreement_store::open_memory() {
  auto db = core::store::database::open_memory();
  if (!db) return db.err();
  agreement_store s(std::move(*db));
  if (auto r = s.init(); !r) return r.err();
  return s;
}

core::result<void> agreement_store::init() {
  return db_.migrate(migrations);
}

core::result<void> agreement_store::write(const std::function<core::result<void>()>& fn) {
  if (!group_) return fn();
  core::result<void> r;
  group_->add([&] { r = fn(); });
  return r;
}

core::result<void> agreement_store::insert(const agreement& a) {
  return write([&]() -> core::result<void> {
    auto st = db_.cached(std::string("INSERT INTO agreements (") + std::string(columns) +
                         ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!st) return st.err();
    auto& s = **st;
    s.bind_all(a.id, a.node_org, a.node_id, a.pattern, a.service_org, a.service_url,
               a.service_version, a.arch);
    s.bind(9, std::span<const uint8_t>(a.node_key));
    s.bind(10, static_cast<int64_t>(a.state));
    s.bind(11, static_cast<int64_t>(a.reason));
    s.bind(12, a.created_ms);
    s.bind(13, a.updated_ms);
    s.bind(14, a.deadline_ms);
    s.bind(15, static_cast<int64_t>(a.message_confirmed));
    s.bind(16, static_cast<int64_t>(a.exchange_synced));
    s.bind(17, std::span<const uint8_t>(a.proposal));
    s.bind(18, a.supersedes);
    auto r = s.exec();
    if (!r) return r.err();
    return core::ok();
  });
}

core::result<void> agreement_store::update(const agreement& a) {
  return write([&]() -> core::result<void> {
    auto st = db_.cached(
        "UPDATE agreements SET state = ?, reason = ?, updated_ms = ?, deadline_ms = ?, "
        "message_confirmed = ?, exchange_synced = ? WHERE id = ?");
    if (!st) return st.err();
    auto& s = **st;
    s.bind(1, static_cast<int64_t>(a.state));
    s.bind(2, static_cast<int64_t>(a.reason));
    s.bind(3, a.updated_ms);
    s.bind(4, a.deadline_ms);
    s.bind(5, static_cast<int64_t>(a.message_confirmed));
    s.bind(6, static_cast<int64_t>(a.exchange_synced));
    s.bind(7, a.id);
    auto r = s.exec();
    if (!r) return r.err();
    return core::ok();
  });
}

core::result<void> agreement_store::set_message_confirmed(const std::string& id) {
  return write([&]() -> core::result<void> {
    auto st = db_.cached("UPDATE agreements SET message_confirmed = 1 WHERE id = ?");
    if (!st) return st.err();
    (*st)->bind(1, id);
    auto r = (*st)->exec();
    if (!r) return r.err();
    return core::ok();
  });
}

core::result<void> agreement_store::set_supersedes(const std::string& id,
                                                   const std::string& supersedes) {
  return write([&]() -> core::result<void> {
    auto st = db_.cached("UPDATE agreements SET supersedes = ? WHERE id = ?");
    if (!st) return st.err();
    (*st)->bind_all(supersedes, id);
    auto r = (*st)->exec();
    if (!r) return r.err();
    return core::ok();
  });
}

core::result<void> agreement_store::set_exchange_synced(const std::string& id) {
  return write([&]() -> core::result<void> {
    auto st = db_.cached("UPDATE agreements SET exchange_synced = 1 WHERE id = ?");
    if (!st) return st.err();
    (*st)->bind(1, id);
    auto r = (*st)->exec();
    if (!r) return r.err();
    return core::ok();
  });
}

core::result<std::optional<agreement>> agreement_store::get(const std::string& id) {
  auto st = db_.cached("SELECT " + std::string(columns) + " FROM agreements WHERE id = ?");
  if (!st) return st.err();
  (*st)->bind(1, id);
  auto row = (*st)->step();
  if (!row) return row.err();
  if (!*row) return std::optional<agreement>{};
  return std::optional<agreement>{read_row(**st)};
}

core::result<std::vector<agreement>> agreement_store::load_unsettled() {
  return query(db_, "SELECT " + std::string(columns) +
                        " FROM agreements WHERE state IN (1, 3) OR (state = 4 AND "
                        "(message_confirmed = 0 OR exchange_synced = 0)) ORDER BY created_ms");
}

core::result<std::vector<agreement>> agreement_store::list(size_t limit) {
  return query(
      db_,
      "SELECT " + std::string(columns) + " FROM agreements ORDER BY updated_ms DESC, id LIMIT ?",
      static_cast<int64_t>(limit));
}

}  // namespace hmq::agbot
