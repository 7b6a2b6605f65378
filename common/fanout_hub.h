// The push side of the message and presence services: one long-lived
// Subscribe stream per gateway, each with a bounded queue and at most one write in flight.
//
//   FanoutHub hub(/*max_queue=*/10000);
//   // In MessageService::Subscribe:
//   return hub.Open(req->gateway_id());
//   // After a commit:
//   hub.Push("gw-1", delivery);   // held a few seconds if gw-1 has no stream
//
// A delivery for a gateway with no stream here, or with one that is ending,
// is held (see HeldDeliveries)
// and sent when that gateway subscribes: after this instance restarts, the
// gateways resubscribe within their reconnect backoff, and nothing committed
// in between is lost from live delivery.
#ifndef PARLEY_COMMON_FANOUT_HUB_H_
#define PARLEY_COMMON_FANOUT_HUB_H_

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "common/held_deliveries.h"
#include "parley/internal/v1/delivery.pb.h"

namespace parley {

class GatewayStream;

class FanoutHub {
 public:
  // With `resync_on_open`, the first delivery of every stream asks the
  // gateway to re-send its routes.
  explicit FanoutHub(size_t max_queue, bool resync_on_open = false,
                     std::chrono::milliseconds hold_for = std::chrono::seconds(5))
      : max_queue_(max_queue),
        resync_on_open_(resync_on_open),
        held_({.per_gateway = std::min<size_t>(max_queue / 2, 50000),
               .gateways = 64,
               .hold_for = hold_for}) {}
  ~FanoutHub();

  // Creates the reactor for a gateway's Subscribe call. A second stream for
  // the same gateway id replaces the first.
  grpc::ServerWriteReactor<::parley::internal::v1::Delivery>* Open(
      const std::string& gateway_id);
  // Queues a delivery for one gateway. Without a stream here it is held for
  // the gateway's next subscription; false if it had to be dropped.
  bool Push(const std::string& gateway_id,
            std::shared_ptr<const ::parley::internal::v1::Delivery> delivery);
  // Queues a delivery for every gateway (used when routes are unknown).
  void Broadcast(std::shared_ptr<const ::parley::internal::v1::Delivery> delivery);
  // Ends every stream, e.g. at shutdown.
  void CloseAll();
  size_t size() const;

 private:
  friend class GatewayStream;
  void Remove(const std::string& gateway_id, GatewayStream* stream);

  const size_t max_queue_;
  const bool resync_on_open_;
  mutable std::mutex mu_;
  std::map<std::string, GatewayStream*> streams_ ABSL_GUARDED_BY(mu_);
  HeldDeliveries<::parley::internal::v1::Delivery> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace parley

#endif  // PARLEY_COMMON_FANOUT_HUB_H_
