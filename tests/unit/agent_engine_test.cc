#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/engine.h"
#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "core/wire/codec.h"
#include "core/wire/service_signature.h"
#include "tests/support/proposals.h"

namespace hmq::agent {
namespace {

using namespace std::chrono_literals;
namespace wire = core::wire;

// Exchange fake: answers on the next loop turn, records every call.
class fake_exchange final : public exchange_api {
 public:
  explicit fake_exchange(core::loop::scheduler& loop) : loop_(loop) {}
  void register_node(const node_registration& r, done_fn cb) override {
    registrations.push_back(r);
    answer(std::move(cb), fail_register);
  }
  void unregister_node(const node_identity&, done_fn cb) override {
    ++unregisters;
    answer(std::move(cb), false);
  }
  void put_agreement(const node_identity&, const fb::AgreementRecordT& rec, done_fn cb) override {
    records[rec.agreement_id] = rec;
    answer(std::move(cb), false);
  }
  void delete_agreement(const node_identity&, const std::string& id, done_fn cb) override {
    records.erase(id);
    deletes.push_back(id);
    answer(std::move(cb), false);
  }
  void put_node_status(const node_identity&, const fb::StatusReportT& report, done_fn cb) override {
    ++status_reports;
    if (!report.services.empty() && report.services[0]) {
      last_restarts = report.services[0]->restarts;
      last_error = report.services[0]->last_error;
    }
    answer(std::move(cb), false);
  }
  int status_reports = 0;
  uint32_t last_restarts = 0;
  std::string last_error;
  void get_agbot_key(const node_identity&, const std::string& org, const std::string& id,
                     std::function<void(result<crypto::public_key>)> cb) override {
    ++key_lookups;
    auto it = agbot_keys.find(org + "/" + id);
    auto answer = [cb = std::move(cb), found = it != agbot_keys.end(), k = found_key(it)] {
      if (!found) return cb(core::error{make_error_code(errc::bad_request), "no such agbot"});
      cb(k);
    };
    if (hold_keys) return held_keys.push_back(std::move(answer));
    loop_.post(std::move(answer));
  }
  // With hold_keys the exchange does not answer key lookups until release_keys().
  bool hold_keys = false;
  std::vector<std::function<void()>> held_keys;
  void release_keys() {
    hold_keys = false;
    for (auto& a : std::exchange(held_keys, {})) loop_.post(std::move(a));
  }

  std::map<std::string, crypto::public_key> agbot_keys;
  int key_lookups = 0;
  void get_pattern(const node_identity&, const std::string& org, const std::string& name,
                   std::function<void(result<fb::PatternT>)> cb) override {
    ++pattern_reads;
    auto it = patterns.find(org + "/" + name);
    std::optional<fb::PatternT> p;
    if (it != patterns.end()) p = it->second;
    loop_.post([cb = std::move(cb), p = std::move(p)] {
      if (!p) return cb(core::error{make_error_code(errc::bad_request), "no such pattern"});
      cb(*p);
    });
  }
  // The pattern lists service org/url at `version` for amd64.
  void allow(const std::string& pattern, const std::string& org, const std::string& url,
             const std::string& version) {
    test::list_in_pattern(patterns[pattern], org, url, version);
  }
  std::map<std::string, fb::PatternT> patterns;
  int pattern_reads = 0;
  std::vector<node_registration> registrations;
  std::map<std::string, fb::AgreementRecordT> records;
  std::vector<std::string> deletes;
  int unregisters = 0;
  bool fail_register = false;

 private:
  crypto::public_key found_key(std::map<std::string, crypto::public_key>::iterator it) {
    return it == agbot_keys.end() ? crypto::public_key{} : it->second;
  }
  void answer(done_fn cb, bool fail) {
    loop_.post([cb = std::move(cb), fail] {
      if (fail) return cb(core::error{make_error_code(errc::bad_request), "refused"});
      cb(core::ok());
    });
  }
  core::loop::scheduler& loop_;
};

// Outbox fake: builds each message and keeps it with its recipient. `on_send` lets a test look
// at the world at the moment a message leaves.
class fake_outbox final : public outbox {
 public:
  struct sent {
    crypto::public_key to;
    std::vector<uint8_t> bytes;
    const fb::Message* message() const { return fb::GetMessage(bytes.data()); }
  };
  void send(const crypto::public_key& to, fb::Body type, const body_builder& body,
            done_fn done) override {
    flatbuffers::FlatBufferBuilder b;
    auto off = body(b);
    fb::FinishMessageBuffer(b, fb::CreateMessage(b, ++id_, 0, 0, 0, type, off));
    messages.push_back({to, {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()}});
    if (on_send) on_send(messages.back());
    if (done) {
      if (hold_completions) {
        held.push_back(std::move(done));
      } else {
        done(core::ok());
      }
    }
  }
  // With hold_completions the broker never acknowledges (as if the process died right after).
  bool hold_completions = false;
  std::vector<done_fn> held;
  std::vector<const fb::Reply*> replies() const {
    std::vector<const fb::Reply*> out;
    for (const auto& m : messages)
      if (auto* r = m.message()->body_as_Reply()) out.push_back(r);
    return out;
  }
  std::vector<const fb::Cancel*> cancels() const {
    std::vector<const fb::Cancel*> out;
    for (const auto& m : messages)
      if (auto* c = m.message()->body_as_Cancel()) out.push_back(c);
    return out;
  }
  std::vector<sent> messages;
  std::function<void(const sent&)> on_send;

