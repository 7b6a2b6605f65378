#include "common/owner_alarm.h"

#include <atomic>
#include <chrono>
#include <future>

#include "gtest/gtest.h"

namespace parley {
namespace {

using std::chrono::milliseconds;
using std::chrono::system_clock;

// The alarm's callback runs on gRPC's threads, which TSan cannot see into
// (hence the OverGrpc names, left out of the TSan run).
TEST(OwnerAlarmTest, FiresWhileAttachedOverGrpc) {
  std::promise<void> fired;
  OwnerAlarm alarm;
  alarm.Set(system_clock::now() + milliseconds(10), [&] { fired.set_value(); });
  EXPECT_EQ(fired.get_future().wait_for(std::chrono::seconds(10)),
            std::future_status::ready);
}

TEST(OwnerAlarmTest, DoesNotFireAfterDetachOverGrpc) {
  std::atomic<bool> reached{false};
  OwnerAlarm detached;
  detached.Set(system_clock::now() + milliseconds(20), [&] { reached = true; });
  detached.Detach();
  // A later alarm marks the time by which the first one has fired.
  std::promise<void> later;
  OwnerAlarm marker;
  marker.Set(system_clock::now() + milliseconds(300),
             [&] { later.set_value(); });
  ASSERT_EQ(later.get_future().wait_for(std::chrono::seconds(10)),
            std::future_status::ready);
  EXPECT_FALSE(reached);
}

}  // namespace
}  // namespace parley
