#pragma once

// The agbot engine's seams in memory, without a test framework: a fake exchange answering from
// maps, an outbox that keeps what was sent as Message buffers, and the "gps" world the engine
// tests and the agbot fuzz targets start from. tests/unit/agbot_engine_fixture.h and
// tests/fuzz/agbot_*_fuzz.cc.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agbot/engine.h"
#include "agbot/errc.h"
#include "agbot/seams.h"
#include "core/wire/codec.h"

namespace hmq::agbot {
namespace {

inline core::crypto::public_key key_of(uint8_t b) {
  core::crypto::public_key k{};
  k.fill(b);
  return k;
}

const core::crypto::public_key exchange_key = key_of(0xee);

inline core::error err(errc e) {
  return {make_error_code(e), {}};
}

// In-memory exchange: answers synchronously from maps and counts writes.
class fake_exchange final : public exchange_api {
 public:
  fb::AgbotT agbot;
  std::map<std::string, fb::PatternT> patterns;  // "org/name"
  std::map<std::string, fb::NodeT> nodes;        // "org/id"
  std::vector<fb::ServiceT> services;
  std::map<std::string, fb::AgreementRecordT> agreements;  // by id
  int puts = 0;
  int deletes = 0;
  int node_fetches = 0;

  void hello(callback<void> cb) override { cb(core::ok()); }
  int agbot_reads = 0;  // start-up and every resync read the agbot
  void get_agbot(callback<fb::AgbotT> cb) override {
    ++agbot_reads;
    cb(agbot);
  }
  void search_pattern_nodes(const fb::AgbotPatternT& p, std::string token, uint32_t limit,
                            callback<node_page> cb) override {
    // Page by position in the map; the token is the next index.
    size_t start = token.empty() ? 0 : std::stoul(token);
    node_page page;
    size_t i = 0, matched = 0;
    for (const auto& [k, n] : nodes) {
      if (n.pattern != p.pattern_org + "/" + p.pattern) continue;
      if (matched++ < start) continue;
      if (i == limit) {
        page.next_page_token = std::to_string(start + i);
        break;
      }
      page.nodes.push_back(n);
      ++i;
    }
    cb(std::move(page));
  }
  void get_node(std::string org, std::string id, callback<fb::NodeT> cb) override {
    ++node_fetches;
    auto it = nodes.find(org + "/" + id);
    if (it == nodes.end()) return cb(err(errc::not_found));
    cb(it->second);
  }
  void get_pattern(std::string org, std::string name, callback<fb::PatternT> cb) override {
    auto it = patterns.find(org + "/" + name);
    if (it == patterns.end()) return cb(err(errc::not_found));
    cb(it->second);
  }
  void get_service(std::string org, std::string url, std::string version, std::string arch,
                   callback<fb::ServiceT> cb) override {
    for (const auto& s : services)
      if (s.org == org && s.url == url && s.version == version && s.arch == arch) return cb(s);
    cb(err(errc::not_found));
  }
  void list_service_versions(std::string org, std::string url, std::string arch,
                             callback<std::vector<std::string>> cb) override {
    std::vector<std::string> out;
    for (const auto& s : services)
      if (s.org == org && s.url == url && s.arch == arch) out.push_back(s.version);
    cb(std::move(out));
  }
  void get_node_key(std::string, std::string, callback<core::crypto::public_key> cb) override {
    cb(err(errc::not_found));
  }
  void put_agreement(const fb::AgreementRecordT& r, callback<void> cb) override {
    ++puts;
    agreements[r.agreement_id] = r;
    cb(core::ok());
  }
  void delete_agreement(std::string, std::string, std::string id, callback<void> cb) override {
    ++deletes;
    agreements.erase(id);
    cb(core::ok());
  }
};

// Captures sealed sends as finished Message buffers the test can read.
class fake_outbox final : public outbox {
 public:
  struct sent {
    core::crypto::public_key to{};
    uint32_t expiry_s = 0;
    uint64_t correlation_id = 0;
    std::vector<uint8_t> bytes;
    const fb::Message* msg() const { return fb::GetMessage(bytes.data()); }
  };
  std::vector<sent> messages;

  void send(const core::crypto::public_key& to, fb::Body type, const body_builder& body,
            uint32_t expiry_s, std::function<void(bool)> done) override {
    messages.push_back({to, expiry_s, 0, build(type, body, 0)});
    if (done) done(true);
  }
  void reply(const core::wire::opened& req, fb::Body type, const body_builder& body) override {
    auto corr = req.message()->correlation_id();
    messages.push_back({req.sender, 0, corr, build(type, body, corr)});
  }
  std::vector<const sent*> of(fb::Body type) const {
    std::vector<const sent*> out;
    for (const auto& m : messages)
      if (m.msg()->body_type() == type) out.push_back(&m);
    return out;
  }

