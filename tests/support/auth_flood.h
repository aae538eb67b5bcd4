#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "core/bus/client.h"
#include "core/crypto/crypto.h"
#include "core/loop/loop.h"

// The attacker of the authentication-flood test and benchmark (issue 16, docs/security.md
// "Authentication floods"): RpcRequests claiming `org/user` with wrong secrets, each sealed by a
// fresh key pair (so no per-key limit applies), `per_second` of them, sent on its own loop
// thread through a broker identity that may publish to the RPC topic. Stops when destroyed.
namespace hmq::test {

class auth_flood {
 public:
  auth_flood(core::bus::options o, const core::crypto::public_key& exchange, std::string org,
             std::string user, double per_second);
  ~auth_flood();
  auth_flood(const auth_flood&) = delete;
  auth_flood& operator=(const auth_flood&) = delete;

  bool connected() const { return connected_.load(); }
  uint64_t sent() const { return sent_.load(); }

 private:
  void tick();

  core::loop::event_loop loop_;
  core::crypto::public_key exchange_;
  std::string org_, user_;
  double per_tick_;
  double owed_ = 0;
  std::unique_ptr<core::bus::client> client_;
  core::loop::timer_handle timer_;
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> sent_{0};
  std::thread thread_;
};

}  // namespace hmq::test
