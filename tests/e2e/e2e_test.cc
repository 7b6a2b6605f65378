// End-to-end tests: PostgreSQL, Redis and the four real binaries (two
// gateways, two message instances), driven through the public gRPC API.
#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "parley/internal/v1/message.grpc.pb.h"
#include "tests/e2e/test_client.h"
#include "tests/support/cluster.h"

namespace parley::e2e {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;
using Stub = v1::ChatService::Stub;

constexpr int kMaxGroupMembers = 6;

class E2eTest : public testing::SharedClusterTest {
 protected:
  static void SetUpTestSuite() {
    testing::Cluster::Options options{.gateways = 2,
                                      .message_instances = 2,
                                      .max_group_members = kMaxGroupMembers};
    // Live events wait for the seqs before them at most this long: far
    // more than any reordering here takes, so that the order tests check
    // does not depend on the machine's speed.
    for (const char* m : {"message0", "message1"}) {
      options.extra_flags[m] = {"--event_order_hold_ms=5000"};
    }
    StartCluster(options);
  }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    api_ = std::make_unique<Api>(cluster_->gateway_address(0));
    api1_ = std::make_unique<Api>(cluster_->gateway_address(1));
  }

  std::unique_ptr<LiveStream> Connect(const TestUser& u, int gateway = 0) {
    auto s = LiveStream::Open(cluster_->gateway_address(gateway), u.token);
    EXPECT_NE(s, nullptr) << "Connect failed for " << u.username;
    return s;
  }

  std::unique_ptr<Api> api_;
  std::unique_ptr<Api> api1_;
};

