#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/example_registry.h"

// What the agent's Docker runtime made on the real Engine, read (and cleaned up) through the
// docker CLI by its labels and names (docs/containers.md), for e2e tests. One suite-wide
// example registry for the fixtures that deploy the example pattern.
namespace hmq::test {

constexpr const char* docker_socket = "/var/run/docker.sock";

// The Engine's socket exists (dockerd started: `source scripts/lib.sh; start_dockerd`).
bool docker_available();

// The non-empty lines of a command's output.
std::vector<std::string> output_lines(const std::string& text);

// Full ids of the containers labelled hmq.agreement=<agreement> (running or not), optionally
// only those of one service (label hmq.service=<org>/<url>) or only the running ones.
std::vector<std::string> containers_of(const std::string& agreement,
                                       const std::string& service = "", bool running_only = false);
// Ids of the agreement's private networks (named hmq-<first 12 of the id>-...).
std::vector<std::string> networks_of(const std::string& agreement);
// Force-removes the agreement's containers and networks (test clean-up; never others').
void remove_agreement_resources(const std::string& agreement);

// Base fixture: SetUpTestSuite starts one example_registry when Docker is there (registry_
// stays null otherwise); TearDownTestSuite removes it.
class example_registry_suite : public ::testing::Test {
 public:
  static void SetUpTestSuite();
  static void TearDownTestSuite();

 protected:
  // A registry that started: the suite can deploy the examples.
  static bool registry_ready() { return registry_ && registry_->error().empty(); }
  static example_registry* registry_;
};

}  // namespace hmq::test