 private:
  static std::vector<uint8_t> build(fb::Body type, const body_builder& body, uint64_t corr) {
    flatbuffers::FlatBufferBuilder b;
    auto off = body(b);
    b.Finish(fb::CreateMessage(b, 1, 0, corr, 0, type, off), fb::MessageIdentifier());
    return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
  }
};

inline core::wire::opened inbound(const core::crypto::public_key& from, fb::Body type,
                                  const body_builder& body) {
  flatbuffers::FlatBufferBuilder b;
  auto off = body(b);
  b.Finish(fb::CreateMessage(b, 7, 0, 42, 0, type, off), fb::MessageIdentifier());
  core::wire::opened o;
  o.sender = from;
  o.bytes.assign(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  return o;
}

inline std::unique_ptr<fb::ServiceUserInputT> user_input(const std::string& url,
                                                         const std::string& name,
                                                         const std::string& value) {
  auto ui = std::make_unique<fb::ServiceUserInputT>();
  ui->service_org = "acme";
  ui->service_url = url;
  auto v = std::make_unique<fb::UserInputValueT>();
  v->name = name;
  v->value = value;
  ui->inputs.push_back(std::move(v));
  return ui;
}

inline fb::ServiceT service(const std::string& url, const std::string& version,
                            const std::string& arch = "amd64") {
  fb::ServiceT s;
  s.org = "acme";
  s.url = url;
  s.version = version;
  s.arch = arch;
  s.sharable = fb::Sharing::multiple;
  fb::DeploymentT d;
  auto c = std::make_unique<fb::ContainerT>();
  c->name = url;
  c->image = "registry.local/" + url + ":" + version;
  c->image_digest = "sha256:00";
  d.containers.push_back(std::move(c));
  flatbuffers::FlatBufferBuilder b;
  b.Finish(fb::Deployment::Pack(b, &d));
  s.deployment.assign(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  s.deployment_signature = std::vector<uint8_t>(64, 9);
  s.service_signature = std::vector<uint8_t>(64, 7);
  s.publisher_key = std::vector<uint8_t>(32, 8);
  return s;
}

// Agbot acme/ab1 serving pattern acme/gps (gps 1.0.0 and 1.1.0, which requires location
// [1.0.0,2.0.0); user inputs HZN_RATE and HZN_MODE) with the services it resolves to.
inline void gps_world(fake_exchange& x) {
  auto p = std::make_unique<fb::AgbotPatternT>();
  p->pattern_org = "acme";
  p->pattern = "gps";
  p->node_org = "acme";
  x.agbot.org = "acme";
  x.agbot.id = "ab1";
  x.agbot.patterns.push_back(std::move(p));

  fb::PatternT pat;
  pat.org = "acme";
  pat.name = "gps";
  auto ps = std::make_unique<fb::PatternServiceT>();
  ps->service_org = "acme";
  ps->service_url = "gps";
  ps->service_arch = "amd64";
  for (auto [v, prio] : {std::pair{"1.0.0", 2}, std::pair{"1.1.0", 1}}) {
    auto sv = std::make_unique<fb::ServiceVersionT>();
    sv->version = v;
    sv->priority = std::make_unique<fb::PriorityT>();
    sv->priority->priority_value = prio;
    ps->service_versions.push_back(std::move(sv));
  }
  ps->node_health = std::make_unique<fb::NodeHealthT>();
  ps->node_health->missing_heartbeat_interval = 120;
  pat.services.push_back(std::move(ps));
  pat.user_inputs.push_back(user_input("gps", "HZN_RATE", "10"));
  x.patterns["acme/gps"] = std::move(pat);

  auto gps = service("gps", "1.1.0");
  auto ref = std::make_unique<fb::ServiceRefT>();
  ref->org = "acme";
  ref->url = "location";
  ref->version_range = "[1.0.0,2.0.0)";
  ref->arch = "amd64";
  gps.required_services.push_back(std::move(ref));
  for (auto [name, def] : {std::pair{"HZN_RATE", "1"}, std::pair{"HZN_MODE", "fast"}}) {
    auto d = std::make_unique<fb::UserInputDefT>();
    d->name = name;
    d->type = "string";
    d->default_value = def;
    d->has_default = true;
    gps.user_inputs.push_back(std::move(d));
  }
  x.services.push_back(std::move(gps));
  x.services.push_back(service("gps", "1.0.0"));
  for (auto v : {"0.9.0", "1.0.0", "1.4.2", "2.0.0"}) x.services.push_back(service("location", v));
  x.services.push_back(service("location", "1.9.0", "arm64"));
}

// Node acme/<id> on pattern acme/gps with key `key`.
inline void add_gps_node(fake_exchange& x, const std::string& id,
                         const core::crypto::public_key& key,
                         const std::string& pattern = "acme/gps",
                         const std::string& arch = "amd64") {
  fb::NodeT n;
  n.org = "acme";
  n.id = id;
  n.arch = arch;
  n.pattern = pattern;
  n.public_key.assign(key.begin(), key.end());
  n.user_inputs.push_back(user_input("gps", "HZN_MODE", "slow-" + id));
  x.nodes["acme/" + id] = std::move(n);
}

}  // namespace
}  // namespace hmq::agbot
