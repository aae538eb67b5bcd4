// The CLI in-process, for everything that is decided before any connection is made: input
// files, flags, key files. No sockets: each case fails (or succeeds) before connecting.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "exchange_client/client.h"

namespace hmq::cli {
namespace {

struct outcome {
  int code;
  std::string out;
  std::string err;
};

outcome run_cli(std::vector<std::string> args) {
  args.insert(args.begin(), "hmq");
  std::ostringstream out, err;
  int code = run(args, out, err);
  return {code, out.str(), err.str()};
}

class cli_commands : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("hmq-cli-unit-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  std::filesystem::path dir_;
};

TEST_F(cli_commands, unknown_sharable_is_an_input_error_naming_the_field) {
  auto f = write("service.definition.json",
                 R"({"url":"u","version":"1","arch":"amd64","sharable":"shared","deployment":{}})");
  auto r = run_cli({"exchange", "--exchange-key", std::string(44, 'A'), "-u", "o/u:p", "service",
                    "publish", "-f", f});
  EXPECT_EQ(r.code, exit_usage);
  EXPECT_NE(r.err.find("service.definition.json: field 'sharable': must be one of exclusive, "
                       "singleton, multiple (got 'shared')"),
            std::string::npos)
      << r.err;
}

TEST_F(cli_commands, missing_file_is_an_input_error) {
  auto r = run_cli(
      {"exchange", "-u", "o/u:p", "pattern", "publish", "-f", (dir_ / "nope.json").string()});
  EXPECT_EQ(r.code, exit_usage);
  EXPECT_NE(r.err.find("nope.json"), std::string::npos) << r.err;
}

TEST_F(cli_commands, unknown_subcommand_and_missing_arguments_are_usage_errors) {
  EXPECT_EQ(run_cli({"exchange", "frobnicate"}).code, exit_usage);
  EXPECT_EQ(run_cli({"exchange", "node", "get"}).code, exit_usage);
  EXPECT_EQ(run_cli({}).code, exit_usage);
}

TEST_F(cli_commands, help_explains_connection_options) {
  auto r = run_cli({"exchange", "--help"});
  EXPECT_EQ(r.code, exit_ok);
  for (auto s : {"--exchange", "HMQ_EXCHANGE_KEY", "--user-auth", "--node-auth", "HMQ_ORG"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
  }
}

TEST_F(cli_commands, missing_exchange_key_is_explained_before_connecting) {
  auto r = run_cli({"exchange", "--exchange-key", "", "-u", "o/u:p", "org", "list"});
  EXPECT_EQ(r.code, exit_usage);
  EXPECT_NE(r.err.find("HMQ_EXCHANGE_KEY"), std::string::npos) << r.err;
}

TEST_F(cli_commands, key_create_refuses_to_overwrite) {
  auto d = (dir_ / "keys").string();
  auto r = run_cli({"key", "create", "-d", d});
  ASSERT_EQ(r.code, exit_ok) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "keys" / "hmq-signing.public.key"));
  EXPECT_EQ(run_cli({"key", "create", "-d", d}).code, exit_usage);
  EXPECT_EQ(run_cli({"key", "create", "-d", d, "-f"}).code, exit_ok);
}

TEST(cli_exchange_client_errc, refusals_mirror_rpc_status_and_other_failures_do_not) {
  using exchange_client::client_errc;
  EXPECT_EQ(exchange_client::from_status(wire::fb::RpcStatus::unauthorized),
            client_errc::unauthorized);
  EXPECT_EQ(exchange_client::from_status(wire::fb::RpcStatus::unavailable),
            client_errc::unavailable);
  EXPECT_EQ(exchange_client::from_status(wire::fb::RpcStatus::unspecified),
            client_errc::bad_response);
  EXPECT_TRUE(exchange_client::is_refusal(make_error_code(client_errc::forbidden)));
  EXPECT_FALSE(exchange_client::is_refusal(make_error_code(client_errc::timeout)));
  EXPECT_FALSE(exchange_client::is_refusal(make_error_code(client_errc::bad_response)));
}

}  // namespace
}  // namespace hmq::cli
