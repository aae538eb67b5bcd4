// The exchange store: migrations, reopening, secret-free blobs, cascades.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "exchange/db.h"

namespace hmq::exchange {
namespace {

namespace fs = std::filesystem;

struct temp_file {
  fs::path path =
      fs::temp_directory_path() / ("hmq-exchange-db-" + std::to_string(::getpid()) + ".db");
  ~temp_file() {
    for (auto suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix);
  }
};

TEST(exchange_db, creates_the_schema_and_reopens_without_migrating_again) {
  temp_file f;
  {
    auto d = db::open(f.path);
    ASSERT_TRUE(d) << d.err().message();
    EXPECT_EQ(d->sql().schema_version(), 6);
    fb::OrgT o;
    o.name = "acme";
    ASSERT_TRUE(d->org_insert(o));
  }
  auto d = db::open(f.path);
  ASSERT_TRUE(d) << d.err().message();
  auto o = d->org_get("acme");
  ASSERT_TRUE(o);
  ASSERT_TRUE(o->has_value());
  EXPECT_EQ((*o)->name, "acme");
}

TEST(exchange_db, refuses_a_file_from_a_newer_version) {
  temp_file f;
  {
    auto d = db::open(f.path);
    ASSERT_TRUE(d);
    ASSERT_TRUE(d->sql().exec("PRAGMA user_version=99"));
  }
  auto d = db::open(f.path);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.code(), make_error_code(core::store::errc::too_new));
}

TEST(exchange_db, deleting_an_org_cascades_to_agreements_and_served_patterns) {
  auto d = db::open_memory();
  ASSERT_TRUE(d);
  fb::OrgT o;
  o.name = "acme";
  ASSERT_TRUE(d->org_insert(o));
  fb::NodeT n;
  n.org = "acme";
  n.id = "n1";
  ASSERT_TRUE(d->node_insert(n, "hash"));
  fb::AgreementRecordT r;
  r.agreement_id = "aa";
  r.node_org = "acme";
  r.node_id = "n1";
  ASSERT_TRUE(d->agreement_put(r));
  fb::AgbotT a;
  a.org = "acme";
  a.id = "ag";
  ASSERT_TRUE(d->agbot_insert(a, "hash"));
  fb::AgbotPatternT p;
  p.pattern_org = "x";
  p.pattern = "p";
  p.node_org = "x";
  ASSERT_TRUE(d->agbot_add_pattern("acme", "ag", p));
  ASSERT_TRUE(*d->org_delete("acme"));
  for (auto t : {"nodes", "agreements", "agbots", "agbot_patterns"}) {
    auto st = d->sql().prepare(std::string("SELECT COUNT(*) FROM ") + t);
    ASSERT_TRUE(st);
    ASSERT_TRUE(*st->step());
    EXPECT_EQ(st->column_int(0), 0) << t;
  }
}

TEST(exchange_db, agbot_event_sequence_is_persistent_and_monotonic) {
  temp_file f;
  {
    auto d = db::open(f.path);
    ASSERT_TRUE(d);
    fb::OrgT o;
    o.name = "acme";
    ASSERT_TRUE(d->org_insert(o));
    fb::AgbotT a;
    a.org = "acme";
    a.id = "ag";
    ASSERT_TRUE(d->agbot_insert(a, "hash"));
    EXPECT_EQ(*d->next_event_seq("acme", "ag"), 1u);
    EXPECT_EQ(*d->next_event_seq("acme", "ag"), 2u);
  }
  auto d = db::open(f.path);
  ASSERT_TRUE(d);
  EXPECT_EQ(*d->next_event_seq("acme", "ag"), 3u);
}

TEST(exchange_db, outbox_keeps_events_until_deleted_across_reopen) {
  temp_file f;
  core::crypto::public_key pk{};
  pk[0] = 7;
  int64_t first = 0;
  {
    auto d = db::open(f.path);
    ASSERT_TRUE(d);
    fb::EventT e;
    e.kind = fb::EventKind::pattern_changed;
    e.seq = 4;
    auto a = d->outbox_add(pk, "mb1", e);
    auto b = d->outbox_add(pk, "mb2", e);
    ASSERT_TRUE(a && b);
    first = *a;
  }
  auto d = db::open(f.path);
  ASSERT_TRUE(d);
  auto all = d->outbox_all();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].recipient, pk);
  EXPECT_EQ((*all)[0].mailbox, "mb1");
  EXPECT_EQ((*all)[0].event.seq, 4u);
  ASSERT_TRUE(d->outbox_delete(first));
  EXPECT_EQ(d->outbox_all()->size(), 1u);
}

}  // namespace
}  // namespace hmq::exchange
