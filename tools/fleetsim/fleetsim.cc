#include "tools/fleetsim/fleetsim.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "agent/agent_store.h"
#include "agent/engine.h"
#include "agent/exchange_adapter.h"
#include "agent/heartbeat.h"
#include "agent/seams.h"
#include "core/bus/client.h"
#include "core/bus/messenger.h"
#include "core/crypto/crypto.h"
#include "core/log/log.h"
#include "core/loop/loop.h"
#include "core/wire/codec.h"
#include "exchange_client/client.h"
#include "tools/fleetsim/link.h"
#include "tools/fleetsim/report.h"

namespace hmq::fleetsim {

namespace {

namespace bus = core::bus;
namespace crypto = core::crypto;
namespace fb = ::hmq::wire::fb;
namespace xc = ::hmq::exchange_client;
using clk = std::chrono::steady_clock;
using json = nlohmann::json;
using core::result;

double seconds_since(clk::time_point t0, clk::time_point t) {
  return std::chrono::duration<double>(t - t0).count();
}

class sim;

// The in-memory runtime of one node, with crash injection: a workload picked with
// --crash-probability fails for good a few seconds after it started, through the runtime seam's
// failure callback, exactly as the Docker runtime reports a crash loop (the engine cancels 103).
class sim_runtime final : public agent::runtime {
 public:
  sim_runtime(sim& s, size_t index) : sim_(s), index_(index) {}
  void deploy(const agent::workload& w, agent::done_fn cb) override;
  void remove(const std::string& agreement_id, agent::done_fn cb) override;
  // Upgrades: nothing to download, but completed on a later loop turn like a real pull so the
  // engine's swap runs outside its own call stack.
  void prepare(const agent::workload& w, agent::done_fn cb) override;
  void on_failure(failure_fn f) override { fail_ = std::move(f); }
  size_t running() const { return running_.size(); }
  // Versions of the top-level services of what runs now (for the summary's version census).
  std::set<std::string> running_versions() const;

 private:
  sim& sim_;
  size_t index_;
  failure_fn fail_;
  std::map<std::string, std::string> running_;  // agreement id -> top-level service version
  std::map<std::string, core::loop::timer_handle> crashes_;
};

// What a node sends goes through the sim's link (delay, loss) before the messenger seals and
// publishes it; as agent::messenger_outbox otherwise.
class sim_outbox final : public agent::outbox {
 public:
  sim_outbox(sim& s, bus::messenger& m, size_t index) : sim_(s), m_(m), index_(index) {}
  void send(const crypto::public_key& to, fb::Body type, const agent::body_builder& body,
            agent::done_fn done) override;

 private:
  sim& sim_;
  bus::messenger& m_;
  size_t index_;
};

struct sim_node {
  size_t index = 0;
  crypto::box_keypair keys;
  bus::client* conn = nullptr;
  std::unique_ptr<core::wire::codec> codec;
  std::unique_ptr<bus::messenger> messenger;
  std::unique_ptr<xc::client> xclient;
  std::unique_ptr<agent::exchange_adapter> xa;
  std::unique_ptr<sim_outbox> out;
  std::optional<agent::agent_store> store;
  std::unique_ptr<sim_runtime> rt;
  std::unique_ptr<agent::engine> eng;
  // Outlives `hb`: a sender restarted on this identity continues after the last counter.
  std::unique_ptr<agent::memory_counter> hb_counter;
  std::unique_ptr<agent::heartbeat_sender> hb;
  bool stopped = false;  // --stop-nodes: gone silent
  core::loop::timer_handle stop_timer;
  std::optional<clk::time_point> register_sent;  // first attempt
  std::optional<clk::time_point> registered;     // exchange acknowledged
  std::optional<clk::time_point> agreed;         // first workload deployed (agreement finalized)
  int register_attempts = 0;
  core::loop::timer_handle retry;
};

class sim {
 public:
  sim(const options& o, crypto::public_key xkey, std::vector<crypto::public_key> trust)
      : o_(o),
        xkey_(xkey),
        trust_(std::move(trust)),
        topics_{o.topic_prefix},
        rng_(std::random_device{}()),
        link_in_(loop_, std::chrono::microseconds(static_cast<int64_t>(o.link_latency_ms * 1000))),
        link_out_(loop_,
                  std::chrono::microseconds(static_cast<int64_t>(o.link_latency_ms * 1000))) {}

