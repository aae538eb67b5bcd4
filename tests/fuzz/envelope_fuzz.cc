// Fuzzes the one entry point every byte from the network goes through: codec::open. The
// recipient key pair is fixed (constant seed) and the clock stands still, so the seed corpus can
// hold envelopes that really open and the fuzzer can mutate them from there. The input is also
// run through the Message Verifier directly, reaching the inner schema without having to break
// the MAC first.
#include <array>
#include <cstddef>
#include <cstdint>

#include "core/wire/codec.h"

namespace {

using namespace hmq::core;

// Keep in sync with the seed corpus in corpus/envelope/ (envelopes sealed to this key, sent at
// the clock's time below).
constexpr std::array<uint8_t, 32> recipient_seed = {
    'h', 'm', 'q', '-', 'f', 'u', 'z', 'z', '-', 'r', 'e', 'c', 'i', 'p', 'i', 'e',
    'n', 't', '-', 'k', 'e', 'y', '-', 's', 'e', 'e', 'd', '-', '0', '0', '0', '1'};
constexpr int64_t clock_ms = 1'700'000'000'000;

struct state {
  crypto::box_keypair self = std::move(crypto::box_keypair::from_secret(recipient_seed)).value();
  loop::manual_clock clock{clock_ms};
  // The production size cap (limits' default, 256 KiB) and a small replay memory so eviction
  // runs too.
  wire::codec codec{self, clock,
                    wire::limits{wire::limits{}.max_envelope_bytes, 5 * 60 * 1000, 256}};
};

void touch_message(const wire::fb::Message* m) {
  // Unpacking reads every field of every table the Verifier accepted. No re-Pack: flatc 2.0.8's
  // Pack dereferences a union whose type is set but whose table is absent (UnPack leaves it
  // null), which the Verifier allows; see corpus/envelope/plain_message_union_type_without_table.
  auto obj = std::unique_ptr<wire::fb::MessageT>(m->UnPack());
  if (obj->body.type != wire::fb::Body::NONE && obj->body.value == nullptr &&
      m->body() != nullptr && m->body_type() <= wire::fb::Body::MAX) {
    __builtin_trap();  // a present, known body must unpack
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static state s;
  std::span<const uint8_t> in(data, size);

  if (auto r = s.codec.open(in); r) touch_message(r->message());
  const size_t cap = s.codec.config().max_envelope_bytes;
  (void)wire::codec::peek_sender(in, cap);

  if (size <= cap) {
    // The decrypted side, as if the box had opened.
    std::vector<uint8_t> copy(in.begin(), in.end());  // aligned, as open() guarantees
    flatbuffers::Verifier v(copy.data(), copy.size(), 32, 100'000);
    if (wire::fb::VerifyMessageBuffer(v)) touch_message(wire::fb::GetMessage(copy.data()));
  }
  return 0;
}
