// Keeps a WatchRoutes stream open to presence (see StreamKeeper) and applies
// its frames to a RouteCache. When the stream ends, the cache is dropped at
// once: nothing is cached until a new stream is confirmed. Frames are
// applied on gRPC's thread as they are read.
//
//   RouteWatch watch("message node 1", presence_stub, &cache);
//   watch.Start();
#ifndef PARLEY_SERVICES_MESSAGE_ROUTE_WATCH_H_
#define PARLEY_SERVICES_MESSAGE_ROUTE_WATCH_H_

#include <string>

#include "common/stream_keeper.h"
#include "parley/internal/v1/presence.grpc.pb.h"
#include "services/message/route_cache.h"

namespace parley::message {

class RouteWatch {
 public:
  // Neither is owned.
  RouteWatch(std::string watcher_id,
             ::parley::internal::v1::PresenceService::StubInterface* presence,
             RouteCache* cache);

  void Start() { keeper_.Start(); }
  void Stop() { keeper_.Stop(); }

 private:
  class Reader;
  StreamEnded Watch(grpc::ClientContext* ctx);

  const std::string watcher_id_;
  ::parley::internal::v1::PresenceService::StubInterface* const presence_;
  RouteCache* const cache_;
  StreamKeeper keeper_;  // last: its thread uses the members above
};

}  // namespace parley::message

#endif  // PARLEY_SERVICES_MESSAGE_ROUTE_WATCH_H_
