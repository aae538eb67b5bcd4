// Replays a libFuzzer corpus through LLVMFuzzerTestOneInput without libFuzzer, so the seed
// corpus runs as a regression test under any compiler. Usage: <target>_replay DIR|FILE...
// `<target>_replay --write-seeds DIR` writes the target's generated seed corpus (targets whose
// seeds are built with the schema's object API define hmq_fuzz_write_seeds).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) void hmq_fuzz_write_seeds(const char* dir);

namespace {

int run_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<uint8_t> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(buf.data(), buf.size());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string_view(argv[1]) == "--write-seeds") {
    if (!hmq_fuzz_write_seeds) {
      std::fprintf(stderr, "replay: this target has no seed writer\n");
      return 2;
    }
    std::filesystem::create_directories(argv[2]);
    hmq_fuzz_write_seeds(argv[2]);
    return 0;
  }
  size_t runs = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    if (!std::filesystem::exists(p)) {
      std::fprintf(stderr, "replay: %s does not exist\n", argv[i]);
      return 2;
    }
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p))
        if (e.is_regular_file()) runs += run_file(e.path());
    } else {
      runs += run_file(p);
    }
  }
  if (runs == 0) {
    std::fprintf(stderr, "replay: no corpus files found\n");
    return 2;
  }
  std::printf("replay: %zu inputs, no crash\n", runs);
  return 0;
}
