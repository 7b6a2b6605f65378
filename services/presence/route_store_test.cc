// RouteStore against a real Redis server started for this suite.
#include "services/presence/route_store.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/presence/keyspace_listener.h"
#include "tests/support/test_redis.h"

namespace parley::presence {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

class RouteStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto r = testing::TestRedis::Start();
    ASSERT_TRUE(r.ok()) << r.status();
    redis_server_ = r->release();
  }
  static void TearDownTestSuite() { delete redis_server_; }

  void SetUp() override {
    auto opts = RedisClient::ParseUrl(redis_server_->url());
    ASSERT_TRUE(opts.ok());
    client_ = std::make_unique<RedisClient>(*opts);
    ASSERT_TRUE(client_->Command({"FLUSHALL"}).ok());
    store_ = std::make_unique<RouteStore>(
        client_.get(),
        RouteStore::Options{.route_ttl = std::chrono::milliseconds(30000),
                            .clock_ms = [this] { return now_.load(); }});
  }

  static testing::TestRedis* redis_server_;
  std::atomic<int64_t> now_{1'800'000'000'000};
  std::unique_ptr<RedisClient> client_;
  std::unique_ptr<RouteStore> store_;
};

testing::TestRedis* RouteStoreTest::redis_server_ = nullptr;

TEST_F(RouteStoreTest, ParseUrl) {
  auto o = RedisClient::ParseUrl("redis://10.1.2.3:7000/3");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->host, "10.1.2.3");
  EXPECT_EQ(o->port, 7000);
  EXPECT_EQ(o->db, 3);
  EXPECT_FALSE(RedisClient::ParseUrl("http://x:1").ok());
  EXPECT_FALSE(RedisClient::ParseUrl("redis://x:port").ok());
  EXPECT_FALSE(RedisClient::ParseUrl("redis://x:0").ok());
  EXPECT_FALSE(RedisClient::ParseUrl("redis://x:-1").ok());
  EXPECT_FALSE(RedisClient::ParseUrl("redis://x:65536").ok());
  EXPECT_FALSE(RedisClient::ParseUrl("redis://x:1/-1").ok());
}

TEST_F(RouteStoreTest, KeysShareOneClusterSlotPerUser) {
  EXPECT_EQ(RouteStore::RoutesKey(42), "parley:{u:42}:routes");
  EXPECT_EQ(RouteStore::SeenKey(42), "parley:{u:42}:seen");
}

TEST_F(RouteStoreTest, SeveralGatewaysOneUser) {
  auto first = store_->Register("gw-a", 7);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(*first);  // came online
  auto second = store_->Register("gw-b", 7);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);  // already online
  ASSERT_TRUE(store_->Register("gw-a", 8).ok());

  auto routes = store_->Lookup({7, 8, 9});
  ASSERT_TRUE(routes.ok()) << routes.status();
  EXPECT_THAT(*routes, UnorderedElementsAre(Pair("gw-a", ElementsAre(7, 8)),
                                            Pair("gw-b", ElementsAre(7))));

  auto gone = store_->Unregister("gw-a", 7);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(*gone);  // still on gw-b
  gone = store_->Unregister("gw-b", 7);
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(*gone);

  auto presence = store_->GetPresence({7, 8, 9});
  ASSERT_TRUE(presence.ok());
  ASSERT_EQ(presence->size(), 3u);
  EXPECT_FALSE((*presence)[0].online);
  EXPECT_EQ((*presence)[0].last_seen_ms, now_.load());
  EXPECT_TRUE((*presence)[1].online);
  EXPECT_FALSE((*presence)[2].online);
  EXPECT_EQ((*presence)[2].last_seen_ms, 0);
}

TEST_F(RouteStoreTest, DeadGatewayRoutesExpireAfterTtl) {
  ASSERT_TRUE(store_->Register("gw-dead", 11).ok());
  const int64_t registered = now_.load();
  now_ += 29'000;
  EXPECT_EQ(store_->Lookup({11})->size(), 1u);
  now_ += 2'000;  // past the TTL without a heartbeat
  EXPECT_TRUE(store_->Lookup({11})->empty());
  auto presence = store_->GetPresence({11});
  ASSERT_TRUE(presence.ok());
  EXPECT_FALSE((*presence)[0].online);
  EXPECT_EQ((*presence)[0].last_seen_ms, registered);
  // The expiry is announced exactly once, then coming back is announced.
  EXPECT_TRUE(*store_->ClaimOffline(11, registered));
  EXPECT_FALSE(*store_->ClaimOffline(11, registered));
  EXPECT_TRUE(*store_->Register("gw-new", 11));
}

