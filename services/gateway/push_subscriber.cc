#include "services/gateway/push_subscriber.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "common/logging.h"

namespace parley::gateway {

namespace internal = ::parley::internal::v1;

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
    grpc::ClientContext ctx;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      active_ = &ctx;
    }
    internal::SubscribeRequest req;
    req.set_gateway_id(registry_->gateway_id());
    auto reader = open_(&ctx, req);
    internal::Delivery delivery;
    bool got_any = false;
    while (reader->Read(&delivery)) {
      if (!got_any) {
        got_any = true;
        live_ = true;
        backoff = std::chrono::milliseconds(100);
        spdlog::info("subscribed to {}", name_);
      }
      registry_->Deliver(delivery);
    }
    live_ = false;
    const grpc::Status status = reader->Finish();
    std::unique_lock<std::mutex> lock(mu_);
    active_ = nullptr;
    if (stopping_) return;
    spdlog::warn("subscription to {} ended (code {}); reconnecting", name_,
                 static_cast<int>(status.error_code()));
    std::uniform_int_distribution<int> jitter(0, backoff.count() / 2);
    cv_.wait_for(lock, backoff + std::chrono::milliseconds(jitter(rng)),
                 [this] { return stopping_; });
    // Capped low: until the stream is back, this instance drops what it
    // would push here, so live delivery stays off for as long as we wait.
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

}  // namespace parley::gateway
