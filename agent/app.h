#pragma once

#include "agent/config.h"

// The hmq-agent daemon: loads its identity and store, connects to the broker, serves its mailbox
// and its control socket on one event loop until SIGINT/SIGTERM.
namespace hmq::agent {

// Returns the process exit code. Start-up failures (unusable data dir, bad exchange key, broker
// URI refused) print one clear line and return non-zero.
int run(const config& c);

}  // namespace hmq::agent
