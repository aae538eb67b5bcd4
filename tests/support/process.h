#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hmq::test {

// What to run: argv[0] is an absolute path or a name looked up in $PATH; `env` adds to (or
// overrides) the test's own environment; stdout and stderr both go to `log_file` (appended, so
// a restarted process keeps one log), or /dev/null when empty.
struct process_spec {
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;
  std::filesystem::path log_file;
};

// A child process owned by a test. Lifecycle: start() forks and execs (throws if the program
// cannot be executed, with the exec errno); the destructor sends SIGKILL and reaps, so a failing
// test never leaks a broker. The child also gets SIGKILL if the test process dies
// (PR_SET_PDEATHSIG; start it from a thread that lives as long as the process, normally the test's
// main thread). Not thread-safe: one owner thread.
class process {
 public:
  static process start(const process_spec& spec);

  process(process&& o) noexcept;
  process& operator=(process&& o) noexcept;
  process(const process&) = delete;
  process& operator=(const process&) = delete;
  ~process();

  pid_t pid() const { return pid_; }
  // Send `sig` (returns false if the child is already reaped or the kill failed).
  bool kill(int sig);
  // Wait until the child exits or `timeout` passes (no busy loop: pidfd + poll). Returns the raw
  // wait status (use WIFEXITED & co) or nullopt on timeout.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);
  // Not yet exited (reaps it if it just did).
  bool is_running();
  // Raw wait status once reaped.
  std::optional<int> exit_status() const { return status_; }

 private:
  process() = default;
  void reset();
  bool try_reap();

  pid_t pid_ = -1;
  int pidfd_ = -1;
  std::optional<int> status_;
};

// "exited with 3", "killed by signal 9" for test failure messages.
std::string describe_wait_status(int status);

}  // namespace hmq::test
