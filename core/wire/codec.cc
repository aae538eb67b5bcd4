#include "core/wire/codec.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/log/log.h"

namespace hmq::core::wire {

namespace {

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "wire"; }
  std::string message(int c) const override {
    if (c < 0 || c >= static_cast<int>(errc::count_))
      return "unknown wire error " + std::to_string(c);
    return std::string(wire::name(static_cast<errc>(c)));
  }
};

// The Verifier's defaults allow a million tables; no message of ours comes near this, and a
// lower bound keeps a hostile buffer from making verification expensive.
constexpr flatbuffers::uoffset_t max_depth = 32;
constexpr flatbuffers::uoffset_t max_tables = 100'000;

// FlatBuffers reads scalars in place, so buffers must be aligned in memory; network bytes
// normally are (heap), but a span may point anywhere.
bool is_aligned(const uint8_t* p) {
  return reinterpret_cast<uintptr_t>(p) % alignof(flatbuffers::largest_scalar_t) == 0;
}

uint64_t mix64(uint64_t x) {  // splitmix64 finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t nonzero_random_u64() {
  uint64_t v = 0;
  while (v == 0) v = crypto::random_u64();
  return v;
}

std::vector<uint8_t> finished_bytes(const flatbuffers::FlatBufferBuilder& b) {
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

}  // namespace

const std::error_category& category() {
  static const category_impl c;
  return c;
}

std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), category()};
}

std::string_view name(errc e) {
  switch (e) {
    case errc::ok:
      return "ok";
    case errc::too_large:
      return "too_large";
    case errc::too_small:
      return "too_small";
    case errc::not_an_envelope:
      return "not_an_envelope";
    case errc::bad_version:
      return "bad_version";
    case errc::bad_sender_key:
      return "bad_sender_key";
    case errc::bad_nonce:
      return "bad_nonce";
    case errc::decrypt_failed:
      return "decrypt_failed";
    case errc::not_a_message:
      return "not_a_message";
    case errc::missing_body:
      return "missing_body";
    case errc::duplicate:
      return "duplicate";
    case errc::too_old:
      return "too_old";
    case errc::too_new:
      return "too_new";
    case errc::count_:
      break;
  }
  return "unknown";
}

uint64_t counters::rejected() const {
  uint64_t n = 0;
  for (size_t i = 0; i < c_.size(); ++i) {
    if (i != static_cast<size_t>(errc::ok)) n += c_[i].load(std::memory_order_relaxed);
  }
  return n;
}

std::vector<uint8_t> build_message(
    header h, const loop::clock& clock, fb::Body type,
    const std::function<flatbuffers::Offset<void>(flatbuffers::FlatBufferBuilder&)>& body) {
  if (h.id == 0) h.id = nonzero_random_u64();
  if (h.sent_ms == 0) h.sent_ms = clock.now_ms();
  flatbuffers::FlatBufferBuilder b(256);
  auto body_offset = body ? body(b) : flatbuffers::Offset<void>();
  auto reply_to = h.reply_to.empty() ? 0 : b.CreateString(h.reply_to);
  auto msg = fb::CreateMessage(b, h.id, h.sent_ms, h.correlation_id, reply_to, type, body_offset);
  fb::FinishMessageBuffer(b, msg);
  return finished_bytes(b);
}

std::vector<uint8_t> build_message(fb::MessageT msg, const loop::clock& clock) {
  if (msg.id == 0) msg.id = nonzero_random_u64();
  if (msg.sent_ms == 0) msg.sent_ms = clock.now_ms();
  flatbuffers::FlatBufferBuilder b(256);
  fb::FinishMessageBuffer(b, fb::Message::Pack(b, &msg));
  return finished_bytes(b);
}

size_t codec::seen_hash::operator()(const seen_key& k) const {
  uint64_t h = seed;
  for (size_t i = 0; i < k.size(); i += sizeof(uint64_t)) {
    uint64_t w = 0;
    std::memcpy(&w, k.data() + i, sizeof w);
    h = mix64(h ^ w);
  }
  return static_cast<size_t>(h);
}

codec::codec(const crypto::box_keypair& self, const loop::clock& clock, limits l)
    : self_(self), clock_(clock), limits_(l), seen_(0, seen_hash{crypto::random_u64()}) {}

