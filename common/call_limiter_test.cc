#include "common/call_limiter.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace parley {
namespace {

TEST(CallLimiterTest, RunsAtMostTheLimitAndTheRestInOrder) {
  CallLimiter limiter({.max_in_flight = 2, .max_waiting = 10});
  std::vector<int> started;
  std::vector<std::function<void()>> finish;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(limiter.Run([&, i](std::function<void()> done) {
      started.push_back(i);
      finish.push_back(std::move(done));
    }));
  }
  EXPECT_EQ(started, (std::vector<int>{0, 1}));
  EXPECT_EQ(limiter.in_flight(), 2u);
  EXPECT_EQ(limiter.waiting(), 3u);
  finish[1]();  // a slot frees: the oldest waiting call takes it
  EXPECT_EQ(started, (std::vector<int>{0, 1, 2}));
  finish[0]();
  finish[2]();
  EXPECT_EQ(started, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(limiter.waiting(), 0u);
  finish[3]();
  finish[4]();
  EXPECT_EQ(limiter.in_flight(), 0u);
}

TEST(CallLimiterTest, DropsBeyondTheQueueBound) {
  CallLimiter limiter({.max_in_flight = 1, .max_waiting = 1});
  std::function<void()> first_done;
  int ran = 0;
  ASSERT_TRUE(limiter.Run([&](std::function<void()> done) {
    ++ran;
    first_done = std::move(done);
  }));
  ASSERT_TRUE(limiter.Run([&](std::function<void()> done) {
    ++ran;
    done();
  }));
  EXPECT_FALSE(limiter.Run([&](std::function<void()> done) {
    ++ran;
    done();
  }));
  first_done();
  EXPECT_EQ(ran, 2);
  EXPECT_EQ(limiter.in_flight(), 0u);
}

TEST(CallLimiterTest, CallsThatFinishAtOnceAndOnOtherThreads) {
  CallLimiter limiter({.max_in_flight = 4, .max_waiting = 100000});
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  std::mutex mu;
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(limiter.Run([&, i](std::function<void()> done) {
      if (i % 2 == 0) {
        ++finished;
        done();  // synchronously
        return;
      }
      std::lock_guard<std::mutex> lock(mu);
      threads.emplace_back([&, done = std::move(done)] {
        ++finished;
        done();
      });
    }));
  }
  // Every call eventually runs: the threads' completions start the rest.
  for (;;) {
    std::vector<std::thread> batch;
    {
      std::lock_guard<std::mutex> lock(mu);
      batch.swap(threads);
    }
    if (batch.empty()) break;
    for (auto& t : batch) t.join();
  }
  EXPECT_EQ(finished.load(), 2000);
  EXPECT_EQ(limiter.in_flight(), 0u);
  EXPECT_EQ(limiter.waiting(), 0u);
}

TEST(CallLimiterTest, CloseDropsTheWaitingAndLetsTheRunningFinish) {
  CallLimiter limiter({.max_in_flight = 2, .max_waiting = 10});
  std::vector<std::function<void()>> dones;
  int started = 0;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(limiter.Run([&](std::function<void()> done) {
      ++started;
      dones.push_back(std::move(done));
    }));
  }
  ASSERT_EQ(started, 2);
  limiter.Close();
  EXPECT_EQ(limiter.waiting(), 0u);
  EXPECT_FALSE(limiter.Run([&](std::function<void()>) { ++started; }));
  EXPECT_EQ(limiter.in_flight(), 2u);
  // The calls in flight finish; their slots pass to no waiting call.
  for (auto& done : dones) done();
  EXPECT_EQ(started, 2);
  EXPECT_EQ(limiter.in_flight(), 0u);
}

}  // namespace
}  // namespace parley
