#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

// Text output shared by every `hmq` command (exchange, agent and agbot commands alike).
namespace hmq::cli {

// Left-aligned columns sized to their widest cell, two spaces apart; rows may be ragged.
void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows);

// "2026-11-28 17:20:00Z" for a time in ms since the epoch; "-" for none (0 or negative).
std::string utc_time(int64_t ms);

}  // namespace hmq::cli