 private:
  uint64_t id_ = 0;
};

constexpr const char* agreement_a = "0123456789abcdef0123456789abcdef";
constexpr const char* agreement_b = "fedcba9876543210fedcba9876543210";

class agent_engine : public ::testing::Test {
 protected:
  agent_engine()
      : store_(agent_store::open_memory().value()),
        x_(loop_),
        rt_(loop_, /*auto_complete=*/true),
        agbot_(crypto::box_keypair::generate()),
        publisher_(crypto::sign_keypair::generate()) {
    x_.agbot_keys["hub/agbot1"] = agbot_.pk;
    x_.allow("hub/gps", "hub", "https://acme.com/gps", "1.0.0");
    x_.allow("hub/gps", "hub", "https://acme.com/other", "1.0.0");
    opts_.finalize_timeout = 30s;
  }

  void SetUp() override {
    make_engine();
    EXPECT_TRUE(store_.add_trusted_key({publisher_.pk, "publisher", 1}).ok());
    register_node();
  }

  void make_engine() {
    eng_.reset();
    eng_ = std::make_unique<engine>(loop_, store_, x_, out_, rt_, opts_);
    ASSERT_TRUE(eng_->start().ok());
  }

  void register_node(std::string pattern = "hub/gps") {
    std::optional<result<void>> res;
    eng_->register_node({{"acme", "node1", "tok"}, std::move(pattern), "amd64", {}}, "[]",
                        [&](result<void> r) { res.emplace(std::move(r)); });
    loop_.run_pending();
    ASSERT_TRUE(res && res->ok());
  }

  std::vector<uint8_t> deployment_bytes() {
    return test::gps_deployment("registry.local/gps:1.0", "sha256:" + std::string(64, 'a'));
  }

  // A valid service signed by the trusted publisher; `tweak` changes it before packing.
  std::unique_ptr<fb::ProposedServiceT> service(std::string url = "https://acme.com/gps",
                                                fb::Sharing sharing = fb::Sharing::multiple) {
    auto ps = std::make_unique<fb::ProposedServiceT>();
    ps->is_top_level = true;
    ps->service = std::make_unique<fb::ServiceT>();
    auto& s = *ps->service;
    s.org = "hub";
    s.url = std::move(url);
    s.version = "1.0.0";
    s.arch = "amd64";
    s.sharable = sharing;
    s.deployment = deployment_bytes();
    wire::sign_service(s, publisher_);
    return ps;
  }

  fb::ProposalT proposal(std::string id = agreement_a) {
    fb::ProposalT p;
    p.agreement_id = std::move(id);
    p.pattern = "hub/gps";
    p.node_org = "acme";
    p.node_id = "node1";
    p.arch = "amd64";
    p.agbot = "hub/agbot1";
    p.services.push_back(service());
    return p;
  }

  wire::opened from(const crypto::box_keypair& sender, fb::MessageT msg) {
    return wire::opened{sender.pk, wire::build_message(std::move(msg), loop_.time())};
  }
  wire::opened proposal_msg(fb::ProposalT p) { return proposal_msg(agbot_, std::move(p)); }
  wire::opened proposal_msg(const crypto::box_keypair& sender, fb::ProposalT p) {
    fb::MessageT m;
    m.body.Set(std::move(p));
    return from(sender, std::move(m));
  }
  wire::opened reply_ack(const crypto::box_keypair& sender, std::string id, bool valid = true) {
    fb::ReplyAckT a;
    a.agreement_id = std::move(id);
    a.still_valid = valid;
    fb::MessageT m;
    m.body.Set(std::move(a));
    return from(sender, std::move(m));
  }
  wire::opened cancel(const crypto::box_keypair& sender, std::string id, fb::CancelReason r) {
    fb::CancelT c;
    c.agreement_id = std::move(id);
    c.reason = r;
    fb::MessageT m;
    m.body.Set(std::move(c));
    return from(sender, std::move(m));
  }

  void deliver(const wire::opened& m) {
    eng_->on_message(m);
    loop_.run_pending();
  }

  std::optional<stored_agreement> stored(const std::string& id) {
    auto all = store_.agreements();
    for (auto& a : all.value())
      if (a.id == id) return a;
    return std::nullopt;
  }

