#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "core/common/result.h"
#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "exchange_client/client.h"

namespace hmq::core::bus {
class client;
class messenger;
}  // namespace hmq::core::bus
namespace hmq::core::wire {
class codec;
}

// The connection every exchange command of `hmq` shares: options, credentials parsing, the
// session to the broker and the exchange, and how a failure becomes a message and an exit code.
// Only this file and session.cc know how to connect; the noun files (cli/cmd_*.cc) use them.
namespace hmq::cli {

namespace fb = ::hmq::wire::fb;
using core::result;

// An error on its way to stderr with the exit code it maps to (cli/commands.h).
struct failure {
  int code;
  std::string message;
};

// The message and exit code of an error from the exchange client, the bus or a registry.
failure to_failure(const core::error& e);

template <typename T>
T must(result<T> r) {
  if (!r) throw to_failure(r.err());
  return std::move(r).value();
}
void must(result<void> r);
[[noreturn]] void usage_error(std::string msg);

// The value of environment variable `name`, or `fallback` when it is unset or empty.
std::string env_or(const char* name, std::string fallback);

// "id:token" of `node create` / `agbot create`: both parts non-empty.
std::pair<std::string, std::string> split_id_token(const std::string& s, std::string_view command,
                                                   std::string_view what);

// Options shared by every exchange command (flags win over the environment).
struct connection_opts {
  std::string broker;
  std::string exchange_key;
  std::string org;
  std::string user_auth;
  std::string node_auth;
  int timeout_s = 10;
  std::string topic_prefix = "hmq/v1";
};

// "[org/]id:secret" -> credentials of `kind`, org defaulting to `org`.
exchange_client::credentials parse_auth(const std::string& s, fb::AuthKind kind,
                                        const std::string& org, const char* flag);

// One connection to the broker and the exchange, for the life of one command. Constructed on
// the command's thread, which then drives its private loop through run()/try_run(); failures to
// connect throw `failure`. The destructor stops the messenger and the bus.
class session {
 public:
  explicit session(const connection_opts& o);
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  exchange_client::client& client() { return *client_; }

  // Run one async call to completion; failures throw (to stderr with their exit code).
  template <typename T>
  T run(const std::function<void(exchange_client::client::callback<T>)>& start) {
    return must(exchange_client::run_sync<T>(loop_, start));
  }
  template <typename T>
  result<T> try_run(const std::function<void(exchange_client::client::callback<T>)>& start) {
    return exchange_client::run_sync<T>(loop_, start);
  }
  // Same, but hands the result back (for "create, or update if it exists").
  result<void> try_void(const std::function<void(exchange_client::client::done)>& start) {
    return exchange_client::run_sync<void>(loop_, start);
  }
  void run_void(const std::function<void(exchange_client::client::done)>& start) {
    must(try_void(start));
  }

 private:
  connection_opts opts_;
  core::loop::event_loop loop_;
  core::crypto::box_keypair keys_;
  core::crypto::public_key exchange_key_{};
  std::unique_ptr<core::wire::codec> codec_;
  std::unique_ptr<core::bus::client> bus_;
  std::unique_ptr<core::bus::messenger> messenger_;
  std::unique_ptr<exchange_client::client> client_;
  bool started_ = false;
  int user_lock_fd_ = -1;  // held while this user's broker session is ours (session.cc)
};

}  // namespace hmq::cli
