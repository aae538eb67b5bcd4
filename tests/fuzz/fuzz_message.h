#pragma once

// What the message-level fuzz targets share (agent_message, agbot_message, exchange_event):
// building a seed Message from the schema's object API, and letting through only what
// codec::open would hand a handler.
#include <cstdint>
#include <vector>

#include "core/wire/codec.h"

namespace hmq::fuzz {

// A finished Message buffer holding `body` (id 1, a fixed sent_ms).
template <typename T>
std::vector<uint8_t> message(T body) {
  wire::fb::MessageT m;
  m.id = 1;
  m.sent_ms = 1'700'000'000'000;
  m.body.Set(std::move(body));
  flatbuffers::FlatBufferBuilder b;
  wire::fb::FinishMessageBuffer(b, wire::fb::Message::Pack(b, &m));
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

// What codec::open guarantees a handler: the Verifier passed, and the body is of a known type
// with its table present.
inline bool opens_like_codec(const core::wire::opened& m) {
  flatbuffers::Verifier v(m.bytes.data(), m.bytes.size(), 64, 1'000'000);
  if (!wire::fb::VerifyMessageBuffer(v)) return false;
  const auto* msg = m.message();
  return msg->body_type() != wire::fb::Body::NONE && msg->body_type() <= wire::fb::Body::MAX &&
         msg->body() != nullptr;
}

}  // namespace hmq::fuzz