  core::loop::manual_scheduler loop_;
  agent_store store_;
  fake_exchange x_;
  fake_outbox out_;
  memory_runtime rt_;
  crypto::box_keypair agbot_;
  crypto::sign_keypair publisher_;
  engine_options opts_;
  std::unique_ptr<engine> eng_;
};

TEST_F(agent_engine, accepts_valid_proposal_and_persists_before_replying) {
  // The promise is on disk when the Reply leaves: a crash right after sending cannot forget it.
  std::optional<agreement_state> state_at_reply;
  out_.on_send = [&](const fake_outbox::sent& s) {
    if (s.message()->body_as_Reply()) {
      auto a = stored(agreement_a);
      if (a) state_at_reply = a->state;
    }
  };
  deliver(proposal_msg(proposal()));
  ASSERT_EQ(out_.replies().size(), 1u);
  EXPECT_EQ(out_.replies()[0]->decision(), fb::ReplyDecision::accept);
  EXPECT_EQ(out_.messages[0].to, agbot_.pk);
  ASSERT_TRUE(state_at_reply.has_value());
  EXPECT_EQ(*state_at_reply, agreement_state::accepted);
  EXPECT_EQ(eng_->stats().accepted, 1u);
}

TEST_F(agent_engine, rejects_tampered_deployment_signature_with_115_and_keeps_nothing) {
  auto p = proposal();
  // One letter of the image name after signing: still a valid Deployment buffer.
  auto& dep = p.services[0]->service->deployment;
  auto it = std::search(dep.begin(), dep.end(), std::begin("registry"), std::end("registry") - 1);
  ASSERT_NE(it, dep.end());
  *it = 'R';
  deliver(proposal_msg(std::move(p)));
  ASSERT_EQ(out_.replies().size(), 1u);
  EXPECT_EQ(out_.replies()[0]->decision(), fb::ReplyDecision::reject);
  EXPECT_EQ(out_.replies()[0]->reason(), fb::CancelReason::image_sig_verif_failure);
  EXPECT_TRUE(store_.agreements().value().empty());
  EXPECT_TRUE(eng_->agreements().empty());
}

// ---- issue 16: the agent runs only what the publisher signed, for the pattern it registered for

TEST_F(agent_engine, rejects_a_relabelled_service_with_115) {
  // A serving agbot changes what the signature covers without the publisher's key: another
  // version, another sharing mode, another required service, another declared input.
  std::vector<std::function<void(fb::ServiceT&)>> relabels = {
      [](fb::ServiceT& s) { s.version = "9.9.9"; }, [](fb::ServiceT& s) { s.org = "evil"; },
      [](fb::ServiceT& s) { s.sharable = fb::Sharing::singleton; },
      [](fb::ServiceT& s) {
        s.required_services.push_back(std::make_unique<fb::ServiceRefT>());
        s.required_services.back()->org = "evil";
        s.required_services.back()->url = "miner";
      },
      [](fb::ServiceT& s) {
        s.user_inputs.push_back(std::make_unique<fb::UserInputDefT>());
        s.user_inputs.back()->name = "LD_PRELOAD";
        s.user_inputs.back()->type = "string";
      }};
  for (size_t i = 0; i < relabels.size(); ++i) {
    auto p = proposal();
    relabels[i](*p.services[0]->service);
    deliver(proposal_msg(std::move(p)));
    ASSERT_EQ(out_.replies().size(), i + 1);
    EXPECT_EQ(out_.replies()[i]->decision(), fb::ReplyDecision::reject) << i;
    EXPECT_EQ(out_.replies()[i]->reason(), fb::CancelReason::image_sig_verif_failure) << i;
  }
  EXPECT_EQ(eng_->stats().rejected, relabels.size());
  EXPECT_TRUE(store_.agreements().value().empty());
  // The node keeps working: an honest proposal is accepted.
  deliver(proposal_msg(proposal(agreement_b)));
  EXPECT_EQ(out_.replies().back()->decision(), fb::ReplyDecision::accept);
}

TEST_F(agent_engine, rejects_an_old_deployment_only_signature_saying_to_republish) {
  auto p = proposal();
  p.services[0]->service->service_signature.clear();
  deliver(proposal_msg(std::move(p)));
  ASSERT_EQ(out_.replies().size(), 1u);
  EXPECT_EQ(out_.replies()[0]->reason(), fb::CancelReason::image_sig_verif_failure);
  EXPECT_NE(out_.replies()[0]->message()->str().find("re-publish"), std::string::npos)
      << out_.replies()[0]->message()->str();
}

TEST_F(agent_engine, rejects_a_validly_signed_version_the_pattern_does_not_list) {
  // A downgrade: the publisher did sign 0.9.0 once, but the node's pattern lists 1.0.0 only.
  auto p = proposal();
  auto& s = *p.services[0]->service;
  s.version = "0.9.0";
  wire::sign_service(s, publisher_);
  deliver(proposal_msg(std::move(p)));
  ASSERT_EQ(out_.replies().size(), 1u);
  EXPECT_EQ(out_.replies()[0]->reason(), fb::CancelReason::policy_changed);
  EXPECT_NE(out_.replies()[0]->message()->str().find("not in pattern hub/gps"), std::string::npos)
      << out_.replies()[0]->message()->str();
  EXPECT_EQ(x_.pattern_reads, 1);
  // Listed versions pass, without reading the pattern again.
  deliver(proposal_msg(proposal(agreement_b)));
  EXPECT_EQ(out_.replies().back()->decision(), fb::ReplyDecision::accept);
  EXPECT_EQ(x_.pattern_reads, 1);
}

TEST_F(agent_engine, a_version_a_rollout_added_is_found_by_reading_the_pattern_again) {
  deliver(proposal_msg(proposal()));  // reads the pattern: 1.0.0
  x_.allow("hub/gps", "hub", "https://acme.com/gps", "1.1.0");
  loop_.advance(5s);
  auto p = proposal(agreement_b);
  auto& s = *p.services[0]->service;
  s.version = "1.1.0";
  wire::sign_service(s, publisher_);
  deliver(proposal_msg(std::move(p)));
  EXPECT_EQ(out_.replies().back()->decision(), fb::ReplyDecision::accept);
  EXPECT_EQ(x_.pattern_reads, 2);
}

TEST_F(agent_engine, a_version_removed_from_the_pattern_stops_passing_after_the_cache_ttl) {
  deliver(proposal_msg(proposal()));  // reads the pattern: 1.0.0
  x_.patterns["hub/gps"] = fb::PatternT{};
  x_.allow("hub/gps", "hub", "https://acme.com/gps", "1.1.0");  // 1.0.0 is gone
  deliver(proposal_msg(proposal(agreement_b)));                 // the cached copy is still trusted
  EXPECT_EQ(out_.replies().back()->decision(), fb::ReplyDecision::accept);
  loop_.advance(11min);
  deliver(proposal_msg(proposal("11112222333344445555666677778888")));
  EXPECT_EQ(out_.replies().back()->decision(), fb::ReplyDecision::reject);
  EXPECT_EQ(out_.replies().back()->reason(), fb::CancelReason::policy_changed);
  EXPECT_EQ(x_.pattern_reads, 2);
}

TEST_F(agent_engine, rejects_undeclared_and_mistyped_user_inputs_with_120) {
  auto with_input = [&](const std::string& id, const char* name, const char* value) {
    auto p = proposal(id);
    auto& ps = *p.services[0];
    test::declare_input(*ps.service, "PORT", "int", "1");
    test::declare_input(*ps.service, "VERBOSE", "boolean", "1");
    wire::sign_service(*ps.service, publisher_);
    test::give_input(ps, name, value);
    return p;
  };
  deliver(proposal_msg(with_input(agreement_a, "LD_PRELOAD", "/tmp/evil.so")));
  deliver(proposal_msg(with_input(agreement_a, "PATH", "/tmp")));
  deliver(proposal_msg(with_input(agreement_a, "PORT", "80; rm -rf /")));
  deliver(proposal_msg(with_input(agreement_a, "VERBOSE", "yes")));
  ASSERT_EQ(out_.replies().size(), 4u);
  for (const auto* r : out_.replies()) {
    EXPECT_EQ(r->decision(), fb::ReplyDecision::reject);
    EXPECT_EQ(r->reason(), fb::CancelReason::node_userinput_changed) << r->message()->str();
  }
  EXPECT_NE(out_.replies()[0]->message()->str().find("LD_PRELOAD is not declared"),
            std::string::npos);
  EXPECT_NE(out_.replies()[2]->message()->str().find("must be an int"), std::string::npos);
  EXPECT_TRUE(store_.agreements().value().empty());
  deliver(proposal_msg(with_input(agreement_b, "PORT", "8080")));
  EXPECT_EQ(out_.replies().back()->decision(), fb::ReplyDecision::accept);
}

TEST_F(agent_engine, fresh_keys_naming_a_known_agbot_cost_no_lookup_and_keep_its_key) {
  // A flood from fresh sender keys, each claiming to be the agbot the node already knows: the
  // cached key answers them all, nothing asks the exchange, and the real agbot goes on.
  deliver(proposal_msg(proposal(agreement_a)));
  ASSERT_EQ(x_.key_lookups, 1);
  for (int i = 0; i < 100; ++i) {
    char id[33];
    std::snprintf(id, sizeof id, "%032x", i + 1);
    deliver(proposal_msg(crypto::box_keypair::generate(), proposal(id)));
  }
  EXPECT_EQ(x_.key_lookups, 1);
  EXPECT_EQ(eng_->stats().dropped_bad_agbot, 100u);
  deliver(proposal_msg(proposal(agreement_b)));
  EXPECT_EQ(x_.key_lookups, 1);
  EXPECT_EQ(out_.replies().back()->decision(), fb::ReplyDecision::accept);
}

TEST_F(agent_engine, lookups_for_unknown_agbots_cannot_crowd_out_a_known_one) {
  deliver(proposal_msg(proposal(agreement_a)));  // hub/agbot1 is known from now on
  loop_.advance(11min);                          // its cached key expired: a lookup again
  x_.hold_keys = true;
  for (int i = 0; i < 40; ++i) {
    char id[33];
    std::snprintf(id, sizeof id, "%032x", i + 1);
    auto p = proposal(id);
    p.agbot = "evil/bot" + std::to_string(i);  // a fresh name each: no coalescing
    deliver(proposal_msg(crypto::box_keypair::generate(), std::move(p)));
  }
  EXPECT_EQ(eng_->stats().dropped_busy, 8u);     // 32 in flight in the unknown agbots' lane
  deliver(proposal_msg(proposal(agreement_b)));  // the known agbot's lane is free
  EXPECT_EQ(eng_->stats().dropped_busy, 8u);
  x_.release_keys();
  loop_.run_pending();
  EXPECT_EQ(eng_->stats().dropped_bad_agbot, 32u);
  EXPECT_EQ(out_.replies().back()->decision(), fb::ReplyDecision::accept);
  EXPECT_EQ(out_.replies().back()->agreement_id()->str(), agreement_b);
}

TEST_F(agent_engine, rejects_signature_by_untrusted_publisher_key) {
  // Correctly signed, but by a key nobody imported.
  auto stranger = crypto::sign_keypair::generate();
  auto p = proposal();
  auto& s = *p.services[0]->service;
  wire::sign_service(s, stranger);
  deliver(proposal_msg(std::move(p)));
  ASSERT_EQ(out_.replies().size(), 1u);
  EXPECT_EQ(out_.replies()[0]->reason(), fb::CancelReason::image_sig_verif_failure);
  EXPECT_TRUE(store_.agreements().value().empty());
}

TEST_F(agent_engine, rejects_other_pattern_with_121) {
  auto p = proposal();
  p.pattern = "hub/other";
  deliver(proposal_msg(std::move(p)));
  ASSERT_EQ(out_.replies().size(), 1u);
  EXPECT_EQ(out_.replies()[0]->reason(), fb::CancelReason::node_pattern_changed);
  EXPECT_TRUE(store_.agreements().value().empty());
}

TEST_F(agent_engine, rejects_other_arch_with_101) {
  auto p = proposal();
  p.arch = "arm64";
  deliver(proposal_msg(std::move(p)));
  ASSERT_EQ(out_.replies().size(), 1u);
  EXPECT_EQ(out_.replies()[0]->reason(), fb::CancelReason::policy_changed);
}

TEST_F(agent_engine, rejects_missing_required_user_input_with_120) {
  auto p = proposal();
  auto def = std::make_unique<fb::UserInputDefT>();
  def->name = "HZN_GPS_PORT";
  def->type = "int";
  def->has_default = false;
  p.services[0]->service->user_inputs.push_back(std::move(def));
  wire::sign_service(*p.services[0]->service, publisher_);
  deliver(proposal_msg(std::move(p)));
  ASSERT_EQ(out_.replies().size(), 1u);
  EXPECT_EQ(out_.replies()[0]->reason(), fb::CancelReason::node_userinput_changed);
}

TEST_F(agent_engine, rejects_second_agreement_for_an_exclusive_service) {
  auto p = proposal();
  p.services[0]->service->sharable = fb::Sharing::exclusive;
  wire::sign_service(*p.services[0]->service, publisher_);
  deliver(proposal_msg(std::move(p)));
  auto q = proposal(agreement_b);
  deliver(proposal_msg(std::move(q)));
  ASSERT_EQ(out_.replies().size(), 2u);
  EXPECT_EQ(out_.replies()[0]->decision(), fb::ReplyDecision::accept);
  EXPECT_EQ(out_.replies()[1]->decision(), fb::ReplyDecision::reject);
  EXPECT_EQ(out_.replies()[1]->reason(), fb::CancelReason::policy_changed);
}

TEST_F(agent_engine, redelivered_proposal_gets_the_same_reply_and_one_agreement) {
  deliver(proposal_msg(proposal()));
  deliver(proposal_msg(proposal()));  // new message id, same agreement id (agbot re-send)
  ASSERT_EQ(out_.replies().size(), 2u);
  EXPECT_EQ(out_.replies()[1]->decision(), fb::ReplyDecision::accept);
  EXPECT_EQ(out_.replies()[1]->agreement_id()->str(), agreement_a);
  EXPECT_EQ(store_.agreements().value().size(), 1u);
  EXPECT_EQ(eng_->stats().duplicates, 1u);
}

TEST_F(agent_engine, redelivered_rejected_proposal_is_rejected_the_same_way) {
  auto p = proposal();
  p.pattern = "hub/other";
  auto q = p;
  deliver(proposal_msg(std::move(p)));
  deliver(proposal_msg(std::move(q)));
  ASSERT_EQ(out_.replies().size(), 2u);
  EXPECT_EQ(out_.replies()[0]->reason(), out_.replies()[1]->reason());
  EXPECT_EQ(out_.replies()[1]->decision(), fb::ReplyDecision::reject);
}

TEST_F(agent_engine, proposal_from_a_key_that_is_not_the_named_agbot_is_dropped) {
  auto impostor = crypto::box_keypair::generate();
  deliver(proposal_msg(impostor, proposal()));
  EXPECT_TRUE(out_.messages.empty());
  EXPECT_EQ(eng_->stats().dropped_bad_agbot, 1u);
  EXPECT_TRUE(store_.agreements().value().empty());
}

TEST_F(agent_engine,
       second_proposal_from_a_known_agbot_needs_no_key_lookup_and_a_changed_key_is_looked_up) {
  auto numbered = [&](const char* id) {
    auto p = proposal(id);
    p.services[0] = service(std::string("https://acme.com/s") + id);
    return p;
  };
  for (const char* n : {"1", "2", "3", "4"})
    x_.allow("hub/gps", "hub", std::string("https://acme.com/s0000000000000000000000000000000") + n,
             "1.0.0");
  deliver(proposal_msg(numbered("00000000000000000000000000000001")));
  EXPECT_EQ(x_.key_lookups, 1);
  deliver(proposal_msg(numbered("00000000000000000000000000000002")));
  EXPECT_EQ(x_.key_lookups, 1);  // the confirmed key was remembered
  ASSERT_EQ(out_.replies().size(), 2u);
  EXPECT_EQ(out_.replies()[1]->decision(), fb::ReplyDecision::accept);

  // The agbot's key rotates: a proposal from the new key is checked with the exchange again
  // (once agbot_key_recheck has passed since the last lookup for this agbot).
  loop_.advance(31s);
  auto rotated = crypto::box_keypair::generate();
  x_.agbot_keys["hub/agbot1"] = rotated.pk;
  deliver(proposal_msg(rotated, numbered("00000000000000000000000000000003")));
  EXPECT_EQ(x_.key_lookups, 2);
  ASSERT_EQ(out_.replies().size(), 3u);
  EXPECT_EQ(out_.messages.back().to, rotated.pk);
  EXPECT_EQ(out_.replies()[2]->decision(), fb::ReplyDecision::accept);

  // The old key is no longer the agbot's: dropped, without another lookup this soon.
  deliver(proposal_msg(numbered("00000000000000000000000000000004")));
  EXPECT_EQ(x_.key_lookups, 2);
  EXPECT_EQ(out_.replies().size(), 3u);
  EXPECT_EQ(eng_->stats().dropped_bad_agbot, 1u);
}

TEST_F(agent_engine, remembered_agbot_key_is_looked_up_again_after_its_ttl) {
  opts_.agbot_key_ttl = 1min;
  make_engine();
  deliver(proposal_msg(proposal(agreement_a)));
  EXPECT_EQ(x_.key_lookups, 1);
  loop_.advance(2min);
  auto p = proposal(agreement_b);
  p.services[0] = service("https://acme.com/other");
  deliver(proposal_msg(std::move(p)));
  EXPECT_EQ(x_.key_lookups, 2);
}

TEST_F(agent_engine, reply_ack_finalizes_records_in_exchange_and_deploys) {
  deliver(proposal_msg(proposal()));
  deliver(reply_ack(agbot_, agreement_a));
  auto a = stored(agreement_a);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->state, agreement_state::finalized);
  EXPECT_TRUE(a->exchange_synced);
  ASSERT_EQ(x_.records.count(agreement_a), 1u);
  EXPECT_EQ(x_.records[agreement_a].state, fb::AgreementState::finalized);
  EXPECT_EQ(x_.records[agreement_a].service_url, "https://acme.com/gps");
  EXPECT_TRUE(rt_.running(agreement_a));
  ASSERT_EQ(rt_.workloads().at(agreement_a).services.size(), 1u);
}

TEST_F(agent_engine, reply_ack_from_another_key_is_ignored_and_counted) {
  deliver(proposal_msg(proposal()));
  auto other = crypto::box_keypair::generate();
  deliver(reply_ack(other, agreement_a));
  EXPECT_EQ(stored(agreement_a)->state, agreement_state::accepted);
  EXPECT_EQ(eng_->stats().dropped_not_owner, 1u);
  EXPECT_FALSE(rt_.running(agreement_a));
  EXPECT_TRUE(x_.records.empty());
}

TEST_F(agent_engine, cancel_from_another_key_is_ignored_and_counted) {
  deliver(proposal_msg(proposal()));
  deliver(reply_ack(agbot_, agreement_a));
  auto other = crypto::box_keypair::generate();
  deliver(cancel(other, agreement_a, fb::CancelReason::ab_user_requested));
  EXPECT_EQ(stored(agreement_a)->state, agreement_state::finalized);
  EXPECT_EQ(eng_->stats().dropped_not_owner, 1u);
  EXPECT_TRUE(rt_.running(agreement_a));
}

TEST_F(agent_engine, no_reply_ack_before_finalize_timeout_cancels_with_107) {
  deliver(proposal_msg(proposal()));
  loop_.advance(29s);
  EXPECT_TRUE(out_.cancels().empty());
  loop_.advance(2s);
  ASSERT_EQ(out_.cancels().size(), 1u);
  EXPECT_EQ(out_.cancels()[0]->reason(), fb::CancelReason::no_reply_ack);
  EXPECT_EQ(stored(agreement_a)->state, agreement_state::cancelled);
  EXPECT_EQ(stored(agreement_a)->reason, 107);
  // A late ReplyAck changes nothing.
  deliver(reply_ack(agbot_, agreement_a));
  EXPECT_EQ(stored(agreement_a)->state, agreement_state::cancelled);
  EXPECT_FALSE(rt_.running(agreement_a));
}

TEST_F(agent_engine, cancel_from_agbot_removes_workload_and_exchange_record) {
  deliver(proposal_msg(proposal()));
  deliver(reply_ack(agbot_, agreement_a));
  deliver(cancel(agbot_, agreement_a, fb::CancelReason::ab_node_heartbeat));
  auto a = stored(agreement_a);
  EXPECT_EQ(a->state, agreement_state::cancelled);
  EXPECT_EQ(a->reason, 208);
  EXPECT_FALSE(rt_.running(agreement_a));
  EXPECT_EQ(x_.records.count(agreement_a), 0u);
  EXPECT_TRUE(out_.cancels().empty());  // the agbot knows already
  // A re-delivered Cancel changes nothing.
  deliver(cancel(agbot_, agreement_a, fb::CancelReason::ab_node_heartbeat));
  EXPECT_EQ(rt_.removes(), 1);
}

TEST_F(agent_engine, unregister_cancels_every_agreement_with_105) {
  deliver(proposal_msg(proposal()));
  deliver(reply_ack(agbot_, agreement_a));
  auto p = proposal(agreement_b);
  p.services[0] = service("https://acme.com/other");
  deliver(proposal_msg(std::move(p)));
  std::optional<result<void>> res;
  eng_->unregister_node([&](result<void> r) { res.emplace(std::move(r)); });
  loop_.run_pending();
  ASSERT_TRUE(res && res->ok());
  ASSERT_EQ(out_.cancels().size(), 2u);
  for (const auto* c : out_.cancels()) EXPECT_EQ(c->reason(), fb::CancelReason::user_requested);
  EXPECT_EQ(stored(agreement_a)->reason, 105);
  EXPECT_EQ(stored(agreement_b)->reason, 105);
  EXPECT_FALSE(rt_.running(agreement_a));
  EXPECT_EQ(x_.unregisters, 1);
  EXPECT_FALSE(store_.registration().value().has_value());
}

TEST_F(agent_engine, restart_resumes_accepted_agreement_and_finalizes_on_reply_ack) {
  deliver(proposal_msg(proposal()));
  make_engine();  // same agent.db, new process
  deliver(reply_ack(agbot_, agreement_a));
  EXPECT_EQ(stored(agreement_a)->state, agreement_state::finalized);
  EXPECT_TRUE(rt_.running(agreement_a));
}

TEST_F(agent_engine, restart_keeps_the_finalize_deadline) {
  deliver(proposal_msg(proposal()));
  loop_.advance(20s);
  make_engine();
  loop_.advance(11s);
  ASSERT_EQ(out_.cancels().size(), 1u);
  EXPECT_EQ(out_.cancels()[0]->reason(), fb::CancelReason::no_reply_ack);
}

TEST_F(agent_engine, cancel_not_acknowledged_by_the_broker_is_sent_again_after_restart) {
  // Persist-then-send leaves a window: a crash after persisting "cancelled" but before the
  // broker took the Cancel. The restarted agent sends it again; an acknowledged one is not.
  deliver(proposal_msg(proposal()));
  out_.hold_completions = true;
  loop_.advance(31s);  // finalize timeout -> Cancel 107, never acknowledged
  ASSERT_EQ(out_.cancels().size(), 1u);
  EXPECT_TRUE(stored(agreement_a)->cancel_unsent);
  out_.hold_completions = false;
  make_engine();
  ASSERT_EQ(out_.cancels().size(), 2u);
  EXPECT_EQ(out_.cancels()[1]->reason(), fb::CancelReason::no_reply_ack);
  EXPECT_FALSE(stored(agreement_a)->cancel_unsent);
  make_engine();
  EXPECT_EQ(out_.cancels().size(), 2u);
}

TEST_F(agent_engine, runtime_failure_cancels_with_103) {
  memory_runtime manual(loop_, /*auto_complete=*/false);
  engine e(loop_, store_, x_, out_, manual, opts_);
  ASSERT_TRUE(e.start().ok());
  e.on_message(proposal_msg(proposal()));
  loop_.run_pending();
  e.on_message(reply_ack(agbot_, agreement_a));
  loop_.run_pending();
  ASSERT_TRUE(
      manual.finish(agreement_a, core::error{make_error_code(errc::bad_request), "pull failed"}));
  loop_.run_pending();
  ASSERT_EQ(out_.cancels().size(), 1u);
  EXPECT_EQ(out_.cancels()[0]->reason(), fb::CancelReason::container_failure);
}

TEST_F(agent_engine, agreement_verify_answers_exists_only_to_the_proposer) {
  deliver(proposal_msg(proposal()));
  auto verify = [&](const crypto::box_keypair& who, std::string id) {
    fb::AgreementVerifyT v;
    v.agreement_id = std::move(id);
    fb::MessageT m;
    m.body.Set(std::move(v));
    deliver(from(who, std::move(m)));
    return out_.messages.back().message()->body_as_AgreementVerifyReply()->exists();
  };
  EXPECT_TRUE(verify(agbot_, agreement_a));
  EXPECT_FALSE(verify(agbot_, agreement_b));
  EXPECT_FALSE(verify(crypto::box_keypair::generate(), agreement_a));
}

TEST_F(agent_engine, proposal_flood_is_bounded_while_agbot_lookups_are_in_flight) {
  // Each new proposal costs an exchange lookup; past the bound they are dropped, not queued.
  opts_.max_pending_proposals = 2;
  make_engine();
  for (const char* id : {"00000000000000000000000000000001", "00000000000000000000000000000002",
                         "00000000000000000000000000000003"}) {
    auto p = proposal(id);
    p.services[0] = service(std::string("https://acme.com/s") + id);
    eng_->on_message(proposal_msg(std::move(p)));
  }
  EXPECT_EQ(eng_->stats().dropped_busy, 1u);
  loop_.run_pending();
  EXPECT_EQ(out_.replies().size(), 2u);
}

TEST_F(agent_engine, proposal_with_malformed_agreement_id_is_dropped) {
  deliver(proposal_msg(proposal("not-hex")));
  EXPECT_TRUE(out_.messages.empty());
  EXPECT_EQ(eng_->stats().dropped_malformed, 1u);
}

TEST_F(agent_engine, failed_registration_keeps_nothing) {
  std::optional<result<void>> res;
  ASSERT_TRUE(store_.clear_registration().ok());
  x_.fail_register = true;
  eng_->register_node({{"acme", "node2", "bad"}, "hub/gps", "amd64", {}}, "[]",
                      [&](result<void> r) { res.emplace(std::move(r)); });
  loop_.run_pending();
  ASSERT_TRUE(res);
  EXPECT_FALSE(res->ok());
  EXPECT_FALSE(store_.registration().value().has_value());
}

// ---- upgrades (a Proposal that supersedes a running agreement)

TEST_F(agent_engine, container_crash_and_restart_reach_the_event_log_and_the_status_report) {
  deliver(proposal_msg(proposal()));
  deliver(reply_ack(agbot_, agreement_a));
  ASSERT_TRUE(rt_.running(agreement_a));
  loop_.advance(1h);  // past the status report's minimum interval
  rt_.report(agreement_a, "container_crashed", "gps exited (1 in the last 60 s)");
  rt_.report(agreement_a, "container_restarted", "gps");
  loop_.advance(1h);
  EXPECT_EQ(x_.last_restarts, 1u);
  EXPECT_EQ(x_.last_error, "gps exited (1 in the last 60 s)");
  auto log = eng_->events().list(agreement_a, 100);
  ASSERT_TRUE(log.ok()) << log.err().message();
  std::vector<std::string> kinds;
  for (const auto& e : *log) kinds.push_back(e.kind);
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "container_crashed"), kinds.end());
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "container_restarted"), kinds.end());
}

