// Mailbox ownership (docs/security.md "Mailbox ownership"): a mailbox, which is the broker
// username of its node or agbot, belongs to one principal, and is bound only with its key
// holder's proof: a sealed RegisterNode / AgbotHello, or the claim it printed for a token.
#include "core/bus/credentials.h"
#include "tests/unit/exchange_service_fixture.h"

namespace hmq::exchange {
namespace {

class exchange_mailbox : public exchange_service {
 protected:
  // What the agent holding `holder` prints for token `token`, sealed to `exchange`.
  static std::string claim_of(const crypto::box_keypair& holder, const std::string& token,
                              const crypto::public_key& exchange) {
    auto pw = core::bus::derive_machine_password(crypto::mailbox_id(holder.pk), token);
    EXPECT_TRUE(pw);
    return core::bus::make_mailbox_claim(holder, exchange, pw ? *pw : std::string());
  }
  std::string claim_of(const crypto::box_keypair& holder, const std::string& token) const {
    return claim_of(holder, token, self_.pk);
  }
  outcome create_node_with(const creds& by, const std::string& org, const std::string& id,
                           const std::string& mailbox, const std::string& claim) {
    fb::NodeT n;
    n.org = org;
    n.id = id;
    n.token = id + "-tok";
    n.mailbox = mailbox;
    n.claim = claim;
    return call(by, create_op(n));
  }
  // A node created with the claim `holder` made for its token.
  outcome create_node_held(const creds& by, const std::string& org, const std::string& id,
                           const crypto::box_keypair& holder) {
    return create_node_with(by, org, id, crypto::mailbox_id(holder.pk),
                            claim_of(holder, id + "-tok"));
  }
  outcome create_agbot_held(const creds& by, const std::string& id,
                            const crypto::box_keypair& holder) {
    fb::AgbotT a;
    a.org = by.org;
    a.id = id;
    a.token = id + "-tok";
    a.mailbox = crypto::mailbox_id(holder.pk);
    a.claim = claim_of(holder, a.token);
    return call(by, create_op(a));
  }
  static size_t changes(const outcome& o, broker_change::action what, const std::string& user) {
    size_t n = 0;
    for (const auto& c : o.broker) n += c.what == what && c.username == user;
    return n;
  }
  static void expect_refused(const outcome& o, RpcStatus status, const std::string& says) {
    EXPECT_EQ(o.response.status, status) << o.response.error_message;
    EXPECT_EQ(o.response.error_field, "claim");
    EXPECT_NE(o.response.error_message.find(says), std::string::npos) << o.response.error_message;
    EXPECT_TRUE(o.broker.empty());
  }
};

// The squatter: an org user names the mailbox of an agent that has not enrolled yet. Without
// the agent's claim for the squatter's own token nothing binds it.
TEST_F(exchange_mailbox, a_mailbox_is_bound_only_with_its_key_holders_claim_for_that_token) {
  acme();
  const auto agent = crypto::box_keypair::generate();
  const std::string m = crypto::mailbox_id(agent.pk);
  const auto squatter = crypto::box_keypair::generate();
  const auto other_exchange = crypto::box_keypair::generate();

  expect_refused(create_node_with(bob_, "acme", "squat", m, ""), RpcStatus::invalid_argument,
                 "needs its key holder's claim");
  expect_refused(create_node_with(bob_, "acme", "squat", m, "bm90IGEgY2xhaW0="),
                 RpcStatus::forbidden, "not a mailbox claim");
  // Its own key, the victim's mailbox: the claim names the squatter's mailbox, not m.
  expect_refused(create_node_with(bob_, "acme", "squat", m, claim_of(squatter, "squat-tok")),
                 RpcStatus::forbidden, "another key than mailbox " + m);
  // The real claim, read from the agent's log, but for the agent's token, not the squatter's.
  expect_refused(create_node_with(bob_, "acme", "squat", m, claim_of(agent, "real-tok")),
                 RpcStatus::forbidden, "made for another token");
  expect_refused(
      create_node_with(bob_, "acme", "squat", m, claim_of(agent, "squat-tok", other_exchange.pk)),
      RpcStatus::forbidden, "another exchange");
  EXPECT_EQ(count("nodes"), 1) << "only n1 of the fixture";
  EXPECT_EQ(count("mailbox_owners"), 0);
  EXPECT_EQ(svc_->mailbox_conflicts(), 4u);

  // A claim without a mailbox is a mistake, not something to ignore.
  fb::NodeT n;
  n.org = "acme";
  n.id = "x";
  n.token = "x-tok";
  n.claim = claim_of(agent, "x-tok");
  auto stray = call(bob_, create_op(n));
  EXPECT_EQ(stray.response.status, RpcStatus::invalid_argument);
  EXPECT_EQ(stray.response.error_field, "claim");

  // The admin with the agent's claim for the token it holds.
  auto real = create_node_with(bob_, "acme", "real", m, claim_of(agent, "real-tok"));
  ASSERT_EQ(real.response.status, RpcStatus::ok) << real.response.error_message;
  EXPECT_EQ(changes(real, broker_change::action::ensure, m), 1u);
  // The claim checked derives the broker password already: it travels with the change.
  ASSERT_EQ(real.broker.size(), 1u);
  auto pw = core::bus::derive_machine_password(m, "real-tok");
  ASSERT_TRUE(pw);
  EXPECT_EQ(real.broker[0].password, *pw);
  EXPECT_EQ(count("mailbox_owners"), 1);
}

TEST_F(exchange_mailbox, a_claimed_mailbox_cannot_be_claimed_by_another_node_or_agbot) {
  acme();
  const auto holder = crypto::box_keypair::generate();
  const std::string m = crypto::mailbox_id(holder.pk);
  auto first = create_node_held(bob_, "acme", "n2", holder);
  ASSERT_EQ(first.response.status, RpcStatus::ok) << first.response.error_message;
  EXPECT_EQ(changes(first, broker_change::action::ensure, m), 1u);
  // Even the key holder's own second claim: one key is one node or agbot.
  auto again = create_agbot_held(alice_, "ab", holder);
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
  auto foreign = create_node_held(eve, "ops", "x", holder);
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

// An unproven binding, as exchanges before claims stored them for `create --mailbox`: the key
// holder's registration takes it, and removing the squatter's node later leaves the holder's
// broker identity alone.
TEST_F(exchange_mailbox, the_key_holder_takes_its_mailbox_from_an_unproven_binding) {
  acme();
  const std::string m = crypto::mailbox_id(caller_.pk);
  fb::NodeT squat;
  squat.org = "acme";
  squat.id = "squat";
  squat.broker_user = m;
  ASSERT_TRUE(db_->node_insert(squat, "hash"));
  ASSERT_TRUE(db_->mailbox_bind(m, {fb::AuthKind::node, "acme", "squat", false}));
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
