// hmq-replay against the real system: a recorded agreement formation, re-sealed and played into
// a fresh environment with the same keys, forms the same agreement in a fresh agent. Real
// mosquitto, hmq-exchange, hmq-agbot, hmq-agent (memory runtime) and hmq-replay processes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include "core/control/control.h"
#include "core/crypto/crypto.h"
#include "tests/support/fleet.h"
#include "tools/replay/recording.h"

namespace hmq::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string replay_binary() {
  return std::string(HMQ_BINARY_DIR) + "/tools/replay/hmq-replay";
}

json control(const fs::path& socket, const json& req) {
  auto r = core::control::call(socket, req, 10s);
  return r ? *r : json{{"ok", false}, {"error", r.err().message()}};
}

json live_agreements(const fs::path& socket) {
  json r = control(socket, {{"op", "agreement_list"}});
  json live = json::array();
  if (!r.value("ok", false)) return live;
  for (const auto& a : r["agreements"])
    if (a.value("state", "") != "cancelled") live.push_back(a);
  return live;
}

void copy_key_pair(const fs::path& from_dir, const std::string& name, const fs::path& to_dir) {
  fs::create_directories(to_dir);
  fs::copy_file(from_dir / name, to_dir / name, fs::copy_options::overwrite_existing);
  fs::permissions(to_dir / name, fs::perms::owner_read | fs::perms::owner_write,
                  fs::perm_options::replace);
  if (fs::exists(from_dir / (name + ".pub")))
    fs::copy_file(from_dir / (name + ".pub"), to_dir / (name + ".pub"),
                  fs::copy_options::overwrite_existing);
}

TEST(replay_agreement, resealed_recording_reproduces_the_agreement_in_a_fresh_agent) {
  fleet_options fo;
  fo.agents = 1;
  fo.agent_runtime = "memory";
  fleet f(fo);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  // The agbot said hello (its key is in the exchange) before the exchange's store is copied.
  ASSERT_TRUE(wait_for_log(f.agbot_log(), "initial node search done", 1, 30s)) << f.logs();

  // Environment 2 starts from the exchange as it is now (before the agreement): same key, same
  // org, pattern, agbot and node records. Copied while the exchange is stopped.
  temp_dir env2("replay-env2");
  f.exchange().stop();
  fs::copy(f.dir() / "exchange", env2 / "exchange", fs::copy_options::recursive);
  fs::remove(env2 / "exchange" / "exchange.log");  // its "ready" lines would fool the new start
  f.exchange().start();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());

  // ---- record the agreement formation in environment 1
  const fs::path file = env2 / "formation.hmqrec";
  auto recorder = process::start({{replay_binary(), "-v", "record", "-t", "hmq/v1/#", "-o",
                                   file.string(), "--broker", f.broker().uri()},
                                  {},
                                  env2 / "record.log"});
  ASSERT_TRUE(wait_for_log(env2 / "record.log", "hmq-replay: recording", 1, 20s))
      << read_file(env2 / "record.log");
  auto reg = f.register_node(0);
  ASSERT_EQ(reg.exit, 0) << reg.out << reg.err;
  const std::string id = f.wait_finalized_everywhere(0);
  ASSERT_FALSE(id.empty()) << f.logs();
  const json original = f.agent_agreements(0);
  recorder.kill(SIGTERM);
  auto st = recorder.wait_for(20s);
  ASSERT_TRUE(st);
  ASSERT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0)
      << describe_wait_status(*st) << read_file(env2 / "record.log");

  auto recorded = tools::replay::read_all(file);
  ASSERT_FALSE(recorded.error) << recorded.error->message();
  EXPECT_GE(recorded.records.size(), 4u);  // at least proposal, reply, ack and exchange traffic

  // Keys of the parties, as their data dirs hold them.
  const fs::path keys = env2 / "keys";
  copy_key_pair(f.dir() / "agent0", "agent.key", keys / "agent0");
  copy_key_pair(f.dir() / "agbot", "agbot.key", keys / "agbot");

  // inspect decrypts the proposal with those keys.
  auto ins = run_command(
      {replay_binary(), "inspect", file.string(), "--keys", keys.string(), "-o", "json"}, {},
      env2.path());
  ASSERT_EQ(ins.exit, 0) << ins.err;
  json doc = json::parse(ins.out);
  bool saw_proposal = false;
  for (const auto& m : doc["messages"]) {
    if (m.value("body_type", "") == "Proposal") {
      saw_proposal = true;
      EXPECT_EQ(m["message"]["body"].value("agreement_id", ""), id);
    }
  }
  EXPECT_TRUE(saw_proposal) << ins.out.substr(0, 4000);

  // ---- environment 2: fresh broker, the copied exchange, a fresh agent with agent0's key files
  // and no other state. No agbot runs: its messages come from the recording.
  mosquitto_broker broker2;
  exchange_process exchange2(env2 / "exchange", broker2.uri());
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ASSERT_EQ(exchange2.key(), f.exchange_key());
  const fs::path agent_dir = env2 / "agent";
  copy_key_pair(f.dir() / "agent0", "agent.key", agent_dir);
  const fs::path sock = agent_dir / "agent.sock";
  auto agent = process::start(
      {{agent_binary(), "--broker", broker2.uri(), "--exchange-key", exchange2.key(), "--data-dir",
        agent_dir.string(), "--runtime", "memory", "--log-level", "debug"},
       {},
       env2 / "agent.log"});
  ASSERT_TRUE(eventually([&] {
    return control(sock, {{"op", "node_status"}}).value("broker_connected", false);
  })) << read_file(env2 / "agent.log");
  const std::map<std::string, std::string> env{{"HMQ_EXCHANGE", broker2.uri()},
                                               {"HMQ_EXCHANGE_KEY", exchange2.key()},
                                               {"HOME", f.dir().string()}};
  auto r = run_command({hmq_binary(), "key", "import", "-k", f.signing_public_key().string(),
                        "--name", "publisher", "--agent-socket", sock.string()},
                       env, env2.path());
  ASSERT_EQ(r.exit, 0) << r.out << r.err;
  r = run_command(
      {hmq_binary(), "register", "--node", f.qualified_node(0), "--token", "tok0", "--pattern",
       fo.org + "/" + fo.pattern, "--arch", "amd64", "--agent-socket", sock.string()},
      env, env2.path());
  ASSERT_EQ(r.exit, 0) << r.out << r.err << read_file(env2 / "agent.log");

  // Only what was sent to the agent's mailbox, re-sealed, at a quarter of the original speed
  // (the fresh agent must have replied before the agbot's ReplyAck arrives).
  core::crypto::public_key agent_pk{};
  {
    auto pk = core::crypto::read_public_key_file(agent_dir / "agent.key.pub");
    ASSERT_TRUE(pk);
    std::copy(pk->begin(), pk->end(), agent_pk.begin());
  }
  const std::string mailbox_topic = "hmq/v1/mb/" + core::crypto::mailbox_id(agent_pk);
  auto play = run_command(
      {replay_binary(), "play", file.string(), "--broker", broker2.uri(), "--filter", mailbox_topic,
       "--reseal", "--keys", keys.string(), "--speed", "0.25", "-o", "json"},
      {}, env2.path(), 120s);
  ASSERT_EQ(play.exit, 0) << play.out << play.err;
  json summary = json::parse(play.out);
  EXPECT_GE(summary.value("resealed", 0), 2);
  EXPECT_EQ(summary.value("unchanged", -1), 0);
  EXPECT_EQ(summary.value("failed", -1), 0);

  json got;
  ASSERT_TRUE(eventually([&] {
    got = live_agreements(sock);
    return got.size() == 1 && got[0].value("state", "") == "finalized";
  })) << got.dump()
      << "\n"
      << read_file(env2 / "agent.log");
  ASSERT_EQ(original.size(), 1u);
  EXPECT_EQ(got[0]["id"], id);
  EXPECT_EQ(got[0]["pattern"], original[0]["pattern"]);
  EXPECT_EQ(got[0]["service"], original[0]["service"]);
  EXPECT_EQ(got[0]["agbot"], original[0]["agbot"]);
}

