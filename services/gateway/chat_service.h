// ChatService: token check, request parsing, and forwarding to storage (reads,
// chat creation) or to a message instance (writes that produce events). Every
// handler is asynchronous end to end; no reactor thread ever blocks.
#ifndef PARLEY_SERVICES_GATEWAY_CHAT_SERVICE_H_
#define PARLEY_SERVICES_GATEWAY_CHAT_SERVICE_H_

#include <chrono>

#include "parley/internal/v1/storage.grpc.pb.h"
#include "parley/v1/parley.grpc.pb.h"
#include "services/gateway/client_stream.h"
#include "services/gateway/connection_registry.h"
#include "services/gateway/message_backends.h"
#include "services/gateway/token_authenticator.h"

namespace parley::gateway {

struct ChatOptions {
  int max_group_members = 10000;
  std::chrono::milliseconds backend_timeout{5000};
  ClientStreamOptions stream;
};

class ChatServiceImpl final : public parley::v1::ChatService::CallbackService {
 public:
  ChatServiceImpl(ChatOptions options,
                  ::parley::internal::v1::StorageService::StubInterface* storage,
                  MessageBackends* messages, TokenAuthenticator* auth,
                  ConnectionRegistry* registry);

  grpc::ServerBidiReactor<parley::v1::ClientFrame, parley::v1::ServerFrame>*
  Connect(grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* CreateDirectChat(
      grpc::CallbackServerContext* ctx,
      const parley::v1::CreateDirectChatRequest* req,
      parley::v1::Chat* resp) override;
  grpc::ServerUnaryReactor* CreateGroupChat(
      grpc::CallbackServerContext* ctx,
      const parley::v1::CreateGroupChatRequest* req,
      parley::v1::Chat* resp) override;
  grpc::ServerUnaryReactor* AddMembers(grpc::CallbackServerContext* ctx,
                                       const parley::v1::AddMembersRequest* req,
                                       parley::v1::Chat* resp) override;
  grpc::ServerUnaryReactor* RemoveMember(
      grpc::CallbackServerContext* ctx,
      const parley::v1::RemoveMemberRequest* req,
      parley::v1::Chat* resp) override;
  grpc::ServerUnaryReactor* ListChats(grpc::CallbackServerContext* ctx,
                                      const parley::v1::ListChatsRequest* req,
                                      parley::v1::ListChatsResponse* resp) override;
  grpc::ServerUnaryReactor* SendMessage(
      grpc::CallbackServerContext* ctx,
      const parley::v1::SendMessageRequest* req,
      parley::v1::Message* resp) override;
  grpc::ServerUnaryReactor* ListMessages(
      grpc::CallbackServerContext* ctx,
      const parley::v1::ListMessagesRequest* req,
      parley::v1::ListMessagesResponse* resp) override;
  grpc::ServerUnaryReactor* SyncChat(grpc::CallbackServerContext* ctx,
                                     const parley::v1::SyncChatRequest* req,
                                     parley::v1::SyncChatResponse* resp) override;

 private:
  template <typename Body>
  grpc::ServerUnaryReactor* Authed(grpc::CallbackServerContext* ctx, Body body);

  const ChatOptions options_;
  ::parley::internal::v1::StorageService::StubInterface* const storage_;
  MessageBackends* const messages_;
  TokenAuthenticator* const auth_;
  ConnectionRegistry* const registry_;
};

}  // namespace parley::gateway

#endif  // PARLEY_SERVICES_GATEWAY_CHAT_SERVICE_H_
