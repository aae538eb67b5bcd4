#include "tests/unit/agbot_engine_fixture.h"

namespace hmq::agbot {
namespace {

// An eligible node found both by the start-up search and by an event gets one proposal, with
// the preferred version, its dependency resolved through versionRange and merged user input.
TEST_F(agbot_engine_test, eligible_node_gets_exactly_one_proposal) {
  add_node("n1", 1);
  start();
  node_registered("n1", 1, "acme/gps");

  auto ps = proposals();
  ASSERT_EQ(ps.size(), 1u);
  const auto* p = ps[0];
  EXPECT_EQ(out_.of(fb::Body::Proposal)[0]->to, key_of(1));
  EXPECT_EQ(out_.of(fb::Body::Proposal)[0]->expiry_s, 30u);
  EXPECT_EQ(p->pattern()->str(), "acme/gps");
  EXPECT_EQ(p->node_id()->str(), "n1");
  EXPECT_EQ(p->agbot()->str(), "acme/ab1");
  EXPECT_EQ(p->node_health()->missing_heartbeat_interval(), 120);
  ASSERT_EQ(p->services()->size(), 2u);
  const auto* top = p->services()->Get(0);
  EXPECT_TRUE(top->is_top_level());
  EXPECT_EQ(top->service()->version()->str(), "1.1.0");  // priority 1 beats 2
  EXPECT_EQ(top->service()->deployment_nested_root()->containers()->Get(0)->image()->str(),
            "registry.local/gps:1.1.0");
  std::map<std::string, std::string> inputs;
  for (const auto* v : *top->user_inputs()) inputs[v->name()->str()] = v->value()->str();
  EXPECT_EQ(inputs["HZN_RATE"], "10");       // pattern beats default
  EXPECT_EQ(inputs["HZN_MODE"], "slow-n1");  // node beats default
  const auto* dep = p->services()->Get(1);
  EXPECT_FALSE(dep->is_top_level());
  EXPECT_EQ(dep->service()->url()->str(), "location");
  EXPECT_EQ(dep->service()->version()->str(), "1.4.2");  // highest amd64 in [1.0.0,2.0.0)

  auto live = engine_->live_agreements();
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].state, fb::AgreementState::proposed);
  auto stored = store_->get(live[0].id);
  ASSERT_TRUE(stored && *stored);  // persisted (and it was persisted before the send)
}

// Several nodes over several search pages each get their proposal.
TEST_F(agbot_engine_test, start_up_search_pages_through_all_nodes) {
  for (int i = 0; i < 5; ++i) add_node("n" + std::to_string(i), static_cast<uint8_t>(i + 1));
  start();
  EXPECT_EQ(proposals().size(), 5u);
  EXPECT_TRUE(engine_->initial_search_done());
}

// A registration event alone (node registered after start) leads to a proposal at once.
TEST_F(agbot_engine_test, node_registered_event_triggers_proposal_without_polling) {
  start();
  EXPECT_TRUE(proposals().empty());
  add_node("n1", 1);
  node_registered("n1", 1, "acme/gps");
  EXPECT_EQ(proposals().size(), 1u);
}

// The event carries key, arch and user inputs: the agbot proposes without fetching the node.
TEST_F(agbot_engine_test, node_registered_event_with_inputs_proposes_without_a_node_lookup) {
  start();
  node_registered_with_inputs("n1", 1, "acme/gps", "from-event");
  EXPECT_EQ(x_.node_fetches, 0);
  auto ps = proposals();
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(out_.of(fb::Body::Proposal)[0]->to, key_of(1));
  std::map<std::string, std::string> inputs;
  for (const auto* v : *ps[0]->services()->Get(0)->user_inputs())
    inputs[v->name()->str()] = v->value()->str();
  EXPECT_EQ(inputs["HZN_MODE"], "from-event");
  EXPECT_EQ(inputs["HZN_RATE"], "10");
}

// An event from an exchange that does not send user inputs still leads to a node lookup.
TEST_F(agbot_engine_test, node_registered_event_without_inputs_looks_the_node_up) {
  start();
  add_node("n1", 1);
  node_registered("n1", 1, "acme/gps");
  EXPECT_EQ(x_.node_fetches, 1);
  ASSERT_EQ(proposals().size(), 1u);
}

