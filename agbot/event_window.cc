#include "agbot/event_window.h"

#include <vector>

namespace hmq::agbot {

event_window::verdict event_window::accept(uint64_t seq) {
  if (high_ == 0) {
    // Nothing known (a new agbot.db): the start-up search is the sync, earlier numbers count
    // as seen.
    high_ = seq;
    seen_.set();
    return verdict::fresh;
  }
  if (seq > high_) {
    if (seq - high_ >= width) {
      seen_.reset();
    } else {
      for (uint64_t n = high_ + 1; n < seq; ++n) seen_[n % width] = false;
    }
    seen_[seq % width] = true;
    high_ = seq;
    return verdict::fresh;
  }
  if (high_ - seq >= width) return verdict::too_old;
  if (seen(seq)) return verdict::replayed;
  seen_[seq % width] = true;
  return verdict::fresh;
}

uint64_t event_window::missing() const {
  return empty() ? 0 : width - seen_.count();
}

void event_window::forget_gaps() {
  seen_.set();
}

void event_window::restart_at(uint64_t high) {
  high_ = high;
  seen_.set();
}

core::result<void> event_window::create_table(core::store::database& db) {
  return db.exec(
      "CREATE TABLE IF NOT EXISTS event_window (exchange_key BLOB PRIMARY KEY, high INTEGER NOT "
      "NULL, seen BLOB NOT NULL)");
}

core::result<event_window> event_window::load(core::store::database& db,
                                              const core::crypto::public_key& exchange) {
  auto st = db.cached("SELECT high, seen FROM event_window WHERE exchange_key = ?");
  if (!st) return st.err();
  (*st)->bind(1, std::span<const uint8_t>(exchange));
  auto row = (*st)->step();
  if (!row) return row.err();
  event_window w;
  if (!*row) return w;
  const int64_t high = (*st)->column_int(0);
  const auto bits = (*st)->column_blob(1);
  if (high <= 0 || bits.size() != width / 8) return w;  // unreadable: start as new
  w.high_ = static_cast<uint64_t>(high);
  for (size_t i = 0; i < width; ++i) w.seen_[i] = (bits[i / 8] >> (i % 8)) & 1;
  return w;
}

core::result<void> event_window::save(core::store::database& db,
                                      const core::crypto::public_key& exchange) const {
  std::vector<uint8_t> bits(width / 8, 0);
  for (size_t i = 0; i < width; ++i)
    if (seen_[i]) bits[i / 8] = static_cast<uint8_t>(bits[i / 8] | (1u << (i % 8)));
  auto st = db.cached(
      "INSERT INTO event_window (exchange_key, high, seen) VALUES (?, ?, ?) ON CONFLICT "
      "(exchange_key) DO UPDATE SET high = excluded.high, seen = excluded.seen");
  if (!st) return st.err();
  (*st)
      ->bind(1, std::span<const uint8_t>(exchange))
      .bind(2, static_cast<int64_t>(high_))
      .bind(3, std::span<const uint8_t>(bits));
  if (auto r = (*st)->exec(); !r) return r.err();
  return core::ok();
}

}  // namespace hmq::agbot