TEST_F(RouteStoreTest, OfflineIsClaimedOnlyWhenNoRouteIsLeft) {
  EXPECT_TRUE(*store_->Register("gw-a", 12));
  EXPECT_FALSE(*store_->ClaimOffline(12, now_.load()));  // still online
  EXPECT_TRUE(*store_->Unregister("gw-a", 12));
  // A quick reconnect before the grace check: nothing to announce either way.
  EXPECT_FALSE(*store_->Register("gw-a", 12));
  EXPECT_FALSE(*store_->ClaimOffline(12, now_.load()));
  EXPECT_TRUE(*store_->Unregister("gw-a", 12));
  now_ += 1000;
  EXPECT_TRUE(*store_->ClaimOffline(12, now_.load()));
  auto p = store_->GetPresence({12});
  EXPECT_EQ((*p)[0].last_seen_ms, now_.load());
  // A second device elsewhere does not re-announce online twice.
  EXPECT_TRUE(*store_->Register("gw-a", 12));
  EXPECT_FALSE(*store_->Register("gw-b", 12));
}

TEST_F(RouteStoreTest, TypingStartsRefreshesAndStops) {
  EXPECT_TRUE(*store_->SetTyping(5, 7, true));    // started
  EXPECT_FALSE(*store_->SetTyping(5, 7, true));   // refresh: not broadcast
  EXPECT_TRUE(*store_->SetTyping(5, 8, true));    // another user
  EXPECT_TRUE(*store_->SetTyping(5, 7, false));   // stopped
  EXPECT_FALSE(*store_->SetTyping(5, 7, false));  // already stopped
  auto ttl = client_->Command({"PTTL", RouteStore::TypingKey(5, 8)});
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl->integer, 0);
  EXPECT_LE(ttl->integer, 6000);
  // Only one of several instances announces an expiry.
  EXPECT_TRUE(*store_->ClaimTypingExpiry(5, 8));
  EXPECT_FALSE(*store_->ClaimTypingExpiry(5, 8));
}

TEST_F(RouteStoreTest, KeysParseBack) {
  int64_t user = 0, chat = 0;
  EXPECT_TRUE(RouteStore::ParseRoutesKey(RouteStore::RoutesKey(77), &user));
  EXPECT_EQ(user, 77);
  EXPECT_TRUE(
      RouteStore::ParseTypingKey(RouteStore::TypingKey(12, 34), &chat, &user));
  EXPECT_EQ(chat, 12);
  EXPECT_EQ(user, 34);
  EXPECT_FALSE(RouteStore::ParseRoutesKey(RouteStore::SeenKey(77), &user));
  EXPECT_FALSE(RouteStore::ParseTypingKey(
      RouteStore::TypingKey(12, 34) + ":expired", &chat, &user));
  EXPECT_FALSE(RouteStore::ParseTypingKey("parley:{u:1}:routes", &chat, &user));
  // Only ids as Parley writes them.
  for (const char* key : {"parley:{u:-2}:routes", "parley:{u: 7}:routes",
                          "parley:{u:007}:routes", "parley:{u:+7}:routes",
                          "parley:{u:0}:routes"}) {
    EXPECT_FALSE(RouteStore::ParseRoutesKey(key, &user)) << key;
  }
  EXPECT_FALSE(RouteStore::ParseTypingKey("parley:{c:-1}:typing:2", &chat, &user));
  EXPECT_FALSE(RouteStore::ParseTypingKey("parley:{c:1}:typing:02", &chat, &user));
}

TEST_F(RouteStoreTest, HeartbeatRefreshesAndRecreatesRoutes) {
  ASSERT_TRUE(store_->Register("gw-a", 21).ok());
  now_ += 20'000;
  ASSERT_TRUE(store_->Heartbeat("gw-a", {21, 22}).ok());
  now_ += 20'000;  // 40 s after register, 20 s after heartbeat
  auto routes = store_->Lookup({21, 22});
  ASSERT_TRUE(routes.ok());
  EXPECT_THAT(*routes, UnorderedElementsAre(Pair("gw-a", ElementsAre(21, 22))));

  // Redis losing everything: the next heartbeat restores the routes.
  ASSERT_TRUE(client_->Command({"FLUSHALL"}).ok());
  EXPECT_TRUE(store_->Lookup({21})->empty());
  ASSERT_TRUE(store_->Heartbeat("gw-a", {21}).ok());
  EXPECT_EQ(store_->Lookup({21})->size(), 1u);
}

