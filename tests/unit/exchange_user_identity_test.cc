// Exchange users' broker identities (docs/security.md "Operator identities"): set with the
// password, answered on the user's inbox, removed with the user or its org, and the right to
// record the bus is root's to grant.
#include "tests/unit/exchange_service_fixture.h"

namespace hmq::exchange {
namespace {

class exchange_user_identity : public exchange_service {
 protected:
  // The broker changes of `o` for `username`.
  static std::vector<broker_change> changes_of(const outcome& o, const std::string& username) {
    std::vector<broker_change> out;
    for (const auto& c : o.broker)
      if (c.username == username) out.push_back(c);
    return out;
  }
  outcome set_recorder(const creds& by, const std::string& org, const std::string& name,
                       bool recorder) {
    auto got = call(root(), get_op(fb::ResourceKind::user, org, name));
    EXPECT_EQ(got.response.status, RpcStatus::ok);
    auto u = *got.response.result.AsResourceItem()->resource.AsUser();
    u.recorder = recorder;
    return call(by, update_op(u));
  }
};

TEST_F(exchange_user_identity, a_new_user_gets_a_derived_identity_and_is_answered_on_its_inbox) {
  make_org("acme");
  fb::UserT u;
  u.org = "acme";
  u.username = "bob";
  u.password = "bob-pw";
  auto r = call(root(), create_op(u));
  ASSERT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
  auto want = core::bus::derive_user_identity("acme", "bob", "bob-pw");
  ASSERT_TRUE(want);
  auto ch = changes_of(r, "acme/bob");
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].what, broker_change::action::ensure);
  EXPECT_EQ(ch[0].kind, fb::AuthKind::user);
  EXPECT_EQ(ch[0].password, want->password);
  EXPECT_EQ(ch[0].inbox, want->inbox);
  EXPECT_FALSE(ch[0].recorder);

  // Bob's own requests, refused or not, are answered on his inbox; a node's are not.
  creds bob{fb::AuthKind::user, "acme", "bob", "bob-pw"};
  EXPECT_EQ(call(bob, get_op(fb::ResourceKind::user, "acme", "bob")).reply_inbox, want->inbox);
  auto refused = call(bob, get_op(fb::ResourceKind::user, "acme", "nobody"));
  EXPECT_NE(refused.response.status, RpcStatus::ok);
  EXPECT_EQ(refused.reply_inbox, want->inbox);
  auto n = make_node(bob, "acme", "n1");
  EXPECT_EQ(call(n, get_op(fb::ResourceKind::node, "acme", "n1")).reply_inbox, "");
  // A wrong password is not the user: answered on the sender's mailbox.
  creds wrong{fb::AuthKind::user, "acme", "bob", "nope"};
  EXPECT_EQ(call(wrong, get_op(fb::ResourceKind::user, "acme", "bob")).reply_inbox, "");

  // A new password moves the identity to a new secret and inbox.
  u.password = "bob-pw2";
  auto up = call(bob, update_op(u));
  ASSERT_EQ(up.response.status, RpcStatus::ok) << up.response.error_message;
  auto ch2 = changes_of(up, "acme/bob");
  ASSERT_EQ(ch2.size(), 1u);
  EXPECT_NE(ch2[0].inbox, want->inbox);
  creds bob2{fb::AuthKind::user, "acme", "bob", "bob-pw2"};
  EXPECT_EQ(call(bob2, get_op(fb::ResourceKind::user, "acme", "bob")).reply_inbox, ch2[0].inbox);
}

TEST_F(exchange_user_identity, only_root_grants_recording_and_the_role_follows) {
  make_org("acme");
  auto admin = make_user("acme", "ann", true);
  make_user("acme", "bob", false);
  // An org admin may not let anyone (itself included) read the whole bus.
  auto r = set_recorder(admin, "acme", "bob", true);
  EXPECT_EQ(r.response.status, RpcStatus::forbidden) << r.response.error_message;
  EXPECT_TRUE(r.broker.empty());
  EXPECT_EQ(set_recorder(admin, "acme", "ann", true).response.status, RpcStatus::forbidden);
  // Root may; the broker identity gets the recorder role, and loses it again.
  r = set_recorder(root(), "acme", "bob", true);
  ASSERT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
  auto ch = changes_of(r, "acme/bob");
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].what, broker_change::action::set_recorder);
  EXPECT_TRUE(ch[0].recorder);
  // Bob changing his own email keeps the right (no change to the flag, nothing sent).
  auto got = call(root(), get_op(fb::ResourceKind::user, "acme", "bob"));
  auto u = *got.response.result.AsResourceItem()->resource.AsUser();
  EXPECT_TRUE(u.recorder);
  u.email = "bob@acme";
  r = call(creds{fb::AuthKind::user, "acme", "bob", "bob-pw"}, update_op(u));
  ASSERT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
  EXPECT_TRUE(changes_of(r, "acme/bob").empty());
  r = set_recorder(root(), "acme", "bob", false);
  ASSERT_EQ(r.response.status, RpcStatus::ok);
  ch = changes_of(r, "acme/bob");
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_FALSE(ch[0].recorder);
}

TEST_F(exchange_user_identity, removing_a_user_or_its_org_removes_its_identity) {
  make_org("acme");
  make_user("acme", "bob", false);
  make_user("acme", "carl", false);
  auto r = call(root(), delete_op(fb::ResourceKind::user, "acme", "bob"));
  ASSERT_EQ(r.response.status, RpcStatus::ok);
  auto ch = changes_of(r, "acme/bob");
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].what, broker_change::action::remove);
  r = call(root(), delete_op(fb::ResourceKind::org, "acme", ""));
  ASSERT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
  ch = changes_of(r, "acme/carl");
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].what, broker_change::action::remove);
  EXPECT_TRUE(changes_of(r, "acme/bob").empty());
}

TEST_F(exchange_user_identity, root_gets_its_identity_at_every_start_with_a_password) {
  auto kept = svc_->bootstrap_root("");
  ASSERT_TRUE(kept);
  EXPECT_TRUE(kept->empty());
  auto set = svc_->bootstrap_root("rootpw");
  ASSERT_TRUE(set);
  ASSERT_EQ(set->size(), 1u);
  EXPECT_EQ((*set)[0].username, "root/root");
  EXPECT_EQ((*set)[0].kind, fb::AuthKind::user);
  auto want = core::bus::derive_user_identity("root", "root", "rootpw");
  EXPECT_EQ((*set)[0].inbox, want->inbox);
}

}  // namespace
}  // namespace hmq::exchange
