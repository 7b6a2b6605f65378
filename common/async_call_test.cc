#include "common/async_call.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <utility>

#include "gtest/gtest.h"

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

}  // namespace
}  // namespace parley
