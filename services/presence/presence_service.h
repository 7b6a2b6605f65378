// gRPC wiring of the presence service: each call runs on a worker pool that
// owns the blocking Redis round trips.
#ifndef PARLEY_SERVICES_PRESENCE_PRESENCE_SERVICE_H_
#define PARLEY_SERVICES_PRESENCE_PRESENCE_SERVICE_H_

#include "common/fanout_hub.h"
#include "common/thread_pool.h"
#include "parley/internal/v1/presence.grpc.pb.h"
#include "services/presence/live_events.h"
#include "services/presence/route_store.h"
#include "services/presence/route_watchers.h"

namespace parley::presence {

namespace internal = ::parley::internal::v1;

class PresenceServiceImpl final
    : public internal::PresenceService::CallbackService {
 public:
  PresenceServiceImpl(RouteStore* routes, LiveEvents* events, FanoutHub* hub,
                      RouteWatchers* watchers, ThreadPool* pool)
      : routes_(routes),
        events_(events),
        hub_(hub),
        watchers_(watchers),
        pool_(pool) {}

  grpc::ServerUnaryReactor* RegisterRoute(
      grpc::CallbackServerContext* ctx, const internal::RouteRequest* req,
      internal::RouteResponse* resp) override;
  grpc::ServerUnaryReactor* UnregisterRoute(
      grpc::CallbackServerContext* ctx, const internal::RouteRequest* req,
      internal::RouteResponse* resp) override;
  grpc::ServerUnaryReactor* Heartbeat(
      grpc::CallbackServerContext* ctx, const internal::HeartbeatRequest* req,
      internal::HeartbeatResponse* resp) override;
  grpc::ServerUnaryReactor* GetRoutes(
      grpc::CallbackServerContext* ctx, const internal::GetRoutesRequest* req,
      internal::GetRoutesResponse* resp) override;
  grpc::ServerUnaryReactor* GetPresence(
      grpc::CallbackServerContext* ctx, const internal::GetPresenceRequest* req,
      internal::GetPresenceResponse* resp) override;
  grpc::ServerUnaryReactor* SetTyping(
      grpc::CallbackServerContext* ctx, const internal::SetTypingRequest* req,
      internal::SetTypingResponse* resp) override;
  grpc::ServerWriteReactor<internal::Delivery>* Subscribe(
      grpc::CallbackServerContext* ctx,
      const internal::SubscribeRequest* req) override;
  grpc::ServerWriteReactor<internal::RouteChanges>* WatchRoutes(
      grpc::CallbackServerContext* ctx,
      const internal::WatchRoutesRequest* req) override;

 private:
  RouteStore* routes_;
  LiveEvents* events_;
  FanoutHub* hub_;
  RouteWatchers* watchers_;
  ThreadPool* pool_;
};

}  // namespace parley::presence

#endif  // PARLEY_SERVICES_PRESENCE_PRESENCE_SERVICE_H_
