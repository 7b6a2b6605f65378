#include "services/message/route_watch.h"

#include <memory>
#include <utility>

namespace parley::message {

namespace internal = ::parley::internal::v1;

// One WatchRoutes call; deletes itself in OnDone.
class RouteWatch::Reader final
    : public grpc::ClientReadReactor<internal::RouteChanges> {
 public:
  Reader(RouteCache* cache, std::shared_ptr<StreamEnd> end)
      : cache_(cache), end_(std::move(end)) {}

  void Start(grpc::ClientContext* ctx,
             internal::PresenceService::StubInterface* presence,
             const std::string& watcher_id) {
    req_.set_watcher_id(watcher_id);
    presence->async()->WatchRoutes(ctx, &req_, this);
    StartRead(&frame_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    received_ = true;
    cache_->Apply(frame_);
    StartRead(&frame_);
  }

  void OnDone(const grpc::Status& status) override {
    // Changes may be missed from here on.
    cache_->Lost();
    end_->Notify(status, received_);
    delete this;
  }

 private:
  RouteCache* const cache_;
  const std::shared_ptr<StreamEnd> end_;
  internal::WatchRoutesRequest req_;
  internal::RouteChanges frame_;
  bool received_ = false;  // reads are one at a time
};

RouteWatch::RouteWatch(std::string watcher_id,
                       internal::PresenceService::StubInterface* presence,
                       RouteCache* cache)
    : watcher_id_(std::move(watcher_id)),
      presence_(presence),
      cache_(cache),
      keeper_(
          "presence (route changes)",
          [this](grpc::ClientContext* ctx) { return Watch(ctx); },
          std::chrono::seconds(2)) {}

StreamEnded RouteWatch::Watch(grpc::ClientContext* ctx) {
  auto end = std::make_shared<StreamEnd>();
  (new Reader(cache_, end))->Start(ctx, presence_, watcher_id_);
  return end->Wait();
}

}  // namespace parley::message
