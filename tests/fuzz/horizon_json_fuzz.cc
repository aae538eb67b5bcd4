// Fuzzes the Horizon JSON readers of the CLI (cli/horizon_json.h): service definitions and
// patterns are files users download and publish, and the exchange stores what they produce.
// The first byte picks service, pattern or the $VAR substitution alone; variables resolve to
// fixed values (and one is unset) so substitution errors are reached too.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>

#include "cli/horizon_json.h"

namespace {

std::optional<std::string> fixed_env(std::string_view name) {
  if (name == "HZN_ORG_ID") return "acme";
  if (name == "ARCH") return "amd64";
  if (name == "REGISTRY") return "127.0.0.1:5000";
  if (name == "EMPTY") return "";
  return std::nullopt;
}

void write_seed(const std::filesystem::path& dir, const std::string& name, char kind,
                std::string_view body) {
  std::ofstream(dir / name, std::ios::binary) << kind << body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0:
      if (auto s = hmq::cli::parse_service(text, "fuzz.json", fixed_env); s) {
        // What publish does next with a parsed service.
        auto bytes = hmq::cli::serialize_deployment(s->deployment);
        (void)hmq::cli::parse_deployment_buffer(bytes);
        (void)hmq::cli::service_to_json(s->service, &s->deployment).dump();
      }
      break;
    case 1:
      if (auto p = hmq::cli::parse_pattern(text, "fuzz.json", fixed_env); p)
        (void)hmq::cli::pattern_to_json(p->pattern).dump();
      break;
    default:
      (void)hmq::cli::substitute_env(text, "fuzz.json", fixed_env);
      break;
  }
  return 0;
}

// Seed corpus (replay binary: <target>_replay --write-seeds DIR): the repository's examples.
extern "C" void hmq_fuzz_write_seeds(const char* d) {
  std::filesystem::path dir(d), ex = std::filesystem::path(HMQ_FUZZ_SOURCE_DIR) / "examples";
  auto file = [](const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  for (const char* s : {"gps", "cpu", "consumer"})
    write_seed(dir, std::string("service_") + s, '\0', file(ex / s / "service.definition.json"));
  write_seed(dir, "service_horizon_gps", '\0',
             file(ex / "horizon" / "gps.service.definition.json"));
  write_seed(dir, "service_horizon_cpu2evtstreams", '\0',
             file(ex / "horizon" / "cpu2evtstreams.service.definition.json"));
  write_seed(dir, "pattern_example", '\1', file(ex / "pattern.json"));
  write_seed(dir, "pattern_horizon", '\1', file(ex / "horizon" / "pattern.json"));
  write_seed(dir, "substitute", '\2', "a $HZN_ORG_ID ${ARCH} $ $5 ${UNSET} ${EMPTY}x ${");
}
