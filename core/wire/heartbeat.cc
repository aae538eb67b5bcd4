#include "core/wire/heartbeat.h"

#include <algorithm>

#include "core/wire/codec.h"

namespace hmq::core::wire {
namespace {

// The nonce: a fixed label (so this key's nonces can never collide with any other use of the
// same shared key), the kind, and the counter. Both sides derive it; it is never sent.
crypto::nonce frame_nonce(frame_kind kind, uint64_t counter) {
  crypto::nonce n{};
  constexpr char label[] = "hmq-hb-v1";  // 9 bytes + kind at [15] + counter at [16..23]
  std::copy(label, label + 9, n.begin());
  n[15] = static_cast<uint8_t>(kind);
  for (int i = 0; i < 8; ++i) n[16 + i] = static_cast<uint8_t>(counter >> (56 - 8 * i));
  return n;
}

bool known_kind(uint8_t k) {
  return k >= 1 && k <= 3;
}

}  // namespace

std::vector<uint8_t> seal_frame(frame_kind kind, uint64_t counter, const heartbeat_body& body,
                                const crypto::shared_key& k) {
  std::vector<uint8_t> plain;
  if (kind == frame_kind::heartbeat) {
    plain = {static_cast<uint8_t>(body.running_agreements >> 8),
             static_cast<uint8_t>(body.running_agreements),
             static_cast<uint8_t>(body.status_digest >> 24),
             static_cast<uint8_t>(body.status_digest >> 16),
             static_cast<uint8_t>(body.status_digest >> 8),
             static_cast<uint8_t>(body.status_digest)};
  }
  auto boxed = crypto::box_seal_with(plain, frame_nonce(kind, counter), k);
  if (boxed.empty()) return {};
  std::vector<uint8_t> out;
  out.reserve(heartbeat_header_bytes + boxed.size());
  out.push_back(static_cast<uint8_t>(kind));
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(counter >> (56 - 8 * i)));
  out.insert(out.end(), boxed.begin(), boxed.end());
  return out;
}

result<opened_frame> open_frame(std::span<const uint8_t> frame, const crypto::shared_key& k) {
  if (frame.size() > max_heartbeat_frame_bytes)
    return error{make_error_code(errc::too_large), "heartbeat frame over 64 bytes"};
  if (frame.size() < heartbeat_header_bytes + crypto::mac_size)
    return error{make_error_code(errc::too_small), "heartbeat frame too short"};
  if (!known_kind(frame[0]))
    return error{make_error_code(errc::bad_version), "unknown heartbeat frame kind"};
  opened_frame f;
  f.kind = static_cast<frame_kind>(frame[0]);
  for (int i = 0; i < 8; ++i) f.counter = (f.counter << 8) | frame[1 + i];
  auto plain = crypto::box_open_with(frame.subspan(heartbeat_header_bytes),
                                     frame_nonce(f.kind, f.counter), k);
  if (!plain) return error{make_error_code(errc::decrypt_failed), "heartbeat MAC check failed"};
  if (f.kind == frame_kind::heartbeat) {
    // Longer bodies are a newer sender's appended fields: read what we know.
    if (plain->size() < heartbeat_body_bytes)
      return error{make_error_code(errc::too_small), "heartbeat body too short"};
    const auto& p = *plain;
    f.body.running_agreements = static_cast<uint16_t>((p[0] << 8) | p[1]);
    f.body.status_digest =
        (uint32_t{p[2]} << 24) | (uint32_t{p[3]} << 16) | (uint32_t{p[4]} << 8) | uint32_t{p[5]};
  }
  return f;
}

}  // namespace hmq::core::wire
