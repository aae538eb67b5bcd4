#include <gtest/gtest.h>

#include <map>
#include <string>

#include "cli/horizon_json.h"

namespace hmq::cli {
namespace {

using nlohmann::json;

env_lookup env_of(std::map<std::string, std::string> m) {
  return [m = std::move(m)](std::string_view n) -> std::optional<std::string> {
    auto it = m.find(std::string(n));
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}
const env_lookup no_env = env_of({});

std::string example(const std::string& name) {
  auto t = read_text_file(std::string(HMQ_SOURCE_DIR) + "/examples/horizon/" + name);
  EXPECT_TRUE(t.ok());
  return t.ok() ? *t : std::string();
}

const char* minimal_service = R"({
  "org": "o", "label": "l", "description": "d", "public": false,
  "url": "https://x/s", "version": "1.0.0", "arch": "amd64", "sharable": "exclusive",
  "requiredServices": [], "userInput": [],
  "deployment": {"services": {"s": {"image": "r/s:1"}}}
})";

std::string with(std::string text, const std::string& from, const std::string& to) {
  auto p = text.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  if (p != std::string::npos) text.replace(p, from.size(), to);
  return text;
}

TEST(cli_horizon_service, round_trips_requiredservices_userinput_and_string_deployment) {
  // A published file must read back as the same JSON (deployment string becomes an object).
  std::string text = example("cpu2evtstreams.service.definition.json");
  auto s = parse_service(text, "cpu2.json", no_env);
  ASSERT_TRUE(s.ok()) << s.err().detail;
  EXPECT_TRUE(s->warnings.empty());
  ASSERT_EQ(s->service.required_services.size(), 2u);
  EXPECT_EQ(s->service.required_services[0]->version_range, "[1.0.0,2.0.0)");
  EXPECT_EQ(s->service.sharable, fb::Sharing::multiple);
  ASSERT_EQ(s->deployment.containers.size(), 1u);
  EXPECT_EQ(s->deployment.containers[0]->image_digest,
            "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae");
  EXPECT_EQ(s->deployment.containers[0]->max_memory_mb, 64u);
  EXPECT_FALSE(s->service.user_inputs[2]->has_default);
  EXPECT_TRUE(s->service.user_inputs[1]->has_default);

  json original = json::parse(text);
  original["deployment"] = json::parse(original["deployment"].get<std::string>());
  EXPECT_EQ(service_to_json(s->service, &s->deployment), original);
}

TEST(cli_horizon_service, deployment_as_string_and_object_parse_to_the_same_deployment) {
  auto obj = parse_service(minimal_service, "a.json", no_env);
  auto str = parse_service(with(minimal_service, R"({"services": {"s": {"image": "r/s:1"}}})",
                                R"("{\"services\": {\"s\": {\"image\": \"r/s:1\"}}}")"),
                           "b.json", no_env);
  ASSERT_TRUE(obj.ok()) << obj.err().detail;
  ASSERT_TRUE(str.ok()) << str.err().detail;
  EXPECT_TRUE(obj->deployment == str->deployment);
  EXPECT_EQ(serialize_deployment(obj->deployment), serialize_deployment(str->deployment));
}

TEST(cli_horizon_service, substitutes_dollar_and_braced_variables_from_the_environment) {
  auto env = env_of({{"HZN_ORG_ID", "acme"},
                     {"ARCH", "arm64"},
                     {"GPS_VERSION", "2.0.3"},
                     {"REGISTRY", "127.0.0.1:5000"}});
  auto s = parse_service(example("gps.service.definition.json"), "gps.json", env);
  ASSERT_TRUE(s.ok()) << s.err().detail;
  EXPECT_EQ(s->service.org, "acme");
  EXPECT_EQ(s->service.arch, "arm64");
  EXPECT_EQ(s->service.version, "2.0.3");
  EXPECT_EQ(s->service.label, "GPS location for arm64");
  EXPECT_EQ(s->deployment.containers[0]->image, "127.0.0.1:5000/gps_arm64:2.0.3");
  EXPECT_EQ(s->service.sharable, fb::Sharing::singleton);
}

TEST(cli_horizon_service, unset_variable_is_an_error_naming_it) {
  auto s = parse_service(example("gps.service.definition.json"), "gps.json",
                         env_of({{"HZN_ORG_ID", "acme"}, {"ARCH", "arm64"}}));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), horizon_errc::unset_variable);
  EXPECT_NE(s.err().detail.find("'GPS_VERSION'"), std::string::npos) << s.err().detail;
  EXPECT_NE(s.err().detail.find("gps.json"), std::string::npos);
}

