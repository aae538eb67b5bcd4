#include "tests/support/example_registry.h"

#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "tests/support/fleet.h"
#include "tests/support/temp_dir.h"

namespace hmq::test {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

shell_result shell(const std::string& cmd) {
  std::string full = cmd + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) return {-1, ""};
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = ::pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

example_registry::~example_registry() {
  for (const auto& [name, d] : digests_) (void)shell("docker rmi -f " + image(name));
}

std::string example_registry::image(const std::string& name) const {
  return registry_addr() + "/hmq-examples/" + name + ":1.0.0";
}

bool example_registry::fail(std::string e) {
  error_ = std::move(e);
  return false;
}

bool example_registry::start() {
  port_ = free_port();
  auto pw = shell("htpasswd -Bbn " + std::string(user) + " " + password);
  if (pw.status != 0) return fail("htpasswd: " + pw.out);
  std::ofstream(dir_ / "htpasswd") << pw.out;
  std::ofstream(dir_ / "config.yml")
      << "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
      << "    rootdirectory: " << (dir_ / "data").string() << "\n"
      << "http:\n  addr: " << registry_addr() << "\n"
      << "auth:\n  htpasswd:\n    realm: test\n    path: " << (dir_ / "htpasswd").string() << "\n";
  registry_.emplace(process::start(
      {{"docker-registry", "serve", (dir_ / "config.yml").string()}, {}, dir_ / "registry.log"}));
  // The registry has no readiness event we could wait on: bounded poll of its /v2/ endpoint.
  bool up = false;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
       std::chrono::steady_clock::now() < deadline;
       std::this_thread::sleep_for(std::chrono::milliseconds(100))) {
    if (trim(shell("curl -s -o /dev/null -w '%{http_code}' http://" + registry_addr() + "/v2/")
                 .out) == "401") {
      up = true;
      break;
    }
  }
  if (!up) return fail("registry did not come up");
  auto b = shell(std::string(HMQ_SOURCE_DIR) +
                 "/scripts/build-example-images.sh --no-start --port " + std::to_string(port_) +
                 " --password " + password + " --dir " + (dir_ / "build").string());
  if (b.status != 0) return fail("build-example-images.sh: " + b.out);
  for (std::string name : {"gps", "cpu", "consumer"}) {
    auto d = shell("docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' " +
                   image(name) + " | grep @ | head -n1 | cut -d@ -f2");
    if (trim(d.out).rfind("sha256:", 0) != 0) return fail("no digest for " + name + ": " + d.out);
    digests_[name] = trim(d.out);
  }
  return true;
}

void example_registry::drop_local_images() {
  for (const auto& [name, d] : digests_)
    (void)shell("docker rmi -f " + image(name) + " " + registry_addr() + "/hmq-examples/" + name +
                "@" + d);
}

std::string publish_examples(fleet& f, const example_registry& reg) {
  const std::map<std::string, std::string> env{
      {"HZN_ORG_ID", f.options().org}, {"ARCH", "amd64"}, {"REGISTRY", reg.registry_addr()}};
  const std::string auth =
      reg.registry_addr() + ":" + example_registry::user + ":" + example_registry::password;
  const std::string admin = f.options().org + "/admin:admin-pw";
  const std::string examples = std::string(HMQ_SOURCE_DIR) + "/examples/";
  for (std::string svc :
       {"gps", "cpu", "consumer"}) {  // producers first: the consumer requires them
    auto r = f.hmq({"exchange", "-u", admin, "service", "publish", "-f",
                    examples + svc + "/service.definition.json", "-r", auth},
                   env);
    if (r.exit != 0) return "service publish " + svc + ": " + r.out + r.err;
  }
  auto r =
      f.hmq({"exchange", "-u", admin, "pattern", "publish", "-f", examples + "pattern.json"}, env);
  if (r.exit != 0) return "pattern publish: " + r.out + r.err;
  return "";
}

}  // namespace hmq::test
