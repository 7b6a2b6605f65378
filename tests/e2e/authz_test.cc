// Authorization matrix: every public RPC called as every kind of principal,
// each cell asserting the exact status code.
//
// Principals: no token, an expired token (issued by a gateway whose tokens
// live one second, then really expired), a forged token (well-formed, never
// issued), an altered token (a real one with one character changed), a user
// who is not a member of the target group, a member, and the group's admin
// (its creator). RPCs that concern no chat (Register, Login, ListChats, ...)
// have the same rows: there "member" and "admin" are simply signed-in users.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/credentials.h"
#include "gtest/gtest.h"
#include "tests/e2e/test_client.h"
#include "tests/support/cluster.h"

namespace parley::e2e {
namespace {

using Code = grpc::StatusCode;
using Stub = v1::ChatService::Stub;

enum Principal {
  kNoToken,
  kExpired,
  kForged,
  kAltered,
  kNonMember,
  kMember,
  kAdmin,
  kPrincipals
};

const char* PrincipalName(Principal p) {
  static const char* const kNames[] = {"no token", "expired", "forged",
                                       "altered",  "non-member", "member",
                                       "admin"};
  return kNames[p];
}

class AuthzTest : public testing::SharedClusterTest {
 protected:
  static void SetUpTestSuite() {
    // gateway1 issues tokens that expire after one second.
    testing::Cluster::Options options;
    options.gateways = 2;
    options.extra_flags["gateway1"] = {"--token_ttl_s=1"};
    StartCluster(options);
  }

  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    api_ = std::make_unique<Api>(cluster_->gateway_address(0));
    admin_ = api_->NewUser("admin");
    member_ = api_->NewUser("member");
    outsider_ = api_->NewUser("outsider");
    group_ = api_->Group(admin_, "team", {member_});
    ASSERT_FALSE(HasFailure());
  }

  // The token a principal sends ("" for none).
  std::string Token(Principal p) const {
    switch (p) {
      case kNoToken: return "";
      case kExpired: return expired_token_;
      case kForged: return GenerateAccessToken();
      case kAltered: {
        std::string t = member_.token;
        t.back() = t.back() == 'A' ? 'B' : 'A';
        return t;
      }
      case kNonMember: return outsider_.token;
      case kMember: return member_.token;
      default: return admin_.token;
    }
  }

  // A context with a deadline and the principal's token.
  void Prepare(grpc::ClientContext* ctx, Principal p) const {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (const std::string t = Token(p); !t.empty()) {
      ctx->AddMetadata("authorization", "Bearer " + t);
    }
  }

