#include "agent/docker/client.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>

#include "core/log/log.h"

namespace hmq::agent::docker {
namespace {

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "docker"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::ok: return "ok";
      case errc::transport: return "cannot talk to the Docker Engine";
      case errc::api: return "Docker Engine error";
      case errc::not_found: return "not found";
      case errc::conflict: return "conflict";
      case errc::auth_failed: return "registry authentication failed";
      case errc::pull_failed: return "image pull failed";
      case errc::bad_response: return "unexpected answer from the Docker Engine";
      case errc::too_large: return "answer from the Docker Engine too large";
      case errc::stopped: return "docker client stopped";
    }
    return "unknown";
  }
};

std::shared_ptr<spdlog::logger> lg() {
  static auto l = core::log::get("docker");
  return l;
}

core::error err(errc c, std::string detail) { return core::error{make_error_code(c), std::move(detail)}; }

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

json parse(std::string_view s) { return json::parse(s.begin(), s.end(), nullptr, false); }

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
  for (const char* k : {"unauthorized", "authentication required", "no basic auth credentials", "denied",
                        "incorrect username or password", "401"})
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

struct sink {
  std::string* body;
  size_t max;
  bool overflow = false;
};

size_t write_body(char* p, size_t size, size_t n, void* ud) {
  auto* s = static_cast<sink*>(ud);
  size_t len = size * n;
  if (s->body->size() + len > s->max) {
    s->overflow = true;
    return 0;  // aborts the transfer
  }
  s->body->append(p, len);
  return len;
}

void init_curl_once() {
  static const bool done = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)done;
}

const std::string& b64url_alphabet() {
  static const std::string a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  return a;
}

}  // namespace

const std::error_category& category() {
  static const category_impl c;
  return c;
}
std::error_code make_error_code(errc e) { return {static_cast<int>(e), category()}; }

std::string encode_registry_auth(const registry_auth& a) {
  std::string in = json{{"username", a.username}, {"password", a.password}, {"serveraddress", a.server}}.dump();
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
    if (c <= ' ' || c == 0x7f) return err(errc::bad_response, "image reference has a control or space character");
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
    if (host.find('.') != std::string::npos || host.find(':') != std::string::npos || host == "localhost")
      r.registry = host;
  }
  return r;
}

client::client(core::loop::scheduler& loop, client_options o) : loop_(loop), opts_(std::move(o)) {
  init_curl_once();
  size_t n = std::max<size_t>(1, opts_.workers);
  for (size_t i = 0; i < n; ++i) workers_.emplace_back([this] { worker(); });
}

client::~client() { stop(); }

void client::stop() {
  *alive_ = false;
  {
    std::lock_guard lk(mu_);
    if (stopping_ && workers_.empty() && !events_.joinable()) return;
    stopping_ = true;
    jobs_.clear();
  }
  cv_.notify_all();
  events_stop_ = true;
  {
    std::lock_guard lk(mu_);
    if (auto* m = static_cast<CURLM*>(events_multi_.load())) curl_multi_wakeup(m);
  }
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
  if (events_.joinable()) events_.join();
}

void client::enqueue(std::function<void()> job) {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void client::worker() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    try {
      job();
    } catch (const std::exception& e) {
      // A job must never take a worker down; the job's own callback is then never called.
      lg()->error("docker worker job threw: {}", e.what());
    }
  }
}

result<client::http_result> client::request(const std::string& method, const std::string& path,
                                            const std::string& body, const std::vector<std::string>& headers) {
  CURL* c = curl_easy_init();
  if (!c) return err(errc::transport, "curl_easy_init failed");
  http_result out;
  sink s{&out.body, opts_.max_body_bytes};
  std::string url = "http://localhost/" + opts_.api_version + path;
  curl_slist* hl = nullptr;
  for (const auto& h : headers) hl = curl_slist_append(hl, h.c_str());
  if (!body.empty() || method == "POST") hl = curl_slist_append(hl, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, opts_.socket_path.c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "POST") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  if (method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, opts_.timeout_s);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  if (s.overflow) return err(errc::too_large, method + " " + path + ": answer over " + std::to_string(s.max) + " bytes");
  if (rc != CURLE_OK)
    return err(errc::transport, method + " " + path + " via " + opts_.socket_path + ": " + curl_easy_strerror(rc));
  return out;
}

namespace {
// Maps an HTTP error answer to an error with the status and Docker's message.
core::error status_error(const std::string& what, long status, const std::string& body) {
  errc c = status == 404 ? errc::not_found : status == 409 ? errc::conflict : errc::api;
  return err(c, what + ": HTTP " + std::to_string(status) + ": " + api_message(body));
}
}  // namespace

result<void> client::ping() {
  auto r = request("GET", "/_ping", "");
  if (!r) return r.err();
  if (r->status != 200) return status_error("ping", r->status, r->body);
  return core::ok();
}

