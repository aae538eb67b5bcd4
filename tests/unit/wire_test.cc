#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "core/wire/codec.h"

namespace hmq::core::wire {
namespace {

using crypto::box_keypair;

constexpr int64_t skew = limits{}.max_skew_ms;

std::vector<uint8_t> cancel_message(const loop::clock& clock, std::string text, header h = {}) {
  return build_message(h, clock, fb::Body::Cancel, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateCancelDirect(b, "0123456789abcdef0123456789abcdef",
                                  fb::CancelReason::ab_node_heartbeat, text.c_str())
        .Union();
  });
}

// An Envelope with chosen fields, for the checks seal() never gets wrong.
std::vector<uint8_t> raw_envelope(uint8_t version, const std::vector<uint8_t>* sender,
                                  const std::vector<uint8_t>* nonce,
                                  const std::vector<uint8_t>* ciphertext) {
  flatbuffers::FlatBufferBuilder b;
  auto s = sender ? b.CreateVector(*sender) : 0;
  auto n = nonce ? b.CreateVector(*nonce) : 0;
  auto c = ciphertext ? b.CreateVector(*ciphertext) : 0;
  fb::FinishEnvelopeBuffer(b, fb::CreateEnvelope(b, version, s, n, c));
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

class wire_test : public ::testing::Test {
 protected:
  box_keypair alice_ = box_keypair::generate();
  box_keypair bob_ = box_keypair::generate();
  loop::manual_clock clock_;
  codec alice_codec_{alice_, clock_};
  codec bob_codec_{bob_, clock_};

  std::vector<uint8_t> sealed_for_bob(std::string text = "bye", header h = {}) {
    return alice_codec_.seal(cancel_message(clock_, std::move(text), h), bob_.pk);
  }
  // Seals arbitrary plaintext exactly as codec::seal does, fields given.
  std::vector<uint8_t> envelope_of_plain(std::span<const uint8_t> plain,
                                         uint8_t version = protocol_version) {
    const crypto::nonce n = crypto::random_nonce();
    std::vector<uint8_t> sender(alice_.pk.begin(), alice_.pk.end());
    std::vector<uint8_t> nonce(n.begin(), n.end());
    std::vector<uint8_t> ct = crypto::box_seal(plain, n, bob_.pk, alice_.sk);
    return raw_envelope(version, &sender, &nonce, &ct);
  }
};

TEST_F(wire_test, seal_open_round_trip_authenticates_sender) {
  // The sender key that opens the box is the identity every component trusts.
  header h;
  h.correlation_id = 77;
  h.reply_to = "mailbox123456789";
  const auto msg = cancel_message(clock_, "node went quiet", h);
  const auto env = alice_codec_.seal(msg, bob_.pk);
  ASSERT_FALSE(env.empty());

  auto r = bob_codec_.open(env);
  ASSERT_TRUE(r) << r.err().message();
  EXPECT_EQ(r->sender, alice_.pk);
  EXPECT_EQ(r->bytes, msg);
  const fb::Message* m = r->message();
  EXPECT_NE(m->id(), 0u);
  EXPECT_EQ(m->sent_ms(), clock_.now_ms());
  EXPECT_EQ(m->correlation_id(), 77u);
  EXPECT_EQ(m->reply_to()->str(), "mailbox123456789");
  ASSERT_EQ(m->body_type(), fb::Body::Cancel);
  EXPECT_EQ(m->body_as_Cancel()->message()->str(), "node went quiet");
  EXPECT_EQ(m->body_as_Cancel()->reason(), fb::CancelReason::ab_node_heartbeat);
  EXPECT_EQ(bob_codec_.stats().accepted(), 1u);
  EXPECT_EQ(bob_codec_.stats().rejected(), 0u);
}

TEST_F(wire_test, envelope_carries_no_plaintext) {
  // Nothing but version, key, nonce and ciphertext may be readable on the bus.
  const std::string secret_text = "org-acme/pattern-gps";
  const auto env = sealed_for_bob(secret_text);
  const std::string as_text(env.begin(), env.end());
  EXPECT_EQ(as_text.find(secret_text), std::string::npos);
  EXPECT_EQ(as_text.find("0123456789abcdef"), std::string::npos);
  EXPECT_TRUE(fb::EnvelopeBufferHasIdentifier(env.data()));
}

TEST_F(wire_test, build_message_keeps_given_id_and_time_and_fills_zero_ones) {
  header h;
  h.id = 42;
  h.sent_ms = 1234;
  auto given = cancel_message(clock_, "x", h);
  EXPECT_EQ(fb::GetMessage(given.data())->id(), 42u);
  EXPECT_EQ(fb::GetMessage(given.data())->sent_ms(), 1234);
  EXPECT_TRUE(fb::MessageBufferHasIdentifier(given.data()));

  auto a = cancel_message(clock_, "x");
  auto b = cancel_message(clock_, "x");
  EXPECT_NE(fb::GetMessage(a.data())->id(), 0u);
  EXPECT_NE(fb::GetMessage(a.data())->id(), fb::GetMessage(b.data())->id());

  fb::MessageT obj;
  fb::CancelT cancel;
  cancel.agreement_id = "aa";
  cancel.reason = fb::CancelReason::user_requested;
  obj.body.Set(std::move(cancel));
  auto from_obj = build_message(obj, clock_);
  flatbuffers::Verifier v(from_obj.data(), from_obj.size());
  ASSERT_TRUE(fb::VerifyMessageBuffer(v));
  const fb::Message* m = fb::GetMessage(from_obj.data());
  EXPECT_NE(m->id(), 0u);
  EXPECT_EQ(m->sent_ms(), clock_.now_ms());
  ASSERT_EQ(m->body_type(), fb::Body::Cancel);
  EXPECT_EQ(m->body_as_Cancel()->reason(), fb::CancelReason::user_requested);
}

TEST_F(wire_test, rejects_flipped_bit_anywhere) {
  // An attacker who flips any bit must never get a message accepted, and nothing may crash.
  // Bob has accepted the original first, so a flip in bytes that carry no information (padding,
  // the vtable's object size) is caught as a duplicate: it is the same message.
  const auto env = sealed_for_bob("flip me");
  ASSERT_TRUE(bob_codec_.open(env));
  const fb::Envelope* e = fb::GetEnvelope(env.data());
  const auto offset_of = [&](const flatbuffers::Vector<uint8_t>* v) {
    return static_cast<size_t>(v->data() - env.data());
  };
  const size_t key_at = offset_of(e->sender_key()), nonce_at = offset_of(e->nonce()),
               ct_at = offset_of(e->ciphertext());
  const size_t version_at = static_cast<size_t>(reinterpret_cast<const uint8_t*>(e) - env.data()) +
                            reinterpret_cast<const flatbuffers::Table*>(e)->GetOptionalFieldOffset(
                                fb::Envelope::VT_VERSION);
  ASSERT_NE(version_at, static_cast<size_t>(reinterpret_cast<const uint8_t*>(e) - env.data()));

  for (size_t i = 0; i < env.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto t = env;
      t[i] ^= static_cast<uint8_t>(1u << bit);
      auto r = bob_codec_.open(t);
      ASSERT_FALSE(r) << "byte " << i << " bit " << bit << " was accepted";
      const auto in = [&](size_t at, size_t len) { return i >= at && i < at + len; };
      if (in(4, 4)) {
        EXPECT_EQ(r.code(), errc::not_an_envelope) << "identifier byte " << i;
      } else if (i == key_at + 31 && bit == 7) {
        // X25519 ignores bit 255: this alias of alice's key would decrypt, so it must be refused
        // by its encoding (or it would replay past the duplicate check as a "new" sender).
        EXPECT_EQ(r.code(), errc::bad_sender_key) << "key bit 255";
      } else if (i == version_at) {
        EXPECT_EQ(r.code(), errc::bad_version) << "version byte";
      } else if (in(key_at, crypto::public_key_size) || in(nonce_at, crypto::nonce_size) ||
                 in(ct_at, e->ciphertext()->size())) {
        EXPECT_EQ(r.code(), errc::decrypt_failed) << "data byte " << i;
      }
    }
  }
  EXPECT_EQ(bob_codec_.stats().accepted(), 1u);
  EXPECT_EQ(bob_codec_.stats().rejected(), env.size() * 8);
}

TEST_F(wire_test, flipped_bit_accepted_by_fresh_codec_is_always_the_same_message) {
  // The other half of the previous property: FlatBuffers has bytes nobody reads, and flipping
  // them may pass; it must then yield exactly the original sender and message.
  const auto msg = cancel_message(clock_, "same");
  const auto env = alice_codec_.seal(msg, bob_.pk);
  for (size_t i = 0; i < env.size(); ++i) {
    auto t = env;
    t[i] ^= 0x10;
    codec fresh(bob_, clock_);
    auto r = fresh.open(t);
    if (r) {
      EXPECT_EQ(r->sender, alice_.pk) << "byte " << i;
      EXPECT_EQ(r->bytes, msg) << "byte " << i;
    }
  }
}

TEST_F(wire_test, rejects_wrong_recipient) {
  const auto env = sealed_for_bob();
  box_keypair carol_keys = box_keypair::generate();
  codec carol_codec(carol_keys, clock_);
  auto r = carol_codec.open(env);
  EXPECT_EQ(r.code(), errc::decrypt_failed);
  EXPECT_EQ(carol_codec.stats().get(errc::decrypt_failed), 1u);
}

TEST_F(wire_test, rejects_every_truncation) {
  const auto env = sealed_for_bob();
  ASSERT_GE(env.size(), min_envelope_bytes);
  for (size_t n = 0; n < env.size(); ++n) {
    auto r = bob_codec_.open(std::span<const uint8_t>(env).first(n));
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.code(), n < min_envelope_bytes ? errc::too_small : errc::not_an_envelope) << n;
  }
  EXPECT_EQ(bob_codec_.stats().get(errc::too_small), min_envelope_bytes);
  EXPECT_EQ(bob_codec_.stats().accepted(), 0u);
  EXPECT_TRUE(bob_codec_.open(env));
}

