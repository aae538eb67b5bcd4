// hmq-agent as a process against a real mosquitto and a real hmq-exchange process: registration
// through the control socket, and an agreement with a scripted agbot (an in-test identity that
// the exchange knows as agbot acme/bot1) recorded in the exchange.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/bus/client.h"
#include "core/bus/messenger.h"
#include "core/control/control.h"
#include "core/crypto/crypto.h"
#include "core/wire/codec.h"
#include "core/wire/service_signature.h"
#include "exchange_client/client.h"
#include "tests/support/fleet.h"
#include "tests/support/loop_thread.h"
#include "tests/support/mosquitto.h"
#include "tests/support/process.h"
#include "tests/support/proposals.h"
#include "tests/support/temp_dir.h"

namespace hmq::agent {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fb = ::hmq::wire::fb;
namespace crypto = core::crypto;

// Process helpers are shared with the e2e suite (tests/support/fleet.h).
const std::string hmq_bin = test::hmq_binary();
const std::string agent_bin = test::agent_binary();
const std::string agbot_bin = test::agbot_binary();
const std::string root_password = "root-secret";
using test::eventually;
std::string slurp(const std::filesystem::path& p) {
  return test::read_file(p);
}

class agent_process : public ::testing::Test {
 protected:
  void SetUp() override {
    exchange_.emplace(dir_ / "exchange", broker_.uri(), "", root_password);
    if (HasFatalFailure()) return;
    exchange_key_ = exchange_->key();

    ASSERT_EQ(hmq({"exchange", "-u", "root/root:" + root_password, "org", "create", "acme"}), 0)
        << slurp(dir_ / "hmq.log");
    ASSERT_EQ(hmq({"exchange", "-u", "root/root:" + root_password, "--org", "acme", "user",
                   "create", "admin", "admin-pw", "-A"}),
              0)
        << slurp(dir_ / "hmq.log");
    ASSERT_EQ(admin({"node", "create", "node1:tok1", "--arch", "amd64"}), 0)
        << slurp(dir_ / "hmq.log");
    ASSERT_EQ(hmq({"key", "create"}), 0) << slurp(dir_ / "hmq.log");
    std::ofstream(dir_ / "service.json")
        << R"({"org": "acme", "label": "gps", "description": "", "public": false,
      "url": "https://acme.com/gps", "version": "1.0.0", "arch": "amd64", "sharable": "multiple",
      "requiredServices": [], "userInput": [],
      "deployment": {"services": {"gps": {"image": "127.0.0.1:1/gps@sha256:)" +
               std::string(64, 'a') + R"("}}}})";
    ASSERT_EQ(admin({"service", "publish", "-f", (dir_ / "service.json").string()}), 0)
        << slurp(dir_ / "hmq.log");
    std::ofstream(dir_ / "pattern.json")
        << R"({"org": "acme", "name": "gps", "label": "", "description": "",
      "public": false, "services": [{"serviceUrl": "https://acme.com/gps", "serviceOrgid": "acme",
      "serviceArch": "amd64", "agreementLess": false,
      "serviceVersions": [{"version": "1.0.0", "priority": {"priority_value": 1, "retries": 1,
        "retry_durations": 60, "verified_durations": 30}}],
      "nodeHealth": {"missing_heartbeat_interval": 600, "check_agreement_status": 120}}], "userInput": []})";
    ASSERT_EQ(admin({"pattern", "publish", "-f", (dir_ / "pattern.json").string()}), 0)
        << slurp(dir_ / "hmq.log");
    ASSERT_EQ(admin({"agbot", "create", "bot1:bottok"}), 0) << slurp(dir_ / "hmq.log");
    ASSERT_EQ(admin({"agbot", "addpattern", "bot1", "acme", "gps"}), 0) << slurp(dir_ / "hmq.log");

    agent_.emplace(test::process::start(
        {{agent_bin, "--broker", broker_.uri(), "--exchange-key", exchange_key_, "--data-dir",
          (dir_ / "agent").string(), "--finalize-timeout", "60", "--runtime", "memory"},
         {},
         dir_ / "agent.log"}));
    ASSERT_TRUE(eventually([&] {
      return control({{"op", "node_status"}}).value("broker_connected", false);
    })) << slurp(dir_ / "agent.log");
  }

  int run_logged(std::vector<std::string> argv) {
    auto p = test::process::start({std::move(argv),
                                   {{"HMQ_EXCHANGE", broker_.uri()},
                                    {"HMQ_EXCHANGE_KEY", exchange_key_},
                                    {"HOME", dir_.path().string()}},
                                   dir_ / "hmq.log"});
    auto st = p.wait_for(60s);
    if (!st || !WIFEXITED(*st)) return -1;
    return WEXITSTATUS(*st);
  }
  int hmq(std::vector<std::string> args) {
    args.insert(args.begin(), hmq_bin);
    return run_logged(std::move(args));
  }
  int admin(std::vector<std::string> args) {
    args.insert(args.begin(), {"exchange", "-u", "acme/admin:admin-pw"});
    return hmq(std::move(args));
  }
  json control(const json& req) {
    auto r = core::control::call(dir_ / "agent" / "agent.sock", req, 30s);
    return r ? *r : json{{"ok", false}, {"error", r.err().message()}};
  }

  test::temp_dir dir_{"hmq-agent-proc"};
  test::mosquitto_broker broker_;
  std::optional<test::exchange_process> exchange_;
  std::optional<test::process> agent_;
  std::string exchange_key_;
};

