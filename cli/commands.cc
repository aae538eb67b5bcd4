#include "cli/commands.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <sstream>
#include <thread>
#include <tuple>
#include <utility>

#include "cli/agent_commands.h"
#include "cli/format.h"
#include "cli/horizon_json.h"
#include "cli/registry.h"
#include "cli/rollout_view.h"
#include "core/bus/client.h"
#include "core/bus/credentials.h"
#include "core/bus/messenger.h"
#include "core/crypto/crypto.h"
#include "core/log/log.h"
#include "core/loop/loop.h"
#include "core/wire/codec.h"
#include "exchange_client/client.h"
#include "exchange_client/ids.h"

namespace hmq::cli {

namespace {

namespace crypto = core::crypto;
namespace xc = ::hmq::exchange_client;
using json = nlohmann::json;

constexpr const char* default_broker = "tcp://127.0.0.1:1883";
constexpr const char* signing_private_name = "hmq-signing.private.key";
constexpr const char* signing_public_name = "hmq-signing.public.key";

// An error on its way to stderr with the exit code it maps to.
struct failure {
  int code;
  std::string message;
};

int code_for(const std::error_code& ec) {
  if (xc::is_refusal(ec)) return exit_refused;
  if (ec.category() == xc::client_category())
    return exit_unreachable;  // timeout, stopped, bad answer
  if (ec.category() == registry_category()) {
    if (ec == registry_errc::unreachable) return exit_unreachable;
    if (ec == registry_errc::refused || ec == registry_errc::not_found) return exit_refused;
    return exit_usage;
  }
  if (ec.category() == core::bus::category()) return exit_unreachable;
  return exit_usage;
}

failure to_failure(const core::error& e) {
  std::string msg = e.detail.empty() ? e.message() : e.detail;
  if (xc::is_refusal(e.code)) msg = "exchange refused: " + e.code.message() + ": " + e.detail;
  int code = code_for(e.code);
  if (code == exit_unreachable && e.code.category() != registry_category()) {
    msg +=
        "\nhint: check HMQ_EXCHANGE / --exchange (the broker URI) and HMQ_EXCHANGE_KEY, and that "
        "hmq-exchange runs";
  }
  return {code, msg};
}

template <typename T>
T must(result<T> r) {
  if (!r) throw to_failure(r.err());
  return std::move(r).value();
}
void must(result<void> r) {
  if (!r) throw to_failure(r.err());
}
[[noreturn]] void usage_error(std::string msg) {
  throw failure{exit_usage, std::move(msg)};
}

// "id:token" of `node create` / `agbot create`: both parts non-empty.
std::pair<std::string, std::string> split_id_token(const std::string& s, std::string_view command,
                                                   std::string_view what) {
  auto colon = s.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    usage_error(std::string(command) + ": expected " + std::string(what) + ":token");
  return {s.substr(0, colon), s.substr(colon + 1)};
}

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::string trim(std::string s) {
  auto ws = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (!s.empty() && ws(s.back())) s.pop_back();
  size_t i = 0;
  while (i < s.size() && ws(s[i])) ++i;
  return s.substr(i);
}

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
xc::credentials parse_auth(const std::string& s, fb::AuthKind kind, const std::string& org,
                           const char* flag) {
  auto colon = s.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) {
    usage_error(std::string(flag) + ": expected [org/]id:secret");
  }
  std::string who = s.substr(0, colon);
  xc::credentials c;
  c.kind = kind;
  c.secret = s.substr(colon + 1);
  if (who.find('/') != std::string::npos) {
    auto q = xc::split_qualified(who);
    if (!q) usage_error(std::string(flag) + ": expected [org/]id:secret");
    c.org = q->org;
    c.id = q->name;
  } else {
    c.org = org;
    c.id = who;
  }
  if (c.org.empty())
    usage_error(std::string(flag) + ": no org: use org/id:secret or give --org / HMQ_ORG");
  return c;
}

// One connection to the broker and the exchange, for the life of one command.
class session {
 public:
  explicit session(const connection_opts& o) : opts_(o), keys_(crypto::box_keypair::generate()) {
    std::string key_text = o.exchange_key;
    if (key_text.empty()) {
      usage_error(
          "no exchange key: give --exchange-key KEY|@FILE or set HMQ_EXCHANGE_KEY "
          "(hmq-exchange --print-public-key prints it)");
    }
    auto pk = crypto::load_public_key(trim(key_text));
    if (!pk) usage_error("exchange key: " + pk.err().message());
    exchange_key_ = *pk;

    codec_ = std::make_unique<core::wire::codec>(keys_, loop_.time());
    core::bus::options bo;
    bo.broker_uri = o.broker;
    // Ephemeral identity: a random client id and a clean session that dies with the command.
    crypto::bytes rnd(8);
    crypto::random_bytes(rnd);
    bo.client_id = "hmq-cli-" + crypto::to_hex(rnd);
    bo.clean_start = true;
    bo.session_expiry_s = 0;
    bo.connect_timeout = std::chrono::seconds(std::max(1, o.timeout_s));
    // Broker identity from the environment (docs/security.md): HMQ_MQTT_USER,
    // HMQ_MQTT_PASSWORD_FILE, HMQ_CA_FILE.
    {
      core::bus::credentials_flags cf;
      if (const char* v = std::getenv("HMQ_MQTT_USER")) cf.user = v;
      if (const char* v = std::getenv("HMQ_MQTT_PASSWORD_FILE")) cf.password_file = v;
      if (const char* v = std::getenv("HMQ_CA_FILE")) cf.ca_file = v;
      if (auto r = core::bus::apply_credentials(bo, cf); !r)
        throw failure{exit_unreachable, "broker credentials: " + r.err().message()};
    }
    bus_ = std::make_unique<core::bus::client>(loop_, bo);
    core::bus::topics t;
    t.prefix = o.topic_prefix;
    messenger_ = std::make_unique<core::bus::messenger>(loop_, *bus_, *codec_, t);
    client_ = std::make_unique<xc::client>(loop_, *messenger_, exchange_key_, t);
    client_->set_timeout(std::chrono::seconds(std::max(1, o.timeout_s)));

    auto connected = xc::run_sync<bool>(loop_, [this](xc::client::callback<bool> cb) {
      bus_->start([this, cb](result<void> r) {
        if (!r) return cb(r.err());
        messenger_->start();
        cb(true);
      });
    });
    if (!connected) {
      throw failure{exit_unreachable,
                    "cannot connect to the broker at " + o.broker + ": " +
                        connected.err().message() +
                        "\nhint: check HMQ_EXCHANGE / --exchange and that the broker runs"};
    }
    started_ = true;
  }