  // A user whose token comes from the short-lived gateway and who is a
  // member of the group; waits until the token has really expired.
  void MakeExpiredToken() {
    Api short_lived(cluster_->gateway_address(1));
    v1::RegisterRequest req;
    req.set_username(UniqueName("expiring"));
    req.set_password("password-long-enough");
    v1::RegisterResponse resp;
    grpc::Status s = short_lived.Register(req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    v1::AddMembersRequest add;
    add.set_chat_id(group_.chat_id());
    add.add_user_ids(resp.user().user_id());
    v1::Chat chat;
    s = api_->Call(admin_.token, &Stub::AddMembers, add, &chat);
    ASSERT_TRUE(s.ok()) << s.error_message();
    // The token works while it lives (and both gateways have seen it).
    v1::ListChatsResponse chats;
    for (Api* api : {api_.get(), &short_lived}) {
      s = api->Call(resp.access_token(), &Stub::ListChats, v1::ListChatsRequest(),
                    &chats);
      ASSERT_TRUE(s.ok()) << s.error_message();
    }
    const auto expire = std::chrono::system_clock::time_point(
        std::chrono::seconds(resp.expire_time().seconds()) +
        std::chrono::nanoseconds(resp.expire_time().nanos()));
    ASSERT_LE(expire - std::chrono::system_clock::now(), std::chrono::seconds(2));
    std::this_thread::sleep_until(expire + std::chrono::milliseconds(50));
    expired_token_ = resp.access_token();
  }

  template <typename Req, typename Resp>
  Code Unary(Principal p,
             grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
             const Req& req) {
    Resp resp;
    return api_->Call(Token(p), method, req, &resp).error_code();
  }

  // A message by the member in the group (fresh, so that deleting one
  // does not affect another cell).
  std::string MemberMessage() {
    return api_->Send(member_, group_.chat_id(), "from the member").message_id();
  }

  std::unique_ptr<Api> api_;
  TestUser admin_, member_, outsider_;
  v1::Chat group_;
  std::string expired_token_;
};


struct Cell {
  const char* rpc;
  Principal principal;
  Code expected;
};

TEST_F(AuthzTest, EveryRpcAnswersEveryPrincipalExactly) {
  MakeExpiredToken();
  ASSERT_FALSE(HasFailure());

  // A file the member uploaded and shared in the group: members may
  // download it, others may not.
  v1::File file;
  ASSERT_TRUE(api_->Upload(member_.token, group_.chat_id(), "abc", &file).ok());
  const std::string shared_file = file.file_id();
  {
    v1::SendMessageRequest send;
    send.set_chat_id(group_.chat_id());
    send.set_client_message_id("share");
    send.set_file_id(shared_file);
    v1::Message m;
    grpc::Status s = api_->Call(member_.token, &Stub::SendMessage, send, &m);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // Each RPC as a call made by a principal.
  using Call = std::function<Code(Principal)>;
  const std::string chat = group_.chat_id();
  int sends = 0;
  std::map<std::string, Call> calls;
  calls["Register"] = [&](Principal p) {
    grpc::ClientContext ctx;
    Prepare(&ctx, p);
    v1::RegisterRequest req;
    req.set_username(UniqueName("reg"));
    req.set_password("password-long-enough");
    v1::RegisterResponse resp;
    return v1::AuthService::NewStub(grpc::CreateChannel(
               cluster_->gateway_address(0), grpc::InsecureChannelCredentials()))
        ->Register(&ctx, req, &resp)
        .error_code();
  };
  calls["Login"] = [&](Principal p) {
    grpc::ClientContext ctx;
    Prepare(&ctx, p);
    v1::LoginRequest req;
    req.set_username(member_.username);
    req.set_password("password-" + member_.username);
    v1::LoginResponse resp;
    return v1::AuthService::NewStub(grpc::CreateChannel(
               cluster_->gateway_address(0), grpc::InsecureChannelCredentials()))
        ->Login(&ctx, req, &resp)
        .error_code();
  };
  calls["Connect"] = [&](Principal p) {
    grpc::ClientContext ctx;
    Prepare(&ctx, p);
    auto stream = api_->chat()->Connect(&ctx);
    v1::ClientFrame ping;
    ping.mutable_ping()->set_nonce(7);
    stream->Write(ping);
    v1::ServerFrame frame;
    bool ponged = false;
    while (!ponged && stream->Read(&frame)) ponged = frame.has_pong();
    stream->WritesDone();
    while (stream->Read(&frame)) {
    }
    const grpc::Status s = stream->Finish();
    // A stream that ended cleanly must have answered the ping.
    return s.ok() && !ponged ? Code::UNKNOWN : s.error_code();
  };
  calls["CreateDirectChat"] = [&](Principal p) {
    v1::CreateDirectChatRequest req;
    req.set_peer_user_id(api_->NewUser("peer").user_id);
    return Unary(p, &Stub::CreateDirectChat, req);
  };
  calls["CreateGroupChat"] = [&](Principal p) {
    v1::CreateGroupChatRequest req;
    req.set_title("new group");
    req.add_member_user_ids(member_.user_id);
    return Unary(p, &Stub::CreateGroupChat, req);
  };
  calls["AddMembers"] = [&](Principal p) {
    v1::AddMembersRequest req;
    req.set_chat_id(chat);
    req.add_user_ids(api_->NewUser("joiner").user_id);
    return Unary(p, &Stub::AddMembers, req);
  };
  calls["RemoveMember"] = [&](Principal p) {
    // A fresh member to remove, so every cell starts from the same state.
    const TestUser extra = api_->NewUser("extra");
    v1::AddMembersRequest add;
    add.set_chat_id(chat);
    add.add_user_ids(extra.user_id);
    v1::Chat c;
    EXPECT_TRUE(api_->Call(admin_.token, &Stub::AddMembers, add, &c).ok());
    v1::RemoveMemberRequest req;
    req.set_chat_id(chat);
    req.set_user_id(extra.user_id);
    return Unary(p, &Stub::RemoveMember, req);
  };
  calls["ListChats"] = [&](Principal p) {
    return Unary(p, &Stub::ListChats, v1::ListChatsRequest());
  };
  calls["SendMessage"] = [&](Principal p) {
    v1::SendMessageRequest req;
    req.set_chat_id(chat);
    req.set_client_message_id(absl::StrCat("authz-", sends++));
    req.set_text("hello");
    return Unary(p, &Stub::SendMessage, req);
  };
  calls["ListMessages"] = [&](Principal p) {
    v1::ListMessagesRequest req;
    req.set_chat_id(chat);
    return Unary(p, &Stub::ListMessages, req);
  };
  calls["SyncChat"] = [&](Principal p) {
    v1::SyncChatRequest req;
    req.set_chat_id(chat);
    return Unary(p, &Stub::SyncChat, req);
  };
  calls["EditMessage"] = [&](Principal p) {
    v1::EditMessageRequest req;
    req.set_chat_id(chat);
    req.set_message_id(MemberMessage());
    req.set_text("edited");
    return Unary(p, &Stub::EditMessage, req);
  };
  calls["DeleteMessage"] = [&](Principal p) {
    v1::DeleteMessageRequest req;
    req.set_chat_id(chat);
    req.set_message_id(MemberMessage());
    return Unary(p, &Stub::DeleteMessage, req);
  };
  calls["AddReaction"] = [&](Principal p) {
    v1::AddReactionRequest req;
    req.set_chat_id(chat);
    req.set_message_id(MemberMessage());
    req.set_emoji("\xF0\x9F\x91\x8D");
    return Unary(p, &Stub::AddReaction, req);
  };
  calls["RemoveReaction"] = [&](Principal p) {
    v1::RemoveReactionRequest req;
    req.set_chat_id(chat);
    req.set_message_id(MemberMessage());
    req.set_emoji("\xF0\x9F\x91\x8D");
    return Unary(p, &Stub::RemoveReaction, req);
  };
  calls["MarkRead"] = [&](Principal p) {
    v1::MarkReadRequest req;
    req.set_chat_id(chat);
    req.set_seq(1);
    return Unary(p, &Stub::MarkRead, req);
  };
  calls["SetTyping"] = [&](Principal p) {
    v1::SetTypingRequest req;
    req.set_chat_id(chat);
    req.set_typing(true);
    return Unary(p, &Stub::SetTyping, req);
  };
  calls["GetPresence"] = [&](Principal p) {
    v1::GetPresenceRequest req;
    req.add_user_ids(member_.user_id);
    return Unary(p, &Stub::GetPresence, req);
  };
  calls["UploadFile"] = [&](Principal p) {
    return api_->Upload(Token(p), chat, "abc").error_code();
  };
  calls["DownloadFile"] = [&](Principal p) {
    grpc::ClientContext ctx;
    Prepare(&ctx, p);
    v1::DownloadFileRequest req;
    req.set_file_id(shared_file);
    auto reader = api_->chat()->DownloadFile(&ctx, req);
    v1::DownloadFileResponse frame;
    std::string content;
    while (reader->Read(&frame)) content += frame.chunk();
    const grpc::Status s = reader->Finish();
    return s.ok() && content != "abc" ? Code::UNKNOWN : s.error_code();
  };

  // Rows: what each principal gets. The four without a valid token are
  // refused alike by every ChatService RPC; AuthService ignores tokens.
  const Code kU = Code::UNAUTHENTICATED;
  const Code kOk = Code::OK;
  const Code kDenied = Code::PERMISSION_DENIED;
  struct Row {
    const char* rpc;
    Code non_member, member, admin;
  };
  const Row rows[] = {
      // Not about the group: any signed-in user may.
      {"Connect", kOk, kOk, kOk},
      {"CreateDirectChat", kOk, kOk, kOk},
      {"CreateGroupChat", kOk, kOk, kOk},
      {"ListChats", kOk, kOk, kOk},
      {"GetPresence", kOk, kOk, kOk},
      // Group administration: admins only.
      {"AddMembers", kDenied, kDenied, kOk},
      {"RemoveMember", kDenied, kDenied, kOk},
      // Members' business.
      {"SendMessage", kDenied, kOk, kOk},
      {"ListMessages", kDenied, kOk, kOk},
      {"SyncChat", kDenied, kOk, kOk},
      {"AddReaction", kDenied, kOk, kOk},
      {"RemoveReaction", kDenied, kOk, kOk},
      {"MarkRead", kDenied, kOk, kOk},
      {"SetTyping", kDenied, kOk, kOk},
      {"UploadFile", kDenied, kOk, kOk},
      {"DownloadFile", kDenied, kOk, kOk},
      // The member's own message: only the sender edits; the sender or a
      // group admin deletes.
      {"EditMessage", kDenied, kOk, kDenied},
      {"DeleteMessage", kDenied, kOk, kOk},
  };
  std::vector<Cell> table;
  for (const char* rpc : {"Register", "Login"}) {
    for (int p = 0; p < kPrincipals; ++p) {
      table.push_back({rpc, static_cast<Principal>(p), kOk});
    }
  }
  for (const Row& r : rows) {
    for (Principal p : {kNoToken, kExpired, kForged, kAltered}) {
      table.push_back({r.rpc, p, kU});
    }
    table.push_back({r.rpc, kNonMember, r.non_member});
    table.push_back({r.rpc, kMember, r.member});
    table.push_back({r.rpc, kAdmin, r.admin});
  }

  std::map<std::string, int> per_rpc;
  for (const Cell& cell : table) {
    ASSERT_TRUE(calls.count(cell.rpc)) << cell.rpc;
    ++per_rpc[cell.rpc];
    const Code got = calls[cell.rpc](cell.principal);
    EXPECT_EQ(got, cell.expected)
        << cell.rpc << " as " << PrincipalName(cell.principal);
  }
  // Every RPC of the API, every principal.
  EXPECT_EQ(per_rpc.size(), 20u);
  EXPECT_EQ(calls.size(), 20u);
  for (const auto& [rpc, n] : per_rpc) EXPECT_EQ(n, kPrincipals) << rpc;
  std::printf("authorization matrix: %zu RPCs x %d principals = %zu cells asserted\n",
              per_rpc.size(), static_cast<int>(kPrincipals), table.size());

  // The gateway that issued the expired token (and cached it) refuses it too.
  v1::ListChatsResponse chats;
  Api issuer(cluster_->gateway_address(1));
  EXPECT_EQ(issuer.Call(expired_token_, &Stub::ListChats, v1::ListChatsRequest(),
                        &chats)
                .error_code(),
            Code::UNAUTHENTICATED);
}

}  // namespace
}  // namespace parley::e2e
