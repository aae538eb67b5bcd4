#include "exchange/db.h"

namespace hmq::exchange {

// Who owns each mailbox: the table behind "a mailbox belongs to the key it is derived from"
// (docs/security.md "Mailbox ownership").

result<std::optional<mailbox_owner>> db::mailbox_owner_of(std::string_view mailbox) {
  auto st = db_.cached("SELECT kind, org, id, proven FROM mailbox_owners WHERE mailbox = ?");
  if (!st) return st.err();
  (*st)->bind_all(mailbox);
  auto row = (*st)->step();
  if (!row) return row.err();
  if (!*row) return std::optional<mailbox_owner>{};
  mailbox_owner o;
  o.kind = static_cast<fb::AuthKind>((*st)->column_int(0));
  o.org = (*st)->column_text(1);
  o.id = (*st)->column_text(2);
  o.proven = (*st)->column_int(3) != 0;
  return std::optional<mailbox_owner>{std::move(o)};
}

result<void> db::mailbox_bind(std::string_view mailbox, const mailbox_owner& owner) {
  if (auto r = mailbox_release(owner.kind, owner.org, owner.id); !r) return r;
  auto st = db_.cached(
      "INSERT OR REPLACE INTO mailbox_owners (mailbox, kind, org, id, proven) "
      "VALUES (?, ?, ?, ?, ?)");
  if (!st) return st.err();
  (*st)
      ->bind(1, mailbox)
      .bind(2, static_cast<int64_t>(owner.kind))
      .bind(3, owner.org)
      .bind(4, owner.id)
      .bind(5, static_cast<int64_t>(owner.proven ? 1 : 0));
  auto r = (*st)->exec();
  if (!r) return r.err();
  return core::ok();
}

result<void> db::mailbox_release(fb::AuthKind kind, std::string_view org, std::string_view id) {
  auto st = db_.cached("DELETE FROM mailbox_owners WHERE org = ? AND id = ? AND kind = ?");
  if (!st) return st.err();
  (*st)->bind(1, org).bind(2, id).bind(3, static_cast<int64_t>(kind));
  auto r = (*st)->exec();
  if (!r) return r.err();
  return core::ok();
}

result<std::optional<broker_secret>> db::broker_secret_get(std::string_view username) {
  auto st = db_.cached("SELECT kind, sealed, secret_of FROM broker_secrets WHERE username = ?");
  if (!st) return st.err();
  (*st)->bind_all(username);
  auto row = (*st)->step();
  if (!row) return row.err();
  if (!*row) return std::optional<broker_secret>{};
  broker_secret b;
  b.kind = static_cast<fb::AuthKind>((*st)->column_int(0));
  b.sealed = (*st)->column_text(1);
  b.secret_of = (*st)->column_text(2);
  (*st)->reset();
  return std::optional<broker_secret>{std::move(b)};
}

result<void> db::broker_secret_put(std::string_view username, const broker_secret& b) {
  auto st = db_.cached(
      "INSERT OR REPLACE INTO broker_secrets (username, kind, sealed, secret_of) "
      "VALUES (?, ?, ?, ?)");
  if (!st) return st.err();
  (*st)->bind_all(username, static_cast<int64_t>(b.kind), b.sealed, b.secret_of);
  auto r = (*st)->exec();
  if (!r) return r.err();
  return core::ok();
}

result<void> db::broker_secret_delete(std::string_view username) {
  auto st = db_.cached("DELETE FROM broker_secrets WHERE username = ?");
  if (!st) return st.err();
  (*st)->bind_all(username);
  auto r = (*st)->exec();
  if (!r) return r.err();
  return core::ok();
}

namespace {

// The first column of every row `st` yields.
result<std::set<std::string>> first_column(core::store::statement& st) {
  std::set<std::string> out;
  for (;;) {
    auto row = st.step();
    if (!row) return row.err();
    if (!*row) break;
    out.insert(st.column_text(0));
  }
  return out;
}

}  // namespace

result<std::set<std::string>> db::mailbox_all() {
  auto st = db_.cached("SELECT mailbox FROM mailbox_owners");
  if (!st) return st.err();
  return first_column(**st);
}

result<std::set<std::string>> db::user_identities(std::string_view org) {
  auto st =
      db_.cached("SELECT org || '/' || id FROM users WHERE inbox <> '' AND (?1 = '' OR org = ?1)");
  if (!st) return st.err();
  (*st)->bind(1, org);
  return first_column(**st);
}

}  // namespace hmq::exchange
