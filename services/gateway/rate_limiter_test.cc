#include "services/gateway/rate_limiter.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace parley::gateway {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// A clock the test moves by hand.
class FakeClock {
 public:
  RateLimiter::Clock AsClock() {
    return [this] { return now_; };
  }
  void Advance(steady_clock::duration d) { now_ += d; }

 private:
  steady_clock::time_point now_ = steady_clock::time_point() + std::chrono::hours(1);
};

TEST(RateLimiterTest, BurstThenRefusedWithRetryAfter) {
  FakeClock clock;
  RateLimiter limiter({.rate_per_s = 10, .burst = 3, .clock = clock.AsClock()});
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.TryAcquire(7).allowed) << i;
  RateLimiter::Decision d = limiter.TryAcquire(7);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, milliseconds(100));  // one token per 100 ms
  clock.Advance(milliseconds(40));
  d = limiter.TryAcquire(7);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, milliseconds(60));
  // Waiting exactly as long as told is enough.
  clock.Advance(d.retry_after);
  EXPECT_TRUE(limiter.TryAcquire(7).allowed);
  EXPECT_FALSE(limiter.TryAcquire(7).allowed);
}

TEST(RateLimiterTest, RefillsAtTheRateAndCapsAtBurst) {
  FakeClock clock;
  RateLimiter limiter({.rate_per_s = 2, .burst = 4, .clock = clock.AsClock()});
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(limiter.TryAcquire(1).allowed);
  ASSERT_FALSE(limiter.TryAcquire(1).allowed);
  clock.Advance(std::chrono::seconds(1));  // two tokens
  EXPECT_TRUE(limiter.TryAcquire(1).allowed);
  EXPECT_TRUE(limiter.TryAcquire(1).allowed);
  EXPECT_FALSE(limiter.TryAcquire(1).allowed);
  clock.Advance(std::chrono::hours(1));  // never more than the burst
  int allowed = 0;
  while (limiter.TryAcquire(1).allowed) ++allowed;
  EXPECT_EQ(allowed, 4);
}

TEST(RateLimiterTest, KeysAreIndependent) {
  FakeClock clock;
  RateLimiter limiter({.rate_per_s = 1, .burst = 1, .clock = clock.AsClock()});
  EXPECT_TRUE(limiter.TryAcquire(1).allowed);
  EXPECT_FALSE(limiter.TryAcquire(1).allowed);
  EXPECT_TRUE(limiter.TryAcquire(2).allowed);
  EXPECT_TRUE(limiter.TryAcquire(3).allowed);
  EXPECT_FALSE(limiter.TryAcquire(2).allowed);
}

TEST(RateLimiterTest, ZeroRateIsUnlimitedAndHoldsNothing) {
  RateLimiter limiter({.rate_per_s = 0, .burst = 1});
  EXPECT_TRUE(limiter.unlimited());
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(limiter.TryAcquire(i % 3).allowed);
  EXPECT_EQ(limiter.size(), 0u);
}

TEST(RateLimiterTest, IdleBucketsAreEvicted) {
  FakeClock clock;
  // Refill time: 5 tokens at 10/s = 500 ms; sweeps at most once a second.
  RateLimiter limiter({.rate_per_s = 10, .burst = 5, .clock = clock.AsClock()});
  for (int64_t user = 1; user <= 10000; ++user) {
    ASSERT_TRUE(limiter.TryAcquire(user).allowed);
  }
  EXPECT_EQ(limiter.size(), 10000u);
  clock.Advance(std::chrono::seconds(2));
  // Every shard sweeps on its next call; the keys used since keep theirs.
  for (int round = 0; round < 3; ++round) {
    for (int64_t user = 20001; user <= 20200; ++user) limiter.TryAcquire(user);
  }
  EXPECT_EQ(limiter.size(), 200u);
}

TEST(RateLimiterTest, EvictionForgetsNothingThatMatters) {
  FakeClock clock;
  RateLimiter limiter({.rate_per_s = 1, .burst = 2, .clock = clock.AsClock()});
  // Drain user 1, then let the other keys trigger sweeps before the bucket
  // refills: the drained bucket must survive them.
  ASSERT_TRUE(limiter.TryAcquire(1).allowed);
  ASSERT_TRUE(limiter.TryAcquire(1).allowed);
  ASSERT_FALSE(limiter.TryAcquire(1).allowed);
  for (int step = 0; step < 3; ++step) {
    clock.Advance(milliseconds(500));
    for (int64_t user = 100; user < 400; ++user) limiter.TryAcquire(user);
  }
  // 1.5 s later: 1.5 tokens, so one call, not two.
  EXPECT_TRUE(limiter.TryAcquire(1).allowed);
  EXPECT_FALSE(limiter.TryAcquire(1).allowed);
}

TEST(RateLimiterTest, ConcurrentCallersNeverExceedTheBurst) {
  FakeClock clock;  // time stands still: only the burst is available
  RateLimiter limiter({.rate_per_s = 1, .burst = 100, .clock = clock.AsClock()});
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (limiter.TryAcquire(42).allowed) ++allowed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 100);
}

TEST(RateLimiterTest, RealClockByDefault) {
  RateLimiter limiter({.rate_per_s = 50, .burst = 1});
  ASSERT_TRUE(limiter.TryAcquire(1).allowed);
  RateLimiter::Decision d = limiter.TryAcquire(1);
  ASSERT_FALSE(d.allowed);
  EXPECT_LE(d.retry_after, milliseconds(20));
  std::this_thread::sleep_for(d.retry_after + milliseconds(5));
  EXPECT_TRUE(limiter.TryAcquire(1).allowed);
}

}  // namespace
}  // namespace parley::gateway