TEST(cli_horizon_substitute, keeps_a_dollar_that_starts_no_name) {
  auto s = substitute_env("cost $5 and $ and ${} and $$", "f", no_env);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, "cost $5 and $ and ${} and $$");
  auto t = substitute_env("${A}x$A_B-$A", "f", env_of({{"A", "1"}, {"A_B", "2"}}));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, "1x2-1");
}

TEST(cli_horizon_service, unknown_sharable_names_the_field_and_the_allowed_values) {
  auto s = parse_service(with(minimal_service, "\"exclusive\"", "\"shared\""),
                         "service.definition.json", no_env);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), horizon_errc::invalid_field);
  EXPECT_EQ(s.err().detail,
            "service.definition.json: field 'sharable': must be one of exclusive, singleton, "
            "multiple (got 'shared')");
}

TEST(cli_horizon_service, missing_required_fields_are_named) {
  for (const std::string field : {"url", "version", "arch"}) {
    json j = json::parse(minimal_service);
    j.erase(field);
    auto s = parse_service(j.dump(), "svc.json", no_env);
    ASSERT_FALSE(s.ok()) << field;
    EXPECT_EQ(s.code(), horizon_errc::missing_field);
    EXPECT_EQ(s.err().detail, "svc.json: missing required field '" + field + "'");
  }
  json j = json::parse(minimal_service);
  j["deployment"]["services"]["s"].erase("image");
  auto s = parse_service(j.dump(), "svc.json", no_env);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.err().detail, "svc.json: missing required field 'deployment.services.s.image'");
}

TEST(cli_horizon_service, wrong_types_name_the_nested_field) {
  json j = json::parse(minimal_service);
  j["public"] = "yes";
  auto s = parse_service(j.dump(), "svc.json", no_env);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.err().detail.find("field 'public'"), std::string::npos) << s.err().detail;

  j = json::parse(minimal_service);
  j["requiredServices"] = json::array({{{"url", "u"}, {"org", "o"}}});
  s = parse_service(j.dump(), "svc.json", no_env);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.err().detail.find("'requiredServices[0].versionRange'"), std::string::npos)
      << s.err().detail;

  j = json::parse(minimal_service);
  j["userInput"] = json::array({{{"name", "N"}, {"type", "int"}, {"defaultValue", "five"}}});
  s = parse_service(j.dump(), "svc.json", no_env);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.err().detail.find("'userInput[0].defaultValue'"), std::string::npos)
      << s.err().detail;

  j = json::parse(minimal_service);
  j["deployment"]["services"]["s"]["ports"] = json::array({{{"HostIP", "1.2.3.4"}}});
  s = parse_service(j.dump(), "svc.json", no_env);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.err().detail.find("'deployment.services.s.ports[0].HostPort'"), std::string::npos)
      << s.err().detail;

  j = json::parse(minimal_service);
  j["deployment"]["services"]["s"]["environment"] = json::array({"NOEQUALS"});
  s = parse_service(j.dump(), "svc.json", no_env);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.err().detail.find("'deployment.services.s.environment[0]'"), std::string::npos)
      << s.err().detail;
}

TEST(cli_horizon_service, malformed_json_reports_line_and_column) {
  auto s = parse_service("{\n  \"url\": \"x\",\n  \"version\" \"1\"\n}", "bad.json", no_env);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), horizon_errc::bad_json);
  EXPECT_NE(s.err().detail.find("bad.json: malformed JSON at line 3"), std::string::npos)
      << s.err().detail;
}