void ExpectCode(const grpc::Status& s, grpc::StatusCode code,
                const std::string& field = "") {
  EXPECT_EQ(s.error_code(), code) << s.error_message();
  if (!field.empty()) {
    EXPECT_THAT(s.error_message(), StartsWith(field + ":"));
  }
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// ---------------------------------------------------------------- accounts

TEST_F(E2eTest, RegisterAndLogin) {
  v1::RegisterRequest reg;
  reg.set_username(UniqueName("alice"));
  reg.set_password("s3cret-password");
  reg.set_display_name("Alice \xF0\x9F\x98\x80");
  v1::RegisterResponse r;
  ASSERT_TRUE(api_->Register(reg, &r).ok());
  EXPECT_EQ(r.user().username(), reg.username());
  EXPECT_EQ(r.user().display_name(), reg.display_name());
  EXPECT_FALSE(r.user().user_id().empty());
  EXPECT_FALSE(r.access_token().empty());
  EXPECT_TRUE(r.has_expire_time());

  // The token works, on either gateway.
  v1::ListChatsResponse chats;
  EXPECT_TRUE(api_->Call(r.access_token(), &Stub::ListChats,
                         v1::ListChatsRequest(), &chats)
                  .ok());
  EXPECT_TRUE(api1_
                  ->Call(r.access_token(), &Stub::ListChats,
                         v1::ListChatsRequest(), &chats)
                  .ok());

  v1::LoginRequest login;
  login.set_username(reg.username());
  login.set_password(reg.password());
  v1::LoginResponse l;
  ASSERT_TRUE(api1_->Login(login, &l).ok());
  EXPECT_EQ(l.user().user_id(), r.user().user_id());
  EXPECT_NE(l.access_token(), r.access_token());
  EXPECT_TRUE(api_->Call(l.access_token(), &Stub::ListChats,
                         v1::ListChatsRequest(), &chats)
                  .ok());

  // Wrong password and unknown user look the same.
  login.set_password("wrong-password");
  grpc::Status wrong = api_->Login(login, &l);
  login.set_username(UniqueName("nobody"));
  grpc::Status unknown = api_->Login(login, &l);
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(wrong.error_message(), unknown.error_message());

  // Taken username.
  ExpectCode(api_->Register(reg, &r), grpc::StatusCode::ALREADY_EXISTS,
             "username");
  // Display name defaults to the username.
  reg.set_username(UniqueName("bob"));
  reg.clear_display_name();
  ASSERT_TRUE(api_->Register(reg, &r).ok());
  EXPECT_EQ(r.user().display_name(), reg.username());
}

TEST_F(E2eTest, ChatServiceNeedsAValidToken) {
  v1::ListChatsResponse chats;
  ExpectCode(api_->Call("", &Stub::ListChats, v1::ListChatsRequest(), &chats),
             grpc::StatusCode::UNAUTHENTICATED);
  ExpectCode(
      api_->Call("garbage", &Stub::ListChats, v1::ListChatsRequest(), &chats),
      grpc::StatusCode::UNAUTHENTICATED);
  // Well-formed but never issued.
  ExpectCode(api_->Call("plt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                        &Stub::ListChats, v1::ListChatsRequest(), &chats),
             grpc::StatusCode::UNAUTHENTICATED);
  // The stream too.
  grpc::ClientContext ctx;
  auto stream = api_->chat()->Connect(&ctx);
  v1::ServerFrame f;
  EXPECT_FALSE(stream->Read(&f));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(E2eTest, RegisterRejectsBadInput) {
  struct Case {
    std::string username, password, display_name, field;
  };
  const std::string ok_name = UniqueName("valid");
  const std::vector<Case> cases = {
      {"ab", "password1", "", "username"},
      {std::string(33, 'a'), "password1", "", "username"},
      {"Alice" + ok_name.substr(0, 5), "password1", "", "username"},
      {"al ice", "password1", "", "username"},
      {"al!ce", "password1", "", "username"},
      {"", "password1", "", "username"},
      {ok_name, "short", "", "password"},
      {ok_name, "", "", "password"},
      {ok_name, std::string(2000, 'p'), "", "password"},
      {ok_name, "password1", std::string(65, 'd'), "display_name"},
      {ok_name, "password1", "tab\there", "display_name"},
      {ok_name, "password1", "bell\x07", "display_name"},
  };
  for (const Case& c : cases) {
    v1::RegisterRequest req;
    req.set_username(c.username);
    req.set_password(c.password);
    req.set_display_name(c.display_name);
    v1::RegisterResponse resp;
    ExpectCode(api_->Register(req, &resp), grpc::StatusCode::INVALID_ARGUMENT,
               c.field);
  }
  // Nothing of the above was created.
  v1::LoginRequest login;
  login.set_username(ok_name);
  login.set_password("password1");
  v1::LoginResponse l;
  ExpectCode(api_->Login(login, &l), grpc::StatusCode::UNAUTHENTICATED);
}

// ------------------------------------------------------------ direct chats

TEST_F(E2eTest, DirectChatIsOnePerPair) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  v1::Chat ab = api_->Direct(a, b);
  EXPECT_EQ(ab.type(), v1::CHAT_TYPE_DIRECT);
  EXPECT_EQ(ab.last_seq(), 0u);
  EXPECT_THAT(
      Sorted({ab.member_user_ids().begin(), ab.member_user_ids().end()}),
      Sorted({a.user_id, b.user_id}));
  v1::Chat ba = api1_->Direct(b, a);
  EXPECT_EQ(ba.chat_id(), ab.chat_id());
  EXPECT_EQ(api_->Direct(a, b).chat_id(), ab.chat_id());

  v1::CreateDirectChatRequest req;
  v1::Chat chat;
  req.set_peer_user_id(a.user_id);
  ExpectCode(api_->Call(a.token, &Stub::CreateDirectChat, req, &chat),
             grpc::StatusCode::INVALID_ARGUMENT, "peer_user_id");
  req.set_peer_user_id("not-a-number");
  ExpectCode(api_->Call(a.token, &Stub::CreateDirectChat, req, &chat),
             grpc::StatusCode::INVALID_ARGUMENT, "peer_user_id");
  req.set_peer_user_id("");
  ExpectCode(api_->Call(a.token, &Stub::CreateDirectChat, req, &chat),
             grpc::StatusCode::INVALID_ARGUMENT, "peer_user_id");
  req.set_peer_user_id("9000000000000000000");
  ExpectCode(api_->Call(a.token, &Stub::CreateDirectChat, req, &chat),
             grpc::StatusCode::NOT_FOUND, "peer_user_id");
}

// ------------------------------------------------------- live delivery

TEST_F(E2eTest, MessageArrivesOnRecipientsStream) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  auto bs = Connect(b);
  auto as = Connect(a);
  ASSERT_TRUE(bs && as);
  v1::Chat chat = api_->Direct(a, b);
  v1::Message sent = api_->Send(a, chat.chat_id(), "hello, b");
  EXPECT_EQ(sent.seq(), 1u);
  EXPECT_EQ(sent.sender_user_id(), a.user_id);
  EXPECT_FALSE(sent.message_id().empty());
  EXPECT_TRUE(sent.has_create_time());

  auto ev = bs->WaitForEvent(chat.chat_id(), 1);
  ASSERT_TRUE(ev.has_value());
  ASSERT_TRUE(ev->has_message_created());
  EXPECT_EQ(ev->message_created().message_id(), sent.message_id());
  EXPECT_EQ(ev->message_created().text(), "hello, b");
  EXPECT_EQ(ev->message_created().sender_user_id(), a.user_id);
  // The sender's own devices see it too.
  EXPECT_TRUE(as->WaitForEvent(chat.chat_id(), 1).has_value());
}

// The result frame of a send frame (SendFrame).
std::optional<v1::SendResult> WaitForResult(LiveStream* s,
                                            const std::string& cmid) {
  auto f = s->WaitFor([&](const v1::ServerFrame& f) {
    return f.has_send_result() && f.send_result().client_message_id() == cmid;
  });
  if (!f) return std::nullopt;
  return f->send_result();
}

TEST_F(E2eTest, SendOnTheStreamIsAnsweredThereAndNotEchoedBack) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  auto a_phone = Connect(a);
  auto a_laptop = Connect(a);  // same gateway: the same delivery reaches both
  auto b_on_1 = Connect(b, /*gateway=*/1);
  ASSERT_TRUE(a_phone && a_laptop && b_on_1);
  v1::Chat chat = api_->Direct(a, b);

  ASSERT_TRUE(
      a_phone->Write(SendFrame(chat.chat_id(), "s1", "over the stream")));
  auto r = WaitForResult(a_phone.get(), "s1");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->code(), 0) << r->error_message();
  EXPECT_EQ(r->chat_id(), chat.chat_id());
  EXPECT_EQ(r->message().seq(), 1u);
  EXPECT_EQ(r->message().text(), "over the stream");
  EXPECT_EQ(r->message().sender_user_id(), a.user_id);
  EXPECT_FALSE(r->message().message_id().empty());

  // The recipient, on the other gateway, and the sender's other device get
  // the event.
  auto on_b = b_on_1->WaitForEvent(chat.chat_id(), 1);
  ASSERT_TRUE(on_b.has_value());
  EXPECT_EQ(on_b->message_created().message_id(), r->message().message_id());
  ASSERT_TRUE(a_laptop->WaitForEvent(chat.chat_id(), 1).has_value());

  // The sending stream does not: a later event of the chat reaches it, and
  // nothing of seq 1 came before.
  api_->Send(b, chat.chat_id(), "reply");
  bool echoed = false;
  auto next = a_phone->WaitFor([&](const v1::ServerFrame& f) {
    if (!f.has_chat_event() || f.chat_event().chat_id() != chat.chat_id()) {
      return false;
    }
    if (f.chat_event().seq() == 1) echoed = true;
    return f.chat_event().seq() == 2;
  });
  ASSERT_TRUE(next.has_value());
  EXPECT_FALSE(echoed) << "the sending stream got its own message back";

  // A retry of the same send answers with the same message, and stores
  // nothing new.
  ASSERT_TRUE(
      a_phone->Write(SendFrame(chat.chat_id(), "s1", "over the stream")));
  auto again = WaitForResult(a_phone.get(), "s1");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->code(), 0);
  EXPECT_EQ(again->message().message_id(), r->message().message_id());
  EXPECT_EQ(again->message().seq(), 1u);

  // A unary send by the same user still reaches all of its streams.
  api_->Send(a, chat.chat_id(), "unary");
  EXPECT_TRUE(a_phone->WaitForEvent(chat.chat_id(), 3).has_value());
  EXPECT_TRUE(a_laptop->WaitForEvent(chat.chat_id(), 3).has_value());
}

