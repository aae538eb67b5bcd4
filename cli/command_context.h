#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <utility>

#include "cli/session.h"

// What every noun of the `hmq` command tree (cli/cmd_*.cc) shares: the output streams, the
// connection options, the one session of a run, and the steps that all exchange commands take
// (pick the credentials and the org, run an RPC, print a table or JSON). A noun file only adds
// its subcommands and says what each does.
namespace hmq::cli {

// Lifecycle: one per `hmq` run. The noun files register subcommands whose CLI11 callbacks only
// store the command's work (on_run); run() in commands.cc calls it after parsing, on the same
// thread, and then drops the session.
class command_context {
 public:
  // The connection options start from the environment (HMQ_EXCHANGE, ...); flags override.
  command_context(std::ostream& out, std::ostream& err);

  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }
  connection_opts& conn() { return conn_; }

  // Make `work` what this run does when `cmd` is the subcommand given.
  void on_run(CLI::App* cmd, std::function<void()> work);
  // Set by the agent commands (register, agreement list, ...), which talk to the local agent.
  void on_agent_run(std::function<int()> work) { agent_action_ = std::move(work); }
  const std::function<void()>& action() const { return action_; }
  const std::function<int()>& agent_action() const { return agent_action_; }
  void close() { session_.reset(); }

  // Credentials of -n (wins) or -u; usage error without either.
  exchange_client::credentials auth();
  // The org a command works on: --org, else the org of the credentials.
  std::string target_org();
  // "org/id" or "id" (in target_org()).
  std::pair<std::string, std::string> qualified(const std::string& s);
  // The session, connected on first use.
  session& connect();

  // Connect, then run one exchange call with the run's credentials: `call(client, auth, cb)`.
  template <typename T, typename F>
  T call(F&& call) {
    auto& s = connect();
    auto a = auth();
    return s.run<T>(
        [&](exchange_client::client::callback<T> cb) { call(s.client(), a, std::move(cb)); });
  }
  template <typename F>
  void call_void(F&& call) {
    auto& s = connect();
    auto a = auth();
    s.run_void([&](exchange_client::client::done cb) { call(s.client(), a, std::move(cb)); });
  }

  // Create `r` and print "<what> created".
  void create(const fb::ResourceUnion& r, const std::string& what);
  // Create `r`, or replace it if it exists (publishing again, as hzn does).
  void publish_upsert(const fb::ResourceUnion& r, const std::string& what);

  // `as_json()` pretty-printed when `format` is "json", else `as_table()`.
  void json_or_table(const std::string& format, const std::function<nlohmann::json()>& as_json,
                     const std::function<void()>& as_table);

 private:
  std::ostream& out_;
  std::ostream& err_;
  connection_opts conn_;
  std::function<void()> action_;
  std::function<int()> agent_action_;
  std::unique_ptr<session> session_;
};

// `-o,--output table|json` on `cmd`; `extra` is appended to its help.
void add_output_option(CLI::App* cmd, std::string& format, const std::string& extra = "");

}  // namespace hmq::cli
