#include "agent/docker/client.h"

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "agent/docker/http.h"
#include "core/common/backoff.h"
#include "core/log/log.h"

namespace hmq::agent::docker {
namespace {

std::shared_ptr<spdlog::logger> lg() {
  static auto l = core::log::get("docker");
  return l;
}

core::error err(errc c, std::string detail) {
  return core::error{make_error_code(c), std::move(detail)};
}

// Typed reads that treat a wrong type as absent: Docker's JSON is input.
std::string str_at(const json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}
const json* obj_at(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? &*it : nullptr;
}
const json* arr_at(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? &*it : nullptr;
}
int64_t int_at(const json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}
bool bool_at(const json& j, const char* key) {
  if (!j.is_object()) return false;
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}
std::map<std::string, std::string> string_map(const json* j) {
  std::map<std::string, std::string> m;
  if (!j || !j->is_object()) return m;
  for (auto it = j->begin(); it != j->end(); ++it)
    if (it->is_string()) m[it.key()] = it->get<std::string>();
  return m;
}
std::vector<std::string> string_list(const json* j) {
  std::vector<std::string> v;
  if (!j || !j->is_array()) return v;
  for (const auto& e : *j)
    if (e.is_string()) v.push_back(e.get<std::string>());
  return v;
}

json parse(std::string_view s) {
  return json::parse(s.begin(), s.end(), nullptr, false);
}

// Docker's error bodies are {"message": "..."}; fall back to the raw text, bounded.
std::string api_message(const std::string& body) {
  auto j = parse(body);
  std::string m = str_at(j, "message");
  if (m.empty()) m = body.substr(0, 300);
  while (!m.empty() && (m.back() == '\n' || m.back() == '\r')) m.pop_back();
  return m;
}

bool looks_like_auth_failure(std::string_view m) {
  std::string l(m);
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* k : {"unauthorized", "authentication required", "no basic auth credentials",
                        "denied", "incorrect username or password", "401"})
    if (l.find(k) != std::string::npos) return true;
  return false;
}

std::string url_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

std::string label_filter_query(const std::string& label) {
  json f = {{"label", json::array({label})}};
  return url_escape(f.dump());
}

const std::string& b64url_alphabet() {
  static const std::string a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  return a;
}

}  // namespace

std::string encode_registry_auth(const registry_auth& a) {
  std::string in =
      json{{"username", a.username}, {"password", a.password}, {"serveraddress", a.server}}.dump();
  const auto& al = b64url_alphabet();
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += al[(v >> 18) & 63];
    out += al[(v >> 12) & 63];
    out += al[(v >> 6) & 63];
    out += al[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (i + 1 < in.size()) v |= uint8_t(in[i + 1]) << 8;
    out += al[(v >> 18) & 63];
    out += al[(v >> 12) & 63];
    if (i + 1 < in.size()) out += al[(v >> 6) & 63];
  }
  return out;
}

result<image_ref> parse_image_ref(std::string_view ref) {
  if (ref.empty() || ref.size() > 512) return err(errc::bad_response, "bad image reference length");
  for (char c : ref)
    if (c <= ' ' || c == 0x7f)
      return err(errc::bad_response, "image reference has a control or space character");
  image_ref r;
  std::string rest(ref);
  if (auto at = rest.find('@'); at != std::string::npos) {
    r.digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
  }
  // A tag is a ':' after the last '/'.
  auto slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    r.tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return err(errc::bad_response, "image reference has no name");
  if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
  r.repository = rest;
  // The first component is a registry when it looks like a host (Docker's rule).
  if (auto first = rest.find('/'); first != std::string::npos) {
    std::string host = rest.substr(0, first);
    if (host.find('.') != std::string::npos || host.find(':') != std::string::npos ||
        host == "localhost")
      r.registry = host;
  }
  return r;
}

client::client(core::loop::event_loop& loop, client_options o)
    : loop_(loop),
      session_(std::make_shared<const client_options>(std::move(o)),
               std::make_shared<http::stop_source>()) {}

client::~client() {
  *alive_ = false;
  stop();
}

