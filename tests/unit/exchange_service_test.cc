// The exchange's RPC handler on an in-memory store: authentication, authorization, validation,
// atomicity of refused writes, paging and event addressing. No bus, no sockets.
#include "tests/unit/exchange_service_fixture.h"

namespace hmq::exchange {
namespace {

// ---- authentication

TEST_F(exchange_service, refuses_wrong_password_without_saying_which_part_was_wrong) {
  acme();
  auto wrong =
      call({fb::AuthKind::user, "acme", "bob", "nope"}, get_op(fb::ResourceKind::org, "acme", ""));
  auto unknown = call({fb::AuthKind::user, "acme", "carol", "nope"},
                      get_op(fb::ResourceKind::org, "acme", ""));
  EXPECT_EQ(wrong.response.status, RpcStatus::unauthorized);
  EXPECT_EQ(wrong.response.error_message, "bad credentials for user acme/bob");
  EXPECT_EQ(unknown.response.status, RpcStatus::unauthorized);
  EXPECT_EQ(unknown.response.error_message, "bad credentials for user acme/carol");
}

TEST_F(exchange_service, refuses_wrong_node_and_agbot_tokens) {
  acme();
  make_agbot("acme", "ag1");
  auto n =
      call({fb::AuthKind::node, "acme", "n1", "bad"}, get_op(fb::ResourceKind::node, "acme", "n1"));
  EXPECT_EQ(n.response.status, RpcStatus::unauthorized);
  EXPECT_EQ(n.response.error_message, "bad credentials for node acme/n1");
  auto a = call({fb::AuthKind::agbot, "acme", "ag1", "bad"}, op(fb::AgbotHelloT{}));
  EXPECT_EQ(a.response.status, RpcStatus::unauthorized);
  // A user's password is not a node token even with the same org/id.
  auto cross = call({fb::AuthKind::node, "acme", "bob", "bob-pw"},
                    get_op(fb::ResourceKind::org, "acme", ""));
  EXPECT_EQ(cross.response.status, RpcStatus::unauthorized);
}

TEST_F(exchange_service, refuses_request_without_credentials) {
  fb::RpcRequestT req;
  req.op = get_op(fb::ResourceKind::org, "root", "");
  auto buf = to_blob<fb::RpcRequest>(req);
  auto r = svc_->handle({}, *flatbuffers::GetRoot<fb::RpcRequest>(buf.data()));
  EXPECT_EQ(r.response.status, RpcStatus::unauthorized);
}

TEST_F(exchange_service, refuses_registration_with_an_unusable_key) {
  acme();
  EXPECT_EQ(call(n1_, register_op("acme/p1"), crypto::public_key{}).response.error_field,
            "sender_key");
  EXPECT_EQ(count("nodes WHERE mailbox != ''"), 0);
}

TEST_F(exchange_service, caches_verified_credentials_until_the_secret_changes) {
  acme();
  auto before = svc_->credential_cache_hits();
  ASSERT_EQ(call(bob_, get_op(fb::ResourceKind::org, "acme", "")).response.status, RpcStatus::ok);
  ASSERT_EQ(call(bob_, get_op(fb::ResourceKind::org, "acme", "")).response.status, RpcStatus::ok);
  EXPECT_GE(svc_->credential_cache_hits(), before + 2);
  // The cached wrong secret never passes.
  EXPECT_EQ(
      call({fb::AuthKind::user, "acme", "bob", "x"}, get_op(fb::ResourceKind::org, "acme", ""))
          .response.status,
      RpcStatus::unauthorized);
  fb::UserT u;
  u.org = "acme";
  u.username = "bob";
  u.password = "new-pw";
  ASSERT_EQ(call(bob_, update_op(u)).response.status, RpcStatus::ok);
  EXPECT_EQ(call(bob_, get_op(fb::ResourceKind::org, "acme", "")).response.status,
            RpcStatus::unauthorized);
  EXPECT_EQ(
      call({fb::AuthKind::user, "acme", "bob", "new-pw"}, get_op(fb::ResourceKind::org, "acme", ""))
          .response.status,
      RpcStatus::ok);
}

TEST_F(exchange_service, cache_misses_when_another_replica_changed_the_hash) {
  acme();
  ASSERT_EQ(call(bob_, get_op(fb::ResourceKind::org, "acme", "")).response.status, RpcStatus::ok);
  // A second service on the same store stands for another replica.
  service other(*db_, self_, clock_, {crypto::hash_strength::minimum});
  fb::UserT u;
  u.org = "acme";
  u.username = "bob";
  u.password = "changed";
  auto buf = request_bytes(alice_, update_op(u));
  ASSERT_EQ(other.handle({}, *flatbuffers::GetRoot<fb::RpcRequest>(buf.data())).response.status,
            RpcStatus::ok);
  EXPECT_EQ(call(bob_, get_op(fb::ResourceKind::org, "acme", "")).response.status,
            RpcStatus::unauthorized);
}

TEST_F(exchange_service, root_password_is_reset_at_start) {
  ASSERT_TRUE(svc_->bootstrap_root("second"));
  EXPECT_EQ(call(root(), get_op(fb::ResourceKind::org, "root", "")).response.status,
            RpcStatus::unauthorized);
  EXPECT_EQ(call({fb::AuthKind::user, "root", "root", "second"},
                 get_op(fb::ResourceKind::org, "root", ""))
                .response.status,
            RpcStatus::ok);
}

// ---- validation

TEST_F(exchange_service, names_the_field_of_an_unknown_sharing_mode) {
  acme();
  auto s = pub_.service("acme", "https://acme.com/x", "1.0.0");
  s.sharable = fb::Sharing::unspecified;
  auto r = call(bob_, create_op(s));
  EXPECT_EQ(r.response.status, RpcStatus::invalid_argument);
  EXPECT_EQ(r.response.error_field, "sharable");
  EXPECT_EQ(r.response.error_message,
            "invalid field 'sharable': must be one of exclusive, singleton, multiple");
}

TEST_F(exchange_service, names_the_field_of_each_invalid_value) {
  acme();
  struct tc {
    std::function<void(fb::ServiceT&)> mutate;
    std::string field;
  };
  std::vector<tc> cases{
      {[](fb::ServiceT& s) { s.org.clear(); }, "org"},
      {[](fb::ServiceT& s) { s.url.clear(); }, "url"},
      {[](fb::ServiceT& s) { s.url = "has space"; }, "url"},
      {[](fb::ServiceT& s) { s.version = "one"; }, "version"},
      {[](fb::ServiceT& s) { s.arch = "amd/64"; }, "arch"},
      {[](fb::ServiceT& s) { s.label = std::string(5000, 'x'); }, "label"},
      {[](fb::ServiceT& s) { s.deployment.clear(); }, "deployment"},
      // (Garbage bytes never reach the handler: the message Verifier checks the nested buffer.)
      {[this](fb::ServiceT& s) {
         s.deployment = to_blob<fb::Deployment>(fb::DeploymentT{});
         auto sig = crypto::sign_detached(s.deployment, pub_.keys.sk);
         s.deployment_signature.assign(sig.begin(), sig.end());
       },
       "deployment.containers"},
      {[](fb::ServiceT& s) { s.deployment_signature.clear(); }, "deployment_signature"},
      {[](fb::ServiceT& s) { s.deployment_signature[0] ^= 1; }, "deployment_signature"},
      {[](fb::ServiceT& s) { s.publisher_key.resize(5); }, "publisher_key"},
      // Signed whole: an old deployment-only signature, and a relabelled version.
      {[](fb::ServiceT& s) { s.service_signature.clear(); }, "service_signature"},
      {[](fb::ServiceT& s) { s.version = "1.0.1"; }, "service_signature"},
      {[](fb::ServiceT& s) {
         auto r = std::make_unique<fb::ServiceRefT>();
         r->org = "acme";
         r->url = "https://acme.com/dep";
         r->arch = "amd64";
         r->version_range = "[1.0.0,";
         s.required_services.push_back(std::move(r));
       },
       "required_services[0].version_range"},
      {[](fb::ServiceT& s) {
         auto u = std::make_unique<fb::UserInputDefT>();
         u->name = "X";
         u->type = "complex";
         s.user_inputs.push_back(std::move(u));
       },
       "user_inputs[0].type"},
  };
  for (auto& c : cases) {
    auto s = pub_.service("acme", "https://acme.com/x", "1.0.0");
    c.mutate(s);
    auto r = call(bob_, create_op(s));
    EXPECT_EQ(r.response.status, RpcStatus::invalid_argument) << c.field;
    EXPECT_EQ(r.response.error_field, c.field) << r.response.error_message;
  }
  EXPECT_EQ(count("services"), 1);  // only acme()'s gps
}

TEST_F(exchange_service, refuses_deployment_signed_by_another_key) {
  acme();
  auto s = pub_.service("acme", "https://acme.com/x", "1.0.0");
  publisher other;
  s.publisher_key.assign(other.keys.pk.begin(), other.keys.pk.end());
  auto r = call(bob_, create_op(s));
  EXPECT_EQ(r.response.status, RpcStatus::invalid_argument);
  EXPECT_EQ(r.response.error_field, "deployment_signature");
}

TEST_F(exchange_service, refuses_ids_outside_the_charset) {
  fb::OrgT o;
  o.name = "acme/../x";
  auto r = call(root(), create_op(o));
  EXPECT_EQ(r.response.status, RpcStatus::invalid_argument);
  EXPECT_EQ(r.response.error_field, "name");
  o.name = std::string(200, 'a');
  EXPECT_EQ(call(root(), create_op(o)).response.error_field, "name");
}

TEST_F(exchange_service, pattern_must_reference_existing_service_versions) {
  acme();
  auto p = pattern("acme", "p2", "acme", "https://acme.com/gps", "1.0.0");
  auto v = std::make_unique<fb::ServiceVersionT>();
  v->version = "2.0.0";
  p.services[0]->service_versions.push_back(std::move(v));
  auto r = call(bob_, create_op(p));
  EXPECT_EQ(r.response.status, RpcStatus::invalid_argument);
  EXPECT_EQ(r.response.error_field, "services[0].service_versions[1].version");
  EXPECT_EQ(count("patterns"), 1);
  EXPECT_EQ(count("pattern_services"), 1);
}

// ---- nothing half-written

TEST_F(exchange_service, refused_requests_leave_the_store_unchanged) {
  acme();
  auto tables = {"orgs",           "users",       "nodes",    "agbots",
                 "agbot_patterns", "services",    "patterns", "pattern_services",
                 "agreements",     "event_outbox"};
  std::vector<int64_t> before;
  for (auto t : tables) before.push_back(count(t));
  // Refused for many reasons: validation, authorization, existence, a check deep inside.
  fb::AgbotT a;
  a.org = "acme";
  a.id = "ag9";
  a.token = "t";
  auto good = std::make_unique<fb::AgbotPatternT>();
  good->pattern_org = "acme";
  good->pattern = "p1";
  auto bad = std::make_unique<fb::AgbotPatternT>();
  bad->pattern_org = "acme";
  bad->pattern = "missing";
  a.patterns.push_back(std::move(good));
  a.patterns.push_back(std::move(bad));
  auto r = call(alice_, create_op(a));
  EXPECT_EQ(r.response.status, RpcStatus::invalid_argument);
  EXPECT_EQ(r.response.error_field, "patterns[1]");
  EXPECT_EQ(call(bob_, create_op(a)).response.status, RpcStatus::forbidden);
  EXPECT_EQ(
      call(bob_, create_op(pub_.service("acme", "https://acme.com/gps", "1.0.0"))).response.status,
      RpcStatus::already_exists);
  fb::NodeT n;
  n.org = "nowhere";
  n.id = "n1";
  n.token = "t";
  EXPECT_EQ(call(root(), create_op(n)).response.status, RpcStatus::not_found);
  EXPECT_EQ(call(n1_, register_op("acme/missing")).response.status, RpcStatus::invalid_argument);
  fb::PutAgreementT pa;
  pa.record = std::make_unique<fb::AgreementRecordT>();
  pa.record->agreement_id = "ab";
  pa.record->node_org = "acme";
  pa.record->node_id = "n2";
  pa.record->state = fb::AgreementState::proposed;
  EXPECT_EQ(call(n1_, op(std::move(pa))).response.status, RpcStatus::forbidden);
  for (size_t i = 0; i < before.size(); ++i)
    EXPECT_EQ(count(*(tables.begin() + i)), before[i]) << *(tables.begin() + i);
  EXPECT_TRUE(db_->integrity_check());
}

// ---- authorization

TEST_F(exchange_service, user_may_not_modify_another_org) {
  acme();
  make_org("other");
  fb::NodeT n;
  n.org = "other";
  n.id = "x";
  n.token = "t";
  auto r = call(bob_, create_op(n));
  EXPECT_EQ(r.response.status, RpcStatus::forbidden);
  EXPECT_EQ(r.response.error_message, "user acme/bob may not modify org other");
  EXPECT_EQ(call(alice_, create_op(n)).response.status, RpcStatus::forbidden);
  EXPECT_EQ(call(root(), create_op(n)).response.status, RpcStatus::ok);
}

TEST_F(exchange_service, only_admins_manage_users_and_agbots) {
  acme();
  fb::UserT u;
  u.org = "acme";
  u.username = "carol";
  u.password = "pw";
  EXPECT_EQ(call(bob_, create_op(u)).response.status, RpcStatus::forbidden);
  EXPECT_EQ(call(alice_, create_op(u)).response.status, RpcStatus::ok);
  // bob may change his own password but not promote himself.
  fb::UserT self;
  self.org = "acme";
  self.username = "bob";
  self.admin = true;
  EXPECT_EQ(call(bob_, update_op(self)).response.status, RpcStatus::forbidden);
  fb::AgbotT a;
  a.org = "acme";
  a.id = "ag";
  a.token = "t";
  EXPECT_EQ(call(bob_, create_op(a)).response.status, RpcStatus::forbidden);
  EXPECT_EQ(call(alice_, create_op(a)).response.status, RpcStatus::ok);
  fb::OrgT o;
  o.name = "new";
  EXPECT_EQ(call(alice_, create_op(o)).response.status, RpcStatus::forbidden);
}

TEST_F(exchange_service, node_reads_only_itself) {
  acme();
  make_node(bob_, "acme", "n2");
  EXPECT_EQ(call(n1_, get_op(fb::ResourceKind::node, "acme", "n1")).response.status, RpcStatus::ok);
  EXPECT_EQ(call(n1_, get_op(fb::ResourceKind::node, "acme", "n2")).response.status,
            RpcStatus::forbidden);
  EXPECT_EQ(call(n1_, delete_op(fb::ResourceKind::node, "acme", "n2")).response.status,
            RpcStatus::forbidden);
  fb::NodeT n;
  n.org = "acme";
  n.id = "n3";
  n.token = "t";
  EXPECT_EQ(call(n1_, create_op(n)).response.status, RpcStatus::forbidden);
  EXPECT_EQ(call(n1_, list_op(fb::ResourceKind::node, "acme")).response.status,
            RpcStatus::forbidden);
}

TEST_F(exchange_service, public_patterns_are_readable_by_everyone_private_ones_are_hidden) {
  acme();
  make_org("other");
  auto eve = make_user("other", "eve", false);
  EXPECT_EQ(call(eve, get_op(fb::ResourceKind::pattern, "acme", "p1")).response.status,
            RpcStatus::not_found);
  EXPECT_EQ(call(eve, get_op(fb::ResourceKind::service, "acme",
                             service_id("https://acme.com/gps", "1.0.0", "amd64")))
                .response.status,
            RpcStatus::not_found);
  auto p = pattern("acme", "p1", "acme", "https://acme.com/gps", "1.0.0", true);
  ASSERT_EQ(call(bob_, update_op(p)).response.status, RpcStatus::ok);
  EXPECT_EQ(call(eve, get_op(fb::ResourceKind::pattern, "acme", "p1")).response.status,
            RpcStatus::ok);
  auto l = call(eve, list_op(fb::ResourceKind::pattern, "acme"));
  ASSERT_EQ(l.response.status, RpcStatus::ok);
  EXPECT_EQ(l.response.result.AsResourceList()->items.size(), 1u);
  EXPECT_EQ(call(eve, list_op(fb::ResourceKind::service, "acme"))
                .response.result.AsResourceList()
                ->items.size(),
            0u);
}

TEST_F(exchange_service, responses_never_carry_secrets) {
  acme();
  auto n = call(bob_, get_op(fb::ResourceKind::node, "acme", "n1"));
  ASSERT_EQ(n.response.status, RpcStatus::ok);
  EXPECT_TRUE(n.response.result.AsResourceItem()->resource.AsNode()->token.empty());
  auto u = call(alice_, get_op(fb::ResourceKind::user, "acme", "bob"));
  ASSERT_EQ(u.response.status, RpcStatus::ok);
  EXPECT_TRUE(u.response.result.AsResourceItem()->resource.AsUser()->password.empty());
  // Nothing in the store holds a clear secret either.
  auto st = db_->sql().prepare(
      "SELECT COUNT(*) FROM users WHERE instr(blob, 'bob-pw') > 0 OR password_hash = 'bob-pw'");
  ASSERT_TRUE(st);
  ASSERT_TRUE(*st->step());
  EXPECT_EQ(st->column_int(0), 0);
}

TEST_F(exchange_service, registry_tokens_are_sealed_at_rest_and_shown_only_to_the_org) {
  acme();
  make_org("other");
  auto eve = make_user("other", "eve", false);
  auto s = pub_.service("acme", "https://acme.com/reg", "1.0.0", true);
  auto d = std::make_unique<fb::DockAuthT>();
  d->registry = "registry.acme.com";
  d->username = "puller";
  d->token = "very-secret-token";
  s.dockauths.push_back(std::move(d));
  ASSERT_EQ(call(bob_, create_op(s)).response.status, RpcStatus::ok);
  auto st = db_->sql().prepare(
      "SELECT COUNT(*) FROM services WHERE instr(blob, 'very-secret-token') > 0");
  ASSERT_TRUE(st);
  ASSERT_TRUE(*st->step());
  EXPECT_EQ(st->column_int(0), 0);
  std::string id = service_id("https://acme.com/reg", "1.0.0", "amd64");
  auto own = call(bob_, get_op(fb::ResourceKind::service, "acme", id));
  ASSERT_EQ(own.response.status, RpcStatus::ok);
  EXPECT_EQ(own.response.result.AsResourceItem()->resource.AsService()->dockauths[0]->token,
            "very-secret-token");
  auto foreign = call(eve, get_op(fb::ResourceKind::service, "acme", id));
  ASSERT_EQ(foreign.response.status, RpcStatus::ok);
  EXPECT_TRUE(
      foreign.response.result.AsResourceItem()->resource.AsService()->dockauths[0]->token.empty());
}

// ---- rollout status (PutRolloutStatus / GetRolloutStatus)

TEST_F(exchange_service, rollout_status_comes_only_from_serving_agbots_and_is_read_by_users) {
  acme();
  auto ag = make_agbot("acme", "ag1");
  auto stranger = make_agbot("acme", "ag2");  // serves nothing
  ASSERT_EQ(add_agbot_pattern(alice_, "acme", "ag1", "acme", "p1").response.status, RpcStatus::ok);
  auto status = [] {
    fb::PutRolloutStatusT put;
    put.status = std::make_unique<fb::RolloutStatusT>();
    put.status->pattern = "acme/p1";
    put.status->service_org = "acme";
    put.status->service_url = "https://acme.com/gps";
    put.status->agbot = "acme/someone-else";  // the exchange names the caller instead
    put.status->state = fb::RolloutState::running;
    put.status->target_version = "1.1.0";
    put.status->versions.push_back(std::make_unique<fb::RolloutVersionStatusT>());
    put.status->versions[0]->version = "1.1.0";
    put.status->versions[0]->upgraded = 3;
    return put;
  };
  EXPECT_EQ(call(stranger, op(status())).response.status, RpcStatus::forbidden);
  EXPECT_EQ(call(alice_, op(status())).response.status, RpcStatus::forbidden);
  auto bad = status();
  bad.status->state = fb::RolloutState::unspecified;
  EXPECT_EQ(call(ag, op(std::move(bad))).response.status, RpcStatus::invalid_argument);
  ASSERT_EQ(call(ag, op(status())).response.status, RpcStatus::ok);
  ASSERT_EQ(call(ag, op(status())).response.status, RpcStatus::ok);  // replaces, no second row

  fb::GetRolloutStatusT get;
  get.pattern_org = "acme";
  get.pattern = "p1";
  auto r = call(bob_, op(std::move(get)));
  ASSERT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
  const auto* list = r.response.result.AsRolloutStatusList();
  ASSERT_NE(list, nullptr);
  ASSERT_EQ(list->statuses.size(), 1u);
  EXPECT_EQ(list->statuses[0]->agbot, "acme/ag1");
  EXPECT_EQ(list->statuses[0]->target_version, "1.1.0");
  EXPECT_EQ(list->statuses[0]->versions[0]->upgraded, 3u);
}

TEST_F(exchange_service, agbot_sees_registry_tokens_of_the_dependencies_of_the_services_it_serves) {
  // A proposal carries every service's pull credentials; a dependency's images are pulled with
  // its own, so an agbot serving the consumer must see the producer's token too.
  acme();
  auto dep = pub_.service("acme", "https://acme.com/dep", "1.0.0");
  auto d = std::make_unique<fb::DockAuthT>();
  d->registry = "registry.acme.com";
  d->username = "puller";
  d->token = "dep-token";
  dep.dockauths.push_back(std::move(d));
  ASSERT_EQ(call(bob_, create_op(dep)).response.status, RpcStatus::ok);
  auto top = pub_.service("acme", "https://acme.com/top", "1.0.0");
  auto ref = std::make_unique<fb::ServiceRefT>();
  ref->org = "acme";
  ref->url = "https://acme.com/dep";
  ref->version_range = "1.0.0";
  ref->arch = "amd64";
  top.required_services.push_back(std::move(ref));
  core::wire::sign_service(top, pub_.keys);  // the required service is part of what is signed
  auto created = call(bob_, create_op(top));
  ASSERT_EQ(created.response.status, RpcStatus::ok) << created.response.error_message;
  ASSERT_EQ(call(bob_, create_op(pattern("acme", "p2", "acme", "https://acme.com/top", "1.0.0")))
                .response.status,
            RpcStatus::ok);
  auto serving = make_agbot("acme", "ag1");
  auto other = make_agbot("acme", "ag2");  // serves p1 only, which does not need dep
  for (auto [id, pat] : {std::pair{"ag1", "p2"}, std::pair{"ag2", "p1"}}) {
    ASSERT_EQ(add_agbot_pattern(alice_, "acme", id, "acme", pat).response.status, RpcStatus::ok);
  }
  std::string id = service_id("https://acme.com/dep", "1.0.0", "amd64");
  auto seen = call(serving, get_op(fb::ResourceKind::service, "acme", id));
  ASSERT_EQ(seen.response.status, RpcStatus::ok) << seen.response.error_message;
  EXPECT_EQ(seen.response.result.AsResourceItem()->resource.AsService()->dockauths[0]->token,
            "dep-token");
  auto hidden = call(other, get_op(fb::ResourceKind::service, "acme", id));
  ASSERT_EQ(hidden.response.status, RpcStatus::ok) << hidden.response.error_message;
  EXPECT_TRUE(
      hidden.response.result.AsResourceItem()->resource.AsService()->dockauths[0]->token.empty());
}

// ---- registration, agbots, agreements, events

TEST_F(exchange_service, register_node_records_sender_key_and_notifies_serving_agbots) {
  acme();
  auto ag = make_agbot("acme", "ag1");
  ASSERT_EQ(add_agbot_pattern(alice_, "acme", "ag1", "acme", "p1").response.status, RpcStatus::ok);
  auto agbot_keys = crypto::box_keypair::generate();
  ASSERT_EQ(call(ag, op(fb::AgbotHelloT{}), agbot_keys.pk).response.status, RpcStatus::ok);

  auto node_keys = crypto::box_keypair::generate();
  fb::RegisterNodeT reg;
  reg.pattern = "acme/p1";
  reg.arch = "amd64";
  auto ui = std::make_unique<fb::ServiceUserInputT>();
  ui->inputs.push_back(std::make_unique<fb::UserInputValueT>());
  ui->inputs[0]->name = "HZN_MODE";
  ui->inputs[0]->value = "fast";
  reg.user_inputs.push_back(std::move(ui));
  auto r = call(n1_, op(std::move(reg)), node_keys.pk);
  ASSERT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
  const auto* n = r.response.result.AsNode();
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->mailbox, crypto::mailbox_id(node_keys.pk));
  EXPECT_EQ(n->pattern, "acme/p1");
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].recipient, agbot_keys.pk);
  EXPECT_EQ(r.events[0].mailbox, crypto::mailbox_id(agbot_keys.pk));
  EXPECT_EQ(r.events[0].event.kind, fb::EventKind::node_registered);
  EXPECT_EQ(r.events[0].event.node_mailbox, n->mailbox);
  EXPECT_EQ(r.events[0].event.seq, 1u);
  // The node's user inputs ride along, so the agbot need not fetch the node to propose.
  EXPECT_TRUE(r.events[0].event.has_node_user_inputs);
  ASSERT_EQ(r.events[0].event.node_user_inputs.size(), 1u);
  ASSERT_EQ(r.events[0].event.node_user_inputs[0]->inputs.size(), 1u);
  EXPECT_EQ(r.events[0].event.node_user_inputs[0]->inputs[0]->value, "fast");
  // Committed with the change; the publisher deletes it once the broker has it.
  EXPECT_GT(r.events[0].outbox_id, 0);
  EXPECT_EQ(count("event_outbox"), 1);

  // The agbot now finds the node, its key, and may record agreements for it.
  fb::SearchPatternNodesT s;
  s.pattern_org = "acme";
  s.pattern = "p1";
  auto found = call(ag, op(std::move(s)), agbot_keys.pk);
  ASSERT_EQ(found.response.status, RpcStatus::ok) << found.response.error_message;
  ASSERT_EQ(found.response.result.AsNodeList()->nodes.size(), 1u);
  fb::GetPublicKeyT gk;
  gk.key = key(fb::ResourceKind::node, "acme", "n1");
  auto k = call(ag, op(std::move(gk)), agbot_keys.pk);
  ASSERT_EQ(k.response.status, RpcStatus::ok);
  EXPECT_EQ(k.response.result.AsKeyInfo()->public_key,
            std::vector<uint8_t>(node_keys.pk.begin(), node_keys.pk.end()));
  // The node may look up the agbot that serves its pattern.
  fb::GetPublicKeyT ak;
  ak.key = key(fb::ResourceKind::agbot, "acme", "ag1");
  EXPECT_EQ(call(n1_, op(std::move(ak)), node_keys.pk).response.status, RpcStatus::ok);

  fb::PutAgreementT pa;
  pa.record = std::make_unique<fb::AgreementRecordT>();
  pa.record->agreement_id = "00ff";
  pa.record->node_org = "acme";
  pa.record->node_id = "n1";
  pa.record->state = fb::AgreementState::proposed;
  ASSERT_EQ(call(ag, op(std::move(pa)), agbot_keys.pk).response.status, RpcStatus::ok);
  EXPECT_EQ(count("agreements"), 1);

  // Unregistering drops the agreements and tells the agbot, with the next sequence number.
  auto u = call(n1_, op(fb::UnregisterNodeT{}), node_keys.pk);
  ASSERT_EQ(u.response.status, RpcStatus::ok);
  EXPECT_EQ(count("agreements"), 0);
  ASSERT_EQ(u.events.size(), 1u);
  EXPECT_EQ(u.events[0].event.kind, fb::EventKind::node_unregistered);
  EXPECT_EQ(u.events[0].event.seq, 2u);
  EXPECT_FALSE(u.events[0].event.has_node_user_inputs);
}