TEST_F(agbot_engine_test, node_of_another_pattern_gets_nothing) {
  add_node("other", 3, "acme/other");
  start();
  node_registered("other", 3, "acme/other");
  // Even if an event claims a served pattern, the node's own registration decides.
  node_registered("other", 3, "acme/gps");
  EXPECT_TRUE(proposals().empty());
  EXPECT_TRUE(engine_->live_agreements().empty());
}

TEST_F(agbot_engine_test, node_of_unmatched_arch_gets_nothing) {
  add_node("pi", 4, "acme/gps", "arm64");
  start();
  EXPECT_TRUE(proposals().empty());
}

// Accept -> finalized, one ReplyAck, one PutAgreement; a re-delivered Reply is answered with the
// same ReplyAck and changes nothing.
TEST_F(agbot_engine_test, redelivered_reply_is_answered_but_processed_once) {
  add_node("n1", 1);
  start();
  auto id = proposals().at(0)->agreement_id()->str();
  deliver(reply(1, id, fb::ReplyDecision::accept));
  ASSERT_EQ(out_.of(fb::Body::ReplyAck).size(), 1u);
  EXPECT_TRUE(out_.of(fb::Body::ReplyAck)[0]->msg()->body_as_ReplyAck()->still_valid());
  EXPECT_EQ(x_.puts, 1);
  ASSERT_EQ(x_.agreements.count(id), 1u);
  EXPECT_EQ(x_.agreements[id].state, fb::AgreementState::finalized);
  EXPECT_EQ((*store_->get(id))->state, fb::AgreementState::finalized);

  deliver(reply(1, id, fb::ReplyDecision::accept));
  ASSERT_EQ(out_.of(fb::Body::ReplyAck).size(), 2u);
  EXPECT_TRUE(out_.of(fb::Body::ReplyAck)[1]->msg()->body_as_ReplyAck()->still_valid());
  EXPECT_EQ(out_.of(fb::Body::ReplyAck)[1]->correlation_id, 42u);
  EXPECT_EQ(x_.puts, 1);
  EXPECT_EQ(engine_->stats().finalized, 1u);
  EXPECT_EQ(engine_->stats().duplicates_answered, 1u);
  // The timer of the finalized agreement is gone: no cancel later.
  loop_.advance(10min);
  EXPECT_TRUE(out_.of(fb::Body::Cancel).empty());
  EXPECT_EQ(proposals().size(), 1u);
}

TEST_F(agbot_engine_test, reply_timeout_cancels_201_and_retries_after_backoff) {
  add_node("n1", 1);
  start();
  auto first = proposals().at(0)->agreement_id()->str();
  loop_.advance(29s);
  EXPECT_TRUE(out_.of(fb::Body::Cancel).empty());
  loop_.advance(1s);
  ASSERT_EQ(out_.of(fb::Body::Cancel).size(), 1u);
  const auto* c = out_.of(fb::Body::Cancel)[0]->msg()->body_as_Cancel();
  EXPECT_EQ(c->agreement_id()->str(), first);
  EXPECT_EQ(c->reason(), fb::CancelReason::ab_no_reply);
  EXPECT_EQ((*store_->get(first))->state, fb::AgreementState::cancelled);
  EXPECT_EQ(proposals().size(), 1u);

  loop_.advance(4s);
  EXPECT_EQ(proposals().size(), 1u);  // still backing off
  loop_.advance(1s);
  ASSERT_EQ(proposals().size(), 2u);
  EXPECT_NE(proposals()[1]->agreement_id()->str(), first);

  // Second silence doubles the back-off.
  loop_.advance(30s);
  EXPECT_EQ(out_.of(fb::Body::Cancel).size(), 2u);
  loop_.advance(9s);
  EXPECT_EQ(proposals().size(), 2u);
  loop_.advance(1s);
  EXPECT_EQ(proposals().size(), 3u);
  EXPECT_EQ(engine_->stats().reply_timeouts, 2u);
}

