#include <gtest/gtest.h>

#include <optional>

#include "agent/control_api.h"
#include "core/loop/loop.h"

namespace hmq::agent {
namespace {

// Exchange fake that accepts everything on the next loop turn.
class ok_exchange final : public exchange_api {
 public:
  explicit ok_exchange(core::loop::scheduler& l) : loop_(l) {}
  void register_node(const node_registration& r, done_fn cb) override {
    last = r;
    post(std::move(cb));
  }
  void unregister_node(const node_identity&, done_fn cb) override { post(std::move(cb)); }
  void put_agreement(const node_identity&, const fb::AgreementRecordT&, done_fn cb) override {
    post(std::move(cb));
  }
  void delete_agreement(const node_identity&, const std::string&, done_fn cb) override {
    post(std::move(cb));
  }
  void get_agbot_key(const node_identity&, const std::string&, const std::string&,
                     std::function<void(result<crypto::public_key>)> cb) override {
    loop_.post([cb = std::move(cb)] {
      cb(core::error{make_error_code(errc::bad_request), "none"});
    });
  }
  void get_pattern(const node_identity&, const std::string&, const std::string&,
                   std::function<void(result<fb::PatternT>)> cb) override {
    loop_.post([cb = std::move(cb)] {
      cb(core::error{make_error_code(errc::bad_request), "none"});
    });
  }
  std::optional<node_registration> last;

 private:
  void post(done_fn cb) {
    loop_.post([cb = std::move(cb)] { cb(core::ok()); });
  }
  core::loop::scheduler& loop_;
};

class null_outbox final : public outbox {
 public:
  void send(const crypto::public_key&, fb::Body, const body_builder&, done_fn) override {}
};

class agent_control_api : public ::testing::Test {
 protected:
  agent_control_api()
      : store_(agent_store::open_memory().value()),
        x_(loop_),
        rt_(loop_, true),
        eng_(loop_, store_, x_, out_, rt_),
        api_(eng_, {"mbox", "pk", "", [] { return true; }, {}}) {}

  json call(json req) {
    std::optional<json> out;
    core::control::dispatch_line(
        req.dump(), [&](const json& r, core::control::reply_fn reply) { api_.handle(r, reply); },
        [&](json r) { out = std::move(r); });
    loop_.run_pending();
    return out.value_or(json());
  }

  core::loop::manual_scheduler loop_;
  agent_store store_;
  ok_exchange x_;
  null_outbox out_;
  memory_runtime rt_;
  engine eng_;
  control_api api_;
};

TEST_F(agent_control_api, register_persists_and_sends_user_input_to_the_exchange) {
  json r =
      call({{"op", "register"},
            {"node", "acme/node1"},
            {"token", "t"},
            {"pattern", "hub/gps"},
            {"arch", "arm64"},
            {"user_input",
             json::array({{{"serviceOrgid", "hub"},
                           {"serviceUrl", "https://acme.com/gps"},
                           {"inputs", json::array({{{"name", "PORT"}, {"value", 8080}},
                                                   {{"name", "DEBUG"}, {"value", true}}})}}})}});
  ASSERT_EQ(r["ok"], true) << r.dump();
  ASSERT_TRUE(x_.last);
  EXPECT_EQ(x_.last->node.org, "acme");
  EXPECT_EQ(x_.last->arch, "arm64");
  ASSERT_EQ(x_.last->user_inputs.size(), 1u);
  ASSERT_EQ(x_.last->user_inputs[0].inputs.size(), 2u);
  EXPECT_EQ(x_.last->user_inputs[0].inputs[0]->value, "8080");
  EXPECT_EQ(x_.last->user_inputs[0].inputs[1]->value, "true");
  json s = call({{"op", "node_status"}});
  EXPECT_EQ(s["registered"], true);
  EXPECT_EQ(s["node"], "acme/node1");
  EXPECT_EQ(s["confirmed"], true);
}

TEST_F(agent_control_api, register_refuses_bad_names_and_second_identity) {
  EXPECT_EQ(
      call(
          {{"op", "register"}, {"node", "nodeonly"}, {"token", "t"}, {"pattern", "hub/gps"}})["ok"],
      false);
  EXPECT_EQ(call({{"op", "register"}, {"node", "a/b"}, {"token", "t"}, {"pattern", "gps"}})["ok"],
            false);
  EXPECT_EQ(call({{"op", "register"}, {"node", "a/b"}, {"pattern", "hub/gps"}})["ok"], false);
  ASSERT_EQ(
      call({{"op", "register"}, {"node", "a/b"}, {"token", "t"}, {"pattern", "hub/gps"}})["ok"],
      true);
  json again = call({{"op", "register"}, {"node", "a/c"}, {"token", "t"}, {"pattern", "hub/gps"}});
  EXPECT_EQ(again["ok"], false);
  EXPECT_NE(again["error"].get<std::string>().find("unregister"), std::string::npos);
}

TEST_F(agent_control_api, register_defaults_arch_to_this_machine) {
  ASSERT_EQ(
      call({{"op", "register"}, {"node", "a/b"}, {"token", "t"}, {"pattern", "hub/gps"}})["ok"],
      true);
  EXPECT_EQ(x_.last->arch, host_arch());
}

TEST_F(agent_control_api, key_import_adds_to_trust_store_and_rejects_garbage) {
  auto k = crypto::sign_keypair::generate();
  json r = call({{"op", "key_import"}, {"key", crypto::to_base64(k.pk)}, {"name", "pub"}});
  ASSERT_EQ(r["ok"], true) << r.dump();
  EXPECT_TRUE(store_.is_trusted(k.pk).value());
  EXPECT_EQ(call({{"op", "key_import"}, {"key", "not a key"}})["ok"], false);
  EXPECT_EQ(call({{"op", "key_list"}})["keys"].size(), 1u);
}

TEST_F(agent_control_api, unknown_op_and_unregister_without_registration_are_errors) {
  EXPECT_EQ(call({{"op", "dance"}})["ok"], false);
  EXPECT_EQ(call({{"op", "unregister"}})["ok"], false);
}

TEST_F(agent_control_api, agreement_list_is_empty_array_at_first) {
  json r = call({{"op", "agreement_list"}});
  ASSERT_EQ(r["ok"], true);
  EXPECT_TRUE(r["agreements"].is_array());
  EXPECT_TRUE(r["agreements"].empty());
}

TEST(agent_user_input, parses_hzn_input_file_form) {
  auto r = parse_user_input(
      json::parse(R"j({"services":[{"org":"hub","url":"u","versionRange":"[1.0.0,2.0.0)",
      "variables":{"A":"x","B":[1,2],"C":1.5}}]})j"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].service_version_range, "[1.0.0,2.0.0)");
  ASSERT_EQ((*r)[0].inputs.size(), 3u);
  EXPECT_EQ((*r)[0].inputs[1]->value, "[1,2]");
}

TEST(agent_user_input, rejects_malformed_shapes) {
  for (const char* bad :
       {R"(5)", R"([1])", R"([{"inputs":[]}])", R"([{"serviceUrl":"u","inputs":[{"value":1}]}])",
        R"({"services":{}})", R"({"services":[{"url":"u","variables":[]}]})"}) {
    EXPECT_FALSE(parse_user_input(json::parse(bad)).ok()) << bad;
  }
  EXPECT_TRUE(parse_user_input(json()).ok());
}

}  // namespace
}  // namespace hmq::agent