TEST_F(agent_engine, prunes_old_cancelled_agreements_beyond_the_kept_history) {
  opts_.keep_cancelled = 2;
  opts_.prune_after = 1h;
  make_engine();
  // Three agreements accepted, finalized and cancelled by the agbot, one after the other.
  std::vector<std::string> ids = {std::string(31, '1') + "a", std::string(31, '2') + "b",
                                  std::string(31, '3') + "c"};
  for (const auto& id : ids) {
    deliver(proposal_msg(proposal(id)));
    deliver(reply_ack(agbot_, id));
    deliver(cancel(agbot_, id, fb::CancelReason::ab_user_requested));
    loop_.advance(1min);
  }
  ASSERT_EQ(store_.agreements().value().size(), 3u) << "too recent to prune";
  loop_.advance(2h);
  // The next cancel triggers the prune: the oldest goes, the newest two stay.
  const std::string fourth = std::string(31, '4') + "d";
  deliver(proposal_msg(proposal(fourth)));
  deliver(reply_ack(agbot_, fourth));
  deliver(cancel(agbot_, fourth, fb::CancelReason::ab_user_requested));
  loop_.run_pending();
  auto left = store_.agreements().value();
  std::set<std::string> kept;
  for (const auto& a : left) kept.insert(a.id);
  EXPECT_EQ(kept, (std::set<std::string>{ids[2], fourth}));
  EXPECT_EQ(eng_->stats().pruned, 2u);
  auto in_memory = eng_->agreements();
  EXPECT_TRUE(std::none_of(in_memory.begin(), in_memory.end(),
                           [&](const stored_agreement& a) { return a.id == ids[0]; }));
}

