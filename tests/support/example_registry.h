#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

// The example images (examples/gps, cpu, consumer) in a private, password-protected
// docker-registry on a free port, for tests against the real Docker Engine. start() runs the
// registry and scripts/build-example-images.sh; false (with error()) when that fails. The
// images' local copies are removed by the destructor. One owner thread.
namespace hmq::test {

class example_registry {
 public:
  static constexpr const char* user = "hmq";
  static constexpr const char* password = "s3cret-pw";

  example_registry() = default;
  ~example_registry();
  example_registry(const example_registry&) = delete;
  example_registry& operator=(const example_registry&) = delete;

  bool start();
  const std::string& error() const { return error_; }
  // Scratch space for the test (the registry's data lives below it too).
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::string registry_addr() const { return "127.0.0.1:" + std::to_string(port_); }
  // <registry>/hmq-examples/<name>:1.0.0
  std::string image(const std::string& name) const;
  // name -> sha256:... as pushed.
  const std::map<std::string, std::string>& digests() const { return digests_; }
  // Local copies gone, so the next deploy really pulls.
  void drop_local_images();

 private:
  bool fail(std::string e);

  temp_dir dir_{"hmq-registry"};
  int port_ = 0;
  std::optional<process> registry_;
  std::map<std::string, std::string> digests_;
  std::string error_;
};

class fleet;
// Publishes the example services (gps, cpu, consumer) and pattern (examples/*.json, with
// HZN_ORG_ID=<fleet org>, ARCH=amd64, REGISTRY=<reg>) in the fleet's org with the registry's
// credentials: fleet_options::publish for a fleet with pattern "hmq-example". Returns "" or what
// failed.
std::string publish_examples(fleet& f, const example_registry& reg);

// Runs `cmd` through the shell; its exit code (-1 when it did not exit) and stdout+stderr.
struct shell_result {
  int status = -1;
  std::string out;
};
shell_result shell(const std::string& cmd);

}  // namespace hmq::test
