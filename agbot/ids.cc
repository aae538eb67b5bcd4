#include <array>
#include <cstdint>

#include "agbot/engine.h"
#include "core/crypto/crypto.h"

namespace hmq::agbot {

std::string random_agreement_id() {
  std::array<uint8_t, 16> b{};
  core::crypto::random_bytes(b);
  return core::crypto::to_hex(b);
}

}  // namespace hmq::agbot
