#include "common/thread_pool.h"

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "gtest/gtest.h"

namespace parley {
namespace {

TEST(ThreadPoolTest, RunsEverythingSubmitted) {
  std::atomic<int> n{0};
  {
    ThreadPool pool("t", 4, 100000);
    for (int i = 0; i < 10000; ++i) {
      ASSERT_TRUE(pool.TrySubmit([&] { ++n; }));
    }
  }  // destructor drains
  EXPECT_EQ(n.load(), 10000);
}

TEST(ThreadPoolTest, RefusesWhenTheQueueIsFull) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  ThreadPool pool("t", 1, 2);
  auto block = [&] {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return release; });
  };
  ASSERT_TRUE(pool.TrySubmit(block));
  // The worker may or may not have taken the first task yet.
  int accepted = 0;
  for (int i = 0; i < 5; ++i) accepted += pool.TrySubmit([] {});
  EXPECT_GE(accepted, 1);
  EXPECT_LE(accepted, 2);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
}

// Shutdown is how a service makes sure no queued task outlives what it
// uses: everything queued has run when it returns, and nothing new starts.
TEST(ThreadPoolTest, ShutdownRunsWhatIsQueuedAndRefusesTheRest) {
  std::atomic<int> ran{0};
  std::atomic<int> refused{0};
  ThreadPool pool("t", 2, 1000);
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(pool.TrySubmit([&] {
      ++ran;
      // A task that submits more while the pool shuts down is refused.
      if (!pool.TrySubmit([&] { ++ran; })) ++refused;
    }));
  }
  pool.Shutdown();
  const int after = ran.load();
  EXPECT_GE(after, 500);
  EXPECT_EQ(after + refused.load(), 1000);
  EXPECT_FALSE(pool.TrySubmit([&] { ++ran; }));
  pool.Shutdown();  // again: nothing to do
  EXPECT_EQ(ran.load(), after);
}

}  // namespace
}  // namespace parley
