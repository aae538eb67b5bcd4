#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/common/result.h"
#include "core/crypto/crypto.h"
#include "core/wire/codec.h"
#include "schema/message_generated.h"

// The agbot's two I/O seams. The engine only talks to the world through these, so its logic is
// unit-tested with fakes and a manual scheduler. Every callback runs on the loop thread, exactly
// once, possibly before the call returns (fakes) or later (real RPCs).
namespace hmq::agbot {

namespace fb = ::hmq::wire::fb;

template <typename T>
using callback = std::function<void(core::result<T>)>;

struct node_page {
  std::vector<fb::NodeT> nodes;
  std::string next_page_token;  // empty on the last page
};

// What the agbot needs from the exchange (errors carry agbot::errc: not_found, exchange_*).
class exchange_api {
 public:
  virtual ~exchange_api() = default;
  // AgbotHello: the exchange records this agbot's key and mailbox so events reach it.
  virtual void hello(callback<void> cb) = 0;
  // This agbot's own resource (its served patterns).
  virtual void get_agbot(callback<fb::AgbotT> cb) = 0;
  virtual void search_pattern_nodes(const fb::AgbotPatternT& p, std::string page_token,
                                    uint32_t limit, callback<node_page> cb) = 0;
  virtual void get_node(std::string org, std::string id, callback<fb::NodeT> cb) = 0;
  virtual void get_pattern(std::string org, std::string name, callback<fb::PatternT> cb) = 0;
  // One published service (with its signed deployment), by url, exact version and arch.
  virtual void get_service(std::string org, std::string url, std::string version, std::string arch,
                           callback<fb::ServiceT> cb) = 0;
  // Every version of url published for arch (for versionRange resolution).
  virtual void list_service_versions(std::string org, std::string url, std::string arch,
                                     callback<std::vector<std::string>> cb) = 0;
  // Switchboard: a node's key, when its resource does not carry one.
  virtual void get_node_key(std::string org, std::string id,
                            callback<core::crypto::public_key> cb) = 0;
  virtual void put_agreement(const fb::AgreementRecordT& record, callback<void> cb) = 0;
  virtual void delete_agreement(std::string node_org, std::string node_id, std::string agreement_id,
                                callback<void> cb) = 0;
  // Rollout progress for `hmq rollout status` (PutRolloutStatus). Best effort: the default
  // publishes nothing, so fakes that do not care need not implement it.
  virtual void put_rollout_status(const fb::RolloutStatusT& status, callback<void> cb) {
    (void)status;
    cb(core::ok());
  }
};

using body_builder = std::function<flatbuffers::Offset<void>(flatbuffers::FlatBufferBuilder&)>;

// Sealed agreement messages to a node's mailbox (derived from its key).
class outbox {
 public:
  virtual ~outbox() = default;
  // `expiry_s` is the MQTT v5 message expiry (0 = none). `done(true)` once the broker has the
  // message (QoS 1 ack), done(false) on failure; done may be empty.
  virtual void send(const core::crypto::public_key& to, fb::Body type, const body_builder& body,
                    uint32_t expiry_s, std::function<void(bool)> done) = 0;
  // Answer `request` (an opened message): sealed to its authenticated sender, on the mailbox
  // derived from that key (never an arbitrary reply_to), with its correlation id.
  virtual void reply(const core::wire::opened& request, fb::Body type,
                     const body_builder& body) = 0;
};

}  // namespace hmq::agbot