TEST_F(agent_process,
       register_through_control_socket_records_key_in_exchange_and_unregister_clears_it) {
  json r = control({{"op", "register"},
                    {"node", "acme/node1"},
                    {"token", "tok1"},
                    {"pattern", "acme/gps"},
                    {"arch", "amd64"}});
  ASSERT_EQ(r["ok"], true) << r.dump() << slurp(dir_ / "agent.log");
  json st = control({{"op", "node_status"}});
  EXPECT_EQ(st["confirmed"], true);
  EXPECT_EQ(st["pattern"], "acme/gps");

  // The exchange holds the agent's key and mailbox now (as returned by hmq).
  auto out = dir_ / "hmq.log";
  std::filesystem::remove(out);
  ASSERT_EQ(admin({"node", "get", "node1", "-o", "json"}), 0);
  std::string text = slurp(out);
  EXPECT_NE(text.find(st["mailbox"].get<std::string>()), std::string::npos) << text;

  r = control({{"op", "unregister"}});
  ASSERT_EQ(r["ok"], true) << r.dump();
  EXPECT_EQ(control({{"op", "node_status"}})["registered"], false);
}

TEST_F(agent_process, wrong_token_is_refused_and_keeps_no_registration) {
  json r = control({{"op", "register"},
                    {"node", "acme/node1"},
                    {"token", "wrong"},
                    {"pattern", "acme/gps"},
                    {"arch", "amd64"}});
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(control({{"op", "node_status"}})["registered"], false);
}

