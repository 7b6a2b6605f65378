#include "common/fanout_hub.h"

#include <deque>
#include <utility>

#include "common/logging.h"
#include "common/serial_writer.h"

namespace parley {

// Most deliveries, and bytes, one frame of a stream carries.
constexpr size_t kMaxBatch = 256;
constexpr size_t kMaxBatchBytes = 1 << 20;

class GatewayStream final
    : public SerialWriter<::parley::internal::v1::Delivery> {
 public:
  GatewayStream(FanoutHub* hub, std::string gateway_id, size_t max_queue)
      : hub_(hub), gateway_id_(std::move(gateway_id)), max_queue_(max_queue) {}

  // False when the stream is ending (replaced, cancelled, or over its
  // queue bound) and so did not take `d`.
  bool Enqueue(const std::shared_ptr<const ::parley::internal::v1::Delivery>& d) {
    std::lock_guard<std::mutex> lock(mu_);
    if (finishing()) return false;
    if (queue_.size() >= max_queue_) {
      spdlog::warn("gateway {} is not keeping up; dropping its stream",
                   gateway_id_);
      FinishLocked(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                "subscriber queue is full"));
      return false;
    }
    queue_.push_back(d);
    if (!writing()) WriteNextLocked();
    return true;
  }

  void OnDone() override {
    hub_->Remove(gateway_id_, this);
    spdlog::info("gateway {} unsubscribed", gateway_id_);
    delete this;
  }

 private:
  // Writes the front of the queue: alone, or when more wait behind it, as
  // one frame carrying several (fewer, larger writes under load).
  void WriteNextLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queue_.empty()) return;
    in_write_ = 1;
    if (queue_.size() == 1) {
      StartWriteLocked(queue_.front().get());
      return;
    }
    batch_.Clear();
    size_t bytes = 0;
    in_write_ = 0;
    for (const auto& d : queue_) {
      const size_t b = d->ByteSizeLong();
      if (in_write_ == kMaxBatch ||
          (in_write_ > 0 && bytes + b > kMaxBatchBytes)) {
        break;
      }
      *batch_.add_batch() = *d;
      bytes += b;
      ++in_write_;
    }
    StartWriteLocked(in_write_ == 1 ? queue_.front().get() : &batch_);
  }

  void WrittenLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    queue_.erase(queue_.begin(), queue_.begin() + in_write_);
    in_write_ = 0;
  }

  FanoutHub* const hub_;
  const std::string gateway_id_;
  const size_t max_queue_;
  std::deque<std::shared_ptr<const ::parley::internal::v1::Delivery>> queue_
      ABSL_GUARDED_BY(mu_);
  // How many of the queue's front the write in flight carries.
  size_t in_write_ ABSL_GUARDED_BY(mu_) = 0;
  ::parley::internal::v1::Delivery batch_ ABSL_GUARDED_BY(mu_);
};

FanoutHub::~FanoutHub() { CloseAll(); }

grpc::ServerWriteReactor<::parley::internal::v1::Delivery>* FanoutHub::Open(
    const std::string& gateway_id) {
  auto* stream = new GatewayStream(this, gateway_id, max_queue_);
  if (gateway_id.empty() || gateway_id.size() > 128) {
    stream->Close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                               "gateway_id: must be 1-128 bytes"));
    return stream;
  }
  GatewayStream* old = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = streams_[gateway_id];
    old = slot;
    slot = stream;
    // An empty first delivery tells the gateway that the stream is live.
    auto hello = std::make_shared<::parley::internal::v1::Delivery>();
    hello->set_resync_routes(resync_on_open_);
    stream->Enqueue(hello);
    for (auto& d : held_.Take(gateway_id, std::chrono::steady_clock::now())) {
      stream->Enqueue(d);
    }
    if (old) {
      old->Close(grpc::Status(grpc::StatusCode::ABORTED,
                              "replaced by a newer stream"));
    }
  }
  spdlog::info("gateway {} subscribed", gateway_id);
  return stream;
}

bool FanoutHub::Push(const std::string& gateway_id,
                     std::shared_ptr<const ::parley::internal::v1::Delivery> delivery) {
  std::lock_guard<std::mutex> lock(mu_);
  // No stream, or one that is ending before its successor arrives: keep the
  // delivery for the gateway's next subscription.
  auto it = streams_.find(gateway_id);
  if (it != streams_.end() && it->second->Enqueue(delivery)) return true;
  return held_.Hold(gateway_id, std::move(delivery),
                    std::chrono::steady_clock::now());
}

void FanoutHub::Broadcast(std::shared_ptr<const ::parley::internal::v1::Delivery> delivery) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, stream] : streams_) stream->Enqueue(delivery);
}

void FanoutHub::CloseAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, stream] : streams_) {
    stream->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                               "shutting down"));
  }
}

size_t FanoutHub::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return streams_.size();
}

void FanoutHub::Remove(const std::string& gateway_id, GatewayStream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(gateway_id);
  if (it != streams_.end() && it->second == stream) streams_.erase(it);
}

}  // namespace parley
