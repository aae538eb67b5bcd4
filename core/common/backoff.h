#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

// Exponential back-off with +-25 % jitter, for anything that reconnects to a peer that went away
// (the MQTT broker, the Docker Engine's events stream). The jitter keeps a fleet that lost its
// broker at the same moment from reconnecting in lock-step. Not thread-safe: one owner.
//
// next() returns the delay to wait before the next attempt and doubles the base up to `max`;
// reset() after a success starts again from `min`.
namespace hmq::core {

class backoff {
 public:
  backoff(std::chrono::milliseconds min, std::chrono::milliseconds max, uint32_t seed = 0)
      : min_(std::max(min, std::chrono::milliseconds(1))),
        max_(std::max(max, min_)),
        base_(min_),
        rng_(seed ? seed : std::random_device{}()) {}

  std::chrono::milliseconds next() {
    std::uniform_real_distribution<double> jitter(0.75, 1.25);
    const auto d = std::chrono::milliseconds(static_cast<int64_t>(base_.count() * jitter(rng_)));
    base_ = std::min(base_ * 2, max_);
    return std::max(d, std::chrono::milliseconds(1));
  }
  void reset() { base_ = min_; }
  std::chrono::milliseconds base() const { return base_; }

 private:
  std::chrono::milliseconds min_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds base_;
  std::minstd_rand rng_;
};

}  // namespace hmq::core