TEST_F(E2eTest, SendOnTheStreamReportsErrorsLikeTheCall) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b"),
           c = api_->NewUser("c");
  auto as = Connect(a);
  ASSERT_TRUE(as);
  v1::Chat theirs = api_->Direct(b, c);
  v1::Chat mine = api_->Direct(a, b);
  struct Case {
    v1::ClientFrame frame;
    std::string name;
  };
  std::vector<Case> cases = {
      {SendFrame("not-an-id", "e1", "x"), "bad chat_id"},
      {SendFrame(theirs.chat_id(), "e2", "x"), "not a member"},
      {SendFrame(mine.chat_id(), "", "x"), "no client_message_id"},
      {SendFrame(mine.chat_id(), "e4", ""), "no text"},
      {SendFrame("999999999999", "e5", "x"), "unknown chat"},
  };
  for (Case& c : cases) {
    SCOPED_TRACE(c.name);
    // What the unary call answers for the same request.
    v1::Message ignored;
    const grpc::Status unary =
        api_->Call(a.token, &Stub::SendMessage, c.frame.send(), &ignored);
    ASSERT_FALSE(unary.ok());
    ASSERT_TRUE(as->Write(c.frame));
    auto f = as->WaitFor([&](const v1::ServerFrame& f) {
      return f.has_send_result() &&
             f.send_result().chat_id() == c.frame.send().chat_id() &&
             f.send_result().client_message_id() ==
                 c.frame.send().client_message_id();
    });
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->send_result().code(), static_cast<int>(unary.error_code()));
    EXPECT_EQ(f->send_result().error_message(), unary.error_message());
    EXPECT_FALSE(f->send_result().has_message());
  }
  // The stream goes on working after the errors.
  ASSERT_TRUE(as->Write(SendFrame(mine.chat_id(), "ok", "fine")));
  auto r = WaitForResult(as.get(), "ok");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->code(), 0);
  EXPECT_EQ(r->message().seq(), 1u);
}

// Writes `sends` send frames to `chat_id` on `from` at once and checks
// that they were stored in the order they were sent and that `to` got each
// seq exactly once, in seq order.
void ExpectBurstKeepsSendOrder(LiveStream* from, LiveStream* to,
                               const std::string& chat_id, int sends) {
  for (int i = 0; i < sends; ++i) {
    ASSERT_TRUE(from->Write(
        SendFrame(chat_id, absl::StrCat("burst-", i), absl::StrCat("m", i))));
  }
  // Results may come in any order: collect them all.
  std::map<std::string, v1::SendResult> results;
  ASSERT_TRUE(from->WaitFor(
                      [&](const v1::ServerFrame& f) {
                        if (f.has_send_result()) {
                          results[f.send_result().client_message_id()] =
                              f.send_result();
                        }
                        return results.size() == static_cast<size_t>(sends);
                      },
                      std::chrono::seconds(30))
                  .has_value())
      << results.size() << " of " << sends << " answered";
  std::set<uint64_t> seqs;
  for (const auto& [cmid, r] : results) {
    ASSERT_EQ(r.code(), 0) << cmid << ": " << r.error_message();
    seqs.insert(r.message().seq());
  }
  ASSERT_EQ(seqs.size(), static_cast<size_t>(sends));
  // Stored in the order they were sent, although they left in several
  // batch calls.
  for (int i = 0; i < sends; ++i) {
    EXPECT_EQ(results[absl::StrCat("burst-", i)].message().seq(),
              static_cast<uint64_t>(i + 1))
        << "send " << i;
  }
  // The recipient gets every seq exactly once, in seq order, although the
  // sends were spread over several batch calls whose results came back in
  // any order.
  std::map<uint64_t, int> got;
  std::vector<uint64_t> order;
  ASSERT_TRUE(to->WaitFor(
                    [&](const v1::ServerFrame& f) {
                      if (f.has_chat_event() &&
                          f.chat_event().chat_id() == chat_id) {
                        got[f.chat_event().seq()] = 1;
                        order.push_back(f.chat_event().seq());
                      }
                      return got.size() == static_cast<size_t>(sends);
                    },
                    std::chrono::seconds(30))
                  .has_value())
      << got.size() << " of " << sends << " delivered";
  for (size_t i = 1; i < order.size(); ++i) {
    ASSERT_EQ(order[i], order[i - 1] + 1)
        << "seq " << order[i] << " came right after seq " << order[i - 1];
  }
  ASSERT_TRUE(to->Sync());
  for (const v1::ServerFrame& f : to->Drain()) {
    EXPECT_FALSE(f.has_chat_event())
        << "extra event seq " << f.chat_event().seq();
  }
}

