// The exchange's event sequence numbers at the agbot (issue 16): a replayed event is dropped and
// counted, also after a restart (the codec's replay memory is gone then); a gap leads to one
// resync; a restored exchange's counter starts the window over.
#include "tests/unit/agbot_engine_fixture.h"

namespace hmq::agbot {
namespace {

core::crypto::public_key other_exchange() {
  core::crypto::public_key k{};
  k.fill(0x77);
  return k;
}

TEST(event_window, accepts_each_number_once_in_any_order_within_the_window) {
  event_window w;
  EXPECT_EQ(w.accept(10), event_window::verdict::fresh);  // first ever: earlier count as seen
  EXPECT_EQ(w.missing(), 0u);
  EXPECT_EQ(w.accept(10), event_window::verdict::replayed);
  EXPECT_EQ(w.accept(9), event_window::verdict::replayed);
  EXPECT_EQ(w.accept(13), event_window::verdict::fresh);
  EXPECT_EQ(w.missing(), 2u);  // 11 and 12
  EXPECT_EQ(w.accept(12), event_window::verdict::fresh);
  EXPECT_EQ(w.accept(12), event_window::verdict::replayed);
  EXPECT_EQ(w.missing(), 1u);
  w.forget_gaps();
  EXPECT_EQ(w.missing(), 0u);
  EXPECT_EQ(w.accept(11), event_window::verdict::replayed);
  EXPECT_EQ(w.accept(13 + event_window::width + 5), event_window::verdict::fresh);
  EXPECT_EQ(w.missing(), event_window::width - 1);  // a jump past the whole window
  EXPECT_EQ(w.accept(13), event_window::verdict::too_old);
  w.restart_at(3);
  EXPECT_EQ(w.accept(3), event_window::verdict::replayed);
  EXPECT_EQ(w.accept(4), event_window::verdict::fresh);
}

TEST(event_window, survives_a_reopen_and_is_kept_per_exchange_key) {
  auto db = core::store::database::open_memory();
  ASSERT_TRUE(db);
  ASSERT_TRUE(event_window::create_table(*db));
  event_window w;
  ASSERT_EQ(w.accept(100), event_window::verdict::fresh);
  ASSERT_EQ(w.accept(102), event_window::verdict::fresh);
  ASSERT_TRUE(w.save(*db, exchange_key));
  auto back = event_window::load(*db, exchange_key);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->high(), 102u);
  EXPECT_EQ(back->missing(), 1u);
  EXPECT_EQ(back->accept(102), event_window::verdict::replayed);
  EXPECT_EQ(back->accept(100), event_window::verdict::replayed);
  EXPECT_EQ(back->accept(101), event_window::verdict::fresh);
  auto other = event_window::load(*db, other_exchange());
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->empty());
}

TEST_F(agbot_engine_test, a_replayed_event_is_dropped_and_counted_also_after_a_restart) {
  // The harmful replay: n1 left and came back; replaying its old "unregistered" event would
  // cancel its new agreement. The same opened message is delivered again, as a codec that lost
  // its memory in a restart would let it through.
  add_node("n1", 1);
  start();
  deliver(reply(1, proposals().at(0)->agreement_id()->str(), fb::ReplyDecision::accept));
  const auto unregistered =
      inbound(exchange_key, fb::Body::Event, [&](flatbuffers::FlatBufferBuilder& b) {
        return fb::CreateEventDirect(b, fb::EventKind::node_unregistered, next_seq(), "acme", "n1")
            .Union();
      });
  deliver(unregistered);
  EXPECT_TRUE(engine_->live_agreements().empty());
  node_registered("n1", 1, "acme/gps");
  ASSERT_EQ(proposals().size(), 2u);
  deliver(reply(1, proposals()[1]->agreement_id()->str(), fb::ReplyDecision::accept));
  ASSERT_EQ(engine_->live_agreements().size(), 1u);

  deliver(unregistered);
  EXPECT_EQ(engine_->stats().events_replayed, 1u);
  EXPECT_EQ(engine_->live_agreements().size(), 1u);

  engine_.reset();  // restart on the same agbot.db
  start();
  deliver(unregistered);
  EXPECT_EQ(engine_->stats().events_replayed, 1u);
  ASSERT_EQ(engine_->live_agreements().size(), 1u);
  EXPECT_EQ(engine_->live_agreements()[0].id, proposals()[1]->agreement_id()->str());
  // The exchange's next event still counts.
  node_registered("n2", 2, "acme/gps");
  EXPECT_EQ(engine_->stats().events_replayed, 1u);
  EXPECT_EQ(engine_->stats().events, 1u);
}

TEST_F(agbot_engine_test, a_gap_in_event_numbers_leads_to_one_resync_late_ones_do_not) {
  start();
  const int reads = x_.agbot_reads;
  auto changed = [&](uint64_t seq) {
    deliver(inbound(exchange_key, fb::Body::Event, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateEventDirect(b, fb::EventKind::pattern_changed, seq, "acme", "gps").Union();
    }));
  };
  changed(1);
  changed(3);
  changed(2);  // late, within the grace: no gap
  loop_.advance(5s);
  EXPECT_EQ(engine_->stats().event_gaps, 0u);
  EXPECT_EQ(x_.agbot_reads, reads);

  // Lost: n1's registration (seq 4) never arrives; the next event shows the gap.
  add_node("n1", 1);
  changed(5);
  EXPECT_TRUE(proposals().empty());
  loop_.advance(3s);
  EXPECT_EQ(engine_->stats().event_gaps, 1u);
  EXPECT_EQ(engine_->stats().resyncs, 1u);
  EXPECT_EQ(x_.agbot_reads, reads + 1);
  EXPECT_EQ(proposals().size(), 1u);  // the resync's search found n1
  changed(4);                         // given up on: a replay from now on
  EXPECT_EQ(engine_->stats().events_replayed, 1u);
}

TEST_F(agbot_engine_test, a_restored_exchange_counts_anew_and_its_events_are_not_replays) {
  start();
  event_seq_ = 50;
  node_registered("n9", 9, "acme/gps");  // 51
  engine_.reset();
  // The exchange's database was restored from a copy that had stamped 3 events for this agbot.
  x_.agbot.event_seq = 3;
  event_seq_ = 3;
  start();
  add_node("n1", 1);
  node_registered("n1", 1, "acme/gps");  // 4
  EXPECT_EQ(engine_->stats().events_replayed, 0u);
  EXPECT_EQ(engine_->stats().events, 1u);
}

}  // namespace
}  // namespace hmq::agbot
