#pragma once

#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/replay/keys.h"
#include "tools/replay/message_json.h"
#include "tools/replay/recording.h"

// hmq-replay: record bus traffic to a file, inspect it (decrypting with the parties' keys),
// play it back. main.cc only forwards argv here so tests can run `inspect` in-process.
namespace hmq::tools::replay {

enum exit_code : int {
  exit_ok = 0,
  exit_bad_input = 1,      // bad flags, unreadable/foreign/truncated recording, bad keys dir
  exit_refused = 2,        // the broker refused a subscription or a publish (ACL)
  exit_unreachable = 3,    // the broker cannot be reached, or went away with messages unsent
  exit_interrupted = 130,  // play stopped by SIGINT/SIGTERM before the end
};

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// One recorded message as `inspect -o json` prints it (decoded when a key opens it).
// `start_us` is the recording's creation time (offsets are relative to it).
nlohmann::json describe(const record& r, size_t index, int64_t start_us, const keyring* keys,
                        const message_json* printer);
// The same as one text line (no newline).
std::string describe_line(const nlohmann::json& d);

}  // namespace hmq::tools::replay
