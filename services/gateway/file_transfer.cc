#include "services/gateway/file_transfer.h"

#include <mutex>
#include <utility>

#include "absl/base/thread_annotations.h"
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
    if (remove) delete this;
  }

 protected:
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
    FinishServerLocked(status.ok() ? grpc::Status::OK
                                   : ToGrpcStatus(FromGrpcStatus(status)));
    return server_done_;
  }
  void FinishServerLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (server_finished_) return;
    server_finished_ = true;
    ServerReactor::Finish(status);
  }

  std::mutex mu_;
  bool storage_done_ ABSL_GUARDED_BY(mu_) = true;  // nothing started yet
  bool server_finished_ ABSL_GUARDED_BY(mu_) = false;

 private:
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
  bool server_done_ ABSL_GUARDED_BY(mu_) = false;
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
      : response_(response), storage_(storage), options_(options) {
    auth->Authenticate(ctx, [this](absl::StatusOr<int64_t> user) {
      std::lock_guard<std::mutex> lock(mu_);
      authenticating_ = false;
      if (cancelled_) return FinishServerLocked(grpc::Status::CANCELLED);
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
    if (remove) delete this;
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
                internal::StorageService::StubInterface* storage)
      : storage_(storage) {
    auth->Authenticate(ctx, [this, request](absl::StatusOr<int64_t> user) {
      std::lock_guard<std::mutex> lock(mu_);
      authenticating_ = false;
      if (cancelled_) return FinishServerLocked(grpc::Status::CANCELLED);
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
    if (remove) delete this;
  }

  // Server side.
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
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

 private:
  internal::StorageService::StubInterface* const storage_;
  grpc::ClientContext client_ctx_;
  internal::DownloadFileRequest storage_request_;
  v1::DownloadFileResponse frame_;
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
    TokenAuthenticator* auth, internal::StorageService::StubInterface* storage) {
  return new DownloadProxy(ctx, request, auth, storage);
}

}  // namespace parley::gateway
