// Org boundaries (docs/security.md "Org boundaries"): an agbot serves nodes of another org only
// when its own org added the pattern for that node org AND an admin of the node org let it
// (Org.agbots). Until then the agbot reads none of those nodes, finds none of them, hears of
// none, and their nodes are not told its key (so agents drop its proposals).
#include "tests/unit/exchange_service_fixture.h"

namespace hmq::exchange {
namespace {

class exchange_org_boundary : public exchange_service {
 protected:
  // acme's node n1 registered for acme/p1 (public); agbot ops/ag, its org's admin added
  // acme/p1 for nodes of acme.
  void SetUp() override {
    exchange_service::SetUp();
    acme();
    auto r =
        call(bob_, update_op(pattern("acme", "p1", "acme", "https://acme.com/gps", "1.0.0", true)));
    ASSERT_EQ(r.response.status, RpcStatus::ok);
    make_org("ops");
    ops_admin_ = make_user("ops", "olga", true);
    ag_ = make_agbot("ops", "ag");
    ASSERT_EQ(add_agbot_pattern(ops_admin_, "ops", "ag", "acme", "p1", "acme").response.status,
              RpcStatus::ok);
    ASSERT_EQ(call(ag_, op(fb::AgbotHelloT{}), ag_keys_.pk).response.status, RpcStatus::ok);
    ASSERT_EQ(call(n1_, register_op("acme/p1")).response.status, RpcStatus::ok);
  }

  outcome search() {
    fb::SearchPatternNodesT s;
    s.pattern_org = "acme";
    s.pattern = "p1";
    s.node_org = "acme";
    return call(ag_, op(std::move(s)), ag_keys_.pk);
  }
  // n1 asks for the agbot's key, as an agent does before it accepts a proposal.
  outcome node_asks_for_the_agbot_key() {
    fb::GetPublicKeyT k;
    k.key = std::make_unique<fb::ResourceKeyT>();
    k.key->kind = fb::ResourceKind::agbot;
    k.key->org = "ops";
    k.key->id = "ag";
    return call(n1_, op(std::move(k)));
  }
  bool told_of_registration() {
    auto reg = call(n1_, register_op("acme/p1"));
    EXPECT_EQ(reg.response.status, RpcStatus::ok);
    for (const auto& e : reg.events)
      if (e.recipient == ag_keys_.pk) return true;
    return false;
  }

  crypto::box_keypair ag_keys_ = crypto::box_keypair::generate();
  creds ops_admin_, ag_;
};

TEST_F(exchange_org_boundary,
       an_agbot_of_another_org_serves_no_node_without_the_node_orgs_consent) {
  EXPECT_EQ(search().response.status, RpcStatus::forbidden);
  EXPECT_EQ(call(ag_, get_op(fb::ResourceKind::node, "acme", "n1"), ag_keys_.pk).response.status,
            RpcStatus::forbidden);
  EXPECT_EQ(node_asks_for_the_agbot_key().response.status, RpcStatus::forbidden);
  EXPECT_FALSE(told_of_registration());
}

TEST_F(exchange_org_boundary, the_node_orgs_admin_lets_it_and_can_take_it_back) {
  // Only acme's admins speak for acme: ops' admin and acme's plain user cannot.
  const fb::OrgT self_granted = org_with_agbots("acme", {"ops/ag"});
  EXPECT_EQ(call(ops_admin_, update_op(self_granted)).response.status, RpcStatus::forbidden);
  EXPECT_EQ(call(bob_, update_op(self_granted)).response.status, RpcStatus::forbidden);
  EXPECT_EQ(search().response.status, RpcStatus::forbidden);

  allow_agbot(alice_, "acme", "ops/ag");
  auto found = search();
  ASSERT_EQ(found.response.status, RpcStatus::ok) << found.response.error_message;
  EXPECT_EQ(found.response.result.AsNodeList()->nodes.size(), 1u);
  EXPECT_EQ(node_asks_for_the_agbot_key().response.status, RpcStatus::ok);
  EXPECT_TRUE(told_of_registration());

  ASSERT_EQ(call(alice_, update_op(org_with_agbots("acme", {}))).response.status, RpcStatus::ok);
  EXPECT_EQ(search().response.status, RpcStatus::forbidden);
  EXPECT_EQ(node_asks_for_the_agbot_key().response.status, RpcStatus::forbidden);
}

TEST_F(exchange_org_boundary, consent_entries_are_validated) {
  EXPECT_EQ(call(alice_, update_op(org_with_agbots("acme", {"not-qualified"}))).response.status,
            RpcStatus::invalid_argument);
  // Its own agbots need no consent.
  EXPECT_EQ(call(alice_, update_op(org_with_agbots("acme", {"acme/own"}))).response.status,
            RpcStatus::invalid_argument);
}

}  // namespace
}  // namespace hmq::exchange
