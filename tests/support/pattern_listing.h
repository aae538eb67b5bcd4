#pragma once

// Patterns for the agent's exchange fakes: the agent accepts a proposal only for a service
// version its registered pattern lists (agent/engine_patterns.cc). Header-only: the fuzz targets
// use it without the test support library.
#include <memory>
#include <string>

#include "schema/types_generated.h"

namespace hmq::test {

// Adds org/url at `version` (amd64) to `p`, next to the versions already listed.
inline void list_in_pattern(::hmq::wire::fb::PatternT& p, const std::string& org,
                            const std::string& url, const std::string& version) {
  namespace fb = ::hmq::wire::fb;
  auto v = std::make_unique<fb::ServiceVersionT>();
  v->version = version;
  for (auto& ps : p.services)
    if (ps && ps->service_org == org && ps->service_url == url) {
      ps->service_versions.push_back(std::move(v));
      return;
    }
  auto ps = std::make_unique<fb::PatternServiceT>();
  ps->service_org = org;
  ps->service_url = url;
  ps->service_arch = "amd64";
  ps->service_versions.push_back(std::move(v));
  p.services.push_back(std::move(ps));
}

// The pattern hub/gps that the agent tests' proposals name: https://acme.com/gps 1.0.0.
inline ::hmq::wire::fb::PatternT gps_pattern() {
  ::hmq::wire::fb::PatternT p;
  p.org = "hub";
  p.name = "gps";
  list_in_pattern(p, "hub", "https://acme.com/gps", "1.0.0");
  return p;
}

}  // namespace hmq::test
