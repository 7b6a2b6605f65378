#include "common/stream_keeper.h"

#include <algorithm>
#include <random>
#include <utility>

#include "common/logging.h"

namespace parley {

StreamKeeper::StreamKeeper(std::string name, Attempt attempt,
                           std::chrono::milliseconds max_backoff)
    : name_(std::move(name)),
      attempt_(std::move(attempt)),
      max_backoff_(max_backoff) {}

StreamKeeper::~StreamKeeper() { Stop(); }

void StreamKeeper::Start() {
  thread_ = std::thread([this] { Run(); });
}

void StreamKeeper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (active_) active_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StreamKeeper::Run() {
  std::mt19937 rng(std::random_device{}());
  auto backoff = std::chrono::milliseconds(100);
  for (;;) {
    grpc::ClientContext ctx;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      active_ = &ctx;
    }
    const StreamEnded ended = attempt_(&ctx);
    if (ended.received) backoff = std::chrono::milliseconds(100);
    std::unique_lock<std::mutex> lock(mu_);
    active_ = nullptr;
    if (stopping_) return;
    spdlog::warn("stream to {} ended (code {}); reconnecting", name_,
                 static_cast<int>(ended.status.error_code()));
    std::uniform_int_distribution<int> jitter(0, backoff.count() / 2);
    cv_.wait_for(lock, backoff + std::chrono::milliseconds(jitter(rng)),
                 [this] { return stopping_; });
    backoff = std::min(backoff * 2, max_backoff_);
  }
}

}  // namespace parley
