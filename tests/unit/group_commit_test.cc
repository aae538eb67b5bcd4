// Group commit in core/store: many requests' writes in one transaction, savepoints per request,
// callbacks only after the COMMIT, and a failed COMMIT failing (and storing) nothing.
// On the exchange's RPC handler too, the way hmq-exchange drives it. No sockets.
#include "core/store/group_commit.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "agbot/agreement_store.h"
#include "agbot/group_seams.h"
#include "core/crypto/crypto.h"
#include "core/loop/loop.h"
#include "core/store/store.h"
#include "exchange/db.h"
#include "exchange/service.h"

namespace hmq {
namespace {

using core::result;
using core::store::database;
using core::store::group_commit;

database kv_db() {
  auto db = database::open_memory();
  EXPECT_TRUE(db);
  EXPECT_TRUE(db->exec("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)"));
  return std::move(*db);
}

result<void> put(database& db, const std::string& k, int64_t v) {
  return db.transaction([&]() -> result<void> {
    auto st = db.cached("INSERT INTO kv (k, v) VALUES (?, ?)");
    if (!st) return st.err();
    (*st)->bind_all(std::string_view(k), v);
    auto n = (*st)->exec();
    if (!n) return n.err();
    return {};
  });
}

int64_t rows(database& db) {
  auto st = db.prepare("SELECT count(*) FROM kv");
  EXPECT_TRUE(st);
  EXPECT_TRUE(*st->step());
  return st->column_int(0);
}

TEST(store_commits, counts_every_write_transaction) {
  auto db = kv_db();
  auto before = db.commits();
  ASSERT_TRUE(put(db, "a", 1));
  ASSERT_TRUE(put(db, "b", 2));
  EXPECT_EQ(db.commits(), before + 2);
}

TEST(store_group, requests_in_one_turn_share_one_commit) {
  auto db = kv_db();
  core::loop::manual_scheduler loop;
  group_commit g(db, loop);
  auto before = db.commits();
  std::vector<uint64_t> commits_seen_by_then;
  for (int i = 0; i < 50; ++i)
    g.add([&, i] { ASSERT_TRUE(put(db, "k" + std::to_string(i), i)); },
          [&](const result<void>& r) {
            EXPECT_TRUE(r);
            commits_seen_by_then.push_back(db.commits());
          });
  // Nothing answered yet: the group is still open.
  EXPECT_TRUE(commits_seen_by_then.empty());
  EXPECT_EQ(db.commits(), before);
  loop.run_pending();
  EXPECT_EQ(db.commits(), before + 1);
  ASSERT_EQ(commits_seen_by_then.size(), 50u);
  for (auto c : commits_seen_by_then) EXPECT_EQ(c, before + 1);  // every answer after the COMMIT
  EXPECT_EQ(rows(db), 50);
  EXPECT_EQ(g.stats().groups, 1u);
  EXPECT_EQ(g.stats().largest, 50u);
}

TEST(store_group, failed_request_rolls_back_only_its_own_writes) {
  auto db = kv_db();
  core::loop::manual_scheduler loop;
  group_commit g(db, loop);
  result<void> dup;
  g.add([&] { ASSERT_TRUE(put(db, "a", 1)); });
  g.add([&] {
    dup = db.transaction([&]() -> result<void> {
      if (auto r = put(db, "b", 2); !r) return r;  // would be kept without the savepoint
      auto st = db.cached("INSERT INTO kv (k, v) VALUES ('a', 9)");  // duplicate key
      if (!st) return st.err();
      auto n = (*st)->exec();
      if (!n) return n.err();
      return {};
    });
  });
  g.add([&] { ASSERT_TRUE(put(db, "c", 3)); });
  loop.run_pending();
  EXPECT_FALSE(dup);
  EXPECT_EQ(rows(db), 2);  // a and c; b went with its failed request
}

TEST(store_group, failed_commit_fails_every_request_and_stores_nothing) {
  auto db = kv_db();
  core::loop::manual_scheduler loop;
  group_commit g(db, loop);
  db.set_commit_veto([] { return true; });
  int failed = 0;
  for (int i = 0; i < 10; ++i)
    g.add([&, i] { ASSERT_TRUE(put(db, "k" + std::to_string(i), i)); },
          [&](const result<void>& r) { failed += r ? 0 : 1; });
  loop.run_pending();
  EXPECT_EQ(failed, 10);
  EXPECT_EQ(g.stats().failed_groups, 1u);
  db.set_commit_veto({});
  EXPECT_EQ(rows(db), 0);
  EXPECT_FALSE(db.in_group());
  // The next group works again.
  g.add([&] { ASSERT_TRUE(put(db, "x", 1)); });
  loop.run_pending();
  EXPECT_EQ(rows(db), 1);
}

TEST(store_group, full_group_is_committed_before_the_next_request) {
  auto db = kv_db();
  core::loop::manual_scheduler loop;
  group_commit g(db, loop, {.max_requests = 4});
  auto before = db.commits();
  for (int i = 0; i < 10; ++i) g.add([&, i] { ASSERT_TRUE(put(db, "k" + std::to_string(i), i)); });
  EXPECT_EQ(db.commits(), before + 2);  // 4 + 4 committed, 2 still open
  loop.run_pending();
  EXPECT_EQ(db.commits(), before + 3);
  EXPECT_EQ(rows(db), 10);
}

TEST(store_group, callbacks_may_open_the_next_group) {
  auto db = kv_db();
  core::loop::manual_scheduler loop;
  group_commit g(db, loop);
  bool second_done = false;
  g.add([&] { ASSERT_TRUE(put(db, "a", 1)); },
        [&](const result<void>&) {
          g.add([&] { ASSERT_TRUE(put(db, "b", 2)); },
                [&](const result<void>& r) { second_done = bool(r); });
        });
  loop.run_pending();
  EXPECT_TRUE(second_done);
  EXPECT_EQ(rows(db), 2);
}

// ---- the exchange's RPC handler under a group, as hmq-exchange runs it

namespace fb = wire::fb;

class exchange_group : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = exchange::db::open_memory();
    ASSERT_TRUE(d) << d.err().message();
    db_ = std::make_unique<exchange::db>(std::move(*d));
    exchange::service_options o;
    o.strength = core::crypto::hash_strength::minimum;
    svc_ = std::make_unique<exchange::service>(*db_, self_, loop_.time(), o);
    ASSERT_TRUE(svc_->bootstrap_root("rootpw"));
  }