TEST(cli_horizon_service, malformed_deployment_string_names_the_field) {
  json j = json::parse(minimal_service);
  j["deployment"] = "{not json";
  auto s = parse_service(j.dump(), "svc.json", no_env);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), horizon_errc::bad_json);
  EXPECT_NE(s.err().detail.find("field 'deployment'"), std::string::npos) << s.err().detail;
}

TEST(cli_horizon_service, unknown_fields_become_warnings_not_errors) {
  json j = json::parse(minimal_service);
  j["sharabel"] = "exclusive";
  j["documentation"] = "https://docs";
  auto s = parse_service(j.dump(), "svc.json", no_env);
  ASSERT_TRUE(s.ok()) << s.err().detail;
  ASSERT_EQ(s->warnings.size(), 2u);
  EXPECT_NE(s->warnings[0].find("documentation"), std::string::npos);
  EXPECT_NE(s->warnings[1].find("unknown field 'sharabel'"), std::string::npos);
}

TEST(cli_horizon_service, bad_digest_in_image_is_refused) {
  auto s = parse_service(with(minimal_service, "r/s:1", "r/s@sha256:abc"), "svc.json", no_env);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.err().detail.find("field 'deployment.services.s.image'"), std::string::npos)
      << s.err().detail;
}

TEST(cli_horizon_pattern, round_trips_with_variable_substitution) {
  auto p = parse_pattern(example("pattern.json"), "pattern.json",
                         env_of({{"EVTSTREAMS_API_KEY", "k-123"}}));
  ASSERT_TRUE(p.ok()) << p.err().detail;
  EXPECT_TRUE(p->warnings.empty());
  ASSERT_EQ(p->pattern.services.size(), 1u);
  ASSERT_EQ(p->pattern.services[0]->service_versions.size(), 2u);
  EXPECT_EQ(p->pattern.services[0]->service_versions[1]->priority->retry_durations, 3600);
  EXPECT_EQ(p->pattern.services[0]->node_health->missing_heartbeat_interval, 600);
  EXPECT_EQ(p->pattern.user_inputs[0]->inputs[0]->value, "k-123");

  json expected = json::parse(example("pattern.json"));
  expected["userInput"][0]["inputs"][0]["value"] = "k-123";
  EXPECT_EQ(pattern_to_json(p->pattern), expected);
}

TEST(cli_horizon_pattern, missing_service_fields_are_named_with_their_index) {
  json j = json::parse(example("pattern.json"));
  j["userInput"] = json::array();
  j["services"][0].erase("serviceOrgid");
  auto p = parse_pattern(j.dump(), "pattern.json", no_env);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.err().detail, "pattern.json: missing required field 'services[0].serviceOrgid'");

  j = json::parse(example("pattern.json"));
  j["userInput"] = json::array();
  j["services"][0]["serviceVersions"] = json::array();
  p = parse_pattern(j.dump(), "pattern.json", no_env);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.err().detail, "pattern.json: missing required field 'services[0].serviceVersions'");

  j = json::parse(example("pattern.json"));
  j["userInput"] = json::array();
  j.erase("services");
  p = parse_pattern(j.dump(), "pattern.json", no_env);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.code(), horizon_errc::missing_field);
}

TEST(cli_horizon_pattern, negative_priority_is_refused_with_the_field) {
  json j = json::parse(example("pattern.json"));
  j["userInput"] = json::array();
  j["services"][0]["serviceVersions"][0]["priority"]["retries"] = -1;
  auto p = parse_pattern(j.dump(), "pattern.json", no_env);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.err().detail.find("'services[0].serviceVersions[0].priority.retries'"),
            std::string::npos)
      << p.err().detail;
}

TEST(cli_horizon_deployment, buffer_round_trips_and_garbage_is_refused) {
  auto s = parse_service(example("cpu2evtstreams.service.definition.json"), "c.json", no_env);
  ASSERT_TRUE(s.ok());
  auto bytes = serialize_deployment(s->deployment);
  auto back = parse_deployment_buffer(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(*back == s->deployment);
  std::vector<uint8_t> garbage = {1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_FALSE(parse_deployment_buffer(garbage).ok());
  EXPECT_FALSE(parse_deployment_buffer({}).ok());
}

}  // namespace
}  // namespace hmq::cli
