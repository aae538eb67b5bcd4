#include "cli/horizon_json.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

namespace hmq::cli {

namespace {

using json = nlohmann::json;

class horizon_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "horizon"; }
  std::string message(int c) const override {
    switch (static_cast<horizon_errc>(c)) {
      case horizon_errc::ok:
        return "ok";
      case horizon_errc::bad_json:
        return "malformed JSON";
      case horizon_errc::invalid_field:
        return "invalid field";
      case horizon_errc::missing_field:
        return "missing required field";
      case horizon_errc::unset_variable:
        return "environment variable not set";
      case horizon_errc::io_error:
        return "cannot read file";
    }
    return "unknown";
  }
};

// Thrown inside this file only and turned into a result at the public functions: the parsers
// are deeply nested and every level would otherwise repeat the same early return.
struct parse_failure {
  horizon_errc code;
  std::string detail;
};

[[noreturn]] void fail(horizon_errc c, std::string detail) {
  throw parse_failure{c, std::move(detail)};
}

std::string type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number";
    default:
      return "a value";
  }
}

// Walks one JSON object, remembering which keys were read so the rest become warnings.
class object_reader {
 public:
  object_reader(const json& obj, std::string path, std::string_view source,
                std::vector<std::string>& warnings)
      : obj_(obj), path_(std::move(path)), source_(source), warnings_(warnings) {
    if (!obj_.is_object()) {
      fail(horizon_errc::invalid_field, prefix() + "field '" +
                                            (path_.empty() ? "(top level)" : path_) +
                                            "': must be an object (got " + type_name(obj_) + ")");
    }
  }

  std::string field(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  std::string prefix() const { return std::string(source_) + ": "; }

  [[noreturn]] void invalid(std::string_view key, const std::string& why) const {
    fail(horizon_errc::invalid_field, prefix() + "field '" + field(key) + "': " + why);
  }
  [[noreturn]] void missing(std::string_view key) const {
    fail(horizon_errc::missing_field, prefix() + "missing required field '" + field(key) + "'");
  }

  // Known fields that Horizon has but we do not use: read silently with a note.
  void ignore(std::string_view key) {
    if (find(key))
      warnings_.push_back(prefix() + "field '" + field(key) + "' is not used by Horizon-MQ");
  }

  const json* find(std::string_view key) {
    auto it = obj_.find(std::string(key));
    if (it == obj_.end() || it->is_null()) {
      if (it != obj_.end()) used_.insert(std::string(key));
      return nullptr;
    }
    used_.insert(std::string(key));
    return &*it;
  }

  std::string str(std::string_view key, bool required) {
    const json* v = find(key);
    if (!v) {
      if (required) missing(key);
      return {};
    }
    if (!v->is_string()) invalid(key, "must be a string (got " + type_name(*v) + ")");
    auto s = v->get<std::string>();
    if (required && s.empty()) missing(key);
    return s;
  }

  bool boolean(std::string_view key) {
    const json* v = find(key);
    if (!v) return false;
    if (!v->is_boolean()) invalid(key, "must be true or false (got " + type_name(*v) + ")");
    return v->get<bool>();
  }

  int64_t integer(std::string_view key, int64_t min, int64_t max) {
    const json* v = find(key);
    if (!v) return 0;
    if (!v->is_number_integer()) invalid(key, "must be an integer (got " + type_name(*v) + ")");
    int64_t x = v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)
                    ? INT64_MAX
                    : v->get<int64_t>();
    if (x < min || x > max) {
      invalid(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                       " (got " + v->dump() + ")");
    }
    return x;
  }