void client::stop() {
  session_.stop_source()->stop();
}

void client::spawn(asio::awaitable<void> a) {
  asio::co_spawn(loop_.io(), std::move(a), asio::detached);
}

namespace {

http::call_options call_options(const session& s, uint64_t max_body) {
  http::call_options o;
  o.timeout = std::chrono::seconds(s.options().timeout_s);
  o.lim.max_body = max_body;
  return o;
}

http::request make_request(const session& s, const std::string& method, const std::string& path,
                           const std::string& body, const std::vector<std::string>& headers = {}) {
  http::request rq;
  rq.method = method;
  rq.target = "/" + s.options().api_version + path;
  rq.headers = headers;
  rq.body = body;
  rq.content_type = "application/json";
  return rq;
}

asio::awaitable<result<http::buffered_response>> request(const session& s, std::string method,
                                                         std::string path, std::string body = {}) {
  return http::fetch(s.socket_path(), make_request(s, method, path, body),
                     call_options(s, s.options().max_body_bytes), s.stop_source());
}

}  // namespace

namespace {
// Maps an HTTP error answer to an error with the status and Docker's message.
core::error status_error(const std::string& what, long status, const std::string& body) {
  errc c = status == 404 ? errc::not_found : status == 409 ? errc::conflict : errc::api;
  return err(c, what + ": HTTP " + std::to_string(status) + ": " + api_message(body));
}
}  // namespace

api::call<void> api::ping(session s) {
  auto r = co_await request(s, "GET", "/_ping", "");
  if (!r) co_return r.err();
  if (r->status != 200) co_return status_error("ping", r->status, r->body);
  co_return core::ok();
}

namespace {
// One line of a pull's progress stream: the error it reports, if any.
std::optional<core::error> pull_line_error(std::string_view line) {
  if (line.empty()) return std::nullopt;
  auto j = parse(line);
  if (!j.is_object()) return std::nullopt;  // progress noise we cannot read is not an error
  std::string e = str_at(j, "error");
  if (e.empty()) {
    if (const auto* d = obj_at(j, "errorDetail")) e = str_at(*d, "message");
  }
  if (e.empty()) return std::nullopt;
  if (e.size() > 500) e.resize(500);
  return err(looks_like_auth_failure(e) ? errc::auth_failed : errc::pull_failed, e);
}

// A progress line is a few hundred bytes; a line without end is a broken stream.
constexpr size_t max_stream_line = 1 << 20;
}  // namespace

result<void> client::parse_pull_stream(std::string_view body) {
  size_t pos = 0;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    std::string_view line =
        body.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? body.size() : nl + 1;
    if (auto e = pull_line_error(line)) return *e;
  }
  return core::ok();
}

api::call<void> api::pull(session s, image_ref ref, std::optional<registry_auth> auth) {
  std::string path = "/images/create?fromImage=" + url_escape(ref.repository);
  if (!ref.digest.empty())
    path += "&tag=" + url_escape(ref.digest);
  else
    path += "&tag=" + url_escape(ref.tag);
  std::vector<std::string> headers;
  if (auth) headers.push_back("X-Registry-Auth: " + encode_registry_auth(*auth));
  std::string what = "pull " + ref.repository + ":" + (ref.digest.empty() ? ref.tag : ref.digest);
  // The progress stream is read line by line as it comes (a large image's stream has no useful
  // size bound, and nothing of it needs keeping); an error answer's body is kept, bounded. The
  // sink's state is shared: the sink is copied into the transport's coroutine frame.
  struct progress {
    std::string error_body;
    std::optional<core::error> stream_error;
    http::line_splitter lines{max_stream_line};
    bool line_too_long = false;
  };
  auto pr = std::make_shared<progress>();
  // Named, not temporaries of the co_await expression (GCC 12, see follow_events).
  http::response_parser::body_sink sink = [pr](const http::response& head, std::string_view data) {
    if (head.status != 200) {
      size_t room = pr->error_body.size() < (64u << 10) ? (64u << 10) - pr->error_body.size() : 0;
      pr->error_body.append(data.substr(0, room));
      return true;
    }
    if (!pr->lines.feed(data, [&](std::string_view line) {
          if (!pr->stream_error) pr->stream_error = pull_line_error(line);
        })) {
      pr->line_too_long = true;
      return false;
    }
    return true;
  };
  auto rq = make_request(s, "POST", path, "", headers);
  auto opts = call_options(s, UINT64_MAX);
  auto h = co_await http::perform(s.socket_path(), rq, opts, sink, s.stop_source());
  if (pr->line_too_long)
    co_return err(errc::too_large,
                  what + ": progress line over " + std::to_string(max_stream_line) + " bytes");
  if (!h) co_return h.err();
  if (h->status != 200) {
    std::string m = api_message(pr->error_body);
    errc c = looks_like_auth_failure(m) ? errc::auth_failed
             : h->status == 404         ? errc::not_found
                                        : errc::pull_failed;
    co_return err(c, what + ": HTTP " + std::to_string(h->status) + ": " + m);
  }
  if (!pr->stream_error) pr->stream_error = pull_line_error(pr->lines.rest());
  if (pr->stream_error)
    co_return core::error{pr->stream_error->code, what + ": " + pr->stream_error->detail};
  co_return core::ok();
}

