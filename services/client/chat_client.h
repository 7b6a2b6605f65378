// A thin synchronous wrapper over the public AuthService and ChatService
// stubs: every unary call gets a deadline and, for ChatService, the
// `authorization: Bearer <token>` metadata.
//
//   auto client = ChatClient::Create("127.0.0.1:50051", token);
//   absl::StatusOr<v1::Chat> chat = client->CreateDirectChat("42");
#ifndef PARLEY_SERVICES_CLIENT_CHAT_CLIENT_H_
#define PARLEY_SERVICES_CLIENT_CHAT_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/grpc_util.h"
#include "parley/v1/parley.grpc.pb.h"
#include "parley/v1/parley.pb.h"

namespace parley::client {

namespace v1 = ::parley::v1;

using ConnectStream =
    grpc::ClientReaderWriter<v1::ClientFrame, v1::ServerFrame>;

class ChatClient {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeout{10000};

  ChatClient(std::shared_ptr<grpc::Channel> channel, std::string token,
             std::chrono::milliseconds timeout = kDefaultTimeout);

  // A client on a keepalive channel (parley::MakeChannel) to `gateway`,
  // over TLS when `tls` is enabled.
  static std::unique_ptr<ChatClient> Create(
      const std::string& gateway, std::string token,
      std::chrono::milliseconds timeout = kDefaultTimeout,
      const TlsCredentials& tls = TlsCredentials());

  const std::string& token() const { return token_; }
  void set_token(std::string token) { token_ = std::move(token); }

  // AuthService (no token needed).
  absl::StatusOr<v1::RegisterResponse> Register(
      const std::string& username, const std::string& password,
      const std::string& display_name);
  absl::StatusOr<v1::LoginResponse> Login(const std::string& username,
                                          const std::string& password);

  // ChatService.
  absl::StatusOr<v1::Chat> CreateDirectChat(const std::string& peer_user_id);
  absl::StatusOr<v1::Chat> CreateGroupChat(
      const std::string& title, const std::vector<std::string>& member_ids);
  absl::StatusOr<v1::Chat> AddMembers(const std::string& chat_id,
                                      const std::vector<std::string>& user_ids);
  absl::StatusOr<v1::Chat> RemoveMember(const std::string& chat_id,
                                        const std::string& user_id);
  absl::StatusOr<v1::ListChatsResponse> ListChats(
      int32_t page_size, const std::string& page_token);
  // Every page of ListChats.
  absl::StatusOr<std::vector<v1::Chat>> ListAllChats();
  absl::StatusOr<v1::Message> SendMessage(
      const v1::SendMessageRequest& request);
  absl::StatusOr<v1::ListMessagesResponse> ListMessages(
      const std::string& chat_id, uint64_t before_seq, int32_t page_size);
  absl::StatusOr<v1::SyncChatResponse> SyncChat(const std::string& chat_id,
                                                uint64_t after_seq,
                                                int32_t page_size);

  // Opens the Connect stream on `ctx`, which gets the token but no deadline
  // (the stream lives until cancelled). Cancel with ctx->TryCancel().
  std::unique_ptr<ConnectStream> Connect(grpc::ClientContext* ctx);

 private:
  void PrepareContext(grpc::ClientContext* ctx, bool with_deadline,
                      bool with_token = true) const;

  std::unique_ptr<v1::AuthService::Stub> auth_;
  std::unique_ptr<v1::ChatService::Stub> chat_;
  std::string token_;
  std::chrono::milliseconds timeout_;
};

// A random 128-bit idempotency key as 32 lower-case hex characters.
std::string NewClientMessageId();

}  // namespace parley::client

#endif  // PARLEY_SERVICES_CLIENT_CHAT_CLIENT_H_
