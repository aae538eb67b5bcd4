#pragma once

#include <cstddef>

#include "schema/message_generated.h"

// The largest decrypted Message a receiver accepts, per body type: the one table of size caps
// (docs/security.md). The envelope limit (limits::max_envelope_bytes, 256 KiB) bounds what is
// decrypted at all; these caps stop a peer from sending, say, a 200 KiB "heartbeat" that a
// handler would then walk. core/bus/messenger checks them after open() and before any handler
// sees the body; a message over its cap is dropped and counted (messenger::dropped_oversize).
//
// Sizes are of the whole Message buffer (header fields + body). Each cap leaves wide room over
// the largest honest message of its type; raise one here, with the reason, if a real message
// ever needs more.
namespace hmq::core::wire {

inline constexpr size_t kib = 1024;

constexpr size_t max_message_bytes(::hmq::wire::fb::Body type) {
  using B = ::hmq::wire::fb::Body;
  switch (type) {
    case B::Heartbeat:
      return 1 * kib;  // ids and a counter
    case B::Reply:
      return 8 * kib;  // accept/reject, reason text
    case B::ReplyAck:
      return 4 * kib;
    case B::AgreementVerify:
      return 4 * kib;
    case B::AgreementVerifyReply:
      return 4 * kib;
    case B::Cancel:
      return 8 * kib;  // reason code and text
    case B::StatusReport:
      return 64 * kib;  // per-container status of one agreement
    case B::Event:
      return 64 * kib;  // a node/pattern change with user inputs
    case B::Proposal:
      return 256 * kib;  // signed deployments of every service
    case B::RpcRequest:
      return 256 * kib;  // a service publish carries its deployment
    case B::RpcResponse:
      return 256 * kib;  // a page of resources
    // A body type appended to the union later and not listed here yet: only the envelope
    // limit applies (the codec already enforced it), so a new message type works at once.
    default:
      return 256 * kib;
  }
}

}  // namespace hmq::core::wire
