#include "core/store/store.h"

#include <sqlite3.h>

#include <string>
#include <unordered_map>

namespace hmq::core::store {
namespace {

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "store"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::ok:
        return "ok";
      case errc::open_failed:
        return "cannot open database";
      case errc::sql_error:
        return "SQL error";
      case errc::constraint:
        return "constraint violated";
      case errc::busy:
        return "database is locked";
      case errc::migration_failed:
        return "schema migration failed";
      case errc::corrupt:
        return "database integrity check failed";
      case errc::too_new:
        return "database was written by a newer version";
    }
    return "unknown store error";
  }
};

errc classify(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return errc::constraint;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return errc::busy;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return errc::corrupt;
    default:
      return errc::sql_error;
  }
}

error make(errc e, std::string detail) {
  return error{make_error_code(e), std::move(detail)};
}

}  // namespace

const std::error_category& category() {
  static category_impl c;
  return c;
}
std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), category()};
}

// ---------------------------------------------------------------------------------------------
// statement

statement::statement(sqlite3_stmt* s) : s_(s) {}
statement::statement(statement&& o) noexcept : s_(o.s_) {
  o.s_ = nullptr;
}
statement& statement::operator=(statement&& o) noexcept {
  if (this != &o) {
    if (s_) sqlite3_finalize(s_);
    s_ = o.s_;
    o.s_ = nullptr;
  }
  return *this;
}
statement::~statement() {
  if (s_) sqlite3_finalize(s_);
}

statement& statement::bind(int idx, int64_t v) {
  sqlite3_bind_int64(s_, idx, v);
  return *this;
}
statement& statement::bind(int idx, std::string_view v) {
  sqlite3_bind_text(s_, idx, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
statement& statement::bind(int idx, std::span<const uint8_t> blob) {
  // A zero-length blob must still be a blob, not NULL: SQLite needs a non-null pointer.
  static const uint8_t empty = 0;
  sqlite3_bind_blob(s_, idx, blob.empty() ? &empty : blob.data(), static_cast<int>(blob.size()),
                    SQLITE_TRANSIENT);
  return *this;
}
statement& statement::bind_null(int idx) {
  sqlite3_bind_null(s_, idx);
  return *this;
}

result<bool> statement::step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3* db = sqlite3_db_handle(s_);
  std::string detail = sqlite3_errmsg(db);
  if (const char* sql = sqlite3_sql(s_)) detail += " (in: " + std::string(sql) + ")";
  sqlite3_reset(s_);
  return make(classify(sqlite3_extended_errcode(db)), std::move(detail));
}

result<int64_t> statement::exec() {
  for (;;) {
    auto r = step();
    if (!r) return r.err();
    if (!*r) break;
  }
  int64_t changes = sqlite3_changes(sqlite3_db_handle(s_));
  sqlite3_reset(s_);
  return changes;
}

void statement::reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

int64_t statement::column_int(int col) const {
  return sqlite3_column_int64(s_, col);
}

std::string statement::column_text(int col) const {
  const auto* p = sqlite3_column_text(s_, col);
  int n = sqlite3_column_bytes(s_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

std::vector<uint8_t> statement::column_blob(int col) const {
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s_, col));
  int n = sqlite3_column_bytes(s_, col);
  return p ? std::vector<uint8_t>(p, p + n) : std::vector<uint8_t>();
}

bool statement::column_is_null(int col) const {
  return sqlite3_column_type(s_, col) == SQLITE_NULL;
}

// ---------------------------------------------------------------------------------------------
// database

// Also the connection's state that SQLite's commit hook points at (heap: stable across moves).
struct database::cache {
  std::unordered_map<std::string, statement> by_sql;
  uint64_t commits = 0;
  std::function<bool()> veto;
  bool in_group = false;
  // SQLite rolled the group back by itself (a savepoint could not be rolled back to): the
  // group's earlier writes are gone, so nothing more may join it and its commit must fail.
  bool group_lost = false;
};

database::database(sqlite3* db) : db_(db), cache_(std::make_unique<cache>()) {
  sqlite3_commit_hook(
      db_,
      [](void* arg) -> int {
        auto* c = static_cast<cache*>(arg);
        if (c->veto && c->veto()) return 1;  // non-zero: SQLite turns the COMMIT into a ROLLBACK
        ++c->commits;
        return 0;
      },
      cache_.get());
}
database::database(database&& o) noexcept : db_(o.db_), cache_(std::move(o.cache_)) {
  o.db_ = nullptr;
}
database& database::operator=(database&& o) noexcept {
  if (this != &o) {
    cache_.reset();
    if (db_) sqlite3_close_v2(db_);
    db_ = o.db_;
    cache_ = std::move(o.cache_);
    o.db_ = nullptr;
  }
  return *this;
}
database::~database() {
  cache_.reset();  // statements must be finalized before the connection closes
  if (db_) sqlite3_close_v2(db_);
}

error database::sql_error(std::string_view what) {
  return make(classify(sqlite3_extended_errcode(db_)),
              std::string(what) + ": " + sqlite3_errmsg(db_));
}

result<database> database::open(const std::filesystem::path& path, open_options o) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (o.create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    if (raw) sqlite3_close_v2(raw);
    return make(errc::open_failed, path.string() + ": " + msg);
  }
  database db(raw);
  sqlite3_busy_timeout(raw, o.busy_timeout_ms);
  sqlite3_extended_result_codes(raw, 1);
  std::string pragmas = "PRAGMA foreign_keys=ON;";
  if (o.wal) pragmas += "PRAGMA journal_mode=WAL;";
  pragmas += o.synchronous_full ? "PRAGMA synchronous=FULL;" : "PRAGMA synchronous=NORMAL;";
  if (auto r = db.exec(pragmas); !r) {
    return make(r.code() == make_error_code(errc::corrupt) ? errc::corrupt : errc::open_failed,
                path.string() + ": " + r.err().detail);
  }
  return db;
}

