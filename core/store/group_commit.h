#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/common/result.h"
#include "core/loop/loop.h"
#include "core/store/store.h"

// Group commit: the writes of every request handled in one loop turn share one transaction and
// one COMMIT (one fsync with synchronous=FULL) instead of one each.
//
//   group.add([&] { out = handle(req); },                 // writes join the open group
//             [&](const result<void>& committed) { ... }); // runs after the COMMIT: reply here
//
// The first add() of a turn opens the group (BEGIN IMMEDIATE) and posts its flush to the loop,
// so everything already queued on the loop (a burst of requests) joins before the flush runs;
// a group is also flushed at once when it reaches max_requests or is older than max_delay.
// `then` callbacks run in add() order after the commit, with ok or the commit's error (then
// nothing of the group is stored): whoever answers a caller or publishes an event does it from
// `then`, so nothing is announced before it is durable. Each `work` should keep its writes in
// database::transaction(), which is a savepoint inside the group: a failed request rolls back
// only its own writes.
//
// Loop thread only. Whatever else writes to the same database while a group is open joins it;
// call flush() first where that must not happen (e.g. before publishing from another path).
namespace hmq::core::store {

struct group_commit_options {
  size_t max_requests = 1000;
  std::chrono::milliseconds max_delay{20};
};

struct group_commit_stats {
  uint64_t groups = 0;         // COMMITs attempted
  uint64_t requests = 0;       // add() calls
  uint64_t failed_groups = 0;  // COMMITs that failed (every request of the group was told)
  uint64_t ungrouped = 0;      // add() calls run without a group because BEGIN failed
  size_t largest = 0;
};

class group_commit {
 public:
  using then_fn = std::function<void(const result<void>& committed)>;

  group_commit(database& db, loop::scheduler& loop, group_commit_options o = {});
  // Commits an open group without running its callbacks (call flush() before, while the
  // things they use are still alive).
  ~group_commit();
  group_commit(const group_commit&) = delete;
  group_commit& operator=(const group_commit&) = delete;

  // Runs `work` now inside the open group (opening one if needed) and `then` after the group's
  // COMMIT. If the group cannot be opened (e.g. the database is locked by another replica for
  // longer than the busy timeout), `work` runs on its own transactions and `then` runs at once.
  void add(const std::function<void()>& work, then_fn then = {});
  // Runs `then` after the open group's COMMIT (with its result), or at once with ok when no
  // group is open (nothing is waiting to be durable). For announcing writes made elsewhere.
  void after_commit(then_fn then);
  // Commits the open group now and runs its callbacks. Returns the commit's result (ok when no
  // group is open).
  result<void> flush();

  bool open() const { return db_.in_group(); }
  size_t pending() const { return thens_.size(); }
  const group_commit_stats& stats() const { return stats_; }

 private:
  database& db_;
  loop::scheduler& loop_;
  group_commit_options opts_;
  std::vector<then_fn> thens_;
  size_t count_ = 0;
  int64_t opened_ms_ = 0;
  uint64_t generation_ = 0;  // a posted flush only flushes the group it was posted for
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  group_commit_stats stats_;
};

}  // namespace hmq::core::store
