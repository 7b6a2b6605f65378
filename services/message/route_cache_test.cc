#include "services/message/route_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace parley::message {
namespace {

namespace internal = ::parley::internal::v1;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

internal::RouteChanges Frame(std::vector<int64_t> users, bool reset = false,
                             bool tracking = true) {
  internal::RouteChanges f;
  f.mutable_user_ids()->Add(users.begin(), users.end());
  f.set_reset(reset);
  f.set_tracking(tracking);
  return f;
}

internal::GetRoutesResponse Found(
    std::vector<std::pair<std::string, std::vector<int64_t>>> gateways) {
  internal::GetRoutesResponse r;
  for (auto& [id, users] : gateways) {
    auto* g = r.add_gateways();
    g->set_gateway_id(id);
    g->mutable_user_ids()->Add(users.begin(), users.end());
  }
  return r;
}

// The gateways `routes` names for `user`, sorted.
std::vector<std::string> GatewaysOf(const RouteMap& routes, int64_t user) {
  std::vector<std::string> out;
  auto it = routes.where.find(user);
  if (it == routes.where.end()) return out;
  for (int g : it->second) out.push_back(routes.gateways[g]);
  std::sort(out.begin(), out.end());
  return out;
}

// Looks `users` up and fills the misses from `found`.
void Prime(RouteCache& cache, std::vector<int64_t> users,
           const internal::GetRoutesResponse& found) {
  RouteMap routes;
  std::vector<int64_t> misses;
  uint64_t ticket = cache.Lookup(users, &routes, &misses);
  cache.Fill(ticket, misses, found);
}

class RouteCacheTest : public ::testing::Test {
 protected:
  RouteCacheTest() : cache_({}) { cache_.Apply(Frame({}, /*reset=*/true)); }

  // Looks up `users`; returns the misses.
  std::vector<int64_t> Misses(std::vector<int64_t> users,
                              RouteMap* routes = nullptr) {
    RouteMap scratch;
    std::vector<int64_t> misses;
    uint64_t ticket = cache_.Lookup(users, routes ? routes : &scratch, &misses);
    if (!misses.empty()) cache_.Abandon(ticket);
    return misses;
  }

