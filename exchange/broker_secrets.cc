// Broker passwords the exchange keeps (schema v6, docs/security.md "Crash-safe broker
// administration"): derived for nodes and agbots from their tokens, stored sealed to the
// exchange's own key in the request's transaction, and read back to create again an identity
// the broker lost.
#include "core/bus/credentials.h"
#include "core/log/log.h"
#include "exchange/service.h"
#include "exchange_client/ids.h"

namespace hmq::exchange {

namespace crypto = core::crypto;

namespace {

constexpr std::string_view sealed_prefix = "sealed:";

const std::shared_ptr<spdlog::logger>& logger() {
  static const auto l = core::log::get("exchange");
  return l;
}

}  // namespace

std::string service::seal_secret(std::string_view plain) const {
  if (plain.empty()) return {};
  auto n = crypto::random_nonce();
  auto boxed = crypto::box_seal({reinterpret_cast<const uint8_t*>(plain.data()), plain.size()}, n,
                                self_.pk, self_.sk);
  std::vector<uint8_t> all(n.begin(), n.end());
  all.insert(all.end(), boxed.begin(), boxed.end());
  return std::string(sealed_prefix) + crypto::to_base64(all);
}

std::string service::open_secret(std::string_view stored) const {
  if (stored.substr(0, sealed_prefix.size()) != sealed_prefix) return {};
  auto raw = crypto::from_base64(stored.substr(sealed_prefix.size()));
  if (!raw || raw->size() < crypto::nonce_size + crypto::mac_size) return {};
  crypto::nonce n;
  std::copy_n(raw->begin(), crypto::nonce_size, n.begin());
  auto plain = crypto::box_open(std::span(*raw).subspan(crypto::nonce_size), n, self_.pk, self_.sk);
  if (!plain) return {};
  return std::string(plain->begin(), plain->end());
}

void service::keep_broker_secrets(std::vector<broker_change>& changes) {
  for (auto it = changes.begin(); it != changes.end();) {
    broker_change& c = *it;
    if (c.what == broker_change::action::remove) {
      if (auto r = db_.broker_secret_delete(c.username); !r) ++broker_secret_failures_;
      ++it;
      continue;
    }
    const bool sets_password =
        c.what == broker_change::action::ensure || c.what == broker_change::action::set_password;
    if (!sets_password) {
      ++it;
      continue;
    }
    if (!c.token.empty()) {
      // Unchanged token since the kept secret was derived: no Argon2id on this request.
      auto kept = db_.broker_secret_get(c.username);
      if (!kept) ++broker_secret_failures_;
      if (kept && *kept && !c.secret_of.empty() && (*kept)->secret_of == c.secret_of)
        c.password = open_secret((*kept)->sealed);
      if (c.password.empty()) {
        auto pw = core::bus::derive_machine_password(c.username, c.token);
        ++broker_derivations_;
        if (!pw) {
          // Not provisioned now; the next start reports it missing.
          logger()->error("broker identity {}: cannot derive its password: {}", c.username,
                          pw.err().message());
          ++broker_secret_failures_;
          it = changes.erase(it);
          continue;
        }
        c.password = std::move(*pw);
      }
      c.token.clear();
    }
    if (!c.password.empty()) {
      broker_secret b{c.kind, seal_secret(c.password), c.secret_of};
      if (auto r = db_.broker_secret_put(c.username, b); !r) {
        logger()->warn("broker identity {}: secret not kept ({}): it cannot be created again",
                       c.username, r.err().message());
        ++broker_secret_failures_;
      }
    }
    ++it;
  }
}

result<std::vector<broker_change>> service::kept_identities(
    const std::set<std::string>& usernames) {
  std::vector<broker_change> out;
  for (const auto& name : usernames) {
    auto kept = db_.broker_secret_get(name);
    if (!kept) return kept.err();
    if (!*kept) continue;
    auto password = open_secret((*kept)->sealed);
    if (password.empty()) {
      ++broker_secret_failures_;
      logger()->warn("broker identity {}: its kept secret does not open with this exchange key",
                     name);
      continue;
    }
    broker_change c = party_broker_change(broker_change::action::ensure, (*kept)->kind, name);
    c.password = std::move(password);
    if (c.kind == fb::AuthKind::user) {
      // A user's role follows its current inbox and recorder flag.
      const auto who = exchange_client::split_qualified(name);
      if (!who) continue;
      const std::string &org = who->org, &id = who->name;
      auto cred = db_.credential_of(fb::AuthKind::user, org, id);
      if (!cred) return cred.err();
      if (!*cred || (*cred)->inbox.empty()) continue;
      c.inbox = (*cred)->inbox;
      auto u = db_.load<fb::User>(table::users, org, id);
      c.recorder = u && u->recorder;
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace hmq::exchange
