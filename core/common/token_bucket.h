#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <unordered_map>

// Per-key token buckets: `rate` tokens a second, at most `burst` saved up. Time comes from the
// caller (unix or steady ms), so tests move it by hand. Used against floods from one sender:
// the exchange's RPC handling and every mailbox (core/bus/messenger).
//
// Memory is bounded: when max_keys buckets exist, buckets that have refilled completely (their
// sender is idle, so forgetting them loses nothing) are dropped; if none has, all are dropped
// (a flood from more keys than max_keys then degrades to "no limit for a moment", never to
// unbounded memory). Not thread-safe: one owner (a loop thread).
namespace hmq::core {

struct token_bucket_options {
  double rate = 0;   // tokens per second; 0 disables the limiter (everything allowed)
  double burst = 0;  // bucket size; taken as at least 1
  size_t max_keys = 100'000;
};

// What take() decided. `first_in_window`: this is the first rejection since the key was last
// allowed, so a caller that answers rejections (RpcStatus rate_limited) answers at most once per
// exhausted window instead of once per message.
struct token_bucket_decision {
  bool allowed = true;
  bool first_in_window = false;
};

template <typename Key, typename Hash = std::hash<Key>>
class token_buckets {
 public:
  explicit token_buckets(token_bucket_options o = {}) : opts_(o) {
    opts_.burst = std::max(opts_.burst, 1.0);
  }

  bool enabled() const { return opts_.rate > 0; }
  const token_bucket_options& options() const { return opts_; }

  token_bucket_decision take(const Key& k, int64_t now_ms) {
    if (!enabled()) return {};
    auto it = buckets_.find(k);
    if (it == buckets_.end()) {
      if (buckets_.size() >= opts_.max_keys) trim(now_ms);
      it = buckets_.emplace(k, bucket{opts_.burst, now_ms, false}).first;
    }
    bucket& b = it->second;
    refill(b, now_ms);
    if (b.tokens >= 1.0) {
      b.tokens -= 1.0;
      b.notified = false;
      return {true, false};
    }
    ++rejected_;
    const bool first = !b.notified;
    b.notified = true;
    return {false, first};
  }

  uint64_t rejected() const { return rejected_; }
  size_t keys() const { return buckets_.size(); }

 private:
  struct bucket {
    double tokens;
    int64_t last_ms;
    bool notified;  // a rejection was reported since the last allowed take
  };

  void refill(bucket& b, int64_t now_ms) const {
    if (now_ms > b.last_ms) {
      b.tokens = std::min(opts_.burst, b.tokens + (now_ms - b.last_ms) * opts_.rate / 1000.0);
      b.last_ms = now_ms;
    }
  }

  void trim(int64_t now_ms) {
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      refill(it->second, now_ms);
      it = it->second.tokens >= opts_.burst ? buckets_.erase(it) : std::next(it);
    }
    if (buckets_.size() >= opts_.max_keys) buckets_.clear();
  }

  token_bucket_options opts_;
  std::unordered_map<Key, bucket, Hash> buckets_;
  uint64_t rejected_ = 0;
};

}  // namespace hmq::core
