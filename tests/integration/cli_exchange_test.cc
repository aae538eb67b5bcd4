// The real `hmq` binary against a real mosquitto and a real hmq-exchange process.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

// The broker/process fixtures come from the bus work; until they are on this branch the suite
// compiles to one skipped test instead of breaking the build.
#if __has_include("tests/support/mosquitto.h")
#define HMQ_HAVE_FIXTURES 1
#include "core/crypto/crypto.h"
#include "tests/support/mosquitto.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#endif

extern char** environ;

namespace hmq::cli {
namespace {

#ifndef HMQ_HAVE_FIXTURES
TEST(cli_exchange, needs_the_mosquitto_fixtures) {
  GTEST_SKIP() << "tests/support/mosquitto.h not available";
}
#else
using nlohmann::json;
const std::string hmq_bin = std::string(HMQ_BINARY_DIR) + "/cli/hmq";
const std::string exchange_bin = std::string(HMQ_BINARY_DIR) + "/exchange/hmq-exchange";
const std::string root_password = "root-secret";

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct run_result {
  int exit = -1;
  std::string out;
  std::string err;
};

// The whole stack for the suite: broker, exchange, and the environment hmq reads.
#define EXPECT_RUN_OK(r) EXPECT_EQ((r).exit, 0) << "stdout:\n" << (r).out << "stderr:\n" << (r).err

class cli_exchange : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::temp_dir("hmq-cli");
    broker_ = new test::mosquitto_broker();
    auto log = *dir_ / "exchange.log";
    exchange_ = new test::process(test::process::start(
        {{exchange_bin, "--broker", broker_->uri(), "--data-dir", (*dir_ / "exchange").string(),
          "--root-password", root_password, "--hash-strength", "minimum"},
         {},
         log}));
    // The exchange announces readiness on stderr; there is no other event to wait on from here,
    // so read its log until the line appears (bounded).
    std::regex ready("hmq-exchange ready: key=([A-Za-z0-9+/=]+) mailbox=([a-z0-9]+)");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::smatch m;
    std::string text;
    while (std::chrono::steady_clock::now() < deadline) {
      text = slurp(log);
      if (std::regex_search(text, m, ready)) break;
      if (!exchange_->is_running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(std::regex_search(text, m, ready)) << "hmq-exchange did not get ready:\n" << text;
    key_ = m[1];
  }
  static void TearDownTestSuite() {
    delete exchange_;
    delete broker_;
    delete dir_;
  }

  // Run hmq with args; env adds to the connection environment (HMQ_EXCHANGE, HMQ_EXCHANGE_KEY).
  run_result hmq(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    std::map<std::string, std::string> e;
    for (char** p = environ; *p; ++p) {
      std::string kv(*p);
      auto eq = kv.find('=');
      if (eq != std::string::npos && kv.rfind("HMQ_", 0) != 0)
        e[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    e["HMQ_EXCHANGE"] = broker_->uri();
    e["HMQ_EXCHANGE_KEY"] = key_;
    e["HOME"] = dir_->path().string();
    for (auto& [k, v] : env) e[k] = v;
    std::vector<std::string> env_strings;
    for (auto& [k, v] : e) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    args.insert(args.begin(), hmq_bin);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    auto out_path = *dir_ / "out.txt", err_path = *dir_ / "err.txt";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    run_result r;
    int rc = posix_spawn(&pid, hmq_bin.c_str(), &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      r.err = "spawn failed: " + std::string(strerror(rc));
      return r;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    r.exit = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(out_path);
    r.err = slurp(err_path);
    return r;
  }

  // As root, then as an admin of `org` (created on first use).
  run_result root(std::vector<std::string> args) {
    args.insert(args.begin(), {"exchange", "-u", "root/root:" + root_password});
    return hmq(std::move(args));
  }
  void ensure_org(const std::string& org) {
    auto r = root({"org", "create", org});
    ASSERT_TRUE(r.exit == 0 || r.err.find("already exists") != std::string::npos) << r.err;
    r = root({"--org", org, "user", "create", "admin", "admin-pw", "-A"});
    ASSERT_TRUE(r.exit == 0 || r.err.find("already exists") != std::string::npos) << r.err;
  }
  run_result admin(const std::string& org, std::vector<std::string> args) {
    args.insert(args.begin(), {"exchange", "-u", org + "/admin:admin-pw"});
    return hmq(std::move(args));
  }

  // Publishes a digest-pinned service and a pattern using it in `org` (the exchange refuses
  // patterns whose services do not exist, and agbot patterns that do not exist).
  void publish_pattern(const std::string& org, const std::string& pattern) {
    ensure_key();
    const std::string digest = "sha256:" + std::string(64, 'b');
    auto svc =
        write_file(org + ".svc.json", R"({"org": ")" + org + R"(", "url": "https://example.com/p",
      "version": "1.0.0", "arch": "amd64", "sharable": "multiple",
      "deployment": {"services": {"p": {"image": "127.0.0.1:1/p@)" +
                                          digest + R"("}}}})");
    EXPECT_RUN_OK(admin(org, {"service", "publish", "-f", svc}));
    auto pat = write_file(
        org + ".pattern.json",
        R"({"org": ")" + org + R"(", "name": ")" + pattern +
            R"(", "services": [{"serviceUrl": "https://example.com/p", "serviceOrgid": ")" + org +
            R"(", "serviceArch": "amd64", "serviceVersions": [{"version": "1.0.0"}]}]})");
    EXPECT_RUN_OK(admin(org, {"pattern", "publish", "-f", pat}));
  }

  std::string write_file(const std::string& name, const std::string& text) {
    auto p = *dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::string example(const std::string& name) {
    return std::string(HMQ_SOURCE_DIR) + "/examples/horizon/" + name;
  }
  // A signing key under $HOME/.hmq/keys (HOME is the suite's temp dir).
  void ensure_key() {
    auto r = hmq({"key", "create"});
    ASSERT_TRUE(r.exit == 0 || r.err.find("exists") != std::string::npos) << r.err;
  }

  static inline test::temp_dir* dir_ = nullptr;
  static inline test::mosquitto_broker* broker_ = nullptr;
  static inline test::process* exchange_ = nullptr;
  static inline std::string key_;
};

TEST_F(cli_exchange, status_answers) {
  auto r = hmq({"exchange", "status"});
  EXPECT_RUN_OK(r);
  EXPECT_NE(r.out.find("exchange answered"), std::string::npos);
}

TEST_F(cli_exchange, full_crud_of_orgs_users_nodes_and_agbots) {
  // Every resource kind can be created, listed, read and removed through the CLI.
  ensure_org("crud");
  auto r = root({"org", "list", "-o", "json"});
  EXPECT_RUN_OK(r);
  EXPECT_NE(r.out.find("\"crud\""), std::string::npos) << r.out;

  EXPECT_RUN_OK(admin("crud", {"user", "create", "alice", "alice-pw", "alice@example.com"}));
  r = admin("crud", {"user", "list", "-o", "json"});
  EXPECT_RUN_OK(r);
  auto users = json::parse(r.out);
  ASSERT_TRUE(users.is_array());
  EXPECT_EQ(users.size(), 2u);

  EXPECT_RUN_OK(admin("crud", {"node", "create", "n1:tok1", "--arch", "amd64"}));
  r = admin("crud", {"node", "get", "n1", "-o", "json"});
  EXPECT_RUN_OK(r);
  EXPECT_EQ(json::parse(r.out)["arch"], "amd64");
  EXPECT_EQ(json::parse(r.out)["id"], "n1");
  r = admin("crud", {"node", "list"});
  EXPECT_RUN_OK(r);
  EXPECT_NE(r.out.find("crud/n1"), std::string::npos) << r.out;

  EXPECT_RUN_OK(admin("crud", {"agbot", "create", "bot1:bottok"}));
  publish_pattern("crud", "p1");
  EXPECT_RUN_OK(admin("crud", {"agbot", "addpattern", "bot1", "crud", "p1"}));
  r = admin("crud", {"agbot", "get", "bot1", "-o", "json"});
  EXPECT_RUN_OK(r);
  ASSERT_EQ(json::parse(r.out)["patterns"].size(), 1u);
  EXPECT_RUN_OK(admin("crud", {"agbot", "removepattern", "bot1", "crud", "p1"}));
  r = admin("crud", {"agbot", "get", "bot1", "-o", "json"});
  EXPECT_EQ(json::parse(r.out)["patterns"].size(), 0u);

  // The node org's consent for an agbot of another org (docs/security.md "Org boundaries").
  r = admin("crud", {"org", "allow-agbot", "crud/bot1"});
  EXPECT_EQ(r.exit, 2) << r.out << r.err;  // its own agbots need no consent
  EXPECT_NE(r.err.find("agbot of this org"), std::string::npos) << r.err;
  EXPECT_RUN_OK(admin("crud", {"org", "allow-agbot", "ops/ag"}));
  r = admin("crud", {"org", "allow-agbot", "ops/ag"});
  EXPECT_RUN_OK(r);
  EXPECT_NE(r.out.find("already lets ops/ag"), std::string::npos) << r.out;
  r = admin("crud", {"org", "get", "crud", "-o", "json"});
  EXPECT_RUN_OK(r);
  EXPECT_EQ(json::parse(r.out)["agbots"], json::array({"ops/ag"})) << r.out;
  EXPECT_RUN_OK(admin("crud", {"org", "disallow-agbot", "ops/ag"}));
  r = admin("crud", {"org", "get", "crud", "-o", "json"});
  EXPECT_EQ(json::parse(r.out)["agbots"], json::array()) << r.out;

  EXPECT_RUN_OK(admin("crud", {"node", "remove", "n1"}));
  r = admin("crud", {"node", "get", "n1"});
  EXPECT_EQ(r.exit, 2) << r.err;
  EXPECT_NE(r.err.find("not found"), std::string::npos) << r.err;
  EXPECT_RUN_OK(admin("crud", {"agbot", "remove", "bot1"}));
  EXPECT_RUN_OK(admin("crud", {"user", "remove", "alice"}));
  r = admin("crud", {"user", "list", "-o", "json"});
  EXPECT_EQ(json::parse(r.out).size(), 1u);
}

TEST_F(cli_exchange, service_with_required_services_and_user_input_reads_back_equal) {
  ensure_org("myorg");
  ensure_key();
  auto file = example("cpu2evtstreams.service.definition.json");
  auto r = admin("myorg", {"service", "publish", "-f", file});
  EXPECT_RUN_OK(r);
  r = admin("myorg",
            {"service", "get", "example.com-services-cpu2evtstreams_1.4.3_amd64", "-o", "json"});
  EXPECT_RUN_OK(r);
  json expected = json::parse(slurp(file));
  expected["deployment"] = json::parse(expected["deployment"].get<std::string>());
  EXPECT_EQ(json::parse(r.out), expected);
  // The table view shows the verified signature.
  r = admin("myorg", {"service", "get", "example.com-services-cpu2evtstreams_1.4.3_amd64"});
  EXPECT_RUN_OK(r);
  EXPECT_NE(r.out.find("signature:"), std::string::npos);
  EXPECT_NE(r.out.find("valid ("), std::string::npos) << r.out;
  // Signed whole (identity, inputs, deployment): `service verify` checks it as an agent would,
  // and refuses (exit 2) when it must be another publisher's key.
  const std::string id = "example.com-services-cpu2evtstreams_1.4.3_amd64";
  r = admin("myorg", {"service", "verify", id, "-o", "json"});
  EXPECT_RUN_OK(r);
  auto v = json::parse(r.out, nullptr, false);
  EXPECT_EQ(v.value("valid", false), true) << r.out;
  EXPECT_FALSE(v.value("publisherKey", "").empty()) << r.out;
  r = admin("myorg", {"service", "verify", id, "-K",
                      dir_->path().string() + "/.hmq/keys/hmq-signing.public.key"});
  EXPECT_RUN_OK(r);
  EXPECT_NE(r.out.find("signature valid"), std::string::npos) << r.out;
  auto other = core::crypto::sign_keypair::generate();
  auto other_file = write_file("other.pub", core::crypto::to_base64(other.pk) + "\n");
  r = admin("myorg", {"service", "verify", id, "-K", other_file});
  EXPECT_EQ(r.exit, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("signed by another key"), std::string::npos) << r.err;
  // Publishing again replaces it (hzn semantics).
  EXPECT_RUN_OK(admin("myorg", {"service", "publish", "-f", file}));
}

TEST_F(cli_exchange, service_and_pattern_with_variables_read_back_equal) {
  ensure_org("varorg");
  ensure_key();
  const std::string digest = "sha256:" + std::string(64, 'a');
  auto svc = write_file("var.service.json", R"({
    "org": "$ORG", "label": "svc ${ARCH}", "description": "", "public": true,
    "url": "https://example.com/var", "version": "$VERSION", "arch": "${ARCH}", "sharable": "exclusive",
    "requiredServices": [], "userInput": [],
    "deployment": {"services": {"var": {"image": "127.0.0.1:1/var@)" +
                                                digest + R"(", "environment": ["A=$ARCH"]}}}
  })");
  std::map<std::string, std::string> env = {
      {"ORG", "varorg"}, {"ARCH", "arm64"}, {"VERSION", "3.1.4"}, {"EVTSTREAMS_API_KEY", "key-42"}};
  auto pub = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"exchange", "-u", "varorg/admin:admin-pw"});
    return hmq(args, env);
  };
  EXPECT_RUN_OK(pub({"service", "publish", "-f", svc}));
  auto r = pub({"service", "get", "example.com-var_3.1.4_arm64", "-o", "json"});
  EXPECT_RUN_OK(r);
  auto got = json::parse(r.out);
  EXPECT_EQ(got["arch"], "arm64");
  EXPECT_EQ(got["label"], "svc arm64");
  EXPECT_EQ(got["deployment"]["services"]["var"]["environment"][0], "A=arm64");

  // The example pattern, moved to varorg and pointed at the service just published; its
  // user input keeps the $EVTSTREAMS_API_KEY reference that publish substitutes.
  auto pj = json::parse(slurp(example("pattern.json")));
  pj["org"] = "varorg";
  pj["services"][0]["serviceUrl"] = "https://example.com/var";
  pj["services"][0]["serviceOrgid"] = "varorg";
  pj["services"][0]["serviceArch"] = "arm64";
  pj["services"][0]["serviceVersions"].erase(1);
  pj["services"][0]["serviceVersions"][0]["version"] = "3.1.4";
  pj["userInput"][0]["serviceOrgid"] = "varorg";
  pj["userInput"][0]["serviceUrl"] = "https://example.com/var";
  auto p = write_file("pattern.json", pj.dump(2));
  EXPECT_RUN_OK(pub({"pattern", "publish", "-f", p}));
  r = pub({"pattern", "get", "pattern-cpu2evtstreams", "-o", "json"});
  EXPECT_RUN_OK(r);
  json expected = json::parse(slurp(p));
  expected["userInput"][0]["inputs"][0]["value"] = "key-42";
  EXPECT_EQ(json::parse(r.out), expected);
  r = pub({"pattern", "list"});
  EXPECT_RUN_OK(r);
  EXPECT_NE(r.out.find("varorg/pattern-cpu2evtstreams"), std::string::npos);
  EXPECT_RUN_OK(pub({"pattern", "remove", "pattern-cpu2evtstreams"}));
  EXPECT_RUN_OK(pub({"service", "remove", "example.com-var_3.1.4_arm64"}));
}

