#include "tests/support/fleet.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "core/control/control.h"

extern char** environ;

namespace hmq::test {
namespace {

using namespace std::chrono_literals;

size_t occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

// The last `max` bytes of a log, for failure messages that stay readable.
std::string tail(const std::filesystem::path& p, size_t max = 6000) {
  std::string t = read_file(p);
  if (t.size() > max) t = "...\n" + t.substr(t.size() - max);
  return t;
}

json control_call(const std::filesystem::path& socket, const json& req) {
  auto r = core::control::call(socket, req, 10s);
  return r ? *r : json{{"ok", false}, {"error", r.err().message()}};
}

}  // namespace

std::string exchange_binary() {
  return std::string(HMQ_BINARY_DIR) + "/exchange/hmq-exchange";
}
std::string agbot_binary() {
  return std::string(HMQ_BINARY_DIR) + "/agbot/hmq-agbot";
}
std::string agent_binary() {
  return std::string(HMQ_BINARY_DIR) + "/agent/hmq-agent";
}
std::string hmq_binary() {
  return std::string(HMQ_BINARY_DIR) + "/cli/hmq";
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool wait_for_log(const std::filesystem::path& file, const std::string& needle, size_t count,
                  std::chrono::milliseconds timeout) {
  int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd < 0) return false;
  inotify_add_watch(fd, file.parent_path().c_str(), IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool found = false;
  for (;;) {
    if (occurrences(read_file(file), needle) >= count) {
      found = true;
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) > 0) {
      char buf[4096];
      while (::read(fd, buf, sizeof buf) > 0) {
      }
    }
  }
  ::close(fd);
  return found;
}

run_result run_command(std::vector<std::string> argv, const std::map<std::string, std::string>& env,
                       const std::filesystem::path& scratch, std::chrono::milliseconds timeout) {
  std::map<std::string, std::string> e;
  for (char** p = environ; *p; ++p) {
    std::string kv(*p);
    auto eq = kv.find('=');
    if (eq != std::string::npos) e[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : env) e[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : e) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);

  // Atomic: a test may run commands from a second thread (tests/e2e/faults' writer).
  static std::atomic<int> counter = 0;
  const std::string stem = "cmd-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  auto out_path = scratch / (stem + ".out"), err_path = scratch / (stem + ".err");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  run_result r;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    r.err = "spawn " + argv[0] + " failed: " + std::strerror(rc);
    return r;
  }
  // Bounded wait without polling: the pidfd becomes readable when the child exits.
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) == 0) ::kill(pid, SIGKILL);
    ::close(pidfd);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  std::error_code ec;
  std::filesystem::remove(out_path, ec);
  std::filesystem::remove(err_path, ec);
  return r;
}

// ---- exchange_process ---------------------------------------------------------------------------

exchange_process::exchange_process(const std::filesystem::path& data_dir, std::string broker_uri,
                                   std::string instance, std::string root_password,
                                   std::vector<std::string> extra_args)
    : dir_(data_dir),
      uri_(std::move(broker_uri)),
      instance_(std::move(instance)),
      root_password_(std::move(root_password)),
      extra_args_(std::move(extra_args)) {
  start();
}

void exchange_process::start() {
  process_spec spec;
  spec.argv = {exchange_binary(), "--broker",        uri_,           "--data-dir",
               dir_.string(),     "--root-password", root_password_, "--hash-strength",
               "minimum",         "--log-level",     "info"};
  if (!instance_.empty()) spec.argv.insert(spec.argv.end(), {"--instance", instance_});
  spec.argv.insert(spec.argv.end(), extra_args_.begin(), extra_args_.end());
  spec.log_file = log_file();
  std::filesystem::create_directories(dir_);
  proc_.emplace(process::start(spec));
  ++starts_;
  ASSERT_TRUE(wait_for_log(log_file(), "hmq-exchange ready", starts_, 20s))
      << read_file(log_file());
  // The key of the latest start (the same key file every time).
  static const std::regex ready("hmq-exchange ready: key=([A-Za-z0-9+/=]+)");
  std::string text = read_file(log_file());
  for (std::sregex_iterator it(text.begin(), text.end(), ready), end; it != end; ++it)
    key_ = (*it)[1];
}

