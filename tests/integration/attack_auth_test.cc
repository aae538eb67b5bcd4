#include <gtest/gtest.h>

#include <cstdio>
#include <regex>
#include <thread>

#include "tests/support/auth_flood.h"
#include "tests/support/secure_broker.h"

// Attack: stall the exchange with wrong secrets (docs/security.md "Authentication floods").
// The attacker is a node of the org with its own broker identity (it may publish RPCs); it
// claims the org admin with a wrong secret, each request sealed by a fresh key so no per-key
// limit applies, while the admin goes on working. Asserted: the admin's commands succeed while
// the flood runs, and the exchange refused the flood (its exit line counts failures and
// attempts refused in back-off before any hashing).
namespace hmq::test {
namespace {

TEST(attack_auth, wrong_secrets_from_fresh_keys_neither_stall_the_exchange_nor_lock_out_the_admin) {
  secure_setup s;
  ASSERT_FALSE(s.key.empty());
  ASSERT_EQ(s.hmq({"org", "create", "acme"}).exit, 0);
  ASSERT_EQ(s.hmq({"--org", "acme", "user", "create", "admin", "adminpw", "-A"}).exit, 0);
  const std::string admin = "acme/admin:adminpw";
  const auto evil = s.new_enrolment("evilpw");
  auto r = s.hmq_enrol({"--org", "acme", "node", "create", "evil:evilpw"}, evil);
  ASSERT_EQ(r.exit, 0) << r.out << r.err;
  // The admin has worked before: its secret is remembered.
  r = s.hmq({"--org", "acme", "node", "list"}, admin);
  ASSERT_EQ(r.exit, 0) << r.out << r.err;

  core::bus::options o;
  o.broker_uri = s.broker->uri();
  o.client_id = "hmq-agent-" + evil.mailbox;
  o.username = evil.mailbox;
  o.password = secure_setup::machine_password(evil.mailbox, "evilpw");
  auto xpk = core::crypto::parse_public_key(s.key);
  ASSERT_TRUE(xpk);
  uint64_t sent = 0;
  {
    auth_flood flood(o, *xpk, "acme", "admin", 200);
    ASSERT_TRUE(flood.connected());
    std::this_thread::sleep_for(1500ms);  // the flood is in full swing before the admin works
    for (int i = 0; i < 4; ++i) {
      r = s.hmq({"--org", "acme", "node", "list"}, admin);
      EXPECT_EQ(r.exit, 0) << "command " << i << " during the flood: " << r.out << r.err;
    }
    sent = flood.sent();
  }
  EXPECT_GT(sent, 200u);
  // Nor is anyone else shut out: another user of the org logs in for the first time.
  ASSERT_EQ(s.hmq({"--org", "acme", "user", "create", "bob", "bobpw"}).exit, 0);
  r = s.hmq({"--org", "acme", "node", "list"}, "acme/bob:bobpw");
  EXPECT_EQ(r.exit, 0) << r.out << r.err;

  s.exchange->kill(SIGTERM);
  ASSERT_TRUE(s.exchange->wait_for(20s));
  const std::string log = read_file(s.exchange_log("exchange.log"));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      log, m,
      std::regex("authentication: (\\d+) remembered, (\\d+) verified, (\\d+) failed \\((\\d+) "
                 "unknown principals\\), (\\d+) refused in back-off, (\\d+) refused busy")))
      << log;
  std::printf("flood sent %llu; exchange: %s\n", static_cast<unsigned long long>(sent),
              m.str().c_str());
  const uint64_t failed = std::stoull(m[3]), backoff = std::stoull(m[5]), busy = std::stoull(m[6]);
  EXPECT_GE(failed, 5u) << m.str();
  EXPECT_GT(backoff, 0u) << "the budget must refuse before hashing: " << m.str();
  EXPECT_GE(failed + backoff + busy, sent * 9 / 10) << "the flood must be refused: " << m.str();
}

}  // namespace
}  // namespace hmq::test
