// The agbot engine's start-up (resume from agbot.db, hello, patterns, node search), its state
// changes (persist, cancel, exchange records, back-off) and what the control socket asks of it.
// The other engine files: engine_proposals.cc, engine_messages.cc, engine_governance.cc,
// engine_upgrades.cc.
#include "agbot/engine.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "agbot/errc.h"
#include "exchange_client/agreement_record.h"

namespace hmq::agbot {
namespace {

using fb::AgreementState;

}  // namespace

bool valid_agreement_id(std::string_view id) {
  if (id.size() != 32) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

engine::engine(core::loop::scheduler& loop, engine_config cfg, exchange_api& x, outbox& out,
               agreement_store& store, id_source ids)
    : loop_(loop),
      cfg_(std::move(cfg)),
      x_(x),
      out_(out),
      store_(store),
      ids_(std::move(ids)),
      log_(core::log::get("agbot")) {
  assert(ids_);
  rollout_controller::hooks h;
  h.start_upgrade = [this](const std::string& slot, const std::string& version) {
    return start_upgrade(slot, version);
  };
  h.publish = [this](const fb::RolloutStatusT& st) {
    x_.put_rollout_status(st, guard([this, p = st.pattern](core::result<void> r) {
                            if (!r) {
                              ++stats_.exchange_errors;
                              log_->warn("rollout {}: PutRolloutStatus failed ({})", p,
                                         r.err().message());
                            }
                          }));
  };
  rollout_ = std::make_unique<rollout_controller>(loop_, &store_.db(), cfg_.org + "/" + cfg_.id,
                                                  std::move(h));
}

engine::~engine() {
  stop();
}

void engine::start() {
  if (started_) return;
  started_ = true;
  load_event_window();
  if (auto r = rollout_->load(); !r) log_->error("cannot load rollouts: {}", r.err().message());
  resume();
  // Held by on_message(): a Reply among them now finds its resumed agreement instead of being
  // answered as if the agreement were over.
  auto held = std::move(before_start_);
  before_start_.clear();
  for (const auto& m : held) on_message(m);
  hello();
  arm_verify();
}

void engine::stop() {
  if (!life_) return;
  life_.reset();
  reply_timers_.clear();
  upgrade_timers_.clear();
  exchange_retries_.clear();
  backoffs_.clear();
  start_retry_.cancel();
  verify_timer_.cancel();
  gap_timer_.cancel();
  resync_timer_.cancel();
  queue_.clear();
  queued_.clear();
}

// ---------------------------------------------------------------------------------------------
// Start-up: resume from the store, then hello, patterns, search.

void engine::resume() {
  auto rows = store_.load_unsettled();
  if (!rows) {
    log_->error("cannot load agreements: {}", rows.err().message());
    return;
  }
  const int64_t now = loop_.time().now_ms();
  std::vector<std::string> expired;
  for (auto& a : *rows) {
    if (a.state == AgreementState::cancelled) {
      if (!a.message_confirmed) send_cancel(a);
      if (!a.exchange_synced) delete_in_exchange(a, 0);
      continue;
    }
    if (a.supersedes.empty())
      live_slots_[a.slot()] = a.id;
    else
      upgrade_slots_[a.slot()] = a.id;
    auto& stored = live_[a.id] = a;
    if (a.state == AgreementState::proposed) {
      ++proposed_count_;
      if (a.deadline_ms <= now) {
        expired.push_back(a.id);
        continue;
      }
      log_->info("agreement {} node {}: resumed as proposed, {} ms left", a.id, a.node(),
                 a.deadline_ms - now);
      reply_timers_[a.id] = loop_.call_after(std::chrono::milliseconds(a.deadline_ms - now),
                                             guard([this, id = a.id] { on_timeout(id); }));
      // Sent again even when the broker had confirmed it: the node's Reply may have reached the
      // process that died (acknowledged to the broker, never handled). The agent answers a
      // repeated proposal with the same Reply.
      send_proposal(stored);
    } else {
      log_->info("agreement {} node {}: resumed as finalized", a.id, a.node());
      if (!a.message_confirmed) send_reply_ack(stored, true, nullptr);
      if (!a.exchange_synced) record_in_exchange(a.id, 0);
      if (!a.supersedes.empty()) {
        // An upgrade the node has not confirmed yet: give it the full time again.
        upgrade_timers_[a.id] = loop_.call_after(
            cfg_.upgrade_timeout, guard([this, id = a.id] {
              auto it = live_.find(id);
              if (it == live_.end() || it->second.supersedes.empty()) return;
              log_->warn("agreement {} node {}: upgrade not confirmed in time", id,
                         it->second.node());
              agreement u = it->second;
              cancel(u, fb::CancelReason::ab_no_data_received, true);
              upgrade_failed(u, static_cast<uint16_t>(fb::CancelReason::ab_no_data_received), true);
            }));
      }
    }
  }
  resume_upgrades();
  // An upgrade still unconfirmed: the node's answer may have reached the process that died
  // before its group committed. Ask the node about both agreements now (on_verify_reply).
  for (const auto& [slot, up_id] : upgrade_slots_) {
    auto up = live_.find(up_id);
    if (up == live_.end() || up->second.state != AgreementState::finalized) continue;
    send_verify(up->second);
    if (auto old = live_slots_.find(slot); old != live_slots_.end())
      if (auto o = live_.find(old->second); o != live_.end()) send_verify(o->second);
  }
  // The reply timeout passed while we were down: cancel (201) and retry after back-off.
  for (const auto& id : expired) on_timeout(id);
}

void engine::on_reconnected() {
  if (!started_ || !life_) return;
  size_t n = 0;
  for (const auto& [id, a] : live_)
    if (a.state == AgreementState::proposed) {
      send_proposal(a);
      ++n;
    }
  if (n)
    log_->info("broker connection back: {} proposal(s) still waiting for a reply sent again", n);
}

void engine::retry_later(std::function<void()> fn) {
  start_retry_ = loop_.call_after(retry_delay(++hello_attempts_), guard(std::move(fn)));
}

void engine::hello() {
  x_.hello(guard([this](core::result<void> r) {
    if (!r) {
      ++stats_.exchange_errors;
      log_->warn("AgbotHello failed ({}), retrying", r.err().message());
      return retry_later([this] { hello(); });
    }
    load_agbot();
  }));
}

void engine::load_agbot() {
  x_.get_agbot(guard([this](core::result<fb::AgbotT> a) {
    if (!a) {
      ++stats_.exchange_errors;
      log_->warn("cannot read agbot {}/{} ({}), retrying", cfg_.org, cfg_.id, a.err().message());
      return retry_later([this] { load_agbot(); });
    }
    hello_attempts_ = 0;
    check_event_counter(a->event_seq);
    for (const auto& p : a->patterns) {
      if (!p) continue;
      auto key = p->pattern_org + "/" + p->pattern;
      patterns_[key].served = *p;
    }
    log_->info("serving {} pattern(s)", patterns_.size());
    auto remaining = std::make_shared<size_t>(patterns_.size() + 1);
    auto one_done = [this, remaining] {
      if (--*remaining > 0) return;
      patterns_loaded_ = true;
      auto early = std::move(early_);
      early_.clear();
      for (auto& r : early) enqueue(std::move(r));
      for (auto& [key, pe] : patterns_)
        if (pe.pattern) {
          ++searches_pending_;
          search(key, {});
        }
    };
    for (auto& [key, pe] : patterns_) load_pattern(key, one_done);
    one_done();
  }));
}

void engine::load_pattern(const std::string& key, std::function<void()> done) {
  auto& served = patterns_[key].served;
  x_.get_pattern(
      served.pattern_org, served.pattern,
      guard([this, key, done = std::move(done)](core::result<fb::PatternT> p) {
        auto& pe = patterns_[key];
        if (!p) {
          ++stats_.exchange_errors;
          log_->warn("pattern {}: cannot load ({}); its nodes are ignored", key, p.err().message());
        } else {
          pe.pattern = std::move(*p);
          ++pe.generation;
          pe.resolved.clear();
          log_->info("pattern {}: loaded, {} service(s)", key, pe.pattern->services.size());
          // The timer armed at start knew no pattern (120 s): a shorter check_agreement_status
          // applies now, not after the first 120 s.
          if (verify_timer_.active() && verify_interval() < verify_every_) arm_verify();
          replan(key);
        }
        if (done) done();
      }));
}

void engine::search(const std::string& key, std::string token) {
  auto& served = patterns_[key].served;
  x_.search_pattern_nodes(
      served, token, cfg_.page_size, guard([this, key, token](core::result<node_page> page) {
        if (!page) {
          ++stats_.exchange_errors;
          log_->warn("pattern {}: node search failed ({}), retrying", key, page.err().message());
          start_retry_ =
              loop_.call_after(retry_delay(1), guard([this, key, token] { search(key, token); }));
          return;
        }
        log_->debug("pattern {}: {} node(s) in page", key, page->nodes.size());
        for (auto& n : page->nodes) {
          consider_request r{n.org, n.id, key, std::move(n), {}};
          enqueue(std::move(r));
        }
        if (!page->next_page_token.empty() && page->next_page_token != token)
          return search(key, page->next_page_token);
        if (searches_pending_ > 0) --searches_pending_;
        log_->info("pattern {}: initial node search done", key);
      }));
}

// ---------------------------------------------------------------------------------------------
// State changes.

bool engine::persist(agreement& a) {
  if (auto r = store_.update(a); !r) {
    log_->error("agreement {} node {}: cannot persist state {}: {}", a.id, a.node(),
                fb::EnumNameAgreementState(a.state), r.err().message());
    return false;
  }
  return true;
}

// `a.exchange_synced` says on entry whether the exchange needs no DeleteAgreement.
void engine::cancel(agreement a, fb::CancelReason reason, bool notify_node) {
  const bool was_proposed = a.state == AgreementState::proposed;
  a.state = AgreementState::cancelled;
  a.reason = static_cast<uint16_t>(reason);
  a.updated_ms = loop_.time().now_ms();
  a.deadline_ms = 0;
  a.message_confirmed = !notify_node;
  if (!persist(a)) return;
  live_.erase(a.id);
  if (auto s = live_slots_.find(a.slot()); s != live_slots_.end() && s->second == a.id)
    live_slots_.erase(s);
  if (auto s = upgrade_slots_.find(a.slot()); s != upgrade_slots_.end() && s->second == a.id)
    upgrade_slots_.erase(s);
  upgrade_timers_.erase(a.id);
  reply_timers_.erase(a.id);
  exchange_retries_.erase(a.id);
  if (was_proposed && proposed_count_ > 0) --proposed_count_;
  log_->info("agreement {} node {}: cancelled ({} {})", a.id, a.node(), static_cast<int>(reason),
             fb::EnumNameCancelReason(reason));
  if (notify_node) send_cancel(a);
  if (!a.exchange_synced) delete_in_exchange(a, 0);
  pump();
}

void engine::record_in_exchange(const std::string& id, int attempt) {
  auto it = live_.find(id);
  if (it == live_.end() || it->second.state != AgreementState::finalized) return;
  const auto& a = it->second;
  x_.put_agreement(
      exchange_client::finalized_agreement_record(a, a.node_org, a.node_id,
                                                  cfg_.org + "/" + cfg_.id, a.updated_ms),
      guard([this, id, attempt](core::result<void> r) {
        if (r) {
          (void)store_.set_exchange_synced(id);
          if (auto it = live_.find(id); it != live_.end()) it->second.exchange_synced = true;
          return;
        }
        ++stats_.exchange_errors;
        log_->warn("agreement {}: PutAgreement failed ({}), retrying", id, r.err().message());
        exchange_retries_[id] =
            loop_.call_after(retry_delay(attempt + 1),
                             guard([this, id, attempt] { record_in_exchange(id, attempt + 1); }));
      }));
}

void engine::delete_in_exchange(agreement a, int attempt) {
  x_.delete_agreement(a.node_org, a.node_id, a.id, guard([this, a, attempt](core::result<void> r) {
                        if (r || r.code() == make_error_code(errc::not_found)) {
                          (void)store_.set_exchange_synced(a.id);
                          return;
                        }
                        ++stats_.exchange_errors;
                        log_->warn("agreement {} node {}: DeleteAgreement failed ({}), retrying",
                                   a.id, a.node(), r.err().message());
                        exchange_retries_[a.id] = loop_.call_after(
                            retry_delay(attempt + 1),
                            guard([this, a, attempt] { delete_in_exchange(a, attempt + 1); }));
                      }));
}

std::chrono::milliseconds engine::retry_delay(int attempt) const {
  auto d = cfg_.retry_min;
  for (int i = 1; i < attempt && d < cfg_.retry_max; ++i) d *= 2;
  return std::min(d, cfg_.retry_max);
}

void engine::backoff(const std::string& slot, const std::string& node_org,
                     const std::string& node_id, const std::string& pattern) {
  if (!life_) return;
  auto& b = backoffs_[slot];
  ++b.attempts;
  auto delay = retry_delay(b.attempts);
  log_->info("node {}/{}: next proposal for {} in {} ms (attempt {})", node_org, node_id, pattern,
             delay.count(), b.attempts + 1);
  b.timer = loop_.call_after(delay, guard([this, node_org, node_id, pattern] {
                               enqueue({node_org, node_id, pattern, {}, {}});
                             }));
}

bool engine::backing_off(const std::string& slot) const {
  auto it = backoffs_.find(slot);
  return it != backoffs_.end() && it->second.timer.active();
}

uint32_t engine::expiry_s() const {
  auto s = (cfg_.reply_timeout.count() + 999) / 1000;
  return static_cast<uint32_t>(std::max<int64_t>(s, 1));
}

std::optional<uint16_t> engine::node_reason(const std::string& id) const {
  auto it = node_reasons_.find(id);
  if (it == node_reasons_.end()) return std::nullopt;
  return it->second;
}

bool engine::cancel_agreement(const std::string& id) {
  auto it = live_.find(id);
  if (it == live_.end()) return false;
  agreement a = it->second;
  log_->info("agreement {} node {}: cancel requested by the operator", a.id, a.node());
  cancel(a, fb::CancelReason::ab_user_requested, true);
  backoff(a.slot(), a.node_org, a.node_id, a.pattern);
  return true;
}

std::vector<agreement> engine::live_agreements() const {
  std::vector<agreement> out;
  for (const auto& [id, a] : live_) out.push_back(a);
  std::sort(out.begin(), out.end(),
            [](const auto& x, const auto& y) { return x.created_ms < y.created_ms; });
  return out;
}

}  // namespace hmq::agbot
