#include "services/storage/storage_service.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/batch_outcomes.h"
#include "common/logging.h"
#include "common/status_util.h"
#include "common/validation.h"
#include "services/storage/file_metadata.h"

namespace parley::storage {

namespace iv1 = ::parley::internal::v1;
namespace pv1 = ::parley::v1;

StorageServiceImpl::StorageServiceImpl(StorageRepository* repo,
                                       ThreadPool* workers, BlobStore* blobs,
                                       int64_t max_file_bytes)
    : repo_(repo),
      workers_(workers),
      blobs_(blobs),
      max_file_bytes_(max_file_bytes > 0 ? max_file_bytes
                                         : kDefaultMaxFileBytes) {}

namespace {

// Failures worth an operator's attention are warnings; the caller's own
// mistakes are debug noise.
void LogFailure(const char* method, const absl::Status& status) {
  if (status.ok()) return;
  if (status.code() == absl::StatusCode::kInternal ||
      status.code() == absl::StatusCode::kUnavailable) {
    spdlog::warn("{} failed: {}", method, status.ToString());
  } else {
    spdlog::debug("{} failed: {}", method, status.ToString());
  }
}

}  // namespace

template <typename Response, typename Call>
grpc::ServerUnaryReactor* StorageServiceImpl::Dispatch(
    grpc::CallbackServerContext* ctx, const char* method, Response* resp,
    Call call) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const bool queued = workers_->TrySubmit(
      [ctx, reactor, method, resp, call = std::move(call)]() mutable {
        if (ctx->IsCancelled()) {
          reactor->Finish(ToGrpcStatus(absl::CancelledError("call cancelled")));
          return;
        }
        if (ctx->deadline() <= std::chrono::system_clock::now()) {
          reactor->Finish(ToGrpcStatus(absl::DeadlineExceededError(
              "deadline passed before the call started")));
          return;
        }
        absl::StatusOr<Response> result = call();
        if (result.ok()) *resp = std::move(*result);
        LogFailure(method, result.status());
        reactor->Finish(ToGrpcStatus(result.status()));
      });
  if (!queued) {
    spdlog::warn("{} rejected: worker queue full", method);
    reactor->Finish(ToGrpcStatus(absl::UnavailableError("storage overloaded")));
  }
  return reactor;
}

