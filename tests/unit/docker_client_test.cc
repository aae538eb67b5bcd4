// Docker's answers are untrusted input, and the runtime's plan decides what runs where: both are
// checked here without a daemon.
#include <gtest/gtest.h>

#include "agent/docker/client.h"
#include "agent/docker/runtime.h"

namespace hmq::agent::docker {
namespace {

namespace fb = ::hmq::wire::fb;

TEST(docker_image_ref, splits_registry_repository_tag_and_digest) {
  auto r = parse_image_ref("127.0.0.1:5000/hmq/gps:1.0.0");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->registry, "127.0.0.1:5000");
  EXPECT_EQ(r->repository, "127.0.0.1:5000/hmq/gps");
  EXPECT_EQ(r->tag, "1.0.0");
  auto d = parse_image_ref("localhost:5000/gps@sha256:abc");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->digest, "sha256:abc");
  EXPECT_EQ(d->tag, "");
  auto plain = parse_image_ref("busybox");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->registry, "");
  EXPECT_EQ(plain->tag, "latest");
  EXPECT_FALSE(parse_image_ref("").ok());
  EXPECT_FALSE(parse_image_ref("a b").ok());
  EXPECT_FALSE(parse_image_ref(":tag").ok());
}

TEST(docker_registry_auth, is_base64url_json_without_padding) {
  std::string h = encode_registry_auth({"u", "p?>", "127.0.0.1:5000"});
  EXPECT_EQ(h.find_first_of("+/="), std::string::npos);
  // {"password":"p?>","serveraddress":"127.0.0.1:5000","username":"u"}: check a known prefix.
  EXPECT_EQ(h.substr(0, 12), "eyJwYXNzd29y");
}

TEST(docker_pull_stream, tells_auth_failure_from_other_errors) {
  EXPECT_TRUE(client::parse_pull_stream("{\"status\":\"Pulling\"}\n{\"status\":\"Done\"}\n").ok());
  auto a = client::parse_pull_stream(
      "{\"status\":\"x\"}\n{\"errorDetail\":{\"message\":\"unauthorized: authentication "
      "required\"},\"error\":\"unauthorized: authentication required\"}\n");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.code(), errc::auth_failed);
  auto m = client::parse_pull_stream("{\"error\":\"manifest unknown\"}");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.code(), errc::pull_failed);
  // Garbage lines and wrong types are not errors and do not crash.
  EXPECT_TRUE(client::parse_pull_stream("not json\n[1,2]\n{\"error\":5}\n\n").ok());
}

TEST(docker_inspect, reads_odd_json_as_absent_fields) {
  EXPECT_FALSE(client::parse_container("").ok());
  EXPECT_FALSE(client::parse_container("[]").ok());
  EXPECT_FALSE(client::parse_container("{\"Id\": 5}").ok());
  auto c = client::parse_container(
      R"({"Id":"abc","Name":"/x","State":{"Running":"yes","ExitCode":"3"},"Config":{"Labels":{"a":"b","n":1},"Env":["A=1",2]},
          "NetworkSettings":{"Networks":{"n1":{"Aliases":["gps",null]},"n2":null}}})");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->name, "x");
  EXPECT_FALSE(c->running);
  EXPECT_EQ(c->exit_code, 0);
  EXPECT_EQ(c->labels.size(), 1u);
  EXPECT_EQ(c->env, std::vector<std::string>{"A=1"});
  EXPECT_EQ(c->networks["n1"], std::vector<std::string>{"gps"});
  EXPECT_TRUE(c->networks["n2"].empty());
  auto i = client::parse_image(R"({"Id":"sha256:1","RepoDigests":"nope"})");
  ASSERT_TRUE(i.ok());
  EXPECT_TRUE(i->repo_digests.empty());
}

TEST(docker_events, parses_container_die_and_ignores_the_rest) {
  auto e = client::parse_event(
      R"({"Type":"container","Action":"die","Actor":{"ID":"abc","Attributes":{"name":"hmq-x","exitCode":"3","hmq.instance":"i"}}})");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->action, "die");
  EXPECT_EQ(e->name, "hmq-x");
  EXPECT_EQ(e->exit_code, 3);
  EXPECT_EQ(e->labels["hmq.instance"], "i");
  EXPECT_FALSE(
      client::parse_event(R"({"Type":"network","Action":"die","Actor":{"ID":"a"}})").has_value());
  EXPECT_FALSE(client::parse_event(R"({"Type":"container","Action":"die"})").has_value());
  EXPECT_FALSE(client::parse_event("{").has_value());
  auto bad_code = client::parse_event(
      R"({"Type":"container","Action":"die","Actor":{"ID":"a","Attributes":{"exitCode":"99999999999999"}}})");
  ASSERT_TRUE(bad_code.has_value());
  EXPECT_EQ(bad_code->exit_code, -1);
}

