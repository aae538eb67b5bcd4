#pragma once

#include <asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "agent/docker/errors.h"
#include "agent/docker/http.h"
#include "core/common/result.h"
#include "core/loop/loop.h"

// Docker Engine API client over the Engine's unix socket (the small HTTP/1.1 client of
// agent/docker/http.h), so Podman's compatible socket works too. Only what the agent needs: images,
// bridge networks, containers, the events stream.
//
// Thread contract: loop thread only. Every Docker call is a coroutine on the agent's event loop
// (Asio's io_context, core/loop/loop.h): one unix-socket connection per call, async connect, write
// and reads, timeouts from the loop's timers. The calls are free functions of a `session` (a
// copyable handle on the client's options and stop source) so a chain of calls is one coroutine
// that takes it by value. submit() runs such a coroutine and calls its callback exactly once, on
// the loop: with its result, an HTTP error, errc::transport (Engine unreachable, timeout) or
// errc::stopped. stop() cancels every call and wait in flight (their callbacks then run with
// errc::stopped) and the events stream; after the client is destroyed nothing is called back.
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
  size_t max_body_bytes = 16 << 20;
  long timeout_s = 600;  // pulls can be slow; each call's total time
  // The events stream reconnects with the bus's jittered back-off (core/common/backoff.h).
  std::chrono::milliseconds events_retry_min{250};
  std::chrono::milliseconds events_retry_max{30'000};
};

// A copyable handle on one client's options and stop source: what the Docker calls below need.
// A coroutine holding one stays safe after its client is gone (its calls end with
// errc::stopped).
class session {
 public:
  session(std::shared_ptr<const client_options> o, std::shared_ptr<http::stop_source> stop)
      : opts_(std::move(o)), stop_(std::move(stop)) {}
  const client_options& options() const { return *opts_; }
  const std::string& socket_path() const { return opts_->socket_path; }
  const std::shared_ptr<http::stop_source>& stop_source() const { return stop_; }
  bool stopped() const { return stop_->stopped(); }

 private:
  std::shared_ptr<const client_options> opts_;
  std::shared_ptr<http::stop_source> stop_;
};

// The Docker calls, as coroutines on the loop. Each takes its session and arguments by value.
namespace api {
template <typename T>
using call = asio::awaitable<result<T>>;

call<void> ping(session s);
// Pulls repository:tag; auth failures come back as errc::auth_failed.
call<void> pull(session s, image_ref ref, std::optional<registry_auth> auth);
call<image_info> inspect_image(session s, std::string name);
call<void> remove_image(session s, std::string name);

// Creates a bridge network; an existing one with that name is fine (returns its id).
call<std::string> create_network(session s, std::string name,
                                 std::map<std::string, std::string> labels);
call<network_summary> inspect_network(session s, std::string name);
call<void> remove_network(session s, std::string name);  // gone already counts as success
call<std::vector<network_summary>> list_networks(session s, std::string label_filter);
call<void> connect_network(session s, std::string network, std::string container,
                           std::vector<std::string> aliases);

call<std::string> create_container(session s, container_spec spec);
call<void> start_container(session s, std::string id);  // already running counts as success
call<void> stop_container(session s, std::string id, int timeout_s);
call<void> remove_container(session s, std::string id, bool force);  // gone counts as success
call<container_info> inspect_container(session s, std::string id);
// All containers (running or not) carrying `label_filter` ("key" or "key=value").
call<std::vector<container_summary>> list_containers(session s, std::string label_filter);

// Waits `d` on the loop; errc::stopped when the client stopped first.
call<void> sleep(session s, std::chrono::milliseconds d);
}  // namespace api

class client {
 public:
  client(core::loop::event_loop& loop, client_options o = {});
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Cancels the calls in flight (their callbacks run with errc::stopped) and the events stream;
  // later calls end at once with errc::stopped.
  void stop();
  const std::string& socket_path() const { return session_.socket_path(); }
  const session& engine() const { return session_; }

  // Runs `work` (Docker calls made with engine()) on the loop; `done` runs exactly once on the
  // loop with its result, or errc::stopped when stop() came first. Never after ~client().
  template <typename T>
  void submit(api::call<T> work, std::function<void(result<T>)> done) {
    spawn(deliver<T>(std::move(work), session_, alive_, std::move(done)));
  }

  // Starts the events stream (container die/oom/start). on_event runs on the loop; on_lost runs
  // on the loop when the stream broke (it reconnects by itself, backing off like the bus).
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
  template <typename T>
  static asio::awaitable<void> deliver(api::call<T> work, session s, std::shared_ptr<bool> alive,
                                       std::function<void(result<T>)> done) {
    std::optional<result<T>> r;
    try {
      r.emplace(co_await std::move(work));
    } catch (const std::exception& e) {
      // Nothing in a call throws by design; if something does, the job still completes.
      r.emplace(core::error{make_error_code(errc::bad_response), e.what()});
    }
    if (s.stopped())
      r.emplace(core::error{make_error_code(errc::stopped), "Docker client stopped"});
    if (*alive && done) done(std::move(*r));
  }
  void spawn(asio::awaitable<void> a);

  core::loop::event_loop& loop_;
  session session_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // false once destroyed
  bool watching_ = false;
};

}  // namespace hmq::agent::docker
