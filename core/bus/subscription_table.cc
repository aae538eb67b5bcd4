#include "core/bus/subscription_table.h"

#include <utility>

#include "core/bus/topic_filter.h"

namespace hmq::core::bus {

bool subscription_table::is_pattern(std::string_view f) {
  return f.find_first_of("+#") != std::string_view::npos || f.starts_with("$share/");
}

uint32_t subscription_table::take_id() {
  // 1 .. 268,435,455 (a variable byte integer); an id is never reused while its filter lives.
  do {
    next_id_ = next_id_ % 268435455u + 1;
  } while (filter_of_id_.contains(next_id_));
  return next_id_;
}

subscription_table::entry& subscription_table::add(const std::string& filter, int qos, handler h) {
  if (is_pattern(filter)) patterns_.insert(filter);
  auto& e = subs_[filter];
  if (e.id == 0) {
    e.id = take_id();
    filter_of_id_.emplace(e.id, filter);
  }
  if (e.qos != qos) e.confirmed = false;
  e.qos = qos;
  e.h = std::move(h);
  return e;
}

std::optional<std::vector<completion>> subscription_table::remove(const std::string& filter) {
  auto it = subs_.find(filter);
  if (it == subs_.end()) return std::nullopt;
  auto waiting = std::exchange(it->second.waiting, {});
  filter_of_id_.erase(it->second.id);
  subs_.erase(it);
  patterns_.erase(filter);
  return waiting;
}

subscription_table::entry* subscription_table::find(const std::string& filter) {
  auto it = subs_.find(filter);
  return it == subs_.end() ? nullptr : &it->second;
}

std::optional<std::vector<completion>> subscription_table::settle(const std::string& filter,
                                                                  uint64_t op, suback outcome) {
  auto it = subs_.find(filter);
  if (it == subs_.end() || it->second.in_flight != op) return std::nullopt;  // gone or superseded
  it->second.in_flight = 0;
  if (outcome == suback::lost) return std::nullopt;
  if (outcome == suback::granted) it->second.confirmed = true;
  return std::exchange(it->second.waiting, {});
}

std::vector<std::string> subscription_table::resubscribe_after_connect(bool session_present) {
  std::vector<std::string> filters;
  filters.reserve(subs_.size());
  for (auto& [filter, e] : subs_) {
    if (!session_present) e.confirmed = false;
    e.in_flight = 0;  // SUBSCRIBEs of the previous connection are gone
    filters.push_back(filter);
  }
  return filters;
}

std::vector<handler> subscription_table::route(const inbound& in) const {
  std::vector<handler> targets;
  for (uint32_t sid : in.subscription_ids) {
    auto f = filter_of_id_.find(sid);
    if (f == filter_of_id_.end()) continue;
    auto it = subs_.find(f->second);
    if (it != subs_.end() && topic_matches(it->first, in.topic)) targets.push_back(it->second.h);
  }
  if (!targets.empty()) return targets;
  if (auto it = subs_.find(in.topic); it != subs_.end() && !is_pattern(it->first))
    targets.push_back(it->second.h);
  for (const auto& filter : patterns_) {
    if (auto it = subs_.find(filter); it != subs_.end() && topic_matches(filter, in.topic))
      targets.push_back(it->second.h);
  }
  return targets;
}

std::vector<completion> subscription_table::take_all_waiters() {
  std::vector<completion> waiters;
  for (auto& [filter, e] : subs_) {
    for (auto& w : e.waiting) waiters.push_back(std::move(w));
    e.waiting.clear();
  }
  return waiters;
}

}  // namespace hmq::core::bus