TEST_F(wire_test, min_envelope_bytes_is_below_the_smallest_real_envelope) {
  // too_small must never reject a real message: the smallest one has an empty body table.
  const auto msg = build_message({}, clock_, fb::Body::Heartbeat,
                                 [](auto& b) { return fb::CreateHeartbeat(b).Union(); });
  // Plaintext and envelope bytes whose sizes are the smallest seal() can produce.
  const auto env = alice_codec_.seal(msg, bob_.pk);
  EXPECT_GE(env.size(), min_envelope_bytes);
  EXPECT_TRUE(bob_codec_.open(env));
}

TEST_F(wire_test, rejects_oversized_envelope_at_the_limit_plus_one) {
  limits l;
  l.max_envelope_bytes = 2048;
  codec small(bob_, clock_, l);
  const auto env = sealed_for_bob();
  ASSERT_LT(env.size(), l.max_envelope_bytes);
  // FlatBuffers ignores trailing bytes, so padding to exactly the limit is still valid.
  auto at_limit = env;
  at_limit.resize(l.max_envelope_bytes, 0);
  EXPECT_TRUE(small.open(at_limit));
  auto over = env;
  over.resize(l.max_envelope_bytes + 1, 0);
  EXPECT_EQ(small.open(over).code(), errc::too_large);
  EXPECT_EQ(small.open(sealed_for_bob(std::string(4096, 'x'))).code(), errc::too_large);
  EXPECT_EQ(small.stats().get(errc::too_large), 2u);
}

