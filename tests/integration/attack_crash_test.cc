#include <gtest/gtest.h>

#include <csignal>

#include "tests/support/secure_broker.h"

// Crash between COMMIT and the broker (docs/security.md "Crash-safe broker administration"): the
// exchange commits a change first and sends its broker-identity commands after, so a kill -9 in
// between leaves the broker behind the registry. A node removed by its org admin would keep its
// broker access. The exchange is killed exactly there (hidden flag --fault
// kill-before-broker-admin raises SIGKILL after the COMMIT), started again, and its reconcile
// must bring the broker back to the registry while the victim agbot keeps working.
namespace hmq::test {
namespace {

bool refused(secure_setup& s, const std::string& user, const std::string& token) {
  return s.sub(user, secure_setup::machine_password(user, token), {"hmq/v1/mb/" + user})
             .out.find("Not authorized") != std::string::npos;
}

// The org admin's `node remove` reaches the exchange, which commits and dies before the broker
// hears of it. `what` is the CLI's arguments.
void crash_on(victim_agbot& v, std::vector<std::string> what, const std::string& log_name) {
  v.s.exchange->kill(SIGTERM);
  ASSERT_TRUE(v.s.exchange->wait_for(10s));
  v.s.start_exchange({"--fault", "kill-before-broker-admin"}, log_name);
  what.insert(what.begin(), {"--timeout", "3"});
  auto r = v.s.hmq(what, "acme/admin:adminpw");
  EXPECT_NE(r.exit, 0) << "the exchange must die before it answers: " << r.out;
  auto st = v.s.exchange->wait_for(10s);
  ASSERT_TRUE(st.has_value()) << read_file(v.s.exchange_log(log_name));
  EXPECT_TRUE(WIFSIGNALED(*st) && WTERMSIG(*st) == SIGKILL) << *st;
}

TEST(attack_crash, a_removal_committed_but_never_sent_is_undone_on_the_broker_at_restart) {
  victim_agbot v;
  ASSERT_FALSE(v.mailbox.empty());
  ASSERT_EQ(v.s.hmq({"--org", "acme", "user", "create", "admin", "adminpw", "-A"}).exit, 0);
  const auto e = v.s.new_enrolment("n1tok");
  const std::string& mb = e.mailbox;
  auto r = v.s.hmq_enrol({"node", "create", "n1:n1tok"}, e, "acme/admin:adminpw");
  ASSERT_EQ(r.exit, 0) << r.out << r.err;
  ASSERT_TRUE(eventually([&] { return !refused(v.s, mb, "n1tok"); }, 10s));

  crash_on(v, {"node", "remove", "n1"}, "exchange-crash.log");
  // The window is real: the registry has no n1, the broker still lets it in.
  EXPECT_FALSE(refused(v.s, mb, "n1tok")) << "the fault did not hit between COMMIT and broker";

  v.s.start_exchange({}, "exchange-restart.log");
  // On the broker: the agbot, n1 and the users root/root and acme/admin.
  EXPECT_TRUE(wait_for_log(v.s.exchange_log("exchange-restart.log"),
                           "broker identities reconciled: 4 on the broker, 1 removed, 0 created "
                           "again, 0 missing",
                           1, 20s))
      << read_file(v.s.exchange_log("exchange-restart.log"));
  EXPECT_TRUE(refused(v.s, mb, "n1tok"));
  EXPECT_NE(v.s.hmq({"--org", "acme", "node", "get", "n1"}).exit, 0);
  // The reconcile touched nothing registered: the agbot still holds its identity and works.
  v.expect_still_works();
}

// The kept secret (schema v6) committed with the node: the restarted exchange creates the
// identity the crash never sent, and the node gets in with its derived password.
TEST(attack_crash, an_identity_committed_but_never_sent_is_created_at_restart) {
  victim_agbot v;
  ASSERT_FALSE(v.mailbox.empty());
  ASSERT_EQ(v.s.hmq({"--org", "acme", "user", "create", "admin", "adminpw", "-A"}).exit, 0);
  const auto e = v.s.new_enrolment("n2tok");
  const std::string& mb = e.mailbox;
  crash_on(v, {"node", "create", "n2:n2tok", "--mailbox", mb, "--claim", e.claim},
           "exchange-crash.log");
  // The window is real: the registry has n2, the broker does not let it in.
  EXPECT_TRUE(refused(v.s, mb, "n2tok")) << "the fault did not hit between COMMIT and broker";
  v.s.start_exchange({}, "exchange-restart.log");
  const auto log = v.s.exchange_log("exchange-restart.log");
  EXPECT_TRUE(wait_for_log(log,
                           "broker identities reconciled: 3 on the broker, 0 removed, 1 created "
                           "again, 0 missing",
                           1, 20s))
      << read_file(log);
  EXPECT_NE(read_file(log).find("broker identity " + mb + " is registered but not on the broker"),
            std::string::npos)
      << read_file(log);
  EXPECT_TRUE(eventually([&] { return !refused(v.s, mb, "n2tok"); }, 10s));
  v.expect_still_works();
}

}  // namespace
}  // namespace hmq::test