  static std::vector<uint8_t> create_org(const std::string& name) {
    fb::OrgT org;
    org.name = name;
    fb::CreateResourceT c;
    c.resource.Set(std::move(org));
    fb::RpcRequestT req;
    req.auth = std::make_unique<fb::AuthT>();
    req.auth->kind = fb::AuthKind::user;
    req.auth->org = "root";
    req.auth->id = "root";
    req.auth->secret = "rootpw";
    req.op.Set(std::move(c));
    return exchange::to_blob<fb::RpcRequest>(req);
  }

  // What hmq-exchange does for one request (exchange/app.cc).
  void submit(const std::vector<uint8_t>& buf, std::vector<fb::RpcStatus>& answers,
              uint64_t& commits_at_answer) {
    exchange::handle_in_group(
        *svc_, *group_, caller_.pk, *flatbuffers::GetRoot<fb::RpcRequest>(buf.data()),
        [&](exchange::outcome& out) {
          answers.push_back(out.response.status);
          if (out.response.status == fb::RpcStatus::internal) {
            EXPECT_NE(out.response.error_message.find("commit"), std::string::npos);
          }
          EXPECT_TRUE(out.events.empty() || out.response.status == fb::RpcStatus::ok);
          commits_at_answer = db_->sql().commits();
        });
  }

  bool org_exists(const std::string& name) {
    auto o = db_->org_get(name);
    EXPECT_TRUE(o);
    return o && o->has_value();
  }

  core::loop::manual_scheduler loop_;
  core::crypto::box_keypair self_ = core::crypto::box_keypair::generate();
  core::crypto::box_keypair caller_ = core::crypto::box_keypair::generate();
  std::unique_ptr<exchange::db> db_;
  std::unique_ptr<exchange::service> svc_;
  std::unique_ptr<group_commit> group_;
};

