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

result<void> service::bootstrap_root(std::string_view root_password) {
  auto existing = db_.credential_of(fb::AuthKind::user, "root", "root");
  if (!existing) return existing.err();
  if (root_password.empty()) {
    if (*existing) return {};
    return core::error{
        make_error_code(core::store::errc::sql_error),
        "no root password given and no root user exists: set --root-password or HMQ_ROOT_PASSWORD"};
  }
  auto h = hash(root_password);
  if (!h) return h.err();
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
    u.org = "root";
    u.username = "root";
    u.admin = true;
    if (*existing) return db_.user_update(u, *h);
    return db_.user_insert(u, *h);
  });
  cache_.forget(fb::AuthKind::user, "root", "root");
  return r;
}

outcome service::handle(const crypto::public_key& sender, const fb::RpcRequest& req) {
  handler h(*this, sender);
  return h.run(req);
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