TEST_F(E2eTest, BurstOfStreamSendsIsStoredAndDeliveredInSendOrder) {
  // More sends than the gateway keeps in flight per stream (64): reading
  // pauses and resumes, and nothing is lost or reordered.
  constexpr int kSends = 150;  // within the default burst of 200
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  auto as = Connect(a);
  auto bs = Connect(b, /*gateway=*/1);
  ASSERT_TRUE(as && bs);
  v1::Chat chat = api_->Direct(a, b);
  ExpectBurstKeepsSendOrder(as.get(), bs.get(), chat.chat_id(), kSends);
}

TEST_F(E2eTest, DeliveryCrossesGateways) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  auto b_on_1 = Connect(b, /*gateway=*/1);
  auto b_on_0 = Connect(b, /*gateway=*/0);  // a second device
  ASSERT_TRUE(b_on_1 && b_on_0);
  v1::Chat chat = api_->Direct(a, b);
  for (int i = 1; i <= 5; ++i) {
    v1::Message m = api_->Send(a, chat.chat_id(), absl::StrCat("m", i));
    ASSERT_EQ(m.seq(), static_cast<uint64_t>(i));
  }
  for (int i = 1; i <= 5; ++i) {
    auto e1 = b_on_1->WaitForEvent(chat.chat_id(), i);
    auto e0 = b_on_0->WaitForEvent(chat.chat_id(), i);
    ASSERT_TRUE(e1.has_value()) << i;
    ASSERT_TRUE(e0.has_value()) << i;
    EXPECT_EQ(e1->message_created().text(), absl::StrCat("m", i));
  }
  // Exactly once per device: nothing else of this chat is pending.
  ASSERT_TRUE(b_on_1->Sync());
  for (const auto& f : b_on_1->Drain()) {
    EXPECT_FALSE(f.has_chat_event() &&
                 f.chat_event().chat_id() == chat.chat_id())
        << "duplicate delivery of seq " << f.chat_event().seq();
  }
}

TEST_F(E2eTest, OfflineRecipientCatchesUpWithSyncChat) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  v1::Chat chat = api_->Direct(a, b);
  std::vector<std::string> ids;
  for (int i = 1; i <= 7; ++i) {
    ids.push_back(api_->Send(a, chat.chat_id(), absl::StrCat("while away ", i))
                      .message_id());
  }
  // B comes back: ListChats says what was missed.
  v1::ListChatsResponse chats;
  ASSERT_TRUE(
      api1_->Call(b.token, &Stub::ListChats, v1::ListChatsRequest(), &chats)
          .ok());
  ASSERT_EQ(chats.chats_size(), 1);
  EXPECT_EQ(chats.chats(0).chat_id(), chat.chat_id());
  EXPECT_EQ(chats.chats(0).last_seq(), 7u);
  EXPECT_EQ(chats.chats(0).unread_count(), 7u);

  v1::SyncChatRequest sync;
  sync.set_chat_id(chat.chat_id());
  sync.set_after_seq(0);
  sync.set_page_size(4);
  v1::SyncChatResponse page;
  ASSERT_TRUE(api1_->Call(b.token, &Stub::SyncChat, sync, &page).ok());
  ASSERT_EQ(page.events_size(), 4);
  EXPECT_TRUE(page.has_more());
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(page.events(i).seq(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(page.events(i).message_created().message_id(), ids[i]);
  }
  sync.set_after_seq(4);
  ASSERT_TRUE(api1_->Call(b.token, &Stub::SyncChat, sync, &page).ok());
  ASSERT_EQ(page.events_size(), 3);
  EXPECT_FALSE(page.has_more());
  EXPECT_EQ(page.events(2).seq(), 7u);
  sync.set_after_seq(7);
  ASSERT_TRUE(api1_->Call(b.token, &Stub::SyncChat, sync, &page).ok());
  EXPECT_EQ(page.events_size(), 0);
  EXPECT_FALSE(page.has_more());
  // The sender has nothing unread.
  ASSERT_TRUE(
      api_->Call(a.token, &Stub::ListChats, v1::ListChatsRequest(), &chats)
          .ok());
  EXPECT_EQ(chats.chats(0).unread_count(), 0u);
}

// ------------------------------------------------------------- history

