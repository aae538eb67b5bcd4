#include "agbot/rollout_store.h"

#include "agbot/store_rows.h"

namespace hmq::agbot {
namespace {

constexpr std::string_view tables_sql = R"sql(
CREATE TABLE IF NOT EXISTS rollouts (
  key TEXT PRIMARY KEY,
  pattern TEXT NOT NULL,
  service TEXT NOT NULL,
  target TEXT NOT NULL,
  state INTEGER NOT NULL,
  max_in_flight INTEGER NOT NULL,
  batch_pause_s INTEGER NOT NULL,
  max_failures INTEGER NOT NULL,
  started_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rollout_nodes (
  key TEXT NOT NULL,
  slot TEXT NOT NULL,
  from_version TEXT NOT NULL,
  target TEXT NOT NULL,
  state INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (key, slot)
);
CREATE TABLE IF NOT EXISTS rollout_failures (
  slot TEXT NOT NULL,
  version TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  first_ms INTEGER NOT NULL,
  failed INTEGER NOT NULL,
  PRIMARY KEY (slot, version)
);
)sql";

// Every row of `sql`, each turned into a T by `read`.
template <typename T, typename F>
core::result<std::vector<T>> all_rows(core::store::database& db, std::string_view sql, F read) {
  auto st = db.prepare(sql);
  if (!st) return st.err();
  return read_rows<T>(*st, read);
}

// Binds `args` in order to the cached statement `st` and runs it.
template <typename... A>
core::result<void> exec(core::result<core::store::statement*> st, const A&... args) {
  if (!st) return st.err();
  (*st)->bind_all(args...);
  if (auto r = (*st)->exec(); !r) return r.err();
  return core::ok();
}

}  // namespace

core::result<rollout_store> rollout_store::open(core::store::database& db) {
  if (auto r = db.exec(tables_sql); !r) return r.err();
  return rollout_store(db);
}

// The readers list the columns in their SELECT's order.
core::result<std::vector<rollout_store::stored_rollout>> rollout_store::rollouts() {
  return all_rows<stored_rollout>(
      *db_,
      "SELECT key, pattern, service, target, state, max_in_flight, batch_pause_s, max_failures, "
      "started_ms, updated_ms FROM rollouts",
      [](const core::store::statement& s) {
        return stored_rollout{
            s.column_text(0),
            {s.column_text(1), s.column_text(2), s.column_text(3),
             static_cast<fb::RolloutState>(s.column_int(4)), static_cast<uint32_t>(s.column_int(5)),
             static_cast<uint32_t>(s.column_int(6)), static_cast<uint32_t>(s.column_int(7)),
             s.column_int(8), s.column_int(9)}};
      });
}

core::result<std::vector<rollout_store::stored_node>> rollout_store::nodes() {
  return all_rows<stored_node>(
      *db_, "SELECT key, slot, from_version, target, state, updated_ms FROM rollout_nodes",
      [](const core::store::statement& s) {
        return stored_node{s.column_text(0),
                           s.column_text(1),
                           {s.column_text(2), s.column_text(3),
                            static_cast<rollout_node_state>(s.column_int(4)), s.column_int(5)}};
      });
}

core::result<std::vector<rollout_store::stored_failure>> rollout_store::failures() {
  return all_rows<stored_failure>(
      *db_, "SELECT slot, version, attempts, first_ms, failed FROM rollout_failures",
      [](const core::store::statement& s) {
        return stored_failure{
            s.column_text(0),
            s.column_text(1),
            {static_cast<int>(s.column_int(2)), s.column_int(3), s.column_int(4) != 0}};
      });
}

core::result<void> rollout_store::put_rollout(const std::string& key, const rollout_record& r) {
  return exec(db_->cached("INSERT OR REPLACE INTO rollouts (key, pattern, service, target, state, "
                          "max_in_flight, batch_pause_s, max_failures, started_ms, updated_ms) "
                          "VALUES (?,?,?,?,?,?,?,?,?,?)"),
              key, r.pattern, r.service, r.target, static_cast<int64_t>(r.state),
              int64_t{r.max_in_flight}, int64_t{r.batch_pause_s}, int64_t{r.max_failures},
              r.started_ms, r.updated_ms);
}

core::result<void> rollout_store::put_node(const std::string& key, const std::string& slot,
                                           const rollout_node_record& n) {
  return exec(db_->cached("INSERT OR REPLACE INTO rollout_nodes (key, slot, from_version, target, "
                          "state, updated_ms) VALUES (?,?,?,?,?,?)"),
              key, slot, n.from_version, n.target, static_cast<int64_t>(n.state), n.updated_ms);
}

core::result<void> rollout_store::put_failure(const std::string& slot, const std::string& version,
                                              const rollout_failure_record& f) {
  return exec(db_->cached("INSERT OR REPLACE INTO rollout_failures (slot, version, attempts, "
                          "first_ms, failed) VALUES (?,?,?,?,?)"),
              slot, version, int64_t{f.attempts}, f.first_ms, int64_t{f.failed ? 1 : 0});
}

core::result<void> rollout_store::delete_node(const std::string& key, const std::string& slot) {
  return exec(db_->cached("DELETE FROM rollout_nodes WHERE key = ? AND slot = ?"), key, slot);
}

core::result<void> rollout_store::delete_rollout(const std::string& key) {
  // Both run even when the first fails (a rollout's nodes are never kept without it); the
  // first error is returned.
  auto first = exec(db_->cached("DELETE FROM rollouts WHERE key = ?"), key);
  auto nodes = exec(db_->cached("DELETE FROM rollout_nodes WHERE key = ?"), key);
  return first ? nodes : first;
}

}  // namespace hmq::agbot
