#include "cli/horizon_json.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "core/wire/user_input.h"

namespace hmq::cli {

namespace {

using json = nlohmann::json;

class horizon_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "horizon"; }
  std::string message(int c) const override {
    // Indexed by horizon_errc (its values run from 0 without gaps).
    static constexpr const char* messages[] = {"ok",
                                               "malformed JSON",
                                               "invalid field",
                                               "missing required field",
                                               "environment variable not set",
                                               "cannot read file"};
    if (c < 0 || static_cast<size_t>(c) >= std::size(messages)) return "unknown";
    return messages[c];
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

  // Each object of array `key` read by `fill` into a new T, appended to `out`.
  template <typename T, typename F>
  void append_objects(std::string_view key, std::vector<std::unique_ptr<T>>& out, F&& fill) {
    objects(key, [&](object_reader& r, size_t) {
      auto item = std::make_unique<T>();
      fill(r, *item);
      out.push_back(std::move(item));
    });
  }

  // The object `key`, when present, read by `fill` into a new T held by `out`.
  template <typename T, typename F>
  void optional_object(std::string_view key, std::unique_ptr<T>& out, F&& fill) {
    const json* v = find(key);
    if (!v) return;
    object_reader r(*v, field(key), source_, warnings_);
    auto item = std::make_unique<T>();
    fill(r, *item);
    r.finish();
    out = std::move(item);
  }

  // `key` must be present and, when an array, not empty.
  void require_nonempty(std::string_view key) {
    const json* v = find(key);
    if (!v || (v->is_array() && v->empty())) missing(key);
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

void check_typed_value(object_reader& r, std::string_view key, const std::string& type,
                       const std::string& value) {
  if (value.empty()) return;
  if (auto why = core::wire::typed_value_error(type, value)) r.invalid(key, *why);
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

// A service's requiredServices entry; `arch` is the service's own, the default.
void parse_service_ref(object_reader& q, fb::ServiceRefT& ref, const std::string& arch) {
  ref.url = q.str("url", false);
  if (ref.url.empty()) ref.url = q.str("serviceUrl", false);
  if (ref.url.empty()) q.missing("url");
  ref.org = q.str("org", true);
  // Horizon's newer files use versionRange; "version" is the older spelling of the same thing.
  ref.version_range = q.str("versionRange", false);
  std::string version = q.str("version", false);
  if (ref.version_range.empty()) ref.version_range = version;
  if (ref.version_range.empty()) q.missing("versionRange");
  ref.arch = q.str("arch", false);
  if (ref.arch.empty()) ref.arch = arch;
}

// A service's userInput entry: the input it declares, its type and default.
void parse_user_input_def(object_reader& q, fb::UserInputDefT& in) {
  in.name = q.str("name", true);
  in.label = q.str("label", false);
  in.type = q.str("type", true);
  if (!core::wire::known_input_type(in.type)) {
    q.invalid("type", "must be one of string, int, float, boolean, list of strings (got '" +
                          in.type + "')");
  }
  if (const json* dv = q.find("defaultValue")) {
    in.default_value = (dv->is_object() || dv->is_array()) ? dv->dump() : scalar_text(*dv);
  }
  // Horizon: an empty default means the node must supply a value.
  in.has_default = !in.default_value.empty();
  check_typed_value(q, "defaultValue", in.type, in.default_value);
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
  r.append_objects(
      "requiredServices", s.required_services,
      [&](object_reader& q, fb::ServiceRefT& ref) { parse_service_ref(q, ref, s.arch); });
  r.append_objects("userInput", s.user_inputs, parse_user_input_def);
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

int32_t int32_field(object_reader& r, std::string_view key) {
  return static_cast<int32_t>(r.integer(key, 0, INT32_MAX));
}
uint32_t uint32_field(object_reader& r, std::string_view key) {
  return static_cast<uint32_t>(r.integer(key, 0, UINT32_MAX));
}

void parse_service_version(object_reader& v, fb::ServiceVersionT& sv) {
  sv.version = v.str("version", true);
  v.optional_object("priority", sv.priority, [](object_reader& prr, fb::PriorityT& prio) {
    prio.priority_value = int32_field(prr, "priority_value");
    prio.retries = int32_field(prr, "retries");
    prio.retry_durations = int32_field(prr, "retry_durations");
    prio.verified_durations = int32_field(prr, "verified_durations");
  });
  v.ignore("upgradePolicy");
}

// A pattern's services entry: the service, its versions by priority, the node health policy.
void parse_pattern_service(object_reader& q, fb::PatternServiceT& ps) {
  ps.service_url = q.str("serviceUrl", true);
  ps.service_org = q.str("serviceOrgid", true);
  ps.service_arch = q.str("serviceArch", true);
  ps.agreement_less = q.boolean("agreementLess");
  q.require_nonempty("serviceVersions");
  q.append_objects("serviceVersions", ps.service_versions, parse_service_version);
  q.optional_object("nodeHealth", ps.node_health, [](object_reader& h, fb::NodeHealthT& health) {
    health.missing_heartbeat_interval = int32_field(h, "missing_heartbeat_interval");
    health.check_agreement_status = int32_field(h, "check_agreement_status");
  });
  q.ignore("dataVerification");
}

// A pattern's (or node's) userInput entry: values for one service's inputs.
void parse_service_user_input(object_reader& q, fb::ServiceUserInputT& ui) {
  ui.service_org = q.str("serviceOrgid", true);
  ui.service_url = q.str("serviceUrl", true);
  ui.service_arch = q.str("serviceArch", false);
  ui.service_version_range = q.str("serviceVersionRange", false);
  q.append_objects("inputs", ui.inputs, [](object_reader& in, fb::UserInputValueT& v) {
    v.name = in.str("name", true);
    const json* val = in.find("value");
    if (!val) in.missing("value");
    v.value = (val->is_object() || val->is_array()) ? val->dump() : scalar_text(*val);
  });
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
  r.require_nonempty("services");
  r.append_objects("services", p.services, parse_pattern_service);
  r.append_objects("userInput", p.user_inputs, parse_service_user_input);
  // Horizon-MQ extension: how agbots roll out a new service version across nodes.
  r.optional_object("upgradePolicy", p.upgrade_policy,
                    [](object_reader& u, fb::UpgradePolicyT& pol) {
                      pol.max_in_flight = uint32_field(u, "max_in_flight");
                      pol.batch_pause_s = uint32_field(u, "batch_pause_s");
                      pol.max_failures = uint32_field(u, "max_failures");
                    });
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
  // The schema's names are Horizon's; "unspecified" (and any unknown value) shows as "".
  if (s == fb::Sharing::unspecified) return "";
  return fb::EnumNameSharing(s);
}

image_ref split_image_digest(std::string_view image) {
  auto at = image.find('@');
  if (at == std::string_view::npos) return {std::string(image), {}};
  return {std::string(image.substr(0, at)), std::string(image.substr(at + 1))};
}

}  // namespace hmq::cli
