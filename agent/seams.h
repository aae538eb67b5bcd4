#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"
#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "schema/message_generated.h"

// The agent's I/O seams: everything the agreement engine does to the outside world goes through
// one of these three interfaces, so the engine is unit-tested with fakes and the daemon plugs in
// adapters over the exchange client, the messenger and (later) the Docker runtime.
namespace hmq::agent {

namespace fb = ::hmq::wire::fb;
namespace crypto = ::hmq::core::crypto;
using core::result;

using done_fn = std::function<void(result<void>)>;

// The node's exchange identity: every node RPC is authenticated with the node token.
struct node_identity {
  std::string org;
  std::string id;
  std::string token;
};

// What RegisterNode sends; the node's key is the sender key of the sealed request.
struct node_registration {
  node_identity node;
  std::string pattern;  // "org/pattern"
  std::string arch;     // Horizon name: amd64, arm64, arm, ...
  std::vector<fb::ServiceUserInputT> user_inputs;
};

// The exchange calls the agent makes. Callbacks run once, on the loop thread.
class exchange_api {
 public:
  virtual ~exchange_api() = default;
  virtual void register_node(const node_registration& r, done_fn cb) = 0;
  virtual void unregister_node(const node_identity& n, done_fn cb) = 0;
  virtual void put_agreement(const node_identity& n, const fb::AgreementRecordT& rec,
                             done_fn cb) = 0;
  // A record that is already gone counts as success (the caller wants it gone).
  virtual void delete_agreement(const node_identity& n, const std::string& agreement_id,
                                done_fn cb) = 0;
  // The switchboard key of agbot "org/id": proposals are accepted only from that key.
  virtual void get_agbot_key(const node_identity& n, const std::string& org, const std::string& id,
                             std::function<void(result<crypto::public_key>)> cb) = 0;
  // Pattern "org/name" as the exchange holds it (a node may read the pattern it registered
  // for): the agent checks that a proposal's top-level service and version are in it.
  virtual void get_pattern(const node_identity& n, const std::string& org, const std::string& name,
                           std::function<void(result<fb::PatternT>)> cb) = 0;
  // The node's latest StatusReport (`hmq exchange node status`). Default: nothing to report to
  // (test fakes that do not care).
  virtual void put_node_status(const node_identity& n, const fb::StatusReportT& report,
                               done_fn cb) {
    (void)n;
    (void)report;
    if (cb) cb(core::ok());
  }
};

using body_builder = std::function<flatbuffers::Offset<void>(flatbuffers::FlatBufferBuilder&)>;

// Sends one sealed protocol message to the mailbox of the holder of `to`. `done` (optional) runs
// once the broker has taken the message (QoS 1 PUBACK) or sending failed.
class outbox {
 public:
  virtual ~outbox() = default;
  virtual void send(const crypto::public_key& to, fb::Body type, const body_builder& body,
                    done_fn done = {}) = 0;
};

// Everything a runtime needs to run an agreement's services (HZN_* environment included).
struct workload {
  std::string agreement_id;
  std::string node_org;
  std::string node_id;
  std::string pattern;
  std::string arch;
  std::vector<fb::ProposedServiceT> services;  // signatures already verified by the engine
};

// Runtime failures say which Horizon cancel reason applies: an error whose code is in this
// category carries the fb::CancelReason as its value (113 pull, 114 registry auth, 115 digest,
// 103/108 crash loop). Any other error means 103 container_failure.
namespace detail {
class cancel_reason_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "runtime"; }
  std::string message(int c) const override {
    const char* n = fb::EnumNameCancelReason(static_cast<fb::CancelReason>(c));
    return n && *n ? n : "cancel reason " + std::to_string(c);
  }
};
}  // namespace detail
inline const std::error_category& cancel_reason_category() {
  static const detail::cancel_reason_category_impl c;
  return c;
}
inline core::error runtime_failure(fb::CancelReason r, std::string detail) {
  return core::error{{static_cast<int>(r), cancel_reason_category()}, std::move(detail)};
}
inline uint16_t cancel_reason_of(const core::error& e, fb::CancelReason fallback) {
  if (e.code.category() == cancel_reason_category() && e.code.value() > 0)
    return static_cast<uint16_t>(e.code.value());
  return static_cast<uint16_t>(fallback);
}

// Runs workloads. deploy() is also called again for finalized agreements after an agent restart:
// implementations reconcile with what is running instead of starting twice.
class runtime {
 public:
  // A workload that ran and then failed for good (a service that keeps crashing): the runtime
  // has cleaned it up already; the engine cancels the agreement with cancel_reason_of(error).
  using failure_fn = std::function<void(const std::string& agreement_id, core::error)>;
  // Things that happened to a running workload, for the agent's event log (`hmq eventlog list`):
  // kind is image_pulled, container_started, container_crashed, container_oom, container_restarted
  // or restart_failed; service is the service's URL when known.
  using event_fn = std::function<void(const std::string& agreement_id, std::string_view kind,
                                      const std::string& service, const std::string& message)>;

