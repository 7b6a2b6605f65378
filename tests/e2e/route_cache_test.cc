// The message service's route cache, end to end: routes cached while a
// user is online (or offline) are dropped as soon as that user connects
// elsewhere, disconnects, or presence restarts, so live delivery never
// follows a stale route.
#include <chrono>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/e2e/test_client.h"
#include "tests/support/cluster.h"

namespace parley::e2e {
namespace {

using std::chrono::seconds;

class RouteCacheTest : public testing::SharedClusterTest {
 protected:
  static void SetUpTestSuite() { StartCluster({.gateways = 2}); }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    api_ = std::make_unique<Api>(cluster_->gateway_address(0));
  }

  // a and b in a direct chat, b connected on gateway 0 and sent one
  // message there, so that the message service has b's route cached.
  struct Primed {
    TestUser a, b;
    v1::Chat chat;
    std::unique_ptr<LiveStream> b0;
  };
  void Prime(Primed* p) {
    p->a = api_->NewUser("a");
    p->b = api_->NewUser("b");
    p->chat = api_->Direct(p->a, p->b);
    p->b0 = LiveStream::Open(cluster_->gateway_address(0), p->b.token);
    ASSERT_TRUE(p->b0);
    v1::Message m = api_->Send(p->a, p->chat.chat_id(), "first");
    ASSERT_TRUE(p->b0->WaitForEvent(p->chat.chat_id(), m.seq()).has_value());
  }

  std::unique_ptr<Api> api_;
};

TEST_F(RouteCacheTest, ASecondDeviceOnAnotherGatewayGetsTheNextMessage) {
  // Several rounds: each one first makes the message service cache the
  // recipient's route on gateway 0 alone.
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(round);
    Primed p;
    ASSERT_NO_FATAL_FAILURE(Prime(&p));
    const TestUser& a = p.a;
    const TestUser& b = p.b;
    const v1::Chat& chat = p.chat;
    LiveStream* b0 = p.b0.get();

    auto b1 = LiveStream::Open(cluster_->gateway_address(1), b.token);
    ASSERT_TRUE(b1);
    v1::Message m2 = api_->Send(a, chat.chat_id(), "second");
    EXPECT_TRUE(
        b1->WaitForEvent(chat.chat_id(), m2.seq(), seconds(3)).has_value())
        << "the new device missed the message: a stale route was used";
    EXPECT_TRUE(
        b0->WaitForEvent(chat.chat_id(), m2.seq(), seconds(3)).has_value());
  }
}

TEST_F(RouteCacheTest, ComingOnlineAfterAMessageWhileOffline) {
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(round);
    TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
    v1::Chat chat = api_->Direct(a, b);
    // b is offline: the lookup for this message finds no route.
    api_->Send(a, chat.chat_id(), "while away");
    auto b1 = LiveStream::Open(cluster_->gateway_address(round % 2), b.token);
    ASSERT_TRUE(b1);
    v1::Message m = api_->Send(a, chat.chat_id(), "welcome back");
    EXPECT_TRUE(
        b1->WaitForEvent(chat.chat_id(), m.seq(), seconds(3)).has_value())
        << "missed: the cached 'offline' outlived the connect";
  }
}

TEST_F(RouteCacheTest, MovingBetweenGatewaysFollowsTheUser) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  v1::Chat chat = api_->Direct(a, b);
  for (int hop = 0; hop < 6; ++hop) {
    SCOPED_TRACE(hop);
    auto bs = LiveStream::Open(cluster_->gateway_address(hop % 2), b.token);
    ASSERT_TRUE(bs);
    v1::Message m = api_->Send(a, chat.chat_id(), "hop");
    EXPECT_TRUE(
        bs->WaitForEvent(chat.chat_id(), m.seq(), seconds(3)).has_value());
    bs.reset();  // disconnects; the next hop connects on the other gateway
  }
}

TEST_F(RouteCacheTest, RoutesStayRightAcrossAPresenceRestart) {
  Primed p;
  ASSERT_NO_FATAL_FAILURE(Prime(&p));

  ASSERT_TRUE(cluster_->Restart("presence").ok());
  ASSERT_TRUE(cluster_->WaitServing("presence", seconds(10)).ok());
  auto b1 = LiveStream::Open(cluster_->gateway_address(1), p.b.token);
  ASSERT_TRUE(b1);
  // Sent until one arrives on the new device: presence and the watch
  // come back within a few seconds, and from then on none may be missed.
  bool arrived = false;
  const auto give_up = std::chrono::steady_clock::now() + seconds(15);
  while (!arrived && std::chrono::steady_clock::now() < give_up) {
    v1::Message m = api_->Send(p.a, p.chat.chat_id(), "after");
    arrived =
        b1->WaitForEvent(p.chat.chat_id(), m.seq(), seconds(1)).has_value();
  }
  ASSERT_TRUE(arrived) << "the new device never got a message";
  for (int i = 0; i < 5; ++i) {
    v1::Message m = api_->Send(p.a, p.chat.chat_id(), "steady");
    EXPECT_TRUE(
        b1->WaitForEvent(p.chat.chat_id(), m.seq(), seconds(3)).has_value());
    EXPECT_TRUE(
        p.b0->WaitForEvent(p.chat.chat_id(), m.seq(), seconds(3)).has_value());
  }
}

}  // namespace
}  // namespace parley::e2e
