// Users: create, update (a user may change its own password), get, delete. Each user with a
// password set since schema v5 has a broker identity (docs/security.md "Operator identities").
#include "core/bus/credentials.h"
#include "exchange/handler.h"
#include "exchange/validate.h"

namespace hmq::exchange {

step handler::put_user(const void* in, bool insert) {
  auto u = unpack<fb::User>(in);
  HMQ_CHECK(check_id("org", u.org));
  HMQ_CHECK(check_id("username", u.username));
  HMQ_CHECK(check_secret("password", u.password, insert));
  HMQ_CHECK(check_text("email", u.email, max_name));
  std::string key = u.org + "/" + u.username;
  HMQ_CHECK(may_put(fb::ResourceKind::user, insert, u.org, u.username));
  if (u.org == "root" && u.username == "root" && !p_.root)
    return auth_.denied_on("modify", "user", key);
  std::string h;
  core::bus::user_identity ident;
  if (!u.password.empty()) {
    auto r = s_.hash(u.password);
    if (!r)
      return rpc_error{fb::RpcStatus::internal, "cannot hash password: " + r.err().message(), {}};
    h = std::move(*r);
    auto id = core::bus::derive_user_identity(u.org, u.username, u.password);
    if (!id)
      return rpc_error{
          fb::RpcStatus::internal, "cannot derive the broker identity: " + id.err().message(), {}};
    ident = std::move(*id);
  }
  u.password.clear();
  std::string had_inbox;
  bool recorder_changed = false;
  HMQ_CHECK(tx([&]() -> step {
    HMQ_CHECK(need_org(u.org));
    auto cur = db_.credential_of(fb::AuthKind::user, u.org, u.username);
    if (!cur) return internal(cur.err());
    HMQ_CHECK(expect_existing(insert, bool(*cur), "user", key));
    // A user may change its own password and email, not promote itself.
    if (!insert && !auth_.can_admin(u.org) && u.admin != (*cur)->admin)
      return auth_.denied_on("change the admin flag of", "user", key);
    // Reading the whole bus is the superuser's to grant (hmq exchange user allow-record).
    bool was_recorder = false;
    if (!insert) {
      auto old = db_.load<fb::User>(table::users, u.org, u.username);
      was_recorder = old && old->recorder;
      had_inbox = (*cur)->inbox;
    }
    recorder_changed = u.recorder != was_recorder;
    if (recorder_changed && !p_.root)
      return auth_.denied_on(u.recorder ? "grant bus recording to" : "revoke bus recording of",
                             "user", key);
    if (u.org == "root" && u.username == "root") u.admin = true;
    auto r = insert ? db_.user_insert(u, h, ident.inbox) : db_.user_update(u, h, ident.inbox);
    if (!r) return internal(r.err());
    return {};
  }));
  if (!h.empty()) {
    s_.cache_.forget(fb::AuthKind::user, u.org, u.username);
    broker_.push_back(user_broker_change(ident, u.recorder, had_inbox));
  } else if (recorder_changed && !had_inbox.empty()) {
    auto c = party_broker_change(broker_change::action::set_recorder, fb::AuthKind::user,
                                 u.org + "/" + u.username);
    c.recorder = u.recorder;
    broker_.push_back(std::move(c));
  }
  set_item(std::move(u));
  return {};
}

step handler::get_user(const key_parts& k) {
  auto u = db_.load<fb::User>(table::users, k.org, k.id);
  if (!u) return missing(k);
  set_item(std::move(*u));
  return {};
}

step handler::remove_user(const key_parts& k) {
  if (k.org == "root" && k.id == "root") return forbidden("user root/root cannot be deleted");
  HMQ_CHECK(tx([&]() -> step {
    auto cur = db_.credential_of(fb::AuthKind::user, k.org, k.id);
    if (!cur) return internal(cur.err());
    if (*cur && !(*cur)->inbox.empty()) broker_remove(fb::AuthKind::user, k.org + "/" + k.id);
    auto d = db_.row_delete(table::users, k.org, k.id);
    if (!d) return internal(d.err());
    return *d ? step{} : step{missing(k)};
  }));
  s_.cache_.forget(fb::AuthKind::user, k.org, k.id);
  return {};
}

}  // namespace hmq::exchange
