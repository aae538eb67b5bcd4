#include "exchange/auth_gate.h"

#include <algorithm>
#include <utility>

#include "exchange/validate.h"

namespace hmq::exchange {

namespace crypto = core::crypto;

namespace {

std::string seconds_text(int64_t ms) {
  return std::to_string(std::max<int64_t>(1, (ms + 999) / 1000)) + " s";
}

}  // namespace

auth_gate::auth_gate(core::loop::scheduler& loop, db& store, credential_cache& cache,
                     crypto::hash_strength strength, auth_gate_options o)
    : loop_(loop), db_(store), cache_(cache), o_(o) {
  // A hash of a random secret nobody knows, at the strength real ones have: verifying an
  // unknown principal costs what verifying a known one does.
  crypto::bytes rnd(32);
  crypto::random_bytes(rnd);
  auto h = crypto::hash_password(crypto::to_hex(rnd), strength);
  if (h) dummy_hash_ = std::move(*h);
  pool_ = std::make_unique<core::loop::worker_pool>(loop, o_.threads, o_.max_queued);
}

int64_t auth_gate::wait_ms(const std::string& key, int64_t now) const {
  auto it = budgets_.find(key);
  if (it == budgets_.end() || it->second.until_ms <= now) return 0;
  return it->second.until_ms - now;
}

void auth_gate::prune(int64_t now) {
  const int64_t forget = o_.forget_after.count();
  for (auto it = budgets_.begin(); it != budgets_.end();) {
    if (it->second.until_ms <= now && it->second.last_ms + forget <= now)
      it = budgets_.erase(it);
    else
      ++it;
  }
}

void auth_gate::failure(const std::string& key, int64_t now) {
  auto it = budgets_.find(key);
  if (it == budgets_.end()) {
    if (budgets_.size() >= o_.max_tracked) prune(now);
    // Still full of live budgets: this one is not tracked (the workers' bound still holds).
    if (budgets_.size() >= o_.max_tracked) return;
    it = budgets_.emplace(key, budget{}).first;
  }
  budget& b = it->second;
  if (now - b.last_ms >= o_.forget_after.count()) b.failures = 0;
  b.last_ms = now;
  if (++b.failures <= o_.free_failures) return;
  const uint32_t doublings = std::min<uint32_t>(b.failures - o_.free_failures - 1, 20);
  const int64_t wait =
      std::min<int64_t>(o_.max_backoff.count(), o_.backoff.count() * (int64_t{1} << doublings));
  b.until_ms = now + wait;
}

void auth_gate::check(const crypto::public_key& sender, const fb::Auth* a, on_pass pass,
                      on_refuse refuse) {
  if (!a) return pass();
  const auto kind = a->kind();
  std::string org = str(a->org()), id = str(a->id()), secret = str(a->secret());
  if ((kind != fb::AuthKind::user && kind != fb::AuthKind::node && kind != fb::AuthKind::agbot) ||
      org.empty() || id.empty() || secret.empty() || org.size() > max_id || id.size() > max_id ||
      secret.size() > max_secret)
    return pass();  // the service's own refusal, no hashing
  auto cred = db_.credential_of(kind, org, id);
  if (!cred) return pass();  // the service reports the store error
  const std::string principal_key = credential_cache::key_of(kind, org, id);
  const std::string inbox = *cred && kind == fb::AuthKind::user ? (*cred)->inbox : std::string();
  if (*cred && cache_.hit(principal_key, (*cred)->hash, secret)) {
    ++stats_.cached;
    return pass();
  }

  const std::string who = std::string(auth_name(kind)) + " " + org + "/" + id;
  const std::string sender_key = "s:" + crypto::to_hex(sender);
  const int64_t now = loop_.time().now_ms();
  const int64_t wait = std::max(wait_ms("p:" + principal_key, now), wait_ms(sender_key, now));
  if (wait > 0) {
    ++stats_.refused_backoff;
    return refuse({fb::RpcStatus::rate_limited,
                   "too many failed attempts for " + who + ": retry in " + seconds_text(wait),
                   {}},
                  inbox);
  }

  // One verification per distinct attempt in flight.
  const std::string flight = principal_key + "|" + crypto::to_hex(cache_.mac_of(secret));
  if (auto it = in_flight_.find(flight); it != in_flight_.end()) {
    ++stats_.coalesced;
    it->second.waiters.push_back({sender_key, std::move(pass), std::move(refuse)});
    return;
  }
  std::string hash = *cred ? (*cred)->hash : dummy_hash_;
  const bool submitted = pool_->submit([this, flight, hash, secret]() -> std::function<void()> {
    const bool ok = !hash.empty() && crypto::verify_password(hash, secret);
    return [this, flight, ok] { finish(flight, ok); };
  });
  if (!submitted) {
    ++stats_.refused_busy;
    return refuse({fb::RpcStatus::unavailable,
                   "the exchange is busy checking credentials: retry in a second",
                   {}},
                  inbox);
  }
  attempt& at = in_flight_[flight];
  at.who = who;
  at.principal_key = principal_key;
  at.stored_hash = *cred ? (*cred)->hash : std::string();
  at.inbox = inbox;
  at.secret = std::move(secret);
  at.waiters.push_back({sender_key, std::move(pass), std::move(refuse)});
}

void auth_gate::finish(const std::string& flight, bool ok) {
  auto node = in_flight_.extract(flight);
  if (node.empty()) return;
  attempt& at = node.mapped();
  const bool known = !at.stored_hash.empty();
  if (ok && known) {
    cache_.remember(at.principal_key, at.stored_hash, at.secret);
    budgets_.erase("p:" + at.principal_key);
    for (auto& w : at.waiters) {
      budgets_.erase(w.sender_key);
      ++stats_.verified;
      w.pass();
    }
    return;
  }
  const int64_t now = loop_.time().now_ms();
  failure("p:" + at.principal_key, now);
  const rpc_error bad{fb::RpcStatus::unauthorized, "bad credentials for " + at.who, {}};
  for (auto& w : at.waiters) {
    failure(w.sender_key, now);
    ++stats_.failed;
    if (!known) ++stats_.unknown_principals;
    w.refuse(bad, at.inbox);
  }
}

}  // namespace hmq::exchange