TEST_F(agbot_engine_test, negative_reply_cancels_202_and_backs_off) {
  add_node("n1", 1);
  start();
  auto id = proposals().at(0)->agreement_id()->str();
  deliver(reply(1, id, fb::ReplyDecision::reject, fb::CancelReason::image_sig_verif_failure));
  auto a = *store_->get(id);
  EXPECT_EQ(a->state, fb::AgreementState::cancelled);
  EXPECT_EQ(a->reason, static_cast<uint16_t>(fb::CancelReason::ab_negative_reply));
  EXPECT_TRUE(out_.of(fb::Body::ReplyAck).empty());
  EXPECT_TRUE(engine_->live_agreements().empty());
  EXPECT_EQ(x_.puts, 0);
  // A new registration event during the back-off does not bypass it.
  node_registered("n1", 1, "acme/gps");
  EXPECT_EQ(proposals().size(), 1u);
  loop_.advance(5s);
  EXPECT_EQ(proposals().size(), 2u);
}

// Responses must come from the key the proposal went to.
TEST_F(agbot_engine_test, reply_from_another_key_is_dropped_and_counted) {
  add_node("n1", 1);
  start();
  auto id = proposals().at(0)->agreement_id()->str();
  deliver(reply(9, id, fb::ReplyDecision::accept));
  EXPECT_TRUE(out_.of(fb::Body::ReplyAck).empty());
  EXPECT_EQ(engine_->stats().dropped_wrong_sender, 1u);
  EXPECT_EQ((*store_->get(id))->state, fb::AgreementState::proposed);
  deliver(inbound(key_of(9), fb::Body::Cancel, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateCancelDirect(b, id.c_str(), fb::CancelReason::user_requested).Union();
  }));
  EXPECT_EQ(engine_->stats().dropped_wrong_sender, 2u);
  EXPECT_EQ(engine_->live_agreements().size(), 1u);
}

TEST_F(agbot_engine_test, malformed_and_unknown_replies_are_dropped) {
  add_node("n1", 1);
  start();
  auto id = proposals().at(0)->agreement_id()->str();
  deliver(reply(1, "not-hex", fb::ReplyDecision::accept));
  deliver(reply(1, id, fb::ReplyDecision::unspecified));
  deliver(reply(1, std::string(32, 'a'), fb::ReplyDecision::accept));
  EXPECT_EQ(engine_->stats().dropped_invalid, 2u);
  EXPECT_EQ(engine_->stats().dropped_unknown, 1u);
  EXPECT_TRUE(out_.of(fb::Body::ReplyAck).empty());
}

TEST_F(agbot_engine_test, events_not_from_the_exchange_are_dropped) {
  add_node("n1", 1);
  x_.nodes["acme/n1"].pattern = "acme/gps";
  start();
  out_.messages.clear();
  deliver(inbound(key_of(1), fb::Body::Event, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateEventDirect(b, fb::EventKind::node_unregistered, next_seq(), "acme", "n1")
        .Union();
  }));
  EXPECT_EQ(engine_->stats().dropped_wrong_sender, 1u);
  EXPECT_EQ(engine_->live_agreements().size(), 1u);
}

// Cancel from the node frees it: the exchange record goes and a new agreement forms after the
// back-off.
TEST_F(agbot_engine_test, node_cancel_frees_node_for_a_new_agreement) {
  add_node("n1", 1);
  start();
  auto id = proposals().at(0)->agreement_id()->str();
  deliver(reply(1, id, fb::ReplyDecision::accept));
  ASSERT_EQ(x_.agreements.count(id), 1u);
  auto cancel = inbound(key_of(1), fb::Body::Cancel, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateCancelDirect(b, id.c_str(), fb::CancelReason::container_failure).Union();
  });
  deliver(cancel);
  EXPECT_EQ(x_.agreements.count(id), 0u);
  EXPECT_EQ((*store_->get(id))->reason, static_cast<uint16_t>(fb::CancelReason::container_failure));
  deliver(cancel);  // re-delivered: nothing changes
  EXPECT_EQ(x_.deletes, 1);
  EXPECT_EQ(engine_->stats().node_cancels, 1u);
  loop_.advance(5s);
  ASSERT_EQ(proposals().size(), 2u);
  EXPECT_NE(proposals()[1]->agreement_id()->str(), id);
}

