#include "services/gateway/file_transfer.h"

#include <chrono>
#include <mutex>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "common/owner_alarm.h"
#include "common/status_util.h"
#include "common/validation.h"

namespace parley::gateway {
namespace {

namespace internal = ::parley::internal::v1;
namespace v1 = ::parley::v1;

constexpr size_t kMaxChunkBytes = 1 << 20;

// A server call joined to a storage call, both reactors in one object. It
// is deleted when both calls are over.
//
// Each side's operations are started from the other side's reactions, that
// is from outside the storage call's own reactions. gRPC may finish a client
// call as soon as none of its operations is pending, and an operation
// started on a finished call touches a dead object. So the storage call
// carries a hold (AddHold) for as long as the proxy may still start an
// operation on it, and the hold is released exactly once when it stops.
//
// A transfer still running after FileTransferOptions::max_transfer_time is
// ended by an alarm (OnTransferTimeout): the storage call's own deadline
// would not do, since the hold keeps its end from the proxy while the
// client's side waits.
template <typename ServerReactor, typename ClientReactor>
class Proxy : public ServerReactor, public ClientReactor {
 public:
  // The server call is over.
  void OnDone() override {
    bool remove;
    {
      std::lock_guard<std::mutex> lock(mu_);
      server_done_ = true;
      remove = storage_done_;
    }
    if (remove) Remove();
  }

 protected:
  Proxy(grpc::CallbackServerContext* ctx, const FileTransferOptions& options)
      : server_ctx_(ctx), max_transfer_time_(options.max_transfer_time) {}

  // Sets the alarm; first thing in the subclass's constructor body, once
  // OnTransferTimeout is the subclass's.
  void ArmTimeout() {
    alarm_.Set(std::chrono::system_clock::now() + max_transfer_time_,
               [this] { OnTransferTimeout(); });
  }

  // The transfer ran past max_transfer_time: ends both calls. Runs with
  // the alarm's lock held, so the proxy stays until it returns; it must
  // not wait for the proxy's reactions.
  virtual void OnTransferTimeout() = 0;

  // The status a transfer cut short gets.
  grpc::Status TimedOut() const {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        absl::StrCat("the transfer took longer than ",
                                     max_transfer_time_.count(), " ms"));
  }

  // Deletes the proxy, once a firing alarm can no longer reach it.
  void Remove() {
    alarm_.Detach();
    delete this;
  }

  // Starts the storage call, holding it until ReleaseHoldLocked.
  void StartStorageCallLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    storage_done_ = false;
    ClientReactor::AddHold();
    holding_ = true;
    ClientReactor::StartCall();
  }
  // No operation will be started on the storage call any more.
  void ReleaseHoldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!holding_) return;
    holding_ = false;
    ClientReactor::RemoveHold();
  }
  // The storage call is over: answers the client with its status (unless
  // it was answered already) and says whether the proxy may be deleted.
  bool StorageDoneLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    storage_done_ = true;
    if (timed_out_) {
      FinishServerLocked(TimedOut());
    } else {
      FinishServerLocked(status.ok() ? grpc::Status::OK
                                     : ToGrpcStatus(FromGrpcStatus(status)));
    }
    return server_done_;
  }
  void FinishServerLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (server_finished_) return;
    server_finished_ = true;
    ServerReactor::Finish(status);
  }

  grpc::CallbackServerContext* const server_ctx_;
  const std::chrono::milliseconds max_transfer_time_;
  std::mutex mu_;
  bool storage_done_ ABSL_GUARDED_BY(mu_) = true;  // nothing started yet
  bool server_finished_ ABSL_GUARDED_BY(mu_) = false;
  bool timed_out_ ABSL_GUARDED_BY(mu_) = false;

 private:
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
  bool server_done_ ABSL_GUARDED_BY(mu_) = false;
  OwnerAlarm alarm_;
};

