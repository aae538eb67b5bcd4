#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "agent/docker/errors.h"
#include "agent/docker/http.h"
#include "core/common/result.h"
#include "core/loop/loop.h"

// Docker Engine API client over the Engine's unix socket (the small HTTP/1.1 client of
// agent/docker/http.h), so Podman's compatible socket works too. Only what the agent needs: images,
// bridge networks, containers, the events stream.
//
// Thread contract: every request method is blocking and thread-safe (one connection per call);
// call them from the worker pool through submit(), never from the loop thread. submit() runs the
// work on one of a few worker threads and posts the result back to the loop. The events stream
// has its own thread and posts each event to the loop. stop() (or the destructor) cancels the
// stream and the calls in flight (through an eventfd their poll() watches), waits for the workers
// and drops queued work; its callbacks are not called.
//
// Docker's answers are input like any other: bodies are size-bounded, JSON is parsed without
// exceptions escaping, and a field of the wrong type reads as absent.
namespace hmq::agent::docker {

using core::result;
using json = nlohmann::json;

struct registry_auth {
  std::string username;
  std::string password;
  std::string server;  // "127.0.0.1:5000"
};

// X-Registry-Auth header value: base64url of {"username","password","serveraddress"}.
std::string encode_registry_auth(const registry_auth& a);

struct image_ref {
  std::string registry;  // "127.0.0.1:5000", empty for the default registry
  std::string
      repository;      // "127.0.0.1:5000/hmq/gps" (what Docker calls the repo, registry included)
  std::string tag;     // "latest" when absent
  std::string digest;  // "sha256:..." when the reference pins one
};
// Parses "host:port/path/name:tag", "name", "name@sha256:..." as Docker does.
result<image_ref> parse_image_ref(std::string_view ref);

struct image_info {
  std::string id;
  std::vector<std::string> repo_digests;  // "repo@sha256:..."
};

struct port_binding {
  std::string container_port;  // "80/tcp"
  std::string host_ip;
  std::string host_port;
};

struct network_attachment {
  std::string network;
  std::vector<std::string> aliases;
};

struct container_spec {
  std::string name;
  std::string image;
  std::vector<std::string> env;
  std::vector<std::string> cmd;
  std::vector<std::string> entrypoint;
  std::map<std::string, std::string> labels;
  std::vector<port_binding> ports;
  std::vector<std::string> binds;
  std::vector<std::string> devices;  // "/dev/x" or "/dev/x:/dev/y[:rwm]"
  std::vector<std::string> cap_add;
  bool privileged = false;
  uint64_t memory_bytes = 0;
  int64_t nano_cpus = 0;
  bool host_network = false;
  // First one is the container's network at create; the rest are connected before start.
  std::vector<network_attachment> networks;
};

struct container_info {
  std::string id;
  std::string name;  // without the leading '/'
  std::string image;
  std::string state;  // running, exited, created, ...
  bool running = false;
  int exit_code = 0;
  bool oom_killed = false;
  std::string started_at;
  std::map<std::string, std::string> labels;
  std::vector<std::string> env;
  std::map<std::string, std::vector<std::string>> networks;  // network name -> aliases
};

struct container_summary {
  std::string id;
  std::string name;
  std::string state;
  std::map<std::string, std::string> labels;
};

struct network_summary {
  std::string id;
  std::string name;
  std::map<std::string, std::string> labels;
};

struct event {
  std::string action;  // die, oom, start, ...
  std::string id;      // container id
  std::string name;    // container name
  int exit_code = 0;
  std::map<std::string, std::string> labels;  // the container's labels (Actor.Attributes)
};

struct client_options {
  std::string socket_path = "/var/run/docker.sock";
  std::string api_version = "v1.41";  // Docker 20.10+ and Podman 3+ speak it
  size_t workers = 2;
  size_t max_body_bytes = 16 << 20;
  long timeout_s = 600;  // pulls can be slow; each call's total time
};

class client {
 public:
  client(core::loop::scheduler& loop, client_options o = {});
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  void stop();
  const std::string& socket_path() const { return opts_.socket_path; }

  // Runs `work` on a worker thread and posts its result to the loop. Not called after stop().
  template <typename T>
  void submit(std::function<result<T>()> work, std::function<void(result<T>)> done) {
    enqueue([this, work = std::move(work), done = std::move(done)]() mutable {
      auto r = std::make_shared<result<T>>(work());
      loop_.post([alive = alive_, r, done = std::move(done)] {
        if (*alive) done(std::move(*r));
      });
    });
  }

  // Blocking calls (worker threads only).
  result<void> ping();
  // Pulls repository:tag; auth failures come back as errc::auth_failed.
  result<void> pull(const image_ref& ref, const std::optional<registry_auth>& auth);
  result<image_info> inspect_image(const std::string& name);
  result<void> remove_image(const std::string& name);

  // Creates a bridge network; an existing one with that name is fine (returns its id).
  result<std::string> create_network(const std::string& name,
                                     const std::map<std::string, std::string>& labels);
  result<network_summary> inspect_network(const std::string& name);
  result<void> remove_network(const std::string& name);  // gone already counts as success
  result<std::vector<network_summary>> list_networks(const std::string& label_filter);
  result<void> connect_network(const std::string& network, const std::string& container,
                               const std::vector<std::string>& aliases);

  result<std::string> create_container(const container_spec& s);
  result<void> start_container(const std::string& id);  // already running counts as success
  result<void> stop_container(const std::string& id, int timeout_s);
  result<void> remove_container(const std::string& id, bool force);  // gone counts as success
  result<container_info> inspect_container(const std::string& id);
  // All containers (running or not) carrying `label_filter` ("key" or "key=value").
  result<std::vector<container_summary>> list_containers(const std::string& label_filter);

  // Starts the events thread (container die/oom/start). on_event runs on the loop; on_lost runs
  // on the loop when the stream broke (the thread reconnects by itself after a second).
  void watch_events(std::function<void(event)> on_event, std::function<void()> on_lost);

  // Parsing helpers, public for unit tests (Docker's JSON is untrusted input).
  static result<container_info> parse_container(std::string_view body);
  static result<image_info> parse_image(std::string_view body);
  static std::optional<event> parse_event(std::string_view line);
  static result<std::vector<container_summary>> parse_container_list(std::string_view body);
  static result<std::vector<network_summary>> parse_network_list(std::string_view body);
  // Scans a pull's progress stream; the error it reports, if any.
  static result<void> parse_pull_stream(std::string_view body);
  static json container_create_body(const container_spec& s);

 private:
  struct http_result {
    long status = 0;
    std::string body;
  };
  http::call_options call_options(uint64_t max_body) const;
  http::request make_request(const std::string& method, const std::string& path,
                             const std::string& body,
                             const std::vector<std::string>& headers = {}) const;
  result<http_result> request(const std::string& method, const std::string& path,
                              const std::string& body,
                              const std::vector<std::string>& headers = {});
  void enqueue(std::function<void()> job);
  void worker();
  void events_thread(std::function<void(event)> on_event, std::function<void()> on_lost);

  core::loop::scheduler& loop_;
  client_options opts_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // loop thread
  std::mutex mu_;
  std::condition_variable cv_;         // workers: a job or stop
  std::condition_variable events_cv_;  // the events thread's back-off: stop only
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  std::thread events_;
  std::atomic<bool> events_stop_{false};
  int cancel_fd_ = -1;  // eventfd, written by stop()
};

}  // namespace hmq::agent::docker
