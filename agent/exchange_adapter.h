#pragma once

#include <cstdint>

#include "agent/seams.h"
#include "core/bus/messenger.h"
#include "exchange/client.h"

// Production adapters for the agent's seams: the exchange client and the messenger.
namespace hmq::agent {

class exchange_adapter final : public exchange_api {
 public:
  explicit exchange_adapter(hmq::exchange::client& c) : c_(c) {}
  void register_node(const node_registration& r, done_fn cb) override;
  void unregister_node(const node_identity& n, done_fn cb) override;
  void put_agreement(const node_identity& n, const fb::AgreementRecordT& rec, done_fn cb) override;
  void delete_agreement(const node_identity& n, const std::string& agreement_id, done_fn cb) override;
  void get_agbot_key(const node_identity& n, const std::string& org, const std::string& id,
                     std::function<void(result<crypto::public_key>)> cb) override;

 private:
  hmq::exchange::client& c_;
};

// Protocol messages travel to the recipient's mailbox with QoS 1; a proposal-time message that
// nobody reads within `expiry_s` is useless, so it carries an MQTT v5 message expiry.
class messenger_outbox final : public outbox {
 public:
  messenger_outbox(core::bus::messenger& m, const core::loop::clock& clock, uint32_t expiry_s)
      : m_(m), clock_(clock), expiry_s_(expiry_s) {}
  void send(const crypto::public_key& to, fb::Body type, const body_builder& body) override;

 private:
  core::bus::messenger& m_;
  const core::loop::clock& clock_;
  uint32_t expiry_s_;
};

}  // namespace hmq::agent