result<void> client::parse_pull_stream(std::string_view body) {
  size_t pos = 0;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    std::string_view line = body.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? body.size() : nl + 1;
    if (line.empty()) continue;
    auto j = parse(line);
    if (!j.is_object()) continue;  // progress noise we cannot read is not an error
    std::string e = str_at(j, "error");
    if (e.empty()) {
      if (const auto* d = obj_at(j, "errorDetail")) e = str_at(*d, "message");
    }
    if (e.empty()) continue;
    if (e.size() > 500) e.resize(500);
    return err(looks_like_auth_failure(e) ? errc::auth_failed : errc::pull_failed, e);
  }
  return core::ok();
}

result<void> client::pull(const image_ref& ref, const std::optional<registry_auth>& auth) {
  std::string path = "/images/create?fromImage=" + url_escape(ref.repository);
  if (!ref.digest.empty())
    path += "&tag=" + url_escape(ref.digest);
  else
    path += "&tag=" + url_escape(ref.tag);
  std::vector<std::string> headers;
  if (auth) headers.push_back("X-Registry-Auth: " + encode_registry_auth(*auth));
  auto r = request("POST", path, "", headers);
  if (!r) return r.err();
  std::string what = "pull " + ref.repository + ":" + (ref.digest.empty() ? ref.tag : ref.digest);
  if (r->status != 200) {
    std::string m = api_message(r->body);
    errc c = looks_like_auth_failure(m) ? errc::auth_failed : r->status == 404 ? errc::not_found : errc::pull_failed;
    return err(c, what + ": HTTP " + std::to_string(r->status) + ": " + m);
  }
  auto s = parse_pull_stream(r->body);
  if (!s) return core::error{s.err().code, what + ": " + s.err().detail};
  return core::ok();
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

result<image_info> client::inspect_image(const std::string& name) {
  auto r = request("GET", "/images/" + name + "/json", "");
  if (!r) return r.err();
  if (r->status != 200) return status_error("image inspect " + name, r->status, r->body);
  return parse_image(r->body);
}

result<void> client::remove_image(const std::string& name) {
  auto r = request("DELETE", "/images/" + name, "");
  if (!r) return r.err();
  if (r->status == 200 || r->status == 404) return core::ok();
  return status_error("image remove " + name, r->status, r->body);
}

result<std::string> client::create_network(const std::string& name, const std::map<std::string, std::string>& labels) {
  json b = {{"Name", name}, {"Driver", "bridge"}, {"CheckDuplicate", true}, {"Labels", labels}};
  auto r = request("POST", "/networks/create", b.dump());
  if (!r) return r.err();
  if (r->status == 409) {
    auto n = inspect_network(name);
    if (!n) return n.err();
    return n->id;
  }
  if (r->status != 201 && r->status != 200) return status_error("network create " + name, r->status, r->body);
  std::string id = str_at(parse(r->body), "Id");
  if (id.empty()) return err(errc::bad_response, "network create " + name + ": no Id");
  return id;
}

result<network_summary> client::inspect_network(const std::string& name) {
  auto r = request("GET", "/networks/" + url_escape(name), "");
  if (!r) return r.err();
  if (r->status != 200) return status_error("network inspect " + name, r->status, r->body);
  auto j = parse(r->body);
  network_summary n{str_at(j, "Id"), str_at(j, "Name"), string_map(obj_at(j, "Labels"))};
  if (n.id.empty()) return err(errc::bad_response, "network inspect " + name + ": no Id");
  return n;
}

result<void> client::remove_network(const std::string& name) {
  auto r = request("DELETE", "/networks/" + url_escape(name), "");
  if (!r) return r.err();
  if (r->status == 204 || r->status == 200 || r->status == 404) return core::ok();
  return status_error("network remove " + name, r->status, r->body);
}

result<std::vector<network_summary>> client::list_networks(const std::string& label_filter) {
  auto r = request("GET", "/networks?filters=" + label_filter_query(label_filter), "");
  if (!r) return r.err();
  if (r->status != 200) return status_error("network list", r->status, r->body);
  return parse_network_list(r->body);
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

result<void> client::connect_network(const std::string& network, const std::string& container,
                                     const std::vector<std::string>& aliases) {
  json b = {{"Container", container}, {"EndpointConfig", {{"Aliases", aliases}}}};
  auto r = request("POST", "/networks/" + url_escape(network) + "/connect", b.dump());
  if (!r) return r.err();
  if (r->status == 200) return core::ok();
  // Already attached (a resumed deploy) is what we wanted.
  if (r->status == 403 && api_message(r->body).find("already exists") != std::string::npos) return core::ok();
  return status_error("network connect " + network + " " + container, r->status, r->body);
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
      devs.push_back({{"PathOnHost", host_path}, {"PathInContainer", cont_path}, {"CgroupPermissions", perms}});
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
        {"EndpointsConfig", {{s.networks.front().network, {{"Aliases", s.networks.front().aliases}}}}}};
  }
  return b;
}

