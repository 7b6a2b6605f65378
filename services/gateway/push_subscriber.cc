#include "services/gateway/push_subscriber.h"

#include <memory>
#include <utility>

#include "common/logging.h"

namespace parley::gateway {

namespace internal = ::parley::internal::v1;

// One Subscribe call; deletes itself in OnDone.
class PushSubscriber::Stream final
    : public grpc::ClientReadReactor<internal::Delivery> {
 public:
  Stream(PushSubscriber* owner, std::shared_ptr<StreamEnd> end)
      : owner_(owner), end_(std::move(end)) {}

  void Start(grpc::ClientContext* ctx) {
    req_.set_gateway_id(owner_->registry_->gateway_id());
    owner_->open_(ctx, &req_, this);
    StartRead(&delivery_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    if (!got_any_) {
      got_any_ = true;
      owner_->live_ = true;
      spdlog::info("subscribed to {}", owner_->name_);
    }
    owner_->registry_->Deliver(delivery_);
    StartRead(&delivery_);
  }

  void OnDone(const grpc::Status& status) override {
    end_->Notify(status, got_any_);
    delete this;
  }

 private:
  PushSubscriber* const owner_;
  const std::shared_ptr<StreamEnd> end_;
  internal::SubscribeRequest req_;
  internal::Delivery delivery_;
  bool got_any_ = false;  // reads are one at a time
};

PushSubscriber::PushSubscriber(std::string name, OpenFn open,
                               ConnectionRegistry* registry)
    : name_(std::move(name)),
      open_(std::move(open)),
      registry_(registry),
      // Capped low: until the stream is back, the upstream instance holds
      // what it would push here only for a few seconds.
      keeper_(
          name_, [this](grpc::ClientContext* ctx) { return Subscribe(ctx); },
          std::chrono::seconds(1)) {}

StreamEnded PushSubscriber::Subscribe(grpc::ClientContext* ctx) {
  auto end = std::make_shared<StreamEnd>();
  (new Stream(this, end))->Start(ctx);
  StreamEnded ended = end->Wait();
  live_ = false;
  return ended;
}

}  // namespace parley::gateway
