#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/agent_commands.h"
#include "core/control/control.h"
#include "core/loop/loop.h"

namespace hmq::cli {
namespace {

using json = nlohmann::json;

// The hmq agent commands against a scripted control server on a real unix socket.
class agent_cli : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hmq-agent-cli-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ / "agent.sock";
    srv_ = std::make_unique<core::control::server>(
        loop_.io(), path_, [this](const json& req, core::control::reply_fn reply) {
          last_ = req;
          std::string op = req["op"];
          if (op == "agreement_list")
            return reply(core::control::ok_response(
                {{"agreements",
                  json::array(
                      {{{"id", "0123456789abcdef0123456789abcdef"},
                        {"state", "cancelled"},
                        {"reason", 107},
                        {"reason_text", "agreement never received reply ack"},
                        {"service", {{"url", "https://acme.com/gps"}, {"version", "1.0.0"}}},
                        {"agbot", "hub/agbot1"},
                        {"accepted_ms", 1700000000000},
                        {"finalized_ms", 0},
                        {"cancelled_ms", 1700000060000}}})}}));
          if (op == "unregister")
            return reply(core::control::error_response("node is not registered"));
          reply(core::control::ok_response({{"key", "abc"}}));
        });
    ASSERT_TRUE(srv_->start().ok());
    thread_ = std::thread([this] { loop_.run(); });
  }
  void TearDown() override {
    loop_.post([this] { srv_->stop(); });
    loop_.stop();
    thread_.join();
    std::filesystem::remove_all(dir_);
  }
  int run(std::vector<std::string> args) {
    CLI::App app{"hmq"};
    add_agent_commands(app, out_, err_);
    args.push_back("--agent-socket");
    args.push_back(path_.string());
    std::vector<const char*> argv{"hmq"};
    for (auto& a : args) argv.push_back(a.c_str());
    try {
      app.parse(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
    } catch (const CLI::ParseError& e) {
      return e.get_exit_code();
    }
    return 0;
  }

  std::filesystem::path dir_, path_;
  core::loop::event_loop loop_;
  std::unique_ptr<core::control::server> srv_;
  std::thread thread_;
  json last_;
  std::ostringstream out_, err_;
};

TEST_F(agent_cli, agreement_list_prints_code_and_horizon_text) {
  ASSERT_EQ(run({"agreement", "list"}), 0) << err_.str();
  EXPECT_NE(out_.str().find("107 agreement never received reply ack"), std::string::npos)
      << out_.str();
  EXPECT_NE(out_.str().find("2023-11-14 22:13:20Z"), std::string::npos) << out_.str();
}

TEST_F(agent_cli, agreement_list_json_is_the_array) {
  ASSERT_EQ(run({"agreement", "list", "-o", "json"}), 0);
  json j = json::parse(out_.str());
  ASSERT_TRUE(j.is_array());
  EXPECT_EQ(j[0]["reason"], 107);
}

TEST_F(agent_cli, register_sends_names_token_and_input_file) {
  auto input = dir_ / "ui.json";
  std::ofstream(input)
      << R"([{"serviceOrgid":"hub","serviceUrl":"u","inputs":[{"name":"A","value":"b"}]}])";
  ASSERT_EQ(run({"register", "--node", "acme/n1", "--token", "t", "--pattern", "hub/gps", "--input",
                 input.string()}),
            0)
      << err_.str();
  EXPECT_EQ(last_["op"], "register");
  EXPECT_EQ(last_["node"], "acme/n1");
  EXPECT_EQ(last_["user_input"][0]["serviceUrl"], "u");
}

TEST_F(agent_cli, refusal_goes_to_stderr_with_nonzero_exit) {
  EXPECT_EQ(run({"unregister"}), 2);  // refused, as hmq's other commands
  EXPECT_NE(err_.str().find("node is not registered"), std::string::npos);
  EXPECT_TRUE(out_.str().empty());
}

TEST_F(agent_cli, key_import_sends_the_file_content) {
  auto f = dir_ / "publisher.pub";
  std::ofstream(f) << "AAAA\n";
  ASSERT_EQ(run({"key", "import", "-k", f.string()}), 0) << err_.str();
  EXPECT_EQ(last_["key"], "AAAA");
  EXPECT_EQ(last_["name"], "publisher.pub");
}

TEST_F(agent_cli, missing_agent_is_a_clear_error) {
  CLI::App app{"hmq"};
  add_agent_commands(app, out_, err_);
  std::vector<const char*> argv{"hmq", "node", "status", "--agent-socket",
                                "/nonexistent/agent.sock"};
  EXPECT_THROW(app.parse(static_cast<int>(argv.size()), const_cast<char**>(argv.data())),
               CLI::RuntimeError);
  EXPECT_NE(err_.str().find("is hmq-agent running"), std::string::npos);
}

TEST_F(agent_cli, deferred_mode_runs_after_parsing_and_returns_the_exit_code) {
  // How the hmq binary hooks the commands in: parsing only records the work.
  CLI::App app{"hmq"};
  std::function<int()> work;
  add_agent_commands(app, out_, err_, [&](std::function<int()> w) { work = std::move(w); });
  std::vector<const char*> ok{"hmq", "agreement", "list", "--agent-socket", path_.c_str()};
  app.parse(static_cast<int>(ok.size()), const_cast<char**>(ok.data()));
  EXPECT_TRUE(out_.str().empty());
  ASSERT_TRUE(work);
  EXPECT_EQ(work(), 0);
  EXPECT_NE(out_.str().find("107"), std::string::npos);

  CLI::App app2{"hmq"};
  add_agent_commands(app2, out_, err_, [&](std::function<int()> w) { work = std::move(w); });
  std::vector<const char*> bad{"hmq", "unregister", "--agent-socket", path_.c_str()};
  app2.parse(static_cast<int>(bad.size()), const_cast<char**>(bad.data()));
  EXPECT_EQ(work(), 2);
}

}  // namespace
}  // namespace hmq::cli
