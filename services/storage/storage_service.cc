#include "services/storage/storage_service.h"

#include <chrono>
#include <utility>

#include "absl/status/statusor.h"
#include "common/logging.h"
#include "common/status_util.h"

namespace parley::storage {

namespace iv1 = ::parley::internal::v1;
namespace pv1 = ::parley::v1;

StorageServiceImpl::StorageServiceImpl(StorageRepository* repo,
                                       ThreadPool* workers)
    : repo_(repo), workers_(workers) {}

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
        if (result.ok()) {
          *resp = std::move(*result);
        } else if (result.status().code() == absl::StatusCode::kInternal ||
                   result.status().code() == absl::StatusCode::kUnavailable) {
          spdlog::warn("{} failed: {}", method, result.status().ToString());
        } else {
          spdlog::debug("{} failed: {}", method, result.status().ToString());
        }
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
  return Dispatch(ctx, "AppendMessage", resp,
                  [this, req] { return repo_->AppendMessage(*req); });
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

}  // namespace parley::storage