  double number(std::string_view key, double min, double max) {
    const json* v = find(key);
    if (!v) return 0;
    if (!v->is_number()) invalid(key, "must be a number (got " + type_name(*v) + ")");
    double x = v->get<double>();
    if (!(x >= min && x <= max))
      invalid(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return x;
  }

  std::vector<std::string> strings(std::string_view key) {
    const json* v = find(key);
    if (!v) return {};
    if (!v->is_array()) invalid(key, "must be an array of strings (got " + type_name(*v) + ")");
    std::vector<std::string> out;
    for (size_t i = 0; i < v->size(); ++i) {
      const json& e = (*v)[i];
      if (!e.is_string()) {
        invalid(std::string(key) + "[" + std::to_string(i) + "]",
                "must be a string (got " + type_name(e) + ")");
      }
      out.push_back(e.get<std::string>());
    }
    return out;
  }

  // An array of objects: calls fn(reader, index) for each.
  template <typename F>
  void objects(std::string_view key, F&& fn) {
    const json* v = find(key);
    if (!v) return;
    if (!v->is_array()) invalid(key, "must be an array (got " + type_name(*v) + ")");
    for (size_t i = 0; i < v->size(); ++i) {
      object_reader r((*v)[i], field(key) + "[" + std::to_string(i) + "]", source_, warnings_);
      fn(r, i);
      r.finish();
    }
  }

  // Unknown keys: a warning each (Horizon's own parser ignores them too, but a typo such as
  // "sharabel" should not pass unnoticed).
  void finish() {
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
      if (!used_.count(it.key()))
        warnings_.push_back(prefix() + "unknown field '" + field(it.key()) + "' ignored");
    }
  }

  std::vector<std::string>& warnings() { return warnings_; }
  std::string_view source() const { return source_; }

 private:
  const json& obj_;
  std::string path_;
  std::string_view source_;
  std::vector<std::string>& warnings_;
  std::set<std::string> used_;
};

json parse_json_text(std::string_view text, std::string_view source) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    // nlohmann reports a byte offset; people want line and column.
    size_t line = 1, col = 1;
    size_t end = std::min<size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    for (size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string what = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 2: " prefix.
    if (auto p = what.find(": "); p != std::string::npos) {
      auto rest = what.substr(p + 2);
      if (auto q = rest.find(": "); q != std::string::npos && rest.rfind("syntax error", 0) != 0)
        rest = rest.substr(q + 2);
      what = rest;
    }
    fail(horizon_errc::bad_json, std::string(source) + ": malformed JSON at line " +
                                     std::to_string(line) + ", column " + std::to_string(col) +
                                     ": " + what);
  }
}

std::string scalar_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump();
}

const std::set<std::string, std::less<>> input_types = {"string",  "int",  "float",
                                                        "boolean", "bool", "list of strings"};

void check_typed_value(object_reader& r, std::string_view key, const std::string& type,
                       const std::string& value) {
  if (value.empty()) return;
  if (type == "int") {
    char* end = nullptr;
    errno = 0;
    std::strtoll(value.c_str(), &end, 10);
    if (errno != 0 || *end != '\0')
      r.invalid(key, "must be an int for type 'int' (got '" + value + "')");
  } else if (type == "float") {
    char* end = nullptr;
    std::strtod(value.c_str(), &end);
    if (*end != '\0') r.invalid(key, "must be a number for type 'float' (got '" + value + "')");
  } else if (type == "boolean" || type == "bool") {
    if (value != "true" && value != "false")
      r.invalid(key, "must be true or false for type 'boolean' (got '" + value + "')");
  }
}

std::unique_ptr<fb::ContainerT> parse_container(object_reader& r, const std::string& name) {
  auto c = std::make_unique<fb::ContainerT>();
  c->name = name;
  std::string image = r.str("image", true);
  auto ref = split_image_digest(image);
  c->image = image;
  c->image_digest = ref.digest;
  if (!ref.digest.empty() && (ref.digest.rfind("sha256:", 0) != 0 || ref.digest.size() != 7 + 64)) {
    r.invalid("image", "digest must be sha256: and 64 hex digits (got '" + ref.digest + "')");
  }
  c->environment = r.strings("environment");
  for (size_t i = 0; i < c->environment.size(); ++i) {
    if (c->environment[i].find('=') == std::string::npos || c->environment[i][0] == '=') {
      r.invalid("environment[" + std::to_string(i) + "]",
                "must be KEY=value (got '" + c->environment[i] + "')");
    }
  }
  c->command = r.strings("command");
  c->entrypoint = r.strings("entrypoint");
  r.objects("ports", [&](object_reader& p, size_t) {
    auto b = std::make_unique<fb::PortBindingT>();
    b->host_port = p.str("HostPort", true);
    b->host_ip = p.str("HostIP", false);
    c->ports.push_back(std::move(b));
  });
  c->binds = r.strings("binds");
  c->privileged = r.boolean("privileged");
  c->devices = r.strings("devices");
  c->cap_add = r.strings("cap_add");
  c->max_memory_mb = static_cast<uint32_t>(r.integer("max_memory_mb", 0, UINT32_MAX));
  c->max_cpus = static_cast<float>(r.number("max_cpus", 0, 4096));
  c->network = r.str("network", false);
  if (!c->network.empty() && c->network != "host") {
    r.invalid("network", "must be \"\" (private network) or \"host\" (got '" + c->network + "')");
  }
  for (auto k : {"specific_ports", "tmpfs", "log_driver", "secrets", "pid", "ipc_mode", "restart",
                 "security_opt", "ulimits"}) {
    r.ignore(k);
  }
  return c;
}

