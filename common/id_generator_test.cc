#include "common/id_generator.h"

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace parley {
namespace {

TEST(IdGeneratorTest, EncodesTimeNodeAndSequence) {
  int64_t now = IdGenerator::kEpochMs + 123456;
  IdGenerator ids(7, [&] { return now; });
  const int64_t a = ids.Next();
  const int64_t b = ids.Next();
  EXPECT_EQ(IdGenerator::TimestampMs(a), now);
  EXPECT_EQ(IdGenerator::Node(a), 7);
  EXPECT_EQ(IdGenerator::Sequence(a), 0);
  EXPECT_EQ(IdGenerator::Sequence(b), 1);
  now += 1;
  const int64_t c = ids.Next();
  EXPECT_EQ(IdGenerator::TimestampMs(c), now);
  EXPECT_EQ(IdGenerator::Sequence(c), 0);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_GT(a, 0);
}

TEST(IdGeneratorTest, SequenceOverflowBorrowsTheNextMillisecond) {
  const int64_t now = IdGenerator::kEpochMs + 5000;
  IdGenerator ids(1, [&] { return now; });
  int64_t last = 0;
  for (int i = 0; i < 5000; ++i) {
    const int64_t id = ids.Next();
    ASSERT_GT(id, last);
    last = id;
  }
  EXPECT_EQ(IdGenerator::TimestampMs(last), now + 1);
}

TEST(IdGeneratorTest, ClockGoingBackwardsStillIncreases) {
  int64_t now = IdGenerator::kEpochMs + 100000;
  IdGenerator ids(3, [&] { return now; });
  const int64_t before = ids.Next();
  now -= 50000;
  const int64_t after = ids.Next();
  EXPECT_GT(after, before);
  EXPECT_EQ(IdGenerator::Node(after), 3);
}

TEST(IdGeneratorTest, RejectsBadNodeIds) {
  EXPECT_FALSE(IdGenerator::Create(-1).ok());
  EXPECT_FALSE(IdGenerator::Create(1024).ok());
  auto ok = IdGenerator::Create(1023);
  ASSERT_TRUE(ok.ok());
  delete *ok;
}

TEST(IdGeneratorTest, UniqueAcrossThreads) {
  IdGenerator ids(9);
  constexpr int kThreads = 8, kPerThread = 20000;
  std::vector<std::vector<int64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) got[t].push_back(ids.Next());
    });
  }
  for (auto& th : threads) th.join();
  std::set<int64_t> all;
  for (const auto& v : got) {
    for (size_t i = 1; i < v.size(); ++i) ASSERT_LT(v[i - 1], v[i]);
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), size_t{kThreads * kPerThread});
}

}  // namespace
}  // namespace parley