result<image_info> client::parse_image(std::string_view body) {
  auto j = parse(body);
  if (!j.is_object()) return err(errc::bad_response, "image inspect: not a JSON object");
  image_info i;
  i.id = str_at(j, "Id");
  if (i.id.empty()) return err(errc::bad_response, "image inspect: no Id");
  i.repo_digests = string_list(arr_at(j, "RepoDigests"));
  return i;
}

api::call<image_info> api::inspect_image(session s, std::string name) {
  auto r = co_await request(s, "GET", "/images/" + name + "/json", "");
  if (!r) co_return r.err();
  if (r->status != 200) co_return status_error("image inspect " + name, r->status, r->body);
  co_return client::parse_image(r->body);
}

api::call<void> api::remove_image(session s, std::string name) {
  auto r = co_await request(s, "DELETE", "/images/" + name, "");
  if (!r) co_return r.err();
  if (r->status == 200 || r->status == 404) co_return core::ok();
  co_return status_error("image remove " + name, r->status, r->body);
}

api::call<std::string> api::create_network(session s, std::string name,
                                           std::map<std::string, std::string> labels) {
  json b = {{"Name", name}, {"Driver", "bridge"}, {"CheckDuplicate", true}, {"Labels", labels}};
  auto r = co_await request(s, "POST", "/networks/create", b.dump());
  if (!r) co_return r.err();
  if (r->status == 409) {
    auto n = co_await inspect_network(s, name);
    if (!n) co_return n.err();
    co_return n->id;
  }
  if (r->status != 201 && r->status != 200)
    co_return status_error("network create " + name, r->status, r->body);
  std::string id = str_at(parse(r->body), "Id");
  if (id.empty()) co_return err(errc::bad_response, "network create " + name + ": no Id");
  co_return id;
}

api::call<network_summary> api::inspect_network(session s, std::string name) {
  auto r = co_await request(s, "GET", "/networks/" + url_escape(name), "");
  if (!r) co_return r.err();
  if (r->status != 200) co_return status_error("network inspect " + name, r->status, r->body);
  auto j = parse(r->body);
  network_summary n{str_at(j, "Id"), str_at(j, "Name"), string_map(obj_at(j, "Labels"))};
  if (n.id.empty()) co_return err(errc::bad_response, "network inspect " + name + ": no Id");
  co_return n;
}

api::call<void> api::remove_network(session s, std::string name) {
  auto r = co_await request(s, "DELETE", "/networks/" + url_escape(name), "");
  if (!r) co_return r.err();
  if (r->status == 204 || r->status == 200 || r->status == 404) co_return core::ok();
  co_return status_error("network remove " + name, r->status, r->body);
}

api::call<std::vector<network_summary>> api::list_networks(session s, std::string label_filter) {
  auto r = co_await request(s, "GET", "/networks?filters=" + label_filter_query(label_filter), "");
  if (!r) co_return r.err();
  if (r->status != 200) co_return status_error("network list", r->status, r->body);
  co_return client::parse_network_list(r->body);
}

