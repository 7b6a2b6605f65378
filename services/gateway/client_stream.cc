#include "services/gateway/client_stream.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/logging.h"
#include "common/status_util.h"

namespace parley::gateway {

namespace {

std::atomic<uint64_t> next_stream_id{1};

constexpr absl::string_view kBatchFramesKey = "parley-batch-frames";
constexpr int kMaxBatchFramesAsked = 1024;

}  // namespace

absl::StatusOr<int> BatchFramesOf(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  auto it = metadata.find(
      grpc::string_ref(kBatchFramesKey.data(), kBatchFramesKey.size()));
  if (it == metadata.end()) return 1;
  const absl::string_view value(it->second.data(), it->second.size());
  int n = 0;
  if (!absl::SimpleAtoi(value, &n) || n < 1 || n > kMaxBatchFramesAsked ||
      value.empty() || !absl::ascii_isdigit(value.front())) {
    return absl::InvalidArgumentError(
        absl::StrCat(kBatchFramesKey, ": must be an integer from 1 to ",
                     kMaxBatchFramesAsked));
  }
  return n;
}

ClientStream::ClientStream(grpc::CallbackServerContext* ctx,
                           TokenAuthenticator* auth,
                           ConnectionRegistry* registry, ClientFrameSink* sink,
                           RateLimiter* connect_limiter,
                           ClientStreamOptions options)
    : ctx_(ctx),
      registry_(registry),
      sink_(sink),
      connect_limiter_(connect_limiter),
      options_(options),
      stream_id_(next_stream_id.fetch_add(1, std::memory_order_relaxed)) {
  absl::StatusOr<int> asked = BatchFramesOf(ctx->client_metadata());
  if (!asked.ok()) {
    OnAuthenticated(asked.status());  // refused before any other check
    return;
  }
  batch_frames_ = static_cast<size_t>(
      std::clamp(*asked, 1, std::max(1, options_.max_batch_frames)));
  auth->Authenticate(ctx, [this](absl::StatusOr<int64_t> user_id) {
    OnAuthenticated(std::move(user_id));
  });
}

void ClientStream::OnAuthenticated(absl::StatusOr<int64_t> user_id) {
  absl::Status admitted = user_id.status();
  if (admitted.ok() && connect_limiter_ != nullptr) {
    const RateLimiter::Decision d = connect_limiter_->TryAcquire(*user_id);
    if (!d.allowed) admitted = RateLimitedError("connect", d.retry_after);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finishing_ || !admitted.ok()) {  // cancelled meanwhile, or refused
      authenticating_ = false;
      FinishLocked(admitted.ok() ? final_status_
                                 : ToGrpcStatus(admitted, ctx_));
      return;
    }
    user_id_ = *user_id;
  }
  // Outside our lock: the registry takes its own lock, then ours. Until
  // `authenticating_` drops, nothing finishes the stream, so OnDone (and its
  // Remove) cannot overtake this Add.
  const absl::Status added = registry_->Add(*user_id, this);
  std::lock_guard<std::mutex> lock(mu_);
  authenticating_ = false;
  registered_ = added.ok();
  if (!added.ok()) {
    FinishLocked(ToGrpcStatus(added, ctx_));
  } else if (finishing_) {
    FinishLocked(final_status_);
  }
}

void ClientStream::OnRouteReady() {
  std::lock_guard<std::mutex> lock(mu_);
  if (reading_ || finishing_) return;
  reading_ = true;
  StartRead(&incoming_);
}

void ClientStream::OnReadDone(bool ok) {
  if (ok && incoming_.frame_case() == parley::v1::ClientFrame::kSend) {
    OnSendRead();
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!ok) {
    // The client half-closed or went away: end the stream.
    FinishLocked(grpc::Status::OK);
    return;
  }
  switch (incoming_.frame_case()) {
    case parley::v1::ClientFrame::kPing: {
      auto pong = std::make_shared<parley::v1::ServerFrame>();
      pong->mutable_pong()->set_nonce(incoming_.ping().nonce());
      PushLocked(std::move(pong));
      break;
    }
    case parley::v1::ClientFrame::kTyping:
      sink_->OnTypingFrame(user_id_, incoming_.typing());
      break;
    case parley::v1::ClientFrame::kAck:
      sink_->OnAckFrame(user_id_, incoming_.ack());
      break;
    case parley::v1::ClientFrame::kSend:  // handled above
      break;
    case parley::v1::ClientFrame::FRAME_NOT_SET:
      break;  // an empty or unknown frame is ignored
  }
  if (!finishing_) StartRead(&incoming_);
}

void ClientStream::OnSendRead() {
  int64_t user_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Finishing: the send is dropped unanswered, as an unread frame would be.
    if (finishing_) return;
    ++sends_in_flight_;
    user_id = user_id_;
  }
  // Outside our lock: the answer may come back at once, and it takes it.
  // `incoming_` is not read into again before the next StartRead below.
  sink_->OnSendFrame(user_id, stream_id_, incoming_.send(),
                     [this](parley::v1::SendResult result) {
                       OnSendDone(std::move(result));
                     });
  std::lock_guard<std::mutex> lock(mu_);
  if (finishing_) return;
  if (sends_in_flight_ >= std::max(1, options_.max_sends)) {
    read_paused_ = true;
    return;
  }
  StartRead(&incoming_);
}

