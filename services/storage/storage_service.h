// gRPC face of the storage service. Each call is handed to a ThreadPool
// (sized like the PostgreSQL pool) and finished from there, so no reactor
// thread ever blocks on the database. A full queue answers UNAVAILABLE; a
// call whose deadline already passed is skipped.
//
//   parley::storage::StorageRepository repo(&pg_pool);
//   parley::ThreadPool workers("storage", 8, 512);
//   parley::storage::StorageServiceImpl service(&repo, &workers);
//   auto server = parley::StartServer(options, {&service});
#ifndef PARLEY_SERVICES_STORAGE_STORAGE_SERVICE_H_
#define PARLEY_SERVICES_STORAGE_STORAGE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "common/thread_pool.h"
#include "parley/internal/v1/storage.grpc.pb.h"
#include "services/storage/append_batcher.h"
#include "services/storage/blob_store.h"
#include "services/storage/storage_repository.h"

namespace parley::storage {

// Upload limit when neither the server nor the request sets one (100 MiB).
inline constexpr int64_t kDefaultMaxFileBytes = int64_t{100} << 20;
// Largest content frame of UploadFile and DownloadFile.
inline constexpr int64_t kMaxFileFrameBytes = int64_t{1} << 20;

class StorageServiceImpl final
    : public internal::v1::StorageService::CallbackService {
 public:
  // Neither is owned; both must outlive the server. Without a BlobStore,
  // UploadFile and DownloadFile answer UNIMPLEMENTED. `max_file_bytes` caps
  // every upload and is the limit of an UploadFileBegin that names none.
  StorageServiceImpl(StorageRepository* repo, ThreadPool* workers,
                     BlobStore* blobs = nullptr,
                     int64_t max_file_bytes = kDefaultMaxFileBytes);

  // Routes AppendMessage through `batcher` (group commit) instead of one
  // transaction per call. Not owned; call before the server starts.
  void set_append_batcher(AppendBatcher* batcher) { batcher_ = batcher; }

  grpc::ServerUnaryReactor* CreateUser(
      grpc::CallbackServerContext* ctx,
      const internal::v1::CreateUserRequest* req, v1::User* resp) override;
  grpc::ServerUnaryReactor* GetUserCredentials(
      grpc::CallbackServerContext* ctx,
      const internal::v1::GetUserCredentialsRequest* req,
      internal::v1::UserCredentials* resp) override;
  grpc::ServerUnaryReactor* CreateAccessToken(
      grpc::CallbackServerContext* ctx,
      const internal::v1::CreateAccessTokenRequest* req,
      internal::v1::CreateAccessTokenResponse* resp) override;
  grpc::ServerUnaryReactor* ResolveAccessToken(
      grpc::CallbackServerContext* ctx,
      const internal::v1::ResolveAccessTokenRequest* req,
      internal::v1::ResolveAccessTokenResponse* resp) override;
  grpc::ServerUnaryReactor* CreateDirectChat(
      grpc::CallbackServerContext* ctx,
      const internal::v1::CreateDirectChatRequest* req,
      v1::Chat* resp) override;
  grpc::ServerUnaryReactor* CreateGroupChat(
      grpc::CallbackServerContext* ctx,
      const internal::v1::CreateGroupChatRequest* req, v1::Chat* resp) override;
  grpc::ServerUnaryReactor* AddMembers(
      grpc::CallbackServerContext* ctx,
      const internal::v1::AddMembersRequest* req,
      internal::v1::ChatEventResult* resp) override;
  grpc::ServerUnaryReactor* RemoveMember(
      grpc::CallbackServerContext* ctx,
      const internal::v1::RemoveMemberRequest* req,
      internal::v1::ChatEventResult* resp) override;
  grpc::ServerUnaryReactor* ListChats(grpc::CallbackServerContext* ctx,
                                      const internal::v1::ListChatsRequest* req,
                                      v1::ListChatsResponse* resp) override;
  grpc::ServerUnaryReactor* GetChat(grpc::CallbackServerContext* ctx,
                                    const internal::v1::GetChatRequest* req,
                                    v1::Chat* resp) override;
  grpc::ServerUnaryReactor* AppendMessage(
      grpc::CallbackServerContext* ctx,
      const internal::v1::AppendMessageRequest* req,
      internal::v1::ChatEventResult* resp) override;
  grpc::ServerUnaryReactor* AppendMessages(
      grpc::CallbackServerContext* ctx,
      const internal::v1::AppendMessagesRequest* req,
      internal::v1::AppendMessagesResponse* resp) override;
  grpc::ServerUnaryReactor* ListMessages(
      grpc::CallbackServerContext* ctx,
      const internal::v1::ListMessagesRequest* req,
      v1::ListMessagesResponse* resp) override;
  grpc::ServerUnaryReactor* SyncChat(grpc::CallbackServerContext* ctx,
                                     const internal::v1::SyncChatRequest* req,
                                     v1::SyncChatResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateReceipt(
      grpc::CallbackServerContext* ctx,
      const internal::v1::UpdateReceiptRequest* req,
      internal::v1::UpdateReceiptResponse* resp) override;
  grpc::ServerUnaryReactor* ListContacts(
      grpc::CallbackServerContext* ctx,
      const internal::v1::ListContactsRequest* req,
      internal::v1::ListContactsResponse* resp) override;
  grpc::ServerUnaryReactor* GetChatMembers(
      grpc::CallbackServerContext* ctx,
      const internal::v1::GetChatMembersRequest* req,
      internal::v1::GetChatMembersResponse* resp) override;
  grpc::ServerUnaryReactor* RecordLastSeen(
      grpc::CallbackServerContext* ctx,
      const internal::v1::RecordLastSeenRequest* req,
      internal::v1::RecordLastSeenResponse* resp) override;
  grpc::ServerUnaryReactor* GetVisibleUsers(
      grpc::CallbackServerContext* ctx,
      const internal::v1::GetVisibleUsersRequest* req,
      internal::v1::GetVisibleUsersResponse* resp) override;
  grpc::ServerUnaryReactor* EditMessage(
      grpc::CallbackServerContext* ctx,
      const internal::v1::EditMessageRequest* req,
      internal::v1::ChatEventResult* resp) override;
  grpc::ServerUnaryReactor* DeleteMessage(
      grpc::CallbackServerContext* ctx,
      const internal::v1::DeleteMessageRequest* req,
      internal::v1::ChatEventResult* resp) override;
  grpc::ServerUnaryReactor* AddReaction(
      grpc::CallbackServerContext* ctx,
      const internal::v1::ReactionRequest* req,
      internal::v1::ChatEventResult* resp) override;
  grpc::ServerUnaryReactor* RemoveReaction(
      grpc::CallbackServerContext* ctx,
      const internal::v1::ReactionRequest* req,
      internal::v1::ChatEventResult* resp) override;
  grpc::ServerReadReactor<internal::v1::UploadFileChunk>* UploadFile(
      grpc::CallbackServerContext* ctx, v1::File* resp) override;
  grpc::ServerWriteReactor<v1::DownloadFileResponse>* DownloadFile(
      grpc::CallbackServerContext* ctx,
      const internal::v1::DownloadFileRequest* req) override;

 private:
  class UploadReactor;
  class DownloadReactor;

  // Runs `call` (returning absl::StatusOr<Response>) on a worker and
  // finishes the call's default reactor with its outcome.
  template <typename Response, typename Call>
  grpc::ServerUnaryReactor* Dispatch(grpc::CallbackServerContext* ctx,
                                     const char* method, Response* resp,
                                     Call call);

  StorageRepository* const repo_;
  ThreadPool* const workers_;
  BlobStore* const blobs_;
  const int64_t max_file_bytes_;
  AppendBatcher* batcher_ = nullptr;
};

}  // namespace parley::storage

#endif  // PARLEY_SERVICES_STORAGE_STORAGE_SERVICE_H_