TEST_F(E2eTest, HistoryPagination) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  v1::Chat chat = api_->Direct(a, b);
  constexpr int kCount = 120;
  for (int i = 1; i <= kCount; ++i) {
    ASSERT_EQ(api_->Send(i % 2 ? a : b, chat.chat_id(), absl::StrCat(i)).seq(),
              static_cast<uint64_t>(i));
  }
  v1::ListMessagesRequest req;
  req.set_chat_id(chat.chat_id());
  req.set_page_size(50);
  std::vector<uint64_t> seqs;
  int pages = 0;
  for (;;) {
    v1::ListMessagesResponse resp;
    ASSERT_TRUE(api_->Call(b.token, &Stub::ListMessages, req, &resp).ok());
    ++pages;
    for (const auto& m : resp.messages()) {
      seqs.push_back(m.seq());
      EXPECT_EQ(m.text(), absl::StrCat(m.seq()));
    }
    if (resp.next_before_seq() == 0) break;
    EXPECT_EQ(resp.next_before_seq(), resp.messages().rbegin()->seq());
    req.set_before_seq(resp.next_before_seq());
  }
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(seqs.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i) EXPECT_EQ(seqs[i], uint64_t(kCount - i));

  // Exactly one page when it all fits: no empty trailing page.
  req.set_before_seq(0);
  req.set_page_size(kCount);
  v1::ListMessagesResponse all;
  ASSERT_TRUE(api_->Call(a.token, &Stub::ListMessages, req, &all).ok());
  EXPECT_EQ(all.messages_size(), kCount);
  EXPECT_EQ(all.next_before_seq(), 0u);
  // Default and capped page sizes, and a bad one.
  req.set_page_size(0);
  ASSERT_TRUE(api_->Call(a.token, &Stub::ListMessages, req, &all).ok());
  EXPECT_EQ(all.messages_size(), 50);
  req.set_page_size(100000);
  ASSERT_TRUE(api_->Call(a.token, &Stub::ListMessages, req, &all).ok());
  EXPECT_EQ(all.messages_size(), kCount);
  req.set_page_size(-1);
  ExpectCode(api_->Call(a.token, &Stub::ListMessages, req, &all),
             grpc::StatusCode::INVALID_ARGUMENT, "page_size");
}

TEST_F(E2eTest, ListChatsPagination) {
  TestUser me = api_->NewUser("me");
  std::set<std::string> created;
  for (int i = 0; i < 5; ++i) {
    created.insert(api_->Direct(me, api_->NewUser("peer")).chat_id());
  }
  v1::ListChatsRequest req;
  req.set_page_size(2);
  std::set<std::string> seen;
  int pages = 0;
  for (;;) {
    v1::ListChatsResponse resp;
    ASSERT_TRUE(api_->Call(me.token, &Stub::ListChats, req, &resp).ok());
    ++pages;
    for (const auto& c : resp.chats())
      EXPECT_TRUE(seen.insert(c.chat_id()).second);
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, created);
  req.set_page_token("!!not-a-token!!");
  v1::ListChatsResponse resp;
  ExpectCode(api_->Call(me.token, &Stub::ListChats, req, &resp),
             grpc::StatusCode::INVALID_ARGUMENT, "page_token");
  req.clear_page_token();
  req.set_page_size(-3);
  ExpectCode(api_->Call(me.token, &Stub::ListChats, req, &resp),
             grpc::StatusCode::INVALID_ARGUMENT, "page_size");
}

// ------------------------------------------------------ idempotent send

TEST_F(E2eTest, RetryWithSameClientMessageIdReturnsTheOriginal) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  v1::Chat chat = api_->Direct(a, b);
  auto bs = Connect(b);
  ASSERT_TRUE(bs);
  v1::Message first, retry;
  ASSERT_TRUE(
      api_->TrySend(a, chat.chat_id(), "once", &first, "cm-fixed").ok());
  ASSERT_TRUE(
      api1_->TrySend(a, chat.chat_id(), "once", &retry, "cm-fixed").ok());
  EXPECT_EQ(retry.message_id(), first.message_id());
  EXPECT_EQ(retry.seq(), first.seq());
  // A different text or chat under the same id is a client bug, not a retry.
  v1::Message other;
  ExpectCode(api_->TrySend(a, chat.chat_id(), "twice", &other, "cm-fixed"),
             grpc::StatusCode::ALREADY_EXISTS, "client_message_id");
  v1::Chat chat2 = api_->Direct(a, api_->NewUser("c"));
  ExpectCode(api_->TrySend(a, chat2.chat_id(), "once", &other, "cm-fixed"),
             grpc::StatusCode::ALREADY_EXISTS, "client_message_id");
  // Another sender may use the same id.
  ASSERT_TRUE(
      api_->TrySend(b, chat.chat_id(), "mine", &other, "cm-fixed").ok());
  EXPECT_EQ(other.seq(), first.seq() + 1);
  // B saw exactly two events.
  ASSERT_TRUE(bs->WaitForEvent(chat.chat_id(), 2).has_value());
  ASSERT_TRUE(bs->Sync());
  for (const auto& f : bs->Drain()) EXPECT_FALSE(f.has_chat_event());
}