TEST_F(cli_exchange, wrong_password_is_refused_clearly) {
  ensure_org("authorg");
  auto r = hmq({"exchange", "-u", "authorg/admin:wrong", "node", "list"});
  EXPECT_EQ(r.exit, 2) << r.err;
  EXPECT_NE(r.err.find("unauthorized"), std::string::npos) << r.err;
}

TEST_F(cli_exchange, wrong_node_token_and_node_touching_another_node_are_refused) {
  ensure_org("nodeorg");
  EXPECT_RUN_OK(admin("nodeorg", {"node", "create", "a:tok-a"}));
  EXPECT_RUN_OK(admin("nodeorg", {"node", "create", "b:tok-b"}));
  auto r = hmq({"exchange", "-n", "nodeorg/a:tok-a", "node", "get", "a", "-o", "json"});
  EXPECT_RUN_OK(r);
  r = hmq({"exchange", "-n", "nodeorg/a:bad", "node", "get", "a"});
  EXPECT_EQ(r.exit, 2) << r.err;
  EXPECT_NE(r.err.find("unauthorized"), std::string::npos) << r.err;
  r = hmq({"exchange", "-n", "nodeorg/a:tok-a", "node", "get", "b"});
  EXPECT_EQ(r.exit, 2) << r.err;
  EXPECT_NE(r.err.find("exchange refused"), std::string::npos) << r.err;
  r = hmq({"exchange", "-n", "nodeorg/a:tok-a", "node", "remove", "b"});
  EXPECT_EQ(r.exit, 2) << r.err;
  EXPECT_RUN_OK(admin("nodeorg", {"node", "get", "b"}));  // nothing half-done
}

