#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <sstream>

#include "common/grpc_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/client/chat_client.h"
#include "services/client/cli.h"
#include "services/client/client_status.h"
#include "services/client/format.h"
#include "services/client/health_check.h"
#include "services/client/session.h"

namespace parley::client {
namespace {

using ::testing::HasSubstr;

TEST(HealthCheckTest, EncodesRequest) {
  EXPECT_EQ(EncodeHealthCheckRequest(""), "");
  EXPECT_EQ(EncodeHealthCheckRequest("parley.v1.ChatService"),
            std::string("\x0a\x15parley.v1.ChatService", 23));
}

TEST(HealthCheckTest, DecodesResponse) {
  EXPECT_EQ(*DecodeHealthCheckResponse(std::string("\x08\x01", 2)),
            HealthStatus::kServing);
  EXPECT_EQ(*DecodeHealthCheckResponse(std::string("\x08\x02", 2)),
            HealthStatus::kNotServing);
  EXPECT_EQ(*DecodeHealthCheckResponse(""), HealthStatus::kUnknown);
  // Unknown fields are skipped.
  EXPECT_EQ(*DecodeHealthCheckResponse(std::string("\x12\x02hi\x08\x01", 6)),
            HealthStatus::kServing);
  EXPECT_FALSE(DecodeHealthCheckResponse(std::string("\x08", 1)).ok());
  EXPECT_FALSE(DecodeHealthCheckResponse(std::string("\x12\x05hi", 4)).ok());
}

TEST(HealthCheckTest, ChecksARealServer) {
  absl::StatusOr<RunningServer> server = StartServer(ServerOptions{}, {});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string target = absl::StrCat("127.0.0.1:", server->port);
  absl::StatusOr<HealthStatus> s =
      CheckHealth(target, "", std::chrono::seconds(2));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, HealthStatus::kServing);
  EXPECT_EQ(RunCli({"health", target}, CliIo{}), kExitOk);

  absl::StatusOr<HealthStatus> unknown =
      CheckHealth(target, "no.such.Service", std::chrono::seconds(2));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);

  server->server->Shutdown();
  server->server->Wait();
  absl::StatusOr<HealthStatus> down =
      CheckHealth(target, "", std::chrono::seconds(2));
  EXPECT_FALSE(down.ok());
  std::ostringstream out, err;
  EXPECT_EQ(RunCli({"health", target}, CliIo{&std::cin, &out, &err}),
            kExitError);
  EXPECT_THAT(err.str(), HasSubstr("error: UNAVAILABLE: "));
}