fb::DeploymentT parse_deployment_value(const json& v, const std::string& path,
                                       std::string_view source,
                                       std::vector<std::string>& warnings) {
  fb::DeploymentT d;
  json parsed;
  const json* obj = &v;
  if (v.is_string()) {
    // Horizon allows the deployment as a JSON document inside a string.
    auto s = v.get<std::string>();
    if (s.empty()) return d;
    try {
      parsed = json::parse(s);
    } catch (const json::parse_error& e) {
      fail(horizon_errc::bad_json,
           std::string(source) + ": field '" + path + "': malformed JSON in string: " + e.what());
    }
    obj = &parsed;
  }
  if (obj->is_object() && obj->empty()) return d;  // a service with no containers of its own
  object_reader r(*obj, path, source, warnings);
  const json* services = r.find("services");
  if (!services) r.missing("services");
  object_reader sr(*services, path + ".services", source, warnings);
  if (services->empty()) r.invalid("services", "must name at least one container");
  for (auto it = services->begin(); it != services->end(); ++it) {
    if (it.key().empty()) r.invalid("services", "container names must not be empty");
    object_reader cr(it.value(), path + ".services." + it.key(), source, warnings);
    sr.find(it.key());
    d.containers.push_back(parse_container(cr, it.key()));
    cr.finish();
  }
  r.finish();
  return d;
}

fb::Sharing parse_sharing(object_reader& r) {
  std::string s = r.str("sharable", false);
  if (s.empty() || s == "multiple") return fb::Sharing::multiple;  // Horizon's default
  if (s == "exclusive") return fb::Sharing::exclusive;
  if (s == "singleton" || s == "single")
    return fb::Sharing::singleton;  // "single": Horizon's older name
  r.invalid("sharable", "must be one of exclusive, singleton, multiple (got '" + s + "')");
}

horizon_service parse_service_json(const json& doc, std::string_view source) {
  horizon_service out;
  object_reader r(doc, "", source, out.warnings);
  auto& s = out.service;
  s.org = r.str("org", false);
  s.label = r.str("label", false);
  s.description = r.str("description", false);
  s.public_ = r.boolean("public");
  s.url = r.str("url", true);
  s.version = r.str("version", true);
  s.arch = r.str("arch", true);
  s.sharable = parse_sharing(r);
  r.objects("requiredServices", [&](object_reader& q, size_t) {
    auto ref = std::make_unique<fb::ServiceRefT>();
    ref->url = q.str("url", false);
    if (ref->url.empty()) ref->url = q.str("serviceUrl", false);
    if (ref->url.empty()) q.missing("url");
    ref->org = q.str("org", true);
    // Horizon's newer files use versionRange; "version" is the older spelling of the same thing.
    ref->version_range = q.str("versionRange", false);
    std::string version = q.str("version", false);
    if (ref->version_range.empty()) ref->version_range = version;
    if (ref->version_range.empty()) q.missing("versionRange");
    ref->arch = q.str("arch", false);
    if (ref->arch.empty()) ref->arch = s.arch;
    s.required_services.push_back(std::move(ref));
  });
  r.objects("userInput", [&](object_reader& q, size_t) {
    auto in = std::make_unique<fb::UserInputDefT>();
    in->name = q.str("name", true);
    in->label = q.str("label", false);
    in->type = q.str("type", true);
    if (!input_types.count(in->type)) {
      q.invalid("type", "must be one of string, int, float, boolean, list of strings (got '" +
                            in->type + "')");
    }
    if (const json* dv = q.find("defaultValue")) {
      if (dv->is_object() || dv->is_array()) {
        in->default_value = dv->dump();
      } else {
        in->default_value = scalar_text(*dv);
      }
    }
    // Horizon: an empty default means the node must supply a value.
    in->has_default = !in->default_value.empty();
    check_typed_value(q, "defaultValue", in->type, in->default_value);
    s.user_inputs.push_back(std::move(in));
  });
  if (const json* dep = r.find("deployment")) {
    out.deployment = parse_deployment_value(*dep, "deployment", source, out.warnings);
  }
  r.ignore("deploymentSignature");  // we sign at publish time, with the given key
  for (auto k : {"documentation", "clusterDeployment", "clusterDeploymentSignature",
                 "matchHardware", "imageStore", "owner", "lastUpdated"}) {
    r.ignore(k);
  }
  r.finish();
  return out;
}

