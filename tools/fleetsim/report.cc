#include "tools/fleetsim/report.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace hmq::fleetsim {

using json = nlohmann::json;

long self_rss_kb() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kb = -1;
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) kb = std::strtol(line + 6, nullptr, 10);
  }
  std::fclose(f);
  return kb;
}

json stats_of(std::vector<double> v) {
  json j = json::object();
  if (v.empty()) return j;
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) {
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
  };
  j["n"] = v.size();
  j["p50"] = pct(0.5);
  j["p90"] = pct(0.9);
  j["p99"] = pct(0.99);
  j["max"] = v.back();
  return j;
}

json engine_json(const std::vector<agent::engine_counters>& per_node) {
  agent::engine_counters c;
  for (const auto& s : per_node) {
    c.proposals += s.proposals;
    c.accepted += s.accepted;
    c.rejected += s.rejected;
    c.finalized += s.finalized;
    c.cancelled += s.cancelled;
    c.duplicates += s.duplicates;
    c.agbot_key_lookups += s.agbot_key_lookups;
    c.upgrades += s.upgrades;
    c.rollbacks += s.rollbacks;
  }
  return {{"proposals", c.proposals},
          {"accepted", c.accepted},
          {"rejected", c.rejected},
          {"finalized", c.finalized},
          {"cancelled", c.cancelled},
          {"duplicates", c.duplicates},
          {"agbot_key_lookups", c.agbot_key_lookups},
          {"upgrades", c.upgrades},
          {"rollbacks", c.rollbacks}};
}

void print_text_summary(const json& s, const std::string& why) {
  std::printf("nodes                 %zu (%zu connections)\n", s["nodes"].get<size_t>(),
              s["connections"].get<size_t>());
  std::printf("registered            %zu\n", s["registered"].get<size_t>());
  std::printf("agreed                %zu\n", s["agreed"].get<size_t>());
  if (s.contains("time_to_all_agreed_s"))
    std::printf("time to all agreed    %.3f s\n", s["time_to_all_agreed_s"].get<double>());
  else
    std::printf("time to all agreed    not reached (%s)\n", why.c_str());
  const auto& l = s["agreement_latency_ms"];
  if (l.contains("p50"))
    std::printf(
        "agreement latency     p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms (from "
        "RegisterNode sent)\n",
        l["p50"].get<double>(), l["p90"].get<double>(), l["p99"].get<double>(),
        l["max"].get<double>());
  std::printf(
      "crashes injected      %zu, cancellations %llu, register retries %zu, link drops %llu\n",
      s["crashes_injected"].get<size_t>(),
      static_cast<unsigned long long>(s["engine"]["cancelled"].get<uint64_t>()),
      s["register_retries"].get<size_t>(),
      static_cast<unsigned long long>(s["link"]["dropped"].get<uint64_t>()));
}

}  // namespace hmq::fleetsim
