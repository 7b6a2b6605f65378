// ChatService: token check, request parsing, and forwarding to storage (reads,
// chat creation) or to a message instance (writes that produce events). Every
// handler is asynchronous end to end; no reactor thread ever blocks.
#ifndef PARLEY_SERVICES_GATEWAY_CHAT_SERVICE_H_
#define PARLEY_SERVICES_GATEWAY_CHAT_SERVICE_H_

#include <google/protobuf/empty.pb.h>

#include <atomic>
#include <chrono>
#include <functional>

#include "parley/internal/v1/presence.grpc.pb.h"
#include "parley/internal/v1/storage.grpc.pb.h"
#include "parley/v1/parley.grpc.pb.h"
#include "services/gateway/client_stream.h"
#include "services/gateway/connection_registry.h"
#include "services/gateway/file_transfer.h"
#include "services/gateway/message_backends.h"
#include "services/gateway/rate_limiter.h"
#include "services/gateway/send_sequencer.h"
#include "services/gateway/token_authenticator.h"
#include "services/gateway/typing_marks.h"

namespace parley::gateway {

// A per-user token bucket: `rate_per_s` calls per second on average, up to
// `burst` at once; rate 0 means unlimited.
struct RateLimit {
  double rate_per_s = 0;
  double burst = 1;
};

struct ChatOptions {
  int max_group_members = 10000;
  std::chrono::milliseconds backend_timeout{5000};
  ClientStreamOptions stream;
  FileTransferOptions files;
  // Event writes: SendMessage, EditMessage, DeleteMessage, AddReaction,
  // RemoveReaction, AddMembers, RemoveMember share one bucket per user.
  RateLimit writes{20, 200};
  // Sends (unary and stream) this gateway has in flight at once, all users
  // together; beyond it a send is refused at once with RESOURCE_EXHAUSTED
  // and a retry delay, so that an overloaded cluster answers quickly rather
  // than queueing for seconds. 0: no limit.
  int max_inflight_sends = 1024;
  // SetTyping and the stream's typing frames.
  RateLimit typing{5, 30};
  // MarkRead and the stream's ack frames.
  RateLimit receipts{50, 500};
  // Connect (each authenticated stream open).
  RateLimit connects{1, 30};
};

class ChatServiceImpl final : public parley::v1::ChatService::CallbackService,
                              public ClientFrameSink {
 public:
  ChatServiceImpl(ChatOptions options,
                  ::parley::internal::v1::StorageService::StubInterface* storage,
                  ::parley::internal::v1::PresenceService::StubInterface* presence,
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
  grpc::ServerUnaryReactor* EditMessage(
      grpc::CallbackServerContext* ctx,
      const parley::v1::EditMessageRequest* req,
      parley::v1::Message* resp) override;
  grpc::ServerUnaryReactor* DeleteMessage(
      grpc::CallbackServerContext* ctx,
      const parley::v1::DeleteMessageRequest* req,
      parley::v1::Message* resp) override;
  grpc::ServerUnaryReactor* AddReaction(
      grpc::CallbackServerContext* ctx,
      const parley::v1::AddReactionRequest* req,
      parley::v1::Message* resp) override;
  grpc::ServerUnaryReactor* RemoveReaction(
      grpc::CallbackServerContext* ctx,
      const parley::v1::RemoveReactionRequest* req,
      parley::v1::Message* resp) override;
  grpc::ServerReadReactor<parley::v1::UploadFileRequest>* UploadFile(
      grpc::CallbackServerContext* ctx, parley::v1::File* resp) override;
  grpc::ServerWriteReactor<parley::v1::DownloadFileResponse>* DownloadFile(
      grpc::CallbackServerContext* ctx,
      const parley::v1::DownloadFileRequest* req) override;
  grpc::ServerUnaryReactor* MarkRead(grpc::CallbackServerContext* ctx,
                                     const parley::v1::MarkReadRequest* req,
                                     google::protobuf::Empty* resp) override;
  grpc::ServerUnaryReactor* SetTyping(grpc::CallbackServerContext* ctx,
                                      const parley::v1::SetTypingRequest* req,
                                      google::protobuf::Empty* resp) override;
  grpc::ServerUnaryReactor* GetPresence(
      grpc::CallbackServerContext* ctx,
      const parley::v1::GetPresenceRequest* req,
      parley::v1::GetPresenceResponse* resp) override;

  // ClientFrameSink: stream frames, best effort.
  void OnTypingFrame(int64_t user_id,
                     const parley::v1::TypingFrame& frame) override;
  void OnAckFrame(int64_t user_id, const parley::v1::AckFrame& frame) override;
  void OnSendFrame(int64_t user_id, uint64_t stream_id,
                   const parley::v1::SendMessageRequest& send,
                   std::function<void(parley::v1::SendResult)> done) override;

 private:
  // Sends a message for `user` through a message instance (another one if
  // the first is unreachable). `stream_id` is the client stream the send
  // came in on (0 for a unary call): the event skips that stream.
  void Send(int64_t user, const parley::v1::SendMessageRequest& req,
            uint64_t stream_id, std::chrono::milliseconds timeout,
            std::function<void(absl::StatusOr<parley::v1::Message>)> done);
  // Parses chat_id and message_id and forwards a reaction change.
  template <typename PublicRequest>
  grpc::ServerUnaryReactor* React(grpc::CallbackServerContext* ctx,
                                  const PublicRequest* req,
                                  parley::v1::Message* resp, bool add);
  // Checks membership, then starts/refreshes/stops the typing indicator.
  void Typing(int64_t user_id, int64_t chat_id, bool typing,
              std::chrono::milliseconds timeout,
              std::function<void(absl::Status)> done);
  // Moves the caller's watermarks through a message instance.
  void Receipt(int64_t user_id, int64_t chat_id, uint64_t delivered,
               uint64_t read, std::chrono::milliseconds timeout,
               std::function<void(absl::Status)> done);

  // Authenticates the call, then (when `limiter` is set) takes a token of
  // the user's bucket, refusing the call with RESOURCE_EXHAUSTED "<what>
  // rate exceeded; retry after N ms" and `retry-after-ms` trailing metadata
  // when there is none, then runs `body(user_id, reactor, timeout)`.
  template <typename Body>
  grpc::ServerUnaryReactor* Authed(grpc::CallbackServerContext* ctx, Body body,
                                   RateLimiter* limiter = nullptr,
                                   const char* what = "");

  const ChatOptions options_;
  ::parley::internal::v1::StorageService::StubInterface* const storage_;
  ::parley::internal::v1::PresenceService::StubInterface* const presence_;
  MessageBackends* const messages_;
  TokenAuthenticator* const auth_;
  ConnectionRegistry* const registry_;
  RateLimiter write_limiter_;
  RateLimiter typing_limiter_;
  RateLimiter receipt_limiter_;
  RateLimiter connect_limiter_;
  TypingMarks typing_marks_{{}};
  std::atomic<int> sends_in_flight_{0};
  // Stream sends, kept in order per stream and chat.
  SendSequencer sequencer_;
};

}  // namespace parley::gateway

#endif  // PARLEY_SERVICES_GATEWAY_CHAT_SERVICE_H_
