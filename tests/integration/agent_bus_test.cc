#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <memory>
#include <optional>
#include <vector>

#include "agent/agent_store.h"
#include "agent/engine.h"
#include "agent/messenger_outbox.h"
#include "core/bus/client.h"
#include "core/bus/messenger.h"
#include "core/crypto/crypto.h"
#include "core/wire/codec.h"
#include "core/wire/service_signature.h"
#include "tests/support/loop_thread.h"
#include "tests/support/mosquitto.h"
#include "tests/support/proposals.h"

// The agent's engine on a real broker: sealed Proposal -> Reply -> ReplyAck through mosquitto,
// with a scripted agbot and a fake exchange (hmq-exchange and hmq-agbot processes are not used
// here; see docs/agent.md for the end-to-end tests that will).
namespace hmq::agent {
namespace {

namespace bus = core::bus;
namespace wire = core::wire;
using namespace std::chrono_literals;
using test::loop_thread;
using test::mosquitto_broker;
using test::waiter;

constexpr const char* agreement_id = "00112233445566778899aabbccddeeff";

bus::options client_options(const mosquitto_broker& b, std::string id) {
  bus::options o;
  o.broker_uri = b.uri();
  o.client_id = std::move(id);
  o.min_retry = 50ms;
  o.max_retry = 500ms;
  return o;
}

// One identity on the loop: key pair, client, codec and messenger.
struct party {
  loop_thread& lt;
  crypto::box_keypair keys = crypto::box_keypair::generate();
  std::unique_ptr<bus::client> c;
  std::unique_ptr<wire::codec> codec;
  std::unique_ptr<bus::messenger> m;

  party(loop_thread& l, const mosquitto_broker& b, const std::string& id) : lt(l) {
    lt.call([&] {
      c = std::make_unique<bus::client>(lt.loop(), client_options(b, id));
      codec = std::make_unique<wire::codec>(keys, lt.loop().time());
      m = std::make_unique<bus::messenger>(lt.loop(), *c, *codec);
    });
  }
  ~party() {
    lt.call([&] {
      m->stop();
      c->stop();
      m.reset();
      c.reset();
    });
  }
  // Connect; returns once the own mailbox subscription is acknowledged.
  bool start() {
    auto p = std::make_shared<std::promise<bool>>();
    auto f = p->get_future();
    lt.call([&] {
      m->start();
      c->start();
      c->subscribe(m->mailbox_topic(), 1, nullptr,
                   [p](core::result<void> r) { p->set_value(r.ok()); });
    });
    if (f.wait_for(30s) != std::future_status::ready || !f.get()) return false;
    lt.call([&] {  // the subscribe above replaced the messenger's handler: put it back
      m->stop();
      m->start();
    });
    return true;
  }
};

// Answers every agbot key lookup with the test agbot's key; everything else succeeds.
class fake_exchange final : public exchange_api {
 public:
  fake_exchange(core::loop::scheduler& l, crypto::public_key agbot) : loop_(l), agbot_(agbot) {}
  void register_node(const node_registration&, done_fn cb) override { ok(std::move(cb)); }
  void unregister_node(const node_identity&, done_fn cb) override { ok(std::move(cb)); }
  void put_agreement(const node_identity&, const fb::AgreementRecordT&, done_fn cb) override {
    ok(std::move(cb));
  }
  void delete_agreement(const node_identity&, const std::string&, done_fn cb) override {
    ok(std::move(cb));
  }
  void get_agbot_key(const node_identity&, const std::string&, const std::string&,
                     std::function<void(result<crypto::public_key>)> cb) override {
    loop_.post([cb = std::move(cb), k = agbot_] { cb(k); });
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
  crypto::public_key agbot_;
};

// memory_runtime that tells the test thread when a workload starts.
class signalling_runtime final : public runtime {
 public:
  signalling_runtime(core::loop::scheduler& l, waiter& w) : inner_(l, true), w_(w) {}
  void deploy(const workload& wl, done_fn cb) override {
    inner_.deploy(wl, std::move(cb));
    w_.update([&] { deployed.push_back(wl.agreement_id); });
  }
  void remove(const std::string& id, done_fn cb) override { inner_.remove(id, std::move(cb)); }
  std::vector<std::string> deployed;  // guarded by the waiter

