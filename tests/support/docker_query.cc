#include "tests/support/docker_query.h"

#include <sys/stat.h>

#include <cstdio>

namespace hmq::test {

bool docker_available() {
  struct stat st;
  return ::stat(docker_socket, &st) == 0;
}

std::vector<std::string> output_lines(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    if (nl > pos) out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

std::vector<std::string> containers_of(const std::string& agreement, const std::string& service,
                                       bool running_only) {
  std::string cmd = std::string("docker ps -q --no-trunc") + (running_only ? "" : " -a") +
                    " --filter label=hmq.agreement=" + agreement;
  if (!service.empty()) cmd += " --filter label=hmq.service=" + service;
  return output_lines(shell(cmd).out);
}

std::vector<std::string> networks_of(const std::string& agreement) {
  return output_lines(
      shell("docker network ls -q --filter name=hmq-" + agreement.substr(0, 12)).out);
}

void remove_agreement_resources(const std::string& agreement) {
  if (agreement.size() < 12) return;  // a prefix filter on less would match others' networks
  (void)shell("docker ps -aq --filter label=hmq.agreement=" + agreement +
              " | xargs -r docker rm -f");
  (void)shell("docker network ls -q --filter name=hmq-" + agreement.substr(0, 12) +
              " | xargs -r docker network rm");
}

example_registry* example_registry_suite::registry_ = nullptr;

void example_registry_suite::SetUpTestSuite() {
  if (!docker_available()) return;
  registry_ = new example_registry;
  if (!registry_->start())
    std::fprintf(stderr, "registry setup failed: %s\n", registry_->error().c_str());
}

void example_registry_suite::TearDownTestSuite() {
  delete registry_;
  registry_ = nullptr;
}

}  // namespace hmq::test
