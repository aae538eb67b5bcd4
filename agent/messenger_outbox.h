#pragma once

#include <cstdint>

#include "agent/seams.h"
#include "core/bus/messenger.h"
#include "core/loop/loop.h"

namespace hmq::agent {

// Protocol messages travel to the recipient's mailbox with QoS 1. Replies carry an MQTT v5
// message expiry of `expiry_s` (the finalize timeout); Cancels never expire.
class messenger_outbox final : public outbox {
 public:
  messenger_outbox(core::bus::messenger& m, const core::loop::clock& clock, uint32_t expiry_s)
      : m_(m), clock_(clock), expiry_s_(expiry_s) {}
  void send(const crypto::public_key& to, fb::Body type, const body_builder& body,
            done_fn done = {}) override;

 private:
  core::bus::messenger& m_;
  const core::loop::clock& clock_;
  uint32_t expiry_s_;
};

}  // namespace hmq::agent