TEST_F(E2eTest, SendMessageRejectsBadInput) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  TestUser outsider = api_->NewUser("x");
  v1::Chat chat = api_->Direct(a, b);
  v1::Chat other = api_->Direct(a, outsider);
  v1::Message in_other = api_->Send(a, other.chat_id(), "elsewhere");
  v1::Message m;
  auto send = [&](v1::SendMessageRequest req) {
    if (req.client_message_id().empty()) {
      req.set_client_message_id(UniqueName("cm"));
    }
    return api_->Call(a.token, &Stub::SendMessage, req, &m);
  };
  v1::SendMessageRequest base;
  base.set_chat_id(chat.chat_id());
  base.set_text("hi");

  auto r = base;
  r.set_chat_id("");
  ExpectCode(send(r), grpc::StatusCode::INVALID_ARGUMENT, "chat_id");
  r.set_chat_id("12x");
  ExpectCode(send(r), grpc::StatusCode::INVALID_ARGUMENT, "chat_id");
  r.set_chat_id("-4");
  ExpectCode(send(r), grpc::StatusCode::INVALID_ARGUMENT, "chat_id");
  r.set_chat_id("8999999999999999999");
  ExpectCode(send(r), grpc::StatusCode::NOT_FOUND, "chat_id");

  r = base;
  r.set_client_message_id(std::string(65, 'c'));
  ExpectCode(send(r), grpc::StatusCode::INVALID_ARGUMENT, "client_message_id");
  r.set_client_message_id("bad\x01id");
  ExpectCode(send(r), grpc::StatusCode::INVALID_ARGUMENT, "client_message_id");

  r = base;
  r.set_text("");
  ExpectCode(send(r), grpc::StatusCode::INVALID_ARGUMENT, "text");
  r.set_text(std::string(16 * 1024 + 1, 'x'));
  ExpectCode(send(r), grpc::StatusCode::INVALID_ARGUMENT, "text");
  r.set_text(std::string("nul\0inside", 10));
  ExpectCode(send(r), grpc::StatusCode::INVALID_ARGUMENT, "text");
  r.set_text(std::string(16 * 1024, 'x'));  // exactly the limit is fine
  EXPECT_TRUE(send(r).ok());

  r = base;
  r.set_reply_to_message_id("abc");
  ExpectCode(send(r), grpc::StatusCode::INVALID_ARGUMENT,
             "reply_to_message_id");
  r.set_reply_to_message_id("123456789");
  ExpectCode(send(r), grpc::StatusCode::NOT_FOUND, "reply_to_message_id");
  r.set_reply_to_message_id(in_other.message_id());  // another chat's message
  ExpectCode(send(r), grpc::StatusCode::NOT_FOUND, "reply_to_message_id");

  r = base;
  r.set_file_id("zzz");
  ExpectCode(send(r), grpc::StatusCode::INVALID_ARGUMENT, "file_id");

  // A reply to a message of the same chat works.
  v1::Message target = api_->Send(b, chat.chat_id(), "question");
  r = base;
  r.set_reply_to_message_id(target.message_id());
  ASSERT_TRUE(send(r).ok());
  EXPECT_EQ(m.reply_to_message_id(), target.message_id());

  // Not a member.
  ExpectCode(api_->TrySend(outsider, chat.chat_id(), "let me in"),
             grpc::StatusCode::PERMISSION_DENIED);
  // None of the failures took a seq: the chat has exactly 2 messages.
  v1::ListChatsResponse chats;
  ASSERT_TRUE(
      api_->Call(b.token, &Stub::ListChats, v1::ListChatsRequest(), &chats)
          .ok());
  ASSERT_EQ(chats.chats_size(), 1);
  EXPECT_EQ(chats.chats(0).last_seq(), 3u);
}

// ------------------------------------------------------------- groups

