#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/common/result.h"
#include "core/crypto/crypto.h"

// The compact heartbeat and presence frames (docs/protocol.md, "Heartbeat frame"). Not an
// Envelope: a heartbeat must fit in 64 bytes with its crypto, so it is sealed with the session
// key the node and the exchange share (crypto_box_beforenm) under a counter nonce instead of a
// random one, and the sender is known from the topic's mailbox, not from a key in the frame.
//
//   offset size  field
//   0      1     kind: 1 heartbeat, 2 presence online, 3 presence offline (bound into the nonce)
//   1      8     counter, big-endian; strictly increasing per node, never reused
//   9      16    Poly1305 MAC
//   25     n     encrypted body (heartbeat: 6 bytes; presence: none)
//
// Receivers verify the MAC and then the counter against the last one they accepted (replay).
namespace hmq::core::wire {

enum class frame_kind : uint8_t { heartbeat = 1, online = 2, offline = 3 };

constexpr size_t heartbeat_header_bytes = 1 + 8;
constexpr size_t heartbeat_body_bytes = 6;
constexpr size_t max_heartbeat_frame_bytes = 64;  // the byte budget; receivers refuse more

struct heartbeat_body {
  uint16_t running_agreements = 0;
  // Low 32 bits of BLAKE2b of the node's last status report: the exchange sees that the
  // status changed without receiving it again.
  uint32_t status_digest = 0;
};

struct opened_frame {
  frame_kind kind = frame_kind::heartbeat;
  uint64_t counter = 0;
  heartbeat_body body;  // zero for presence frames
};

// Seals a frame. `counter` must never have been used with `k` before (the nonce is derived
// from it). Empty when `k` is unusable.
std::vector<uint8_t> seal_frame(frame_kind kind, uint64_t counter, const heartbeat_body& body,
                                const crypto::shared_key& k);

// Checks size, kind and MAC (errc from core/wire/codec.h: too_small, too_large, bad_version,
// decrypt_failed). The replay check is the caller's: it knows the last counter.
result<opened_frame> open_frame(std::span<const uint8_t> frame, const crypto::shared_key& k);

}  // namespace hmq::core::wire
