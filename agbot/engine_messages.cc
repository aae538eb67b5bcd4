// The agbot's mailbox (docs/protocol.md steps 2-5): what it sends a node (Proposal, ReplyAck,
// Cancel) and what it does with each message it receives (Reply, Cancel, AgreementVerify),
// including the reply timeout. Exchange events: engine_events.cc.
#include "agbot/engine.h"

namespace hmq::agbot {
namespace {

using fb::AgreementState;

// Messages held until start() (engine::on_message); beyond this they are dropped and counted.
constexpr size_t max_before_start = 10000;

// Public keys are not secret: a plain comparison is fine.
bool same_key(const core::crypto::public_key& a, const core::crypto::public_key& b) {
  return a == b;
}

std::string str(const flatbuffers::String* s) {
  return s ? s->str() : std::string{};
}

}  // namespace

void engine::send_proposal(const agreement& a) {
  auto bytes = a.proposal;
  flatbuffers::Verifier v(bytes.data(), bytes.size());
  if (bytes.empty() || !v.VerifyBuffer<fb::Proposal>(nullptr)) {
    log_->error("agreement {} node {}: stored proposal unreadable", a.id, a.node());
    return;
  }
  out_.send(
      a.node_key, fb::Body::Proposal,
      [bytes](flatbuffers::FlatBufferBuilder& b) {
        std::unique_ptr<fb::ProposalT> obj(
            flatbuffers::GetRoot<fb::Proposal>(bytes.data())->UnPack());
        return fb::Proposal::Pack(b, obj.get()).Union();
      },
      expiry_s(), guard([this, id = a.id](bool ok) {
        if (ok) (void)store_.set_message_confirmed(id);
      }));
}

void engine::send_reply_ack(const agreement& a, bool still_valid, const core::wire::opened* reply) {
  auto body = [id = a.id, still_valid](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateReplyAckDirect(b, id.c_str(), still_valid).Union();
  };
  if (reply) return out_.reply(*reply, fb::Body::ReplyAck, body);
  out_.send(a.node_key, fb::Body::ReplyAck, body, 0, guard([this, id = a.id](bool ok) {
              if (ok) (void)store_.set_message_confirmed(id);
            }));
}

void engine::send_cancel(const agreement& a) {
  out_.send(
      a.node_key, fb::Body::Cancel,
      [id = a.id, reason = a.reason](flatbuffers::FlatBufferBuilder& b) {
        return fb::CreateCancelDirect(
                   b, id.c_str(), static_cast<fb::CancelReason>(reason),
                   fb::EnumNameCancelReason(static_cast<fb::CancelReason>(reason)))
            .Union();
      },
      0, guard([this, id = a.id](bool ok) {
        if (ok) (void)store_.set_message_confirmed(id);
      }));
}

void engine::on_message(const core::wire::opened& m) {
  if (!life_) return;
  if (!started_) {
    if (before_start_.size() < max_before_start) {
      before_start_.push_back(m);
    } else {
      ++stats_.dropped_before_start;  // a flood before start-up: the senders retry
    }
    return;
  }
  const auto* msg = m.message();
  switch (msg->body_type()) {
    case fb::Body::Event:
      return on_event(m, *msg->body_as_Event());
    case fb::Body::Reply:
      return on_reply(m, *msg->body_as_Reply());
    case fb::Body::Cancel:
      return on_cancel(m, *msg->body_as_Cancel());
    case fb::Body::AgreementVerify:
      return on_verify(m, *msg->body_as_AgreementVerify());
    case fb::Body::AgreementVerifyReply:
      return on_verify_reply(m, *msg->body_as_AgreementVerifyReply());
    default:
      ++stats_.dropped_invalid;
      log_->debug("dropped message with body {}", fb::EnumNameBody(msg->body_type()));
  }
}

void engine::on_reply(const core::wire::opened& m, const fb::Reply& r) {
  const std::string id = str(r.agreement_id());
  if (!valid_agreement_id(id) || r.decision() == fb::ReplyDecision::unspecified ||
      (r.decision() != fb::ReplyDecision::accept && r.decision() != fb::ReplyDecision::reject)) {
    ++stats_.dropped_invalid;
    return;
  }
  const bool accept = r.decision() == fb::ReplyDecision::accept;
  auto it = live_.find(id);
  if (it == live_.end()) {
    auto stored = store_.get(id);
    if (!stored || !*stored) {
      ++stats_.dropped_unknown;
      return;
    }
    if (!same_key(m.sender, (*stored)->node_key)) {
      ++stats_.dropped_wrong_sender;
      log_->warn("agreement {} node {}: reply from another key dropped", id, (*stored)->node());
      return;
    }
    // A late or repeated reply for an agreement that is over: tell an accepting node so.
    if (accept) {
      ++stats_.duplicates_answered;
      log_->info("agreement {} node {}: reply after cancel, answering still_valid=false", id,
                 (*stored)->node());
      send_reply_ack(**stored, false, &m);
    }
    return;
  }
  agreement& a = it->second;
  if (!same_key(m.sender, a.node_key)) {
    ++stats_.dropped_wrong_sender;
    log_->warn("agreement {} node {}: reply from another key dropped", id, a.node());
    return;
  }
  if (a.state == AgreementState::finalized) {
    if (accept) {
      ++stats_.duplicates_answered;
      send_reply_ack(a, true, &m);
    }
    return;
  }
  if (accept) return finalize(a, m);
  ++stats_.negative_replies;
  log_->info("agreement {} node {}: rejected ({} {}: {})", id, a.node(),
             static_cast<int>(r.reason()), fb::EnumNameCancelReason(r.reason()), str(r.message()));
  if (node_reasons_.emplace(id, static_cast<uint16_t>(r.reason())).second) {
    node_reason_order_.push_back(id);
    if (node_reason_order_.size() > 1024) {
      node_reasons_.erase(node_reason_order_.front());
      node_reason_order_.pop_front();
    }
  }
  auto slot = a.slot();
  auto node_org = a.node_org, node_id = a.node_id, pattern = a.pattern;
  a.exchange_synced = true;
  agreement copy = a;
  cancel(a, fb::CancelReason::ab_negative_reply, false);
  if (!copy.supersedes.empty())
    return upgrade_failed(copy, static_cast<uint16_t>(r.reason()), false);
  backoff(slot, node_org, node_id, pattern);
}

void engine::finalize(agreement& a, const core::wire::opened& reply) {
  a.state = AgreementState::finalized;
  a.updated_ms = loop_.time().now_ms();
  a.deadline_ms = 0;
  a.message_confirmed = false;
  a.exchange_synced = false;
  if (!persist(a)) return;  // stays proposed in memory; the timeout will clean up
  reply_timers_.erase(a.id);
  if (proposed_count_ > 0) --proposed_count_;
  backoffs_.erase(a.slot());
  ++stats_.finalized;
  log_->info("agreement {} node {}: finalized{}", a.id, a.node(),
             a.supersedes.empty() ? "" : " (upgrade)");
  if (a.supersedes.empty()) {
    rollout_->on_running(a.slot(), a.service_version);
  } else {
    upgrade_timers_[a.id] = loop_.call_after(
        cfg_.upgrade_timeout, guard([this, id = a.id] {
          auto it = live_.find(id);
          if (it == live_.end() || it->second.supersedes.empty()) return;
          log_->warn("agreement {} node {}: upgrade not confirmed within {} ms, cancelling", id,
                     it->second.node(), cfg_.upgrade_timeout.count());
          agreement u = it->second;
          cancel(u, fb::CancelReason::ab_no_data_received, true);
          upgrade_failed(u, static_cast<uint16_t>(fb::CancelReason::ab_no_data_received), true);
        }));
  }
  send_reply_ack(a, true, nullptr);
  // The reply() path has no completion; send() above confirms. Duplicates use reply().
  (void)reply;
  record_in_exchange(a.id, 0);
  pump();
}

void engine::on_cancel(const core::wire::opened& m, const fb::Cancel& c) {
  const std::string id = str(c.agreement_id());
  if (!valid_agreement_id(id) || c.reason() == fb::CancelReason::unspecified) {
    ++stats_.dropped_invalid;
    return;
  }
  auto it = live_.find(id);
  if (it == live_.end()) {
    auto stored = store_.get(id);
    if (!stored || !*stored)
      ++stats_.dropped_unknown;
    else
      ++stats_.duplicates_answered;  // already cancelled: nothing changes
    return;
  }
  agreement a = it->second;
  if (!same_key(m.sender, a.node_key)) {
    ++stats_.dropped_wrong_sender;
    log_->warn("agreement {} node {}: cancel from another key dropped", id, a.node());
    return;
  }
  ++stats_.node_cancels;
  log_->info("agreement {} node {}: cancelled by node ({} {}: {})", id, a.node(),
             static_cast<int>(c.reason()), fb::EnumNameCancelReason(c.reason()), str(c.message()));
  a.exchange_synced = a.state != AgreementState::finalized;
  auto slot = a.slot();
  if (!a.supersedes.empty()) {
    // The node gave up on the upgrade (reject after accept, crash loop in the verification
    // window): it restored the agreement this one superseded.
    const bool after_swap = a.state == AgreementState::finalized;
    agreement copy = a;
    cancel(a, c.reason(), false);
    return upgrade_failed(copy, static_cast<uint16_t>(c.reason()), after_swap);
  }
  if (c.reason() == fb::CancelReason::ab_upgrade_superseded && finish_upgrade_of(a)) return;
  cancel(a, c.reason(), false);
  rollout_->on_running(slot, {});
  backoff(slot, a.node_org, a.node_id, a.pattern);
}

void engine::on_verify(const core::wire::opened& m, const fb::AgreementVerify& v) {
  const std::string id = str(v.agreement_id());
  if (!valid_agreement_id(id)) {
    ++stats_.dropped_invalid;
    return;
  }
  bool exists = false;
  if (auto it = live_.find(id); it != live_.end()) {
    if (!same_key(m.sender, it->second.node_key)) {
      ++stats_.dropped_wrong_sender;
      return;
    }
    exists = true;
  } else if (auto stored = store_.get(id);
             stored && *stored && !same_key(m.sender, (*stored)->node_key)) {
    ++stats_.dropped_wrong_sender;
    return;
  }
  out_.reply(m, fb::Body::AgreementVerifyReply, [id, exists](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateAgreementVerifyReplyDirect(b, id.c_str(), exists).Union();
  });
}

void engine::on_timeout(const std::string& id) {
  auto it = live_.find(id);
  if (it == live_.end() || it->second.state != AgreementState::proposed) return;
  agreement a = it->second;
  ++stats_.reply_timeouts;
  log_->info("agreement {} node {}: no reply within {} ms, cancelling", a.id, a.node(),
             cfg_.reply_timeout.count());
  auto slot = a.slot();
  a.exchange_synced = true;  // never recorded in the exchange
  agreement copy = a;
  cancel(a, fb::CancelReason::ab_no_reply, true);
  if (!copy.supersedes.empty())
    return upgrade_failed(copy, static_cast<uint16_t>(fb::CancelReason::ab_no_reply), false);
  backoff(slot, a.node_org, a.node_id, a.pattern);
}

}  // namespace hmq::agbot
