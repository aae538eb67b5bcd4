// Fuzzes the exchange's RPC handler (exchange/service.h) the way hmq-exchange feeds it: a
// verified Message whose body is an RpcRequest, from a fixed sender key, on a fresh in-memory
// store that holds the root user (root/root:rootpw) and one org "acme" with a node, so
// mutated requests with valid credentials reach validation and the store writes. Each input
// starts from the same state (reproducible crashes).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "core/crypto/crypto.h"
#include "core/log/log.h"
#include "core/loop/loop.h"
#include "core/wire/codec.h"
#include "core/wire/service_signature.h"
#include "exchange/db.h"
#include "exchange/service.h"

namespace {

using namespace hmq;
namespace crypto = core::crypto;
namespace fb = wire::fb;

constexpr std::array<uint8_t, 32> exchange_seed = {
    'h', 'm', 'q', '-', 'f', 'u', 'z', 'z', '-', 'e', 'x', 'c', 'h', 'a', 'n', 'g',
    'e', '-', 'k', 'e', 'y', '-', 's', 'e', 'e', 'd', '-', '0', '0', '0', '0', '1'};

struct fixture {
  fixture() {
    crypto::init();
    caller.fill(7);
  }
  crypto::box_keypair self = std::move(crypto::box_keypair::from_secret(exchange_seed)).value();
  crypto::public_key caller{};  // the sealed request's sender
  core::loop::manual_clock clock{1'700'000'000'000};
};

fixture& fx() {
  static fixture f;
  return f;
}

std::vector<uint8_t> message(fb::RpcRequestT req) {
  fb::MessageT m;
  m.id = 1;
  m.sent_ms = 1'700'000'000'000;
  m.correlation_id = 9;
  m.reply_to = "mailbox";
  m.body.Set(std::move(req));
  flatbuffers::FlatBufferBuilder b;
  fb::FinishMessageBuffer(b, fb::Message::Pack(b, &m));
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

fb::RpcRequestT request(fb::AuthKind kind, std::string org, std::string id, std::string secret) {
  fb::RpcRequestT r;
  r.auth = std::make_unique<fb::AuthT>();
  r.auth->kind = kind;
  r.auth->org = std::move(org);
  r.auth->id = std::move(id);
  r.auth->secret = std::move(secret);
  return r;
}

fb::RpcRequestT as_root() {
  return request(fb::AuthKind::user, "root", "root", "rootpw");
}

void handle(exchange::service& svc, const std::vector<uint8_t>& bytes) {
  flatbuffers::Verifier v(bytes.data(), bytes.size(), 64, 1'000'000);
  if (!fb::VerifyMessageBuffer(v)) return;
  const auto* req = fb::GetMessage(bytes.data())->body_as_RpcRequest();
  if (!req) return;
  auto out = svc.handle(fx().caller, *req);
  // What the app does with the outcome: pack the response.
  flatbuffers::FlatBufferBuilder b;
  b.Finish(fb::RpcResponse::Pack(b, &out.response));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 256 * 1024) return 0;                             // the codec's size cap is below this
  static const bool quiet = hmq::core::log::set_level("off");  // logging would dominate the run
  (void)quiet;
  auto d = exchange::db::open_memory();
  if (!d) __builtin_trap();
  exchange::service_options o;
  o.strength = crypto::hash_strength::minimum;
  exchange::service svc(*d, fx().self, fx().clock, o);
  if (!svc.bootstrap_root("rootpw")) __builtin_trap();
  {
    auto org = as_root();
    fb::CreateResourceT c;
    auto n = fb::OrgT();
    n.name = "acme";
    c.resource.Set(std::move(n));
    org.op.Set(std::move(c));
    handle(svc, message(std::move(org)));
  }
  std::vector<uint8_t> in(data, data + size);  // aligned copy, as the codec hands it over
  handle(svc, in);
  return 0;
}

// Seed corpus (replay binary: <target>_replay --write-seeds DIR): one request per operation.
extern "C" void hmq_fuzz_write_seeds(const char* d) {
  std::filesystem::path dir(d);
  auto seed = [&](const std::string& name, fb::RpcRequestT r) {
    auto b = message(std::move(r));
    std::ofstream(dir / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), b.size());
  };
  {
    auto r = as_root();
    fb::CreateResourceT c;
    fb::UserT u;
    u.org = "acme";
    u.username = "admin";
    u.password = "admin-pw";
    u.admin = true;
    c.resource.Set(std::move(u));
    r.op.Set(std::move(c));
    seed("create_user", std::move(r));
  }
  {
    auto r = as_root();
    fb::CreateResourceT c;
    fb::NodeT n;
    n.org = "acme";
    n.id = "node1";
    n.token = "tok";
    n.arch = "amd64";
    c.resource.Set(std::move(n));
    r.op.Set(std::move(c));
    seed("create_node", std::move(r));
  }
  {
    auto r = as_root();
    fb::CreateResourceT c;
    fb::ServiceT s;
    s.org = "acme";
    s.url = "gps";
    s.version = "1.0.0";
    s.arch = "amd64";
    s.sharable = fb::Sharing::multiple;
    fb::DeploymentT dep;
    auto ct = std::make_unique<fb::ContainerT>();
    ct->name = "gps";
    ct->image = "127.0.0.1:5000/gps";
    ct->image_digest = "sha256:" + std::string(64, 'a');
    dep.containers.push_back(std::move(ct));
    flatbuffers::FlatBufferBuilder db;
    db.Finish(fb::Deployment::Pack(db, &dep));
    s.deployment.assign(db.GetBufferPointer(), db.GetBufferPointer() + db.GetSize());
    auto keys = crypto::sign_keypair::generate();
    core::wire::sign_service(s, keys);
    c.resource.Set(std::move(s));
    r.op.Set(std::move(c));
    seed("create_service", std::move(r));
  }
  {
    auto r = as_root();
    fb::CreateResourceT c;
    fb::PatternT p;
    p.org = "acme";
    p.name = "pat";
    auto ps = std::make_unique<fb::PatternServiceT>();
    ps->service_url = "gps";
    ps->service_org = "acme";
    ps->service_arch = "amd64";
    auto v = std::make_unique<fb::ServiceVersionT>();
    v->version = "1.0.0";
    ps->service_versions.push_back(std::move(v));
    p.services.push_back(std::move(ps));
    c.resource.Set(std::move(p));
    r.op.Set(std::move(c));
    seed("create_pattern", std::move(r));
  }
  {
    auto r = as_root();
    fb::ListResourcesT l;
    l.kind = fb::ResourceKind::org;
    l.limit = 10;
    r.op.Set(std::move(l));
    seed("list_orgs", std::move(r));
  }
  {
    auto r = as_root();
    fb::GetResourceT g;
    g.key = std::make_unique<fb::ResourceKeyT>();
    g.key->kind = fb::ResourceKind::org;
    g.key->id = "acme";
    r.op.Set(std::move(g));
    seed("get_org", std::move(r));
  }
  {
    auto r = request(fb::AuthKind::node, "acme", "node1", "tok");
    fb::RegisterNodeT reg;
    reg.pattern = "acme/pat";
    reg.arch = "amd64";
    r.op.Set(std::move(reg));
    seed("register_node", std::move(r));
  }
  {
    auto r = as_root();
    fb::PutAgreementT p;
    p.record = std::make_unique<fb::AgreementRecordT>();
    p.record->agreement_id = std::string(32, 'a');
    r.op.Set(std::move(p));
    seed("put_agreement", std::move(r));
  }
  {
    auto r = as_root();
    fb::SearchPatternNodesT s;
    s.pattern_org = "acme";
    s.pattern = "pat";
    s.node_org = "acme";
    r.op.Set(std::move(s));
    seed("search_pattern_nodes", std::move(r));
  }
  {
    auto r = request(fb::AuthKind::user, "root", "root", "wrong");
    r.op.Set(fb::AgbotHelloT{});
    seed("bad_password", std::move(r));
  }
}
