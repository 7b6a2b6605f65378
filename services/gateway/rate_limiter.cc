#include "services/gateway/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace parley::gateway {
namespace {

using std::chrono::nanoseconds;
using std::chrono::steady_clock;

nanoseconds RefillTime(double rate, double burst) {
  if (rate <= 0) return nanoseconds(0);
  return nanoseconds(static_cast<int64_t>(std::ceil(burst / rate * 1e9)));
}

}  // namespace

RateLimiter::RateLimiter(Options options)
    : rate_(options.rate_per_s),
      burst_(std::max(1.0, options.burst)),
      refill_(RefillTime(rate_, burst_)),
      clock_(options.clock ? std::move(options.clock)
                           : Clock([] { return steady_clock::now(); })) {}

RateLimiter::Shard& RateLimiter::ShardFor(int64_t key) {
  // User ids are sequential: mix them so that shards fill evenly.
  const uint64_t h = static_cast<uint64_t>(key) * 0x9E3779B97F4A7C15ull;
  return shards_[(h >> 32) % kShards];
}

RateLimiter::Decision RateLimiter::TryAcquire(int64_t key) {
  if (unlimited()) return {};
  const steady_clock::time_point now = clock_();
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (now >= shard.next_sweep) SweepLocked(shard, now);
  auto [it, fresh] = shard.buckets.try_emplace(key, Bucket{burst_, now});
  Bucket& b = it->second;
  if (!fresh && now > b.last) {
    const double elapsed_s =
        std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(burst_, b.tokens + elapsed_s * rate_);
    b.last = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return {};
  }
  const double wait_ms = std::ceil((1.0 - b.tokens) / rate_ * 1000.0);
  Decision d;
  d.allowed = false;
  d.retry_after = std::chrono::milliseconds(
      std::max<int64_t>(1, static_cast<int64_t>(wait_ms)));
  return d;
}

void RateLimiter::SweepLocked(Shard& shard, steady_clock::time_point now) {
  for (auto it = shard.buckets.begin(); it != shard.buckets.end();) {
    if (now - it->second.last >= refill_) {
      it = shard.buckets.erase(it);
    } else {
      ++it;
    }
  }
  shard.next_sweep =
      now + std::max<nanoseconds>(refill_, std::chrono::seconds(1));
}

size_t RateLimiter::size() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    n += shard.buckets.size();
  }
  return n;
}

}  // namespace parley::gateway