TEST_F(wire_test, rejects_random_bytes_and_non_flatbuffers) {
  std::mt19937 rng(12345);
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> junk(rng() % 600);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    if (i % 2 == 0 && junk.size() >= 8) {  // half of them with a believable header
      junk[0] = 16, junk[1] = junk[2] = junk[3] = 0;
      std::memcpy(junk.data() + 4, fb::EnvelopeIdentifier(), 4);
    }
    auto r = bob_codec_.open(junk);
    ASSERT_FALSE(r) << i;
  }
  const std::string text(300, 'A');
  auto r = bob_codec_.open({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  EXPECT_EQ(r.code(), errc::not_an_envelope);
  // A valid Message buffer is not an Envelope (wrong identifier).
  auto msg = cancel_message(clock_, std::string(200, 'm'));
  EXPECT_EQ(bob_codec_.open(msg).code(), errc::not_an_envelope);
  EXPECT_EQ(bob_codec_.stats().accepted(), 0u);
}

TEST_F(wire_test, opens_misaligned_buffers) {
  const auto env = sealed_for_bob();
  std::vector<uint8_t> shifted(env.size() + 1);
  std::memcpy(shifted.data() + 1, env.data(), env.size());
  EXPECT_TRUE(bob_codec_.open(std::span<const uint8_t>(shifted).subspan(1)));
}

TEST_F(wire_test, rejects_wrong_version) {
  const auto msg = cancel_message(clock_, std::string(40, 'v'));
  EXPECT_EQ(bob_codec_.open(envelope_of_plain(msg, protocol_version + 1)).code(),
            errc::bad_version);
  EXPECT_EQ(bob_codec_.open(envelope_of_plain(msg, 0)).code(), errc::bad_version);
  EXPECT_TRUE(bob_codec_.open(envelope_of_plain(msg)));
  EXPECT_EQ(bob_codec_.stats().get(errc::bad_version), 2u);
}

TEST_F(wire_test, rejects_bad_sender_key_and_nonce_sizes) {
  const auto msg = cancel_message(clock_, std::string(40, 'k'));
  const crypto::nonce n = crypto::random_nonce();
  std::vector<uint8_t> key(alice_.pk.begin(), alice_.pk.end()), nonce(n.begin(), n.end());
  std::vector<uint8_t> ct = crypto::box_seal(msg, n, bob_.pk, alice_.sk);
  std::vector<uint8_t> short_key(key.begin(), key.end() - 1), long_key = key;
  long_key.push_back(0);
  std::vector<uint8_t> short_nonce(nonce.begin(), nonce.end() - 1), long_nonce = nonce;
  long_nonce.push_back(0);

  EXPECT_EQ(bob_codec_.open(raw_envelope(1, nullptr, &nonce, &ct)).code(), errc::bad_sender_key);
  std::vector<uint8_t> alias = key;  // same X25519 point, other encoding: decrypts if accepted
  alias[31] ^= 0x80;
  EXPECT_EQ(bob_codec_.open(raw_envelope(1, &alias, &nonce, &ct)).code(), errc::bad_sender_key);
  EXPECT_EQ(bob_codec_.open(raw_envelope(1, &short_key, &nonce, &ct)).code(), errc::bad_sender_key);
  EXPECT_EQ(bob_codec_.open(raw_envelope(1, &long_key, &nonce, &ct)).code(), errc::bad_sender_key);
  EXPECT_EQ(bob_codec_.open(raw_envelope(1, &key, nullptr, &ct)).code(), errc::bad_nonce);
  EXPECT_EQ(bob_codec_.open(raw_envelope(1, &key, &short_nonce, &ct)).code(), errc::bad_nonce);
  EXPECT_EQ(bob_codec_.open(raw_envelope(1, &key, &long_nonce, &ct)).code(), errc::bad_nonce);
  EXPECT_EQ(bob_codec_.open(raw_envelope(1, &key, &nonce, nullptr)).code(), errc::too_small);
  EXPECT_TRUE(bob_codec_.open(raw_envelope(1, &key, &nonce, &ct)));
  EXPECT_EQ(bob_codec_.stats().get(errc::bad_sender_key), 4u);
  EXPECT_EQ(bob_codec_.stats().get(errc::bad_nonce), 3u);
}

TEST_F(wire_test, peek_sender_reads_the_key_without_decrypting) {
  const auto env = sealed_for_bob();
  auto pk = codec::peek_sender(env, 4096);
  ASSERT_TRUE(pk);
  EXPECT_EQ(*pk, alice_.pk);
  EXPECT_EQ(codec::peek_sender(env, 10).code(), errc::too_large);
  EXPECT_EQ(codec::peek_sender(std::span<const uint8_t>(env).first(10), 4096).code(),
            errc::too_small);
  auto bad = env;
  bad[5] ^= 1;
  EXPECT_EQ(codec::peek_sender(bad, 4096).code(), errc::not_an_envelope);
}

TEST_F(wire_test, rejects_decrypted_bytes_that_are_not_a_message) {
  std::vector<uint8_t> not_message(200, 0x5a);
  EXPECT_EQ(bob_codec_.open(alice_codec_.seal(not_message, bob_.pk)).code(), errc::not_a_message);
  // A FlatBuffer with another identifier (an Envelope) is not a Message either.
  auto inner = sealed_for_bob("nested");
  EXPECT_EQ(bob_codec_.open(alice_codec_.seal(inner, bob_.pk)).code(), errc::not_a_message);
  // A Message whose body table points outside the buffer.
  auto msg = cancel_message(clock_, std::string(64, 'z'));
  msg.resize(msg.size() - 8);
  EXPECT_EQ(bob_codec_.open(alice_codec_.seal(msg, bob_.pk)).code(), errc::not_a_message);
  EXPECT_EQ(bob_codec_.stats().get(errc::not_a_message), 3u);
}

TEST_F(wire_test, rejects_message_without_body_or_with_unknown_body_type) {
  header h;
  h.reply_to = std::string(60, 'r');  // keep the envelope above the size floor
  auto empty = build_message(h, clock_, fb::Body::NONE, nullptr);
  EXPECT_EQ(bob_codec_.open(alice_codec_.seal(empty, bob_.pk)).code(), errc::missing_body);

  // Type set but no table.
  flatbuffers::FlatBufferBuilder b;
  auto r = b.CreateString(h.reply_to);
  fb::FinishMessageBuffer(b, fb::CreateMessage(b, 9, clock_.now_ms(), 0, r, fb::Body::Cancel, 0));
  std::vector<uint8_t> typed_no_table(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  EXPECT_EQ(bob_codec_.open(alice_codec_.seal(typed_no_table, bob_.pk)).code(), errc::missing_body);

  // A body type from a future schema.
  flatbuffers::FlatBufferBuilder f;
  auto r2 = f.CreateString(h.reply_to);
  auto table = fb::CreateHeartbeat(f).Union();
  fb::FinishMessageBuffer(
      f, fb::CreateMessage(f, 10, clock_.now_ms(), 0, r2, static_cast<fb::Body>(200), table));
  std::vector<uint8_t> future(f.GetBufferPointer(), f.GetBufferPointer() + f.GetSize());
  EXPECT_EQ(bob_codec_.open(alice_codec_.seal(future, bob_.pk)).code(), errc::missing_body);
  EXPECT_EQ(bob_codec_.stats().get(errc::missing_body), 3u);
}

TEST_F(wire_test, rejects_replayed_id_but_accepts_new_id_from_same_sender) {
  // Replay protection is by (sender, id), not by envelope bytes: a re-sealed copy of the same
  // message (new nonce) is still a replay.
  const auto msg = cancel_message(clock_, "once");
  const auto env = alice_codec_.seal(msg, bob_.pk);
  ASSERT_TRUE(bob_codec_.open(env));
  EXPECT_EQ(bob_codec_.open(env).code(), errc::duplicate);
  EXPECT_EQ(bob_codec_.open(alice_codec_.seal(msg, bob_.pk)).code(), errc::duplicate);
  EXPECT_TRUE(bob_codec_.open(sealed_for_bob("twice")));

  // The same id from another sender is another message.
  box_keypair carol = box_keypair::generate();
  codec carol_codec(carol, clock_);
  EXPECT_TRUE(bob_codec_.open(carol_codec.seal(msg, bob_.pk)));
  EXPECT_EQ(bob_codec_.stats().get(errc::duplicate), 2u);
  EXPECT_EQ(bob_codec_.stats().accepted(), 3u);
}

TEST_F(wire_test, rejected_message_is_not_remembered_as_seen) {
  // A message rejected for its time must not poison its id for a later valid send.
  header h;
  h.id = 555;
  h.sent_ms = clock_.now_ms() + skew + 1;
  const auto msg = cancel_message(clock_, "early", h);
  EXPECT_EQ(bob_codec_.open(alice_codec_.seal(msg, bob_.pk)).code(), errc::too_new);
  clock_.advance(std::chrono::milliseconds(2));
  EXPECT_TRUE(bob_codec_.open(alice_codec_.seal(msg, bob_.pk)));
}

TEST_F(wire_test, rejects_messages_outside_the_skew_window) {
  const int64_t now = clock_.now_ms();
  const auto at = [&](int64_t sent) {
    header h;
    h.sent_ms = sent;
    return bob_codec_.open(sealed_for_bob("t", h)).code();
  };
  EXPECT_EQ(at(now - skew - 1), errc::too_old);
  EXPECT_EQ(at(now - 24 * 3600 * 1000LL), errc::too_old);
  EXPECT_EQ(at(std::numeric_limits<int64_t>::min()), errc::too_old);
  EXPECT_EQ(at(now + skew + 1), errc::too_new);
  EXPECT_EQ(at(std::numeric_limits<int64_t>::max()), errc::too_new);
  EXPECT_EQ(at(now - skew), std::error_code{});
  EXPECT_EQ(at(now + skew), std::error_code{});
  EXPECT_EQ(bob_codec_.stats().get(errc::too_old), 3u);
  EXPECT_EQ(bob_codec_.stats().get(errc::too_new), 2u);
}

TEST_F(wire_test, replay_after_the_window_is_too_old_not_accepted) {
  // Forgetting ids is safe only because the skew check catches them afterwards.
  const auto env = sealed_for_bob("late replay");
  ASSERT_TRUE(bob_codec_.open(env));
  clock_.advance(std::chrono::milliseconds(skew));
  EXPECT_EQ(bob_codec_.open(env).code(), errc::duplicate);
  clock_.advance(std::chrono::milliseconds(1));
  // Trigger expiry with another accepted message, then replay.
  EXPECT_TRUE(bob_codec_.open(sealed_for_bob("fresh")));
  EXPECT_EQ(bob_codec_.open(env).code(), errc::too_old);
}

TEST_F(wire_test, message_from_the_future_is_remembered_until_it_would_be_too_old) {
  // Expiry follows sent_ms + skew, not arrival + skew: a message sent "skew ahead" stays
  // replayable for twice the window and must be remembered that long.
  header h;
  h.sent_ms = clock_.now_ms() + skew;
  const auto env = sealed_for_bob("ahead", h);
  ASSERT_TRUE(bob_codec_.open(env));
  clock_.advance(std::chrono::milliseconds(2 * skew));
  EXPECT_TRUE(bob_codec_.open(sealed_for_bob("tick")));
  EXPECT_EQ(bob_codec_.open(env).code(), errc::duplicate);
  clock_.advance(std::chrono::milliseconds(1));
  EXPECT_EQ(bob_codec_.open(env).code(), errc::too_old);
}

TEST_F(wire_test, memory_bound_shrinks_the_window_instead_of_reopening_a_replay) {
  // A flood from more keys than the rate limits can tell apart fills the memory. Forgetting an
  // honest id must not make it replayable: the window shrinks past it instead.
  limits l;
  l.max_remembered_ids = 2;
  codec bounded(bob_, clock_, l);
  const int64_t now = clock_.now_ms();
  header a, b, c, late;
  a.sent_ms = now - 1000;  // expires first
  b.sent_ms = now;
  c.sent_ms = now + 1000;
  late.sent_ms = now - 2000;  // honest but delayed, never seen
  const auto ea = sealed_for_bob("a", a), eb = sealed_for_bob("b", b), ec = sealed_for_bob("c", c);
  ASSERT_TRUE(bounded.open(ea));
  ASSERT_TRUE(bounded.open(eb));
  EXPECT_EQ(bounded.window_shortened(), 0u);
  ASSERT_TRUE(bounded.open(ec));  // forgets a
  EXPECT_EQ(bounded.window_shortened(), 1u);
  EXPECT_EQ(bounded.refused_up_to_ms(), now - 1000);
  EXPECT_EQ(bounded.open(eb).code(), errc::duplicate);
  EXPECT_EQ(bounded.open(ec).code(), errc::duplicate);
  EXPECT_EQ(bounded.open(ea).code(), errc::too_old);  // forgotten, still refused
  EXPECT_EQ(bounded.open(sealed_for_bob("late", late)).code(), errc::too_old);  // the cost
  EXPECT_TRUE(bounded.open(sealed_for_bob("fresh")));  // sent now: accepted
}

TEST_F(wire_test, open_unrecorded_checks_everything_but_remembers_only_on_record) {
  // A receiver that drops a message after opening it (rate limit) must not spend replay
  // memory on it; one it keeps is remembered by record().
  const auto env = sealed_for_bob("maybe");
  auto first = bob_codec_.open_unrecorded(env);
  ASSERT_TRUE(first);
  auto again = bob_codec_.open_unrecorded(env);  // not remembered: opens again
  ASSERT_TRUE(again);
  EXPECT_EQ(bob_codec_.stats().accepted(), 0u);
  ASSERT_TRUE(bob_codec_.record(*first));
  EXPECT_EQ(bob_codec_.stats().accepted(), 1u);
  EXPECT_EQ(bob_codec_.record(*again).code(), errc::duplicate);
  EXPECT_EQ(bob_codec_.open_unrecorded(env).code(), errc::duplicate);
  EXPECT_EQ(bob_codec_.open(env).code(), errc::duplicate);
  header h;
  h.sent_ms = clock_.now_ms() + skew + 1;  // the future beyond the window
  EXPECT_EQ(bob_codec_.open_unrecorded(sealed_for_bob("ahead", h)).code(), errc::too_new);
}

TEST_F(wire_test, counts_each_rejection_under_its_own_code) {
  // Operators read these counters; a check that counts under the wrong code hides attacks.
  const auto good = sealed_for_bob();
  header old_h;
  old_h.sent_ms = clock_.now_ms() - skew - 5;
  header new_h;
  new_h.sent_ms = clock_.now_ms() + skew + 5;
  auto flipped = good;
  flipped.back() ^= 1;
  auto no_body = build_message({0, 0, 0, std::string(60, 'r')}, clock_, fb::Body::NONE, nullptr);
  std::vector<uint8_t> big(limits{}.max_envelope_bytes + 1);
  const std::vector<uint8_t> junk(300, 7);

  ASSERT_TRUE(bob_codec_.open(good));
  EXPECT_EQ(bob_codec_.open(good).code(), errc::duplicate);
  EXPECT_EQ(bob_codec_.open(big).code(), errc::too_large);
  EXPECT_EQ(bob_codec_.open({}).code(), errc::too_small);
  EXPECT_EQ(bob_codec_.open(junk).code(), errc::not_an_envelope);
  EXPECT_EQ(bob_codec_.open(envelope_of_plain(cancel_message(clock_, "v"), 9)).code(),
            errc::bad_version);
  std::vector<uint8_t> k31(31), n24(24), ct(120);
  EXPECT_EQ(bob_codec_.open(raw_envelope(1, &k31, &n24, &ct)).code(), errc::bad_sender_key);
  std::vector<uint8_t> k32(32), n23(23);
  EXPECT_EQ(bob_codec_.open(raw_envelope(1, &k32, &n23, &ct)).code(), errc::bad_nonce);
  EXPECT_EQ(bob_codec_.open(flipped).code(), errc::decrypt_failed);
  EXPECT_EQ(bob_codec_.open(alice_codec_.seal(junk, bob_.pk)).code(), errc::not_a_message);
  EXPECT_EQ(bob_codec_.open(alice_codec_.seal(no_body, bob_.pk)).code(), errc::missing_body);
  EXPECT_EQ(bob_codec_.open(sealed_for_bob("o", old_h)).code(), errc::too_old);
  EXPECT_EQ(bob_codec_.open(sealed_for_bob("n", new_h)).code(), errc::too_new);

  const auto& s = bob_codec_.stats();
  for (size_t i = 0; i < static_cast<size_t>(errc::count_); ++i) {
    EXPECT_EQ(s.get(static_cast<errc>(i)), 1u) << name(static_cast<errc>(i));
  }
  EXPECT_EQ(s.accepted(), 1u);
  EXPECT_EQ(s.rejected(), static_cast<uint64_t>(errc::count_) - 1);
}

TEST(wire_errc, names_and_messages_match) {
  EXPECT_EQ(name(errc::decrypt_failed), "decrypt_failed");
  EXPECT_EQ(name(errc::too_new), "too_new");
  std::error_code ec = errc::duplicate;
  EXPECT_STREQ(ec.category().name(), "wire");
  EXPECT_EQ(ec.message(), "duplicate");
}

TEST(wire_seal, returns_empty_for_an_unusable_recipient_key) {
  box_keypair self = box_keypair::generate();
  loop::manual_clock clock;
  codec c(self, clock);
  EXPECT_TRUE(c.seal(cancel_message(clock, "x"), crypto::public_key{}).empty());
}

}  // namespace
}  // namespace hmq::core::wire