TEST_F(agbot_engine_test, node_unregistered_cancels_locally_without_a_message) {
  add_node("n1", 1);
  start();
  auto id = proposals().at(0)->agreement_id()->str();
  deliver(reply(1, id, fb::ReplyDecision::accept));
  x_.nodes.erase("acme/n1");
  deliver(inbound(exchange_key, fb::Body::Event, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateEventDirect(b, fb::EventKind::node_unregistered, next_seq(), "acme", "n1")
        .Union();
  }));
  EXPECT_TRUE(engine_->live_agreements().empty());
  EXPECT_EQ((*store_->get(id))->state, fb::AgreementState::cancelled);
  EXPECT_TRUE(out_.of(fb::Body::Cancel).empty());
  loop_.advance(10min);
  EXPECT_EQ(proposals().size(), 1u);
}

TEST_F(agbot_engine_test, agreement_verify_is_answered_from_the_node_only) {
  add_node("n1", 1);
  start();
  auto id = proposals().at(0)->agreement_id()->str();
  auto verify = [&](uint8_t from, const std::string& aid) {
    deliver(
        inbound(key_of(from), fb::Body::AgreementVerify, [&](flatbuffers::FlatBufferBuilder& b) {
          return fb::CreateAgreementVerifyDirect(b, aid.c_str()).Union();
        }));
  };
  verify(1, id);
  verify(9, id);
  verify(1, std::string(32, 'b'));
  auto replies = out_.of(fb::Body::AgreementVerifyReply);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_TRUE(replies[0]->msg()->body_as_AgreementVerifyReply()->exists());
  EXPECT_EQ(replies[0]->to, key_of(1));
  EXPECT_EQ(replies[0]->correlation_id, 42u);
  EXPECT_FALSE(replies[1]->msg()->body_as_AgreementVerifyReply()->exists());
  EXPECT_EQ(engine_->stats().dropped_wrong_sender, 1u);
}

// Kill between Proposal and Reply: the restarted agbot keeps the proposal, makes no second one,
// and finalizes when the reply arrives.
TEST_F(agbot_engine_test, restart_from_store_resumes_without_a_second_agreement) {
  add_node("n1", 1);
  start();
  auto id = proposals().at(0)->agreement_id()->str();
  engine_.reset();  // "kill"
  loop_.advance(10s);

  start();
  node_registered("n1", 1, "acme/gps");
  // The waiting proposal is sent again (same agreement), never a second agreement.
  ASSERT_EQ(proposals().size(), 2u);
  EXPECT_EQ(proposals()[1]->agreement_id()->str(), id);
  deliver(reply(1, id, fb::ReplyDecision::accept));
  EXPECT_EQ(engine_->stats().finalized, 1u);
  EXPECT_EQ(x_.puts, 1);
  // The resumed timer was for the remaining 20 s only; nothing fires after finalizing.
  loop_.advance(10min);
  EXPECT_TRUE(out_.of(fb::Body::Cancel).empty());
  ASSERT_EQ(engine_->live_agreements().size(), 1u);
  EXPECT_EQ(engine_->live_agreements()[0].id, id);
}

TEST_F(agbot_engine_test, reply_queued_for_the_restarted_agbot_before_start_finalizes) {
  // Found by tests/e2e/faults: a persistent session delivers the node's Reply right after
  // CONNACK, before the engine resumed its agreements; it must finalize, not be answered as
  // if the agreement were over.
  add_node("n1", 1);
  start();
  auto id = proposals().at(0)->agreement_id()->str();
  engine_.reset();  // "kill"
  make(config());
  deliver(reply(1, id, fb::ReplyDecision::accept));
  EXPECT_TRUE(out_.of(fb::Body::ReplyAck).empty());
  engine_->start();
  loop_.run_pending();
  ASSERT_EQ(out_.of(fb::Body::ReplyAck).size(), 1u);
  EXPECT_TRUE(out_.of(fb::Body::ReplyAck)[0]->msg()->body_as_ReplyAck()->still_valid());
  EXPECT_EQ(engine_->stats().finalized, 1u);
  EXPECT_EQ((*store_->get(id))->state, fb::AgreementState::finalized);
  loop_.advance(10min);
  EXPECT_TRUE(out_.of(fb::Body::Cancel).empty());
}

