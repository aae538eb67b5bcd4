// Mailbox ownership (docs/security.md "Mailbox ownership"): a mailbox, which is the broker
// username of its node or agbot, belongs to one principal; only the holder of its key proves it.
#include "tests/unit/exchange_service_fixture.h"

namespace hmq::exchange {
namespace {

class exchange_mailbox : public exchange_service {
 protected:
  outcome create_node_with(const creds& by, const std::string& org, const std::string& id,
                           const std::string& mailbox) {
    fb::NodeT n;
    n.org = org;
    n.id = id;
    n.token = id + "-tok";
    n.mailbox = mailbox;
    return call(by, create_op(n));
  }
  outcome create_agbot_with(const creds& by, const std::string& id, const std::string& mailbox) {
    fb::AgbotT a;
    a.org = by.org;
    a.id = id;
    a.token = id + "-tok";
    a.mailbox = mailbox;
    return call(by, create_op(a));
  }
  static size_t changes(const outcome& o, broker_change::action what, const std::string& user) {
    size_t n = 0;
    for (const auto& c : o.broker) n += c.what == what && c.username == user;
    return n;
  }
};

constexpr const char* mb = "abcdefghijklmnop";

TEST_F(exchange_mailbox, a_claimed_mailbox_cannot_be_claimed_by_another_node_or_agbot) {
  acme();
  auto first = create_node_with(bob_, "acme", "n2", mb);
  ASSERT_EQ(first.response.status, RpcStatus::ok) << first.response.error_message;
  EXPECT_EQ(changes(first, broker_change::action::ensure, mb), 1u);
  auto again = create_agbot_with(alice_, "ab", mb);
  EXPECT_EQ(again.response.status, RpcStatus::conflict);
  EXPECT_EQ(again.response.error_field, "mailbox");
  EXPECT_NE(again.response.error_message.find("already bound to node acme/n2"), std::string::npos)
      << again.response.error_message;
  EXPECT_TRUE(again.broker.empty());
  EXPECT_EQ(count("agbots"), 0);
  EXPECT_EQ(svc_->mailbox_conflicts(), 1u);
  // Another org's caller is not told whose it is.
  make_org("ops");
  auto eve = make_user("ops", "eve", true);
  auto foreign = create_node_with(eve, "ops", "x", mb);
  EXPECT_EQ(foreign.response.status, RpcStatus::conflict);
  EXPECT_NE(foreign.response.error_message.find("a node or agbot of another org"),
            std::string::npos);
  EXPECT_EQ(foreign.response.error_message.find("acme"), std::string::npos);
}

TEST_F(exchange_mailbox, a_key_registers_as_one_node_or_agbot) {
  acme();
  ASSERT_EQ(call(n1_, register_op("acme/p1")).response.status, RpcStatus::ok);
  auto ag = make_agbot("acme", "ag1");
  auto hello = call(ag, op(fb::AgbotHelloT{}));  // the key n1 registered with
  EXPECT_EQ(hello.response.status, RpcStatus::conflict);
  EXPECT_NE(hello.response.error_message.find("node acme/n1"), std::string::npos);
  EXPECT_TRUE(hello.broker.empty());
  // The node re-registering with its own key is no conflict.
  EXPECT_EQ(call(n1_, register_op("acme/p1")).response.status, RpcStatus::ok);
}

// A squatter named a mailbox before its key holder registered: the holder's proof wins, and
// removing the squatter's node later leaves the holder's broker identity alone.
TEST_F(exchange_mailbox, the_key_holder_takes_its_mailbox_from_an_unproven_claim) {
  acme();
  const std::string m = crypto::mailbox_id(caller_.pk);
  ASSERT_EQ(create_node_with(bob_, "acme", "squat", m).response.status, RpcStatus::ok);
  auto reg = call(n1_, register_op("acme/p1"));
  ASSERT_EQ(reg.response.status, RpcStatus::ok) << reg.response.error_message;
  EXPECT_EQ(changes(reg, broker_change::action::ensure, m), 1u);
  auto gone = call(bob_, delete_op(fb::ResourceKind::node, "acme", "squat"));
  ASSERT_EQ(gone.response.status, RpcStatus::ok);
  EXPECT_EQ(changes(gone, broker_change::action::remove, m), 0u);
  auto n1_gone = call(bob_, delete_op(fb::ResourceKind::node, "acme", "n1"));
  ASSERT_EQ(n1_gone.response.status, RpcStatus::ok);
  EXPECT_EQ(changes(n1_gone, broker_change::action::remove, m), 1u);
  EXPECT_EQ(count("mailbox_owners"), 0);
}

}  // namespace
}  // namespace hmq::exchange
