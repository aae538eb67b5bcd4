// Fuzzes every message body the agent's engine decodes (agent/engine.h on_message: Proposal with
// its services, signed deployments and user inputs; ReplyAck; Cancel; AgreementVerify; and the
// bodies it must drop: Reply, Heartbeat, StatusReport, RPC...). The input is the Message buffer
// as the codec hands it over after opening, from the agbot's key; the Verifier runs first, as in
// the codec. Every input starts from the same state: a registered node trusting a fixed
// publisher key, with one accepted agreement (so ReplyAck/Cancel reach a real agreement) on a
// fresh in-memory store, manual scheduler, fake exchange and outbox, memory runtime.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "agent/engine.h"
#include "core/crypto/crypto.h"
#include "core/log/log.h"
#include "core/loop/loop.h"
#include "core/wire/codec.h"
#include "core/wire/service_signature.h"
#include "tests/fuzz/fuzz_message.h"
#include "tests/support/proposals.h"

namespace {

using namespace hmq;
using namespace hmq::agent;
namespace cw = core::wire;

constexpr std::array<uint8_t, 32> agbot_seed = {
    'h', 'm', 'q', '-', 'f', 'u', 'z', 'z', '-', 'a', 'g', 'b', 'o', 't', '-', 'k',
    'e', 'y', '-', 's', 'e', 'e', 'd', '-', '0', '0', '0', '0', '0', '0', '0', '1'};
constexpr std::array<uint8_t, 32> publisher_seed = {
    'h', 'm', 'q', '-', 'f', 'u', 'z', 'z', '-', 'p', 'u', 'b', 'l', 'i', 's', 'h',
    'e', 'r', '-', 's', 'e', 'e', 'd', '-', '0', '0', '0', '0', '0', '0', '0', '1'};
const std::string agreement_a(32, 'a');

struct keys {
  crypto::box_keypair agbot = std::move(crypto::box_keypair::from_secret(agbot_seed)).value();
  crypto::sign_keypair publisher =
      std::move(crypto::sign_keypair::from_secret(publisher_seed)).value();
};
const keys& k() {
  static const keys kk;
  return kk;
}

// The exchange as the engine sees it: every call succeeds; agbot "hub/agbot1" has the agbot key.
class quiet_exchange final : public exchange_api {
 public:
  explicit quiet_exchange(core::loop::scheduler& loop) : loop_(loop) {}
  void register_node(const node_registration&, done_fn cb) override { ok(std::move(cb)); }
  void unregister_node(const node_identity&, done_fn cb) override { ok(std::move(cb)); }
  void put_agreement(const node_identity&, const fb::AgreementRecordT&, done_fn cb) override {
    ok(std::move(cb));
  }
  void delete_agreement(const node_identity&, const std::string&, done_fn cb) override {
    ok(std::move(cb));
  }
  void get_agbot_key(const node_identity&, const std::string& org, const std::string& id,
                     std::function<void(result<crypto::public_key>)> cb) override {
    bool known = org == "hub" && id == "agbot1";
    loop_.post([cb = std::move(cb), known] {
      if (!known) return cb(core::error{make_error_code(errc::bad_request), "no such agbot"});
      cb(k().agbot.pk);
    });
  }
  void get_pattern(const node_identity&, const std::string&, const std::string&,
                   std::function<void(result<fb::PatternT>)> cb) override {
    loop_.post([cb = std::move(cb)] { cb(test::gps_pattern()); });
  }

 private:
  void ok(done_fn cb) {
    loop_.post([cb = std::move(cb)] { cb(core::ok()); });
  }
  core::loop::scheduler& loop_;
};

// Builds what the engine sends, so the builders' callbacks (reading the input) run too.
class packing_outbox final : public outbox {
 public:
  void send(const crypto::public_key&, fb::Body type, const body_builder& body,
            done_fn done) override {
    flatbuffers::FlatBufferBuilder b;
    auto off = body(b);
    fb::FinishMessageBuffer(b, fb::CreateMessage(b, 1, 0, 0, 0, type, off));
    if (done) done(core::ok());
  }
};

std::vector<uint8_t> deployment() {
  return test::gps_deployment("registry.local/gps:1.0", "sha256:" + std::string(64, 'a'), {"A=1"});
}

fb::ProposalT proposal(const std::string& id) {
  auto ps = test::signed_gps("hub", k().publisher, deployment(),
                             [](fb::ServiceT& s) { test::declare_input(s, "POLL", "int", "5"); });
  test::give_input(*ps, "POLL", "1");
  return test::gps_proposal(id, "hub", "hub/agbot1", std::move(ps));
}

using hmq::fuzz::message;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;                              // the codec's default size cap
  static const bool quiet = hmq::core::log::set_level("off");  // logging would dominate the run
  (void)quiet;
  core::loop::manual_scheduler loop;
  auto store = agent_store::open_memory();
  if (!store) __builtin_trap();
  quiet_exchange x(loop);
  packing_outbox out;
  memory_runtime rt(loop, /*auto_complete=*/true);
  engine eng(loop, *store, x, out, rt, {});
  if (!eng.start()) __builtin_trap();
  if (!store->add_trusted_key({k().publisher.pk, "publisher", 1})) __builtin_trap();
  eng.register_node({{"acme", "node1", "tok"}, "hub/gps", "amd64", {}}, "[]", [](result<void>) {});
  loop.run_pending();
  // The accepted agreement the fuzzed ReplyAck/Cancel/AgreementVerify may name.
  eng.on_message(cw::opened{k().agbot.pk, message(proposal(agreement_a))});
  loop.run_pending();

  cw::opened m{k().agbot.pk, std::vector<uint8_t>(data, data + size)};
  if (!hmq::fuzz::opens_like_codec(m)) return 0;
  eng.on_message(m);
  loop.run_pending();
  loop.advance(std::chrono::seconds(61));  // finalize timeouts and retries run too
  eng.stop();
  loop.run_pending();
  return 0;
}

// Seed corpus (replay binary: <target>_replay --write-seeds DIR): one message of every body
// type, the agreement-changing ones naming the fixture's agreement.
extern "C" void hmq_fuzz_write_seeds(const char* d) {
  std::filesystem::path dir(d);
  auto seed = [&](const std::string& name, const std::vector<uint8_t>& b) {
    std::ofstream(dir / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), b.size());
  };
  seed("proposal_new", message(proposal(std::string(32, 'b'))));
  {
    auto p = proposal(std::string(32, 'c'));
    p.services[0]->service->deployment_signature[0] ^= 1;
    seed("proposal_bad_signature", message(std::move(p)));
  }
  {
    fb::ReplyAckT a;
    a.agreement_id = agreement_a;
    a.still_valid = true;
    seed("reply_ack", message(std::move(a)));
  }
  {
    fb::CancelT c;
    c.agreement_id = agreement_a;
    c.reason = fb::CancelReason::container_failure;
    seed("cancel", message(std::move(c)));
  }
  {
    fb::AgreementVerifyT v;
    v.agreement_id = agreement_a;
    seed("agreement_verify", message(std::move(v)));
  }
  {
    fb::ReplyT r;
    r.agreement_id = agreement_a;
    seed("reply_dropped", message(std::move(r)));
  }
  {
    fb::HeartbeatT h;
    seed("heartbeat_dropped", message(std::move(h)));
  }
  {
    fb::StatusReportT s;
    seed("status_report_dropped", message(std::move(s)));
  }
}