TEST_F(exchange_group, requests_of_one_turn_commit_once_and_answer_after_it) {
  group_ = std::make_unique<group_commit>(db_->sql(), loop_);
  auto before = db_->sql().commits();
  std::vector<fb::RpcStatus> answers;
  uint64_t commits_at_answer = 0;
  const int n = 20;
  for (int i = 0; i < n; ++i)
    submit(create_org("org" + std::to_string(i)), answers, commits_at_answer);
  submit(create_org("org3"), answers, commits_at_answer);  // refused: exists (in this group)
  EXPECT_TRUE(answers.empty());
  loop_.run_pending();
  EXPECT_EQ(db_->sql().commits(), before + 1);
  EXPECT_EQ(commits_at_answer, before + 1);
  ASSERT_EQ(answers.size(), size_t(n + 1));
  for (int i = 0; i < n; ++i) EXPECT_EQ(answers[i], fb::RpcStatus::ok) << i;
  EXPECT_EQ(answers[n], fb::RpcStatus::already_exists);
  for (int i = 0; i < n; ++i) EXPECT_TRUE(org_exists("org" + std::to_string(i)));
}

TEST_F(exchange_group, failed_commit_answers_every_request_with_an_error_and_stores_nothing) {
  group_ = std::make_unique<group_commit>(db_->sql(), loop_);
  db_->sql().set_commit_veto([] { return true; });
  std::vector<fb::RpcStatus> answers;
  uint64_t commits_at_answer = 0;
  for (int i = 0; i < 5; ++i)
    submit(create_org("org" + std::to_string(i)), answers, commits_at_answer);
  loop_.run_pending();
  db_->sql().set_commit_veto({});
  ASSERT_EQ(answers.size(), 5u);
  for (auto a : answers) EXPECT_EQ(a, fb::RpcStatus::internal);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(org_exists("org" + std::to_string(i)));
}

// ---- the agbot: a write and the message announcing it

// Records what reached the bus.
struct fake_outbox final : agbot::outbox {
  std::vector<fb::Body> sent;
  void send(const core::crypto::public_key&, fb::Body type, const agbot::body_builder&, uint32_t,
            std::function<void(bool)> done) override {
    sent.push_back(type);
    if (done) done(true);
  }
  void reply(const core::wire::opened&, fb::Body type, const agbot::body_builder&) override {
    sent.push_back(type);
  }
};

agbot::agreement an_agreement(const std::string& id) {
  agbot::agreement a;
  a.id = id;
  a.node_org = "acme";
  a.node_id = "n-" + id;
  a.pattern = "acme/gps";
  a.service_org = "acme";
  a.service_url = "https://acme.example/gps";
  a.service_version = "1.0.0";
  a.arch = "amd64";
  a.state = fb::AgreementState::proposed;
  return a;
}

const agbot::body_builder no_body = [](flatbuffers::FlatBufferBuilder&) {
  return flatbuffers::Offset<void>();
};

TEST(agbot_group, proposals_leave_only_after_their_agreements_commit) {
  auto store = agbot::agreement_store::open_memory();
  ASSERT_TRUE(store);
  core::loop::manual_scheduler loop;
  group_commit g(store->db(), loop);
  store->use_group(&g);
  fake_outbox wire_out;
  agbot::group_outbox out(wire_out, g);
  auto before = store->db().commits();
  int confirmed = 0;
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(store->insert(an_agreement("a" + std::to_string(i))));
    out.send({}, fb::Body::Proposal, no_body, 0, [&](bool ok) { confirmed += ok; });
  }
  EXPECT_TRUE(wire_out.sent.empty());
  loop.run_pending();
  EXPECT_EQ(store->db().commits(), before + 1);
  EXPECT_EQ(wire_out.sent.size(), 8u);
  EXPECT_EQ(confirmed, 8);
}

TEST(agbot_group, failed_commit_sends_nothing) {
  auto store = agbot::agreement_store::open_memory();
  ASSERT_TRUE(store);
  core::loop::manual_scheduler loop;
  group_commit g(store->db(), loop);
  store->use_group(&g);
  fake_outbox wire_out;
  agbot::group_outbox out(wire_out, g);
  store->db().set_commit_veto([] { return true; });
  int failed = 0;
  ASSERT_TRUE(store->insert(an_agreement("a1")));
  out.send({}, fb::Body::Proposal, no_body, 0, [&](bool ok) { failed += !ok; });
  loop.run_pending();
  store->db().set_commit_veto({});
  EXPECT_TRUE(wire_out.sent.empty());
  EXPECT_EQ(failed, 1);
  auto got = store->get("a1");
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->has_value());
}

}  // namespace
}  // namespace hmq