horizon_pattern parse_pattern_json(const json& doc, std::string_view source) {
  horizon_pattern out;
  object_reader r(doc, "", source, out.warnings);
  auto& p = out.pattern;
  p.org = r.str("org", false);
  p.name = r.str("name", false);  // may come from the command line instead
  p.label = r.str("label", false);
  p.description = r.str("description", false);
  p.public_ = r.boolean("public");
  const json* services = r.find("services");
  if (!services || (services->is_array() && services->empty())) r.missing("services");
  r.objects("services", [&](object_reader& q, size_t) {
    auto ps = std::make_unique<fb::PatternServiceT>();
    ps->service_url = q.str("serviceUrl", true);
    ps->service_org = q.str("serviceOrgid", true);
    ps->service_arch = q.str("serviceArch", true);
    ps->agreement_less = q.boolean("agreementLess");
    const json* versions = q.find("serviceVersions");
    if (!versions || (versions->is_array() && versions->empty())) q.missing("serviceVersions");
    q.objects("serviceVersions", [&](object_reader& v, size_t) {
      auto sv = std::make_unique<fb::ServiceVersionT>();
      sv->version = v.str("version", true);
      if (const json* pr = v.find("priority")) {
        object_reader prr(*pr, v.field("priority"), source, out.warnings);
        auto prio = std::make_unique<fb::PriorityT>();
        prio->priority_value = static_cast<int32_t>(prr.integer("priority_value", 0, INT32_MAX));
        prio->retries = static_cast<int32_t>(prr.integer("retries", 0, INT32_MAX));
        prio->retry_durations = static_cast<int32_t>(prr.integer("retry_durations", 0, INT32_MAX));
        prio->verified_durations =
            static_cast<int32_t>(prr.integer("verified_durations", 0, INT32_MAX));
        prr.finish();
        sv->priority = std::move(prio);
      }
      v.ignore("upgradePolicy");
      ps->service_versions.push_back(std::move(sv));
    });
    if (const json* nh = q.find("nodeHealth")) {
      object_reader h(*nh, q.field("nodeHealth"), source, out.warnings);
      auto health = std::make_unique<fb::NodeHealthT>();
      health->missing_heartbeat_interval =
          static_cast<int32_t>(h.integer("missing_heartbeat_interval", 0, INT32_MAX));
      health->check_agreement_status =
          static_cast<int32_t>(h.integer("check_agreement_status", 0, INT32_MAX));
      h.finish();
      ps->node_health = std::move(health);
    }
    q.ignore("dataVerification");
    p.services.push_back(std::move(ps));
  });
  r.objects("userInput", [&](object_reader& q, size_t) {
    auto ui = std::make_unique<fb::ServiceUserInputT>();
    ui->service_org = q.str("serviceOrgid", true);
    ui->service_url = q.str("serviceUrl", true);
    ui->service_arch = q.str("serviceArch", false);
    ui->service_version_range = q.str("serviceVersionRange", false);
    q.objects("inputs", [&](object_reader& in, size_t) {
      auto v = std::make_unique<fb::UserInputValueT>();
      v->name = in.str("name", true);
      const json* val = in.find("value");
      if (!val) in.missing("value");
      v->value = (val->is_object() || val->is_array()) ? val->dump() : scalar_text(*val);
      ui->inputs.push_back(std::move(v));
    });
    p.user_inputs.push_back(std::move(ui));
  });
  if (const json* up = r.find("upgradePolicy")) {
    // Horizon-MQ extension: how agbots roll out a new service version across nodes.
    object_reader u(*up, "upgradePolicy", source, out.warnings);
    auto pol = std::make_unique<fb::UpgradePolicyT>();
    pol->max_in_flight = static_cast<uint32_t>(u.integer("max_in_flight", 0, UINT32_MAX));
    pol->batch_pause_s = static_cast<uint32_t>(u.integer("batch_pause_s", 0, UINT32_MAX));
    pol->max_failures = static_cast<uint32_t>(u.integer("max_failures", 0, UINT32_MAX));
    u.finish();
    p.upgrade_policy = std::move(pol);
  }
  for (auto k : {"agreementProtocols", "secretBinding", "owner", "lastUpdated", "clusterNamespace"})
    r.ignore(k);
  r.finish();
  return out;
}

