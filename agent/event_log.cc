#include "agent/event_log.h"

#include "core/log/log.h"

namespace hmq::agent {

core::result<void> event_log::ensure_table() {
  if (ready_) return core::ok();
  if (auto r =
          db_.exec("CREATE TABLE IF NOT EXISTS event_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                   "time_ms INTEGER NOT NULL, kind TEXT NOT NULL, agreement TEXT NOT NULL, "
                   "service TEXT NOT NULL, reason INTEGER NOT NULL, message TEXT NOT NULL)");
      !r)
    return r.err();
  ready_ = true;
  return core::ok();
}

void event_log::add(std::string_view kind, std::string_view agreement, std::string_view service,
                    uint16_t reason, std::string_view message) {
  auto fail = [this](const core::error& e) {
    ++write_errors_;
    core::log::get("agent")->warn("event log write failed: {}", e.message());
  };
  if (auto r = ensure_table(); !r) return fail(r.err());
  auto st = db_.cached(
      "INSERT INTO event_log (time_ms, kind, agreement, service, reason, message) "
      "VALUES (?, ?, ?, ?, ?, ?)");
  if (!st) return fail(st.err());
  (*st)->bind(1, clock_.now_ms()).bind(2, kind).bind(3, agreement).bind(4, service);
  (*st)->bind(5, int64_t{reason}).bind(6, message);
  if (auto r = (*st)->exec(); !r) return fail(r.err());
  // Retention: trim every 100 writes rather than on each (one DELETE per 100 events).
  if (++added_ % 100 == 0) {
    auto del =
        db_.cached("DELETE FROM event_log WHERE seq <= (SELECT MAX(seq) FROM event_log) - ?");
    if (!del) return fail(del.err());
    (*del)->bind(1, static_cast<int64_t>(max_rows_));
    if (auto r = (*del)->exec(); !r) return fail(r.err());
  }
}

core::result<std::vector<event_record>> event_log::list(std::string_view agreement, size_t limit) {
  if (auto r = ensure_table(); !r) return r.err();
  auto st = db_.prepare(
      "SELECT seq, time_ms, kind, agreement, service, reason, message FROM ("
      "SELECT * FROM event_log WHERE (? = '' OR agreement = ?) ORDER BY seq DESC LIMIT ?) "
      "ORDER BY seq");
  if (!st) return st.err();
  st->bind(1, agreement).bind(2, agreement);
  st->bind(3, static_cast<int64_t>(limit == 0 ? max_rows_ : limit));
  std::vector<event_record> out;
  for (;;) {
    auto row = st->step();
    if (!row) return row.err();
    if (!*row) break;
    event_record e;
    e.seq = st->column_int(0);
    e.time_ms = st->column_int(1);
    e.kind = st->column_text(2);
    e.agreement = st->column_text(3);
    e.service = st->column_text(4);
    e.reason = static_cast<uint16_t>(st->column_int(5));
    e.message = st->column_text(6);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace hmq::agent