TEST(replay_agreement, originals_played_without_reseal_are_rejected_by_an_agent_that_saw_them) {
  // Why --reseal exists: the same agent drops recorded bytes as duplicates.
  fleet_options fo;
  fo.agents = 1;
  fo.agent_runtime = "memory";
  fo.log_level = "debug";  // the codec's rejections are logged at debug
  fleet f(fo);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  temp_dir scratch("replay-dup");
  const fs::path file = scratch / "formation.hmqrec";
  auto recorder = process::start({{replay_binary(), "-v", "record", "-t", "hmq/v1/mb/#", "-o",
                                   file.string(), "--broker", f.broker().uri()},
                                  {},
                                  scratch / "record.log"});
  ASSERT_TRUE(wait_for_log(scratch / "record.log", "hmq-replay: recording", 1, 20s));
  ASSERT_EQ(f.register_node(0).exit, 0);
  const std::string id = f.wait_finalized_everywhere(0);
  ASSERT_FALSE(id.empty()) << f.logs();
  recorder.kill(SIGINT);
  ASSERT_TRUE(recorder.wait_for(20s));

  const std::string before = read_file(f.agent_log(0));
  auto play = run_command(
      {replay_binary(), "play", file.string(), "--broker", f.broker().uri(), "--speed", "0"}, {},
      scratch.path());
  ASSERT_EQ(play.exit, 0) << play.err;
  // Still exactly the one agreement: nothing replayed was taken as new.
  ASSERT_TRUE(wait_for_log(f.agent_log(0), ": duplicate", 1, 20s))
      << read_file(f.agent_log(0)).substr(before.size());
  EXPECT_EQ(f.wait_agent_finalized(0), id);
}

}  // namespace
}  // namespace hmq::test
