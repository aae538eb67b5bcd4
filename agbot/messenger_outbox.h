#pragma once

#include "agbot/seams.h"
#include "core/bus/messenger.h"
#include "core/loop/loop.h"

// The real outbox: builds a Message, seals it to the node's key and publishes it at QoS 1 on the
// node's mailbox through the messenger. Loop thread only.
namespace hmq::agbot {

class messenger_outbox final : public outbox {
 public:
  messenger_outbox(core::loop::scheduler& loop, core::bus::messenger& m) : loop_(loop), m_(m) {}

  void send(const core::crypto::public_key& to, fb::Body type, const body_builder& body,
            uint32_t expiry_s, std::function<void(bool)> done) override;
  void reply(const core::wire::opened& request, fb::Body type, const body_builder& body) override;

 private:
  core::loop::scheduler& loop_;
  core::bus::messenger& m_;
};

}  // namespace hmq::agbot
