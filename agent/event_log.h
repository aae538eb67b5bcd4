#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/result.h"
#include "core/loop/loop.h"
#include "core/store/store.h"

// The agent's event log (like Horizon's `hzn eventlog list`): one row per thing that happened to
// an agreement or its services, in agent.db (its own table, created if missing), newest kept,
// oldest dropped beyond `max_rows`. Written on the loop thread by the engine; read by the
// control API (`hmq eventlog list`). A failed write is logged and counted, never fatal: the log
// is for operators, the agreement state lives elsewhere.
namespace hmq::agent {

struct event_record {
  int64_t seq = 0;
  int64_t time_ms = 0;
  std::string kind;       // agreement_accepted, agreement_rejected, agreement_finalized,
                          // deploy_started, deploy_done, deploy_failed, service_failed,
                          // agreement_cancelled, workload_removed, registered, unregistered,
                          // upgrade_started, upgrade_swapped, upgrade_verified,
                          // upgrade_rolled_back; from the runtime: image_pulled,
                          // container_started, container_crashed, container_oom,
                          // container_restarted, restart_failed
  std::string agreement;  // id or ""
  std::string service;    // url or ""
  uint16_t reason = 0;    // Horizon reason code (e.g. 208) or 0
  std::string message;
};

class event_log {
 public:
  event_log(core::store::database& db, const core::loop::clock& clock, size_t max_rows = 10'000)
      : db_(db), clock_(clock), max_rows_(max_rows) {}

  void add(std::string_view kind, std::string_view agreement, std::string_view service,
           uint16_t reason, std::string_view message);
  // Newest last. `agreement` filters when non-empty; `limit` 0 = all kept rows.
  core::result<std::vector<event_record>> list(std::string_view agreement = {}, size_t limit = 0);
  uint64_t write_errors() const { return write_errors_; }

 private:
  core::result<void> ensure_table();

  core::store::database& db_;
  const core::loop::clock& clock_;
  size_t max_rows_;
  bool ready_ = false;
  uint64_t added_ = 0;
  uint64_t write_errors_ = 0;
};

}  // namespace hmq::agent