  RouteCache cache_;
};

TEST(RouteCacheUntrackedTest, CachesNothingUntilPresenceTracks) {
  RouteCache cache({});
  Prime(cache, {1}, Found({{"gw-a", {1}}}));
  EXPECT_EQ(cache.size(), 0u) << "cached before any WatchRoutes frame";
  cache.Apply(Frame({}, /*reset=*/true, /*tracking=*/false));
  Prime(cache, {1}, Found({{"gw-a", {1}}}));
  EXPECT_EQ(cache.size(), 0u) << "cached while presence does not track";
  cache.Apply(Frame({}, /*reset=*/true, /*tracking=*/true));
  Prime(cache, {1}, Found({{"gw-a", {1}}}));
  EXPECT_EQ(cache.size(), 1u);
}

TEST_F(RouteCacheTest, AnswersFromTheCacheAfterOneLookup) {
  EXPECT_THAT(Misses({1, 2, 3}), UnorderedElementsAre(1, 2, 3));
  // 1 on two gateways, 2 on one, 3 offline.
  Prime(cache_, {1, 2, 3}, Found({{"gw-a", {1, 2}}, {"gw-b", {1}}}));
  RouteMap routes;
  EXPECT_THAT(Misses({1, 2, 3}, &routes), IsEmpty());
  EXPECT_THAT(GatewaysOf(routes, 1), ElementsAre("gw-a", "gw-b"));
  EXPECT_THAT(GatewaysOf(routes, 2), ElementsAre("gw-a"));
  EXPECT_THAT(GatewaysOf(routes, 3), IsEmpty()) << "offline is cached too";
  EXPECT_EQ(routes.where.count(3), 0u) << "an offline user has no entry";
  EXPECT_EQ(routes.gateways.size(), 2u) << "each gateway named once";
  EXPECT_THAT(Misses({3, 4}), ElementsAre(4));
}

TEST_F(RouteCacheTest, AChangeDropsThatUserOnly) {
  Prime(cache_, {1, 2}, Found({{"gw-a", {1, 2}}}));
  cache_.Apply(Frame({2}));
  EXPECT_THAT(Misses({1, 2}), ElementsAre(2));
  Prime(cache_, {2}, Found({{"gw-b", {2}}}));
  RouteMap routes;
  EXPECT_THAT(Misses({2}, &routes), IsEmpty());
  EXPECT_THAT(GatewaysOf(routes, 2), ElementsAre("gw-b"));
}

TEST_F(RouteCacheTest, ALookupAnsweredBeforeAChangeIsNotCached) {
  RouteMap routes;
  std::vector<int64_t> misses;
  const uint64_t ticket = cache_.Lookup({1, 2}, &routes, &misses);
  ASSERT_THAT(misses, UnorderedElementsAre(1, 2));
  // 2 connects somewhere new while presence's answer (from before) is on
  // its way.
  cache_.Apply(Frame({2}));
  cache_.Fill(ticket, misses, Found({{"gw-a", {1}}}));
  EXPECT_THAT(Misses({1, 2}), ElementsAre(2))
      << "the stale 'offline' answer for 2 was cached";
}

TEST_F(RouteCacheTest, AChangeBeforeTheLookupDoesNotSpoilIt) {
  cache_.Apply(Frame({1}));
  Prime(cache_, {1}, Found({{"gw-a", {1}}}));
  EXPECT_THAT(Misses({1}), IsEmpty());
}

TEST_F(RouteCacheTest, OverlappingLookupsKeepTheirOwnTickets) {
  RouteMap routes;
  std::vector<int64_t> first, second;
  const uint64_t t1 = cache_.Lookup({1}, &routes, &first);
  cache_.Apply(Frame({1}));
  const uint64_t t2 = cache_.Lookup({1}, &routes, &second);
  // The newer lookup saw the change; it may cache. The older may not, even
  // after the newer one finished.
  cache_.Fill(t2, second, Found({{"gw-b", {1}}}));
  cache_.Fill(t1, first, Found({{"gw-a", {1}}}));
  RouteMap now;
  EXPECT_THAT(Misses({1}, &now), IsEmpty());
  EXPECT_THAT(GatewaysOf(now, 1), ElementsAre("gw-b"));
}

TEST_F(RouteCacheTest, AResetDropsEverythingAndLookupsInFlight) {
  Prime(cache_, {1}, Found({{"gw-a", {1}}}));
  RouteMap routes;
  std::vector<int64_t> misses;
  const uint64_t ticket = cache_.Lookup({2}, &routes, &misses);
  cache_.Apply(Frame({}, /*reset=*/true));
  cache_.Fill(ticket, misses, Found({{"gw-a", {2}}}));
  EXPECT_EQ(cache_.size(), 0u);
  EXPECT_THAT(Misses({1, 2}), UnorderedElementsAre(1, 2));
}

TEST_F(RouteCacheTest, LosingTheWatchStopsCaching) {
  Prime(cache_, {1}, Found({{"gw-a", {1}}}));
  cache_.Lost();
  EXPECT_FALSE(cache_.tracking());
  EXPECT_THAT(Misses({1}), ElementsAre(1));
  Prime(cache_, {1}, Found({{"gw-a", {1}}}));
  EXPECT_EQ(cache_.size(), 0u);
  // Presence stopped tracking (lost Redis): the same.
  cache_.Apply(Frame({}, /*reset=*/true, /*tracking=*/true));
  Prime(cache_, {1}, Found({{"gw-a", {1}}}));
  EXPECT_EQ(cache_.size(), 1u);
  cache_.Apply(Frame({}, /*reset=*/true, /*tracking=*/false));
  EXPECT_EQ(cache_.size(), 0u);
  EXPECT_THAT(Misses({1}), ElementsAre(1));
}

TEST(RouteCacheBoundsTest, StartsOverPastMaxUsers) {
  RouteCache cache({.max_users = 3});
  cache.Apply(Frame({}, /*reset=*/true));
  Prime(cache, {1, 2}, Found({{"gw-a", {1, 2}}}));
  Prime(cache, {3, 4}, Found({{"gw-a", {3, 4}}}));
  EXPECT_LE(cache.size(), 3u);
  RouteMap routes;
  std::vector<int64_t> misses;
  cache.Lookup({3, 4}, &routes, &misses);
  EXPECT_THAT(misses, IsEmpty()) << "the newest answer is kept";
  EXPECT_THAT(GatewaysOf(routes, 4), ElementsAre("gw-a"));
}

TEST(RouteCacheBoundsTest, TooManyChangesInFlightSpoilTheLookup) {
  RouteCache cache({.max_recent = 2});
  cache.Apply(Frame({}, /*reset=*/true));
  RouteMap routes;
  std::vector<int64_t> misses;
  const uint64_t ticket = cache.Lookup({1}, &routes, &misses);
  cache.Apply(Frame({7, 8, 9}));  // none of them is 1, but too many to track
  cache.Fill(ticket, misses, Found({{"gw-a", {1}}}));
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace parley::message
