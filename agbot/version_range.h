#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/common/result.h"

// Open Horizon's version and versionRange semantics, used to resolve requiredServices.
//  - a version is 1 to 3 dot-separated decimal numbers; missing parts count as 0 ("1.2" == "1.2.0")
//  - a range is either a bare version "1.0.0", meaning ">= 1.0.0", or an interval with inclusive
//    "[" "]" or exclusive "(" ")" brackets, "[1.0.0,2.0.0)"; the upper bound may be "INFINITY";
//    an empty range means any version.
namespace hmq::agbot {

struct version {
  std::array<uint32_t, 3> parts{};
  auto operator<=>(const version&) const = default;
  std::string str() const;
};

core::result<version> parse_version(std::string_view s);

struct version_range {
  version low{};
  bool low_inclusive = true;
  std::optional<version> high;  // nullopt: unbounded (INFINITY)
  bool high_inclusive = false;
  bool contains(const version& v) const;
};

core::result<version_range> parse_version_range(std::string_view s);

// The highest of `candidates` inside `range`; candidates that are not versions are ignored.
// errc::no_matching_version when none matches.
core::result<std::string> pick_highest(const version_range& range,
                                       std::span<const std::string> candidates);

}  // namespace hmq::agbot
