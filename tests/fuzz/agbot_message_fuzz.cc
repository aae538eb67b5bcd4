// Fuzzes what a node can send an agbot (agbot/engine.h on_message from a node's key: Reply,
// Cancel, AgreementVerify, AgreementVerifyReply, and every body the agbot must drop), starting
// from an agreement the agbot has just proposed to that node (tests/fuzz/agbot_fuzz_env.h).
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/agbot_fuzz_env.h"

using namespace hmq::agbot;
using namespace hmq::agbot::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;  // a node's message body cap is far below (size_caps.h)
  world w;
  w.deliver(node_key(), data, size);
  return 0;
}

// Seed corpus (agbot_message_replay --write-seeds DIR): the node's answers to the proposal, and
// bodies that name another agreement or must be dropped.
extern "C" void hmq_fuzz_write_seeds(const char* d) {
  const std::filesystem::path dir(d);
  for (auto [name, decision] : {std::pair{"reply_accept", fb::ReplyDecision::accept},
                                std::pair{"reply_reject", fb::ReplyDecision::reject},
                                std::pair{"reply_unspecified", fb::ReplyDecision::unspecified}}) {
    fb::ReplyT r;
    r.agreement_id = agreement_1();
    r.decision = decision;
    r.reason = decision == fb::ReplyDecision::reject ? fb::CancelReason::policy_changed
                                                     : fb::CancelReason::unspecified;
    write_seed(dir, name, message(std::move(r)));
  }
  {
    fb::ReplyT r;
    r.agreement_id = std::string(32, 'f');
    r.decision = fb::ReplyDecision::accept;
    write_seed(dir, "reply_unknown_agreement", message(std::move(r)));
  }
  {
    fb::CancelT c;
    c.agreement_id = agreement_1();
    c.reason = fb::CancelReason::container_failure;
    c.message = "crashed";
    write_seed(dir, "cancel", message(std::move(c)));
  }
  {
    fb::AgreementVerifyT v;
    v.agreement_id = agreement_1();
    write_seed(dir, "agreement_verify", message(std::move(v)));
  }
  {
    fb::AgreementVerifyReplyT v;
    v.agreement_id = agreement_1();
    v.exists = false;
    write_seed(dir, "agreement_verify_reply_gone", message(std::move(v)));
  }
  {
    fb::ReplyAckT a;
    a.agreement_id = agreement_1();
    a.still_valid = true;
    write_seed(dir, "reply_ack_dropped", message(std::move(a)));
  }
}
