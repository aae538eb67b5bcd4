#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent_store.h"
#include "core/log/log.h"

// Small helpers the agent engine's files (engine.cc, engine_*.cc) share; not part of the
// agent's interface, included by nothing else.
namespace hmq::agent::engine_internal {

inline std::shared_ptr<spdlog::logger> lg() {
  static auto l = core::log::get("agent");
  return l;
}

inline std::string str(const flatbuffers::String* s) {
  return s ? s->str() : std::string();
}

inline bool is_live(agreement_state s) {
  return s == agreement_state::accepted || s == agreement_state::finalized;
}

constexpr uint16_t reason_code(fb::CancelReason r) {
  return static_cast<uint16_t>(r);
}

// The Proposal in a stored agreement's verified Message buffer; null if it is unreadable.
inline const fb::Proposal* proposal_of(const std::vector<uint8_t>& bytes) {
  flatbuffers::Verifier v(bytes.data(), bytes.size());
  if (!fb::VerifyMessageBuffer(v)) return nullptr;
  return fb::GetMessage(bytes.data())->body_as_Proposal();
}

// The top-level service of a proposal (the one the exchange record names); null if none.
inline const fb::Service* top_level(const fb::Proposal& p) {
  if (!p.services()) return nullptr;
  for (const auto* s : *p.services())
    if (s && s->is_top_level() && s->service()) return s->service();
  return nullptr;
}

}  // namespace hmq::agent::engine_internal