TEST_F(E2eTest, GroupChatRules) {
  TestUser admin = api_->NewUser("adm"), b = api_->NewUser("b"),
           c = api_->NewUser("c"), d = api_->NewUser("d");
  auto bs = Connect(b, 1), cs = Connect(c, 0), ds = Connect(d, 1);
  ASSERT_TRUE(bs && cs && ds);
  v1::Chat g = api_->Group(admin, "Team", {b, c});
  EXPECT_EQ(g.type(), v1::CHAT_TYPE_GROUP);
  EXPECT_EQ(g.title(), "Team");
  EXPECT_EQ(g.last_seq(), 0u);
  EXPECT_THAT(g.admin_user_ids(), ElementsAre(admin.user_id));
  EXPECT_THAT(Sorted({g.member_user_ids().begin(), g.member_user_ids().end()}),
              Sorted({admin.user_id, b.user_id, c.user_id}));

  // Only admins add.
  v1::AddMembersRequest add;
  add.set_chat_id(g.chat_id());
  add.add_user_ids(d.user_id);
  v1::Chat after;
  ExpectCode(api_->Call(b.token, &Stub::AddMembers, add, &after),
             grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(api_->Call(admin.token, &Stub::AddMembers, add, &after).ok());
  EXPECT_EQ(after.last_seq(), 1u);
  EXPECT_EQ(after.member_user_ids_size(), 4);
  // Every member, the new one included, gets members_changed with seq 1.
  for (LiveStream* s : {bs.get(), cs.get(), ds.get()}) {
    auto ev = s->WaitForEvent(g.chat_id(), 1);
    ASSERT_TRUE(ev.has_value());
    ASSERT_TRUE(ev->has_members_changed());
    EXPECT_EQ(ev->members_changed().member_user_ids_size(), 4);
  }

  // Only admins remove others.
  v1::RemoveMemberRequest rm;
  rm.set_chat_id(g.chat_id());
  rm.set_user_id(c.user_id);
  ExpectCode(api_->Call(b.token, &Stub::RemoveMember, rm, &after),
             grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(api_->Call(admin.token, &Stub::RemoveMember, rm, &after).ok());
  EXPECT_EQ(after.last_seq(), 2u);
  // The removed member learns of it, then hears nothing more.
  auto removed = cs->WaitForEvent(g.chat_id(), 2);
  ASSERT_TRUE(removed.has_value());
  EXPECT_TRUE(removed->has_members_changed());
  v1::Message m3 = api_->Send(admin, g.chat_id(), "after removal");
  EXPECT_EQ(m3.seq(), 3u);
  ASSERT_TRUE(bs->WaitForEvent(g.chat_id(), 3).has_value());
  ASSERT_TRUE(ds->WaitForEvent(g.chat_id(), 3).has_value());
  ASSERT_TRUE(cs->Sync());
  for (const auto& f : cs->Drain()) {
    EXPECT_FALSE(f.has_chat_event() && f.chat_event().chat_id() == g.chat_id())
        << "removed member got seq " << f.chat_event().seq();
  }
  ExpectCode(api_->TrySend(c, g.chat_id(), "still here?"),
             grpc::StatusCode::PERMISSION_DENIED);
  v1::ListMessagesRequest lm;
  lm.set_chat_id(g.chat_id());
  v1::ListMessagesResponse history;
  ExpectCode(api_->Call(c.token, &Stub::ListMessages, lm, &history),
             grpc::StatusCode::PERMISSION_DENIED);
  v1::SyncChatRequest sc;
  sc.set_chat_id(g.chat_id());
  v1::SyncChatResponse events;
  ExpectCode(api_->Call(c.token, &Stub::SyncChat, sc, &events),
             grpc::StatusCode::PERMISSION_DENIED);
  // Removing a non-member.
  ExpectCode(api_->Call(admin.token, &Stub::RemoveMember, rm, &after),
             grpc::StatusCode::NOT_FOUND, "user_id");

  // Anyone may leave; when the last admin leaves, the longest-standing
  // member (b, a founding member) becomes admin.
  rm.set_user_id(admin.user_id);
  ASSERT_TRUE(api_->Call(admin.token, &Stub::RemoveMember, rm, &after).ok());
  EXPECT_THAT(after.admin_user_ids(), ElementsAre(b.user_id));
  EXPECT_THAT(
      Sorted({after.member_user_ids().begin(), after.member_user_ids().end()}),
      Sorted({b.user_id, d.user_id}));
  // The new admin can now add; the old one cannot send.
  add.clear_user_ids();
  add.add_user_ids(c.user_id);
  ASSERT_TRUE(api_->Call(b.token, &Stub::AddMembers, add, &after).ok());
  ExpectCode(api_->TrySend(admin, g.chat_id(), "bye"),
             grpc::StatusCode::PERMISSION_DENIED);
  rm.set_user_id(d.user_id);
  ASSERT_TRUE(api_->Call(d.token, &Stub::RemoveMember, rm, &after).ok());

  // SyncChat replays the membership history in order.
  sc.set_after_seq(0);
  ASSERT_TRUE(api_->Call(b.token, &Stub::SyncChat, sc, &events).ok());
  ASSERT_EQ(events.events_size(), 6);
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(events.events(i).seq(), uint64_t(i + 1));
  EXPECT_TRUE(events.events(0).has_members_changed());
  EXPECT_TRUE(events.events(2).has_message_created());
  EXPECT_TRUE(events.events(5).has_members_changed());

  // Direct chats have no membership changes.
  v1::Chat direct = api_->Direct(b, d);
  add.set_chat_id(direct.chat_id());
  ExpectCode(api_->Call(b.token, &Stub::AddMembers, add, &after),
             grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(E2eTest, CreateGroupChatRejectsBadInput) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  v1::Chat chat;
  auto create = [&](const std::string& title,
                    const std::vector<std::string>& members) {
    v1::CreateGroupChatRequest req;
    req.set_title(title);
    for (const auto& m : members) req.add_member_user_ids(m);
    return api_->Call(a.token, &Stub::CreateGroupChat, req, &chat);
  };
  ExpectCode(create("", {b.user_id}), grpc::StatusCode::INVALID_ARGUMENT,
             "title");
  ExpectCode(create(std::string(201, 't'), {b.user_id}),
             grpc::StatusCode::INVALID_ARGUMENT, "title");
  ExpectCode(create("line\nbreak", {b.user_id}),
             grpc::StatusCode::INVALID_ARGUMENT, "title");
  ExpectCode(create("ok", {"bogus"}), grpc::StatusCode::INVALID_ARGUMENT,
             "member_user_ids");
  ExpectCode(create("ok", {"8999999999999999999"}), grpc::StatusCode::NOT_FOUND,
             "member_user_ids");
  // 200 characters (not bytes) is fine.
  std::string title;
  for (int i = 0; i < 200; ++i) title += "\xC3\xA9";
  ASSERT_TRUE(create(title, {b.user_id}).ok());
  EXPECT_EQ(chat.title(), title);
  // A group with only its creator is allowed.
  ASSERT_TRUE(create("solo", {}).ok());
  EXPECT_EQ(chat.member_user_ids_size(), 1);

  // The member limit (kMaxGroupMembers in this cluster), creator included.
  std::vector<TestUser> many;
  std::vector<std::string> ids;
  for (int i = 0; i < kMaxGroupMembers; ++i) {
    many.push_back(api_->NewUser("m"));
    ids.push_back(many.back().user_id);
  }
  grpc::Status too_many = create("big", ids);
  EXPECT_TRUE(too_many.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
              too_many.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
              too_many.error_code() == grpc::StatusCode::INVALID_ARGUMENT)
      << too_many.error_code();
  ids.pop_back();
  ASSERT_TRUE(create("full", ids).ok());
  EXPECT_EQ(chat.member_user_ids_size(), kMaxGroupMembers);
  v1::AddMembersRequest add;
  add.set_chat_id(chat.chat_id());
  add.add_user_ids(b.user_id);
  v1::Chat after;
  grpc::Status over = api_->Call(a.token, &Stub::AddMembers, add, &after);
  EXPECT_FALSE(over.ok());
  EXPECT_NE(over.error_code(), grpc::StatusCode::INTERNAL);
}

// The batched internal call the gateways use: each send of a SendMessages
// call gets its own outcome, in order, exactly as SendMessage would answer
// it, and the successful ones fan out.
TEST_F(E2eTest, MessageServiceAnswersEachSendOfABatchOnItsOwn) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b"),
           outsider = api_->NewUser("x");
  v1::Chat chat = api_->Direct(a, b);
  auto bs = Connect(b);
  ASSERT_TRUE(bs);
  int64_t a_id = 0, b_id = 0, x_id = 0, chat_id = 0;
  ASSERT_TRUE(absl::SimpleAtoi(a.user_id, &a_id));
  ASSERT_TRUE(absl::SimpleAtoi(b.user_id, &b_id));
  ASSERT_TRUE(absl::SimpleAtoi(outsider.user_id, &x_id));
  ASSERT_TRUE(absl::SimpleAtoi(chat.chat_id(), &chat_id));
  auto send = [&](int64_t sender, const std::string& cid,
                  const std::string& text) {
    internal::v1::AppendMessageRequest r;
    r.set_sender_user_id(sender);
    r.set_chat_id(chat_id);
    r.set_client_message_id(cid);
    r.set_text(text);
    return r;
  };
  internal::v1::SendMessagesRequest req;
  *req.add_requests() = send(a_id, "batch-1", "one");
  *req.add_requests() = send(a_id, "batch-2", std::string(17 * 1024, 'x'));
  *req.add_requests() = send(x_id, "batch-3", "not a member");
  *req.add_requests() = send(b_id, "batch-4", "two");
  auto stub = internal::v1::MessageService::NewStub(
      MakeChannel(cluster_->address("message0")));
  auto call = [&](const internal::v1::SendMessagesRequest& r,
                  internal::v1::SendMessagesResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    return stub->SendMessages(&ctx, r, resp);
  };
  internal::v1::SendMessagesResponse resp;
  grpc::Status s = call(req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.outcomes_size(), 4);
  EXPECT_EQ(resp.outcomes(0).code(), 0) << resp.outcomes(0).error_message();
  EXPECT_EQ(resp.outcomes(0).message().text(), "one");
  EXPECT_EQ(resp.outcomes(1).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(resp.outcomes(1).error_message(), StartsWith("text:"));
  EXPECT_EQ(resp.outcomes(2).code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_FALSE(resp.outcomes(2).has_message());
  EXPECT_EQ(resp.outcomes(3).code(), 0) << resp.outcomes(3).error_message();
  EXPECT_EQ(resp.outcomes(3).message().text(), "two");
  // The sends of one call are concurrent: together they take seqs 1 and 2,
  // in either order, and each reaches the recipient under its seq.
  EXPECT_THAT((std::set<uint64_t>{resp.outcomes(0).message().seq(),
                                  resp.outcomes(3).message().seq()}),
              ElementsAre(1u, 2u));
  // Concurrent sends may also be pushed in either order (a client that
  // sees a seq skipped syncs): take both events as they come.
  std::map<uint64_t, v1::Message> stored = {
      {resp.outcomes(0).message().seq(), resp.outcomes(0).message()},
      {resp.outcomes(3).message().seq(), resp.outcomes(3).message()}};
  std::map<uint64_t, v1::ChatEvent> got;
  while (got.size() < stored.size()) {
    auto f = bs->WaitFor([&](const v1::ServerFrame& f) {
      return f.has_chat_event() && f.chat_event().chat_id() == chat.chat_id() &&
             stored.count(f.chat_event().seq()) &&
             !got.count(f.chat_event().seq());
    });
    ASSERT_TRUE(f.has_value()) << got.size() << " of 2 events delivered";
    got[f->chat_event().seq()] = f->chat_event();
  }
  for (const auto& [seq, m] : stored) {
    EXPECT_EQ(got[seq].message_created().message_id(), m.message_id());
    EXPECT_EQ(got[seq].message_created().client_message_id(),
              m.client_message_id());
  }

  // Too many sends in one call: refused whole, naming the field.
  internal::v1::SendMessagesRequest big;
  for (int i = 0; i < 1025; ++i) {
    *big.add_requests() = send(a_id, absl::StrCat("big-", i), "x");
  }
  internal::v1::SendMessagesResponse refused;
  s = call(big, &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), StartsWith("requests:"));
  // ... and writes none of them: the next send takes seq 3.
  v1::Message next;
  ASSERT_TRUE(api_->TrySend(a, chat.chat_id(), "three", &next).ok());
  EXPECT_EQ(next.seq(), 3u);
}

// Batches far smaller than a stream's group of sends, with several calls in
// flight on each hop: the hops must still keep each group whole.
class SmallBatchE2eTest : public testing::SharedClusterTest {
 protected:
  static void SetUpTestSuite() {
    StartCluster({.extra_flags = {
                      {"message0",
                       {"--append_batch=2", "--append_calls=4",
                        "--event_order_hold_ms=5000"}},
                      {"storage", {"--append_max_batch=2"}},
                  }});
  }
};

TEST_F(SmallBatchE2eTest, BurstOfStreamSendsKeepsSendOrder) {
  ASSERT_NE(cluster_, nullptr);
  Api api(cluster_->gateway_address(0));
  TestUser a = api.NewUser("a"), b = api.NewUser("b");
  auto as = LiveStream::Open(cluster_->gateway_address(0), a.token);
  auto bs = LiveStream::Open(cluster_->gateway_address(0), b.token);
  ASSERT_TRUE(as && bs);
  v1::Chat chat = api.Direct(a, b);
  ExpectBurstKeepsSendOrder(as.get(), bs.get(), chat.chat_id(), 150);
}

}  // namespace
}  // namespace parley::e2e
