#pragma once

// The agbot engine against in-memory seams: a fake exchange and outbox, a real agreement
// store (SQLite in memory) and a manual loop. Shared by agbot_engine_test and agbot_upgrade_test.

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agbot/agreement_store.h"
#include "agbot/engine.h"
#include "core/loop/loop.h"
#include "tests/support/agbot_fakes.h"

namespace hmq::agbot {
namespace {

using namespace std::chrono_literals;

class agbot_engine_test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = agreement_store::open_memory();
    ASSERT_TRUE(s);
    store_ = std::make_unique<agreement_store>(std::move(*s));

    gps_world(x_);
  }

  void add_node(const std::string& id, uint8_t key, const std::string& pattern = "acme/gps",
                const std::string& arch = "amd64") {
    add_gps_node(x_, id, key_of(key), pattern, arch);
  }

  engine_config config() {
    engine_config c;
    c.org = "acme";
    c.id = "ab1";
    c.exchange_key = exchange_key;
    c.reply_timeout = 30s;
    c.retry_min = 5s;
    c.retry_max = 60s;
    c.max_concurrent = 8;
    c.page_size = 2;
    return c;
  }

  // The engine, not started (messages may arrive before start()).
  void make(engine_config c) {
    engine_ = std::make_unique<engine>(loop_, std::move(c), x_, out_, *store_, [this] {
      char buf[33];
      std::snprintf(buf, sizeof buf, "%032x", ++next_id_);
      return std::string(buf);
    });
  }
  void start(engine_config c) {
    make(std::move(c));
    engine_->start();
    loop_.run_pending();
  }
  void start() { start(config()); }

  // The exchange's next event sequence number for this agbot (event_window).
  uint64_t next_seq() { return ++event_seq_; }
  uint64_t event_seq_ = 0;

  void deliver(const core::wire::opened& m) {
    engine_->on_message(m);
    loop_.run_pending();
  }

  void node_registered(const std::string& id, uint8_t key, const std::string& pattern) {
    deliver(inbound(exchange_key, fb::Body::Event, [&](flatbuffers::FlatBufferBuilder& b) {
      auto k = key_of(key);
      std::vector<uint8_t> kv(k.begin(), k.end());
      return fb::CreateEventDirect(b, fb::EventKind::node_registered, next_seq(), "acme",
                                   id.c_str(), pattern.c_str(), &kv, "mailbox", "amd64")
          .Union();
    }));
  }

  // As the exchange sends it since events carry the node's user inputs.
  void node_registered_with_inputs(const std::string& id, uint8_t key, const std::string& pattern,
                                   const std::string& mode) {
    fb::EventT e;
    e.kind = fb::EventKind::node_registered;
    e.seq = next_seq();
    e.org = "acme";
    e.id = id;
    e.pattern = pattern;
    auto k = key_of(key);
    e.node_public_key.assign(k.begin(), k.end());
    e.node_mailbox = "mailbox";
    e.node_arch = "amd64";
    e.node_user_inputs.push_back(user_input("gps", "HZN_MODE", mode));
    e.has_node_user_inputs = true;
    deliver(inbound(exchange_key, fb::Body::Event, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::Event::Pack(b, &e).Union();
    }));
  }

  core::wire::opened reply(uint8_t from, const std::string& id, fb::ReplyDecision d,
                           fb::CancelReason reason = fb::CancelReason::unspecified) {
    return inbound(key_of(from), fb::Body::Reply, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateReplyDirect(b, id.c_str(), d, reason, "").Union();
    });
  }

  std::vector<const fb::Proposal*> proposals() const {
    std::vector<const fb::Proposal*> out;
    for (auto* m : out_.of(fb::Body::Proposal)) out.push_back(m->msg()->body_as_Proposal());
    return out;
  }

  core::loop::manual_scheduler loop_;
  fake_exchange x_;
  fake_outbox out_;
  std::unique_ptr<agreement_store> store_;
  std::unique_ptr<engine> engine_;
  unsigned next_id_ = 0;
};

}  // namespace
}  // namespace hmq::agbot
