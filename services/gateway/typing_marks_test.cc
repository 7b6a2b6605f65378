#include "services/gateway/typing_marks.h"

#include <gtest/gtest.h>

namespace parley::gateway {
namespace {

using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

struct FakeClock {
  Clock::time_point now = Clock::time_point() + seconds(1000);
  std::function<Clock::time_point()> Fn() {
    return [this] { return now; };
  }
};

TEST(TypingMarksTest, ASendEndsTheIndicatorOnce) {
  FakeClock clock;
  TypingMarks marks({.max_age = seconds(30), .clock = clock.Fn()});
  EXPECT_FALSE(marks.Take(1, 10)) << "never typed";
  marks.Set(1, 10, true);
  EXPECT_FALSE(marks.Take(1, 11)) << "another chat";
  EXPECT_FALSE(marks.Take(2, 10)) << "another user";
  EXPECT_TRUE(marks.Take(1, 10));
  EXPECT_FALSE(marks.Take(1, 10)) << "the send already ended it";
}

TEST(TypingMarksTest, AStopClearsTheMark) {
  TypingMarks marks({});
  marks.Set(1, 10, true);
  marks.Set(1, 10, false);
  EXPECT_FALSE(marks.Take(1, 10));
  EXPECT_EQ(marks.size(), 0u);
}

TEST(TypingMarksTest, ARefreshKeepsTheMarkFresh) {
  FakeClock clock;
  TypingMarks marks({.max_age = seconds(30), .clock = clock.Fn()});
  marks.Set(1, 10, true);
  clock.now += seconds(20);
  marks.Set(1, 10, true);
  clock.now += seconds(20);
  EXPECT_TRUE(marks.Take(1, 10)) << "refreshed 20 s ago";
}

TEST(TypingMarksTest, AStaleMarkEndsNothing) {
  FakeClock clock;
  TypingMarks marks({.max_age = seconds(30), .clock = clock.Fn()});
  marks.Set(1, 10, true);
  clock.now += seconds(31);
  EXPECT_FALSE(marks.Take(1, 10));
  EXPECT_EQ(marks.size(), 0u);
}

TEST(TypingMarksTest, StaysBoundedAndKeepsTheNewest) {
  FakeClock clock;
  TypingMarks marks(
      {.max_age = seconds(30), .max_marks = 100, .clock = clock.Fn()});
  for (int64_t u = 1; u <= 100; ++u) marks.Set(u, 10, true);
  clock.now += seconds(31);  // all of those are stale now
  for (int64_t u = 101; u <= 150; ++u) {
    clock.now += seconds(1);
    marks.Set(u, 10, true);
  }
  EXPECT_LE(marks.size(), 100u);
  EXPECT_TRUE(marks.Take(150, 10));
  // All fresh and over the bound: the oldest half goes.
  for (int64_t u = 151; u <= 260; ++u) {
    clock.now += std::chrono::milliseconds(10);
    marks.Set(u, 10, true);
  }
  EXPECT_LE(marks.size(), 100u);
  EXPECT_TRUE(marks.Take(260, 10)) << "the newest mark was dropped";
}

}  // namespace
}  // namespace parley::gateway