void exchange_process::kill_hard() {
  proc_->kill(SIGKILL);
  proc_->wait_for(10s);
}

void exchange_process::stop() {
  proc_->kill(SIGTERM);
  auto st = proc_->wait_for(20s);
  ASSERT_TRUE(st) << "exchange did not stop";
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << describe_wait_status(*st);
}

std::filesystem::path exchange_process::log_file() const {
  return dir_ / ((instance_.empty() ? std::string("exchange") : instance_) + ".log");
}

// ---- fleet --------------------------------------------------------------------------------------

fleet::fleet(fleet_options o) : opts_(std::move(o)) {
  setup();
}

fleet::~fleet() {
  // Agents and agbot first (they would only reconnect), then the exchange, then the broker.
  agents_.clear();
  agbot_.reset();
  exchange_.reset();
}

std::filesystem::path fleet::signing_public_key() const {
  return dir_ / ".hmq" / "keys" / "hmq-signing.public.key";
}

void fleet::setup() {
  exchange_.emplace(dir_ / "exchange", broker_.uri(), "", "rootpw", opts_.exchange_args);
  if (::testing::Test::HasFatalFailure()) return;
  const std::string root = "root/root:rootpw";
  auto must = [this](const run_result& r, const std::string& what) {
    ASSERT_EQ(r.exit, 0) << what << "\nstdout:\n" << r.out << "stderr:\n" << r.err;
  };
  must(hmq({"exchange", "-u", root, "org", "create", opts_.org}), "org create");
  if (::testing::Test::HasFatalFailure()) return;
  must(hmq({"exchange", "-u", root, "--org", opts_.org, "user", "create", "admin", "admin-pw",
            "-A"}),
       "user create");
  must(hmq({"key", "create"}), "key create");
  if (::testing::Test::HasFatalFailure()) return;
  if (opts_.publish)
    opts_.publish(*this);
  else
    publish_pattern(opts_.pattern, opts_.service, opts_.image);
  if (::testing::Test::HasFatalFailure()) return;
  must(admin({"agbot", "create", "bot1:" + opts_.agbot_token}), "agbot create");
  must(admin({"agbot", "addpattern", "bot1", opts_.org, opts_.pattern}), "agbot addpattern");
  if (::testing::Test::HasFatalFailure()) return;
  for (size_t i = 0; i < opts_.agents; ++i) {
    add_agent();
    if (::testing::Test::HasFatalFailure()) return;
  }
  if (opts_.start_agbot) start_agbot();
}

void fleet::publish_service_version(const std::string& version,
                                    const std::vector<std::string>& environment) {
  json container = {{"image", "127.0.0.1:1/" + opts_.image + "@sha256:" + std::string(64, 'a')}};
  if (!environment.empty()) container["environment"] = environment;
  json svc = {{"org", opts_.org},
              {"label", opts_.service},
              {"description", ""},
              {"public", false},
              {"url", "https://" + opts_.org + ".example/" + opts_.service},
              {"version", version},
              {"arch", "amd64"},
              {"sharable", "multiple"},
              {"requiredServices", json::array()},
              {"userInput", json::array()},
              {"deployment", {{"services", {{opts_.service, container}}}}}};
  auto file = dir_ / ("service-" + opts_.service + "-" + version + ".json");
  std::ofstream(file) << svc.dump(2);
  std::vector<std::string> publish{"service", "publish", "-f", file.string()};
  if (!opts_.registry_auth.empty()) publish.insert(publish.end(), {"-r", opts_.registry_auth});
  auto r = admin(publish);
  ASSERT_EQ(r.exit, 0) << "service publish " << version << "\n" << r.out << r.err;
}