TEST(docker_create_body, maps_horizon_deployment_keys) {
  container_spec s;
  s.name = "c";
  s.image = "r/i@sha256:1";
  s.ports = {{"80/tcp", "127.0.0.1", "8080"}};
  s.devices = {"/dev/ttyUSB0:/dev/gps:r"};
  s.cap_add = {"NET_ADMIN"};
  s.privileged = true;
  s.memory_bytes = 64u << 20;
  s.nano_cpus = 500'000'000;
  s.networks = {{"net1", {"gps"}}, {"net2", {}}};
  auto b = client::container_create_body(s);
  EXPECT_EQ(b["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"], "8080");
  EXPECT_EQ(b["HostConfig"]["Devices"][0]["PathInContainer"], "/dev/gps");
  EXPECT_EQ(b["HostConfig"]["Devices"][0]["CgroupPermissions"], "r");
  EXPECT_EQ(b["HostConfig"]["Memory"], 64u << 20);
  EXPECT_EQ(b["HostConfig"]["NanoCpus"], 500'000'000);
  EXPECT_EQ(b["HostConfig"]["NetworkMode"], "net1");
  EXPECT_EQ(b["NetworkingConfig"]["EndpointsConfig"]["net1"]["Aliases"][0], "gps");
  s.host_network = true;
  EXPECT_EQ(client::container_create_body(s)["HostConfig"]["NetworkMode"], "host");
}

