#include "cli/session.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "cli/commands.h"
#include "cli/registry.h"
#include "core/bus/client.h"
#include "core/bus/credentials.h"
#include "core/bus/messenger.h"
#include "core/wire/codec.h"
#include "exchange_client/ids.h"

namespace hmq::cli {

namespace {

namespace crypto = core::crypto;
namespace xc = ::hmq::exchange_client;

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

std::string trim(std::string s) {
  auto ws = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (!s.empty() && ws(s.back())) s.pop_back();
  size_t i = 0;
  while (i < s.size() && ws(s[i])) ++i;
  return s.substr(i);
}

}  // namespace

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

void must(result<void> r) {
  if (!r) throw to_failure(r.err());
}

[[noreturn]] void usage_error(std::string msg) {
  throw failure{exit_usage, std::move(msg)};
}

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::pair<std::string, std::string> split_id_token(const std::string& s, std::string_view command,
                                                   std::string_view what) {
  auto colon = s.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    usage_error(std::string(command) + ": expected " + std::string(what) + ":token");
  return {s.substr(0, colon), s.substr(colon + 1)};
}

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

namespace {

// One broker session per exchange user: the broker makes the username the client id
// (docs/security.md "Client ids, retained messages and queues"), so a second hmq command of the
// same user would take the first one's session over and both would lose their answers. On one
// machine they take turns instead: an exclusive flock on ~/.hmq/run/<hash of the user>.lock,
// held until the command ends. -1 (no lock, as before) when the file cannot be made.
int take_user_lock(const std::string& username) {
  const std::string dir = env_or("HOME", ".") + "/.hmq/run";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const auto h = crypto::to_hex(crypto::generic_hash(
      {reinterpret_cast<const uint8_t*>(username.data()), username.size()}, 8));
  const std::string path = dir + "/" + h + ".lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
  if (errno != EWOULDBLOCK) {
    ::close(fd);
    return -1;
  }
  std::fprintf(stderr,
               "hmq: waiting for another hmq command of %s on this machine to finish (one broker "
               "session per user)\n",
               username.c_str());
  int r;
  do {
    r = ::flock(fd, LOCK_EX);
  } while (r != 0 && errno == EINTR);
  if (r != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

session::session(const connection_opts& o) : opts_(o), keys_(crypto::box_keypair::generate()) {
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
  // Broker identity (docs/security.md "Operator identities"): the exchange user's own, derived
  // from -u; HMQ_MQTT_USER + HMQ_MQTT_PASSWORD_FILE name another one; HMQ_CA_FILE for TLS.
  std::optional<core::bus::user_identity> me;
  if (!o.user_auth.empty()) {
    auto c = parse_auth(o.user_auth, fb::AuthKind::user, o.org, "-u/--user-auth");
    auto id = core::bus::derive_user_identity(c.org, c.id, c.secret);
    if (!id) throw failure{exit_usage, "broker identity: " + id.err().message()};
    me = std::move(*id);
    bo.username = me->username;
    bo.password = me->password;
  }
  {
    core::bus::credentials_flags cf;
    if (const char* v = std::getenv("HMQ_MQTT_USER")) cf.user = v;
    if (const char* v = std::getenv("HMQ_MQTT_PASSWORD_FILE")) cf.password_file = v;
    if (const char* v = std::getenv("HMQ_CA_FILE")) cf.ca_file = v;
    if (auto r = core::bus::apply_credentials(bo, cf); !r)
      throw failure{exit_unreachable, "broker credentials: " + r.err().message()};
  }
  if (!bo.username.empty()) user_lock_fd_ = take_user_lock(bo.username);
  bus_ = std::make_unique<core::bus::client>(loop_, bo);
  core::bus::topics t;
  t.prefix = o.topic_prefix;
  messenger_ = std::make_unique<core::bus::messenger>(loop_, *bus_, *codec_, t);
  // Answers to the user's inbox; a user created before inboxes is answered on the mailbox
  // (which only a broker without identities lets it read).
  if (me) messenger_->listen_inbox(me->inbox);
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
    std::string hint = "check HMQ_EXCHANGE / --exchange and that the broker runs";
    if (!bo.username.empty() && connected.err().message().find("authori") != std::string::npos)
      hint = "the broker refused " + bo.username +
             ": a wrong password, or a user without a broker identity yet (an admin sets its "
             "password again)";
    throw failure{exit_unreachable, "cannot connect to the broker at " + o.broker + ": " +
                                        connected.err().message() + "\nhint: " + hint};
  }
  started_ = true;
}

session::~session() {
  if (started_) messenger_->stop();
  if (bus_) bus_->stop();
  if (user_lock_fd_ >= 0) ::close(user_lock_fd_);
}

}  // namespace hmq::cli