  virtual ~runtime() = default;
  virtual void deploy(const workload& w, done_fn cb) = 0;
  virtual void remove(const std::string& agreement_id, done_fn cb) = 0;
  // Upgrade, first half (download-then-swap, docs/agent.md): fetch and verify everything `w`
  // needs (pull, digest) without touching what runs, so a swap only starts once it can finish.
  // Errors carry the cancel reason like deploy(). The default has nothing to fetch.
  virtual void prepare(const workload& w, done_fn cb) {
    (void)w;
    cb(core::ok());
  }
  // While an upgrade is verified the old version's images must survive remove() so a rollback
  // can restart it without the network: retain_images(old, true) before the swap, false once
  // the upgrade is settled (then images nobody uses are removed as usual).
  virtual void retain_images(const std::string& agreement_id, bool retain) {
    (void)agreement_id;
    (void)retain;
  }
  // Set once by the engine before start(); called on the loop thread.
  virtual void on_failure(failure_fn) {}
  // Set once by the engine before start(); called on the loop thread.
  virtual void on_event(event_fn) {}
  // The engine has handed over (deploy()) every finalized agreement after a restart: whatever
  // the runtime finds of agreements it was not given is an orphan and may be removed.
  virtual void resumed() {}
};

// In-memory runtime (tests, `hmq-agent --runtime memory`); tests drive its completions. With
// auto_complete every call succeeds on the next loop turn; without it calls wait for finish().
//
// TEST-ONLY failure hooks, read from the environment of a deployment's containers (so a test
// publishes a "bad" version like any other): HMQ_TEST_CRASH=1 makes the workload crash-loop
// `crash_after` after it started (reported through on_failure with 103 container_failure);
// HMQ_TEST_PULL_FAIL=1 makes prepare() fail with 113 image_fetch_failure. The Docker runtime
// ignores them.
class memory_runtime final : public runtime {
 public:
  memory_runtime(core::loop::scheduler& loop, bool auto_complete,
                 std::chrono::milliseconds crash_after = std::chrono::milliseconds(200))
      : loop_(loop), auto_(auto_complete), crash_after_(crash_after) {}

  void deploy(const workload& w, done_fn cb) override {
    running_[w.agreement_id] = w;
    ++deploys_;
    if (has_test_flag(w, "HMQ_TEST_CRASH=1")) {
      crash_timers_[w.agreement_id] = loop_.call_after(crash_after_, [this, id = w.agreement_id] {
        crash_timers_.erase(id);
        if (!running_.erase(id)) return;
        ++crashes_;
        if (event_) event_(id, "container_crashed", "", "test crash loop (HMQ_TEST_CRASH)");
        if (failure_)
          failure_(id, runtime_failure(fb::CancelReason::container_failure,
                                       "test crash loop (HMQ_TEST_CRASH)"));
      });
    }
    complete(w.agreement_id, std::move(cb));
  }
  void prepare(const workload& w, done_fn cb) override {
    ++prepares_;
    if (has_test_flag(w, "HMQ_TEST_PULL_FAIL=1")) {
      loop_.post([cb = std::move(cb)] {
        cb(runtime_failure(fb::CancelReason::image_fetch_failure,
                           "test pull failure (HMQ_TEST_PULL_FAIL)"));
      });
      return;
    }
    if (auto_) {
      loop_.post([cb = std::move(cb)] { cb(core::ok()); });
    } else {
      pending_.emplace(w.agreement_id, std::move(cb));
    }
  }
  void on_failure(failure_fn f) override { failure_ = std::move(f); }
  void on_event(event_fn f) override { event_ = std::move(f); }
  void remove(const std::string& agreement_id, done_fn cb) override {
    running_.erase(agreement_id);
    crash_timers_.erase(agreement_id);
    ++removes_;
    complete(agreement_id, std::move(cb));
  }
  // Completes the oldest pending call for `agreement_id` with `r`. False when none is pending.
  bool finish(const std::string& agreement_id, result<void> r = core::ok()) {
    auto it = pending_.find(agreement_id);
    if (it == pending_.end()) return false;
    auto cb = std::move(it->second);
    pending_.erase(it);
    if (!r.ok()) running_.erase(agreement_id);
    cb(std::move(r));
    return true;
  }

  // Reports a runtime event (container_restarted, ...) as the Docker runtime would.
  void report(const std::string& agreement_id, std::string_view kind, const std::string& message) {
    if (event_) event_(agreement_id, kind, "", message);
  }
  bool running(const std::string& id) const { return running_.count(id) != 0; }
  size_t running_count() const { return running_.size(); }
  const std::map<std::string, workload>& workloads() const { return running_; }
  int deploys() const { return deploys_; }
  int removes() const { return removes_; }
  int prepares() const { return prepares_; }
  int crashes() const { return crashes_; }

 private:
  static bool has_test_flag(const workload& w, std::string_view flag) {
    for (const auto& s : w.services) {
      if (!s.service || s.service->deployment.empty()) continue;
      const auto& bytes = s.service->deployment;
      flatbuffers::Verifier v(bytes.data(), bytes.size());
      if (!v.VerifyBuffer<fb::Deployment>(nullptr)) continue;
      const auto* d = flatbuffers::GetRoot<fb::Deployment>(bytes.data());
      if (!d->containers()) continue;
      for (const auto* c : *d->containers())
        if (c && c->environment())
          for (const auto* e : *c->environment())
            if (e && e->string_view() == flag) return true;
    }
    return false;
  }

  void complete(const std::string& id, done_fn cb) {
    if (!cb) return;
    if (auto_) {
      loop_.post([cb = std::move(cb)] { cb(core::ok()); });
    } else {
      pending_.emplace(id, std::move(cb));
    }
  }

  core::loop::scheduler& loop_;
  bool auto_;
  std::chrono::milliseconds crash_after_;
  failure_fn failure_;
  event_fn event_;
  std::map<std::string, core::loop::timer_handle> crash_timers_;
  int prepares_ = 0;
  int crashes_ = 0;
  std::map<std::string, workload> running_;
  std::multimap<std::string, done_fn> pending_;
  int deploys_ = 0;
  int removes_ = 0;
};

}  // namespace hmq::agent