result<std::string> client::create_container(const container_spec& s) {
  auto r = request("POST", "/containers/create?name=" + url_escape(s.name), container_create_body(s).dump());
  if (!r) return r.err();
  if (r->status != 201 && r->status != 200) return status_error("container create " + s.name, r->status, r->body);
  std::string id = str_at(parse(r->body), "Id");
  if (id.empty()) return err(errc::bad_response, "container create " + s.name + ": no Id");
  for (size_t i = 1; i < s.networks.size() && !s.host_network; ++i) {
    auto c = connect_network(s.networks[i].network, id, s.networks[i].aliases);
    if (!c) return c.err();
  }
  return id;
}

result<void> client::start_container(const std::string& id) {
  auto r = request("POST", "/containers/" + url_escape(id) + "/start", "");
  if (!r) return r.err();
  if (r->status == 204 || r->status == 304) return core::ok();
  return status_error("container start " + id, r->status, r->body);
}

result<void> client::stop_container(const std::string& id, int timeout_s) {
  auto r = request("POST", "/containers/" + url_escape(id) + "/stop?t=" + std::to_string(timeout_s), "");
  if (!r) return r.err();
  if (r->status == 204 || r->status == 304 || r->status == 404) return core::ok();
  return status_error("container stop " + id, r->status, r->body);
}

result<void> client::remove_container(const std::string& id, bool force) {
  auto r = request("DELETE", "/containers/" + url_escape(id) + "?v=1" + (force ? "&force=1" : ""), "");
  if (!r) return r.err();
  if (r->status == 204 || r->status == 404) return core::ok();
  // "removal already in progress" means it is going away.
  if (r->status == 409 && api_message(r->body).find("already in progress") != std::string::npos) return core::ok();
  return status_error("container remove " + id, r->status, r->body);
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
      for (auto it = nets->begin(); it != nets->end(); ++it) c.networks[it.key()] = string_list(arr_at(*it, "Aliases"));
  return c;
}

result<container_info> client::inspect_container(const std::string& id) {
  auto r = request("GET", "/containers/" + url_escape(id) + "/json", "");
  if (!r) return r.err();
  if (r->status != 200) return status_error("container inspect " + id, r->status, r->body);
  return parse_container(r->body);
}

result<std::vector<container_summary>> client::list_containers(const std::string& label_filter) {
  auto r = request("GET", "/containers/json?all=1&filters=" + label_filter_query(label_filter), "");
  if (!r) return r.err();
  if (r->status != 200) return status_error("container list", r->status, r->body);
  return parse_container_list(r->body);
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

void client::watch_events(std::function<void(event)> on_event, std::function<void()> on_lost) {
  if (events_.joinable()) return;
  events_ = std::thread([this, on_event = std::move(on_event), on_lost = std::move(on_lost)] {
    events_thread(on_event, on_lost);
  });
}

namespace {
struct line_sink {
  std::string buf;
  std::function<void(std::string_view)> on_line;
  bool overflow = false;
};
size_t write_lines(char* p, size_t size, size_t n, void* ud) {
  auto* s = static_cast<line_sink*>(ud);
  size_t len = size * n;
  s->buf.append(p, len);
  size_t nl;
  while ((nl = s->buf.find('\n')) != std::string::npos) {
    s->on_line(std::string_view(s->buf).substr(0, nl));
    s->buf.erase(0, nl + 1);
  }
  // One event is a few KiB at most; a line without end is a broken stream.
  if (s->buf.size() > (1 << 20)) {
    s->overflow = true;
    return 0;
  }
  return len;
}
}  // namespace

void client::events_thread(std::function<void(event)> on_event, std::function<void()> on_lost) {
  json f = {{"type", json::array({"container"})}, {"event", json::array({"die", "oom", "start"})}};
  std::string url = "http://localhost/" + opts_.api_version + "/events?filters=" + url_escape(f.dump());
  while (!events_stop_) {
    CURL* c = curl_easy_init();
    CURLM* m = curl_multi_init();
    line_sink s;
    s.on_line = [&](std::string_view line) {
      if (auto e = parse_event(line))
        loop_.post([alive = alive_, on_event, e = std::move(*e)]() mutable {
          if (*alive) on_event(std::move(e));
        });
    };
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, opts_.socket_path.c_str());
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_lines);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_multi_add_handle(m, c);
    {
      std::lock_guard lk(mu_);
      events_multi_ = m;
    }
    int running = 1;
    while (!events_stop_ && running) {
      if (curl_multi_perform(m, &running) != CURLM_OK) break;
      if (!running) break;
      curl_multi_poll(m, nullptr, 0, 60'000, nullptr);
    }
    {
      std::lock_guard lk(mu_);
      events_multi_ = nullptr;
    }
    curl_multi_remove_handle(m, c);
    curl_multi_cleanup(m);
    curl_easy_cleanup(c);
    if (events_stop_) break;
    lg()->warn("docker events stream via {} ended; reconnecting", opts_.socket_path);
    loop_.post([alive = alive_, on_lost] {
      if (*alive && on_lost) on_lost();
    });
    // Back off a second before reconnecting; stop() wakes us through the condition variable.
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, std::chrono::seconds(1), [this] { return stopping_; });
    if (stopping_) break;
  }
}

}  // namespace hmq::agent::docker