  int run();

  core::loop::event_loop& loop() { return loop_; }
  const options& opts() const { return o_; }
  std::mt19937_64& rng() { return rng_; }
  delay_line& link_out() { return link_out_; }
  bool lose() {
    if (o_.link_loss_pct <= 0) return false;
    if (std::uniform_real_distribution<double>(0, 100)(rng_) >= o_.link_loss_pct) return false;
    ++link_dropped_;
    return true;
  }
  bool stopped(size_t index) const { return nodes_[index]->stopped; }
  void on_deployed(size_t index) {
    ++deploys_;
    ++running_;
    auto& n = *nodes_[index];
    if (n.agreed) return;
    n.agreed = clk::now();
    ++agreed_;
    if (index < o_.stop_nodes)
      n.stop_timer =
          loop_.call_after(std::chrono::milliseconds(static_cast<int64_t>(o_.stop_after_s * 1000)),
                           [this, index] { stop_node(index); });
    if (agreed_ == nodes_.size() && o_.duration_s <= 0) finish("every node has an agreement");
  }
  void on_removed() { --running_; }
  void on_crash() { ++crashes_; }

 private:
  bool build();
  // SUBACK of one mailbox (every node's and the admin's); connect() once all are in.
  void on_subscribed(const result<void>& r) {
    if (r)
      ++subscribed_;
    else
      ++sub_failed_;
    if (subscribed_ + sub_failed_ == nodes_.size() + 1) connect();
  }
  void connect();
  void create_nodes();
  void create_next();
  void register_all();
  void register_one(size_t i);
  void start_heartbeat(size_t i);
  void stop_node(size_t i);
  void progress();
  void finish(const std::string& why);
  json summary() const;

  const options& o_;
  crypto::public_key xkey_;
  std::vector<crypto::public_key> trust_;
  bus::topics topics_;
  std::mt19937_64 rng_;
  core::loop::event_loop loop_;
  delay_line link_in_;
  delay_line link_out_;
  std::vector<std::unique_ptr<bus::client>> conns_;
  std::vector<std::unique_ptr<sim_node>> nodes_;
  // The user identity that creates the nodes.
  crypto::box_keypair admin_keys_ = crypto::box_keypair::generate();
  std::unique_ptr<core::wire::codec> admin_codec_;
  std::unique_ptr<bus::messenger> admin_messenger_;
  std::unique_ptr<xc::client> admin_client_;
  xc::credentials admin_auth_;

