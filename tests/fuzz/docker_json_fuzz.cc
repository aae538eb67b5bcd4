// Fuzzes every parser of Docker Engine API answers (agent/docker/client.h): the Engine is
// another process whose bytes the agent reads, so they are untrusted like the network's. The
// first input byte picks the parser, the rest is the body.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "agent/docker/client.h"

namespace {

using hmq::agent::docker::client;

enum parser : uint8_t {
  container,
  image,
  event,
  pull_stream,
  container_list,
  network_list,
  image_ref,
  count
};

void write_seed(const std::filesystem::path& dir, const std::string& name, parser p,
                std::string_view body) {
  std::ofstream(dir / name, std::ios::binary) << static_cast<char>(p) << body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (static_cast<parser>(data[0] % parser::count)) {
    case container:
      (void)client::parse_container(body);
      break;
    case image:
      (void)client::parse_image(body);
      break;
    case event:
      (void)client::parse_event(body);
      break;
    case pull_stream:
      (void)client::parse_pull_stream(body);
      break;
    case container_list:
      (void)client::parse_container_list(body);
      break;
    case network_list:
      (void)client::parse_network_list(body);
      break;
    case image_ref:
      (void)hmq::agent::docker::parse_image_ref(body);
      break;
    case count:
      break;
  }
  return 0;
}

// Seed corpus (replay binary: <target>_replay --write-seeds DIR), shaped like Engine v1.41 answers.
extern "C" void hmq_fuzz_write_seeds(const char* d) {
  std::filesystem::path dir(d);
  write_seed(
      dir, "container_inspect", container,
      R"({"Id":"4f1c","Name":"/hmq-x-gps","State":{"Status":"running","Running":true,"ExitCode":0,)"
      R"("OOMKilled":false,"StartedAt":"2026-11-28T14:00:00.1Z"},"Config":{"Image":"r/gps@sha256:aa",)"
      R"("Env":["A=1","HZN_ARCH=amd64"],"Labels":{"hmq.managed":"1","hmq.owner":"o"}},)"
      R"("NetworkSettings":{"Networks":{"hmq-x-gps":{"Aliases":["gps","4f1c"]}}}})");
  write_seed(dir, "container_wrong_types", container,
             R"({"Id":7,"Name":["x"],"State":"running","Config":{"Env":{"A":1},"Labels":[1,2]}})");
  write_seed(dir, "image_inspect", image,
             R"({"Id":"sha256:bb","RepoDigests":["127.0.0.1:5000/hmq-examples/gps@sha256:aa"]})");
  write_seed(
      dir, "event_die", event,
      R"({"Type":"container","Action":"die","Actor":{"ID":"4f1c","Attributes":{"name":"hmq-x-gps",)"
      R"("exitCode":"137","hmq.deployment_hash":"ab"}}})");
  write_seed(dir, "event_not_container", event, R"({"Type":"network","Action":"connect"})");
  write_seed(
      dir, "pull_ok", pull_stream,
      "{\"status\":\"Pulling from hmq-examples/gps\"}\n{\"status\":\"Digest: sha256:aa\"}\n");
  write_seed(dir, "pull_denied", pull_stream,
             "{\"status\":\"Pulling\"}\n{\"errorDetail\":{\"message\":\"unauthorized\"},\"error\":"
             "\"unauthorized\"}\n");
  write_seed(
      dir, "container_list", container_list,
      R"([{"Id":"4f1c","Names":["/hmq-x-gps"],"State":"running","Labels":{"hmq.instance":"hmq-x"}},{"Id":""}])");
  write_seed(dir, "network_list", network_list,
             R"([{"Id":"9a","Name":"hmq-x-gps","Labels":{"hmq.owner":"o"}},{"Name":"bridge"}])");
  write_seed(dir, "image_ref_full", image_ref,
             "127.0.0.1:5000/hmq-examples/gps:1.0.0@sha256:" + std::string(64, 'a'));
  write_seed(dir, "image_ref_short", image_ref, "busybox");
  write_seed(dir, "deep_nesting", container, std::string(2000, '[') + std::string(2000, ']'));
}