// A scripted agbot (the exchange knows it as acme/bot1, so its proposals reach the engine) first
// tries what a malicious serving agbot would (issue 16): a relabelled service, a downgrade to a
// version the publisher did sign but the pattern does not list, undeclared and mistyped inputs,
// an old deployment-only signature. Each is refused with its reason code; then its honest
// proposal is accepted, finalized and recorded in the exchange.
TEST_F(agent_process, scripted_agbot_forged_proposals_are_refused_and_its_honest_one_recorded) {
  auto publisher = crypto::sign_keypair::generate();
  ASSERT_EQ(
      control(
          {{"op", "key_import"}, {"key", crypto::to_base64(publisher.pk)}, {"name", "pub"}})["ok"],
      true);
  json r = control({{"op", "register"},
                    {"node", "acme/node1"},
                    {"token", "tok1"},
                    {"pattern", "acme/gps"},
                    {"arch", "amd64"}});
  ASSERT_EQ(r["ok"], true) << r.dump();
  auto node_key =
      crypto::parse_public_key(control({{"op", "node_status"}})["public_key"].get<std::string>());
  ASSERT_TRUE(node_key.ok());

  // The agbot: its own identity on the bus, known to the exchange through AgbotHello.
  test::loop_thread lt;
  auto keys = crypto::box_keypair::generate();
  auto xkey = crypto::parse_public_key(exchange_key_).value();
  std::unique_ptr<core::bus::client> bus;
  std::unique_ptr<core::wire::codec> codec;
  std::unique_ptr<core::bus::messenger> m;
  std::unique_ptr<exchange_client::client> xc;
  test::waiter w;
  std::optional<fb::ReplyDecision> decision;
  std::map<std::string, std::pair<fb::ReplyDecision, fb::CancelReason>> forged_replies;
  const std::string id = "aaaabbbbccccddddeeeeffff00001111";
  auto creds = exchange_client::credentials::agbot("acme", "bot1", "bottok");
  auto hello = std::make_shared<std::promise<bool>>();
  lt.call([&] {
    core::bus::options o;
    o.broker_uri = broker_.uri();
    o.client_id = "agbot-test";
    bus = std::make_unique<core::bus::client>(lt.loop(), o);
    codec = std::make_unique<core::wire::codec>(keys, lt.loop().time());
    m = std::make_unique<core::bus::messenger>(lt.loop(), *bus, *codec);
    m->listen_uplink();  // where the agent answers an agbot
    xc = std::make_unique<exchange_client::client>(lt.loop(), *m, xkey);
    m->on(fb::Body::Reply, [&](const core::wire::opened& msg) {
      const auto* rep = msg.message()->body_as_Reply();
      if (rep->agreement_id()->str() != id)
        return w.update([&] {
          forged_replies[rep->agreement_id()->str()] = {rep->decision(), rep->reason()};
        });
      w.update([&] { decision = rep->decision(); });
      fb::ReplyAckT ack;
      ack.agreement_id = id;
      ack.still_valid = true;
      fb::MessageT out;
      out.body.Set(std::move(ack));
      m->send(msg.sender, core::wire::build_message(std::move(out), lt.loop().time()));
    });
    m->start();
    bus->start([&, hello](core::result<void> c) {
      if (!c) return hello->set_value(false);
      xc->agbot_hello(creds, [hello](core::result<void> h) { hello->set_value(h.ok()); });
    });
  });
  auto hf = hello->get_future();
  ASSERT_EQ(hf.wait_for(30s), std::future_status::ready);
  ASSERT_TRUE(hf.get());

  // The proposal for agreement `aid`; `forge` changes it after the publisher signed.
  auto propose = [&](const std::string& aid,
                     const std::function<void(fb::ProposedServiceT&)>& forge) {
    lt.call([&] {
      auto ps = test::signed_gps("acme", publisher, test::gps_deployment(), [](fb::ServiceT& s) {
        test::declare_input(s, "PORT", "int", "80");
      });
      if (forge) forge(*ps);
      auto p = test::gps_proposal(aid, "acme", "acme/bot1", std::move(ps));
      fb::MessageT msg;
      msg.body.Set(std::move(p));
      m->send(*node_key, core::wire::build_message(std::move(msg), lt.loop().time()));
    });
  };
  const auto input = test::give_input;
  const std::map<std::string, fb::CancelReason> forged{
      {"f0000000000000000000000000000001", fb::CancelReason::image_sig_verif_failure},
      {"f0000000000000000000000000000002", fb::CancelReason::policy_changed},
      {"f0000000000000000000000000000003", fb::CancelReason::node_userinput_changed},
      {"f0000000000000000000000000000004", fb::CancelReason::node_userinput_changed},
      {"f0000000000000000000000000000005", fb::CancelReason::image_sig_verif_failure}};
  propose("f0000000000000000000000000000001",
          [](fb::ProposedServiceT& ps) { ps.service->version = "1.0.1"; });  // relabelled
  propose("f0000000000000000000000000000002", [&](fb::ProposedServiceT& ps) {
    ps.service->version = "0.9.0";  // a real signature, not in the pattern
    core::wire::sign_service(*ps.service, publisher);
  });
  propose("f0000000000000000000000000000003",
          [&](fb::ProposedServiceT& ps) { input(ps, "LD_PRELOAD", "/tmp/evil.so"); });
  propose("f0000000000000000000000000000004",
          [&](fb::ProposedServiceT& ps) { input(ps, "PORT", "80 -v /:/host"); });
  propose("f0000000000000000000000000000005",
          [](fb::ProposedServiceT& ps) { ps.service->service_signature.clear(); });
  ASSERT_TRUE(w.wait([&] { return forged_replies.size() == forged.size(); }))
      << slurp(dir_ / "agent.log");
  w.read([&] {
    for (const auto& [fid, reason] : forged) {
      EXPECT_EQ(forged_replies.at(fid).first, fb::ReplyDecision::reject) << fid;
      EXPECT_EQ(forged_replies.at(fid).second, reason) << fid;
    }
    return 0;
  });
  EXPECT_EQ(control({{"op", "node_status"}})["counters"].value("rejected", 0), 5)
      << control({{"op", "node_status"}}).dump();

  propose(id, [&](fb::ProposedServiceT& ps) { input(ps, "PORT", "8080"); });
  ASSERT_TRUE(w.wait([&] { return decision.has_value(); })) << slurp(dir_ / "agent.log");
  EXPECT_EQ(*decision, fb::ReplyDecision::accept);

  // Finalized on the node and recorded in the exchange.
  ASSERT_TRUE(eventually([&] {
    json l = control({{"op", "agreement_list"}});
    return l["ok"] == true && l["agreements"].size() == 1 &&
           l["agreements"][0]["state"] == "finalized" &&
           l["agreements"][0]["exchange_synced"] == true;
  })) << slurp(dir_ / "agent.log");
  auto recs = std::make_shared<std::promise<core::result<std::vector<fb::AgreementRecordT>>>>();
  lt.call([&] {
    xc->list_agreements(creds, "acme", "node1", [recs](auto r) { recs->set_value(std::move(r)); });
  });
  auto rf = recs->get_future();
  ASSERT_EQ(rf.wait_for(30s), std::future_status::ready);
  auto list = rf.get();
  ASSERT_TRUE(list.ok()) << list.err().message();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].agreement_id, id);
  EXPECT_EQ((*list)[0].state, fb::AgreementState::finalized);

  lt.call([&] {
    m->stop();
    bus->stop();
    xc.reset();
    m.reset();
    codec.reset();
    bus.reset();
  });
}

