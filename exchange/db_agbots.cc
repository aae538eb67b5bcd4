#include "exchange/db.h"
#include "exchange/db_rows.h"

namespace hmq::exchange {

// Agbots, the patterns they serve, who must hear about a change, and the event outbox.

using core::error;
using core::store::statement;
using db_rows::exists;
using db_rows::span_of;

namespace {

// An agbot_patterns row `p` counts only for nodes of the agbot's own org or of an org that
// lets this agbot serve its nodes (Org.agbots; docs/security.md "Org boundaries").
#define HMQ_NODE_ORG_CONSENT                                                            \
  "(p.node_org = p.org OR EXISTS (SELECT 1 FROM org_agbots g WHERE g.org = p.node_org " \
  "AND g.agbot_org = p.org AND g.agbot_id = p.id))"

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

}  // namespace

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
      "SELECT 1 FROM agbot_patterns p WHERE p.org = ? AND p.id = ? AND p.pattern_org = ? AND "
      "p.pattern = ? AND (? = '' OR p.node_org = ?) AND " HMQ_NODE_ORG_CONSENT " LIMIT 1");
  if (!st) return st.err();
  (*st)->bind_all(org, id, pattern_org, pattern, node_org, node_org);
  return exists(*st);
}

result<bool> db::agbot_serves_service(std::string_view org, std::string_view id,
                                      std::string_view service_org, std::string_view service_url) {
  auto st = db_.cached(
      "SELECT 1 FROM agbot_patterns p JOIN pattern_services s ON s.org = p.pattern_org AND s.id = "
      "p.pattern "
      "WHERE p.org = ? AND p.id = ? AND s.service_org = ? AND s.service_url = ? "
      "AND " HMQ_NODE_ORG_CONSENT " LIMIT 1");
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
      "AND (? = '' OR p.node_org = ?) AND " HMQ_NODE_ORG_CONSENT " ORDER BY a.org, a.id");
  if (!st) return st.err();
  (*st)->bind_all(pattern_org, pattern, node_org, node_org);
  return read_addresses(*st);
}

result<std::vector<agbot_address>> db::agbots_serving_service(std::string_view service_org,
                                                              std::string_view service_url) {
  auto st = db_.cached(
      "SELECT DISTINCT a.org, a.id, a.public_key, a.mailbox FROM agbots a JOIN agbot_patterns p "
      "ON p.org = a.org AND p.id = a.id JOIN pattern_services s ON s.org = p.pattern_org "
      "AND s.id = p.pattern WHERE s.service_org = ? AND s.service_url = ? AND " HMQ_NODE_ORG_CONSENT
      " ORDER BY a.org, a.id");
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

result<uint64_t> db::event_seq(std::string_view org, std::string_view id) {
  auto st = db_.cached("SELECT event_seq FROM agbots WHERE org = ? AND id = ?");
  if (!st) return st.err();
  (*st)->bind_all(org, id);
  auto row = (*st)->step();
  if (!row) return row.err();
  auto seq = *row ? static_cast<uint64_t>((*st)->column_int(0)) : 0;
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

}  // namespace hmq::exchange
#undef HMQ_NODE_ORG_CONSENT
