#include "core/store/group_commit.h"

#include <utility>

namespace hmq::core::store {

group_commit::group_commit(database& db, loop::scheduler& loop, group_commit_options o)
    : db_(db), loop_(loop), opts_(o) {}

group_commit::~group_commit() {
  *alive_ = false;
  if (db_.in_group()) (void)db_.commit_group();
}

void group_commit::add(const std::function<void()>& work, then_fn then) {
  ++stats_.requests;
  if (db_.in_group() && (count_ >= opts_.max_requests ||
                         loop_.time().now_ms() - opened_ms_ >= opts_.max_delay.count()))
    (void)flush();
  if (!db_.in_group()) {
    if (auto r = db_.begin_group(); !r) {
      ++stats_.ungrouped;
      work();
      if (then) then(result<void>{});
      return;
    }
    count_ = 0;
    opened_ms_ = loop_.time().now_ms();
    uint64_t gen = ++generation_;
    loop_.post([this, alive = std::weak_ptr<bool>(alive_), gen] {
      auto a = alive.lock();
      if (a && *a && gen == generation_) (void)flush();
    });
  }
  ++count_;
  work();
  thens_.push_back(std::move(then));
}

void group_commit::after_commit(then_fn then) {
  if (!then) return;
  if (!db_.in_group()) return then(result<void>{});
  thens_.push_back(std::move(then));
}

result<void> group_commit::flush() {
  if (!db_.in_group()) return {};
  ++generation_;
  ++stats_.groups;
  if (count_ > stats_.largest) stats_.largest = count_;
  count_ = 0;
  auto r = db_.commit_group();
  if (!r) ++stats_.failed_groups;
  // Callbacks may add() again (a new group); take them out first.
  auto thens = std::exchange(thens_, {});
  for (auto& t : thens)
    if (t) t(r);
  return r;
}

}  // namespace hmq::core::store