TEST_F(cli_exchange, user_touching_another_org_is_refused) {
  ensure_org("orga");
  ensure_org("orgb");
  auto r =
      hmq({"exchange", "-u", "orga/admin:admin-pw", "--org", "orgb", "node", "create", "x:tok"});
  EXPECT_EQ(r.exit, 2) << r.err;
  EXPECT_NE(r.err.find("exchange refused"), std::string::npos) << r.err;
  r = hmq({"exchange", "-u", "orga/admin:admin-pw", "user", "list", "--org", "orgb"});
  EXPECT_EQ(r.exit, 2) << r.err;
  r = admin("orgb", {"node", "list", "-o", "json"});
  EXPECT_RUN_OK(r);
  EXPECT_EQ(json::parse(r.out).size(), 0u);
}

TEST_F(cli_exchange, bad_files_are_refused_with_the_field_named) {
  ensure_key();
  auto malformed = write_file("malformed.json", "{\n  \"url\": \"x\",\n  \"version\" \"1\"\n}\n");
  auto r = admin("myorg", {"service", "publish", "-f", malformed});
  EXPECT_EQ(r.exit, 1);
  EXPECT_NE(r.err.find("malformed.json: malformed JSON at line 3"), std::string::npos) << r.err;

  auto svc = json::parse(slurp(example("cpu2evtstreams.service.definition.json")));
  svc["sharable"] = "shared";
  r = admin("myorg", {"service", "publish", "-f", write_file("sharable.json", svc.dump())});
  EXPECT_EQ(r.exit, 1);
  EXPECT_NE(r.err.find("sharable.json: field 'sharable': must be one of exclusive, singleton, "
                       "multiple (got 'shared')"),
            std::string::npos)
      << r.err;

  svc = json::parse(slurp(example("cpu2evtstreams.service.definition.json")));
  svc.erase("url");
  r = admin("myorg", {"service", "publish", "-f", write_file("nourl.json", svc.dump())});
  EXPECT_EQ(r.exit, 1);
  EXPECT_NE(r.err.find("missing required field 'url'"), std::string::npos) << r.err;

  auto pat = json::parse(slurp(example("pattern.json")));
  pat["services"][0].erase("serviceUrl");
  pat["userInput"][0]["inputs"][0]["value"] = "literal";  // only the missing field is wrong
  r = admin("myorg", {"pattern", "publish", "-f", write_file("nosvcurl.json", pat.dump())});
  EXPECT_EQ(r.exit, 1);
  EXPECT_NE(r.err.find("missing required field 'services[0].serviceUrl'"), std::string::npos)
      << r.err;

  r = admin("myorg",
            {"pattern", "publish", "-f", example("pattern.json")});  // $EVTSTREAMS_API_KEY unset
  EXPECT_EQ(r.exit, 1);
  EXPECT_NE(r.err.find("'EVTSTREAMS_API_KEY'"), std::string::npos) << r.err;
}