std::vector<uint8_t> codec::seal(std::span<const uint8_t> message,
                                 const crypto::public_key& recipient) const {
  const crypto::nonce n = crypto::random_nonce();
  crypto::bytes boxed = crypto::box_seal(message, n, recipient, self_.sk);
  if (boxed.empty()) return {};  // unusable recipient key (small-order point)
  flatbuffers::FlatBufferBuilder b(boxed.size() + 128);
  auto sender = b.CreateVector(self_.pk.data(), self_.pk.size());
  auto nonce = b.CreateVector(n.data(), n.size());
  auto ciphertext = b.CreateVector(boxed.data(), boxed.size());
  fb::FinishEnvelopeBuffer(b, fb::CreateEnvelope(b, protocol_version, sender, nonce, ciphertext));
  return finished_bytes(b);
}

result<opened> codec::reject(errc e, std::string detail) {
  stats_.add(e);
  // Debug, not warn: a hostile peer must not be able to flood the logs; the counters are what
  // operators watch.
  static const auto logger = log::get("wire");
  logger->debug("rejected envelope: {}{}{}", name(e), detail.empty() ? "" : ": ", detail);
  return error{make_error_code(e), std::move(detail)};
}

result<opened> codec::open_unrecorded(std::span<const uint8_t> envelope) {
  if (envelope.size() < min_envelope_bytes) {
    return reject(errc::too_small, std::to_string(envelope.size()) + " bytes");
  }
  if (envelope.size() > limits_.max_envelope_bytes) {
    return reject(errc::too_large, std::to_string(envelope.size()) + " bytes");
  }
  std::vector<uint8_t> aligned_copy;
  if (!is_aligned(envelope.data())) {
    aligned_copy.assign(envelope.begin(), envelope.end());
    envelope = aligned_copy;
  }

  flatbuffers::Verifier outer(envelope.data(), envelope.size(), max_depth, max_tables);
  if (!fb::VerifyEnvelopeBuffer(outer)) return reject(errc::not_an_envelope, {});
  const fb::Envelope* env = fb::GetEnvelope(envelope.data());
  if (env->version() != protocol_version) {
    return reject(errc::bad_version, "version " + std::to_string(env->version()));
  }
  const auto* sender_key = env->sender_key();
  if (sender_key == nullptr || sender_key->size() != crypto::public_key_size) {
    return reject(errc::bad_sender_key, {});
  }
  crypto::public_key sender;
  std::memcpy(sender.data(), sender_key->data(), sender.size());
  if (!crypto::canonical_box_key(sender)) {
    return reject(errc::bad_sender_key, "not a canonical X25519 key");
  }
  const auto* nonce_bytes = env->nonce();
  if (nonce_bytes == nullptr || nonce_bytes->size() != crypto::nonce_size) {
    return reject(errc::bad_nonce, {});
  }
  opened out;
  out.sender = sender;
  crypto::nonce n;
  std::memcpy(n.data(), nonce_bytes->data(), n.size());
  const auto* ciphertext = env->ciphertext();
  if (ciphertext == nullptr) return reject(errc::decrypt_failed, "no ciphertext");

  auto plain = crypto::box_open({ciphertext->data(), ciphertext->size()}, n, out.sender, self_.sk);
  if (!plain) return reject(errc::decrypt_failed, {});
  out.bytes = std::move(plain).value();

  flatbuffers::Verifier inner(out.bytes.data(), out.bytes.size(), max_depth, max_tables);
  if (!fb::VerifyMessageBuffer(inner)) return reject(errc::not_a_message, {});
  const fb::Message* msg = out.message();
  // A body type this build does not know passes the Verifier (unions are forward compatible)
  // but nobody here could read it: it counts as missing too.
  if (msg->body_type() == fb::Body::NONE || msg->body_type() > fb::Body::MAX ||
      msg->body() == nullptr) {
    return reject(errc::missing_body,
                  "body type " + std::to_string(static_cast<int>(msg->body_type())));
  }

  // now +/- max_skew cannot overflow for any sane clock and limit; sent_ms is never used in
  // arithmetic because the sender chooses it.
  const int64_t now = clock_.now_ms();
  const int64_t sent = msg->sent_ms();
  if (sent < now - limits_.max_skew_ms) {
    return reject(errc::too_old,
                  "sent_ms " + std::to_string(sent) + ", now " + std::to_string(now));
  }
  if (sent > now + limits_.max_skew_ms) {
    return reject(errc::too_new,
                  "sent_ms " + std::to_string(sent) + ", now " + std::to_string(now));
  }
  // The memory bound shrank the window (remember()): ids sent up to floor_ms_ may have been
  // forgotten, so such messages cannot be told from replays.
  if (sent <= floor_ms_) {
    return reject(errc::too_old, "sent_ms " + std::to_string(sent) +
                                     ": replay memory full, refusing messages sent at or before " +
                                     std::to_string(floor_ms_));
  }
  forget_expired(now);
  if (seen_.contains(key_of(out.sender, msg->id()))) {
    return reject(errc::duplicate, "id " + std::to_string(msg->id()));
  }
  return out;
}

