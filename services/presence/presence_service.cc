#include "services/presence/presence_service.h"

#include <google/protobuf/util/time_util.h>

#include <vector>

#include "common/logging.h"
#include "common/pool_reactor.h"
#include "common/validation.h"

namespace parley::presence {
namespace {

constexpr int kMaxUsersPerCall = 10000;

absl::Status CheckRoute(const internal::RouteRequest& req) {
  if (req.gateway_id().empty() || req.gateway_id().size() > 128) {
    return absl::InvalidArgumentError("gateway_id: must be 1-128 bytes");
  }
  if (req.user_id() <= 0) {
    return absl::InvalidArgumentError("user_id: must be positive");
  }
  return absl::OkStatus();
}

absl::Status CheckUsers(int size) {
  if (size > kMaxUsersPerCall) {
    return absl::InvalidArgumentError("user_ids: at most 10000 per call");
  }
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* PresenceServiceImpl::RegisterRoute(
    grpc::CallbackServerContext* ctx, const internal::RouteRequest* req,
    internal::RouteResponse* resp) {
  return FinishOnPool(ctx, pool_, [this, req, resp]() -> absl::Status {
    if (auto s = CheckRoute(*req); !s.ok()) return s;
    auto changed = routes_->Register(req->gateway_id(), req->user_id());
    if (!changed.ok()) return changed.status();
    // Before the answer: this instance's watchers hear of the new route
    // before the gateway can tell its client that the stream is live (the
    // Redis channel tells the others, and these again).
    watchers_->Changed({req->user_id()});
    resp->set_online_changed(*changed);
    events_->OnRouteRegistered(req->user_id(), *changed);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PresenceServiceImpl::UnregisterRoute(
    grpc::CallbackServerContext* ctx, const internal::RouteRequest* req,
    internal::RouteResponse* resp) {
  return FinishOnPool(ctx, pool_, [this, req, resp]() -> absl::Status {
    if (auto s = CheckRoute(*req); !s.ok()) return s;
    auto changed = routes_->Unregister(req->gateway_id(), req->user_id());
    if (!changed.ok()) return changed.status();
    watchers_->Changed({req->user_id()});
    resp->set_online_changed(*changed);
    if (*changed) events_->OnLastRouteGone(req->user_id());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PresenceServiceImpl::Heartbeat(
    grpc::CallbackServerContext* ctx, const internal::HeartbeatRequest* req,
    internal::HeartbeatResponse*) {
  return FinishOnPool(ctx, pool_, [this, req]() -> absl::Status {
    if (req->gateway_id().empty()) {
      return absl::InvalidArgumentError("gateway_id: is required");
    }
    if (auto s = CheckUsers(req->user_ids_size()); !s.ok()) return s;
    return routes_->Heartbeat(
        req->gateway_id(),
        std::vector<int64_t>(req->user_ids().begin(), req->user_ids().end()));
  });
}

grpc::ServerUnaryReactor* PresenceServiceImpl::GetRoutes(
    grpc::CallbackServerContext* ctx, const internal::GetRoutesRequest* req,
    internal::GetRoutesResponse* resp) {
  return FinishOnPool(ctx, pool_, [this, req, resp]() -> absl::Status {
    if (auto s = CheckUsers(req->user_ids_size()); !s.ok()) return s;
    // The senders' typing indicators end in the same round trip.
    std::vector<const internal::TypingStop*> stops;
    std::vector<std::pair<int64_t, int64_t>> keys;
    for (const auto& t : req->typing_stops()) {
      if (t.chat_id() <= 0 || t.user_id() <= 0 ||
          t.member_user_ids_size() > kMaxUsersPerCall) {
        continue;
      }
      stops.push_back(&t);
      keys.emplace_back(t.chat_id(), t.user_id());
    }
    auto found = routes_->LookupAndClearTyping(
        std::vector<int64_t>(req->user_ids().begin(), req->user_ids().end()),
        keys);
    if (!found.ok()) return found.status();
    for (auto& [gateway, users] : found->routes) {
      auto* g = resp->add_gateways();
      g->set_gateway_id(gateway);
      g->mutable_user_ids()->Add(users.begin(), users.end());
    }
    for (size_t k = 0; k < found->typing_cleared.size(); ++k) {
      if (!found->typing_cleared[k]) continue;
      const internal::TypingStop& t = *stops[k];
      events_->OnTyping(t.chat_id(), t.user_id(), false,
                        std::vector<int64_t>(t.member_user_ids().begin(),
                                             t.member_user_ids().end()));
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PresenceServiceImpl::GetPresence(
    grpc::CallbackServerContext* ctx, const internal::GetPresenceRequest* req,
    internal::GetPresenceResponse* resp) {
  return FinishOnPool(ctx, pool_, [this, req, resp]() -> absl::Status {
    if (auto s = CheckUsers(req->user_ids_size()); !s.ok()) return s;
    auto presences = routes_->GetPresence(
        std::vector<int64_t>(req->user_ids().begin(), req->user_ids().end()));
    if (!presences.ok()) return presences.status();
    for (const UserPresence& p : *presences) {
      auto* out = resp->add_presences();
      out->set_user_id(FormatId(p.user_id));
      out->set_online(p.online);
      if (p.last_seen_ms > 0) {
        *out->mutable_last_seen_time() =
            google::protobuf::util::TimeUtil::MillisecondsToTimestamp(
                p.last_seen_ms);
      }
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* PresenceServiceImpl::SetTyping(
    grpc::CallbackServerContext* ctx, const internal::SetTypingRequest* req,
    internal::SetTypingResponse* resp) {
  return FinishOnPool(ctx, pool_, [this, req, resp]() -> absl::Status {
    if (req->chat_id() <= 0) {
      return absl::InvalidArgumentError("chat_id: must be positive");
    }
    if (req->user_id() <= 0) {
      return absl::InvalidArgumentError("user_id: must be positive");
    }
    if (auto s = CheckUsers(req->member_user_ids_size()); !s.ok()) return s;
    auto changed = routes_->SetTyping(req->chat_id(), req->user_id(),
                                      req->typing());
    if (!changed.ok()) return changed.status();
    resp->set_broadcast(*changed);
    if (*changed) {
      events_->OnTyping(req->chat_id(), req->user_id(), req->typing(),
                        std::vector<int64_t>(req->member_user_ids().begin(),
                                             req->member_user_ids().end()));
    }
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<internal::Delivery>* PresenceServiceImpl::Subscribe(
    grpc::CallbackServerContext* ctx, const internal::SubscribeRequest* req) {
  return hub_->Open(req->gateway_id());
}

grpc::ServerWriteReactor<internal::RouteChanges>*
PresenceServiceImpl::WatchRoutes(grpc::CallbackServerContext* ctx,
                                 const internal::WatchRoutesRequest* req) {
  return watchers_->Open(req->watcher_id());
}

}  // namespace parley::presence