 private:
  memory_runtime inner_;
  waiter& w_;
};

fb::ProposalT make_proposal(const crypto::sign_keypair& publisher, bool tamper) {
  auto ps = test::signed_gps("hub", publisher, test::gps_deployment());
  if (tamper) {
    // Change the image name inside the signed bytes; the buffer stays a valid Deployment (a
    // broken one already fails the Message Verifier in the codec and never reaches the agent).
    auto& dep = ps->service->deployment;
    auto it = std::search(dep.begin(), dep.end(), std::begin("registry"), std::end("registry") - 1);
    *it = 'R';
  }
  return test::gps_proposal(agreement_id, "hub", "hub/agbot1", std::move(ps));
}

// Broker, agent (engine on its messenger) and a scripted agbot that acks every accept.
class agent_bus : public ::testing::Test {
 protected:
  agent_bus() : agent_(lt_, broker_, "agent-1"), agbot_(lt_, broker_, "agbot-1") {}

  void SetUp() override {
    lt_.call([&] {
      store_ = std::make_unique<agent_store>(agent_store::open_memory().value());
      x_ = std::make_unique<fake_exchange>(lt_.loop(), agbot_.keys.pk);
      out_ = std::make_unique<messenger_outbox>(*agent_.m, lt_.loop().time(), 60);
      rt_ = std::make_unique<signalling_runtime>(lt_.loop(), w_);
      eng_ = std::make_unique<engine>(lt_.loop(), *store_, *x_, *out_, *rt_);
      ASSERT_TRUE(eng_->start().ok());
      ASSERT_TRUE(store_->add_trusted_key({publisher_.pk, "publisher", 1}).ok());
      eng_->register_node({{"acme", "node1", "tok"}, "hub/gps", "amd64", {}}, "[]",
                          [](result<void>) {});
      for (auto t :
           {fb::Body::Proposal, fb::Body::ReplyAck, fb::Body::Cancel, fb::Body::AgreementVerify})
        agent_.m->on(t, [this](const wire::opened& m) { eng_->on_message(m); });
      agbot_.m->on(fb::Body::Reply, [this](const wire::opened& m) {
        const auto* r = m.message()->body_as_Reply();
        w_.update([&] { replies_.push_back({r->decision(), r->reason()}); });
        if (r->decision() != fb::ReplyDecision::accept) return;
        fb::ReplyAckT ack;
        ack.agreement_id = r->agreement_id()->str();
        ack.still_valid = true;
        fb::MessageT msg;
        msg.body.Set(std::move(ack));
        agbot_.m->send(m.sender, wire::build_message(std::move(msg), lt_.loop().time()));
      });
    });
    ASSERT_TRUE(agent_.start());
    ASSERT_TRUE(agbot_.start());
  }
  void TearDown() override {
    lt_.call([&] {
      eng_.reset();
      rt_.reset();
      out_.reset();
      x_.reset();
      store_.reset();
    });
  }
  void propose(bool tamper) {
    lt_.call([&] {
      fb::MessageT msg;
      msg.body.Set(make_proposal(publisher_, tamper));
      agbot_.m->send(agent_.keys.pk, wire::build_message(std::move(msg), lt_.loop().time()));
    });
  }

  mosquitto_broker broker_;
  loop_thread lt_;
  party agent_;
  party agbot_;
  crypto::sign_keypair publisher_ = crypto::sign_keypair::generate();
  waiter w_;
  std::vector<std::pair<fb::ReplyDecision, fb::CancelReason>> replies_;
  std::unique_ptr<agent_store> store_;
  std::unique_ptr<fake_exchange> x_;
  std::unique_ptr<messenger_outbox> out_;
  std::unique_ptr<signalling_runtime> rt_;
  std::unique_ptr<engine> eng_;
};

TEST_F(agent_bus, proposal_over_the_broker_ends_finalized_with_the_workload_deployed) {
  propose(false);
  ASSERT_TRUE(w_.wait([&] { return !rt_->deployed.empty(); }))
      << "no deploy; replies: " << replies_.size();
  auto agreements = lt_.call([&] { return eng_->agreements(); });
  ASSERT_EQ(agreements.size(), 1u);
  EXPECT_EQ(agreements[0].state, agreement_state::finalized);
  EXPECT_EQ(w_.read([&] { return replies_.size(); }), 1u);
}

TEST_F(agent_bus, tampered_proposal_over_the_broker_is_rejected_with_115) {
  propose(true);
  ASSERT_TRUE(w_.wait([&] { return !replies_.empty(); }));
  auto first = w_.read([&] { return replies_.front(); });
  EXPECT_EQ(first.first, fb::ReplyDecision::reject);
  EXPECT_EQ(first.second, fb::CancelReason::image_sig_verif_failure);
  EXPECT_TRUE(lt_.call([&] { return eng_->agreements(); }).empty());
}

}  // namespace
}  // namespace hmq::agent
