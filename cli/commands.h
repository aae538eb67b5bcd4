#pragma once

#include <iosfwd>
#include <string>
#include <vector>

// The hmq CLI (modelled on Open Horizon's hzn). main.cc only forwards argv here so tests can
// run commands in-process too.
namespace hmq::cli {

// Exit codes, distinct so scripts can tell what went wrong.
enum exit_code : int {
  exit_ok = 0,
  exit_usage = 1,        // bad flags, bad input file, bad key file
  exit_refused = 2,      // the exchange (or a registry) answered with a refusal
  exit_unreachable = 3,  // broker, exchange or registry cannot be reached / no answer in time
  exit_halted = 4,       // `hmq rollout status --watch`: a rollout halted at its failure limit
};

// Parse args (args[0] is the program name) and run the command. Normal output goes to `out`,
// errors and warnings to `err`.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace hmq::cli
