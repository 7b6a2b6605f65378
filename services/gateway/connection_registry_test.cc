#include "services/gateway/connection_registry.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "parley/internal/v1/presence_mock.grpc.pb.h"

namespace parley::gateway {
namespace {

namespace internal = ::parley::internal::v1;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::NiceMock;

// Records what the registry pushes, one entry per Push call.
class RecordingStream final : public LocalStream {
 public:
  explicit RecordingStream(uint64_t id) : id_(id) {}
  void Push(absl::Span<const std::shared_ptr<const parley::v1::ServerFrame>>
                frames) override {
    std::vector<std::string> texts;
    for (const auto& f : frames) {
      texts.push_back(f->chat_event().message_created().text());
    }
    pushes.push_back(std::move(texts));
  }
  void OnRouteReady() override {}
  void Close(const grpc::Status&) override {}
  uint64_t stream_id() const override { return id_; }
  bool ending() const override { return false; }

  std::vector<std::vector<std::string>> pushes;

 private:
  const uint64_t id_;
};

internal::Delivery MessageTo(const std::string& text,
                             const std::vector<int64_t>& users) {
  internal::Delivery d;
  d.mutable_frame()->mutable_chat_event()->mutable_message_created()->set_text(
      text);
  for (int64_t u : users) d.add_recipient_user_ids(u);
  return d;
}

class ConnectionRegistryTest : public testing::Test {
 protected:
  ConnectionRegistryTest() : registry_(&presence_, {.gateway_id = "gw-a"}) {
    registry_.Start();
    EXPECT_TRUE(registry_.Add(1, &alice_phone_).ok());
    EXPECT_TRUE(registry_.Add(1, &alice_laptop_).ok());
    EXPECT_TRUE(registry_.Add(2, &bob_).ok());
  }
  ~ConnectionRegistryTest() override {
    registry_.Remove(1, &alice_phone_);
    registry_.Remove(1, &alice_laptop_);
    registry_.Remove(2, &bob_);
    registry_.Stop();
  }

  // Presence answers every route call with OK.
  NiceMock<internal::MockPresenceServiceStub> presence_;
  ConnectionRegistry registry_;
  RecordingStream alice_phone_{11}, alice_laptop_{12}, bob_{21};
};

TEST_F(ConnectionRegistryTest, ABatchReachesEachStreamInOnePushInBatchOrder) {
  internal::Delivery batch;
  *batch.add_batch() = MessageTo("m1", {1, 2});
  *batch.add_batch() = MessageTo("m2", {1});
  internal::Delivery m3 = MessageTo("m3", {1, 2, 3});  // 3 is not here
  // m3 came in on Alice's laptop, which got the send's result instead.
  m3.set_skip_gateway_id("gw-a");
  m3.set_skip_stream_id(12);
  *batch.add_batch() = m3;

  EXPECT_EQ(registry_.Deliver(batch), 3u + 2u + 2u);
  EXPECT_THAT(alice_phone_.pushes, ElementsAre(ElementsAre("m1", "m2", "m3")));
  EXPECT_THAT(alice_laptop_.pushes, ElementsAre(ElementsAre("m1", "m2")));
  EXPECT_THAT(bob_.pushes, ElementsAre(ElementsAre("m1", "m3")));
}

TEST_F(ConnectionRegistryTest, ASkipForAnotherGatewaySkipsNothingHere) {
  internal::Delivery d = MessageTo("hi", {1});
  d.set_skip_gateway_id("gw-b");
  d.set_skip_stream_id(12);  // the same id, but another gateway's stream
  EXPECT_EQ(registry_.Deliver(d), 2u);
  EXPECT_THAT(alice_phone_.pushes, ElementsAre(ElementsAre("hi")));
  EXPECT_THAT(alice_laptop_.pushes, ElementsAre(ElementsAre("hi")));
  EXPECT_THAT(bob_.pushes, IsEmpty());
}

TEST_F(ConnectionRegistryTest, NestedBatchesAndEmptyDeliveriesPushNothing) {
  internal::Delivery outer;
  internal::Delivery* inner = outer.add_batch();
  *inner->add_batch() = MessageTo("too deep", {1, 2});
  *outer.add_batch() = MessageTo("", {});  // no recipients
  EXPECT_EQ(registry_.Deliver(outer), 0u);
  EXPECT_EQ(registry_.Deliver(internal::Delivery()), 0u);
  EXPECT_THAT(alice_phone_.pushes, IsEmpty());
  EXPECT_THAT(bob_.pushes, IsEmpty());
}

}  // namespace
}  // namespace parley::gateway