result<std::vector<network_summary>> client::parse_network_list(std::string_view body) {
  auto j = parse(body);
  if (!j.is_array()) return err(errc::bad_response, "network list: not a JSON array");
  std::vector<network_summary> out;
  for (const auto& n : j) {
    network_summary s{str_at(n, "Id"), str_at(n, "Name"), string_map(obj_at(n, "Labels"))};
    if (!s.id.empty()) out.push_back(std::move(s));
  }
  return out;
}

api::call<void> api::connect_network(session s, std::string network, std::string container,
                                     std::vector<std::string> aliases) {
  json b = {{"Container", container}, {"EndpointConfig", {{"Aliases", aliases}}}};
  auto r = co_await request(s, "POST", "/networks/" + url_escape(network) + "/connect", b.dump());
  if (!r) co_return r.err();
  if (r->status == 200) co_return core::ok();
  // Already attached (a resumed deploy) is what we wanted.
  if (r->status == 403 && api_message(r->body).find("already exists") != std::string::npos)
    co_return core::ok();
  co_return status_error("network connect " + network + " " + container, r->status, r->body);
}

json client::container_create_body(const container_spec& s) {
  json host = json::object();
  json exposed = json::object();
  json bindings = json::object();
  for (const auto& p : s.ports) {
    exposed[p.container_port] = json::object();
    json b = json::object();
    if (!p.host_ip.empty()) b["HostIp"] = p.host_ip;
    if (!p.host_port.empty()) b["HostPort"] = p.host_port;
    bindings[p.container_port].push_back(b);
  }
  if (!bindings.empty()) host["PortBindings"] = bindings;
  if (!s.binds.empty()) host["Binds"] = s.binds;
  if (s.privileged) host["Privileged"] = true;
  if (!s.cap_add.empty()) host["CapAdd"] = s.cap_add;
  if (s.memory_bytes) host["Memory"] = s.memory_bytes;
  if (s.nano_cpus) host["NanoCpus"] = s.nano_cpus;
  if (!s.devices.empty()) {
    json devs = json::array();
    for (const auto& d : s.devices) {
      std::string host_path = d, cont_path = d, perms = "rwm";
      auto c1 = d.find(':');
      if (c1 != std::string::npos) {
        host_path = d.substr(0, c1);
        std::string rest = d.substr(c1 + 1);
        auto c2 = rest.find(':');
        cont_path = c2 == std::string::npos ? rest : rest.substr(0, c2);
        if (c2 != std::string::npos) perms = rest.substr(c2 + 1);
      }
      devs.push_back({{"PathOnHost", host_path},
                      {"PathInContainer", cont_path},
                      {"CgroupPermissions", perms}});
    }
    host["Devices"] = devs;
  }
  json b = {{"Image", s.image}, {"Env", s.env}, {"Labels", s.labels}, {"HostConfig", host}};
  if (!s.cmd.empty()) b["Cmd"] = s.cmd;
  if (!s.entrypoint.empty()) b["Entrypoint"] = s.entrypoint;
  if (!exposed.empty()) b["ExposedPorts"] = exposed;
  if (s.host_network) {
    b["HostConfig"]["NetworkMode"] = "host";
  } else if (!s.networks.empty()) {
    b["HostConfig"]["NetworkMode"] = s.networks.front().network;
    b["NetworkingConfig"] = {
        {"EndpointsConfig",
         {{s.networks.front().network, {{"Aliases", s.networks.front().aliases}}}}}};
  }
  return b;
}

api::call<std::string> api::create_container(session s, container_spec spec) {
  auto r = co_await request(s, "POST", "/containers/create?name=" + url_escape(spec.name),
                            client::container_create_body(spec).dump());
  if (!r) co_return r.err();
  if (r->status != 201 && r->status != 200)
    co_return status_error("container create " + spec.name, r->status, r->body);
  std::string id = str_at(parse(r->body), "Id");
  if (id.empty()) co_return err(errc::bad_response, "container create " + spec.name + ": no Id");
  for (size_t i = 1; i < spec.networks.size() && !spec.host_network; ++i) {
    auto c = co_await connect_network(s, spec.networks[i].network, id, spec.networks[i].aliases);
    if (!c) co_return c.err();
  }
  co_return id;
}

