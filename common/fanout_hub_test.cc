// Named *OverGrpc*: in-process gRPC servers stay out of the TSan run (see
// scripts/test).
#include "common/fanout_hub.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "parley/internal/v1/message.grpc.pb.h"

namespace parley {
namespace {

namespace internal = ::parley::internal::v1;

// Serves a hub's Subscribe streams on a free local port.
class HubServer final : public internal::MessageService::CallbackService {
 public:
  explicit HubServer(FanoutHub* hub) : hub_(hub) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                       &port_);
    b.RegisterService(this);
    server_ = b.BuildAndStart();
  }
  ~HubServer() override {
    hub_->CloseAll();
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::seconds(5));
  }
  grpc::ServerWriteReactor<internal::Delivery>* Subscribe(
      grpc::CallbackServerContext*, const internal::SubscribeRequest* req)
      override {
    return hub_->Open(req->gateway_id());
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  FanoutHub* const hub_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

std::shared_ptr<internal::Delivery> Numbered(int64_t n) {
  auto d = std::make_shared<internal::Delivery>();
  d->add_recipient_user_ids(n);
  d->mutable_frame()->mutable_pong()->set_nonce(n);
  return d;
}

TEST(FanoutHubOverGrpcTest, QueuedDeliveriesShareFramesAndKeepTheirOrder) {
  FanoutHub hub(/*max_queue=*/100000);
  HubServer server(&hub);
  auto stub = internal::MessageService::NewStub(grpc::CreateChannel(
      server.address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  internal::SubscribeRequest req;
  req.set_gateway_id("gw-test");
  auto reader = stub->Subscribe(&ctx, req);
  internal::Delivery d;
  ASSERT_TRUE(reader->Read(&d));  // the hello
  EXPECT_EQ(d.recipient_user_ids_size(), 0);

  // Pushed faster than one write at a time can go: all but the first wait
  // behind a write, and go out together.
  constexpr int kDeliveries = 5000;
  for (int i = 1; i <= kDeliveries; ++i) {
    ASSERT_TRUE(hub.Push("gw-test", Numbered(i)));
  }
  std::vector<int64_t> got;
  int frames = 0, batched = 0;
  while (static_cast<int>(got.size()) < kDeliveries && reader->Read(&d)) {
    ++frames;
    if (d.batch_size() > 0) {
      ++batched;
      EXPECT_EQ(d.recipient_user_ids_size(), 0);
      EXPECT_LE(d.batch_size(), 256);
      for (const auto& inner : d.batch()) {
        EXPECT_EQ(inner.batch_size(), 0);
        got.push_back(inner.frame().pong().nonce());
      }
    } else {
      got.push_back(d.frame().pong().nonce());
    }
  }
  ASSERT_EQ(got.size(), static_cast<size_t>(kDeliveries));
  for (int i = 0; i < kDeliveries; ++i) ASSERT_EQ(got[i], i + 1) << i;
  EXPECT_GT(batched, 0);
  EXPECT_LT(frames, kDeliveries / 4) << "deliveries did not share frames";
  ctx.TryCancel();
}

TEST(FanoutHubOverGrpcTest, ABatchStaysUnderOneMebibyte) {
  FanoutHub hub(/*max_queue=*/1000);
  HubServer server(&hub);
  auto stub = internal::MessageService::NewStub(grpc::CreateChannel(
      server.address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  internal::SubscribeRequest req;
  req.set_gateway_id("gw-big");
  auto reader = stub->Subscribe(&ctx, req);
  internal::Delivery d;
  ASSERT_TRUE(reader->Read(&d));
  // 40 deliveries of 100 KiB: 4 MiB in all, gRPC's default frame limit.
  constexpr int kDeliveries = 40;
  for (int i = 1; i <= kDeliveries; ++i) {
    auto big = Numbered(i);
    big->mutable_frame()->mutable_chat_event()->mutable_message_created()
        ->set_text(std::string(100 << 10, 'x'));
    ASSERT_TRUE(hub.Push("gw-big", big));
  }
  int got = 0;
  while (got < kDeliveries && reader->Read(&d)) {
    EXPECT_LE(d.ByteSizeLong(), size_t{1100} << 10);
    got += d.batch_size() > 0 ? d.batch_size() : 1;
  }
  EXPECT_EQ(got, kDeliveries);
  ctx.TryCancel();
}

}  // namespace
}  // namespace parley
