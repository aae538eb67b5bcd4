#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/common/result.h"

struct sqlite3;
struct sqlite3_stmt;

// The one persistence layer: a thin SQLite wrapper (WAL, prepared statements, transactions,
// migrations by version number) used by the exchange, agbot and agent.
namespace hmq::core::store {

enum class errc {
  ok = 0,
  open_failed = 1,
  sql_error = 2,   // prepare/step failed; detail has SQLite's message and the SQL
  constraint = 3,  // UNIQUE / FOREIGN KEY / CHECK violated
  busy = 4,        // database locked longer than the busy timeout
  migration_failed = 5,
  corrupt = 6,
  too_new = 7,  // the file's schema version is newer than this binary knows
};
const std::error_category& category();
std::error_code make_error_code(errc e);

// A prepared statement. Bind indexes are 1-based (SQLite's); column indexes are 0-based.
// Move-only; finalized on destruction.
class statement {
 public:
  statement() = default;
  explicit statement(sqlite3_stmt* s);
  statement(statement&& o) noexcept;
  statement& operator=(statement&& o) noexcept;
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;
  ~statement();

  statement& bind(int idx, int64_t v);
  statement& bind(int idx, std::string_view v);
  statement& bind(int idx, std::span<const uint8_t> blob);
  statement& bind_null(int idx);
  // Convenience: bind all arguments in order starting at 1.
  template <typename... A>
  statement& bind_all(const A&... a) {
    int i = 0;
    (bind(++i, a), ...);
    return *this;
  }

  // Advance: true when a row is available, false when done, error on failure.
  result<bool> step();
  // Run to completion (for INSERT/UPDATE/DELETE); returns changes().
  result<int64_t> exec();
  // Reset for re-use with new bindings (bindings cleared).
  void reset();

  int64_t column_int(int col) const;
  std::string column_text(int col) const;
  std::vector<uint8_t> column_blob(int col) const;
  bool column_is_null(int col) const;

 private:
  friend class database;
  sqlite3_stmt* s_ = nullptr;
};

struct open_options {
  bool wal = true;
  int busy_timeout_ms = 5000;
  bool create = true;
  // synchronous=FULL by default: an acknowledged write survives kill -9 and power loss.
  bool synchronous_full = true;
};

// One migration: applied in order when the file's user_version is below `version`.
struct migration {
  int version;
  std::string_view sql;
};

// A database connection. Not thread-safe: owned by one thread (the component's loop).
class database {
 public:
  static result<database> open(const std::filesystem::path& path, open_options o = {});
  static result<database> open_memory();

  database(database&&) noexcept;
  database& operator=(database&&) noexcept;
  ~database();

  result<void> exec(std::string_view sql);
  result<statement> prepare(std::string_view sql);
  // A cached prepared statement for sql (reset, bindings cleared). The reference stays valid
  // for the database's life; do not hold it across another call to cached() with the same SQL.
  result<statement*> cached(std::string_view sql);

  // BEGIN IMMEDIATE; fn; COMMIT. Rolls back if fn returns an error. Not re-entrant.
  // Inside a group (begin_group) it is a SAVEPOINT instead: fn's writes join the group's one
  // transaction, and an error rolls back fn's writes only, not the rest of the group.
  result<void> transaction(const std::function<result<void>()>& fn);

  // Group commit (core/store/group_commit.h drives it): one transaction around the writes of
  // many requests, so they share one COMMIT and one fsync. Between begin_group and
  // commit_group every transaction() is a savepoint and every autocommit statement joins the
  // group; nothing of the group is durable before commit_group returns ok. A failed commit (or
  // a group SQLite had to roll back on its own, e.g. disk full) stores none of it.
  result<void> begin_group();
  result<void> commit_group();
  void rollback_group();
  bool in_group() const;

  // Write transactions committed on this connection (autocommit statements included): what
  // costs an fsync with synchronous=FULL. For tests and stats.
  uint64_t commits() const;
  // Test seam at the disk: while `veto` returns true, every COMMIT fails (SQLite rolls the
  // transaction back, as after an I/O error). Empty to remove.
  void set_commit_veto(std::function<bool()> veto);

  // Apply pending migrations, each in its own transaction, setting PRAGMA user_version.
  result<void> migrate(std::span<const migration> migrations);
  int schema_version();

  // PRAGMA integrity_check: ok, or errc::corrupt with SQLite's report.
  result<void> integrity_check();

  int64_t last_insert_rowid() const;
  sqlite3* handle() { return db_; }

 private:
  explicit database(sqlite3* db);
  error sql_error(std::string_view what);

  sqlite3* db_ = nullptr;
  struct cache;
  std::unique_ptr<cache> cache_;
};

}  // namespace hmq::core::store

template <>
struct std::is_error_code_enum<hmq::core::store::errc> : std::true_type {};
