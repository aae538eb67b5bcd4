#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "schema/message_generated.h"

// How `hmq rollout status` shows a pattern's rollouts (docs/cli.md): pure functions so the
// formats are unit-tested without a bus.
namespace hmq::cli {

namespace fb = ::hmq::wire::fb;

// Every rollout is complete or halted (nothing more will happen without a pattern change).
bool rollouts_settled(const std::vector<fb::RolloutStatusT>& s);
bool any_halted(const std::vector<fb::RolloutStatusT>& s);

// A table per rollout: one row per version with its node counts.
std::string rollout_table(const std::vector<fb::RolloutStatusT>& s);
// -o json: an array, one object per rollout (camelCase like hzn's output).
nlohmann::json rollout_json(const std::vector<fb::RolloutStatusT>& s);
// One line per rollout for --watch: "[#####-----]  50%  org/svc -> 1.1.0  3 upgraded, ..."
std::string rollout_progress_line(const fb::RolloutStatusT& s, size_t bar_width = 20);

}  // namespace hmq::cli