// Client -> gateway -> storage.
class UploadProxy final
    : public Proxy<grpc::ServerReadReactor<v1::UploadFileRequest>,
                   grpc::ClientWriteReactor<internal::UploadFileChunk>> {
 public:
  UploadProxy(grpc::CallbackServerContext* ctx, v1::File* response,
              TokenAuthenticator* auth,
              internal::StorageService::StubInterface* storage,
              FileTransferOptions options)
      : Proxy(ctx, options),
        response_(response),
        storage_(storage),
        options_(options) {
    ArmTimeout();
    auth->Authenticate(ctx, [this](absl::StatusOr<int64_t> user) {
      std::lock_guard<std::mutex> lock(mu_);
      authenticating_ = false;
      if (cancelled_) return FinishServerLocked(grpc::Status::CANCELLED);
      if (timed_out_) return FinishServerLocked(TimedOut());
      if (!user.ok()) return FinishServerLocked(ToGrpcStatus(user.status()));
      user_id_ = *user;
      StartRead(&incoming_);
    });
  }

  // Server side.
  void OnReadDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (server_finished_) return ReleaseHoldLocked();
    if (!ok) {
      if (!storage_started_) {
        return FinishServerLocked(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT, "metadata: is required"));
      }
      StartWritesDone();  // the client is done: storage verifies and answers
      ReleaseHoldLocked();
      return;
    }
    if (!storage_started_) {
      if (!incoming_.has_metadata()) {
        return FinishServerLocked(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT, "metadata: must come first"));
      }
      if (incoming_.metadata().size_bytes() > options_.max_file_bytes) {
        return FinishServerLocked(grpc::Status(
            grpc::StatusCode::RESOURCE_EXHAUSTED,
            "size_bytes: larger than the largest file accepted"));
      }
      auto* begin = outgoing_.mutable_begin();
      begin->set_uploader_user_id(user_id_);
      *begin->mutable_metadata() = std::move(*incoming_.mutable_metadata());
      begin->set_max_file_bytes(options_.max_file_bytes);
      storage_started_ = true;
      storage_->async()->UploadFile(&client_ctx_, &stored_, this);
      StartWrite(&outgoing_);
      StartStorageCallLocked();
      return;
    }
    if (!incoming_.has_chunk()) {
      return FailLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                     "metadata: may only come first"));
    }
    if (incoming_.chunk().size() > kMaxChunkBytes) {
      return FailLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                     "chunk: must be at most 1 MiB"));
    }
    outgoing_.set_chunk(std::move(*incoming_.mutable_chunk()));
    StartWrite(&outgoing_);
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    // While authenticating, the callback still refers to us: it finishes.
    if (authenticating_) return;
    if (storage_started_) client_ctx_.TryCancel();
    if (!storage_started_ || storage_done_) {
      FinishServerLocked(grpc::Status::CANCELLED);
    }
  }

  void OnTransferTimeout() override {
    std::lock_guard<std::mutex> lock(mu_);
    timed_out_ = true;
    // While authenticating, the callback still refers to us: it finishes.
    if (authenticating_) return;
    // A read from the client or a write to storage is pending: it ends
    // with the calls, and its reaction lets the hold go.
    if (storage_started_ && !storage_done_) client_ctx_.TryCancel();
    FinishServerLocked(TimedOut());
  }

  // Storage side.
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    // On failure, storage's status arrives in OnDone(status).
    if (ok && !server_finished_) {
      StartRead(&incoming_);
    } else {
      ReleaseHoldLocked();
    }
  }

  void OnDone(const grpc::Status& status) override {
    bool remove;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // The server call may have been answered already (a client error):
      // then its response is gone, which is why storage writes into ours.
      if (!server_finished_ && status.ok()) *response_ = std::move(stored_);
      remove = StorageDoneLocked(status);
    }
    if (remove) Remove();
  }

 private:
  // A client error while storage is busy: answer, and abort storage's side.
  void FailLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    client_ctx_.TryCancel();
    ReleaseHoldLocked();
    FinishServerLocked(status);
  }

  v1::File* const response_;
  internal::StorageService::StubInterface* const storage_;
  const FileTransferOptions options_;
  grpc::ClientContext client_ctx_;
  v1::UploadFileRequest incoming_;
  internal::UploadFileChunk outgoing_;
  v1::File stored_;  // storage's answer, copied out on success
  int64_t user_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool authenticating_ ABSL_GUARDED_BY(mu_) = true;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool storage_started_ ABSL_GUARDED_BY(mu_) = false;
};