void ClientStream::OnSendDone(parley::v1::SendResult result) {
  auto frame = std::make_shared<parley::v1::ServerFrame>();
  *frame->mutable_send_result() = std::move(result);
  std::lock_guard<std::mutex> lock(mu_);
  --sends_in_flight_;
  PushLocked(std::move(frame));
  if (read_paused_ && !finishing_) {
    read_paused_ = false;
    StartRead(&incoming_);
  }
  MaybeFinishLocked();
}

void ClientStream::Push(
    absl::Span<const std::shared_ptr<const parley::v1::ServerFrame>> frames) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < frames.size(); ++i) {
    PushLocked(frames[i], /*hold=*/i + 1 < frames.size());
  }
}

void ClientStream::PushLocked(
    std::shared_ptr<const parley::v1::ServerFrame> frame, bool hold) {
  if (finishing_) return;
  const size_t bytes = frame->ByteSizeLong();
  if (queue_.size() >= options_.max_queue ||
      (!queue_.empty() &&
       queued_bytes_ + bytes > options_.max_queue_bytes)) {
    spdlog::info(
        "closing the stream of user {}: client is not reading ({} frames, "
        "{} bytes queued)",
        user_id_, queue_.size(), queued_bytes_);
    FinishLocked(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                              "client is not reading its stream"));
    return;
  }
  queue_.push_back({std::move(frame), bytes});
  queued_bytes_ += bytes;
  if (!writing_ && !hold) StartWriteLocked();
}

void ClientStream::StartWriteLocked() {
  writing_ = true;
  in_flight_ = 1;
  if (batch_frames_ > 1 && queue_.size() > 1) {
    // Only frames already waiting go together: a batch never holds a frame
    // back for company.
    size_t bytes = queue_.front().bytes;
    while (in_flight_ < std::min(batch_frames_, queue_.size()) &&
           bytes + queue_[in_flight_].bytes <= options_.max_batch_bytes) {
      bytes += queue_[in_flight_].bytes;
      ++in_flight_;
    }
  }
  if (in_flight_ == 1) {
    StartWrite(queue_.front().frame.get());
    return;
  }
  parley::v1::ServerFrameBatch* batch = batch_.mutable_batch();
  for (size_t i = 0; i < in_flight_; ++i) {
    *batch->add_frames() = *queue_[i].frame;
  }
  StartWrite(&batch_);
}

void ClientStream::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  writing_ = false;
  // Frees the batch's copies: an idle stream keeps no batch memory.
  if (in_flight_ > 1) batch_.clear_frame();
  for (; in_flight_ > 0; --in_flight_) {
    queued_bytes_ -= queue_.front().bytes;
    queue_.pop_front();
  }
  if (!ok) {
    FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
  } else if (!finishing_ && !queue_.empty()) {
    StartWriteLocked();
    return;
  }
  MaybeFinishLocked();
}

void ClientStream::OnStallTimeout() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!writing_) return;  // the client read meanwhile
    spdlog::info("cancelling the stream of user {}: still not reading",
                 user_id_);
  }
  // Outside our lock: cancellation calls back into the reactor. The alarm
  // holds its lock, so OnDone (and the context) wait for us.
  ctx_->TryCancel();
}

void ClientStream::Close(const grpc::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  FinishLocked(status);
}

void ClientStream::OnCancel() {
  std::lock_guard<std::mutex> lock(mu_);
  FinishLocked(grpc::Status::CANCELLED);
}

void ClientStream::FinishLocked(grpc::Status status) {
  if (!finishing_) {
    finishing_ = true;
    ending_.store(true, std::memory_order_release);
    final_status_ = std::move(status);
    // Queued frames are never sent now: free them at once, keeping only
    // those being written.
    while (queue_.size() > (writing_ ? in_flight_ : 0u)) {
      queued_bytes_ -= queue_.back().bytes;
      queue_.pop_back();
    }
    if (writing_) {
      // The status goes out after that frame, which may wait for a client
      // that does not read: give it stall_timeout to do so.
      stall_alarm_.Set(
          std::chrono::system_clock::now() +
              std::max(options_.stall_timeout, std::chrono::milliseconds(100)),
          [this] { OnStallTimeout(); });
    }
  }
  MaybeFinishLocked();
}

void ClientStream::MaybeFinishLocked() {
  // While authenticating, the callback still refers to us: it finishes.
  // A send in flight will call back too.
  if (!finishing_ || authenticating_ || writing_ || sends_in_flight_ > 0 ||
      finished_) {
    return;
  }
  finished_ = true;
  Finish(final_status_);
}

void ClientStream::OnDone() {
  stall_alarm_.Detach();  // from now on a firing alarm does nothing
  bool registered;
  int64_t user_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    registered = registered_;
    user_id = user_id_;
  }
  if (registered) registry_->Remove(user_id, this);
  delete this;
}

}  // namespace parley::gateway