void fleet::publish_pattern_versions(const std::vector<std::string>& versions,
                                     unsigned max_in_flight, unsigned batch_pause_s,
                                     unsigned max_failures) {
  json sv = json::array();
  int prio = 1;
  for (const auto& v : versions)
    sv.push_back({{"version", v},
                  {"priority",
                   {{"priority_value", prio++},
                    {"retries", 0},
                    {"retry_durations", 3600},
                    {"verified_durations", 1}}}});
  json pat = {
      {"org", opts_.org},
      {"name", opts_.pattern},
      {"label", ""},
      {"description", ""},
      {"public", false},
      {"services",
       {{{"serviceUrl", "https://" + opts_.org + ".example/" + opts_.service},
         {"serviceOrgid", opts_.org},
         {"serviceArch", "amd64"},
         {"agreementLess", false},
         {"serviceVersions", sv},
         {"nodeHealth", {{"missing_heartbeat_interval", 600}, {"check_agreement_status", 120}}}}}},
      {"userInput", json::array()},
      {"upgradePolicy",
       {{"max_in_flight", max_in_flight},
        {"batch_pause_s", batch_pause_s},
        {"max_failures", max_failures}}}};
  auto file = dir_ / ("pattern-" + opts_.pattern + "-" + versions.front() + ".json");
  std::ofstream(file) << pat.dump(2);
  auto r = admin({"pattern", "publish", "-f", file.string()});
  ASSERT_EQ(r.exit, 0) << "pattern publish\n" << r.out << r.err;
}

void fleet::publish_pattern(const std::string& name, const std::string& service,
                            const std::string& image, const std::filesystem::path& key_dir) {
  const std::string url = "https://" + opts_.org + ".example/" + service;
  json svc = {
      {"org", opts_.org},
      {"label", service},
      {"description", ""},
      {"public", false},
      {"url", url},
      {"version", "1.0.0"},
      {"arch", "amd64"},
      {"sharable", "multiple"},
      {"requiredServices", json::array()},
      {"userInput", json::array()},
      {"deployment",
       {{"services",
         {{service, {{"image", "127.0.0.1:1/" + image + "@sha256:" + std::string(64, 'a')}}}}}}}};
  json pat = {{"org", opts_.org},
              {"name", name},
              {"label", ""},
              {"description", ""},
              {"public", false},
              {"services",
               {{{"serviceUrl", url},
                 {"serviceOrgid", opts_.org},
                 {"serviceArch", "amd64"},
                 {"agreementLess", false},
                 {"serviceVersions",
                  {{{"version", "1.0.0"},
                    {"priority",
                     {{"priority_value", 1},
                      {"retries", 1},
                      {"retry_durations", 60},
                      {"verified_durations", 30}}}}}},
                 {"nodeHealth",
                  {{"missing_heartbeat_interval", opts_.missing_heartbeat_interval_s},
                   {"check_agreement_status", opts_.check_agreement_status_s}}}}}},
              {"userInput", json::array()}};
  auto sfile = dir_ / ("service-" + service + ".json"),
       pfile = dir_ / ("pattern-" + name + ".json");
  std::ofstream(sfile) << svc.dump(2);
  std::ofstream(pfile) << pat.dump(2);
  std::vector<std::string> publish{"service", "publish", "-f", sfile.string()};
  if (!key_dir.empty()) {
    publish.insert(publish.end(), {"-k", (key_dir / "hmq-signing.private.key").string(), "-K",
                                   (key_dir / "hmq-signing.public.key").string()});
  }
  if (!opts_.registry_auth.empty()) publish.insert(publish.end(), {"-r", opts_.registry_auth});
  auto r = admin(publish);
  ASSERT_EQ(r.exit, 0) << "service publish\n" << r.out << r.err;
  r = admin({"pattern", "publish", "-f", pfile.string()});
  ASSERT_EQ(r.exit, 0) << "pattern publish\n" << r.out << r.err;
}

run_result fleet::hmq(std::vector<std::string> args, std::map<std::string, std::string> env) {
  args.insert(args.begin(), hmq_binary());
  env.emplace("HMQ_EXCHANGE", broker_.uri());
  env.emplace("HMQ_EXCHANGE_KEY", exchange_key());
  env.emplace("HOME", dir_.path().string());
  return run_command(std::move(args), env, dir_.path());
}

run_result fleet::admin(std::vector<std::string> args) {
  args.insert(args.begin(), {"exchange", "-u", opts_.org + "/admin:admin-pw"});
  return hmq(std::move(args));
}

