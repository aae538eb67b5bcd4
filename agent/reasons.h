#pragma once

#include <cstdint>
#include <string_view>

// Horizon's agreement cancel reasons: code -> the short text operators know from `hzn`.
namespace hmq::agent {

// "" for codes Horizon does not define; 0 is "" as well.
std::string_view reason_text(uint16_t code);

}  // namespace hmq::agent