template <typename T, typename F>
result<T> guarded(F&& f) {
  try {
    return f();
  } catch (const parse_failure& e) {
    return core::error{make_error_code(e.code), e.detail};
  } catch (const json::exception& e) {
    return core::error{make_error_code(horizon_errc::invalid_field), e.what()};
  }
}

}  // namespace

const std::error_category& horizon_category() {
  static const horizon_category_impl c;
  return c;
}
std::error_code make_error_code(horizon_errc e) {
  return {static_cast<int>(e), horizon_category()};
}

std::optional<std::string> process_env(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

result<std::string> substitute_env(std::string_view text, std::string_view source,
                                   const env_lookup& env) {
  auto is_start = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; };
  auto is_name = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  std::string out;
  out.reserve(text.size());
  size_t line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n') ++line;
    if (c != '$' || i + 1 >= text.size()) {
      out.push_back(c);
      continue;
    }
    std::string_view name;
    size_t next = i;
    if (text[i + 1] == '{') {
      size_t close = text.find('}', i + 2);
      if (close == std::string_view::npos) {
        out.push_back(c);
        continue;
      }
      name = text.substr(i + 2, close - i - 2);
      bool valid = !name.empty() && is_start(name[0]);
      for (char n : name) valid = valid && is_name(n);
      if (!valid) {
        out.push_back(c);
        continue;
      }
      next = close;
    } else if (is_start(text[i + 1])) {
      size_t j = i + 1;
      while (j < text.size() && is_name(text[j])) ++j;
      name = text.substr(i + 1, j - i - 1);
      next = j - 1;
    } else {
      out.push_back(c);
      continue;
    }
    auto v = env(name);
    if (!v) {
      return core::error{make_error_code(horizon_errc::unset_variable),
                         std::string(source) + ": environment variable '" + std::string(name) +
                             "' is not set (line " + std::to_string(line) + ")"};
    }
    out += *v;
    i = next;
  }
  return out;
}

result<horizon_service> parse_service(std::string_view text, std::string_view source,
                                      const env_lookup& env) {
  auto sub = substitute_env(text, source, env);
  if (!sub) return sub.err();
  return guarded<horizon_service>(
      [&] { return parse_service_json(parse_json_text(*sub, source), source); });
}

result<horizon_pattern> parse_pattern(std::string_view text, std::string_view source,
                                      const env_lookup& env) {
  auto sub = substitute_env(text, source, env);
  if (!sub) return sub.err();
  return guarded<horizon_pattern>(
      [&] { return parse_pattern_json(parse_json_text(*sub, source), source); });
}

result<std::string> read_text_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    return core::error{make_error_code(horizon_errc::io_error),
                       p.string() + ": cannot open: " + std::generic_category().message(errno)};
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad())
    return core::error{make_error_code(horizon_errc::io_error), p.string() + ": read failed"};
  return ss.str();
}

std::string_view sharing_name(fb::Sharing s) {
  switch (s) {
    case fb::Sharing::exclusive:
      return "exclusive";
    case fb::Sharing::singleton:
      return "singleton";
    case fb::Sharing::multiple:
      return "multiple";
    default:
      return "";
  }
}

image_ref split_image_digest(std::string_view image) {
  auto at = image.find('@');
  if (at == std::string_view::npos) return {std::string(image), {}};
  return {std::string(image.substr(0, at)), std::string(image.substr(at + 1))};
}

nlohmann::json deployment_to_json(const fb::DeploymentT& d) {
  json services = json::object();
  for (const auto& c : d.containers) {
    if (!c) continue;
    json o;
    o["image"] = c->image;
    if (!c->environment.empty()) o["environment"] = c->environment;
    if (!c->command.empty()) o["command"] = c->command;
    if (!c->entrypoint.empty()) o["entrypoint"] = c->entrypoint;
    if (!c->ports.empty()) {
      json ports = json::array();
      for (const auto& p : c->ports) {
        json po{{"HostPort", p->host_port}};
        if (!p->host_ip.empty()) po["HostIP"] = p->host_ip;
        ports.push_back(po);
      }
      o["ports"] = ports;
    }
    if (!c->binds.empty()) o["binds"] = c->binds;
    if (c->privileged) o["privileged"] = true;
    if (!c->devices.empty()) o["devices"] = c->devices;
    if (!c->cap_add.empty()) o["cap_add"] = c->cap_add;
    if (c->max_memory_mb) o["max_memory_mb"] = c->max_memory_mb;
    if (c->max_cpus != 0) o["max_cpus"] = c->max_cpus;
    if (!c->network.empty()) o["network"] = c->network;
    services[c->name] = o;
  }
  return json{{"services", services}};
}