  clk::time_point t_start_ = clk::now();
  clk::time_point t_connected_, t_created_, t_register_;
  std::optional<clk::time_point> t_all_registered_, t_all_agreed_;
  size_t subscribed_ = 0, sub_failed_ = 0;
  size_t created_ = 0, create_next_ = 0, create_inflight_ = 0, create_failed_ = 0,
         already_existed_ = 0;
  size_t registered_ = 0, register_failed_ = 0, register_retries_ = 0;
  size_t agreed_ = 0, deploys_ = 0, running_ = 0, crashes_ = 0, stopped_ = 0;
  uint64_t routed_ = 0, link_dropped_ = 0;
  bool phase_register_ = false, done_ = false;
  int exit_code_ = 2;
  std::string why_;
  core::loop::timer_handle progress_timer_, end_timer_, duration_timer_;
  // First heartbeat counter of every node: the wall clock in microseconds (see fleetsim.h).
  uint64_t hb_counter_seed_ =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  std::chrono::milliseconds hb_interval() const {
    return std::chrono::milliseconds(
        std::max<int64_t>(1, static_cast<int64_t>(o_.heartbeat_interval_s * 1000)));
  }
};

std::string top_level_version(const agent::workload& w) {
  for (const auto& s : w.services)
    if (s.is_top_level && s.service) return s.service->version;
  return w.services.empty() || !w.services.front().service ? std::string("?")
                                                           : w.services.front().service->version;
}

void sim_runtime::deploy(const agent::workload& w, agent::done_fn cb) {
  running_[w.agreement_id] = top_level_version(w);
  sim_.on_deployed(index_);
  sim_.loop().post([cb = std::move(cb)] { cb(core::ok()); });
  const double p = sim_.opts().crash_probability;
  if (p > 0 && std::uniform_real_distribution<double>(0, 1)(sim_.rng()) < p) {
    auto after =
        std::chrono::milliseconds(std::uniform_int_distribution<int>(1000, 5000)(sim_.rng()));
    crashes_[w.agreement_id] = sim_.loop().call_after(after, [this, id = w.agreement_id] {
      crashes_.erase(id);
      if (running_.erase(id) == 0) return;
      sim_.on_removed();
      sim_.on_crash();
      if (fail_)
        fail_(id, agent::runtime_failure(fb::CancelReason::container_failure,
                                         "injected crash (fleetsim)"));
    });
  }
}

void sim_runtime::prepare(const agent::workload& w, agent::done_fn cb) {
  (void)w;
  sim_.loop().post([cb = std::move(cb)] { cb(core::ok()); });
}

std::set<std::string> sim_runtime::running_versions() const {
  std::set<std::string> v;
  for (const auto& [id, version] : running_) v.insert(version);
  return v;
}

void sim_runtime::remove(const std::string& agreement_id, agent::done_fn cb) {
  crashes_.erase(agreement_id);
  if (running_.erase(agreement_id) != 0) sim_.on_removed();
  if (cb) sim_.loop().post([cb = std::move(cb)] { cb(core::ok()); });
}

void sim_outbox::send(const crypto::public_key& to, fb::Body type, const agent::body_builder& body,
                      agent::done_fn done) {
  if (sim_.stopped(index_)) return;  // a stopped node says nothing, and nobody waits on it any more
  auto bytes = core::wire::build_message(core::wire::header{}, sim_.loop().time(), type, body);
  bus::publish_options po;
  po.qos = 1;
  if (type == fb::Body::Reply || type == fb::Body::AgreementVerifyReply)
    po.message_expiry_s = static_cast<uint32_t>(sim_.opts().finalize_timeout_s);
  if (sim_.lose()) {
    // Lost on the link after the node let go of it: the sender sees a success.
    if (done) sim_.loop().post([done = std::move(done)] { done(core::ok()); });
    return;
  }
  sim_.link_out().push([this, to, bytes = std::move(bytes), po, done = std::move(done)]() mutable {
    m_.send(to, bytes, po, {}, std::move(done));
  });
}

bool sim::build() {
  const size_t n = o_.nodes;
  const size_t k = o_.connections ? o_.connections : std::max<size_t>(1, (n + 2499) / 2500);
  const std::string run_id = crypto::mailbox_id(admin_keys_.pk).substr(0, 8);
  for (size_t c = 0; c < k; ++c) {
    bus::options bo;
    bo.broker_uri = o_.broker;
    bo.client_id = "hmq-fleetsim-" + run_id + "-" + std::to_string(c);
    // A simulation leaves nothing behind in the broker: no persistent session for 10,000
    // mailboxes that nobody will read again.
    bo.clean_start = true;
    bo.session_expiry_s = 0;
    conns_.push_back(std::make_unique<bus::client>(loop_, bo));
  }
  agent::engine_options eo;
  eo.finalize_timeout = std::chrono::seconds(o_.finalize_timeout_s);
  eo.exchange_retry = std::chrono::seconds(5);
  eo.upgrade_verify_window =
      std::chrono::milliseconds(static_cast<int64_t>(o_.upgrade_verify_window_s * 1000));
  nodes_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto node = std::make_unique<sim_node>();
    sim_node& s = *node;
    s.index = i;
    s.keys = crypto::box_keypair::generate();
    s.conn = conns_[i % k].get();
    s.codec = std::make_unique<core::wire::codec>(s.keys, loop_.time());
    s.messenger = std::make_unique<bus::messenger>(loop_, *s.conn, *s.codec, topics_);
    s.messenger->send_on_uplinks();  // as hmq-agent
    s.xclient = std::make_unique<xc::client>(loop_, *s.messenger, xkey_, topics_);
    s.xclient->set_timeout(std::chrono::seconds(o_.rpc_timeout_s));
    s.xa = std::make_unique<agent::exchange_adapter>(*s.xclient);
    s.out = std::make_unique<sim_outbox>(*this, *s.messenger, i);
    auto st = agent::agent_store::open_memory();
    if (!st) {
      std::fprintf(stderr, "hmq-fleetsim: node %zu store: %s\n", i, st.err().message().c_str());
      return false;
    }
    s.store.emplace(std::move(st).value());
    s.rt = std::make_unique<sim_runtime>(*this, i);
    s.eng = std::make_unique<agent::engine>(loop_, *s.store, *s.xa, *s.out, *s.rt, eo);
    for (auto type :
         {fb::Body::Proposal, fb::Body::ReplyAck, fb::Body::Cancel, fb::Body::AgreementVerify}) {
      s.messenger->on(type,
                      [eng = s.eng.get()](const core::wire::opened& m) { eng->on_message(m); });
    }
    if (o_.heartbeat_interval_s > 0)
      s.hb_counter = std::make_unique<agent::memory_counter>(hb_counter_seed_);
    if (auto r = s.eng->start(); !r) {
      std::fprintf(stderr, "hmq-fleetsim: node %zu: %s\n", i, r.err().message().c_str());
      return false;
    }
    for (size_t t = 0; t < trust_.size(); ++t) {
      if (auto r = s.eng->import_key(trust_[t], "publisher" + std::to_string(t)); !r) {
        std::fprintf(stderr, "hmq-fleetsim: trust key: %s\n", r.err().message().c_str());
        return false;
      }
    }
    // The messenger subscribes its mailbox on the shared connection; the sim then takes that
    // subscription over (same filter, so one SUBSCRIBE on connect) to route through the link.
    s.messenger->start();
    s.conn->subscribe(
        s.messenger->mailbox_topic(), 1,
        [this, i](const bus::inbound& in) {
          if (nodes_[i]->stopped || lose()) return;
          ++routed_;
          link_in_.push([this, i, in] {
            if (!nodes_[i]->stopped) nodes_[i]->messenger->deliver(in);
          });
        },
        [this](result<void> r) { on_subscribed(r); });
    nodes_.push_back(std::move(node));
  }
  admin_codec_ = std::make_unique<core::wire::codec>(admin_keys_, loop_.time());
  admin_messenger_ = std::make_unique<bus::messenger>(loop_, *conns_[0], *admin_codec_, topics_);
  admin_client_ = std::make_unique<xc::client>(loop_, *admin_messenger_, xkey_, topics_);
  admin_client_->set_timeout(std::chrono::seconds(o_.rpc_timeout_s));
  admin_messenger_->start();
  conns_[0]->subscribe(
      admin_messenger_->mailbox_topic(), 1,
      [this](const bus::inbound& in) { admin_messenger_->deliver(in); },
      [this](result<void> r) { on_subscribed(r); });
  return true;
}

// Every mailbox subscription is confirmed (SUBACK): nothing sent to a node can be lost now.
void sim::connect() {
  t_connected_ = clk::now();
  std::fprintf(stderr,
               "fleetsim: %zu connections, %zu mailboxes subscribed (%zu failed) in %.2f s\n",
               conns_.size(), subscribed_, sub_failed_, seconds_since(t_start_, t_connected_));
  if (sub_failed_ != 0) return finish("mailbox subscriptions failed");
  if (o_.create_nodes) return create_nodes();
  t_created_ = clk::now();
  register_all();
}

void sim::create_nodes() {
  std::fprintf(stderr, "fleetsim: creating %zu nodes in org %s (%zu in flight)\n", nodes_.size(),
               o_.org.c_str(), o_.create_parallel);
  for (size_t i = 0; i < std::max<size_t>(1, o_.create_parallel); ++i) create_next();
}

void sim::create_next() {
  if (create_next_ >= nodes_.size()) {
    if (create_inflight_ == 0 && !phase_register_) {
      t_created_ = clk::now();
      std::fprintf(stderr, "fleetsim: %zu nodes created (%zu existed, %zu failed) in %.2f s\n",
                   created_, already_existed_, create_failed_,
                   seconds_since(t_connected_, t_created_));
      register_all();
    }
    return;
  }
  const size_t i = create_next_++;
  fb::NodeT n;
  n.org = o_.org;
  n.id = o_.node_prefix + std::to_string(i);
  n.name = n.id;
  n.token = o_.token_prefix + std::to_string(i);
  n.arch = o_.arch;
  fb::ResourceUnion r;
  r.Set(n);
  ++create_inflight_;
  admin_client_->create_resource(admin_auth_, r, [this](result<void> res) {
    --create_inflight_;
    if (res) {
      ++created_;
    } else if (res.code() == xc::make_error_code(xc::client_errc::already_exists)) {
      ++already_existed_;
    } else {
      if (create_failed_++ == 0)
        std::fprintf(stderr, "fleetsim: node create failed: %s\n", res.err().message().c_str());
    }
    create_next();
  });
}

void sim::register_all() {
  phase_register_ = true;
  t_register_ = clk::now();
  std::fprintf(stderr, "fleetsim: registering %zu nodes for %s\n", nodes_.size(),
               o_.pattern.c_str());
  for (size_t i = 0; i < nodes_.size(); ++i) register_one(i);
  if (o_.progress_s > 0) progress();
  if (o_.duration_s > 0) {
    duration_timer_ =
        loop_.call_after(std::chrono::milliseconds(static_cast<int64_t>(o_.duration_s * 1000)),
                         [this] { finish("duration reached"); });
  }
}

void sim::register_one(size_t i) {
  auto& s = *nodes_[i];
  if (!s.register_sent) s.register_sent = clk::now();
  ++s.register_attempts;
  agent::node_registration r;
  r.node = {o_.org, o_.node_prefix + std::to_string(i), o_.token_prefix + std::to_string(i)};
  r.pattern = o_.pattern;
  r.arch = o_.arch;
  s.eng->register_node(std::move(r), "[]", [this, i](result<void> res) {
    auto& s = *nodes_[i];
    if (res) {
      if (s.registered) return;
      s.registered = clk::now();
      if (++registered_ == nodes_.size()) t_all_registered_ = clk::now();
      start_heartbeat(i);
      return;
    }
    // Refusals (bad token, unknown pattern) are final; a timeout under load is retried.
    if (xc::is_refusal(res.code()) || s.register_attempts >= 5) {
      if (register_failed_++ == 0)
        std::fprintf(stderr, "fleetsim: node %zu registration failed: %s\n", i,
                     res.err().message().c_str());
      return;
    }
    ++register_retries_;
    s.retry = loop_.call_after(std::chrono::milliseconds(1000 + 1000 * s.register_attempts),
                               [this, i] { register_one(i); });
  });
}

// Heartbeats start once the exchange knows the node's key (before, every frame would be an
// "unknown node" there). Node i beats at phase i/N of the interval, counted from the
// registration burst, so N nodes send N/interval frames a second evenly, not in bursts.
void sim::start_heartbeat(size_t i) {
  auto& s = *nodes_[i];
  if (!s.hb_counter || s.hb || s.stopped) return;
  const int64_t interval = hb_interval().count();
  const int64_t phase = static_cast<int64_t>(
      static_cast<double>(interval) * static_cast<double>(i) / static_cast<double>(nodes_.size()));
  const int64_t since =
      std::chrono::duration_cast<std::chrono::milliseconds>(clk::now() - t_register_).count();
  int64_t wait = (phase - since) % interval;
  if (wait < 0) wait += interval;
  agent::heartbeat_options ho;
  ho.interval = hb_interval();
  ho.first_beat = std::chrono::milliseconds(wait);
  ho.presence = false;  // see fleetsim.h: a shared connection
  ho.topic_alias = 0;
  s.hb = std::make_unique<agent::heartbeat_sender>(
      loop_, *s.hb_counter, xkey_, s.keys.sk, crypto::mailbox_id(s.keys.pk), topics_,
      [eng = s.eng.get()] {
        core::wire::heartbeat_body b;
        b.running_agreements =
            static_cast<uint16_t>(std::min<size_t>(eng->live_agreements(), 0xffff));
        return b;
      },
      ho);
  s.hb->start(*s.conn);
}

void sim::stop_node(size_t i) {
  auto& s = *nodes_[i];
  if (s.stopped) return;
  s.stopped = true;
  ++stopped_;
  if (s.hb) s.hb->stop();
  s.retry.cancel();
  s.eng->stop();
  std::fprintf(stderr, "fleetsim: node %s%zu stopped (--stop-nodes)\n", o_.node_prefix.c_str(), i);
}

void sim::progress() {
  std::fprintf(stderr,
               "fleetsim: t=%7.2fs registered %zu/%zu agreed %zu/%zu running %zu crashes %zu\n",
               seconds_since(t_register_, clk::now()), registered_, nodes_.size(), agreed_,
               nodes_.size(), running_, crashes_);
  progress_timer_ =
      loop_.call_after(std::chrono::milliseconds(static_cast<int64_t>(o_.progress_s * 1000)),
                       [this] { progress(); });
}

void sim::finish(const std::string& why) {
  if (done_) return;
  done_ = true;
  why_ = why;
  if (agreed_ == nodes_.size()) {
    t_all_agreed_ = clk::now();
    exit_code_ = 0;
  } else if (o_.duration_s > 0 && why == "duration reached") {
    exit_code_ = 0;
  }
  if (phase_register_ && o_.progress_s > 0) {
    progress_timer_.cancel();
    std::fprintf(
        stderr,
        "fleetsim: t=%7.2fs registered %zu/%zu agreed %zu/%zu running %zu crashes %zu (%s)\n",
        seconds_since(t_register_, clk::now()), registered_, nodes_.size(), agreed_, nodes_.size(),
        running_, crashes_, why.c_str());
  }
  // Summary first (the engines still hold their counters), then everything stops.
  json s = summary();
  if (o_.output == "json") {
    std::printf("%s\n", s.dump().c_str());
  } else {
    print_text_summary(s, why);
  }
  std::fflush(stdout);
  end_timer_.cancel();
  duration_timer_.cancel();
  for (auto& n : nodes_) {
    n->retry.cancel();
    n->stop_timer.cancel();
    if (n->hb) n->hb->stop();
    n->eng->stop();
    n->messenger->stop();
  }
  admin_messenger_->stop();
  for (auto& c : conns_) c->stop();
  loop_.stop();
}

json sim::summary() const {
  json j;
  j["nodes"] = nodes_.size();
  j["connections"] = conns_.size();
  j["registered"] = registered_;
  j["agreed"] = agreed_;
  j["running"] = running_;
  j["result"] = why_;
  j["setup_s"] = seconds_since(t_start_, t_connected_);
  j["create_s"] = o_.create_nodes ? seconds_since(t_connected_, t_created_) : 0.0;
  if (t_all_registered_)
    j["time_to_all_registered_s"] = seconds_since(t_register_, *t_all_registered_);
  if (t_all_agreed_) j["time_to_all_agreed_s"] = seconds_since(t_register_, *t_all_agreed_);
  std::vector<double> from_sent, from_ack, agreed_at;
  for (const auto& n : nodes_) {
    if (!n->agreed) continue;
    agreed_at.push_back(seconds_since(t_register_, *n->agreed));
    if (n->register_sent) from_sent.push_back(seconds_since(*n->register_sent, *n->agreed) * 1000);
    if (n->registered)
      from_ack.push_back(std::max(0.0, seconds_since(*n->registered, *n->agreed) * 1000));
  }
  j["agreement_latency_ms"] = stats_of(from_sent);
  j["agreement_latency_from_ack_ms"] = stats_of(from_ack);
  std::sort(agreed_at.begin(), agreed_at.end());
  std::sort(from_sent.begin(), from_sent.end());
  // Rounded: the full series feed the convergence and CDF plots.
  auto rounded = [](const std::vector<double>& v, double scale) {
    json a = json::array();
    for (double x : v) a.push_back(std::round(x * scale) / scale);
    return a;
  };
  j["agreed_at_s"] = rounded(agreed_at, 1000);
  j["latencies_ms"] = rounded(from_sent, 10);
  std::vector<agent::engine_counters> per_node;
  per_node.reserve(nodes_.size());
  for (const auto& n : nodes_) per_node.push_back(n->eng->stats());
  j["engine"] = engine_json(per_node);
  // Version census: how many nodes run each service version now ("1.0.0,1.1.0" for a node in
  // the middle of a swap), so a rollout benchmark can check every node ended on the target.
  json versions = json::object();
  for (const auto& n : nodes_) {
    std::string key;
    for (const auto& v : n->rt->running_versions()) key += (key.empty() ? "" : ",") + v;
    if (key.empty()) key = "none";
    versions[key] = versions.value(key, 0) + 1;
  }
  j["running_versions"] = versions;
  j["deploys"] = deploys_;
  j["crashes_injected"] = crashes_;
  j["register_retries"] = register_retries_;
  j["register_failed"] = register_failed_;
  j["messages_routed"] = routed_;
  j["link"] = {{"latency_ms", o_.link_latency_ms},
               {"loss_pct", o_.link_loss_pct},
               {"dropped", link_dropped_}};
  j["rss_kb"] = self_rss_kb();
  uint64_t hb_sent = 0, hb_skipped = 0;
  for (const auto& n : nodes_) {
    if (!n->hb) continue;
    hb_sent += n->hb->sent();
    hb_skipped += n->hb->skipped();
  }
  j["heartbeats"] = {
      {"interval_s", o_.heartbeat_interval_s}, {"sent", hb_sent}, {"skipped", hb_skipped}};
  j["stopped_nodes"] = stopped_;
  return j;
}

int sim::run() {
  const auto colon = o_.user.find(':');
  if (o_.create_nodes) {
    if (colon == std::string::npos) {
      std::fprintf(stderr, "hmq-fleetsim: --create-nodes needs -u [org/]user:password\n");
      return 1;
    }
    std::string who = o_.user.substr(0, colon);
    std::string org = o_.org;
    if (auto slash = who.find('/'); slash != std::string::npos) {
      org = who.substr(0, slash);
      who = who.substr(slash + 1);
    }
    admin_auth_ = xc::credentials::user(org, who, o_.user.substr(colon + 1));
  }
  std::fprintf(stderr, "fleetsim: building %zu nodes\n", o_.nodes);
  if (!build()) return 1;
  std::fprintf(stderr, "fleetsim: %zu nodes built in %.2f s; connecting\n", nodes_.size(),
               seconds_since(t_start_, clk::now()));
  end_timer_ =
      loop_.call_after(std::chrono::milliseconds(static_cast<int64_t>(o_.timeout_s * 1000)),
                       [this] { finish("timeout"); });
  loop_.on_signals([this](int) { finish("interrupted"); });
  size_t failed = 0;
  for (auto& c : conns_) {
    c->start([this, &failed](result<void> r) {
      if (r) return;
      if (failed++ == 0)
        std::fprintf(stderr, "hmq-fleetsim: broker %s: %s\n", o_.broker.c_str(),
                     r.err().message().c_str());
      finish("broker connection failed");
    });
  }
  loop_.run();
  if (failed) return 1;
  return exit_code_;
}

}  // namespace

int run(const options& o) {
  crypto::init();
  if (!core::log::set_level(o.log_level)) {
    std::fprintf(stderr, "hmq-fleetsim: unknown log level %s\n", o.log_level.c_str());
    return 1;
  }
  auto xkey = crypto::load_public_key(o.exchange_key);
  if (!xkey) {
    std::fprintf(stderr, "hmq-fleetsim: --exchange-key: %s\n", xkey.err().message().c_str());
    return 1;
  }
  std::vector<crypto::public_key> trust;
  for (const auto& f : o.trust_keys) {
    auto b = crypto::read_public_key_file(f);
    if (!b || b->size() != crypto::public_key_size) {
      std::fprintf(stderr, "hmq-fleetsim: --trust %s: not a public key file\n", f.c_str());
      return 1;
    }
    crypto::public_key k{};
    std::copy(b->begin(), b->end(), k.begin());
    trust.push_back(k);
  }
  options fixed = o;
  if (fixed.pattern.find('/') == std::string::npos) fixed.pattern = fixed.org + "/" + fixed.pattern;
  sim s(fixed, *xkey, std::move(trust));
  return s.run();
}

}  // namespace hmq::fleetsim