TEST_F(exchange_service, agbot_sees_only_nodes_of_patterns_it_serves) {
  acme();
  auto ag = make_agbot("acme", "ag1");
  ASSERT_EQ(call(n1_, register_op("acme/p1")).response.status, RpcStatus::ok);
  fb::SearchPatternNodesT s;
  s.pattern_org = "acme";
  s.pattern = "p1";
  EXPECT_EQ(call(ag, op(std::move(s))).response.status, RpcStatus::forbidden);
  EXPECT_EQ(call(ag, get_op(fb::ResourceKind::node, "acme", "n1")).response.status,
            RpcStatus::forbidden);
  fb::PutAgreementT pa;
  pa.record = std::make_unique<fb::AgreementRecordT>();
  pa.record->agreement_id = "01";
  pa.record->node_org = "acme";
  pa.record->node_id = "n1";
  pa.record->state = fb::AgreementState::proposed;
  EXPECT_EQ(call(ag, op(std::move(pa))).response.status, RpcStatus::forbidden);
}

TEST_F(exchange_service, pattern_and_service_changes_reach_serving_agbots) {
  acme();
  auto ag = make_agbot("acme", "ag1");
  ASSERT_EQ(add_agbot_pattern(alice_, "acme", "ag1", "acme", "p1").response.status, RpcStatus::ok);
  // Before the hello the exchange has no key to seal to: nothing is addressed.
  auto quiet =
      call(bob_, update_op(pattern("acme", "p1", "acme", "https://acme.com/gps", "1.0.0")));
  EXPECT_TRUE(quiet.events.empty());
  auto keys = crypto::box_keypair::generate();
  ASSERT_EQ(call(ag, op(fb::AgbotHelloT{}), keys.pk).response.status, RpcStatus::ok);
  auto p = call(bob_, update_op(pattern("acme", "p1", "acme", "https://acme.com/gps", "1.0.0")));
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0].event.kind, fb::EventKind::pattern_changed);
  auto s = call(bob_, update_op(pub_.service("acme", "https://acme.com/gps", "1.0.0")));
  ASSERT_EQ(s.response.status, RpcStatus::ok);
  ASSERT_EQ(s.events.size(), 1u);
  EXPECT_EQ(s.events[0].event.kind, fb::EventKind::service_changed);
  EXPECT_GT(s.events[0].event.seq, p.events[0].event.seq);
  auto d = call(bob_, delete_op(fb::ResourceKind::pattern, "acme", "p1"));
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].event.kind, fb::EventKind::pattern_removed);
}