TEST(ParseArgsTest, OptionsAnywhere) {
  absl::StatusOr<ParsedArgs> p = ParseArgs(
      {"--gateway", "h:1", "send", "12", "hello", "--reply-to=7", "world"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->command, "send");
  EXPECT_EQ(p->positionals, (std::vector<std::string>{"12", "hello", "world"}));
  EXPECT_EQ(p->options.at("gateway"), "h:1");
  EXPECT_EQ(p->options.at("reply-to"), "7");
}

TEST(ParseArgsTest, DoubleDashEndsOptions) {
  absl::StatusOr<ParsedArgs> p = ParseArgs({"send", "12", "--", "--not-opt"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->positionals, (std::vector<std::string>{"12", "--not-opt"}));
}

TEST(ParseArgsTest, Errors) {
  EXPECT_FALSE(ParseArgs({}).ok());
  EXPECT_FALSE(ParseArgs({"frobnicate"}).ok());
  EXPECT_FALSE(ParseArgs({"chats", "--bogus", "1"}).ok());
  EXPECT_FALSE(ParseArgs({"chats", "--limit", "1"}).ok());  // not for chats
  EXPECT_FALSE(ParseArgs({"history", "1", "--limit"}).ok());
  EXPECT_FALSE(ParseArgs({"remove", "1"}).ok());
  EXPECT_FALSE(ParseArgs({"remove", "1", "2", "3"}).ok());
  EXPECT_TRUE(ParseArgs({"group", "team"}).ok());
  EXPECT_TRUE(ParseArgs({"--help"}).ok());
  EXPECT_TRUE(ParseArgs({"send", "--help"}).ok());
}

TEST(RunCliTest, UsageErrorsExitTwo) {
  std::ostringstream out, err;
  EXPECT_EQ(RunCli({"remove", "1"}, CliIo{&std::cin, &out, &err}), kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("error: INVALID_ARGUMENT: usage: parley "
                                   "remove CHAT_ID USER_ID"));
  std::ostringstream out2, err2;
  EXPECT_EQ(RunCli({"--help"}, CliIo{&std::cin, &out2, &err2}), kExitOk);
  EXPECT_THAT(out2.str(), HasSubstr("watch"));
}

TEST(RunCliTest, NotSignedIn) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/no-such-session-", getpid());
  std::ostringstream out, err;
  unsetenv("PARLEY_TOKEN");
  EXPECT_EQ(RunCli({"chats", "--session", path}, CliIo{&std::cin, &out, &err}),
            kExitError);
  EXPECT_THAT(err.str(), HasSubstr("error: UNAUTHENTICATED: not signed in"));
}

TEST(SessionTest, RoundTripWithPrivateMode) {
  const std::string dir =
      absl::StrCat(::testing::TempDir(), "/parley-session-", getpid());
  const std::string path = dir + "/sub/session";
  Session s{"127.0.0.1:1", "17", "alice", "plt_secret", "/etc/parley/ca.pem"};
  ASSERT_TRUE(SaveSession(path, s).ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  absl::StatusOr<Session> back = LoadSession(path);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->gateway, "127.0.0.1:1");
  EXPECT_EQ(back->user_id, "17");
  EXPECT_EQ(back->username, "alice");
  EXPECT_EQ(back->access_token, "plt_secret");
  EXPECT_EQ(back->tls_ca_file, "/etc/parley/ca.pem");
  ASSERT_TRUE(DeleteSession(path).ok());
  EXPECT_TRUE(absl::IsNotFound(LoadSession(path).status()));
  EXPECT_TRUE(DeleteSession(path).ok());
}

TEST(FormatTest, EscapesControlCharacters) {
  EXPECT_EQ(EscapeForLine("a\nb\x1b[31m"), "a\\nb\\x1b[31m");
  EXPECT_EQ(EscapeForLine("h\xc3\xa9llo"), "h\xc3\xa9llo");
  EXPECT_EQ(EscapeForLine("\xc2\x9b"), "\\u009b");
}

TEST(FormatTest, ChatEventsAndMemberDiffs) {
  EventFormatter f("1");
  v1::Chat chat;
  chat.set_chat_id("12");
  chat.set_type(v1::CHAT_TYPE_GROUP);
  chat.add_member_user_ids("1");
  chat.add_member_user_ids("2");
  f.RememberChat(chat);

  v1::ChatEvent e;
  e.set_chat_id("12");
  e.set_seq(5);
  e.mutable_message_created()->set_sender_user_id("2");
  e.mutable_message_created()->set_text("hello");
  EXPECT_EQ(f.FormatChatEvent(e), "[chat 12 #5] 2: hello");
  e.mutable_message_created()->set_sender_user_id("1");
  EXPECT_EQ(f.FormatChatEvent(e), "[chat 12 #5] you: hello");

  v1::ChatEvent m;
  m.set_chat_id("12");
  m.set_seq(6);
  *m.mutable_members_changed() = chat;
  m.mutable_members_changed()->clear_member_user_ids();
  m.mutable_members_changed()->add_member_user_ids("1");
  m.mutable_members_changed()->add_member_user_ids("3");
  EXPECT_EQ(f.FormatChatEvent(m),
            "[chat 12 #6] 3 joined, 2 left; members (2): you, 3");
}

TEST(FormatTest, StreamFrames) {
  EventFormatter f("1");
  v1::ServerFrame pong;
  pong.mutable_pong()->set_nonce(1);
  EXPECT_EQ(f.FormatServerFrame(pong), "");
  v1::ServerFrame typing;
  typing.mutable_typing()->set_chat_id("12");
  typing.mutable_typing()->set_user_id("2");
  typing.mutable_typing()->set_typing(true);
  EXPECT_EQ(f.FormatServerFrame(typing), "[chat 12] 2 is typing...");
  v1::ServerFrame presence;
  presence.mutable_presence()->set_user_id("2");
  presence.mutable_presence()->set_online(true);
  EXPECT_EQ(f.FormatServerFrame(presence), "[presence] 2 is online");
  v1::ServerFrame receipt;
  receipt.mutable_receipt()->set_chat_id("12");
  receipt.mutable_receipt()->set_user_id("2");
  receipt.mutable_receipt()->set_delivered_seq(5);
  receipt.mutable_receipt()->set_read_seq(4);
  EXPECT_EQ(f.FormatServerFrame(receipt),
            "[chat 12] 2 received up to #5, read up to #4");
}

TEST(FormatTest, ChatsTable) {
  EventFormatter f("1");
  v1::Chat d;
  d.set_chat_id("9");
  d.set_type(v1::CHAT_TYPE_DIRECT);
  d.add_member_user_ids("1");
  d.add_member_user_ids("42");
  d.set_last_seq(3);
  d.set_unread_count(1);
  const std::string table = f.FormatChatsTable({d});
  EXPECT_THAT(table, HasSubstr("CHAT  TYPE    TITLE/PEER  MEMBERS  LAST_SEQ"));
  EXPECT_THAT(table, HasSubstr("9     direct  with 42"));
}

TEST(ChatClientTest, ClientMessageIdsAre128BitHex) {
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    const std::string id = NewClientMessageId();
    EXPECT_EQ(id.size(), 32u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 100u);
}

}  // namespace
}  // namespace parley::client
