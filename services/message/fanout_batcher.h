// Batched fan-out: events that wait for a route lookup share one. With a
// RouteCache, only the recipients it does not hold are looked up, and an
// event whose recipients are all cached (and that ends no typing
// indicator) is pushed at once, on the caller's thread. While a
// GetRoutes call is in flight, new events queue; when it returns, one call
// looks up the union of all their recipients (and ends their senders'
// typing indicators in the same round trip). Under load, presence sees one
// call per batch instead of two per message; when idle, an event's lookup
// starts at once. Batches are pushed in the order they were formed, even
// when their lookups return out of order, so events fanned out one after
// the other reach each gateway in that order.
//
//   FanoutBatcher fanout(presence_stub, &hub, &route_cache, {.timeout = 1s});
//   fanout.Fanout(frame, {alice, bob}, /*typing_stop=*/std::nullopt);
#ifndef PARLEY_SERVICES_MESSAGE_FANOUT_BATCHER_H_
#define PARLEY_SERVICES_MESSAGE_FANOUT_BATCHER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/fanout_hub.h"
#include "parley/internal/v1/presence.grpc.pb.h"
#include "parley/v1/parley.pb.h"
#include "services/message/route_cache.h"

namespace parley::message {

struct FanoutBatcherOptions {
  // Deadline of each GetRoutes call.
  std::chrono::milliseconds timeout{1000};
  // Lookups in flight at once; more events wait for one to return.
  int max_in_flight = 2;
  // Most distinct users one lookup asks for (presence accepts 10,000).
  size_t max_users = 5000;
  // 1 disables batching: every event gets its own lookup.
  size_t max_events = 1024;
};

// A client stream to leave out of a fan-out: the one a send came in on
// (see Delivery.skip_stream_id). stream_id 0 leaves out nothing.
struct SkipStream {
  std::string gateway_id;
  uint64_t stream_id = 0;
};

class FanoutBatcher {
 public:
  // None is owned; `cache` may be null (every recipient is looked up).
  FanoutBatcher(
      ::parley::internal::v1::PresenceService::StubInterface* presence,
      FanoutHub* hub, RouteCache* cache, FanoutBatcherOptions options);

  // Pushes `frame` to the gateways holding `recipients`. If presence cannot
  // answer, the frame goes to every gateway, which delivers it only to its
  // local recipients. Asynchronous; never blocks.
  void Fanout(std::shared_ptr<const ::parley::v1::ServerFrame> frame,
              std::vector<int64_t> recipients,
              std::optional<::parley::internal::v1::TypingStop> typing_stop,
              SkipStream skip = {});

 private:
  struct Event {
    std::shared_ptr<const ::parley::v1::ServerFrame> frame;
    std::vector<int64_t> recipients;
    std::optional<::parley::internal::v1::TypingStop> typing_stop;
    SkipStream skip;
  };

  struct Looked {
    std::vector<Event> batch;
    absl::StatusOr<RouteMap> routes;
  };

  // Starts lookups while events wait and fewer than max_in_flight run.
  void Pump();
  // Records lookup `id`'s answer and pushes every batch that is next in
  // order; one thread pushes at a time.
  void Complete(uint64_t id, Looked looked);
  void Deliver(std::vector<Event> batch, absl::StatusOr<RouteMap> routes);

  ::parley::internal::v1::PresenceService::StubInterface* const presence_;
  FanoutHub* const hub_;
  RouteCache* const cache_;
  const FanoutBatcherOptions options_;
  std::mutex mu_;
  std::vector<Event> waiting_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;       // of the next lookup
  uint64_t next_deliver_ ABSL_GUARDED_BY(mu_) = 0;  // next batch to push
  std::map<uint64_t, Looked> looked_ ABSL_GUARDED_BY(mu_);
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace parley::message

#endif  // PARLEY_SERVICES_MESSAGE_FANOUT_BATCHER_H_