class agent_upgrade : public agent_engine {
 protected:
  agent_upgrade() {
    opts_.upgrade_verify_window = 1s;
    x_.allow("hub/gps", "hub", "https://acme.com/gps", "1.1.0");  // the rollout's new version
  }

  // agreement_a runs 1.0.0; agreement_b (1.1.0, `env` in its container) supersedes it.
  void run_a() {
    deliver(proposal_msg(proposal()));
    deliver(reply_ack(agbot_, agreement_a));
    ASSERT_TRUE(rt_.running(agreement_a));
  }
  fb::ProposalT upgrade_proposal(std::vector<std::string> env = {}) {
    auto p = proposal(agreement_b);
    p.supersedes = agreement_a;
    auto& s = *p.services[0]->service;
    s.version = "1.1.0";
    fb::DeploymentT d;
    flatbuffers::GetRoot<fb::Deployment>(s.deployment.data())->UnPackTo(&d);
    d.containers[0]->environment = std::move(env);
    flatbuffers::FlatBufferBuilder b;
    b.Finish(fb::Deployment::Pack(b, &d));
    s.deployment.assign(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
    wire::sign_service(s, publisher_);
    return p;
  }
  std::vector<const fb::Cancel*> cancels_of(const std::string& id) {
    std::vector<const fb::Cancel*> out;
    for (const auto* c : out_.cancels())
      if (c->agreement_id()->str() == id) out.push_back(c);
    return out;
  }
};

TEST_F(agent_upgrade, fetches_first_then_swaps_and_gives_up_the_old_agreement_once_verified) {
  run_a();
  deliver(proposal_msg(upgrade_proposal()));
  ASSERT_EQ(out_.replies().size(), 2u);
  EXPECT_EQ(out_.replies()[1]->decision(), fb::ReplyDecision::accept);
  EXPECT_TRUE(rt_.running(agreement_a));  // nothing changes before the ReplyAck
  deliver(reply_ack(agbot_, agreement_b));
  loop_.run_pending();
  EXPECT_EQ(rt_.prepares(), 1);
  EXPECT_TRUE(rt_.running(agreement_b));
  EXPECT_FALSE(rt_.running(agreement_a));
  EXPECT_TRUE(cancels_of(agreement_a).empty());  // still verifying
  loop_.advance(1s);
  ASSERT_EQ(cancels_of(agreement_a).size(), 1u);
  EXPECT_EQ(cancels_of(agreement_a)[0]->reason(), fb::CancelReason::ab_upgrade_superseded);
  EXPECT_TRUE(cancels_of(agreement_b).empty());
  EXPECT_EQ(stored(agreement_a)->state, agreement_state::cancelled);
  EXPECT_EQ(stored(agreement_b)->state, agreement_state::finalized);
  EXPECT_TRUE(rt_.running(agreement_b));
  EXPECT_EQ(eng_->stats().upgrades, 1u);
}

TEST_F(agent_upgrade, restores_the_previous_version_when_the_new_one_crash_loops_in_its_window) {
  run_a();
  deliver(proposal_msg(upgrade_proposal({"HMQ_TEST_CRASH=1"})));
  deliver(reply_ack(agbot_, agreement_b));
  loop_.run_pending();
  ASSERT_TRUE(rt_.running(agreement_b));
  loop_.advance(300ms);  // the memory runtime's test crash fires inside the 1 s window
  loop_.run_pending();
  ASSERT_EQ(cancels_of(agreement_b).size(), 1u);
  EXPECT_EQ(cancels_of(agreement_b)[0]->reason(), fb::CancelReason::container_failure);
  EXPECT_TRUE(cancels_of(agreement_a).empty());
  EXPECT_TRUE(rt_.running(agreement_a));
  EXPECT_FALSE(rt_.running(agreement_b));
  EXPECT_EQ(stored(agreement_a)->state, agreement_state::finalized);
  EXPECT_EQ(stored(agreement_b)->state, agreement_state::cancelled);
  EXPECT_EQ(eng_->stats().rollbacks, 1u);
  auto log = eng_->events().list(agreement_b, 100);
  ASSERT_TRUE(log.ok()) << log.err().message();
  EXPECT_TRUE(std::any_of(log->begin(), log->end(), [](const event_record& e) {
    return e.kind == "container_crashed";
  })) << "the crash is not in the event log";
  EXPECT_TRUE(std::any_of(log->begin(), log->end(), [](const event_record& e) {
    return e.kind == "upgrade_rolled_back";
  })) << "the rollback is not in the event log";
  loop_.advance(2s);  // the window's end changes nothing any more
  EXPECT_TRUE(cancels_of(agreement_a).empty());
}

TEST_F(agent_upgrade, a_failed_fetch_never_stops_the_running_version) {
  run_a();
  deliver(proposal_msg(upgrade_proposal({"HMQ_TEST_PULL_FAIL=1"})));
  deliver(reply_ack(agbot_, agreement_b));
  loop_.run_pending();
  ASSERT_EQ(cancels_of(agreement_b).size(), 1u);
  EXPECT_EQ(cancels_of(agreement_b)[0]->reason(), fb::CancelReason::image_fetch_failure);
  EXPECT_TRUE(rt_.running(agreement_a));
  EXPECT_EQ(rt_.removes(), 0);
}

TEST_F(agent_upgrade, an_agbot_cancel_during_verification_restores_the_previous_version) {
  run_a();
  deliver(proposal_msg(upgrade_proposal()));
  deliver(reply_ack(agbot_, agreement_b));
  loop_.run_pending();
  deliver(cancel(agbot_, agreement_b, fb::CancelReason::ab_no_data_received));
  loop_.run_pending();
  EXPECT_TRUE(rt_.running(agreement_a));
  EXPECT_FALSE(rt_.running(agreement_b));
  EXPECT_TRUE(cancels_of(agreement_a).empty());
  loop_.advance(2s);
  EXPECT_TRUE(cancels_of(agreement_a).empty());
}

TEST_F(agent_upgrade, the_superseded_agreement_does_not_block_an_exclusive_service) {
  // Property: an upgrade of an exclusive service is not refused as a sharing conflict.
  auto p = proposal();
  p.services[0]->service->sharable = fb::Sharing::exclusive;
  wire::sign_service(*p.services[0]->service, publisher_);
  deliver(proposal_msg(std::move(p)));
  deliver(reply_ack(agbot_, agreement_a));
  auto up = upgrade_proposal();
  up.services[0]->service->sharable = fb::Sharing::exclusive;
  wire::sign_service(*up.services[0]->service, publisher_);
  deliver(proposal_msg(std::move(up)));
  ASSERT_EQ(out_.replies().size(), 2u);
  EXPECT_EQ(out_.replies()[1]->decision(), fb::ReplyDecision::accept);
}

}  // namespace
}  // namespace hmq::agent
