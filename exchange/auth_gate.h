#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "core/loop/worker_pool.h"
#include "exchange/auth.h"
#include "exchange/db.h"
#include "exchange/rpc_error.h"

// The door in front of the service (docs/security.md "Authentication floods"): the credentials
// of every RpcRequest are judged here first, so a flood of wrong secrets can neither stall the
// loop thread nor tell an attacker which principals exist.
//  - A secret verified before (credential_cache::hit) goes on at once: no Argon2id, no budget.
//  - Failed attempts are budgeted per principal and per sender key, before any hashing: after
//    `free_failures` failures each further one doubles the wait (from `backoff`, at most
//    `max_backoff`); meanwhile attempts are refused with RpcStatus rate_limited, "too many
//    failed attempts for user acme/bob: retry in N s", and counted.
//  - Anything else is verified by a worker (core/loop/worker_pool.h): against the stored hash,
//    or against a dummy hash of the same strength for a principal that does not exist, so
//    neither the answer nor its time says who exists. A full queue is refused with
//    RpcStatus unavailable ("busy"), counted.
//  - Identical attempts in flight (same principal, same secret) share one verification and go
//    on in the order they came.
//
// Thread contract: loop thread only; the workers see copies of one hash and one secret.
namespace hmq::exchange {

struct auth_gate_options {
  size_t threads = 2;      // Argon2id verifications at once (interactive: 64 MiB each)
  size_t max_queued = 64;  // verifications waiting for a worker; more are refused as busy
  uint32_t free_failures = 5;
  std::chrono::milliseconds backoff{1000};
  std::chrono::milliseconds max_backoff{std::chrono::minutes(5)};
  // A principal's or sender's failures are forgotten after this long without one.
  std::chrono::milliseconds forget_after{std::chrono::minutes(15)};
  size_t max_tracked = 100'000;  // budgets kept; the expired go first when full
};

struct auth_gate_stats {
  uint64_t cached = 0;              // passed on a remembered secret
  uint64_t verified = 0;            // passed after a worker's verification
  uint64_t failed = 0;              // refused: wrong secret or unknown principal
  uint64_t unknown_principals = 0;  // of which the principal does not exist
  uint64_t refused_backoff = 0;     // refused before hashing: the budget is spent
  uint64_t refused_busy = 0;        // refused: the workers' queue was full
  uint64_t coalesced = 0;           // waited for an identical attempt's verification
};

class auth_gate {
 public:
  using on_pass = std::function<void()>;
  // `inbox`: the claimed user's inbox when that user exists (the refusal goes there when the
  // request asked for it, as answers do), else "".
  using on_refuse = std::function<void(const rpc_error&, const std::string& inbox)>;

  auth_gate(core::loop::scheduler& loop, db& store, credential_cache& cache,
            core::crypto::hash_strength strength, auth_gate_options o = {});

  // Exactly one of pass / refuse runs, now or later on the loop thread. A request the gate
  // cannot judge (no credentials, malformed ones) passes: the service refuses it cheaply.
  void check(const core::crypto::public_key& sender, const fb::Auth* auth, on_pass pass,
             on_refuse refuse);

  const auth_gate_stats& stats() const { return stats_; }
  size_t tracked() const { return budgets_.size(); }
  size_t queued() const { return pool_ ? pool_->queued() : 0; }

 private:
  struct budget {
    uint32_t failures = 0;
    int64_t until_ms = 0;  // refused before this
    int64_t last_ms = 0;   // last failure
  };
  struct waiter {
    std::string sender_key;
    on_pass pass;
    on_refuse refuse;
  };
  struct attempt {
    std::string who;  // "user acme/bob"
    std::string principal_key;
    std::string stored_hash;  // "" for an unknown principal
    std::string inbox;
    std::string secret;
    std::vector<waiter> waiters;
  };

  int64_t wait_ms(const std::string& key, int64_t now) const;
  void failure(const std::string& key, int64_t now);
  void prune(int64_t now);
  void finish(const std::string& flight, bool ok);

  core::loop::scheduler& loop_;
  db& db_;
  credential_cache& cache_;
  const auth_gate_options o_;
  std::string dummy_hash_;
  auth_gate_stats stats_;
  std::unordered_map<std::string, budget> budgets_;
  std::unordered_map<std::string, attempt> in_flight_;
  std::unique_ptr<core::loop::worker_pool> pool_;  // last: its threads stop first
};

}  // namespace hmq::exchange
