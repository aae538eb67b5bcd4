// The exchange's credential gate (exchange/auth_gate.h): Argon2id off the loop thread, failed
// attempts budgeted before any hashing, unknown principals answered like wrong secrets. Real
// store, real hashes and real worker threads; the loop is a manual scheduler.
#include <gtest/gtest.h>

#include <thread>

#include "exchange/auth_gate.h"
#include "exchange/service.h"

namespace hmq::exchange {
namespace {

namespace crypto = core::crypto;
using namespace std::chrono_literals;

struct verdict {
  bool done = false;
  bool passed = false;
  rpc_error error;
};

class exchange_auth_gate : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = db::open_memory();
    ASSERT_TRUE(d);
    db_ = std::make_unique<db>(std::move(*d));
    service_options so;
    so.strength = crypto::hash_strength::minimum;
    svc_ = std::make_unique<service>(*db_, self_, loop_.time(), so);
    ASSERT_TRUE(svc_->bootstrap_root("rootpw"));
  }
  void make_gate(auth_gate_options o, crypto::hash_strength s = crypto::hash_strength::minimum) {
    gate_ = std::make_unique<auth_gate>(loop_, *db_, svc_->credentials(), s, o);
  }

  // Starts one check as user org/id with `secret` from `sender`.
  std::shared_ptr<verdict> start(const std::string& org, const std::string& id,
                                 const std::string& secret, const crypto::public_key& sender) {
    flatbuffers::FlatBufferBuilder b;
    b.Finish(fb::CreateAuth(b, fb::AuthKind::user, b.CreateString(org), b.CreateString(id),
                            b.CreateString(secret)));
    auto v = std::make_shared<verdict>();
    gate_->check(
        sender, flatbuffers::GetRoot<fb::Auth>(b.GetBufferPointer()),
        [v] {
          v->done = true;
          v->passed = true;
        },
        [v](const rpc_error& e, const std::string&) {
          v->done = true;
          v->error = e;
        });
    return v;
  }
  // Runs the loop until `v` is decided (the workers post their results), at most 10 s.
  void settle(const std::shared_ptr<verdict>& v) {
    for (int i = 0; i < 2000 && !v->done; ++i) {
      loop_.run_pending();
      if (!v->done) std::this_thread::sleep_for(5ms);
    }
    ASSERT_TRUE(v->done) << "no verdict";
  }
  std::shared_ptr<verdict> check(const std::string& org, const std::string& id,
                                 const std::string& secret,
                                 const crypto::public_key& sender = fresh_key()) {
    auto v = start(org, id, secret, sender);
    settle(v);
    return v;
  }
  static crypto::public_key fresh_key() { return crypto::box_keypair::generate().pk; }

  core::loop::manual_scheduler loop_;
  crypto::box_keypair self_ = crypto::box_keypair::generate();
  std::unique_ptr<db> db_;
  std::unique_ptr<service> svc_;
  std::unique_ptr<auth_gate> gate_;
};

TEST_F(exchange_auth_gate, a_right_secret_is_verified_once_then_remembered) {
  make_gate({});
  auto first = start("root", "root", "rootpw", fresh_key());
  EXPECT_FALSE(first->done) << "the verification runs on a worker, not in check()";
  settle(first);
  EXPECT_TRUE(first->passed) << first->error.message;
  auto again = start("root", "root", "rootpw", fresh_key());
  EXPECT_TRUE(again->done && again->passed) << "a remembered secret passes at once";
  EXPECT_EQ(gate_->stats().verified, 1u);
  EXPECT_EQ(gate_->stats().cached, 1u);
}

// Fresh sender keys do not reset a principal's budget; the budget refuses before hashing; a
// secret verified before the attack still passes; the wait doubles and then ends.
TEST_F(exchange_auth_gate, failures_are_budgeted_per_principal_before_any_hashing) {
  make_gate({.free_failures = 2, .backoff = 1000ms});
  ASSERT_TRUE(check("root", "root", "rootpw")->passed);
  for (int i = 0; i < 3; ++i) {
    auto v = check("root", "root", "wrong" + std::to_string(i));
    EXPECT_EQ(v->error.status, fb::RpcStatus::unauthorized);
    EXPECT_EQ(v->error.message, "bad credentials for user root/root");
  }
  EXPECT_EQ(gate_->stats().failed, 3u);
  auto refused = start("root", "root", "wrong-again", fresh_key());
  ASSERT_TRUE(refused->done) << "refused in check(), without a worker";
  EXPECT_EQ(refused->error.status, fb::RpcStatus::rate_limited);
  EXPECT_EQ(refused->error.message, "too many failed attempts for user root/root: retry in 1 s");
  EXPECT_EQ(gate_->stats().failed, 3u) << "nothing hashed in back-off";
  EXPECT_EQ(gate_->stats().refused_backoff, 1u);
  // The honest caller, remembered before, is not locked out.
  EXPECT_TRUE(check("root", "root", "rootpw")->passed);

  loop_.advance(1001ms);
  EXPECT_EQ(check("root", "root", "wrong3")->error.status, fb::RpcStatus::unauthorized);
  auto longer = start("root", "root", "wrong4", fresh_key());
  ASSERT_TRUE(longer->done);
  EXPECT_EQ(longer->error.message, "too many failed attempts for user root/root: retry in 2 s");
}