// ---- agents

std::filesystem::path fleet::agent_socket(size_t i) const {
  return dir_ / ("agent" + std::to_string(i)) / "agent.sock";
}
std::filesystem::path fleet::agent_log(size_t i) const {
  return dir_ / ("agent" + std::to_string(i) + ".log");
}

size_t fleet::add_agent(bool trust_publisher) {
  size_t i = agents_.size();
  agents_.push_back({});
  agents_[i].trust_publisher = trust_publisher;
  auto r = admin({"node", "create", node(i) + ":" + opts_.token_prefix + std::to_string(i),
                  "--arch", "amd64"});
  EXPECT_EQ(r.exit, 0) << "node create\n" << r.out << r.err;
  start_agent(i);
  if (trust_publisher) {
    r = hmq({"key", "import", "-k", signing_public_key().string(), "--name", "publisher",
             "--agent-socket", agent_socket(i).string()});
    EXPECT_EQ(r.exit, 0) << "key import\n" << r.out << r.err;
  }
  return i;
}

void fleet::start_agent(size_t i) {
  auto& a = agents_.at(i);
  if (a.proc && a.proc->is_running()) return;
  a.proc.reset();
  std::vector<std::string> argv = opts_.agent_wrapper;
  const std::string uri = opts_.agent_broker_uri.empty() ? broker_.uri() : opts_.agent_broker_uri;
  for (std::string arg :
       {agent_binary(), std::string("--broker"), uri, std::string("--exchange-key"), exchange_key(),
        std::string("--data-dir"), (dir_ / ("agent" + std::to_string(i))).string(),
        std::string("--finalize-timeout"), std::to_string(opts_.finalize_timeout_s),
        std::string("--log-level"), opts_.log_level}) {
    argv.push_back(std::move(arg));
  }
  // agent_runtime is the one place to choose the runtime; a test that also passes --runtime in
  // agent_args wins (hmq-agent refuses the flag twice).
  std::vector<std::string> extra = opts_.agent_args;
  if (auto it = opts_.agent_args_of.find(i); it != opts_.agent_args_of.end())
    extra.insert(extra.end(), it->second.begin(), it->second.end());
  if (std::find(extra.begin(), extra.end(), "--runtime") == extra.end())
    argv.insert(argv.end(), {"--runtime", opts_.agent_runtime});
  argv.insert(argv.end(), extra.begin(), extra.end());
  a.proc.emplace(process::start({argv, {}, agent_log(i)}));
  EXPECT_TRUE(eventually([&] {
    return agent_call(i, {{"op", "node_status"}}).value("broker_connected", false);
  })) << tail(agent_log(i));
}

void fleet::kill_agent(size_t i) {
  auto& a = agents_.at(i);
  if (!a.proc) return;
  a.proc->kill(SIGKILL);
  a.proc->wait_for(10s);
}

json fleet::agent_call(size_t i, const json& req) {
  return control_call(agent_socket(i), req);
}

json fleet::agent_agreements(size_t i) {
  json r = agent_call(i, {{"op", "agreement_list"}});
  return r.value("ok", false) ? r["agreements"] : json::array();
}

run_result fleet::register_node(size_t i, const std::string& pattern) {
  return hmq({"register", "--node", qualified_node(i), "--token",
              opts_.token_prefix + std::to_string(i), "--pattern",
              opts_.org + "/" + (pattern.empty() ? opts_.pattern : pattern), "--arch", "amd64",
              "--agent-socket", agent_socket(i).string()});
}

run_result fleet::unregister_node(size_t i) {
  return hmq({"unregister", "--agent-socket", agent_socket(i).string()});
}

// ---- agbot

std::filesystem::path fleet::agbot_socket() const {
  return dir_ / "agbot" / "agbot.sock";
}
std::filesystem::path fleet::agbot_log() const {
  return dir_ / "agbot.log";
}

