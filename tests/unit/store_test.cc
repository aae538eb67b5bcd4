#include "core/store/store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

using hmq::core::result;
using hmq::core::store::database;
using hmq::core::store::errc;
using hmq::core::store::migration;

namespace {

constexpr migration migrations_v2[] = {
    {1, "CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB NOT NULL);"},
    {2, "ALTER TABLE kv ADD COLUMN n INTEGER NOT NULL DEFAULT 0;"},
};

std::filesystem::path temp_db() {
  auto dir = std::filesystem::temp_directory_path() /
             ("hmq-store-" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  return dir / "t.db";
}

}  // namespace

// Migrations run once, in order, and record the version in the file.
TEST(store_migrate, applies_pending_migrations_once) {
  auto path = temp_db();
  {
    auto db = database::open(path);
    ASSERT_TRUE(db) << db.err().message();
    ASSERT_TRUE(db->migrate(std::span(migrations_v2).first(1)));
    EXPECT_EQ(db->schema_version(), 1);
  }
  auto db = database::open(path);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->migrate(migrations_v2));
  EXPECT_EQ(db->schema_version(), 2);
  ASSERT_TRUE(db->migrate(migrations_v2));  // idempotent
  auto st = db->prepare("INSERT INTO kv (k, v, n) VALUES (?, ?, ?)");
  ASSERT_TRUE(st);
  const uint8_t blob[] = {1, 2, 3};
  st->bind_all(std::string_view("a"), std::span<const uint8_t>(blob), int64_t{7});
  EXPECT_EQ(*st->exec(), 1);
  std::filesystem::remove_all(path.parent_path());
}

// A file written by a newer binary is refused instead of being silently misread.
TEST(store_migrate, refuses_database_from_newer_version) {
  auto db = database::open_memory();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->migrate(migrations_v2));
  auto r = db->migrate(std::span(migrations_v2).first(1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::too_new);
}

// A failed function inside a transaction leaves nothing behind.
TEST(store_transaction, rolls_back_on_error) {
  auto db = database::open_memory();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->migrate(migrations_v2));
  auto r = db->transaction([&]() -> result<void> {
    auto st = db->cached("INSERT INTO kv (k, v) VALUES (?, ?)");
    if (!st) return st.err();
    (*st)->bind(1, std::string_view("x")).bind(2, std::span<const uint8_t>{});
    if (auto e = (*st)->exec(); !e) return e.err();
    // Second insert with the same key violates the primary key.
    (*st)->reset();
    (*st)->bind(1, std::string_view("x")).bind(2, std::span<const uint8_t>{});
    if (auto e = (*st)->exec(); !e) return e.err();
    return {};
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::constraint);
  auto count = db->prepare("SELECT COUNT(*) FROM kv");
  ASSERT_TRUE(count);
  ASSERT_TRUE(*count->step());
  EXPECT_EQ(count->column_int(0), 0);
}

// Blobs round-trip byte for byte, including empty ones (not NULL).
TEST(store_statement, blob_round_trip_including_empty) {
  auto db = database::open_memory();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->migrate(migrations_v2));
  std::vector<uint8_t> big(70'000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 31);
  auto ins = db->prepare("INSERT INTO kv (k, v) VALUES (?, ?)");
  ASSERT_TRUE(ins);
  ins->bind(1, std::string_view("big")).bind(2, std::span<const uint8_t>(big));
  ASSERT_TRUE(ins->exec());
  ins->reset();
  ins->bind(1, std::string_view("empty")).bind(2, std::span<const uint8_t>{});
  ASSERT_TRUE(ins->exec());
  auto sel = db->prepare("SELECT v, v IS NULL FROM kv WHERE k = ?");
  ASSERT_TRUE(sel);
  sel->bind(1, std::string_view("big"));
  ASSERT_TRUE(*sel->step());
  EXPECT_EQ(sel->column_blob(0), big);
  sel->reset();
  sel->bind(1, std::string_view("empty"));
  ASSERT_TRUE(*sel->step());
  EXPECT_TRUE(sel->column_blob(0).empty());
  EXPECT_EQ(sel->column_int(1), 0);
}

// SQL errors carry SQLite's message and the statement.
TEST(store_errors, bad_sql_reports_message) {
  auto db = database::open_memory();
  ASSERT_TRUE(db);
  auto st = db->prepare("SELEKT 1");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.code(), errc::sql_error);
  EXPECT_NE(st.err().message().find("SELEKT"), std::string::npos);
}

// A garbage file is reported as corrupt or unopenable, never crashes.
TEST(store_errors, garbage_file_is_refused) {
  auto path = temp_db();
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    std::string junk(8192, 'x');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  auto db = database::open(path);
  if (db) {
    EXPECT_FALSE(db->integrity_check());
  } else {
    EXPECT_TRUE(db.code() == errc::corrupt || db.code() == errc::open_failed) << db.err().message();
  }
  std::filesystem::remove_all(path.parent_path());
}

// Integrity check passes on a healthy WAL database.
TEST(store_integrity, healthy_database_passes) {
  auto path = temp_db();
  auto db = database::open(path);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->migrate(migrations_v2));
  EXPECT_TRUE(db->integrity_check());
  std::filesystem::remove_all(path.parent_path());
}
