#include "cli/command_context.h"

#include "exchange_client/ids.h"

namespace hmq::cli {

namespace xc = ::hmq::exchange_client;

namespace {
constexpr const char* default_broker = "tcp://127.0.0.1:1883";
}  // namespace

command_context::command_context(std::ostream& out, std::ostream& err) : out_(out), err_(err) {
  conn_.broker = env_or("HMQ_EXCHANGE", default_broker);
  conn_.exchange_key = env_or("HMQ_EXCHANGE_KEY", "");
  conn_.org = env_or("HMQ_ORG", "");
  conn_.user_auth = env_or("HMQ_EXCHANGE_USER_AUTH", "");
  conn_.node_auth = env_or("HMQ_EXCHANGE_NODE_AUTH", "");
}

void command_context::on_run(CLI::App* cmd, std::function<void()> work) {
  cmd->callback([this, work = std::move(work)] { action_ = work; });
}

xc::credentials command_context::auth() {
  if (!conn_.node_auth.empty())
    return parse_auth(conn_.node_auth, fb::AuthKind::node, conn_.org, "-n/--node-auth");
  if (conn_.user_auth.empty()) {
    usage_error(
        "no credentials: give -u [org/]user:password (or HMQ_EXCHANGE_USER_AUTH), or -n "
        "node:token");
  }
  return parse_auth(conn_.user_auth, fb::AuthKind::user, conn_.org, "-u/--user-auth");
}

std::string command_context::target_org() {
  if (!conn_.org.empty()) return conn_.org;
  auto a = auth();
  return a.org;
}

std::pair<std::string, std::string> command_context::qualified(const std::string& s) {
  if (s.find('/') != std::string::npos) {
    auto q = xc::split_qualified(s);
    if (!q) usage_error("'" + s + "': expected org/name or name");
    return {q->org, q->name};
  }
  return {target_org(), s};
}

session& command_context::connect() {
  if (!session_) session_ = std::make_unique<session>(conn_);
  return *session_;
}

void command_context::create(const fb::ResourceUnion& r, const std::string& what) {
  call_void([&](xc::client& c, const xc::credentials& a, xc::client::done cb) {
    c.create_resource(a, r, std::move(cb));
  });
  out_ << what << " created\n";
}

void command_context::publish_upsert(const fb::ResourceUnion& r, const std::string& what) {
  auto& s = connect();
  auto a = auth();
  auto created =
      s.try_void([&](xc::client::done cb) { s.client().create_resource(a, r, std::move(cb)); });
  if (created) {
    out_ << what << " published\n";
    return;
  }
  // Publishing again replaces what is there, as hzn does.
  if (created.code() != xc::client_errc::already_exists) throw to_failure(created.err());
  s.run_void([&](xc::client::done cb) { s.client().update_resource(a, r, std::move(cb)); });
  out_ << what << " updated\n";
}

void command_context::json_or_table(const std::string& format,
                                    const std::function<nlohmann::json()>& as_json,
                                    const std::function<void()>& as_table) {
  if (format == "json") {
    out_ << as_json().dump(2) << "\n";
    return;
  }
  as_table();
}

void add_output_option(CLI::App* cmd, std::string& format, const std::string& extra) {
  cmd->add_option("-o,--output", format,
                  "Output format: table (for people) or json (for scripts)" + extra)
      ->check(CLI::IsMember({"table", "json"}));
}

}  // namespace hmq::cli