void fleet::start_agbot() {
  if (agbot_ && agbot_->is_running()) return;
  agbot_.reset();
  std::filesystem::create_directories(dir_ / "agbot");
  // A socket file left by a killed agbot would make the new one fail to bind.
  std::error_code ec;
  std::filesystem::remove(agbot_socket(), ec);
  std::vector<std::string> argv{agbot_binary(),
                                "--broker",
                                broker_.uri(),
                                "--exchange-key",
                                exchange_key(),
                                "--org",
                                opts_.org,
                                "--id",
                                "bot1",
                                "--data-dir",
                                (dir_ / "agbot").string(),
                                "--control-socket",
                                agbot_socket().string(),
                                "--reply-timeout",
                                opts_.reply_timeout,
                                "--retry-backoff-min",
                                opts_.retry_min,
                                "--retry-backoff-max",
                                opts_.retry_max,
                                "--log-level",
                                opts_.log_level};
  argv.insert(argv.end(), opts_.agbot_args.begin(), opts_.agbot_args.end());
  agbot_.emplace(process::start({argv, {{"HMQ_AGBOT_TOKEN", opts_.agbot_token}}, agbot_log()}));
  EXPECT_TRUE(eventually([&] {
    return agbot_call({{"op", "agreement.list"}}).value("ok", false);
  })) << tail(agbot_log());
}

void fleet::kill_agbot() {
  if (!agbot_) return;
  agbot_->kill(SIGKILL);
  agbot_->wait_for(10s);
}

bool fleet::agbot_running() {
  return agbot_ && agbot_->is_running();
}

json fleet::agbot_call(const json& req) {
  return control_call(agbot_socket(), req);
}

json fleet::agbot_agreements(bool all) {
  json req{{"op", "agreement.list"}};
  if (all) req["all"] = true;
  json r = agbot_call(req);
  return r.value("ok", false) ? r["agreements"] : json::array();
}

json fleet::agbot_agreements_of(size_t i, bool all) {
  json out = json::array();
  for (const auto& a : agbot_agreements(all))
    if (a.value("node", "") == qualified_node(i)) out.push_back(a);
  return out;
}

// ---- exchange

json fleet::exchange_agreements(size_t i) {
  auto r = admin({"node", "agreements", qualified_node(i), "-o", "json"});
  if (r.exit != 0) return json::array();
  auto j = json::parse(r.out, nullptr, false);
  return j.is_array() ? j : json::array();
}

// ---- waits

std::string fleet::wait_agent_finalized(size_t i, std::chrono::milliseconds timeout) {
  std::string id;
  eventually(
      [&] {
        json live = json::array();
        for (const auto& a : agent_agreements(i))
          if (a.value("state", "") != "cancelled") live.push_back(a);
        if (live.size() == 1 && live[0].value("state", "") == "finalized" &&
            live[0].value("exchange_synced", false)) {
          id = live[0].value("id", "");
          return true;
        }
        return false;
      },
      timeout);
  return id;
}

bool fleet::wait_agbot_finalized(size_t i, const std::string& id,
                                 std::chrono::milliseconds timeout) {
  return eventually(
      [&] {
        json l = agbot_agreements_of(i);
        return l.size() == 1 && l[0].value("id", "") == id &&
               l[0].value("state", "") == "finalized";
      },
      timeout);
}

bool fleet::wait_exchange_finalized(size_t i, const std::string& id,
                                    std::chrono::milliseconds timeout) {
  return eventually(
      [&] {
        json l = exchange_agreements(i);
        return l.size() == 1 && l[0].value("id", "") == id &&
               l[0].value("state", "") == "finalized";
      },
      timeout, 100ms);
}

std::string fleet::wait_finalized_everywhere(size_t i, std::chrono::milliseconds timeout) {
  auto id = wait_agent_finalized(i, timeout);
  if (id.empty()) return "";
  if (!wait_agbot_finalized(i, id, timeout)) return "";
  if (!wait_exchange_finalized(i, id, timeout)) return "";
  return id;
}

std::string fleet::logs() {
  std::string s =
      "---- exchange:\n" + tail(exchange_->log_file()) + "---- agbot:\n" + tail(agbot_log());
  for (size_t i = 0; i < agents_.size(); ++i)
    s += "---- agent " + std::to_string(i) + ":\n" + tail(agent_log(i));
  return s;
}

}  // namespace hmq::test