TEST_F(agent_process, real_agbot_and_agent_finalize_and_unregister_cancels_with_105) {
  // The publisher key hmq signed the service with is trusted on the node.
  std::string pub = slurp(dir_ / ".hmq" / "keys" / "hmq-signing.public.key");
  while (!pub.empty() && (pub.back() == '\n' || pub.back() == '\r')) pub.pop_back();
  ASSERT_EQ(control({{"op", "key_import"}, {"key", pub}, {"name", "hmq"}})["ok"], true);
  json r = control({{"op", "register"},
                    {"node", "acme/node1"},
                    {"token", "tok1"},
                    {"pattern", "acme/gps"},
                    {"arch", "amd64"}});
  ASSERT_EQ(r["ok"], true) << r.dump();

  auto agbot = test::process::start(
      {{agbot_bin, "--broker", broker_.uri(), "--exchange-key", exchange_key_, "--org", "acme",
        "--id", "bot1", "--token", "bottok", "--data-dir", (dir_ / "agbot").string()},
       {},
       dir_ / "agbot.log"});
  ASSERT_TRUE(eventually([&] {
    json l = control({{"op", "agreement_list"}});
    return l["ok"] == true && l["agreements"].size() == 1 &&
           l["agreements"][0]["state"] == "finalized" &&
           l["agreements"][0]["exchange_synced"] == true;
  })) << "agent:\n"
      << slurp(dir_ / "agent.log") << "agbot:\n"
      << slurp(dir_ / "agbot.log");
  json l = control({{"op", "agreement_list"}});
  EXPECT_EQ(l["agreements"][0]["agbot"], "acme/bot1");
  EXPECT_EQ(l["agreements"][0]["service"]["url"], "https://acme.com/gps");

  ASSERT_EQ(control({{"op", "unregister"}})["ok"], true);
  l = control({{"op", "agreement_list"}});
  ASSERT_EQ(l["agreements"].size(), 1u);
  EXPECT_EQ(l["agreements"][0]["state"], "cancelled");
  EXPECT_EQ(l["agreements"][0]["reason"], 105);
  EXPECT_EQ(l["agreements"][0]["reason_text"], "user requested");
}

}  // namespace
}  // namespace hmq::agent