result<opened> codec::open(std::span<const uint8_t> envelope) {
  auto r = open_unrecorded(envelope);
  if (!r) return r;
  if (auto rec = record(*r); !rec) return rec.err();
  return r;
}

result<void> codec::record(const opened& m) {
  const fb::Message* msg = m.message();
  if (msg->sent_ms() <= floor_ms_) {  // the window shrank since open_unrecorded()
    return reject(errc::too_old, "replay memory full").err();
  }
  // Last, so only messages the receiver keeps take up replay memory.
  if (!remember(m.sender, msg->id(), msg->sent_ms(), clock_.now_ms())) {
    return reject(errc::duplicate, "id " + std::to_string(msg->id())).err();
  }
  stats_.add(errc::ok);
  return {};
}

codec::seen_key codec::key_of(const crypto::public_key& sender, uint64_t id) {
  seen_key key;
  std::memcpy(key.data(), sender.data(), sender.size());
  std::memcpy(key.data() + sender.size(), &id, sizeof id);
  return key;
}

// std::push_heap order of the replay memory: the soonest expiry on top.
constexpr auto later = [](const auto& a, const auto& b) { return a.expires_ms > b.expires_ms; };

void codec::forget_expired(int64_t now_ms) {
  // An entry may go once its message would be too_old: sent_ms < now - max_skew.
  while (!seen_heap_.empty() && seen_heap_.front().expires_ms < now_ms) {
    std::pop_heap(seen_heap_.begin(), seen_heap_.end(), later);
    seen_.erase(seen_heap_.back().key);
    seen_heap_.pop_back();
  }
}

bool codec::remember(const crypto::public_key& sender, uint64_t id, int64_t sent_ms,
                     int64_t now_ms) {
  forget_expired(now_ms);
  const seen_key key = key_of(sender, id);
  if (seen_.contains(key)) return false;
  if (limits_.max_remembered_ids == 0) return true;
  // Over the bound (a flood from more senders than the rate limits can tell apart), forget the
  // entry closest to expiring, the one with the smallest sent_ms, and refuse everything sent up
  // to then (open_unrecorded()). Forgetting thus never reopens a replay: the flood costs honest
  // senders their late messages (they are refused as too_old and sent again), never the
  // protection of the ones already accepted.
  while (seen_heap_.size() >= limits_.max_remembered_ids) {
    std::pop_heap(seen_heap_.begin(), seen_heap_.end(), later);
    floor_ms_ = std::max(floor_ms_, seen_heap_.back().expires_ms - limits_.max_skew_ms);
    ++window_shortened_;
    seen_.erase(seen_heap_.back().key);
    seen_heap_.pop_back();
  }
  seen_.insert(key);
  seen_heap_.push_back({sent_ms + limits_.max_skew_ms, key});
  std::push_heap(seen_heap_.begin(), seen_heap_.end(), later);
  return true;
}

result<crypto::public_key> codec::peek_sender(std::span<const uint8_t> envelope, size_t max_bytes) {
  if (envelope.size() < min_envelope_bytes) return error{make_error_code(errc::too_small), {}};
  if (envelope.size() > max_bytes) return error{make_error_code(errc::too_large), {}};
  std::vector<uint8_t> aligned_copy;
  if (!is_aligned(envelope.data())) {
    aligned_copy.assign(envelope.begin(), envelope.end());
    envelope = aligned_copy;
  }
  flatbuffers::Verifier v(envelope.data(), envelope.size(), max_depth, max_tables);
  if (!fb::VerifyEnvelopeBuffer(v)) return error{make_error_code(errc::not_an_envelope), {}};
  const fb::Envelope* env = fb::GetEnvelope(envelope.data());
  if (env->version() != protocol_version) return error{make_error_code(errc::bad_version), {}};
  const auto* k = env->sender_key();
  if (k == nullptr || k->size() != crypto::public_key_size) {
    return error{make_error_code(errc::bad_sender_key), {}};
  }
  crypto::public_key pk;
  std::memcpy(pk.data(), k->data(), pk.size());
  if (!crypto::canonical_box_key(pk)) return error{make_error_code(errc::bad_sender_key), {}};
  return pk;
}

}  // namespace hmq::core::wire