TEST_F(exchange_auth_gate, a_sender_key_has_its_own_budget) {
  make_gate({.free_failures = 1, .backoff = 1000ms});
  const auto attacker = fresh_key();
  // Two principals that do not exist, one key: the key runs out, not the principals.
  EXPECT_EQ(check("root", "ghost1", "x", attacker)->error.status, fb::RpcStatus::unauthorized);
  EXPECT_EQ(check("root", "ghost2", "x", attacker)->error.status, fb::RpcStatus::unauthorized);
  auto v = check("root", "ghost3", "x", attacker);
  EXPECT_EQ(v->error.status, fb::RpcStatus::rate_limited) << v->error.message;
  EXPECT_EQ(check("root", "ghost3", "x")->error.status, fb::RpcStatus::unauthorized)
      << "another key may still try ghost3";
}

// An unknown principal costs a verification too (against a dummy hash) and is answered with
// the same words as a wrong secret: nothing tells which principals exist.
TEST_F(exchange_auth_gate, an_unknown_principal_is_answered_like_a_wrong_secret) {
  make_gate({});
  auto ghost = start("root", "ghost", "pw", fresh_key());
  EXPECT_FALSE(ghost->done) << "verified on a worker like any other";
  settle(ghost);
  EXPECT_EQ(ghost->error.status, fb::RpcStatus::unauthorized);
  EXPECT_EQ(ghost->error.message, "bad credentials for user root/ghost");
  EXPECT_EQ(gate_->stats().unknown_principals, 1u);
}

TEST_F(exchange_auth_gate, identical_attempts_in_flight_share_one_verification) {
  make_gate({});
  auto a = start("root", "root", "rootpw", fresh_key());
  auto b = start("root", "root", "rootpw", fresh_key());
  settle(a);
  settle(b);
  EXPECT_TRUE(a->passed && b->passed);
  EXPECT_EQ(gate_->stats().coalesced, 1u);
  EXPECT_EQ(gate_->stats().verified, 2u);
}

// One worker, one waiting slot, interactive-strength hashes (tens of ms each): the third
// distinct attempt is refused as busy at once, and the two others are still answered.
TEST_F(exchange_auth_gate, a_full_queue_refuses_as_busy_and_the_loop_goes_on) {
  make_gate({.threads = 1, .max_queued = 1}, crypto::hash_strength::interactive);
  auto a = start("root", "g1", "x", fresh_key());
  // The worker has taken `a` (and hashes for tens of ms): the queue is empty again.
  for (int i = 0; i < 2000 && gate_->queued() > 0; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(gate_->queued(), 0u);
  auto b = start("root", "g2", "x", fresh_key());
  auto c = start("root", "g3", "x", fresh_key());
  ASSERT_TRUE(c->done);
  EXPECT_EQ(c->error.status, fb::RpcStatus::unavailable);
  EXPECT_EQ(gate_->stats().refused_busy, 1u);
  settle(a);
  settle(b);
  EXPECT_EQ(a->error.status, fb::RpcStatus::unauthorized);
  EXPECT_EQ(b->error.status, fb::RpcStatus::unauthorized);
}

TEST_F(exchange_auth_gate, requests_without_usable_credentials_go_to_the_service) {
  make_gate({});
  auto v = start("", "root", "rootpw", fresh_key());
  EXPECT_TRUE(v->done && v->passed) << "the service answers it, without hashing";
  bool passed = false;
  gate_->check(
      fresh_key(), nullptr, [&] { passed = true; }, [](const rpc_error&, const std::string&) {});
  EXPECT_TRUE(passed);
}

}  // namespace
}  // namespace hmq::exchange
