#include "exchange/service.h"

#include <memory>

#include "exchange/handler.h"

namespace hmq::exchange {

namespace crypto = core::crypto;

service::service(db& d, const crypto::box_keypair& self, const core::loop::clock& clock,
                 service_options o)
    : db_(d), self_(self), clock_(clock), opts_(o), cache_(o.credential_cache_max) {}

result<std::string> service::hash(std::string_view secret) {
  return crypto::hash_password(secret, opts_.strength);
}

broker_change party_broker_change(broker_change::action what, fb::AuthKind kind,
                                  std::string username, std::string token) {
  broker_change c;
  c.what = what;
  c.kind = kind;
  c.username = std::move(username);
  c.token = std::move(token);
  return c;
}

broker_change user_broker_change(const core::bus::user_identity& id, bool recorder,
                                 std::string old_inbox) {
  broker_change c;
  c.what = broker_change::action::ensure;
  c.kind = fb::AuthKind::user;
  c.username = id.username;
  c.password = id.password;
  c.inbox = id.inbox;
  c.recorder = recorder;
  c.old_inbox = std::move(old_inbox);
  return c;
}

result<std::vector<broker_change>> service::bootstrap_root(std::string_view root_password) {
  auto existing = db_.credential_of(fb::AuthKind::user, "root", "root");
  if (!existing) return existing.err();
  if (root_password.empty()) {
    if (*existing) return std::vector<broker_change>{};
    return core::error{
        make_error_code(core::store::errc::sql_error),
        "no root password given and no root user exists: set --root-password or HMQ_ROOT_PASSWORD"};
  }
  auto h = hash(root_password);
  if (!h) return h.err();
  auto ident = core::bus::derive_user_identity("root", "root", root_password);
  if (!ident) return ident.err();
  bool recorder = false;
  auto r = db_.transaction([&]() -> result<void> {
    auto org = db_.org_get("root");
    if (!org) return org.err();
    if (!*org) {
      fb::OrgT o;
      o.name = "root";
      o.label = "root";
      o.description = "The exchange's own organization";
      if (auto e = db_.org_insert(o); !e) return e;
    }
    fb::UserT u;
    if (auto old = db_.load<fb::User>(table::users, "root", "root")) u = std::move(*old);
    u.org = "root";
    u.username = "root";
    u.admin = true;
    recorder = u.recorder;
    if (*existing) return db_.user_update(u, *h, ident->inbox);
    return db_.user_insert(u, *h, ident->inbox);
  });
  cache_.forget(fb::AuthKind::user, "root", "root");
  if (!r) return r.err();
  std::string old_inbox = *existing ? (*existing)->inbox : std::string();
  return std::vector<broker_change>{user_broker_change(*ident, recorder, std::move(old_inbox))};
}

outcome service::handle(const crypto::public_key& sender, const fb::RpcRequest& req) {
  handler h(*this, sender);
  outcome out = h.run(req);
  // Still inside the request's group: the kept secrets commit with the change.
  if (opts_.provision_broker && out.response.status == fb::RpcStatus::ok)
    keep_broker_secrets(out.broker);
  return out;
}

void handle_in_group(service& s, core::store::group_commit& group, const crypto::public_key& sender,
                     const fb::RpcRequest& req, std::function<void(outcome&)> answer) {
  auto out = std::make_shared<outcome>();
  group.add([&] { *out = s.handle(sender, req); },
            [out, answer = std::move(answer)](const result<void>& committed) {
              if (!committed) {
                *out = outcome{};
                out->response.status = fb::RpcStatus::internal;
                out->response.error_message = "store commit failed: " + committed.err().message();
              }
              answer(*out);
            });
}

}  // namespace hmq::exchange
