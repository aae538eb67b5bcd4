#pragma once

// The exchange's RPC handler on an in-memory store, called as any principal: shared by
// exchange_service_test and exchange_mailbox_test.
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>

#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "core/wire/service_signature.h"
#include "exchange/db.h"
#include "exchange/service.h"
#include "exchange_client/ids.h"

namespace hmq::exchange {

using exchange_client::service_id;
using exchange_client::split_qualified;
namespace {

namespace crypto = core::crypto;
using fb::RpcStatus;

struct creds {
  fb::AuthKind kind;
  std::string org, id, secret;
};

// A signed one-container deployment, as the CLI publishes it.
struct publisher {
  crypto::sign_keypair keys = crypto::sign_keypair::generate();

  std::vector<uint8_t> deployment(const std::string& image = "busybox") const {
    fb::DeploymentT d;
    auto c = std::make_unique<fb::ContainerT>();
    c->name = "main";
    c->image = image;
    c->image_digest = "sha256:" + std::string(64, 'a');
    d.containers.push_back(std::move(c));
    return to_blob<fb::Deployment>(d);
  }

  fb::ServiceT service(const std::string& org, const std::string& url, const std::string& version,
                       bool pub = false) const {
    fb::ServiceT s;
    s.org = org;
    s.url = url;
    s.version = version;
    s.arch = "amd64";
    s.public_ = pub;
    s.sharable = fb::Sharing::multiple;
    s.deployment = deployment();
    core::wire::sign_service(s, keys);
    return s;
  }
};

fb::PatternT pattern(const std::string& org, const std::string& name, const std::string& svc_org,
                     const std::string& url, const std::string& version, bool pub = false) {
  fb::PatternT p;
  p.org = org;
  p.name = name;
  p.public_ = pub;
  auto ps = std::make_unique<fb::PatternServiceT>();
  ps->service_url = url;
  ps->service_org = svc_org;
  ps->service_arch = "amd64";
  auto v = std::make_unique<fb::ServiceVersionT>();
  v->version = version;
  ps->service_versions.push_back(std::move(v));
  p.services.push_back(std::move(ps));
  return p;
}

class exchange_service : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = db::open_memory();
    ASSERT_TRUE(d) << d.err().message();
    db_ = std::make_unique<db>(std::move(*d));
    service_options o;
    o.strength = crypto::hash_strength::minimum;
    svc_ = std::make_unique<service>(*db_, self_, clock_, o);
    ASSERT_TRUE(svc_->bootstrap_root("rootpw"));
  }

  static std::vector<uint8_t> request_bytes(const creds& c, fb::RpcOpUnion op) {
    fb::RpcRequestT req;
    req.auth = std::make_unique<fb::AuthT>();
    req.auth->kind = c.kind;
    req.auth->org = c.org;
    req.auth->id = c.id;
    req.auth->secret = c.secret;
    req.op = std::move(op);
    return to_blob<fb::RpcRequest>(req);
  }

  outcome call(const creds& c, fb::RpcOpUnion op) { return call(c, std::move(op), caller_.pk); }
  outcome call(const creds& c, fb::RpcOpUnion op, const crypto::public_key& sender) {
    auto buf = request_bytes(c, std::move(op));
    flatbuffers::Verifier v(buf.data(), buf.size());
    EXPECT_TRUE(v.VerifyBuffer<fb::RpcRequest>(nullptr));
    return svc_->handle(sender, *flatbuffers::GetRoot<fb::RpcRequest>(buf.data()));
  }

  template <typename T>
  static fb::RpcOpUnion create_op(T resource) {
    fb::CreateResourceT c;
    c.resource.Set(std::move(resource));
    fb::RpcOpUnion u;
    u.Set(std::move(c));
    return u;
  }
  template <typename T>
  static fb::RpcOpUnion update_op(T resource) {
    fb::UpdateResourceT c;
    c.resource.Set(std::move(resource));
    fb::RpcOpUnion u;
    u.Set(std::move(c));
    return u;
  }
  static std::unique_ptr<fb::ResourceKeyT> key(fb::ResourceKind k, const std::string& org,
                                               const std::string& id) {
    auto r = std::make_unique<fb::ResourceKeyT>();
    r->kind = k;
    r->org = org;
    r->id = id;
    return r;
  }
  static fb::RpcOpUnion get_op(fb::ResourceKind k, const std::string& org, const std::string& id) {
    fb::GetResourceT g;
    g.key = key(k, org, id);
    fb::RpcOpUnion u;
    u.Set(std::move(g));
    return u;
  }
  static fb::RpcOpUnion delete_op(fb::ResourceKind k, const std::string& org,
                                  const std::string& id) {
    fb::DeleteResourceT g;
    g.key = key(k, org, id);
    fb::RpcOpUnion u;
    u.Set(std::move(g));
    return u;
  }
  static fb::RpcOpUnion list_op(fb::ResourceKind k, const std::string& org,
                                const std::string& token = "", uint32_t limit = 0) {
    fb::ListResourcesT l;
    l.kind = k;
    l.org = org;
    l.page_token = token;
    l.limit = limit;
    fb::RpcOpUnion u;
    u.Set(std::move(l));
    return u;
  }
  template <typename T>
  static fb::RpcOpUnion op(T v) {
    fb::RpcOpUnion u;
    u.Set(std::move(v));
    return u;
  }