TEST_F(agbot_engine_test, reconnect_sends_proposals_still_waiting_again) {
  // A broker killed after acknowledging a Proposal (or the node's Reply) loses it: once the
  // bus is back, the agbot asks again instead of cancelling with 201 at the reply timeout.
  add_node("n1", 1);
  start();
  auto id = proposals().at(0)->agreement_id()->str();
  engine_->on_reconnected();
  loop_.run_pending();
  ASSERT_EQ(proposals().size(), 2u);
  EXPECT_EQ(proposals()[1]->agreement_id()->str(), id);
  deliver(reply(1, id, fb::ReplyDecision::accept));
  EXPECT_EQ(engine_->stats().finalized, 1u);
  engine_->on_reconnected();  // nothing waits any more
  loop_.run_pending();
  EXPECT_EQ(proposals().size(), 2u);
}

TEST_F(agbot_engine_test, restart_after_reply_timeout_passed_cancels_and_retries) {
  add_node("n1", 1);
  start();
  auto id = proposals().at(0)->agreement_id()->str();
  engine_.reset();
  loop_.advance(31s);
  start();
  ASSERT_EQ(out_.of(fb::Body::Cancel).size(), 1u);
  EXPECT_EQ(out_.of(fb::Body::Cancel)[0]->msg()->body_as_Cancel()->reason(),
            fb::CancelReason::ab_no_reply);
  EXPECT_EQ(proposals().size(), 1u);  // back-off first
  loop_.advance(5s);
  ASSERT_EQ(proposals().size(), 2u);
  EXPECT_NE(proposals()[1]->agreement_id()->str(), id);
}

// Kill after persisting finalized but before the exchange heard of it: the restart catches up.
TEST_F(agbot_engine_test, restart_records_finalized_agreement_the_exchange_missed) {
  add_node("n1", 1);
  start();
  auto id = proposals().at(0)->agreement_id()->str();
  auto a = **store_->get(id);
  a.state = fb::AgreementState::finalized;
  a.exchange_synced = false;
  a.message_confirmed = false;
  ASSERT_TRUE(store_->update(a));
  engine_.reset();
  start();
  EXPECT_EQ(x_.puts, 1);
  ASSERT_EQ(out_.of(fb::Body::ReplyAck).size(), 1u);
  EXPECT_TRUE((*store_->get(id))->exchange_synced);
  EXPECT_EQ(proposals().size(), 1u);
}

// A slow node does not hold up others, and no more than max_concurrent wait for replies.
TEST_F(agbot_engine_test, max_concurrent_bounds_proposals_in_flight) {
  for (int i = 0; i < 5; ++i) add_node("n" + std::to_string(i), static_cast<uint8_t>(i + 1));
  auto c = config();
  c.max_concurrent = 2;
  start(c);
  ASSERT_EQ(proposals().size(), 2u);
  EXPECT_EQ(engine_->queued(), 3u);
  // One node answers: its slot goes to the next node at once, the silent one keeps waiting.
  auto ps = proposals();
  auto id = ps[1]->agreement_id()->str();
  auto node = ps[1]->node_id()->str();
  deliver(reply(static_cast<uint8_t>(node[1] - '0' + 1), id, fb::ReplyDecision::accept));
  EXPECT_EQ(proposals().size(), 3u);
  EXPECT_EQ(engine_->queued(), 2u);
}

// Two events for a node waiting in the queue: it is proposed to once, with the newer inputs.
TEST_F(agbot_engine_test, queued_node_is_proposed_with_the_newest_event_inputs) {
  auto c = config();
  c.max_concurrent = 1;
  start(c);
  node_registered_with_inputs("n1", 1, "acme/gps", "n1");
  node_registered_with_inputs("n2", 2, "acme/gps", "old");
  node_registered_with_inputs("n2", 2, "acme/gps", "new");
  ASSERT_EQ(proposals().size(), 1u);
  EXPECT_EQ(engine_->queued(), 1u);
  deliver(reply(1, proposals()[0]->agreement_id()->str(), fb::ReplyDecision::accept));
  auto ps = proposals();
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[1]->node_id()->str(), "n2");
  std::map<std::string, std::string> inputs;
  for (const auto* v : *ps[1]->services()->Get(0)->user_inputs())
    inputs[v->name()->str()] = v->value()->str();
  EXPECT_EQ(inputs["HZN_MODE"], "new");
}

TEST_F(agbot_engine_test, service_with_unreadable_deployment_is_not_proposed) {
  for (auto& s : x_.services) s.deployment = {1, 2, 3};
  add_node("n1", 1);
  start();
  EXPECT_TRUE(proposals().empty());
  EXPECT_TRUE(engine_->live_agreements().empty());
  EXPECT_EQ(engine_->stats().prepare_failures, 1u);
}