result<database> database::open_memory() {
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    if (raw) sqlite3_close_v2(raw);
    return make(errc::open_failed, ":memory:");
  }
  database db(raw);
  if (auto r = db.exec("PRAGMA foreign_keys=ON;"); !r) return r.err();
  return db;
}

result<void> database::exec(std::string_view sql) {
  char* msg = nullptr;
  std::string s(sql);
  if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string detail = msg ? msg : "unknown error";
    sqlite3_free(msg);
    return make(classify(sqlite3_extended_errcode(db_)),
                detail + " (in: " + s.substr(0, 200) + ")");
  }
  return {};
}

result<statement> database::prepare(std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &s, nullptr) != SQLITE_OK)
    return sql_error("prepare '" + std::string(sql.substr(0, 200)) + "'");
  return statement(s);
}

result<statement*> database::cached(std::string_view sql) {
  auto it = cache_->by_sql.find(std::string(sql));
  if (it == cache_->by_sql.end()) {
    auto st = prepare(sql);
    if (!st) return st.err();
    it = cache_->by_sql.emplace(std::string(sql), std::move(*st)).first;
  } else {
    it->second.reset();
  }
  return &it->second;
}

result<void> database::transaction(const std::function<result<void>()>& fn) {
  if (cache_->in_group) {
    if (cache_->group_lost) return make(errc::sql_error, "the group transaction was rolled back");
    if (auto r = exec("SAVEPOINT hmq_tx"); !r) return r;
    auto r = fn();
    if (!r) {
      auto back = exec("ROLLBACK TO hmq_tx");
      (void)exec("RELEASE hmq_tx");
      // Some errors (I/O, full disk) make SQLite roll back the whole transaction by itself.
      if (!back || sqlite3_get_autocommit(db_)) cache_->group_lost = true;
      return r;
    }
    if (auto rel = exec("RELEASE hmq_tx"); !rel) {
      if (sqlite3_get_autocommit(db_)) cache_->group_lost = true;
      return rel;
    }
    return {};
  }
  if (auto r = exec("BEGIN IMMEDIATE"); !r) return r;
  auto r = fn();
  if (!r) {
    (void)exec("ROLLBACK");
    return r;
  }
  if (auto c = exec("COMMIT"); !c) {
    (void)exec("ROLLBACK");
    return c;
  }
  return {};
}

result<void> database::begin_group() {
  if (cache_->in_group) return make(errc::sql_error, "a group is already open");
  if (auto r = exec("BEGIN IMMEDIATE"); !r) return r;
  cache_->in_group = true;
  cache_->group_lost = false;
  return {};
}

result<void> database::commit_group() {
  if (!cache_->in_group) return {};
  cache_->in_group = false;
  if (cache_->group_lost || sqlite3_get_autocommit(db_)) {
    if (!sqlite3_get_autocommit(db_)) (void)exec("ROLLBACK");
    cache_->group_lost = false;
    return make(errc::sql_error,
                "the group transaction was rolled back by SQLite before its commit");
  }
  if (auto c = exec("COMMIT"); !c) {
    if (!sqlite3_get_autocommit(db_)) (void)exec("ROLLBACK");
    return c;
  }
  return {};
}

void database::rollback_group() {
  if (!cache_->in_group) return;
  cache_->in_group = false;
  cache_->group_lost = false;
  if (!sqlite3_get_autocommit(db_)) (void)exec("ROLLBACK");
}

bool database::in_group() const {
  return cache_ && cache_->in_group;
}
uint64_t database::commits() const {
  return cache_ ? cache_->commits : 0;
}
void database::set_commit_veto(std::function<bool()> veto) {
  cache_->veto = std::move(veto);
}

int database::schema_version() {
  auto st = prepare("PRAGMA user_version");
  if (!st) return -1;
  auto row = st->step();
  return row && *row ? static_cast<int>(st->column_int(0)) : -1;
}

result<void> database::migrate(std::span<const migration> migrations) {
  int current = schema_version();
  int newest = 0;
  for (const auto& m : migrations) newest = std::max(newest, m.version);
  if (current > newest)
    return make(errc::too_new, "database schema version " + std::to_string(current) +
                                   " is newer than this binary's " + std::to_string(newest));
  for (const auto& m : migrations) {
    if (m.version <= current) continue;
    auto r = transaction([&]() -> result<void> {
      if (auto e = exec(m.sql); !e) return e;
      return exec("PRAGMA user_version=" + std::to_string(m.version));
    });
    if (!r)
      return make(errc::migration_failed,
                  "to version " + std::to_string(m.version) + ": " + r.err().message());
    current = m.version;
  }
  return {};
}

result<void> database::integrity_check() {
  auto st = prepare("PRAGMA integrity_check");
  if (!st) return st.err();
  std::string report;
  for (;;) {
    auto row = st->step();
    if (!row) return row.err();
    if (!*row) break;
    if (!report.empty()) report += "; ";
    report += st->column_text(0);
  }
  if (report == "ok") return {};
  return make(errc::corrupt, report);
}

int64_t database::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}

}  // namespace hmq::core::store
