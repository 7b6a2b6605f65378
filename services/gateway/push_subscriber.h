// Holds one Subscribe stream open to one upstream instance (a message or the
// presence service), reconnecting with jittered backoff (see StreamKeeper),
// and hands each Delivery to the registry. The stream is a callback
// reactor: deliveries are handed over on gRPC's thread as they are read,
// with no thread of ours in between.
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
#include <functional>
#include <string>

#include "common/stream_keeper.h"
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

  void Start() { keeper_.Start(); }
  void Stop() { keeper_.Stop(); }
  // True while the stream is open and confirmed by its first Delivery.
  bool live() const { return live_.load(); }

 private:
  class Stream;
  StreamEnded Subscribe(grpc::ClientContext* ctx);

  const std::string name_;
  const OpenFn open_;
  ConnectionRegistry* const registry_;
  std::atomic<bool> live_{false};
  StreamKeeper keeper_;  // last: its thread uses the members above
};

}  // namespace parley::gateway

#endif  // PARLEY_SERVICES_GATEWAY_PUSH_SUBSCRIBER_H_
