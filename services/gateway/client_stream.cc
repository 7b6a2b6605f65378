#include "services/gateway/client_stream.h"

#include <utility>

#include "common/logging.h"
#include "common/status_util.h"

namespace parley::gateway {

ClientStream::ClientStream(grpc::CallbackServerContext* ctx,
                           TokenAuthenticator* auth,
                           ConnectionRegistry* registry,
                           ClientFrameSink* sink, ClientStreamOptions options)
    : registry_(registry), sink_(sink), options_(options) {
  auth->Authenticate(ctx, [this](absl::StatusOr<int64_t> user_id) {
    OnAuthenticated(std::move(user_id));
  });
}

void ClientStream::OnAuthenticated(absl::StatusOr<int64_t> user_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finishing_ || !user_id.ok()) {  // cancelled meanwhile, or refused
      authenticating_ = false;
      FinishLocked(user_id.ok() ? final_status_
                                : ToGrpcStatus(user_id.status()));
      return;
    }
    user_id_ = *user_id;
    registered_ = true;
  }
  // Outside our lock: the registry takes its own lock, then ours. Until
  // `authenticating_` drops, nothing finishes the stream, so OnDone (and its
  // Remove) cannot overtake this Add.
  registry_->Add(*user_id, this);
  std::lock_guard<std::mutex> lock(mu_);
  authenticating_ = false;
  if (finishing_) FinishLocked(final_status_);
}

void ClientStream::OnRouteReady() {
  std::lock_guard<std::mutex> lock(mu_);
  if (reading_ || finishing_) return;
  reading_ = true;
  StartRead(&incoming_);
}

void ClientStream::OnReadDone(bool ok) {
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
    case parley::v1::ClientFrame::FRAME_NOT_SET:
      break;  // an empty or unknown frame is ignored
  }
  if (!finishing_) StartRead(&incoming_);
}

void ClientStream::Push(std::shared_ptr<const parley::v1::ServerFrame> frame) {
  std::lock_guard<std::mutex> lock(mu_);
  PushLocked(std::move(frame));
}

void ClientStream::PushLocked(
    std::shared_ptr<const parley::v1::ServerFrame> frame) {
  if (finishing_) return;
  if (queue_.size() >= options_.max_queue) {
    spdlog::info("closing the stream of user {}: client is not reading",
                 user_id_);
    FinishLocked(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                              "client is not reading its stream"));
    return;
  }
  queue_.push_back(std::move(frame));
  if (!writing_) {
    writing_ = true;
    StartWrite(queue_.front().get());
  }
}

void ClientStream::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  writing_ = false;
  queue_.pop_front();
  if (!ok) {
    FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
  } else if (!finishing_ && !queue_.empty()) {
    writing_ = true;
    StartWrite(queue_.front().get());
    return;
  }
  if (finishing_ && !finished_) {
    finished_ = true;
    Finish(final_status_);
  }
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
    final_status_ = std::move(status);
  }
  // While authenticating, the callback still refers to us: it finishes.
  if (authenticating_ || writing_ || finished_) return;
  finished_ = true;
  Finish(final_status_);
}

void ClientStream::OnDone() {
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