grpc::ServerUnaryReactor* StorageServiceImpl::CreateUser(
    grpc::CallbackServerContext* ctx, const iv1::CreateUserRequest* req,
    pv1::User* resp) {
  return Dispatch(ctx, "CreateUser", resp,
                  [this, req] { return repo_->CreateUser(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::GetUserCredentials(
    grpc::CallbackServerContext* ctx, const iv1::GetUserCredentialsRequest* req,
    iv1::UserCredentials* resp) {
  return Dispatch(ctx, "GetUserCredentials", resp,
                  [this, req] { return repo_->GetUserCredentials(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::CreateAccessToken(
    grpc::CallbackServerContext* ctx, const iv1::CreateAccessTokenRequest* req,
    iv1::CreateAccessTokenResponse* resp) {
  return Dispatch(
      ctx, "CreateAccessToken", resp,
      [this, req]() -> absl::StatusOr<iv1::CreateAccessTokenResponse> {
        absl::Status s = repo_->CreateAccessToken(*req);
        if (!s.ok()) return s;
        return iv1::CreateAccessTokenResponse();
      });
}

grpc::ServerUnaryReactor* StorageServiceImpl::ResolveAccessToken(
    grpc::CallbackServerContext* ctx, const iv1::ResolveAccessTokenRequest* req,
    iv1::ResolveAccessTokenResponse* resp) {
  return Dispatch(ctx, "ResolveAccessToken", resp,
                  [this, req] { return repo_->ResolveAccessToken(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::CreateDirectChat(
    grpc::CallbackServerContext* ctx, const iv1::CreateDirectChatRequest* req,
    pv1::Chat* resp) {
  return Dispatch(ctx, "CreateDirectChat", resp,
                  [this, req] { return repo_->CreateDirectChat(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::CreateGroupChat(
    grpc::CallbackServerContext* ctx, const iv1::CreateGroupChatRequest* req,
    pv1::Chat* resp) {
  return Dispatch(ctx, "CreateGroupChat", resp,
                  [this, req] { return repo_->CreateGroupChat(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::AddMembers(
    grpc::CallbackServerContext* ctx, const iv1::AddMembersRequest* req,
    iv1::ChatEventResult* resp) {
  return Dispatch(ctx, "AddMembers", resp,
                  [this, req] { return repo_->AddMembers(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::RemoveMember(
    grpc::CallbackServerContext* ctx, const iv1::RemoveMemberRequest* req,
    iv1::ChatEventResult* resp) {
  return Dispatch(ctx, "RemoveMember", resp,
                  [this, req] { return repo_->RemoveMember(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::ListChats(
    grpc::CallbackServerContext* ctx, const iv1::ListChatsRequest* req,
    pv1::ListChatsResponse* resp) {
  return Dispatch(ctx, "ListChats", resp,
                  [this, req] { return repo_->ListChats(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::GetChat(
    grpc::CallbackServerContext* ctx, const iv1::GetChatRequest* req,
    pv1::Chat* resp) {
  return Dispatch(ctx, "GetChat", resp,
                  [this, req] { return repo_->GetChat(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::AppendMessage(
    grpc::CallbackServerContext* ctx, const iv1::AppendMessageRequest* req,
    iv1::ChatEventResult* resp) {
  if (batcher_ == nullptr) {
    return Dispatch(ctx, "AppendMessage", resp,
                    [this, req] { return repo_->AppendMessage(*req); });
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  batcher_->Submit(req, ctx->deadline(),
                   [reactor, resp](absl::StatusOr<iv1::ChatEventResult> r) {
                     if (r.ok()) *resp = std::move(*r);
                     LogFailure("AppendMessage", r.status());
                     reactor->Finish(ToGrpcStatus(r.status()));
                   });
  return reactor;
}

grpc::ServerUnaryReactor* StorageServiceImpl::AppendMessages(
    grpc::CallbackServerContext* ctx, const iv1::AppendMessagesRequest* req,
    iv1::AppendMessagesResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const int n = req->requests_size();
  if (auto s = CheckBatchSize(n); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  auto fill = RecordOutcomes<iv1::ChatEventResult>(
      reactor, resp->mutable_outcomes(), n,
      [](iv1::AppendOutcome* out, iv1::ChatEventResult r) {
        *out->mutable_result() = std::move(r);
      });
  auto record = [fill](int i, absl::StatusOr<iv1::ChatEventResult> r) {
    LogFailure("AppendMessages", r.status());
    fill(i, std::move(r));
  };
  if (batcher_ != nullptr) {
    // Once the last answer is in, the call (ctx, req) may be gone: nothing
    // of it is read after SubmitAll.
    std::vector<AppendBatcher::Entry> entries;
    entries.reserve(n);
    for (int i = 0; i < n; ++i) {
      entries.push_back({&req->requests(i),
                         [record, i](absl::StatusOr<iv1::ChatEventResult> r) {
                           record(i, std::move(r));
                         }});
    }
    batcher_->SubmitAll(std::move(entries), ctx->deadline());
    return reactor;
  }
  // Without group commit: one transaction each, in order, on one worker.
  const bool queued = workers_->TrySubmit([this, ctx, req, n, record] {
    for (int i = 0; i < n; ++i) {
      if (ctx->deadline() <= std::chrono::system_clock::now()) {
        record(i, absl::DeadlineExceededError(
                      "deadline passed before the append started"));
        continue;
      }
      record(i, repo_->AppendMessage(req->requests(i)));
    }
  });
  if (!queued) {
    spdlog::warn("AppendMessages rejected: worker queue full");
    reactor->Finish(ToGrpcStatus(absl::UnavailableError("storage overloaded")));
  }
  return reactor;
}

grpc::ServerUnaryReactor* StorageServiceImpl::ListMessages(
    grpc::CallbackServerContext* ctx, const iv1::ListMessagesRequest* req,
    pv1::ListMessagesResponse* resp) {
  return Dispatch(ctx, "ListMessages", resp,
                  [this, req] { return repo_->ListMessages(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::SyncChat(
    grpc::CallbackServerContext* ctx, const iv1::SyncChatRequest* req,
    pv1::SyncChatResponse* resp) {
  return Dispatch(ctx, "SyncChat", resp,
                  [this, req] { return repo_->SyncChat(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::UpdateReceipt(
    grpc::CallbackServerContext* ctx, const iv1::UpdateReceiptRequest* req,
    iv1::UpdateReceiptResponse* resp) {
  return Dispatch(ctx, "UpdateReceipt", resp,
                  [this, req] { return repo_->UpdateReceipt(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::ListContacts(
    grpc::CallbackServerContext* ctx, const iv1::ListContactsRequest* req,
    iv1::ListContactsResponse* resp) {
  return Dispatch(ctx, "ListContacts", resp,
                  [this, req] { return repo_->ListContacts(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::GetChatMembers(
    grpc::CallbackServerContext* ctx, const iv1::GetChatMembersRequest* req,
    iv1::GetChatMembersResponse* resp) {
  return Dispatch(ctx, "GetChatMembers", resp,
                  [this, req] { return repo_->GetChatMembers(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::RecordLastSeen(
    grpc::CallbackServerContext* ctx, const iv1::RecordLastSeenRequest* req,
    iv1::RecordLastSeenResponse* resp) {
  return Dispatch(ctx, "RecordLastSeen", resp,
                  [this, req]() -> absl::StatusOr<iv1::RecordLastSeenResponse> {
                    absl::Status s = repo_->RecordLastSeen(*req);
                    if (!s.ok()) return s;
                    return iv1::RecordLastSeenResponse();
                  });
}

grpc::ServerUnaryReactor* StorageServiceImpl::GetVisibleUsers(
    grpc::CallbackServerContext* ctx, const iv1::GetVisibleUsersRequest* req,
    iv1::GetVisibleUsersResponse* resp) {
  return Dispatch(ctx, "GetVisibleUsers", resp,
                  [this, req] { return repo_->GetVisibleUsers(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::EditMessage(
    grpc::CallbackServerContext* ctx, const iv1::EditMessageRequest* req,
    iv1::ChatEventResult* resp) {
  return Dispatch(ctx, "EditMessage", resp,
                  [this, req] { return repo_->EditMessage(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::DeleteMessage(
    grpc::CallbackServerContext* ctx, const iv1::DeleteMessageRequest* req,
    iv1::ChatEventResult* resp) {
  return Dispatch(ctx, "DeleteMessage", resp,
                  [this, req] { return repo_->DeleteMessage(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::AddReaction(
    grpc::CallbackServerContext* ctx, const iv1::ReactionRequest* req,
    iv1::ChatEventResult* resp) {
  return Dispatch(ctx, "AddReaction", resp,
                  [this, req] { return repo_->AddReaction(*req); });
}

grpc::ServerUnaryReactor* StorageServiceImpl::RemoveReaction(
    grpc::CallbackServerContext* ctx, const iv1::ReactionRequest* req,
    iv1::ChatEventResult* resp) {
  return Dispatch(ctx, "RemoveReaction", resp,
                  [this, req] { return repo_->RemoveReaction(*req); });
}

// ------------------------------------------------------------------ files

namespace {

pv1::File FileProto(const FileRecord& record) {
  pv1::File file;
  file.set_file_id(FormatId(record.file_id));
  file.set_name(record.name);
  file.set_content_type(record.content_type);
  file.set_size_bytes(record.size_bytes);
  file.set_sha256(record.sha256_hex);
  return file;
}

}  // namespace

// Client-streaming upload. Exactly one thing is in flight at any time: a
// read, a pool task, or nothing because Finish was called. Every pool task
// ends with StartRead or Finish as its last touch of the reactor, so the
// reactor (deleted only in OnDone, which follows Finish) is never used
// after it may be gone. Memory stays bounded by one frame: the next frame
// is read only after the previous chunk was appended.
class StorageServiceImpl::UploadReactor final
    : public grpc::ServerReadReactor<iv1::UploadFileChunk> {
 public:
  UploadReactor(StorageServiceImpl* service, grpc::CallbackServerContext* ctx,
                pv1::File* resp)
      : service_(service), ctx_(ctx), resp_(resp) {
    if (service_->blobs_ == nullptr) {
      Finish(ToGrpcStatus(absl::UnimplementedError("file storage disabled")));
      return;
    }
    StartRead(&frame_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      if (ctx_->IsCancelled()) {
        FailSoon(absl::CancelledError("upload cancelled"));
      } else if (!begun_) {
        Done(absl::InvalidArgumentError("metadata: must come first"));
      } else {
        RunOnPool([this] { Commit(); });
      }
      return;
    }
    switch (frame_.data_case()) {
      case iv1::UploadFileChunk::kBegin:
        if (begun_) {
          FailSoon(absl::InvalidArgumentError(
              "metadata: must be sent only once, first"));
          return;
        }
        begun_ = true;
        Begin();
        return;
      case iv1::UploadFileChunk::kChunk:
        if (!begun_) {
          Done(absl::InvalidArgumentError("metadata: must come first"));
          return;
        }
        if (static_cast<int64_t>(frame_.chunk().size()) > kMaxFileFrameBytes) {
          FailSoon(absl::InvalidArgumentError(
              absl::StrCat("chunk: at most ", kMaxFileFrameBytes, " bytes")));
          return;
        }
        RunOnPool([this] { AppendChunk(); });
        return;
      default:
        FailSoon(absl::InvalidArgumentError("chunk: empty frame"));
        return;
    }
  }

  // Nothing to do here: a pending read then fails (OnReadDone(false) with
  // IsCancelled), and a running pool task checks IsCancelled when it ends;
  // both abort the upload.
  void OnCancel() override {}

  void OnDone() override { delete this; }

 private:
  // Validates the begin frame (no blocking), then checks membership and
  // starts the upload on the pool.
  void Begin() {
    const iv1::UploadFileBegin& begin = frame_.begin();
    const pv1::UploadFileMetadata& m = begin.metadata();
    if (begin.uploader_user_id() <= 0) {
      Done(absl::InvalidArgumentError("uploader_user_id: must be positive"));
      return;
    }
    absl::StatusOr<int64_t> chat_id = ParseId("chat_id", m.chat_id());
    if (!chat_id.ok()) {
      Done(chat_id.status());
      return;
    }
    int64_t limit = service_->max_file_bytes_;
    if (begin.max_file_bytes() > 0) {
      limit = std::min(limit, begin.max_file_bytes());
    }
    if (m.size_bytes() < 0) {
      Done(absl::InvalidArgumentError("size_bytes: must not be negative"));
      return;
    }
    if (m.size_bytes() > limit) {
      Done(absl::ResourceExhaustedError(
          absl::StrCat("size_bytes: at most ", limit, " bytes")));
      return;
    }
    for (absl::Status s :
         {ValidateFileName(m.name()), ValidateContentType(m.content_type()),
          ValidateSha256Hex(m.sha256())}) {
      if (!s.ok()) {
        Done(s);
        return;
      }
    }
    UploadMetadata meta;
    meta.uploader_user_id = begin.uploader_user_id();
    meta.chat_id = *chat_id;
    meta.name = m.name();
    meta.content_type = m.content_type();
    meta.size_bytes = m.size_bytes();
    meta.sha256_hex = absl::AsciiStrToLower(m.sha256());
    RunOnPool([this, meta = std::move(meta)] {
      if (ctx_->IsCancelled()) {
        Done(absl::CancelledError("upload cancelled"));
        return;
      }
      iv1::GetChatMembersRequest member;
      member.set_chat_id(meta.chat_id);
      member.set_user_id(meta.uploader_user_id);
      absl::StatusOr<iv1::GetChatMembersResponse> members =
          service_->repo_->GetChatMembers(member);
      if (!members.ok()) {
        Done(members.status());
        return;
      }
      absl::StatusOr<std::unique_ptr<BlobWriter>> writer =
          service_->blobs_->BeginUpload(meta);
      if (!writer.ok()) {
        Done(writer.status());
        return;
      }
      writer_ = std::move(*writer);
      StartRead(&frame_);
    });
  }

  // On the pool: appends the current frame's chunk, then reads the next.
  void AppendChunk() {
    absl::Status s = writer_->Append(frame_.chunk());
    if (s.ok() && ctx_->IsCancelled()) s = absl::CancelledError("cancelled");
    if (!s.ok()) {
      Fail(s);
      return;
    }
    frame_.Clear();
    StartRead(&frame_);
  }

  // On the pool: verifies and commits once the client half-closed.
  void Commit() {
    if (ctx_->IsCancelled()) {
      Fail(absl::CancelledError("upload cancelled"));
      return;
    }
    absl::StatusOr<FileRecord> file = writer_->Finish();
    writer_.reset();
    if (!file.ok()) {
      Done(file.status());
      return;
    }
    *resp_ = FileProto(*file);
    Done(absl::OkStatus());
  }

  // On the pool: drops the upload, then finishes.
  void Fail(const absl::Status& status) {
    if (writer_ != nullptr) {
      writer_->Abort();
      writer_.reset();
    }
    Done(status);
  }

  // On a reactor thread: fails, aborting on the pool when an upload exists.
  void FailSoon(const absl::Status& status) {
    if (writer_ == nullptr) {
      Done(status);
      return;
    }
    RunOnPool([this, status] { Fail(status); });
  }

  void RunOnPool(std::function<void()> fn) {
    if (!service_->workers_->TrySubmit(std::move(fn))) {
      // The writer (if any) aborts when the reactor is destroyed.
      Done(absl::UnavailableError("storage overloaded"));
    }
  }

  // The one Finish; the last touch of the reactor by the caller.
  void Done(const absl::Status& status) {
    LogFailure("UploadFile", status);
    Finish(ToGrpcStatus(status));
  }

  StorageServiceImpl* const service_;
  grpc::CallbackServerContext* const ctx_;
  pv1::File* const resp_;
  iv1::UploadFileChunk frame_;
  bool begun_ = false;
  std::unique_ptr<BlobWriter> writer_;
};

// Server-streaming download: the metadata frame, then chunks read one at a
// time on the pool, each only after the previous write completed, so at
// most one chunk is held. As for uploads, every pool task ends with
// StartWrite or Finish as its last touch of the reactor.
class StorageServiceImpl::DownloadReactor final
    : public grpc::ServerWriteReactor<pv1::DownloadFileResponse> {
 public:
  DownloadReactor(StorageServiceImpl* service, grpc::CallbackServerContext* ctx,
                  const iv1::DownloadFileRequest& req)
      : service_(service),
        ctx_(ctx),
        user_id_(req.user_id()),
        file_id_(req.file_id()),
        offset_(req.offset()) {
    if (service_->blobs_ == nullptr) {
      Done(absl::UnimplementedError("file storage disabled"));
      return;
    }
    RunOnPool([this] { Open(); });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Done(absl::CancelledError("download cancelled"));
      return;
    }
    if (offset_ >= size_) {
      Done(absl::OkStatus());
      return;
    }
    RunOnPool([this] { ReadNext(); });
  }

  void OnDone() override { delete this; }

 private:
  // On the pool: checks access and the offset, then sends the metadata.
  void Open() {
    if (ctx_->IsCancelled()) {
      Done(absl::CancelledError("download cancelled"));
      return;
    }
    if (absl::Status s = service_->repo_->CheckFileAccess(user_id_, file_id_);
        !s.ok()) {
      Done(s);
      return;
    }
    absl::StatusOr<FileRecord> file = service_->blobs_->GetFile(file_id_);
    if (!file.ok()) {
      Done(file.status());
      return;
    }
    if (offset_ < 0) {
      Done(absl::InvalidArgumentError("offset: must not be negative"));
      return;
    }
    if (offset_ > file->size_bytes) {
      Done(absl::OutOfRangeError("offset: past the end of the file"));
      return;
    }
    size_ = file->size_bytes;
    *frame_.mutable_metadata() = FileProto(*file);
    StartWrite(&frame_);
  }

  // On the pool: reads and sends the next chunk.
  void ReadNext() {
    if (ctx_->IsCancelled()) {
      Done(absl::CancelledError("download cancelled"));
      return;
    }
    std::string* chunk = frame_.mutable_chunk();
    const int64_t want = std::min(kMaxFileFrameBytes, size_ - offset_);
    if (absl::Status s =
            service_->blobs_->ReadRange(file_id_, offset_, want, chunk);
        !s.ok()) {
      Done(s);
      return;
    }
    if (chunk->empty()) {
      Done(absl::InternalError("file content ended early"));
      return;
    }
    offset_ += static_cast<int64_t>(chunk->size());
    StartWrite(&frame_);
  }

  void RunOnPool(std::function<void()> fn) {
    if (!service_->workers_->TrySubmit(std::move(fn))) {
      Done(absl::UnavailableError("storage overloaded"));
    }
  }

  void Done(const absl::Status& status) {
    LogFailure("DownloadFile", status);
    Finish(ToGrpcStatus(status));
  }

  StorageServiceImpl* const service_;
  grpc::CallbackServerContext* const ctx_;
  const int64_t user_id_;
  const int64_t file_id_;
  int64_t offset_;
  int64_t size_ = 0;
  pv1::DownloadFileResponse frame_;
};

grpc::ServerReadReactor<iv1::UploadFileChunk>* StorageServiceImpl::UploadFile(
    grpc::CallbackServerContext* ctx, pv1::File* resp) {
  return new UploadReactor(this, ctx, resp);
}

grpc::ServerWriteReactor<pv1::DownloadFileResponse>*
StorageServiceImpl::DownloadFile(grpc::CallbackServerContext* ctx,
                                 const iv1::DownloadFileRequest* req) {
  return new DownloadReactor(this, ctx, *req);
}

}  // namespace parley::storage
