#include "services/gateway/message_backends.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "common/grpc_util.h"
#include "common/logging.h"

namespace parley::gateway {

namespace internal = ::parley::internal::v1;

MessageBackends::MessageBackends(const std::vector<std::string>& addresses,
                                 ConnectionRegistry* registry)
    : registry_(registry) {
  for (const auto& a : addresses) {
    auto inst = std::make_unique<Instance>();
    inst->address = a;
    inst->channel = MakeChannel(a);
    inst->stub = internal::MessageService::NewStub(inst->channel);
    instances_.push_back(std::move(inst));
  }
}

MessageBackends::~MessageBackends() { Stop(); }

void MessageBackends::Start() {
  for (auto& inst : instances_) {
    Instance* raw = inst.get();
    inst->subscriber = std::thread([this, raw] { Subscribe(raw); });
  }
}

void MessageBackends::Stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (grpc::ClientContext* ctx : active_) ctx->TryCancel();
  }
  cv_.notify_all();
  for (auto& inst : instances_) {
    if (inst->subscriber.joinable()) inst->subscriber.join();
  }
}

internal::MessageService::StubInterface* MessageBackends::ForChat(
    int64_t chat_id, int attempt) {
  const size_t n = instances_.size();
  const size_t start = static_cast<size_t>(chat_id) % n;
  int skip = attempt;
  // First pass: healthy (or not yet known) instances only.
  for (size_t k = 0; k < n; ++k) {
    Instance* inst = instances_[(start + k) % n].get();
    if (inst->channel->GetState(true) == GRPC_CHANNEL_TRANSIENT_FAILURE) {
      continue;
    }
    if (skip-- > 0) continue;
    return inst->stub.get();
  }
  return instances_[(start + attempt) % n]->stub.get();
}

void MessageBackends::Subscribe(Instance* inst) {
  std::mt19937 rng(std::random_device{}());
  auto backoff = std::chrono::milliseconds(100);
  while (!stopping_) {
    grpc::ClientContext ctx;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      active_.push_back(&ctx);
    }
    internal::SubscribeRequest req;
    req.set_gateway_id(registry_->gateway_id());
    auto reader = inst->stub->Subscribe(&ctx, req);
    internal::Delivery delivery;
    bool got_any = false;
    while (reader->Read(&delivery)) {
      if (!got_any) {
        got_any = true;
        ++live_;
      }
      registry_->Deliver(delivery);
    }
    const grpc::Status status = reader->Finish();
    if (got_any) --live_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      active_.erase(std::find(active_.begin(), active_.end(), &ctx));
    }
    if (stopping_) return;
    if (got_any) backoff = std::chrono::milliseconds(100);
    spdlog::warn("subscription to message instance {} ended (code {}); "
                 "reconnecting",
                 inst->address, static_cast<int>(status.error_code()));
    std::uniform_int_distribution<int> jitter(0, backoff.count() / 2);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, backoff + std::chrono::milliseconds(jitter(rng)),
                 [this] { return stopping_.load(); });
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

}  // namespace parley::gateway
