#include "services/gateway/push_subscriber.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "common/logging.h"

namespace parley::gateway {

namespace internal = ::parley::internal::v1;

// One Subscribe call. Deletes itself in OnDone, after handing its final
// status to whoever waits for it. The context lives in the shared state, so
// that Stop can still cancel through it after the call is done.
class PushSubscriber::Stream final
    : public grpc::ClientReadReactor<internal::Delivery> {
 public:
  struct Ended {
    grpc::ClientContext ctx;
    std::mutex mu;
    std::condition_variable cv;
    bool done ABSL_GUARDED_BY(mu) = false;
    bool got_any ABSL_GUARDED_BY(mu) = false;
    grpc::Status status ABSL_GUARDED_BY(mu);
  };

  Stream(PushSubscriber* owner, std::shared_ptr<Ended> ended)
      : owner_(owner), ended_(std::move(ended)) {}

  void Start() {
    req_.set_gateway_id(owner_->registry_->gateway_id());
    owner_->open_(&ended_->ctx, &req_, this);
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
    {
      std::lock_guard<std::mutex> lock(ended_->mu);
      ended_->done = true;
      ended_->got_any = got_any_;
      ended_->status = status;
    }
    ended_->cv.notify_all();
    delete this;
  }

 private:
  PushSubscriber* const owner_;
  const std::shared_ptr<Ended> ended_;
  internal::SubscribeRequest req_;
  internal::Delivery delivery_;
  bool got_any_ = false;  // reads are one at a time
};

PushSubscriber::PushSubscriber(std::string name, OpenFn open,
                               ConnectionRegistry* registry)
    : name_(std::move(name)), open_(std::move(open)), registry_(registry) {}

PushSubscriber::~PushSubscriber() { Stop(); }

void PushSubscriber::Start() { thread_ = std::thread([this] { Run(); }); }

void PushSubscriber::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (active_) active_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PushSubscriber::Run() {
  std::mt19937 rng(std::random_device{}());
  auto backoff = std::chrono::milliseconds(100);
  for (;;) {
    auto ended = std::make_shared<Stream::Ended>();
    auto* stream = new Stream(this, ended);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        delete stream;  // never started
        return;
      }
      active_ = &ended->ctx;
    }
    stream->Start();
    grpc::Status status;
    bool got_any;
    {
      std::unique_lock<std::mutex> lock(ended->mu);
      ended->cv.wait(lock, [&] { return ended->done; });
      status = ended->status;
      got_any = ended->got_any;
    }
    live_ = false;
    if (got_any) backoff = std::chrono::milliseconds(100);
    std::unique_lock<std::mutex> lock(mu_);
    active_ = nullptr;
    if (stopping_) return;
    spdlog::warn("subscription to {} ended (code {}); reconnecting", name_,
                 static_cast<int>(status.error_code()));
    std::uniform_int_distribution<int> jitter(0, backoff.count() / 2);
    cv_.wait_for(lock, backoff + std::chrono::milliseconds(jitter(rng)),
                 [this] { return stopping_; });
    // Capped low: until the stream is back, this instance holds what it
    // would push here only for a few seconds.
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

}  // namespace parley::gateway