// ---- paging and cascades

TEST_F(exchange_service, lists_page_by_last_id) {
  acme();
  for (int i = 2; i <= 5; ++i) make_node(bob_, "acme", "n" + std::to_string(i));
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    auto r = call(bob_, list_op(fb::ResourceKind::node, "acme", token, 2));
    ASSERT_EQ(r.response.status, RpcStatus::ok);
    auto* l = r.response.result.AsResourceList();
    for (auto& it : l->items) seen.push_back(it->resource.AsNode()->id);
    token = l->next_page_token;
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"n1", "n2", "n3", "n4", "n5"}));
}

TEST_F(exchange_service, deleting_an_org_removes_everything_in_it) {
  acme();
  ASSERT_EQ(call(n1_, register_op("acme/p1")).response.status, RpcStatus::ok);
  // An agbot of another org serving acme's (public) pattern hears about the node and pattern.
  ASSERT_EQ(
      call(bob_, update_op(pattern("acme", "p1", "acme", "https://acme.com/gps", "1.0.0", true)))
          .response.status,
      RpcStatus::ok);
  make_org("ops");
  auto ag = make_agbot("ops", "ag");
  ASSERT_EQ(add_agbot_pattern(root(), "ops", "ag", "acme", "p1").response.status, RpcStatus::ok);
  allow_agbot(alice_, "acme", "ops/ag");
  // Its own key: a key registers as one node or agbot (n1 registered with caller_).
  const auto ag_keys = crypto::box_keypair::generate();
  ASSERT_EQ(call(ag, op(fb::AgbotHelloT{}), ag_keys.pk).response.status, RpcStatus::ok);
  EXPECT_EQ(call(alice_, delete_op(fb::ResourceKind::org, "acme", "")).response.status,
            RpcStatus::forbidden);
  auto del = call(root(), delete_op(fb::ResourceKind::org, "acme", ""));
  ASSERT_EQ(del.response.status, RpcStatus::ok);
  std::set<fb::EventKind> kinds;
  for (auto& e : del.events) kinds.insert(e.event.kind);
  EXPECT_EQ(kinds, (std::set<fb::EventKind>{fb::EventKind::pattern_removed,
                                            fb::EventKind::node_unregistered}));
  for (auto t : {"users", "nodes", "services", "patterns", "pattern_services"})
    EXPECT_EQ(count(t), t == std::string("users") ? 1 : 0) << t;
  EXPECT_EQ(call(bob_, get_op(fb::ResourceKind::org, "acme", "")).response.status,
            RpcStatus::unauthorized);
  EXPECT_EQ(call(root(), delete_op(fb::ResourceKind::org, "root", "")).response.status,
            RpcStatus::forbidden);
}

