// Holds one Subscribe stream open to one upstream instance (a message or the
// presence service), reconnecting with jittered backoff, and hands each
// Delivery to the registry. The stream is a callback reactor: deliveries are
// handed over on gRPC's thread as they are read, with no thread of ours in
// between; a thread of ours only waits out each stream and the backoff.
//
//   PushSubscriber sub("presence 10.0.0.7:50053",
//       [stub](grpc::ClientContext* ctx, const SubscribeRequest* req,
//              grpc::ClientReadReactor<Delivery>* reactor) {
//         stub->async()->Subscribe(ctx, req, reactor);
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
  // Starts the Subscribe call on `reactor` (which then calls StartCall).
  using OpenFn = std::function<void(
      grpc::ClientContext*, const ::parley::internal::v1::SubscribeRequest*,
      grpc::ClientReadReactor<::parley::internal::v1::Delivery>*)>;

  PushSubscriber(std::string name, OpenFn open, ConnectionRegistry* registry);
  ~PushSubscriber();

  void Start();
  void Stop();
  // True while the stream is open and confirmed by its first Delivery.
  bool live() const { return live_.load(); }

 private:
  class Stream;
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