api::call<void> api::start_container(session s, std::string id) {
  auto r = co_await request(s, "POST", "/containers/" + url_escape(id) + "/start", "");
  if (!r) co_return r.err();
  if (r->status == 204 || r->status == 304) co_return core::ok();
  co_return status_error("container start " + id, r->status, r->body);
}

api::call<void> api::stop_container(session s, std::string id, int timeout_s) {
  auto r = co_await request(
      s, "POST", "/containers/" + url_escape(id) + "/stop?t=" + std::to_string(timeout_s), "");
  if (!r) co_return r.err();
  if (r->status == 204 || r->status == 304 || r->status == 404) co_return core::ok();
  co_return status_error("container stop " + id, r->status, r->body);
}

api::call<void> api::remove_container(session s, std::string id, bool force) {
  auto r = co_await request(
      s, "DELETE", "/containers/" + url_escape(id) + "?v=1" + (force ? "&force=1" : ""), "");
  if (!r) co_return r.err();
  if (r->status == 204 || r->status == 404) co_return core::ok();
  // "removal already in progress" means it is going away.
  if (r->status == 409 && api_message(r->body).find("already in progress") != std::string::npos)
    co_return core::ok();
  co_return status_error("container remove " + id, r->status, r->body);
}

result<container_info> client::parse_container(std::string_view body) {
  auto j = parse(body);
  if (!j.is_object()) return err(errc::bad_response, "container inspect: not a JSON object");
  container_info c;
  c.id = str_at(j, "Id");
  if (c.id.empty()) return err(errc::bad_response, "container inspect: no Id");
  c.name = str_at(j, "Name");
  if (!c.name.empty() && c.name.front() == '/') c.name.erase(0, 1);
  c.image = str_at(j, "Image");
  if (const auto* st = obj_at(j, "State")) {
    c.state = str_at(*st, "Status");
    c.running = bool_at(*st, "Running");
    c.exit_code = static_cast<int>(int_at(*st, "ExitCode"));
    c.oom_killed = bool_at(*st, "OOMKilled");
    c.started_at = str_at(*st, "StartedAt");
  }
  if (const auto* cfg = obj_at(j, "Config")) {
    c.labels = string_map(obj_at(*cfg, "Labels"));
    c.env = string_list(arr_at(*cfg, "Env"));
  }
  if (const auto* ns = obj_at(j, "NetworkSettings"))
    if (const auto* nets = obj_at(*ns, "Networks"))
      for (auto it = nets->begin(); it != nets->end(); ++it)
        c.networks[it.key()] = string_list(arr_at(*it, "Aliases"));
  return c;
}

api::call<container_info> api::inspect_container(session s, std::string id) {
  auto r = co_await request(s, "GET", "/containers/" + url_escape(id) + "/json", "");
  if (!r) co_return r.err();
  if (r->status != 200) co_return status_error("container inspect " + id, r->status, r->body);
  co_return client::parse_container(r->body);
}

api::call<std::vector<container_summary>> api::list_containers(session s,
                                                               std::string label_filter) {
  auto r = co_await request(
      s, "GET", "/containers/json?all=1&filters=" + label_filter_query(label_filter), "");
  if (!r) co_return r.err();
  if (r->status != 200) co_return status_error("container list", r->status, r->body);
  co_return client::parse_container_list(r->body);
}

result<std::vector<container_summary>> client::parse_container_list(std::string_view body) {
  auto j = parse(body);
  if (!j.is_array()) return err(errc::bad_response, "container list: not a JSON array");
  std::vector<container_summary> out;
  for (const auto& c : j) {
    container_summary s;
    s.id = str_at(c, "Id");
    s.state = str_at(c, "State");
    auto names = string_list(arr_at(c, "Names"));
    if (!names.empty()) s.name = names.front().substr(names.front().starts_with("/") ? 1 : 0);
    s.labels = string_map(obj_at(c, "Labels"));
    if (!s.id.empty()) out.push_back(std::move(s));
  }
  return out;
}