TEST_F(cli_exchange, unreachable_broker_exits_3_with_a_hint) {
  auto r = hmq({"exchange", "--timeout", "2", "-u", "root/root:x", "org", "list"},
               {{"HMQ_EXCHANGE", "tcp://127.0.0.1:" + std::to_string(test::free_port())}});
  EXPECT_EQ(r.exit, 3) << r.err;
  EXPECT_NE(r.err.find("HMQ_EXCHANGE"), std::string::npos) << r.err;
}

TEST_F(cli_exchange, usage_errors_exit_1) {
  auto r = hmq({"exchange", "node", "list"}, {{"HMQ_EXCHANGE_USER_AUTH", ""}});
  EXPECT_EQ(r.exit, 1) << r.err;
  EXPECT_NE(r.err.find("-u"), std::string::npos) << r.err;
  r = hmq({"exchange", "frobnicate"});
  EXPECT_EQ(r.exit, 1);
  r = hmq({"--help"});
  EXPECT_EQ(r.exit, 0);
  EXPECT_NE(r.out.find("exchange"), std::string::npos);
}

TEST_F(cli_exchange, key_create_writes_a_private_key_only_the_owner_can_read) {
  auto d = *dir_ / "keys-test";
  auto r = hmq({"key", "create", "-d", d.string()});
  EXPECT_RUN_OK(r);
  auto perms = std::filesystem::status(d / "hmq-signing.private.key").permissions();
  EXPECT_EQ(perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all),
            std::filesystem::perms::none);
  r = hmq({"key", "create", "-d", d.string()});
  EXPECT_EQ(r.exit, 1);  // never overwrites silently
}

#endif  // HMQ_HAVE_FIXTURES

}  // namespace
}  // namespace hmq::cli