  static creds root() { return {fb::AuthKind::user, "root", "root", "rootpw"}; }

  void make_org(const std::string& name) {
    fb::OrgT o;
    o.name = name;
    auto r = call(root(), create_op(o));
    ASSERT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
  }
  creds make_user(const std::string& org, const std::string& name, bool admin) {
    fb::UserT u;
    u.org = org;
    u.username = name;
    u.password = name + "-pw";
    u.admin = admin;
    auto r = call(root(), create_op(u));
    EXPECT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
    return {fb::AuthKind::user, org, name, name + "-pw"};
  }
  creds make_node(const creds& by, const std::string& org, const std::string& id) {
    fb::NodeT n;
    n.org = org;
    n.id = id;
    n.token = id + "-tok";
    auto r = call(by, create_op(n));
    EXPECT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
    return {fb::AuthKind::node, org, id, id + "-tok"};
  }
  creds make_agbot(const std::string& org, const std::string& id) {
    fb::AgbotT a;
    a.org = org;
    a.id = id;
    a.token = id + "-tok";
    auto r = call(root(), create_op(a));
    EXPECT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
    return {fb::AuthKind::agbot, org, id, id + "-tok"};
  }

  // `by` makes agbot agbot_org/agbot_id serve pattern porg/pat for the nodes of `node_org` (""
  // = the pattern's org): AgbotAddPattern, and the exchange's answer.
  outcome add_agbot_pattern(const creds& by, const std::string& agbot_org,
                            const std::string& agbot_id, const std::string& porg,
                            const std::string& pat, const std::string& node_org = "") {
    fb::AgbotAddPatternT add;
    add.agbot_org = agbot_org;
    add.agbot_id = agbot_id;
    add.pattern = std::make_unique<fb::AgbotPatternT>();
    add.pattern->pattern_org = porg;
    add.pattern->pattern = pat;
    add.pattern->node_org = node_org;
    return call(by, op(std::move(add)));
  }

  // Org `name` (labelled with its name) letting the agbots `agbots` ("org/id") serve its nodes.
  static fb::OrgT org_with_agbots(const std::string& name, std::vector<std::string> agbots) {
    fb::OrgT o;
    o.name = name;
    o.label = name;
    o.agbots = std::move(agbots);
    return o;
  }

  // The node org's consent: org `org` lets agbot `agbot` ("org/id") serve its nodes.
  void allow_agbot(const creds& by, const std::string& org, const std::string& agbot) {
    auto r = call(by, update_op(org_with_agbots(org, {agbot})));
    ASSERT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
  }

  int64_t count(const std::string& table) {
    auto st = db_->sql().prepare("SELECT COUNT(*) FROM " + table);
    EXPECT_TRUE(st);
    auto row = st->step();
    EXPECT_TRUE(row && *row);
    return st->column_int(0);
  }

  // acme with admin alice, user bob, node n1, service gps 1.0.0 and pattern p1 (private).
  void acme() {
    make_org("acme");
    alice_ = make_user("acme", "alice", true);
    bob_ = make_user("acme", "bob", false);
    n1_ = make_node(bob_, "acme", "n1");
    auto r = call(bob_, create_op(pub_.service("acme", "https://acme.com/gps", "1.0.0")));
    ASSERT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
    r = call(bob_, create_op(pattern("acme", "p1", "acme", "https://acme.com/gps", "1.0.0")));
    ASSERT_EQ(r.response.status, RpcStatus::ok) << r.response.error_message;
  }

  fb::RpcOpUnion register_op(const std::string& pat) {
    fb::RegisterNodeT r;
    r.pattern = pat;
    r.arch = "amd64";
    return op(std::move(r));
  }

  crypto::box_keypair self_ = crypto::box_keypair::generate();
  crypto::box_keypair caller_ = crypto::box_keypair::generate();  // sender key of requests
  core::loop::manual_clock clock_;
  std::unique_ptr<db> db_;
  std::unique_ptr<service> svc_;
  publisher pub_;
  creds alice_, bob_, n1_;
};

}  // namespace
}  // namespace hmq::exchange