std::optional<event> client::parse_event(std::string_view line) {
  auto j = parse(line);
  if (!j.is_object()) return std::nullopt;
  if (str_at(j, "Type") != "container") return std::nullopt;
  event e;
  e.action = str_at(j, "Action");
  const auto* actor = obj_at(j, "Actor");
  if (!actor) return std::nullopt;
  e.id = str_at(*actor, "ID");
  e.labels = string_map(obj_at(*actor, "Attributes"));
  if (auto it = e.labels.find("name"); it != e.labels.end()) e.name = it->second;
  if (auto it = e.labels.find("exitCode"); it != e.labels.end()) {
    try {
      e.exit_code = std::stoi(it->second);
    } catch (const std::exception&) {
      e.exit_code = -1;
    }
  }
  if (e.id.empty() || e.action.empty()) return std::nullopt;
  return e;
}

api::call<void> api::sleep(session s, std::chrono::milliseconds d) {
  return http::sleep(d, s.stop_source());
}

namespace {

// The events stream, for as long as the client runs: reads /events line by line and posts each
// container event to the loop; when the stream breaks, reports it and reconnects after the bus's
// jittered back-off (reset once a stream was up).
asio::awaitable<void> follow_events(session s, std::shared_ptr<bool> alive,
                                    std::function<void(event)> on_event,
                                    std::function<void()> on_lost) {
  const auto ex = co_await asio::this_coro::executor;
  json f = {{"type", json::array({"container"})}, {"event", json::array({"die", "oom", "start"})}};
  auto rq = make_request(s, "GET", "/events?filters=" + url_escape(f.dump()), "");
  auto o = call_options(s, UINT64_MAX);
  o.timeout = std::chrono::milliseconds(0);  // the stream has no end; stop() cancels it
  core::backoff retry(s.options().events_retry_min, s.options().events_retry_max);
  while (!s.stopped()) {
    // One event is a few hundred bytes (its labels included); a line without end is a broken
    // stream.
    struct stream {
      http::line_splitter lines{max_stream_line};
      std::string why;
      bool up = false;
    };
    auto st = std::make_shared<stream>();
    // Named, not a temporary of the co_await expression: GCC 12 mishandles non-trivial
    // temporaries that live across a coroutine's suspension.
    http::response_parser::body_sink sink = [st, ex, alive, on_event](const http::response& head,
                                                                      std::string_view data) {
      if (head.status != 200) {
        st->why = "HTTP " + std::to_string(head.status);
        return false;
      }
      st->up = true;
      bool fits = st->lines.feed(data, [&](std::string_view line) {
        if (auto e = client::parse_event(line))
          asio::post(ex, [alive, on_event, e = std::move(*e)]() mutable {
            if (*alive) on_event(std::move(e));
          });
      });
      if (!fits) st->why = "event line over " + std::to_string(max_stream_line) + " bytes";
      return fits;
    };
    auto h = co_await http::perform(s.socket_path(), rq, o, sink, s.stop_source());
    if (s.stopped()) break;
    if (st->up) retry.reset();
    if (st->why.empty())
      st->why = h ? "HTTP " + std::to_string(h->status) + ", stream ended" : h.err().message();
    auto wait = retry.next();
    lg()->warn("docker events stream via {} ended ({}); reconnecting in {} ms", s.socket_path(),
               st->why, wait.count());
    asio::post(ex, [alive, on_lost] {
      if (*alive && on_lost) on_lost();
    });
    auto slept = co_await http::sleep(wait, s.stop_source());
    if (!slept) break;
  }
}

}  // namespace

void client::watch_events(std::function<void(event)> on_event, std::function<void()> on_lost) {
  if (watching_) return;
  watching_ = true;
  spawn(follow_events(session_, alive_, std::move(on_event), std::move(on_lost)));
}

}  // namespace hmq::agent::docker
