#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/engine.h"

// hmq-fleetsim's summary: the pieces of its JSON that do not need the simulation's state, and
// the text form printed from that JSON (so both forms say the same).
namespace hmq::fleetsim {

// VmRSS of this process in kB (-1 when /proc cannot tell).
long self_rss_kb();

// {n, p50, p90, p99, max} of `v`; {} when empty.
nlohmann::json stats_of(std::vector<double> v);

// The engines' counters, summed over the nodes, as the summary's "engine" object.
nlohmann::json engine_json(const std::vector<agent::engine_counters>& per_node);

// The summary for people, on stdout; `why` says how the run ended.
void print_text_summary(const nlohmann::json& s, const std::string& why);

}  // namespace hmq::fleetsim