TEST_F(agbot_engine_test, unresolvable_dependency_is_not_proposed_and_retried) {
  std::erase_if(x_.services, [](const fb::ServiceT& s) { return s.url == "location"; });
  add_node("n1", 1);
  start();
  EXPECT_TRUE(proposals().empty());
  EXPECT_EQ(engine_->stats().prepare_failures, 1u);
  x_.services.push_back(service("location", "1.0.0"));
  loop_.advance(5s);
  EXPECT_EQ(proposals().size(), 1u);
}

// Node health: a stale node loses its agreements with 208 (and is told), is left alone while
// stale, and is proposed to again as soon as it heartbeats (node_online).
TEST_F(agbot_engine_test, stale_node_is_cancelled_208_and_proposed_again_when_online) {
  add_node("n1", 1);
  start();
  auto id = proposals().at(0)->agreement_id()->str();
  deliver(reply(1, id, fb::ReplyDecision::accept));
  ASSERT_EQ(engine_->live_agreements().size(), 1u);
  auto node_event = [&](fb::EventKind kind) {
    deliver(inbound(exchange_key, fb::Body::Event, [&](flatbuffers::FlatBufferBuilder& b) {
      auto k = key_of(1);
      std::vector<uint8_t> kv(k.begin(), k.end());
      return fb::CreateEventDirect(b, kind, next_seq(), "acme", "n1", "acme/gps", &kv, "mailbox",
                                   "amd64")
          .Union();
    }));
  };
  node_event(fb::EventKind::node_offline);  // last will only: the node may be restarting
  EXPECT_EQ(engine_->live_agreements().size(), 1u);
  node_event(fb::EventKind::node_stale);
  EXPECT_TRUE(engine_->live_agreements().empty());
  EXPECT_EQ((*store_->get(id))->reason, static_cast<uint16_t>(fb::CancelReason::ab_node_heartbeat));
  auto cancels = out_.of(fb::Body::Cancel);
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0]->to, key_of(1));
  EXPECT_EQ(cancels[0]->msg()->body_as_Cancel()->reason(), fb::CancelReason::ab_node_heartbeat);
  EXPECT_EQ(engine_->stats().heartbeat_cancels, 1u);
  loop_.advance(10min);
  EXPECT_EQ(proposals().size(), 1u) << "no proposal to a stale node";
  node_event(fb::EventKind::node_online);
  ASSERT_EQ(proposals().size(), 2u);
  EXPECT_NE(proposals()[1]->agreement_id()->str(), id);
}

// Every check_agreement_status the agbot asks each node whether it still has its agreement; a
// node that lost it gets 209 and a new proposal after the back-off. Only the node may say so.
TEST_F(agbot_engine_test, agreement_the_node_lost_is_cancelled_209) {
  add_node("n1", 1);
  start();
  auto id = proposals().at(0)->agreement_id()->str();
  deliver(reply(1, id, fb::ReplyDecision::accept));
  loop_.advance(120s);  // the default check interval (the pattern sets none)
  auto verifies = out_.of(fb::Body::AgreementVerify);
  ASSERT_EQ(verifies.size(), 1u);
  EXPECT_EQ(verifies[0]->to, key_of(1));
  auto lost = [&](uint8_t from) {
    deliver(inbound(key_of(from), fb::Body::AgreementVerifyReply,
                    [&](flatbuffers::FlatBufferBuilder& b) {
                      return fb::CreateAgreementVerifyReplyDirect(b, id.c_str(), false).Union();
                    }));
  };
  lost(9);
  EXPECT_EQ(engine_->live_agreements().size(), 1u);
  EXPECT_EQ(engine_->stats().dropped_wrong_sender, 1u);
  lost(1);
  EXPECT_TRUE(engine_->live_agreements().empty());
  EXPECT_EQ((*store_->get(id))->reason, static_cast<uint16_t>(fb::CancelReason::ab_ag_missing));
  EXPECT_EQ(engine_->stats().missing_cancels, 1u);
  loop_.advance(5s);
  EXPECT_EQ(proposals().size(), 2u);
}

}  // namespace
}  // namespace hmq::agbot