// Storage -> gateway -> client.
class DownloadProxy final
    : public Proxy<grpc::ServerWriteReactor<v1::DownloadFileResponse>,
                   grpc::ClientReadReactor<v1::DownloadFileResponse>> {
 public:
  DownloadProxy(grpc::CallbackServerContext* ctx,
                const v1::DownloadFileRequest* request,
                TokenAuthenticator* auth,
                internal::StorageService::StubInterface* storage,
                const FileTransferOptions& options)
      : Proxy(ctx, options), storage_(storage) {
    ArmTimeout();
    auth->Authenticate(ctx, [this, request](absl::StatusOr<int64_t> user) {
      std::lock_guard<std::mutex> lock(mu_);
      authenticating_ = false;
      if (cancelled_) return FinishServerLocked(grpc::Status::CANCELLED);
      if (timed_out_) return FinishServerLocked(TimedOut());
      if (!user.ok()) return FinishServerLocked(ToGrpcStatus(user.status()));
      auto file = ParseId("file_id", request->file_id());
      if (!file.ok()) return FinishServerLocked(ToGrpcStatus(file.status()));
      if (request->offset() < 0) {
        return FinishServerLocked(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT, "offset: must not be negative"));
      }
      storage_request_.set_user_id(*user);
      storage_request_.set_file_id(*file);
      storage_request_.set_offset(request->offset());
      storage_->async()->DownloadFile(&client_ctx_, &storage_request_, this);
      grpc::ClientReadReactor<v1::DownloadFileResponse>::StartRead(&frame_);
      StartStorageCallLocked();
    });
  }

  // Storage side.
  void OnReadDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ok || server_finished_) {
      ReleaseHoldLocked();  // the status follows in OnDone
      return;
    }
    writing_ = true;
    StartWrite(&frame_);
  }

  // Storage's call is over. The hold keeps it open until no chunk is on
  // its way to the client, so the status is the last thing to pass on.
  void OnDone(const grpc::Status& status) override {
    bool remove;
    {
      std::lock_guard<std::mutex> lock(mu_);
      remove = StorageDoneLocked(status);
    }
    if (remove) Remove();
  }

  // Server side.
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      client_ctx_.TryCancel();
      ReleaseHoldLocked();
      return;
    }
    grpc::ClientReadReactor<v1::DownloadFileResponse>::StartRead(&frame_);
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    if (authenticating_) return;  // the callback finishes
    if (!storage_done_) {
      client_ctx_.TryCancel();
    } else {
      FinishServerLocked(grpc::Status::CANCELLED);
    }
  }

  void OnTransferTimeout() override {
    bool cancel_client;
    {
      std::lock_guard<std::mutex> lock(mu_);
      timed_out_ = true;
      if (authenticating_) return;  // the callback finishes
      // Storage's end finishes the client's call (StorageDoneLocked).
      if (!storage_done_) client_ctx_.TryCancel();
      // Unless a chunk waits for a client that does not read: the status
      // cannot pass it, so that call is cancelled.
      cancel_client = writing_;
    }
    // Outside our lock: cancellation calls back into OnCancel. The alarm
    // holds the proxy until this returns.
    if (cancel_client) server_ctx_->TryCancel();
  }

 private:
  internal::StorageService::StubInterface* const storage_;
  grpc::ClientContext client_ctx_;
  internal::DownloadFileRequest storage_request_;
  v1::DownloadFileResponse frame_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;  // a chunk to the client
  bool authenticating_ ABSL_GUARDED_BY(mu_) = true;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerReadReactor<v1::UploadFileRequest>* StartUpload(
    grpc::CallbackServerContext* ctx, v1::File* response,
    TokenAuthenticator* auth, internal::StorageService::StubInterface* storage,
    FileTransferOptions options) {
  return new UploadProxy(ctx, response, auth, storage, options);
}

grpc::ServerWriteReactor<v1::DownloadFileResponse>* StartDownload(
    grpc::CallbackServerContext* ctx, const v1::DownloadFileRequest* request,
    TokenAuthenticator* auth, internal::StorageService::StubInterface* storage,
    FileTransferOptions options) {
  return new DownloadProxy(ctx, request, auth, storage, options);
}

}  // namespace parley::gateway
