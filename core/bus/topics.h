#pragma once

#include <string>
#include <string_view>

namespace hmq::core::bus {

// Topic names (docs/protocol.md). Only opaque ids ever appear in a topic.
struct topics {
  std::string prefix = "hmq/v1";

  std::string rpc() const { return prefix + "/x/rpc"; }
  // Shared subscription so several exchange replicas split the RPC load.
  std::string rpc_shared() const { return "$share/exchange/" + rpc(); }
  // A party's mailbox: what the exchange and agbots send it. Nodes may not publish here.
  std::string mailbox(std::string_view id) const { return prefix + "/mb/" + std::string(id); }
  // What nodes send an agbot (replies to proposals, AgreementVerifyReply): only agbots
  // subscribe their own, so a node cannot put anything in another node's queue
  // (docs/security.md "Client ids, retained messages and queues").
  std::string uplink(std::string_view id) const { return prefix + "/up/" + std::string(id); }
  // Where the exchange answers an exchange user's request: the user's opaque inbox id
  // (core/bus/credentials.h), then the requesting key's mailbox.
  std::string inbox(std::string_view inbox, std::string_view mailbox) const {
    return prefix + "/r/" + std::string(inbox) + "/" + std::string(mailbox);
  }
  std::string heartbeat(std::string_view id) const { return prefix + "/hb/" + std::string(id); }
  std::string heartbeat_all() const { return prefix + "/hb/+"; }
  std::string presence(std::string_view id) const {
    return prefix + "/presence/" + std::string(id);
  }
  std::string presence_all() const { return prefix + "/presence/+"; }
  std::string events(std::string_view orgtag) const {
    return prefix + "/ev/" + std::string(orgtag);
  }
};

}  // namespace hmq::core::bus
