// Holds one Subscribe stream open to one upstream instance (a message or the
// presence service), reconnecting with jittered backoff, and hands each
// Delivery to the registry.
//
//   PushSubscriber sub("presence 10.0.0.7:50053",
//       [stub](grpc::ClientContext* ctx, const SubscribeRequest& req) {
//         return stub->Subscribe(ctx, req);
//       }, &registry);
//   sub.Start();
#ifndef PARLEY_SERVICES_GATEWAY_PUSH_SUBSCRIBER_H_
#define PARLEY_SERVICES_GATEWAY_PUSH_SUBSCRIBER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "parley/internal/v1/delivery.pb.h"
#include "services/gateway/connection_registry.h"

namespace parley::gateway {

class PushSubscriber {
 public:
  using OpenFn = std::function<
      std::unique_ptr<grpc::ClientReaderInterface<::parley::internal::v1::Delivery>>(
          grpc::ClientContext*, const ::parley::internal::v1::SubscribeRequest&)>;

  PushSubscriber(std::string name, OpenFn open, ConnectionRegistry* registry);
  ~PushSubscriber();

  void Start();
  void Stop();
  // True while the stream is open and confirmed by its first Delivery.
  bool live() const { return live_.load(); }

 private:
  void Run();

  const std::string name_;
  const OpenFn open_;
  ConnectionRegistry* const registry_;
  std::atomic<bool> live_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* active_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread thread_;
};

}  // namespace parley::gateway

#endif  // PARLEY_SERVICES_GATEWAY_PUSH_SUBSCRIBER_H_
