#include "common/held_deliveries.h"

#include <gtest/gtest.h>

namespace parley {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::seconds;

std::vector<int> Values(const std::vector<std::shared_ptr<const int>>& items) {
  std::vector<int> out;
  for (const auto& i : items) out.push_back(*i);
  return out;
}

TEST(HeldDeliveriesTest, TakeReturnsInOrderOnce) {
  HeldDeliveries<int> held({.per_gateway = 10, .gateways = 4, .hold_for = seconds(5)});
  const auto t0 = Clock::now();
  ASSERT_TRUE(held.Hold("gw", std::make_shared<int>(1), t0));
  ASSERT_TRUE(held.Hold("gw", std::make_shared<int>(2), t0));
  ASSERT_TRUE(held.Hold("other", std::make_shared<int>(9), t0));
  EXPECT_EQ(Values(held.Take("gw", t0 + seconds(1))), (std::vector<int>{1, 2}));
  EXPECT_TRUE(held.Take("gw", t0 + seconds(1)).empty());
  EXPECT_EQ(Values(held.Take("other", t0)), (std::vector<int>{9}));
  EXPECT_EQ(held.gateways(), 0u);
}

TEST(HeldDeliveriesTest, ExpiresAfterHoldTime) {
  HeldDeliveries<int> held({.per_gateway = 10, .gateways = 4, .hold_for = seconds(5)});
  const auto t0 = Clock::now();
  held.Hold("gw", std::make_shared<int>(1), t0);
  held.Hold("gw", std::make_shared<int>(2), t0 + seconds(4));
  EXPECT_EQ(Values(held.Take("gw", t0 + seconds(6))), (std::vector<int>{2}));
}

TEST(HeldDeliveriesTest, KeepsTheNewestWhenAGatewayOverflows) {
  HeldDeliveries<int> held({.per_gateway = 3, .gateways = 4, .hold_for = seconds(5)});
  const auto t0 = Clock::now();
  for (int i = 1; i <= 5; ++i) held.Hold("gw", std::make_shared<int>(i), t0);
  EXPECT_EQ(Values(held.Take("gw", t0)), (std::vector<int>{3, 4, 5}));
}

TEST(HeldDeliveriesTest, BoundsTheNumberOfGateways) {
  HeldDeliveries<int> held({.per_gateway = 3, .gateways = 2, .hold_for = seconds(5)});
  const auto t0 = Clock::now();
  EXPECT_TRUE(held.Hold("a", std::make_shared<int>(1), t0));
  EXPECT_TRUE(held.Hold("b", std::make_shared<int>(1), t0));
  EXPECT_FALSE(held.Hold("c", std::make_shared<int>(1), t0));
  // Once the others expired, a new gateway fits again.
  EXPECT_TRUE(held.Hold("c", std::make_shared<int>(1), t0 + seconds(6)));
  EXPECT_EQ(held.gateways(), 1u);
}

}  // namespace
}  // namespace parley
