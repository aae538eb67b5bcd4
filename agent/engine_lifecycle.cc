// An agreement after the Reply (docs/protocol.md steps 4-5): the agbot's ReplyAck finalizes it,
// a Cancel from either side ends it, AgreementVerify asks whether the node still has it, and the
// finalize timer cancels an accepted agreement the agbot never confirmed.
#include "agent/engine.h"
#include "agent/engine_internal.h"
#include "agent/reasons.h"

namespace hmq::agent {
using namespace engine_internal;  // the engine files' shared helpers

stored_agreement* engine::owned(const flatbuffers::String* id_str,
                                const crypto::public_key& sender) {
  if (!id_str || !valid_agreement_id(id_str->string_view())) {
    ++stats_.dropped_malformed;
    lg()->warn("dropped agreement message without a valid agreement id");
    return nullptr;
  }
  auto it = agreements_.find(id_str->str());
  if (it == agreements_.end()) {
    ++stats_.dropped_unknown;
    lg()->warn("agreement {}: dropped message for an unknown agreement", id_str->str());
    return nullptr;
  }
  if (!crypto::equal(it->second.agbot_key, sender)) {
    ++stats_.dropped_not_owner;
    lg()->warn("agreement {}: dropped message from a key that did not propose it", it->first);
    return nullptr;
  }
  return &it->second;
}

void engine::on_reply_ack(const core::wire::opened& m) {
  const auto* ack = m.message()->body_as_ReplyAck();
  auto* a = owned(ack->agreement_id(), m.sender);
  if (!a) return;
  if (a->state != agreement_state::accepted) {
    ++stats_.duplicates;
    lg()->debug("agreement {}: ReplyAck in state {} ignored", a->id, state_name(a->state));
    return;
  }
  if (!ack->still_valid()) {
    // The agbot withdrew before finalizing: it already knows, so no Cancel goes back.
    lg()->info("agreement {}: agbot withdrew the proposal (ReplyAck not valid)", a->id);
    cancel_local(a->id, reason_code(fb::CancelReason::agbot_requested),
                 "agbot withdrew the proposal", false);
    return;
  }
  finalize(*a);
}

void engine::finalize(stored_agreement& a) {
  stored_agreement next = a;
  next.state = agreement_state::finalized;
  next.finalized_ms = loop_.time().now_ms();
  next.exchange_synced = false;
  if (!persist(next)) return;
  a = std::move(next);
  finalize_timers_.erase(a.id);
  ++stats_.finalized;
  lg()->info("agreement {}: finalized", a.id);
  record("agreement_finalized", a.id, 0, a.service_version);
  std::string id = a.id;
  sync_exchange(id);
  if (auto old = superseded_by(a)) return upgrade(id, *old);
  deploy(id);
}

void engine::on_cancel(const core::wire::opened& m) {
  const auto* c = m.message()->body_as_Cancel();
  auto* a = owned(c->agreement_id(), m.sender);
  if (!a) return;
  if (a->state == agreement_state::cancelled) {
    ++stats_.duplicates;
    return;
  }
  uint16_t reason = static_cast<uint16_t>(c->reason());
  if (reason == 0) reason = reason_code(fb::CancelReason::agbot_requested);
  lg()->info("agreement {}: cancelled by agbot with {} ({})", a->id, reason, reason_text(reason));
  // The agbot gave up on an upgrade still being verified: back to the previous version.
  if (upgrading_.count(a->id)) return rollback(a->id, reason, str(c->message()), false);
  cancel_local(a->id, reason, str(c->message()), false);
}

void engine::on_verify(const core::wire::opened& m) {
  const auto* v = m.message()->body_as_AgreementVerify();
  std::string id = str(v->agreement_id());
  bool exists = false;
  if (auto it = agreements_.find(id); it != agreements_.end())
    exists = is_live(it->second.state) && crypto::equal(it->second.agbot_key, m.sender);
  lg()->debug("agreement {}: verify -> {}", id, exists);
  out_.send(m.sender, fb::Body::AgreementVerifyReply, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateAgreementVerifyReplyDirect(b, id.c_str(), exists).Union();
  });
}

void engine::cancel_local(const std::string& id, uint16_t reason, std::string message,
                          bool notify_agbot, bool remove_workload) {
  auto it = agreements_.find(id);
  if (it == agreements_.end() || it->second.state == agreement_state::cancelled) return;
  stored_agreement next = it->second;
  bool was_finalized = next.state == agreement_state::finalized;
  next.state = agreement_state::cancelled;
  next.cancelled_ms = loop_.time().now_ms();
  next.reason = reason;
  next.reason_message = std::move(message);
  // Only a finalized agreement has an exchange record to delete.
  next.exchange_synced = !was_finalized;
  next.cancel_unsent = notify_agbot;
  if (!persist(next)) return;
  it->second = std::move(next);
  finalize_timers_.erase(id);
  ++stats_.cancelled;
  lg()->info("agreement {}: cancelled with {} ({})", id, reason, reason_text(reason));
  record("agreement_cancelled", id, reason,
         it->second.reason_message.empty() ? reason_text(reason)
                                           : std::string_view(it->second.reason_message));
  if (notify_agbot) send_cancel(it->second);
  if (was_finalized && remove_workload) {
    rt_.remove(id, [this, id, alive = alive_](result<void> r) {
      if (!*alive) return;
      if (!r) lg()->warn("agreement {}: runtime remove failed: {}", id, r.err().message());
      record(r ? "workload_removed" : "remove_failed", id, 0,
             r ? std::string() : r.err().message());
      auto st = service_status_.find(id);
      if (st != service_status_.end() && st->second.state != fb::ServiceState::failed)
        status_changed(id, fb::ServiceState::stopped, "");
    });
  }
  sync_exchange(id);
}

void engine::arm_finalize_timer(const std::string& id, std::chrono::milliseconds after) {
  finalize_timers_[id] = loop_.call_after(after, [this, id] {
    auto it = agreements_.find(id);
    if (it == agreements_.end() || it->second.state != agreement_state::accepted) return;
    lg()->warn("agreement {}: no ReplyAck within {} ms", id, opts_.finalize_timeout.count());
    cancel_local(id, reason_code(fb::CancelReason::no_reply_ack),
                 "no ReplyAck before the finalize timeout", true);
  });
}

void engine::send_cancel(const stored_agreement& a) {
  out_.send(
      a.agbot_key, fb::Body::Cancel,
      [&](flatbuffers::FlatBufferBuilder& b) {
        return fb::CreateCancelDirect(b, a.id.c_str(), static_cast<fb::CancelReason>(a.reason),
                                      a.reason_message.c_str())
            .Union();
      },
      [this, id = a.id, alive = alive_](result<void> r) {
        if (!*alive) return;
        auto it = agreements_.find(id);
        if (it == agreements_.end() || !it->second.cancel_unsent) return;
        if (!r) {
          // Not taken by the broker: the next start sends it again.
          lg()->warn("agreement {}: Cancel not sent: {}", id, r.err().message());
          return;
        }
        it->second.cancel_unsent = false;
        (void)persist(it->second);
      });
}

}  // namespace hmq::agent