TEST_F(RouteStoreTest, LookupAndClearTypingDoBothInOneCall) {
  ASSERT_TRUE(store_->Register("gw-a", 41).ok());
  ASSERT_TRUE(store_->Register("gw-b", 42).ok());
  ASSERT_TRUE(*store_->SetTyping(/*chat_id=*/5, /*user_id=*/41, true));
  auto both = store_->LookupAndClearTyping({41, 42, 43}, {{5, 41}, {5, 42}});
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_THAT(both->routes, UnorderedElementsAre(Pair("gw-a", ElementsAre(41)),
                                                 Pair("gw-b", ElementsAre(42))));
  // Only 41 was typing; now nobody is.
  EXPECT_THAT(both->typing_cleared, ElementsAre(true, false));
  auto again = store_->LookupAndClearTyping({41}, {{5, 41}});
  ASSERT_TRUE(again.ok());
  EXPECT_THAT(again->typing_cleared, ElementsAre(false));
  // Typing alone, and routes alone.
  EXPECT_TRUE(store_->LookupAndClearTyping({}, {{5, 41}})->routes.empty());
  EXPECT_TRUE(store_->LookupAndClearTyping({41}, {})->typing_cleared.empty());
}

TEST_F(RouteStoreTest, RedisDownIsUnavailableAndRecovers) {
  ASSERT_TRUE(store_->Register("gw-a", 31).ok());
  redis_server_->Stop();
  const auto start = std::chrono::steady_clock::now();
  auto r = store_->Register("gw-a", 32);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  ASSERT_TRUE(redis_server_->StartAgain().ok());
  // Same client, no restart: the broken connection is replaced.
  auto again = store_->Register("gw-a", 32);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(*again);
  EXPECT_TRUE(store_->SetTyping(1, 32, true).ok());
}

// What a KeyspaceListener hears on the route changes channel.
class ChangeLog {
 public:
  KeyspaceListener::Callbacks Callbacks() {
    return {.on_route_changes =
                [this](const std::string& payload) {
                  std::lock_guard<std::mutex> lock(mu_);
                  payloads_.push_back(payload);
                  cv_.notify_all();
                },
            .on_subscription =
                [this](bool subscribed) {
                  std::lock_guard<std::mutex> lock(mu_);
                  subscribed_ = subscribed;
                  cv_.notify_all();
                }};
  }
  bool WaitSubscribed() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(5),
                        [this] { return subscribed_; });
  }
  // The next payload, in order; nullopt after 5 s.
  std::optional<std::string> Next() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(5),
                      [this] { return !payloads_.empty(); })) {
      return std::nullopt;
    }
    std::string p = payloads_.front();
    payloads_.pop_front();
    return p;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> payloads_;
  bool subscribed_ = false;
};

TEST_F(RouteStoreTest, EveryChangeOfAUsersGatewaysIsPublished) {
  ChangeLog log;
  auto opts = RedisClient::ParseUrl(redis_server_->url());
  ASSERT_TRUE(opts.ok());
  KeyspaceListener listener(*opts, log.Callbacks());
  listener.Start();
  ASSERT_TRUE(log.WaitSubscribed());

  ASSERT_TRUE(store_->Register("gw-a", 7).ok());
  EXPECT_EQ(log.Next(), "7");
  // A refresh changes nothing: the next message is the next change.
  ASSERT_TRUE(store_->Register("gw-a", 7).ok());
  ASSERT_TRUE(store_->Register("gw-b", 7).ok());
  EXPECT_EQ(log.Next(), "7");
  ASSERT_TRUE(store_->Register("gw-a", 8).ok());
  EXPECT_EQ(log.Next(), "8");
  ASSERT_TRUE(store_->Unregister("gw-a", 7).ok());
  EXPECT_EQ(log.Next(), "7");
  // Unregistering what is not there changes nothing.
  ASSERT_TRUE(store_->Unregister("gw-a", 7).ok());
  ASSERT_TRUE(store_->Unregister("gw-c", 8).ok());
  // A heartbeat publishes the routes it re-created, not those it refreshed.
  ASSERT_TRUE(store_->Heartbeat("gw-a", {8, 9, 10}).ok());
  EXPECT_EQ(log.Next(), "9,10");
  // ... and those it revived after they had lapsed (lookups skipped them).
  ASSERT_TRUE(store_->Register("gw-b", 8).ok());
  EXPECT_EQ(log.Next(), "8");
  now_ += 31'000;
  ASSERT_TRUE(store_->Heartbeat("gw-a", {8, 9}).ok());
  EXPECT_EQ(log.Next(), "8,9");
  // A lapsed route dropped by a register is a change too: gw-b's 8.
  ASSERT_TRUE(store_->Register("gw-a", 8).ok());  // a refresh, and a drop
  EXPECT_EQ(log.Next(), "8");
  listener.Stop();
}

TEST(RouteChangesTest, PayloadsParseBack) {
  EXPECT_THAT(RouteStore::ParseRouteChanges("42"), ElementsAre(42));
  EXPECT_THAT(RouteStore::ParseRouteChanges("1,2,3"), ElementsAre(1, 2, 3));
  EXPECT_THAT(RouteStore::ParseRouteChanges("1,x,-3,04,,5"), ElementsAre(1, 5));
  EXPECT_THAT(RouteStore::ParseRouteChanges(""), ::testing::IsEmpty());
}

}  // namespace
}  // namespace parley::presence
