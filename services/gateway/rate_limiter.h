// Per-key token buckets: `rate` tokens per second refill a bucket that holds
// at most `burst`; each call takes one token or is refused with the time
// until one is available.
//
// Buckets live in a sharded map (one short critical section per call). A
// bucket that has been idle long enough to be full again is the same as no
// bucket at all, so each shard drops such buckets in a sweep at most once
// per refill period: memory is bounded by the keys active in the last two
// refill periods.
//
//   RateLimiter sends({.rate_per_s = 20, .burst = 200});
//   RateLimiter::Decision d = sends.TryAcquire(user_id);
//   if (!d.allowed) return RateLimitedError("send", d.retry_after);
#ifndef PARLEY_SERVICES_GATEWAY_RATE_LIMITER_H_
#define PARLEY_SERVICES_GATEWAY_RATE_LIMITER_H_

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>

#include "absl/base/thread_annotations.h"

namespace parley::gateway {

class RateLimiter {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  struct Options {
    // Tokens added per second; 0 or less: unlimited (every call allowed).
    double rate_per_s = 0;
    // Bucket capacity: how many calls may come at once after a quiet
    // period. At least 1.
    double burst = 1;
    // Time source; default std::chrono::steady_clock::now.
    Clock clock = {};
  };

  struct Decision {
    bool allowed = true;
    // When refused: how long until a token is available (at least 1 ms).
    std::chrono::milliseconds retry_after{0};
  };

  explicit RateLimiter(Options options);

  // Takes one token from `key`'s bucket.
  Decision TryAcquire(int64_t key);

  bool unlimited() const { return rate_ <= 0; }
  // Buckets currently held (for tests and metrics).
  size_t size() const;

 private:
  static constexpr int kShards = 32;
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<int64_t, Bucket> buckets ABSL_GUARDED_BY(mu);
    std::chrono::steady_clock::time_point next_sweep ABSL_GUARDED_BY(mu);
  };

  Shard& ShardFor(int64_t key);
  // Drops the shard's buckets that are full again.
  void SweepLocked(Shard& shard, std::chrono::steady_clock::time_point now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);

  const double rate_;
  const double burst_;
  // Time an empty bucket takes to become full.
  const std::chrono::nanoseconds refill_;
  const Clock clock_;
  std::array<Shard, kShards> shards_;
};

}  // namespace parley::gateway

#endif  // PARLEY_SERVICES_GATEWAY_RATE_LIMITER_H_
