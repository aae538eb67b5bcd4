#include "exchange/db.h"
#include "exchange/db_rows.h"

namespace hmq::exchange {

// Agreement records, node status reports and rollout progress.

using db_rows::span_of;

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