fb::ProposedServiceT svc(const std::string& url, bool top, std::vector<std::string> requires_,
                         fb::Sharing sh, std::string digest = "sha256:" + std::string(64, 'a')) {
  fb::ProposedServiceT ps;
  ps.service = std::make_unique<fb::ServiceT>();
  ps.service->org = "acme";
  ps.service->url = url;
  ps.service->sharable = sh;
  for (auto& r : requires_) {
    auto ref = std::make_unique<fb::ServiceRefT>();
    ref->org = "acme";
    ref->url = r;
    ps.service->required_services.push_back(std::move(ref));
  }
  fb::DeploymentT d;
  auto c = std::make_unique<fb::ContainerT>();
  c->name = url;
  c->image = "127.0.0.1:5000/" + url + ":1";
  c->image_digest = digest;
  c->environment = {"A=1", "HZN_DEVICE_ID=spoofed"};
  d.containers.push_back(std::move(c));
  flatbuffers::FlatBufferBuilder b;
  b.Finish(fb::Deployment::Pack(b, &d));
  ps.service->deployment.assign(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  ps.is_top_level = top;
  return ps;
}

workload wl(std::vector<fb::ProposedServiceT> s) {
  workload w;
  w.agreement_id = "0123456789abcdef0123456789abcdef";
  w.node_org = "acme";
  w.node_id = "n1";
  w.pattern = "acme/p";
  w.arch = "amd64";
  for (auto& x : s) w.services.push_back(std::move(x));
  return w;
}

TEST(docker_plan, starts_producers_first_and_attaches_consumers_to_their_networks) {
  std::vector<fb::ProposedServiceT> s;
  s.push_back(svc("consumer", true, {"gps"}, fb::Sharing::multiple));
  s.push_back(svc("gps", false, {}, fb::Sharing::singleton));
  auto p = docker_runtime::make_plan(wl(std::move(s)), {});
  ASSERT_TRUE(p.ok()) << p.err().message();
  ASSERT_EQ(p->instances.size(), 2u);
  EXPECT_EQ(p->instances[0].service, "acme/gps");
  EXPECT_TRUE(p->instances[0].shared);
  const auto& consumer = p->instances[1].containers.at(0).spec;
  ASSERT_EQ(consumer.networks.size(), 2u);
  EXPECT_EQ(consumer.networks[0].network, "hmq-0123456789ab-consumer");
  EXPECT_EQ(consumer.networks[1].network, p->instances[0].key);
  EXPECT_EQ(p->instances[0].containers.at(0).spec.networks[0].aliases,
            std::vector<std::string>{"gps"});
  // HZN_* cannot be overridden by the deployment; images are pinned to the signed digest.
  auto& env = consumer.env;
  EXPECT_NE(std::find(env.begin(), env.end(), "HZN_DEVICE_ID=n1"), env.end());
  EXPECT_EQ(std::find(env.begin(), env.end(), "HZN_DEVICE_ID=spoofed"), env.end());
  EXPECT_EQ(consumer.image, "127.0.0.1:5000/consumer@sha256:" + std::string(64, 'a'));
  EXPECT_EQ(consumer.labels.at("hmq.agreement"), "0123456789abcdef0123456789abcdef");
}

TEST(docker_plan, refuses_cycles_missing_dependencies_and_unsigned_digests) {
  std::vector<fb::ProposedServiceT> cyc;
  cyc.push_back(svc("a", true, {"b"}, fb::Sharing::multiple));
  cyc.push_back(svc("b", false, {"a"}, fb::Sharing::multiple));
  auto c = docker_runtime::make_plan(wl(std::move(cyc)), {});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(cancel_reason_of(c.err(), fb::CancelReason::unspecified), 112);

  std::vector<fb::ProposedServiceT> missing;
  missing.push_back(svc("a", true, {"nope"}, fb::Sharing::multiple));
  EXPECT_FALSE(docker_runtime::make_plan(wl(std::move(missing)), {}).ok());

  std::vector<fb::ProposedServiceT> unsigned_;
  unsigned_.push_back(svc("a", true, {}, fb::Sharing::multiple, ""));
  auto u = docker_runtime::make_plan(wl(std::move(unsigned_)), {});
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(cancel_reason_of(u.err(), fb::CancelReason::unspecified), 115);
}

TEST(docker_plan, inputs_are_declared_ones_only_and_never_replace_the_signed_environment) {
  // Issue 16: the proposal's values become environment only for inputs the signed definition
  // declares, and a variable the signed deployment sets keeps its signed value.
  std::vector<fb::ProposedServiceT> s;
  s.push_back(svc("gps", true, {}, fb::Sharing::multiple));
  auto& def = s[0].service->user_inputs;
  for (auto [name, dflt] : {std::pair{"A", ""}, std::pair{"MODE", ""}, std::pair{"RATE", "5"}}) {
    def.push_back(std::make_unique<fb::UserInputDefT>());
    def.back()->name = name;
    def.back()->type = "string";
    def.back()->default_value = dflt;
    def.back()->has_default = *dflt != '\0';
  }
  for (auto [name, value] : {std::pair{"A", "overridden"}, std::pair{"MODE", "fast"},
                             std::pair{"LD_PRELOAD", "/tmp/evil.so"}}) {
    s[0].user_inputs.push_back(std::make_unique<fb::UserInputValueT>());
    s[0].user_inputs.back()->name = name;
    s[0].user_inputs.back()->value = value;
  }
  auto p = docker_runtime::make_plan(wl(std::move(s)), {});
  ASSERT_TRUE(p.ok()) << p.err().message();
  const auto& env = p->instances.at(0).containers.at(0).spec.env;
  auto has = [&](const std::string& e) {
    return std::find(env.begin(), env.end(), e) != env.end();
  };
  EXPECT_TRUE(has("A=1"));  // the signed deployment's value
  EXPECT_FALSE(has("A=overridden"));
  EXPECT_TRUE(has("MODE=fast"));  // declared, not set by the deployment
  EXPECT_TRUE(has("RATE=5"));     // declared default
  EXPECT_FALSE(std::any_of(env.begin(), env.end(),
                           [](const std::string& e) { return e.rfind("LD_PRELOAD=", 0) == 0; }));
}

TEST(docker_plan, same_workload_gives_same_deployment_hash) {
  // Reconcile adopts a running container only when its hash label matches: planning must be stable.
  std::vector<fb::ProposedServiceT> a, b;
  a.push_back(svc("x", true, {}, fb::Sharing::multiple));
  b.push_back(svc("x", true, {}, fb::Sharing::multiple));
  auto pa = docker_runtime::make_plan(wl(std::move(a)), {});
  auto pb = docker_runtime::make_plan(wl(std::move(b)), {});
  ASSERT_TRUE(pa.ok() && pb.ok());
  EXPECT_EQ(pa->instances[0].containers[0].hash, pb->instances[0].containers[0].hash);
  runtime_options other;
  other.exchange_url = "mqtt://elsewhere";
  std::vector<fb::ProposedServiceT> c;
  c.push_back(svc("x", true, {}, fb::Sharing::multiple));
  auto pc = docker_runtime::make_plan(wl(std::move(c)), other);
  ASSERT_TRUE(pc.ok());
  EXPECT_NE(pa->instances[0].containers[0].hash, pc->instances[0].containers[0].hash);
}

}  // namespace
}  // namespace hmq::agent::docker