nlohmann::json service_to_json(const fb::ServiceT& s, const fb::DeploymentT* deployment) {
  json j;
  j["org"] = s.org;
  j["label"] = s.label;
  j["description"] = s.description;
  j["public"] = s.public_;
  j["url"] = s.url;
  j["version"] = s.version;
  j["arch"] = s.arch;
  j["sharable"] = std::string(sharing_name(s.sharable));
  json req = json::array();
  for (const auto& r : s.required_services) {
    req.push_back(
        {{"url", r->url}, {"org", r->org}, {"versionRange", r->version_range}, {"arch", r->arch}});
  }
  j["requiredServices"] = req;
  json inputs = json::array();
  for (const auto& u : s.user_inputs) {
    inputs.push_back({{"name", u->name},
                      {"label", u->label},
                      {"type", u->type},
                      {"defaultValue", u->default_value}});
  }
  j["userInput"] = inputs;
  j["deployment"] = deployment ? deployment_to_json(*deployment) : json::object();
  return j;
}

nlohmann::json pattern_to_json(const fb::PatternT& p) {
  json j;
  j["org"] = p.org;
  j["name"] = p.name;
  j["label"] = p.label;
  j["description"] = p.description;
  j["public"] = p.public_;
  json services = json::array();
  for (const auto& s : p.services) {
    json o{{"serviceUrl", s->service_url},
           {"serviceOrgid", s->service_org},
           {"serviceArch", s->service_arch},
           {"agreementLess", s->agreement_less}};
    json versions = json::array();
    for (const auto& v : s->service_versions) {
      json vo{{"version", v->version}};
      if (v->priority) {
        vo["priority"] = {{"priority_value", v->priority->priority_value},
                          {"retries", v->priority->retries},
                          {"retry_durations", v->priority->retry_durations},
                          {"verified_durations", v->priority->verified_durations}};
      }
      versions.push_back(vo);
    }
    o["serviceVersions"] = versions;
    if (s->node_health) {
      o["nodeHealth"] = {{"missing_heartbeat_interval", s->node_health->missing_heartbeat_interval},
                         {"check_agreement_status", s->node_health->check_agreement_status}};
    }
    services.push_back(o);
  }
  j["services"] = services;
  json inputs = json::array();
  for (const auto& u : p.user_inputs) {
    json vals = json::array();
    for (const auto& v : u->inputs) vals.push_back({{"name", v->name}, {"value", v->value}});
    inputs.push_back({{"serviceOrgid", u->service_org},
                      {"serviceUrl", u->service_url},
                      {"serviceArch", u->service_arch},
                      {"serviceVersionRange", u->service_version_range},
                      {"inputs", vals}});
  }
  j["userInput"] = inputs;
  if (p.upgrade_policy) {
    j["upgradePolicy"] = {{"max_in_flight", p.upgrade_policy->max_in_flight},
                          {"batch_pause_s", p.upgrade_policy->batch_pause_s},
                          {"max_failures", p.upgrade_policy->max_failures}};
  }
  return j;
}

std::vector<uint8_t> serialize_deployment(const fb::DeploymentT& d) {
  flatbuffers::FlatBufferBuilder b(1024);
  b.Finish(fb::Deployment::Pack(b, &d));
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

result<fb::DeploymentT> parse_deployment_buffer(std::span<const uint8_t> bytes) {
  flatbuffers::Verifier v(bytes.data(), bytes.size());
  if (bytes.empty() || !v.VerifyBuffer<fb::Deployment>(nullptr)) {
    return core::error{make_error_code(horizon_errc::invalid_field),
                       "deployment: not a valid Deployment buffer"};
  }
  fb::DeploymentT d;
  flatbuffers::GetRoot<fb::Deployment>(bytes.data())->UnPackTo(&d);
  return d;
}

}  // namespace hmq::cli
