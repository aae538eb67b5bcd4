#include "cli/rollout_view.h"

#include <algorithm>
#include <sstream>

namespace hmq::cli {
namespace {

std::string state_name(fb::RolloutState s) {
  const char* n = fb::EnumNameRolloutState(s);
  return n && *n ? n : "unknown";
}

struct totals {
  uint32_t upgraded = 0, in_progress = 0, failed = 0, rolled_back = 0, pending = 0;
};
totals sum(const fb::RolloutStatusT& s) {
  totals t;
  for (const auto& v : s.versions) {
    if (!v) continue;
    t.upgraded += v->upgraded;
    t.in_progress += v->in_progress;
    t.failed += v->failed;
    t.rolled_back += v->rolled_back;
    t.pending += v->pending;
  }
  return t;
}

}  // namespace

bool rollouts_settled(const std::vector<fb::RolloutStatusT>& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](const auto& r) {
    return r.state == fb::RolloutState::complete || r.state == fb::RolloutState::halted;
  });
}

bool any_halted(const std::vector<fb::RolloutStatusT>& s) {
  return std::any_of(s.begin(), s.end(),
                     [](const auto& r) { return r.state == fb::RolloutState::halted; });
}

std::string rollout_table(const std::vector<fb::RolloutStatusT>& s) {
  std::ostringstream o;
  for (const auto& r : s) {
    o << "pattern " << r.pattern << "  service " << r.service_org << "/" << r.service_url
      << "  target " << r.target_version << "  " << state_name(r.state) << "  (agbot " << r.agbot
      << ", max in flight " << r.max_in_flight << ", failures " << r.failed_nodes << "/"
      << (r.max_failures ? std::to_string(r.max_failures) : "-") << ")\n";
    std::vector<std::vector<std::string>> rows{
        {"VERSION", "RUNNING", "UPGRADED", "IN PROGRESS", "PENDING", "FAILED", "ROLLED BACK"}};
    for (const auto& v : r.versions) {
      if (!v) continue;
      rows.push_back({v->version, std::to_string(v->running), std::to_string(v->upgraded),
                      std::to_string(v->in_progress), std::to_string(v->pending),
                      std::to_string(v->failed), std::to_string(v->rolled_back)});
    }
    std::vector<size_t> w(rows.front().size(), 0);
    for (const auto& row : rows)
      for (size_t i = 0; i < row.size(); ++i) w[i] = std::max(w[i], row[i].size());
    for (const auto& row : rows) {
      for (size_t i = 0; i < row.size(); ++i) {
        o << row[i];
        if (i + 1 < row.size()) o << std::string(w[i] - row[i].size() + 2, ' ');
      }
      o << "\n";
    }
  }
  return o.str();
}

nlohmann::json rollout_json(const std::vector<fb::RolloutStatusT>& s) {
  auto arr = nlohmann::json::array();
  for (const auto& r : s) {
    nlohmann::json versions = nlohmann::json::array();
    for (const auto& v : r.versions) {
      if (!v) continue;
      versions.push_back({{"version", v->version},
                          {"running", v->running},
                          {"upgraded", v->upgraded},
                          {"inProgress", v->in_progress},
                          {"pending", v->pending},
                          {"failed", v->failed},
                          {"rolledBack", v->rolled_back}});
    }
    arr.push_back({{"pattern", r.pattern},
                   {"service", r.service_org + "/" + r.service_url},
                   {"agbot", r.agbot},
                   {"state", state_name(r.state)},
                   {"targetVersion", r.target_version},
                   {"maxInFlight", r.max_in_flight},
                   {"batchPauseSeconds", r.batch_pause_s},
                   {"maxFailures", r.max_failures},
                   {"failedNodes", r.failed_nodes},
                   {"rolloutNodes", r.rollout_nodes},
                   {"openNodes", r.open_nodes},
                   {"totalNodes", r.total_nodes},
                   {"startedMs", r.started_ms},
                   {"updatedMs", r.updated_ms},
                   {"versions", versions}});
  }
  return arr;
}

std::string rollout_progress_line(const fb::RolloutStatusT& s, size_t bar_width) {
  const uint32_t all = s.rollout_nodes;
  const uint32_t done = all >= s.open_nodes ? all - s.open_nodes : 0;
  const size_t filled = all ? static_cast<size_t>(uint64_t{done} * bar_width / all) : bar_width;
  auto t = sum(s);
  std::ostringstream o;
  o << "[" << std::string(filled, '#') << std::string(bar_width - filled, '-') << "] ";
  o.width(3);
  o << (all ? uint64_t{done} * 100 / all : 100) << "%  " << s.service_org << "/" << s.service_url
    << " -> " << s.target_version << "  " << t.upgraded << " upgraded, " << t.in_progress
    << " in progress, " << t.pending << " pending, " << t.failed << " failed, " << t.rolled_back
    << " rolled back  " << state_name(s.state);
  return o.str();
}

}  // namespace hmq::cli
