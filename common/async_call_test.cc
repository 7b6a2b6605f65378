#include "common/async_call.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "parley/internal/v1/presence.grpc.pb.h"

namespace parley {
namespace {

using std::chrono::milliseconds;

// An async stub whose one method holds on to its callback until told.
class HeldStub {
 public:
  void Echo(grpc::ClientContext*, const std::string* request,
            std::string* response, std::function<void(grpc::Status)> done) {
    *response = *request;
    done_ = std::move(done);
  }
  // Runs the held callback, as gRPC would on one of its threads.
  void Complete(grpc::Status status) { done_(std::move(status)); }

 private:
  std::function<void(grpc::Status)> done_;
};

TEST(AsyncCallTest, WaitEndsOnceTheCallbackHasRun) {
  HeldStub stub;
  std::string got;
  CallAsync(&stub, &HeldStub::Echo, std::string("hi"), milliseconds(5000),
            [&got](absl::StatusOr<std::string> r) { got = r.value_or("?"); });
  EXPECT_FALSE(WaitForAsyncCalls(milliseconds(20)));
  stub.Complete(grpc::Status::OK);
  EXPECT_EQ(got, "hi");
  EXPECT_TRUE(WaitForAsyncCalls(milliseconds(0)));
}

TEST(AsyncCallTest, WaitCoversTheWholeCallback) {
  HeldStub stub;
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  CallAsync(&stub, &HeldStub::Echo, std::string("x"), milliseconds(5000),
            [&entered, released](absl::StatusOr<std::string> r) {
              EXPECT_FALSE(r.ok());
              entered.set_value();
              released.wait();  // a callback still using what main owns
            });
  std::thread grpc_thread(
      [&] { stub.Complete(grpc::Status(grpc::StatusCode::UNAVAILABLE, "")); });
  entered.get_future().wait();
  EXPECT_FALSE(WaitForAsyncCalls(milliseconds(20)));
  release.set_value();
  EXPECT_TRUE(WaitForAsyncCalls(milliseconds(5000)));
  grpc_thread.join();
}

namespace iv1 = ::parley::internal::v1;

// A presence server that answers GetRoutes only when told.
class SilentPresence : public iv1::PresenceService::CallbackService {
 public:
  grpc::ServerUnaryReactor* GetRoutes(grpc::CallbackServerContext* ctx,
                                      const iv1::GetRoutesRequest*,
                                      iv1::GetRoutesResponse*) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    std::lock_guard<std::mutex> lock(mu_);
    held_.push_back(reactor);
    cv_.notify_all();
    return reactor;
  }
  bool WaitForCall(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return !held_.empty(); });
  }
  void FinishAll() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto* r : held_) r->Finish(grpc::Status::OK);
    held_.clear();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<grpc::ServerUnaryReactor*> held_;
};

// "OverGrpc": an in-process gRPC server, which the TSan run leaves out.
TEST(AsyncCallTest, CancelEndsACallStillWaitingOverGrpc) {
  SilentPresence service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(port, 0);
  auto stub = iv1::PresenceService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  std::promise<absl::Status> got;
  CallAsync(stub->async(), &iv1::PresenceService::Stub::async::GetRoutes,
            iv1::GetRoutesRequest(), std::chrono::seconds(60),
            [&got](absl::StatusOr<iv1::GetRoutesResponse> r) {
              got.set_value(r.status());
            });
  std::future<absl::Status> f = got.get_future();
  ASSERT_TRUE(service.WaitForCall(std::chrono::seconds(10)));
  EXPECT_EQ(f.wait_for(milliseconds(50)), std::future_status::timeout);
  EXPECT_FALSE(WaitForAsyncCalls(milliseconds(0)));
  CancelAsyncCalls();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  // CANCELLED from a dependency reads as UNAVAILABLE (FromGrpcStatus).
  EXPECT_EQ(f.get().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(WaitForAsyncCalls(std::chrono::seconds(5)));
  service.FinishAll();
  server->Shutdown();
}

}  // namespace
}  // namespace parley
