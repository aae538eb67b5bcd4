#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <system_error>
#include <unordered_set>
#include <vector>

#include "core/common/result.h"
#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "schema/envelope_generated.h"
#include "schema/message_generated.h"

// Encode/decode of envelopes and messages. Every buffer from the network goes through open(),
// which runs the FlatBuffers Verifier before any field is read.
namespace hmq::core::wire {

namespace fb = ::hmq::wire::fb;

constexpr uint8_t protocol_version = 1;

// Each rejection has its own code and counter. Order is part of the metrics output; append only.
enum class errc {
  ok = 0,
  too_large,        // envelope bigger than limits.max_envelope_bytes
  too_small,        // shorter than any valid envelope (includes empty)
  not_an_envelope,  // FlatBuffers Verifier or file identifier rejected the outer buffer
  bad_version,      // protocol version not spoken here
  bad_sender_key,   // sender key missing, not 32 bytes or not canonical
  bad_nonce,        // nonce missing or not 24 bytes
  decrypt_failed,   // MAC check failed: tampered, wrong recipient or wrong sender key
  not_a_message,    // decrypted bytes fail the Verifier for Message
  missing_body,     // Message has no body (union NONE)
  duplicate,        // (sender, id) seen within the window: a replay
  too_old,          // sent_ms older than now - max_skew
  too_new,          // sent_ms newer than now + max_skew
  count_            // number of codes; keep last
};
const std::error_category& category();
std::error_code make_error_code(errc e);
std::string_view name(errc e);  // "decrypt_failed", ... for counters and logs

// No honestly built envelope is shorter: FlatBuffers root offset and file identifier (8),
// vtable header (4), table offset (4), three vector offsets (12), the vectors' lengths (12),
// sender key (32), nonce (24), MAC (16), and a Message of at least root offset, identifier,
// vtable header, table offset and body offset (20). Anything shorter is rejected as too_small.
constexpr size_t min_envelope_bytes = 8 + 4 + 4 + 12 + 12 + 32 + 24 + 16 + 20;

struct limits {
  size_t max_envelope_bytes = 256 * 1024;
  int64_t max_skew_ms = 5 * 60 * 1000;  // replay window; duplicates are remembered this long
  // Dedup memory bound. When it is reached the soonest-expiring id is forgotten and the replay
  // window shrinks with it: from then on anything sent at or before that id's sent_ms is
  // refused as too_old, so a forgotten id can never be replayed (see remember()).
  size_t max_remembered_ids = 200'000;
};

// Rejection and acceptance counters, readable from any thread.
class counters {
 public:
  void add(errc e) { c_[static_cast<size_t>(e)].fetch_add(1, std::memory_order_relaxed); }
  uint64_t get(errc e) const { return c_[static_cast<size_t>(e)].load(std::memory_order_relaxed); }
  uint64_t accepted() const { return get(errc::ok); }
  uint64_t rejected() const;

 private:
  std::array<std::atomic<uint64_t>, static_cast<size_t>(errc::count_)> c_{};
};

// A verified, decrypted, fresh message. `message()` points into `bytes`.
struct opened {
  crypto::public_key sender{};
  std::vector<uint8_t> bytes;  // verified Message buffer
  const fb::Message* message() const { return fb::GetMessage(bytes.data()); }
};

// Header fields of a message to build; id and sent_ms are filled in by build_message when 0.
struct header {
  uint64_t id = 0;
  int64_t sent_ms = 0;
  uint64_t correlation_id = 0;
  std::string reply_to;
};

// Builds a finished Message buffer. `body` adds the body table to the builder and returns its
// offset; `type` is the union tag. Example:
//   build_message(h, clock, fb::Body::Cancel, [&](auto& b) { return fb::CreateCancel(b,
//   ...).Union(); });
std::vector<uint8_t> build_message(
    header h, const loop::clock& clock, fb::Body type,
    const std::function<flatbuffers::Offset<void>(flatbuffers::FlatBufferBuilder&)>& body);
// Same from the object API: msg.id/sent_ms filled in when 0.
std::vector<uint8_t> build_message(fb::MessageT msg, const loop::clock& clock);

// Seals and opens envelopes for one identity. Not thread-safe: owned by the loop thread
// (counters may be read from anywhere).
class codec {
 public:
  codec(const crypto::box_keypair& self, const loop::clock& clock, limits l = {});

  // Seal a finished Message buffer for `recipient`: Envelope{version, self pk, nonce, box}.
  std::vector<uint8_t> seal(std::span<const uint8_t> message,
                            const crypto::public_key& recipient) const;

  // Verify the envelope, decrypt, verify the Message, check the skew window and duplicates,
  // and remember the message: open_unrecorded() then record(). Every failure returns its own
  // errc and bumps its counter; success bumps errc::ok.
  result<opened> open(std::span<const uint8_t> envelope);
  // Every check of open(), including "seen before", but the message is not remembered yet: a
  // receiver that may still drop it (a sender over its rate limit) calls record() only once it
  // keeps it, so dropped messages never take up replay memory (core/bus/messenger.cc).
  result<opened> open_unrecorded(std::span<const uint8_t> envelope);
  // Remembers a message open_unrecorded() returned; errc::duplicate if it was remembered
  // meanwhile. Bumps errc::ok on success.
  result<void> record(const opened& m);

  // Times the memory bound forced the replay window to shrink, and the sent_ms at or before
  // which messages are refused since (INT64_MIN while it never had to).
  uint64_t window_shortened() const { return window_shortened_; }
  int64_t refused_up_to_ms() const { return floor_ms_; }

  // Peek at the sender key of an envelope after verifying it (no decryption). For routing
  // decisions only (e.g. rate limits); never trust it before open() succeeds.
  static result<crypto::public_key> peek_sender(std::span<const uint8_t> envelope,
                                                size_t max_bytes);

  const crypto::public_key& public_key() const { return self_.pk; }
  const counters& stats() const { return stats_; }
  const limits& config() const { return limits_; }

 private:
  result<opened> reject(errc e, std::string detail);
  // Forgets expired entries, then records (sender, id); false if it was already there.
  bool remember(const crypto::public_key& sender, uint64_t id, int64_t sent_ms, int64_t now_ms);

  // Replay memory: (sender, id) of every accepted message until its sent_ms + max_skew_ms has
  // passed (from then on a replay is rejected as too_old anyway). A min-heap on that expiry
  // forgets the soonest-safe entries first, also when max_remembered_ids forces it.
  using seen_key = std::array<uint8_t, crypto::public_key_size + sizeof(uint64_t)>;
  struct seen_hash {
    uint64_t seed;  // random per codec: senders pick ids, so they must not pick collisions
    size_t operator()(const seen_key& k) const;
  };
  struct seen_entry {
    int64_t expires_ms;
    seen_key key;
  };
  static seen_key key_of(const crypto::public_key& sender, uint64_t id);
  void forget_expired(int64_t now_ms);

  const crypto::box_keypair& self_;
  const loop::clock& clock_;
  limits limits_;
  counters stats_;
  std::unordered_set<seen_key, seen_hash> seen_;
  std::vector<seen_entry> seen_heap_;  // std::push_heap order: soonest expiry on top
  int64_t floor_ms_ = std::numeric_limits<int64_t>::min();
  uint64_t window_shortened_ = 0;
};

}  // namespace hmq::core::wire

template <>
struct std::is_error_code_enum<hmq::core::wire::errc> : std::true_type {};