  ~session() {
    if (started_) messenger_->stop();
    if (bus_) bus_->stop();
  }

  xc::client& client() { return *client_; }

  // Run one async call to completion; failures throw (to stderr with their exit code).
  template <typename T>
  T run(const std::function<void(xc::client::callback<T>)>& start) {
    return must(xc::run_sync<T>(loop_, start));
  }
  template <typename T>
  result<T> try_run(const std::function<void(xc::client::callback<T>)>& start) {
    return xc::run_sync<T>(loop_, start);
  }
  // Same, but hands the result back (for "create, or update if it exists").
  result<void> try_void(const std::function<void(xc::client::done)>& start) {
    return xc::run_sync<void>(loop_, start);
  }
  void run_void(const std::function<void(xc::client::done)>& start) { must(try_void(start)); }

 private:
  connection_opts opts_;
  core::loop::event_loop loop_;
  crypto::box_keypair keys_;
  crypto::public_key exchange_key_{};
  std::unique_ptr<core::wire::codec> codec_;
  std::unique_ptr<core::bus::client> bus_;
  std::unique_ptr<core::bus::messenger> messenger_;
  std::unique_ptr<xc::client> client_;
  bool started_ = false;
};

// ---- output ----------------------------------------------------------------------------------

void print_table(std::ostream& out, const std::vector<std::string>& head,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::vector<std::string>> all;
  all.reserve(rows.size() + 1);
  all.push_back(head);
  all.insert(all.end(), rows.begin(), rows.end());
  ::hmq::cli::print_table(out, all);
}

void print_fields(std::ostream& out,
                  const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t w = 0;
  for (const auto& [k, v] : fields) w = std::max(w, k.size());
  for (const auto& [k, v] : fields)
    out << k << ":" << std::string(w - k.size() + 1, ' ') << v << "\n";
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

json agreement_record_json(const fb::AgreementRecordT& r) {
  return {
      {"id", r.agreement_id},
      {"node", r.node_org + "/" + r.node_id},
      {"pattern", r.pattern},
      {"service", {{"org", r.service_org}, {"url", r.service_url}, {"version", r.service_version}}},
      {"agbot", r.agbot},
      {"state", fb::EnumNameAgreementState(r.state)},
      {"updated_ms", r.updated_ms}};
}

std::string key_text(const std::vector<uint8_t>& k) {
  return k.empty() ? "" : crypto::to_base64(k);
}

json to_json(const fb::OrgT& o) {
  return {{"org", o.name}, {"label", o.label}, {"description", o.description}};
}
json to_json(const fb::UserT& u) {
  return {{"org", u.org}, {"username", u.username}, {"admin", u.admin}, {"email", u.email}};
}
json to_json(const fb::NodeT& n) {
  json ui = json::array();
  for (const auto& u : n.user_inputs) {
    json vals = json::array();
    for (const auto& v : u->inputs) vals.push_back({{"name", v->name}, {"value", v->value}});
    ui.push_back({{"serviceOrgid", u->service_org},
                  {"serviceUrl", u->service_url},
                  {"serviceArch", u->service_arch},
                  {"serviceVersionRange", u->service_version_range},
                  {"inputs", vals}});
  }
  return {{"org", n.org},
          {"id", n.id},
          {"name", n.name},
          {"arch", n.arch},
          {"pattern", n.pattern},
          {"publicKey", key_text(n.public_key)},
          {"mailbox", n.mailbox},
          {"userInput", ui},
          {"lastHeartbeat", n.last_heartbeat_ms},
          {"registered", n.registered_ms}};
}
json to_json(const fb::AgbotT& a) {
  json ps = json::array();
  for (const auto& p : a.patterns) {
    ps.push_back(
        {{"patternOrgid", p->pattern_org}, {"pattern", p->pattern}, {"nodeOrgid", p->node_org}});
  }
  return {{"org", a.org},         {"id", a.id},
          {"name", a.name},       {"publicKey", key_text(a.public_key)},
          {"mailbox", a.mailbox}, {"patterns", ps}};
}
json to_json(const fb::ServiceT& s) {
  auto d = parse_deployment_buffer(s.deployment);
  return service_to_json(s, d.ok() ? &*d : nullptr);
}
json to_json(const fb::PatternT& p) {
  return pattern_to_json(p);
}

json resource_json(const fb::ResourceUnion& r) {
  switch (r.type) {
    case fb::Resource::Org:
      return to_json(*r.AsOrg());
    case fb::Resource::User:
      return to_json(*r.AsUser());
    case fb::Resource::Node:
      return to_json(*r.AsNode());
    case fb::Resource::Agbot:
      return to_json(*r.AsAgbot());
    case fb::Resource::Service:
      return to_json(*r.AsService());
    case fb::Resource::Pattern:
      return to_json(*r.AsPattern());
    default:
      return json();
  }
}

std::string sig_status(const fb::ServiceT& s) {
  if (s.deployment_signature.empty()) return "none";
  auto v = crypto::verify_detached(s.deployment, s.deployment_signature, s.publisher_key);
  return v ? "valid (" + key_text(s.publisher_key) + ")" : "INVALID";
}

void print_resource_detail(std::ostream& out, const fb::ResourceUnion& r) {
  switch (r.type) {
    case fb::Resource::Org: {
      const auto& o = *r.AsOrg();
      print_fields(out, {{"org", o.name}, {"label", o.label}, {"description", o.description}});
      break;
    }
    case fb::Resource::User: {
      const auto& u = *r.AsUser();
      print_fields(out, {{"user", u.org + "/" + u.username},
                         {"admin", u.admin ? "yes" : "no"},
                         {"email", u.email}});
      break;
    }
    case fb::Resource::Node: {
      const auto& n = *r.AsNode();
      print_fields(out, {{"node", n.org + "/" + n.id},
                         {"name", n.name},
                         {"arch", n.arch},
                         {"pattern", n.pattern},
                         {"public key", key_text(n.public_key)},
                         {"mailbox", n.mailbox},
                         {"last heartbeat ms", std::to_string(n.last_heartbeat_ms)}});
      break;
    }
    case fb::Resource::Agbot: {
      const auto& a = *r.AsAgbot();
      std::vector<std::string> ps;
      for (const auto& p : a.patterns)
        ps.push_back(p->pattern_org + "/" + p->pattern + " (nodes of " + p->node_org + ")");
      print_fields(out, {{"agbot", a.org + "/" + a.id},
                         {"name", a.name},
                         {"public key", key_text(a.public_key)},
                         {"patterns", join(ps, ", ")}});
      break;
    }
    case fb::Resource::Service: {
      const auto& s = *r.AsService();
      print_fields(out, {{"service", s.org + "/" + xc::service_id(s.url, s.version, s.arch)},
                         {"url", s.url},
                         {"version", s.version},
                         {"arch", s.arch},
                         {"sharable", std::string(sharing_name(s.sharable))},
                         {"label", s.label},
                         {"public", s.public_ ? "yes" : "no"},
                         {"signature", sig_status(s)}});
      if (auto d = parse_deployment_buffer(s.deployment); d.ok()) {
        std::vector<std::vector<std::string>> rows;
        for (const auto& c : d->containers) rows.push_back({c->name, c->image, c->image_digest});
        out << "\n";
        print_table(out, {"CONTAINER", "IMAGE", "DIGEST"}, rows);
      }
      break;
    }
    case fb::Resource::Pattern: {
      const auto& p = *r.AsPattern();
      print_fields(out, {{"pattern", p.org + "/" + p.name},
                         {"label", p.label},
                         {"public", p.public_ ? "yes" : "no"}});
      std::vector<std::vector<std::string>> rows;
      for (const auto& s : p.services) {
        std::vector<std::string> vs;
        for (const auto& v : s->service_versions) vs.push_back(v->version);
        rows.push_back({s->service_org + "/" + s->service_url, s->service_arch, join(vs, ",")});
      }
      out << "\n";
      print_table(out, {"SERVICE", "ARCH", "VERSIONS"}, rows);
      break;
    }
    default:
      out << "(unknown resource)\n";
  }
}

std::vector<std::string> row_of(const fb::ResourceUnion& r) {
  switch (r.type) {
    case fb::Resource::Org:
      return {r.AsOrg()->name, r.AsOrg()->label, r.AsOrg()->description};
    case fb::Resource::User:
      return {r.AsUser()->org + "/" + r.AsUser()->username, r.AsUser()->admin ? "yes" : "no",
              r.AsUser()->email};
    case fb::Resource::Node: {
      const auto& n = *r.AsNode();
      return {n.org + "/" + n.id, n.arch, n.pattern, n.public_key.empty() ? "no" : "yes"};
    }
    case fb::Resource::Agbot:
      return {r.AsAgbot()->org + "/" + r.AsAgbot()->id,
              std::to_string(r.AsAgbot()->patterns.size())};
    case fb::Resource::Service: {
      const auto& s = *r.AsService();
      return {s.org + "/" + xc::service_id(s.url, s.version, s.arch), s.url, s.version, s.arch,
              std::string(sharing_name(s.sharable))};
    }
    case fb::Resource::Pattern:
      return {r.AsPattern()->org + "/" + r.AsPattern()->name, r.AsPattern()->label,
              std::to_string(r.AsPattern()->services.size())};
    default:
      return {};
  }
}

std::vector<std::string> head_of(fb::ResourceKind k) {
  switch (k) {
    case fb::ResourceKind::org:
      return {"ORG", "LABEL", "DESCRIPTION"};
    case fb::ResourceKind::user:
      return {"USER", "ADMIN", "EMAIL"};
    case fb::ResourceKind::node:
      return {"NODE", "ARCH", "PATTERN", "REGISTERED"};
    case fb::ResourceKind::agbot:
      return {"AGBOT", "PATTERNS"};
    case fb::ResourceKind::service:
      return {"SERVICE", "URL", "VERSION", "ARCH", "SHARABLE"};
    case fb::ResourceKind::pattern:
      return {"PATTERN", "LABEL", "SERVICES"};
    default:
      return {};
  }
}

// ---- the command tree --------------------------------------------------------------------------

class cli_app {
 public:
  cli_app(std::ostream& out, std::ostream& err) : out_(out), err_(err) {}

  int run(const std::vector<std::string>& args);

 private:
  void build(CLI::App& app);
  void add_resource_commands(CLI::App& parent, fb::ResourceKind kind, const std::string& noun);
  void add_key_commands(CLI::App& app);
  void add_rollout_commands(CLI::App& app);

  xc::credentials auth() {
    if (!conn_.node_auth.empty())
      return parse_auth(conn_.node_auth, fb::AuthKind::node, conn_.org, "-n/--node-auth");
    if (conn_.user_auth.empty()) {
      usage_error(
          "no credentials: give -u [org/]user:password (or HMQ_EXCHANGE_USER_AUTH), or -n "
          "node:token");
    }
    return parse_auth(conn_.user_auth, fb::AuthKind::user, conn_.org, "-u/--user-auth");
  }
  // The org a command works on: --org, else the org of the credentials.
  std::string target_org() {
    if (!conn_.org.empty()) return conn_.org;
    auto a = auth();
    return a.org;
  }
  // "org/id" or "id" (in target_org()).
  std::pair<std::string, std::string> qualified(const std::string& s) {
    if (s.find('/') != std::string::npos) {
      auto q = xc::split_qualified(s);
      if (!q) usage_error("'" + s + "': expected org/name or name");
      return {q->org, q->name};
    }
    return {target_org(), s};
  }
  session& connect() {
    if (!session_) session_ = std::make_unique<session>(conn_);
    return *session_;
  }
  void publish_upsert(const fb::ResourceUnion& r, const std::string& what);

  std::ostream& out_;
  std::ostream& err_;
  connection_opts conn_;
  std::function<void()> action_;
  // Set by the agent commands (register, agreement list, ...), which talk to the local agent.
  std::function<int()> agent_action_;
  std::unique_ptr<session> session_;
};

void cli_app::publish_upsert(const fb::ResourceUnion& r, const std::string& what) {
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

void cli_app::add_key_commands(CLI::App& app) {
  auto* key = app.add_subcommand("key", "Publisher signing keys (Ed25519)");
  key->require_subcommand(1);
  auto* create =
      key->add_subcommand("create", "Create an Ed25519 key pair for signing service deployments");
  auto dir = std::make_shared<std::string>(env_or("HOME", ".") + "/.hmq/keys");
  auto force = std::make_shared<bool>(false);
  create->add_option("-d,--directory", *dir, "Directory for the key files (created if needed)")
      ->capture_default_str();
  create->add_flag("-f,--force", *force, "Overwrite existing key files");
  create->callback([this, dir, force] {
    action_ = [this, dir, force] {
      std::filesystem::path d(*dir);
      std::error_code ec;
      std::filesystem::create_directories(d, ec);
      if (ec) usage_error("cannot create " + d.string() + ": " + ec.message());
      auto sk_path = d / signing_private_name, pk_path = d / signing_public_name;
      if (!*force && (std::filesystem::exists(sk_path) || std::filesystem::exists(pk_path))) {
        usage_error(sk_path.string() + " exists; use -f to overwrite");
      }
      if (*force) {
        std::filesystem::remove(sk_path, ec);
        std::filesystem::remove(pk_path, ec);
      }
      auto kp = crypto::sign_keypair::generate();
      must(crypto::write_key_file(sk_path, kp.sk.view(), true));
      must(crypto::write_key_file(pk_path, kp.pk, false));
      out_ << "Created signing key pair:\n  private: " << sk_path.string()
           << " (mode 0600)\n  public:  " << pk_path.string()
           << "\n  public key: " << crypto::to_base64(kp.pk) << "\n";
    };
  });
}

void cli_app::add_resource_commands(CLI::App& parent, fb::ResourceKind kind,
                                    const std::string& noun) {
  auto output = std::make_shared<std::string>("table");
  auto add_output = [output](CLI::App* c) {
    c->add_option("-o,--output", *output,
                  "Output format: table (for people) or json (for scripts); "
                  "use --org for the org after this subcommand")
        ->check(CLI::IsMember({"table", "json"}));
  };

  auto* list =
      parent.add_subcommand("list", "List " + noun + "s of the org (--org, else the org of -u)");
  add_output(list);
  list->callback([this, kind, output] {
    action_ = [this, kind, output] {
      auto org = kind == fb::ResourceKind::org ? std::string() : target_org();
      auto& s = connect();
      auto a = auth();
      auto items = s.run<std::vector<fb::ResourceUnion>>(
          [&](auto cb) { s.client().list_all_resources(a, kind, org, std::move(cb)); });
      if (*output == "json") {
        json arr = json::array();
        for (const auto& i : items) arr.push_back(resource_json(i));
        out_ << arr.dump(2) << "\n";
        return;
      }
      std::vector<std::vector<std::string>> rows;
      for (const auto& i : items) rows.push_back(row_of(i));
      print_table(out_, head_of(kind), rows);
    };
  });

  auto id = std::make_shared<std::string>();
  auto* get = parent.add_subcommand("get", "Show one " + noun);
  get->add_option("id", *id,
                  noun == "service" ? "Service: [org/]id (id = url_version_arch, as in hzn)"
                                    : "[org/]" + noun + " name")
      ->required();
  add_output(get);
  get->callback([this, kind, id, output] {
    action_ = [this, kind, id, output] {
      // Plain variables, not structured bindings: clang 14 (the fuzz preset) cannot capture those.
      auto key = kind == fb::ResourceKind::org ? std::make_pair(*id, *id) : qualified(*id);
      const std::string org = key.first, name = key.second;
      auto& s = connect();
      auto a = auth();
      auto r = s.run<fb::ResourceUnion>(
          [&](auto cb) { s.client().get_resource(a, kind, org, name, std::move(cb)); });
      if (*output == "json") {
        out_ << resource_json(r).dump(2) << "\n";
      } else {
        print_resource_detail(out_, r);
      }
    };
  });

  auto rid = std::make_shared<std::string>();
  auto* remove = parent.add_subcommand("remove", "Remove one " + noun);
  remove->add_option("id", *rid, "[org/]" + noun + " name")->required();
  remove->add_flag("-f,--force")
      ->description("Do not ask (accepted for hzn compatibility; hmq never asks)");
  remove->callback([this, kind, rid, noun] {
    action_ = [this, kind, rid, noun] {
      auto key = kind == fb::ResourceKind::org ? std::make_pair(*rid, *rid) : qualified(*rid);
      const std::string org = key.first, name = key.second;
      auto& s = connect();
      auto a = auth();
      s.run_void([&](xc::client::done cb) {
        s.client().delete_resource(a, kind, org, name, std::move(cb));
      });
      out_ << noun << " " << (kind == fb::ResourceKind::org ? name : org + "/" + name)
           << " removed\n";
    };
  });
}

void cli_app::build(CLI::App& app) {
  app.fallthrough();
  app.require_subcommand(1);
  // A command's output is its answer: bus chatter (connects, reconnects) only with -v.
  core::log::set_level("warn");
  auto verbose = std::make_shared<bool>(false);
  app.add_flag("-v,--verbose", *verbose, "Log bus activity to stderr")
      ->each([](const std::string&) { core::log::set_level("debug"); });

  add_key_commands(app);
  add_agent_commands(app, out_, err_,
                     [this](std::function<int()> f) { agent_action_ = std::move(f); });

  auto* ex = app.add_subcommand(
      "exchange", "Work with the exchange (orgs, users, nodes, agbots, services, patterns)");
  ex->require_subcommand(1);
  conn_.broker = env_or("HMQ_EXCHANGE", default_broker);
  conn_.exchange_key = env_or("HMQ_EXCHANGE_KEY", "");
  conn_.org = env_or("HMQ_ORG", "");
  conn_.user_auth = env_or("HMQ_EXCHANGE_USER_AUTH", "");
  conn_.node_auth = env_or("HMQ_EXCHANGE_NODE_AUTH", "");
  ex->add_option("--exchange", conn_.broker,
                 "Broker URI the exchange listens behind (env HMQ_EXCHANGE)")
      ->capture_default_str();
  ex->add_option("--exchange-key", conn_.exchange_key,
                 "The exchange's public key: base64 or hex, @FILE or a .pub file path (env "
                 "HMQ_EXCHANGE_KEY; hmq-exchange --print-public-key)");
  ex->add_option("-o,--org", conn_.org,
                 "Organization to work in (env HMQ_ORG); after list/get use --org");
  ex->add_option("-u,--user-auth", conn_.user_auth,
                 "User credentials [org/]user:password (env HMQ_EXCHANGE_USER_AUTH); the superuser "
                 "is root/root:PASSWORD");
  ex->add_option(
      "-n,--node-auth", conn_.node_auth,
      "Act as a node: [org/]node:token (env HMQ_EXCHANGE_NODE_AUTH); takes precedence over -u");
  ex->add_option("--timeout", conn_.timeout_s, "Seconds to wait for the broker and the exchange")
      ->capture_default_str();
  ex->add_option("--topic-prefix", conn_.topic_prefix, "Topic prefix of the deployment")
      ->capture_default_str();

  // status / version: any answer from the exchange (even a refusal) proves it is there.
  for (const char* name : {"status", "version"}) {
    auto* st = ex->add_subcommand(name, "Check that the broker and the exchange answer");
    st->callback([this] {
      action_ = [this] {
        auto& s = connect();
        xc::credentials a = conn_.user_auth.empty() && conn_.node_auth.empty()
                                ? xc::credentials::user("root", "anonymous", "-")
                                : auth();
        auto t0 = std::chrono::steady_clock::now();
        auto r = s.try_run<xc::resource_page>([&](xc::client::callback<xc::resource_page> cb) {
          s.client().list_resources(a, fb::ResourceKind::org, "", "", 1, std::move(cb));
        });
        auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                      .count();
        if (!r && !xc::is_refusal(r.code())) throw to_failure(r.err());
        std::ostringstream t;
        t.precision(3);
        t << ms;
        out_ << "exchange answered in " << t.str() << " ms through broker " << conn_.broker << "\n";
      };
    });
  }

  // org
  auto* org = ex->add_subcommand("org", "Organizations");
  org->require_subcommand(1);
  {
    auto name = std::make_shared<std::string>();
    auto label = std::make_shared<std::string>();
    auto desc = std::make_shared<std::string>();
    auto* c = org->add_subcommand("create", "Create an organization (superuser)");
    c->add_option("name", *name, "Organization id")->required();
    c->add_option("-l,--label", *label, "Label");
    c->add_option("-d,--description", *desc, "Description");
    c->callback([=, this] {
      action_ = [=, this] {
        fb::OrgT o;
        o.name = *name;
        o.label = label->empty() ? *name : *label;
        o.description = *desc;
        fb::ResourceUnion r;
        r.Set(std::move(o));
        auto& s = connect();
        auto a = auth();
        s.run_void([&](xc::client::done cb) { s.client().create_resource(a, r, std::move(cb)); });
        out_ << "org " << *name << " created\n";
      };
    });
    add_resource_commands(*org, fb::ResourceKind::org, "org");
  }

  // user
  auto* user = ex->add_subcommand("user", "Users of an organization");
  user->require_subcommand(1);
  {
    auto name = std::make_shared<std::string>();
    auto pw = std::make_shared<std::string>();
    auto email = std::make_shared<std::string>();
    auto admin = std::make_shared<bool>(false);
    auto* c =
        user->add_subcommand("create", "Create a user in the org (--org, else the org of -u)");
    c->add_option("user", *name, "User name")->required();
    c->add_option("password", *pw, "Password")->required();
    c->add_option("email", *email, "Email");
    c->add_flag("-A,--admin", *admin, "Make the user an org admin");
    c->callback([=, this] {
      action_ = [=, this] {
        fb::UserT u;
        u.org = target_org();
        u.username = *name;
        u.password = *pw;
        u.email = *email;
        u.admin = *admin;
        fb::ResourceUnion r;
        r.Set(u);
        auto& s = connect();
        auto a = auth();
        s.run_void([&](xc::client::done cb) { s.client().create_resource(a, r, std::move(cb)); });
        out_ << "user " << u.org << "/" << u.username << " created\n";
      };
    });
    add_resource_commands(*user, fb::ResourceKind::user, "user");
  }

  // node
  auto* node = ex->add_subcommand("node", "Edge nodes");
  node->require_subcommand(1);
  {
    auto id_tok = std::make_shared<std::string>();
    auto name = std::make_shared<std::string>();
    auto arch = std::make_shared<std::string>();
    auto* c = node->add_subcommand("create", "Create a node with its token (as a user of the org)");
    c->add_option("node", *id_tok, "node:token (hzn: -n node:token)")->required();
    c->add_option("--name", *name, "Node name (default: the node id)");
    c->add_option("--arch", *arch, "Node architecture, e.g. amd64");
    auto mailbox = std::make_shared<std::string>();
    c->add_option(
        "--mailbox", *mailbox,
        "The agent's mailbox id (hmq node status): the exchange provisions the node's broker "
        "identity now so the agent can connect before registering (docs/security.md)");
    c->callback([=, this] {
      action_ = [=, this] {
        fb::NodeT n;
        n.org = target_org();
        std::tie(n.id, n.token) = split_id_token(*id_tok, "node create", "node");
        n.name = name->empty() ? n.id : *name;
        n.arch = *arch;
        n.mailbox = *mailbox;
        fb::ResourceUnion r;
        r.Set(n);
        auto& s = connect();
        auto a = auth();
        s.run_void([&](xc::client::done cb) { s.client().create_resource(a, r, std::move(cb)); });
        out_ << "node " << n.org << "/" << n.id << " created\n";
      };
    });
    add_resource_commands(*node, fb::ResourceKind::node, "node");
  }
  {
    // The exchange's agreement records of one node (ListAgreements): what agents and agbots
    // recorded once an agreement was finalized.
    auto id = std::make_shared<std::string>();
    auto output = std::make_shared<std::string>("table");
    auto* c = node->add_subcommand("agreements", "Agreements the exchange records for a node");
    c->add_option("node", *id, "[org/]node")->required();
    c->add_option("-o,--output", *output, "Output format: table (for people) or json (for scripts)")
        ->check(CLI::IsMember({"table", "json"}));
    c->callback([=, this] {
      action_ = [=, this] {
        auto [org, nid] = qualified(*id);
        auto& s = connect();
        auto a = auth();
        auto recs = s.run<std::vector<fb::AgreementRecordT>>([&, org = org, nid = nid](auto cb) {
          s.client().list_agreements(a, org, nid, std::move(cb));
        });
        if (*output == "json") {
          json arr = json::array();
          for (const auto& r : recs) arr.push_back(agreement_record_json(r));
          out_ << arr.dump(2) << "\n";
          return;
        }
        if (recs.empty()) {
          out_ << "no agreements\n";
          return;
        }
        std::vector<std::vector<std::string>> rows;
        for (const auto& r : recs) {
          rows.push_back({r.agreement_id, fb::EnumNameAgreementState(r.state), r.pattern,
                          r.service_org + "/" + r.service_url + "@" + r.service_version, r.agbot,
                          utc_time(r.updated_ms)});
        }
        print_table(out_, {"ID", "STATE", "PATTERN", "SERVICE", "AGBOT", "UPDATED"}, rows);
      };
    });
  }

  {
    // The node's status as the exchange knows it: liveness from its heartbeats and the services
    // of its latest StatusReport.
    auto id = std::make_shared<std::string>();
    auto output = std::make_shared<std::string>("table");
    auto* c = node->add_subcommand(
        "status", "A node's liveness and service status (heartbeats, status reports)");
    c->add_option("node", *id, "[org/]node")->required();
    c->add_option("-o,--output", *output, "Output format: table (for people) or json (for scripts)")
        ->check(CLI::IsMember({"table", "json"}));
    c->callback([=, this] {
      action_ = [=, this] {
        auto [org, nid] = qualified(*id);
        auto& s = connect();
        auto a = auth();
        auto ns = s.run<fb::NodeStatusT>([&, org = org, nid = nid](auto cb) {
          s.client().get_node_status(a, org, nid, std::move(cb));
        });
        json services = json::array();
        if (ns.report)
          for (const auto& sv : ns.report->services)
            if (sv)
              services.push_back({{"agreement_id", sv->agreement_id},
                                  {"service_url", sv->service_url},
                                  {"service_version", sv->service_version},
                                  {"state", fb::EnumNameServiceState(sv->state)},
                                  {"restarts", sv->restarts},
                                  {"last_error", sv->last_error}});
        if (*output == "json") {
          json j{{"node", ns.node_org + "/" + ns.node_id},
                 {"online", ns.online},
                 {"last_heartbeat_ms", ns.last_heartbeat_ms},
                 {"running_agreements", ns.running_agreements},
                 {"reported_ms", ns.report ? ns.report->reported_ms : 0},
                 {"received_ms", ns.received_ms},
                 {"services", services}};
          out_ << j.dump(2) << "\n";
          return;
        }
        out_ << "node " << ns.node_org << "/" << ns.node_id << ": "
             << (ns.online ? "online" : "offline") << "\nlast heartbeat: "
             << (ns.last_heartbeat_ms ? utc_time(ns.last_heartbeat_ms) : std::string("never"))
             << "\nrunning agreements: " << ns.running_agreements << "\nstatus reported: "
             << (ns.received_ms ? utc_time(ns.received_ms) : std::string("never")) << "\n";
        if (services.empty()) {
          out_ << "no services reported\n";
          return;
        }
        std::vector<std::vector<std::string>> rows;
        for (const auto& sv : services)
          rows.push_back({sv["agreement_id"], sv["service_url"], sv["service_version"], sv["state"],
                          std::to_string(sv["restarts"].get<uint32_t>()),
                          sv["last_error"].get<std::string>().empty()
                              ? "-"
                              : sv["last_error"].get<std::string>()});
        print_table(out_, {"AGREEMENT", "SERVICE", "VERSION", "STATE", "RESTARTS", "LAST ERROR"},
                    rows);
      };
    });
  }
  add_rollout_commands(app);

  // agbot
  auto* agbot = ex->add_subcommand("agbot", "Agreement bots");
  agbot->require_subcommand(1);
  {
    auto id_tok = std::make_shared<std::string>();
    auto name = std::make_shared<std::string>();
    auto* c = agbot->add_subcommand("create", "Create an agbot with its token");
    c->add_option("agbot", *id_tok, "agbot:token")->required();
    c->add_option("--name", *name, "Agbot name (default: the agbot id)");
    auto mailbox = std::make_shared<std::string>();
    c->add_option("--mailbox", *mailbox,
                  "The agbot's mailbox id: provisions its broker identity now");
    c->callback([=, this] {
      action_ = [=, this] {
        fb::AgbotT ab;
        ab.org = target_org();
        std::tie(ab.id, ab.token) = split_id_token(*id_tok, "agbot create", "agbot");
        ab.name = name->empty() ? ab.id : *name;
        ab.mailbox = *mailbox;
        fb::ResourceUnion r;
        r.Set(ab);
        auto& s = connect();
        auto a = auth();
        s.run_void([&](xc::client::done cb) { s.client().create_resource(a, r, std::move(cb)); });
        out_ << "agbot " << ab.org << "/" << ab.id << " created\n";
      };
    });
    add_resource_commands(*agbot, fb::ResourceKind::agbot, "agbot");
    for (bool add : {true, false}) {
      auto ag = std::make_shared<std::string>();
      auto porg = std::make_shared<std::string>();
      auto pat = std::make_shared<std::string>();
      auto norg = std::make_shared<std::string>();
      auto* p = agbot->add_subcommand(
          add ? "addpattern" : "removepattern",
          add ? "Let the agbot serve a pattern" : "Stop the agbot serving a pattern");
      p->add_option("agbot", *ag, "[org/]agbot")->required();
      p->add_option("patternorg", *porg, "Org of the pattern")->required();
      p->add_option("pattern", *pat, "Pattern name")->required();
      p->add_option("nodeorg", *norg, "Org of the nodes to serve (default: the pattern org)");
      p->callback([=, this] {
        action_ = [=, this] {
          auto [aorg, aid] = qualified(*ag);
          fb::AgbotPatternT ap;
          ap.pattern_org = *porg;
          ap.pattern = *pat;
          ap.node_org = norg->empty() ? *porg : *norg;
          auto& s = connect();
          auto a = auth();
          s.run_void([&, aorg = aorg, aid = aid](xc::client::done cb) {
            if (add) {
              s.client().agbot_add_pattern(a, aorg, aid, ap, std::move(cb));
            } else {
              s.client().agbot_remove_pattern(a, aorg, aid, ap, std::move(cb));
            }
          });
          out_ << "agbot " << aorg << "/" << aid << (add ? " serves " : " no longer serves ")
               << ap.pattern_org << "/" << ap.pattern << "\n";
        };
      });
    }
  }

  // service
  auto* service = ex->add_subcommand("service", "Services (Horizon service definition files)");
  service->require_subcommand(1);
  {
    auto file = std::make_shared<std::string>();
    auto sk = std::make_shared<std::string>();
    auto pk = std::make_shared<std::string>();
    auto regs = std::make_shared<std::vector<std::string>>();
    auto no_resolve = std::make_shared<bool>(false);
    auto* c =
        service->add_subcommand("publish", "Sign and publish a Horizon service definition file");
    c->add_option("-f,--json-file", *file,
                  "Service definition file (Horizon format; $VAR substituted)")
        ->required();
    c->add_option("-k,--private-key-file", *sk,
                  "Ed25519 private key for the deployment signature (default ~/.hmq/keys/" +
                      std::string(signing_private_name) + ")");
    c->add_option("-K,--public-key-file", *pk, "Its public key (checked against the private key)");
    c->add_option(
        "-r,--registry-token", *regs,
        "registry:user:token for pulling the images; repeatable; also used to resolve digests");
    c->add_flag("--no-resolve", *no_resolve,
                "Refuse images without a digest instead of asking the registry");
    c->callback([=, this] {
      action_ = [=, this] {
        auto text = must(read_text_file(*file));
        auto parsed = must(parse_service(text, std::filesystem::path(*file).filename().string()));
        for (const auto& w : parsed.warnings) err_ << "warning: " << w << "\n";
        auto& svc = parsed.service;
        if (svc.org.empty()) svc.org = target_org();

        std::vector<registry_credentials> creds;
        for (const auto& r : *regs) creds.push_back(must(parse_registry_flag(r)));
        auto docker = load_docker_config(default_docker_config_path());
        if (docker) {
          for (auto& c : *docker) creds.push_back(std::move(c));
        } else {
          err_ << "warning: " << docker.err().detail << "\n";
        }
        for (auto& ct : parsed.deployment.containers) {
          if (!ct->image_digest.empty()) continue;
          if (*no_resolve)
            usage_error("image '" + ct->image + "' has no digest and --no-resolve was given");
          ct->image_digest = must(resolve_digest(ct->image, creds));
          err_ << "resolved " << ct->image << " -> " << ct->image_digest << "\n";
        }

        std::string sk_path =
            sk->empty() ? env_or("HOME", ".") + "/.hmq/keys/" + signing_private_name : *sk;
        auto secret = crypto::read_secret_key_file(sk_path);
        if (!secret)
          usage_error("signing key " + sk_path + ": " + secret.err().message() +
                      " (create one with: hmq key create)");
        auto kp = crypto::sign_keypair::from_secret(secret->view());
        if (!kp) usage_error("signing key " + sk_path + ": " + kp.err().message());
        if (!pk->empty()) {
          auto pub = crypto::read_public_key_file(*pk);
          if (!pub) usage_error("public key " + *pk + ": " + pub.err().message());
          if (!crypto::equal(*pub, kp->pk))
            usage_error("public key " + *pk + " does not belong to " + sk_path);
        }
        svc.deployment = serialize_deployment(parsed.deployment);
        auto sig = crypto::sign_detached(svc.deployment, kp->sk);
        svc.deployment_signature.assign(sig.begin(), sig.end());
        svc.publisher_key.assign(kp->pk.begin(), kp->pk.end());
        for (const auto& cr : creds) {
          // Only the credentials given with -r travel to nodes, never the local docker login.
          if (std::none_of(regs->begin(), regs->end(), [&](const std::string& r) {
                return r.rfind(cr.registry + ":", 0) == 0;
              })) {
            continue;
          }
          auto d = std::make_unique<fb::DockAuthT>();
          d->registry = cr.registry;
          d->username = cr.username;
          d->token = cr.token;
          svc.dockauths.push_back(std::move(d));
        }
        std::string what =
            "service " + svc.org + "/" + xc::service_id(svc.url, svc.version, svc.arch);
        fb::ResourceUnion r;
        r.Set(std::move(svc));
        publish_upsert(r, what);
      };
    });
    add_resource_commands(*service, fb::ResourceKind::service, "service");
  }

  // pattern
  auto* pattern = ex->add_subcommand("pattern", "Deployment patterns (Horizon pattern files)");
  pattern->require_subcommand(1);
  {
    auto file = std::make_shared<std::string>();
    auto name = std::make_shared<std::string>();
    auto* c = pattern->add_subcommand("publish", "Publish a Horizon pattern file");
    c->add_option("-f,--json-file", *file, "Pattern file (Horizon format; $VAR substituted)")
        ->required();
    c->add_option("-p,--pattern-id", *name, "Pattern name (default: the file's name field)");
    c->callback([=, this] {
      action_ = [=, this] {
        auto text = must(read_text_file(*file));
        auto source = std::filesystem::path(*file).filename().string();
        auto parsed = must(parse_pattern(text, source));
        for (const auto& w : parsed.warnings) err_ << "warning: " << w << "\n";
        auto& p = parsed.pattern;
        if (!name->empty()) p.name = *name;
        if (p.name.empty())
          usage_error(source + ": missing required field 'name' (or give -p NAME)");
        if (p.org.empty()) p.org = target_org();
        std::string what = "pattern " + p.org + "/" + p.name;
        fb::ResourceUnion r;
        r.Set(std::move(p));
        publish_upsert(r, what);
      };
    });
    add_resource_commands(*pattern, fb::ResourceKind::pattern, "pattern");
  }
}

int cli_app::run(const std::vector<std::string>& args) {
  CLI::App app("hmq: command line for Horizon-MQ (modelled on Open Horizon's hzn)", "hmq");
  build(app);
  std::vector<std::string> rev(args.rbegin(), args.rend());
  if (!rev.empty()) rev.pop_back();  // program name
  try {
    app.parse(rev);
  } catch (const CLI::CallForHelp& e) {
    out_ << app.help();
    return exit_ok;
  } catch (const CLI::CallForAllHelp& e) {
    out_ << app.help("", CLI::AppFormatMode::All);
    return exit_ok;
  } catch (const CLI::ParseError& e) {
    // Help of the subcommand that failed, when we know which one it was.
    err_ << "hmq: error: " << e.what() << "\n(run with --help for usage)\n";
    return exit_usage;
  }
  if (agent_action_) return agent_action_();
  if (!action_) {
    err_ << app.help();
    return exit_usage;
  }
  try {
    action_();
  } catch (const failure& f) {
    session_.reset();
    err_ << "hmq: error: " << f.message << "\n";
    return f.code;
  }
  session_.reset();
  return exit_ok;
}
}  // namespace

namespace {

// `hmq rollout status ORG/PATTERN [--watch] [-o json]`: what agbots published about the
// pattern's upgrades (PutRolloutStatus), read from the exchange so it works from anywhere.
void cli_app::add_rollout_commands(CLI::App& app) {
  auto* ro = app.add_subcommand("rollout", "Pattern upgrades rolled out by the agbots");
  ro->require_subcommand(1);
  auto pattern = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>("table");
  auto watch = std::make_shared<bool>(false);
  auto interval = std::make_shared<double>(1.0);
  auto target = std::make_shared<std::string>();
  auto* st =
      ro->add_subcommand("status", "Per version: nodes upgraded, in progress, failed, rolled back");
  st->add_option("pattern", *pattern, "[org/]pattern")->required();
  st->add_option("-o,--output", *output, "Output format: table (for people) or json (for scripts)")
      ->check(CLI::IsMember({"table", "json"}));
  st->add_flag(
      "-w,--watch", *watch,
      "Follow the rollout with a progress bar until it completes (exit 0) or halts (exit 4)");
  st->add_option(
      "--target", *target,
      "Only rollouts to this version (with --watch: wait for it to start, so a rollout that "
      "just finished is not mistaken for the one you published)");
  st->add_option("--interval", *interval, "Seconds between refreshes with --watch")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  // The same connection options as `hmq exchange` (and the same environment variables).
  st->add_option("--exchange", conn_.broker,
                 "Broker URI the exchange listens behind (env HMQ_EXCHANGE)");
  st->add_option("--exchange-key", conn_.exchange_key,
                 "The exchange's public key: base64 or hex, @FILE or a .pub file path (env "
                 "HMQ_EXCHANGE_KEY; hmq-exchange --print-public-key)");
  st->add_option("--org", conn_.org,
                 "Organization of the pattern when it is not qualified (env HMQ_ORG)");
  st->add_option("-u,--user-auth", conn_.user_auth,
                 "User credentials [org/]user:password (env HMQ_EXCHANGE_USER_AUTH)");
  st->add_option("-n,--node-auth", conn_.node_auth,
                 "Act as a node: [org/]node:token (env HMQ_EXCHANGE_NODE_AUTH)");
  st->add_option("--timeout", conn_.timeout_s, "Seconds to wait for the broker and the exchange");
  st->add_option("--topic-prefix", conn_.topic_prefix, "Topic prefix of the deployment");
  st->callback([=, this] {
    action_ = [=, this] {
      auto [org, name] = qualified(*pattern);
      auto& s = connect();
      auto a = auth();
      auto fetch = [&, org = org, name = name] {
        auto all = s.run<std::vector<fb::RolloutStatusT>>(
            [&](auto cb) { s.client().get_rollout_status(a, org, name, std::move(cb)); });
        if (!target->empty())
          std::erase_if(all,
                        [&](const fb::RolloutStatusT& r) { return r.target_version != *target; });
        return all;
      };
      if (!*watch) {
        auto all = fetch();
        if (*output == "json")
          out_ << rollout_json(all).dump(2) << "\n";
        else if (all.empty())
          out_ << "no rollout for pattern " << org << "/" << name << "\n";
        else
          out_ << rollout_table(all);
        return;
      }
      // --watch: redraw in place on a terminal, one line per change otherwise (logs, pipes).
      const bool tty = &out_ == &std::cout && ::isatty(STDOUT_FILENO) == 1;
      std::vector<std::string> last;
      size_t drawn = 0;
      for (;;) {
        auto all = fetch();
        std::vector<std::string> lines;
        if (*output == "json") {
          lines.push_back(rollout_json(all).dump());
        } else if (all.empty()) {
          lines.push_back("waiting for a rollout of " + org + "/" + name +
                          (target->empty() ? std::string() : " to " + *target) + " ...");
        } else {
          for (const auto& r : all) lines.push_back(rollout_progress_line(r));
        }
        if (lines != last) {
          if (tty && drawn > 0) out_ << "\x1b[" << drawn << "F";  // back to the first line drawn
          for (const auto& l : lines) out_ << (tty ? "\x1b[2K" : "") << l << "\n";
          out_.flush();
          drawn = lines.size();
          last = lines;
        }
        if (rollouts_settled(all)) {
          if (any_halted(all))
            throw failure{exit_halted, "rollout halted: its failure limit was reached"};
          return;
        }
        std::this_thread::sleep_for(
            std::chrono::milliseconds(static_cast<int64_t>(*interval * 1000)));
      }
    };
  });
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cli_app app(out, err);
  return app.run(args);
}

}  // namespace hmq::cli
