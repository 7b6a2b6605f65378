#include "services/client/chat_client.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "common/grpc_util.h"
#include "services/client/client_status.h"

namespace parley::client {

ChatClient::ChatClient(std::shared_ptr<grpc::Channel> channel,
                       std::string token, std::chrono::milliseconds timeout)
    : auth_(v1::AuthService::NewStub(channel)),
      chat_(v1::ChatService::NewStub(channel)),
      token_(std::move(token)),
      timeout_(timeout) {}

std::unique_ptr<ChatClient> ChatClient::Create(
    const std::string& gateway, std::string token,
    std::chrono::milliseconds timeout, const TlsCredentials& tls) {
  return std::make_unique<ChatClient>(parley::MakeChannel(gateway, tls),
                                      std::move(token), timeout);
}

void ChatClient::PrepareContext(grpc::ClientContext* ctx, bool with_deadline,
                                bool with_token) const {
  // Not parley::SetTimeout: that one also sets wait_for_ready, but a user
  // should hear at once that the gateway is unreachable (fail fast).
  if (with_deadline) {
    ctx->set_deadline(std::chrono::system_clock::now() + timeout_);
  }
  if (with_token && !token_.empty()) {
    ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  }
}

absl::StatusOr<v1::RegisterResponse> ChatClient::Register(
    const std::string& username, const std::string& password,
    const std::string& display_name) {
  v1::RegisterRequest req;
  req.set_username(username);
  req.set_password(password);
  req.set_display_name(display_name);
  v1::RegisterResponse resp;
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true, /*with_token=*/false);
  grpc::Status s = auth_->Register(&ctx, req, &resp);
  if (!s.ok()) return StatusFromGrpc(s);
  return resp;
}

absl::StatusOr<v1::LoginResponse> ChatClient::Login(
    const std::string& username, const std::string& password) {
  v1::LoginRequest req;
  req.set_username(username);
  req.set_password(password);
  v1::LoginResponse resp;
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true, /*with_token=*/false);
  grpc::Status s = auth_->Login(&ctx, req, &resp);
  if (!s.ok()) return StatusFromGrpc(s);
  return resp;
}

absl::StatusOr<v1::Chat> ChatClient::CreateDirectChat(
    const std::string& peer_user_id) {
  v1::CreateDirectChatRequest req;
  req.set_peer_user_id(peer_user_id);
  v1::Chat resp;
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true);
  grpc::Status s = chat_->CreateDirectChat(&ctx, req, &resp);
  if (!s.ok()) return StatusFromGrpc(s);
  return resp;
}

absl::StatusOr<v1::Chat> ChatClient::CreateGroupChat(
    const std::string& title, const std::vector<std::string>& member_ids) {
  v1::CreateGroupChatRequest req;
  req.set_title(title);
  for (const std::string& id : member_ids) req.add_member_user_ids(id);
  v1::Chat resp;
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true);
  grpc::Status s = chat_->CreateGroupChat(&ctx, req, &resp);
  if (!s.ok()) return StatusFromGrpc(s);
  return resp;
}

absl::StatusOr<v1::Chat> ChatClient::AddMembers(
    const std::string& chat_id, const std::vector<std::string>& user_ids) {
  v1::AddMembersRequest req;
  req.set_chat_id(chat_id);
  for (const std::string& id : user_ids) req.add_user_ids(id);
  v1::Chat resp;
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true);
  grpc::Status s = chat_->AddMembers(&ctx, req, &resp);
  if (!s.ok()) return StatusFromGrpc(s);
  return resp;
}

absl::StatusOr<v1::Chat> ChatClient::RemoveMember(const std::string& chat_id,
                                                  const std::string& user_id) {
  v1::RemoveMemberRequest req;
  req.set_chat_id(chat_id);
  req.set_user_id(user_id);
  v1::Chat resp;
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true);
  grpc::Status s = chat_->RemoveMember(&ctx, req, &resp);
  if (!s.ok()) return StatusFromGrpc(s);
  return resp;
}

absl::StatusOr<v1::ListChatsResponse> ChatClient::ListChats(
    int32_t page_size, const std::string& page_token) {
  v1::ListChatsRequest req;
  req.set_page_size(page_size);
  req.set_page_token(page_token);
  v1::ListChatsResponse resp;
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true);
  grpc::Status s = chat_->ListChats(&ctx, req, &resp);
  if (!s.ok()) return StatusFromGrpc(s);
  return resp;
}

absl::StatusOr<std::vector<v1::Chat>> ChatClient::ListAllChats() {
  std::vector<v1::Chat> chats;
  std::string page_token;
  // Bounded so that a server handing out the same token forever cannot
  // keep the client looping.
  for (int page = 0; page < 10000; ++page) {
    absl::StatusOr<v1::ListChatsResponse> resp = ListChats(500, page_token);
    if (!resp.ok()) return resp.status();
    for (v1::Chat& c : *resp->mutable_chats()) chats.push_back(std::move(c));
    if (resp->next_page_token().empty() ||
        resp->next_page_token() == page_token) {
      break;
    }
    page_token = resp->next_page_token();
  }
  return chats;
}

absl::StatusOr<v1::Message> ChatClient::SendMessage(
    const v1::SendMessageRequest& request) {
  v1::Message resp;
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true);
  grpc::Status s = chat_->SendMessage(&ctx, request, &resp);
  if (!s.ok()) return StatusFromGrpc(s);
  return resp;
}

absl::StatusOr<v1::ListMessagesResponse> ChatClient::ListMessages(
    const std::string& chat_id, uint64_t before_seq, int32_t page_size) {
  v1::ListMessagesRequest req;
  req.set_chat_id(chat_id);
  req.set_before_seq(before_seq);
  req.set_page_size(page_size);
  v1::ListMessagesResponse resp;
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true);
  grpc::Status s = chat_->ListMessages(&ctx, req, &resp);
  if (!s.ok()) return StatusFromGrpc(s);
  return resp;
}

absl::StatusOr<v1::SyncChatResponse> ChatClient::SyncChat(
    const std::string& chat_id, uint64_t after_seq, int32_t page_size) {
  v1::SyncChatRequest req;
  req.set_chat_id(chat_id);
  req.set_after_seq(after_seq);
  req.set_page_size(page_size);
  v1::SyncChatResponse resp;
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true);
  grpc::Status s = chat_->SyncChat(&ctx, req, &resp);
  if (!s.ok()) return StatusFromGrpc(s);
  return resp;
}

std::unique_ptr<ConnectStream> ChatClient::Connect(grpc::ClientContext* ctx) {
  PrepareContext(ctx, false);
  return chat_->Connect(ctx);
}

std::string NewClientMessageId() {
  // std::random_device reads the kernel's CSPRNG on Linux.
  thread_local std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (int word = 0; word < 4; ++word) {
    uint32_t v = rd();
    for (int i = 0; i < 8; ++i) {
      out.push_back(kHex[v & 0xf]);
      v >>= 4;
    }
  }
  return out;
}

}  // namespace parley::client