TEST_F(exchange_service, refuses_node_token_from_a_key_other_than_the_registered_one) {
  // Protects the binding of a token to its registered key: a leaked token sent from another
  // key may not act for the node (only a new registration re-binds it), and the registration
  // asks the broker admin for the node's identity (username = mailbox, password = token).
  acme();
  auto node_keys = crypto::box_keypair::generate();
  fb::RegisterNodeT reg;
  reg.pattern = "acme/p1";
  reg.arch = "amd64";
  auto r = call(n1_, op(std::move(reg)), node_keys.pk);
  ASSERT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
  ASSERT_FALSE(r.broker.empty());
  EXPECT_EQ(r.broker.back().what, broker_change::action::ensure);
  EXPECT_EQ(r.broker.back().username, crypto::mailbox_id(node_keys.pk));
  auto other = crypto::box_keypair::generate();
  auto u = call(n1_, op(fb::UnregisterNodeT{}), other.pk);
  EXPECT_EQ(u.response.status, RpcStatus::unauthorized);
  EXPECT_EQ(svc_->identity_mismatches(), 1u);
  EXPECT_EQ(call(n1_, op(fb::UnregisterNodeT{}), node_keys.pk).response.status, RpcStatus::ok);
}

}  // namespace
}  // namespace hmq::exchange
