#pragma once

// Proposals and patterns for the agent's tests and fuzz target (one builder instead of one per
// file). Header-only: the fuzz targets use it without the test support library. The agent
// accepts a service only when it is signed whole (core/wire/service_signature.h) and its
// version is listed by the node's pattern (agent/engine_patterns.cc).
#include <memory>
#include <string>
#include <vector>

#include "core/crypto/crypto.h"
#include "core/wire/service_signature.h"
#include "schema/agreement_generated.h"
#include "schema/types_generated.h"

namespace hmq::test {

namespace pfb = ::hmq::wire::fb;

// Adds org/url at `version` (amd64) to `p`, next to the versions already listed.
inline void list_in_pattern(pfb::PatternT& p, const std::string& org, const std::string& url,
                            const std::string& version) {
  auto v = std::make_unique<pfb::ServiceVersionT>();
  v->version = version;
  for (auto& ps : p.services)
    if (ps && ps->service_org == org && ps->service_url == url) {
      ps->service_versions.push_back(std::move(v));
      return;
    }
  auto ps = std::make_unique<pfb::PatternServiceT>();
  ps->service_org = org;
  ps->service_url = url;
  ps->service_arch = "amd64";
  ps->service_versions.push_back(std::move(v));
  p.services.push_back(std::move(ps));
}

// The pattern hub/gps that the agent tests' proposals name: https://acme.com/gps 1.0.0.
inline pfb::PatternT gps_pattern() {
  pfb::PatternT p;
  p.org = "hub";
  p.name = "gps";
  list_in_pattern(p, "hub", "https://acme.com/gps", "1.0.0");
  return p;
}

// One container "gps" running `image`.
inline std::vector<uint8_t> gps_deployment(const std::string& image = "registry.local/gps:1.0",
                                           const std::string& digest = "",
                                           std::vector<std::string> env = {}) {
  pfb::DeploymentT d;
  auto c = std::make_unique<pfb::ContainerT>();
  c->name = "gps";
  c->image = image;
  c->image_digest = digest;
  c->environment = std::move(env);
  d.containers.push_back(std::move(c));
  flatbuffers::FlatBufferBuilder b;
  b.Finish(pfb::Deployment::Pack(b, &d));
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

// The service declares input `name` of `type` (a default when `dflt` is not empty).
inline void declare_input(pfb::ServiceT& s, const std::string& name, const std::string& type,
                          const std::string& dflt = "") {
  s.user_inputs.push_back(std::make_unique<pfb::UserInputDefT>());
  s.user_inputs.back()->name = name;
  s.user_inputs.back()->type = type;
  s.user_inputs.back()->default_value = dflt;
  s.user_inputs.back()->has_default = !dflt.empty();
}

// The proposal gives input `name` the value `value`.
inline void give_input(pfb::ProposedServiceT& ps, const std::string& name,
                       const std::string& value) {
  ps.user_inputs.push_back(std::make_unique<pfb::UserInputValueT>());
  ps.user_inputs.back()->name = name;
  ps.user_inputs.back()->value = value;
}

// Top-level service org/https://acme.com/gps 1.0.0 (amd64) of `deployment`; `declare` adds its
// inputs before `publisher` signs it.
template <typename Declare = void (*)(pfb::ServiceT&)>
std::unique_ptr<pfb::ProposedServiceT> signed_gps(
    const std::string& org, const core::crypto::sign_keypair& publisher,
    std::vector<uint8_t> deployment, Declare declare = [](pfb::ServiceT&) {}) {
  auto ps = std::make_unique<pfb::ProposedServiceT>();
  ps->is_top_level = true;
  ps->service = std::make_unique<pfb::ServiceT>();
  auto& s = *ps->service;
  s.org = org;
  s.url = "https://acme.com/gps";
  s.version = "1.0.0";
  s.arch = "amd64";
  s.sharable = pfb::Sharing::multiple;
  s.deployment = std::move(deployment);
  declare(s);
  core::wire::sign_service(s, publisher);
  return ps;
}

// Agreement `id` for node acme/node1 (amd64) under pattern `org`/gps, from agbot `agbot`.
inline pfb::ProposalT gps_proposal(const std::string& id, const std::string& org,
                                   const std::string& agbot,
                                   std::unique_ptr<pfb::ProposedServiceT> top) {
  pfb::ProposalT p;
  p.agreement_id = id;
  p.pattern = org + "/gps";
  p.node_org = "acme";
  p.node_id = "node1";
  p.arch = "amd64";
  p.agbot = agbot;
  p.services.push_back(std::move(top));
  return p;
}

}  // namespace hmq::test
