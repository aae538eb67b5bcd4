// Broker secrets the exchange keeps (docs/security.md "Crash-safe broker administration"): with
// --provision-broker a node's broker password is derived from its token, never the token, kept
// sealed in the request's transaction, reused while the token is unchanged (no Argon2id per
// registration), and read back to create an identity the broker lost.
#include "core/bus/credentials.h"
#include "tests/unit/exchange_service_fixture.h"

namespace hmq::exchange {
namespace {

class exchange_broker_secrets : public exchange_service {
 protected:
  void SetUp() override {
    exchange_service::SetUp();
    service_options o;
    o.strength = crypto::hash_strength::minimum;
    o.provision_broker = true;
    svc_ = std::make_unique<service>(*db_, self_, clock_, o);
  }
  // The one change of `o` for `username` that sets a password.
  static broker_change password_change(const outcome& o, const std::string& username) {
    for (const auto& c : o.broker)
      if (c.username == username && !c.password.empty()) return c;
    ADD_FAILURE() << "no password change for " << username;
    return {};
  }
  std::vector<broker_change> kept(const std::set<std::string>& names) {
    auto k = svc_->kept_identities(names);
    EXPECT_TRUE(k) << k.err().message();
    return k ? *k : std::vector<broker_change>{};
  }
};

TEST_F(exchange_broker_secrets, node_password_is_derived_once_kept_sealed_and_read_back) {
  acme();
  const auto key = crypto::box_keypair::generate();
  const std::string mb = crypto::mailbox_id(key.pk);
  auto want = core::bus::derive_machine_password(mb, "n1-tok");
  ASSERT_TRUE(want);

  auto r = call(n1_, register_op("acme/p1"), key.pk);
  ASSERT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
  auto c = password_change(r, mb);
  EXPECT_EQ(c.what, broker_change::action::ensure);
  EXPECT_EQ(c.password, *want);
  EXPECT_TRUE(c.token.empty()) << "the token never reaches the broker";
  EXPECT_EQ(svc_->broker_derivations(), 1u);
  // Kept sealed: the stored text is neither the password nor the token.
  auto row = db_->broker_secret_get(mb);
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->sealed.rfind("sealed:", 0), 0u);
  EXPECT_EQ((*row)->sealed.find(*want), std::string::npos);
  EXPECT_EQ(svc_->open_secret((*row)->sealed), *want);

  // The same token again (every agent start): the kept password, no new derivation.
  r = call(n1_, register_op("acme/p1"), key.pk);
  ASSERT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
  EXPECT_EQ(password_change(r, mb).password, *want);
  EXPECT_EQ(svc_->broker_derivations(), 1u);

  // Read back for a reconcile: a registered identity the broker lost is created again.
  auto again = kept({mb, "zzzzzzzzzzzzzzzz"});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].what, broker_change::action::ensure);
  EXPECT_EQ(again[0].kind, fb::AuthKind::node);
  EXPECT_EQ(again[0].username, mb);
  EXPECT_EQ(again[0].password, *want);

  // A new token: a new password, derived and kept.
  auto got = call(bob_, get_op(fb::ResourceKind::node, "acme", "n1"));
  ASSERT_EQ(got.response.status, RpcStatus::ok);
  auto n = *got.response.result.AsResourceItem()->resource.AsNode();
  n.token = "n1-tok2";
  r = call(bob_, update_op(n));
  ASSERT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
  auto want2 = core::bus::derive_machine_password(mb, "n1-tok2");
  ASSERT_TRUE(want2);
  EXPECT_EQ(password_change(r, mb).what, broker_change::action::set_password);
  EXPECT_EQ(password_change(r, mb).password, *want2);
  EXPECT_EQ(svc_->broker_derivations(), 2u);
  again = kept({mb});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].password, *want2);

  // Removed with the node: nothing left to create again.
  r = call(bob_, delete_op(fb::ResourceKind::node, "acme", "n1"));
  ASSERT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
  EXPECT_TRUE(kept({mb}).empty());
  EXPECT_EQ(svc_->broker_secret_failures(), 0u);
}

TEST_F(exchange_broker_secrets, a_users_identity_is_kept_with_its_inbox_and_recorder_flag) {
  make_org("acme");
  make_user("acme", "carol", false);
  auto want = core::bus::derive_user_identity("acme", "carol", "carol-pw");
  ASSERT_TRUE(want);
  auto again = kept({"acme/carol"});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].kind, fb::AuthKind::user);
  EXPECT_EQ(again[0].password, want->password);
  EXPECT_EQ(again[0].inbox, want->inbox);
  EXPECT_FALSE(again[0].recorder);
  auto r = call(root(), delete_op(fb::ResourceKind::user, "acme", "carol"));
  ASSERT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
  EXPECT_TRUE(kept({"acme/carol"}).empty());
}

// Without --provision-broker nothing is derived or kept (fleets without dynamic security pay no
// Argon2id per registration).
TEST_F(exchange_service, without_provisioning_no_broker_password_is_derived_or_kept) {
  acme();
  const auto key = crypto::box_keypair::generate();
  auto r = call(n1_, register_op("acme/p1"), key.pk);
  ASSERT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
  EXPECT_EQ(svc_->broker_derivations(), 0u);
  EXPECT_EQ(count("broker_secrets"), 0);
}

}  // namespace
}  // namespace hmq::exchange
