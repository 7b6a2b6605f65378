// Reactions, edits and deletions as ordered chat events, end to end.
#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/test_client.h"
#include "tests/support/cluster.h"

namespace parley::e2e {
namespace {

using ::testing::ElementsAre;
using ::testing::StartsWith;
using Stub = v1::ChatService::Stub;

const std::string kThumbs = "\xF0\x9F\x91\x8D";      // 👍
const std::string kHeart = "\xE2\x9D\xA4\xEF\xB8\x8F";  // ❤️
const std::string kParty = "\xF0\x9F\x8E\x89";       // 🎉

class ChatEventsTest : public testing::SharedClusterTest {
 protected:
  static void SetUpTestSuite() {
    StartCluster({.gateways = 2, .message_instances = 2});
  }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    api_ = std::make_unique<Api>(cluster_->gateway_address(0));
  }

  grpc::Status Edit(const TestUser& u, const std::string& chat,
                    const std::string& message, const std::string& text,
                    v1::Message* out = nullptr) {
    v1::EditMessageRequest req;
    req.set_chat_id(chat);
    req.set_message_id(message);
    req.set_text(text);
    v1::Message m;
    grpc::Status s = api_->Call(u.token, &Stub::EditMessage, req, &m);
    if (out) *out = m;
    return s;
  }
  grpc::Status Delete(const TestUser& u, const std::string& chat,
                      const std::string& message, v1::Message* out = nullptr) {
    v1::DeleteMessageRequest req;
    req.set_chat_id(chat);
    req.set_message_id(message);
    v1::Message m;
    grpc::Status s = api_->Call(u.token, &Stub::DeleteMessage, req, &m);
    if (out) *out = m;
    return s;
  }
  grpc::Status React(const TestUser& u, const std::string& chat,
                     const std::string& message, const std::string& emoji,
                     bool add, v1::Message* out = nullptr) {
    v1::Message m;
    grpc::Status s;
    if (add) {
      v1::AddReactionRequest req;
      req.set_chat_id(chat);
      req.set_message_id(message);
      req.set_emoji(emoji);
      s = api_->Call(u.token, &Stub::AddReaction, req, &m);
    } else {
      v1::RemoveReactionRequest req;
      req.set_chat_id(chat);
      req.set_message_id(message);
      req.set_emoji(emoji);
      s = api_->Call(u.token, &Stub::RemoveReaction, req, &m);
    }
    if (out) *out = m;
    return s;
  }
  uint64_t LastSeq(const TestUser& u, const std::string& chat_id) {
    v1::ListChatsRequest req;
    req.set_page_size(500);
    v1::ListChatsResponse resp;
    EXPECT_TRUE(api_->Call(u.token, &Stub::ListChats, req, &resp).ok());
    for (const auto& c : resp.chats()) {
      if (c.chat_id() == chat_id) return c.last_seq();
    }
    ADD_FAILURE() << "chat not listed";
    return 0;
  }
  std::vector<v1::ChatEvent> SyncAll(const TestUser& u,
                                     const std::string& chat_id) {
    std::vector<v1::ChatEvent> out;
    v1::SyncChatRequest req;
    req.set_chat_id(chat_id);
    req.set_page_size(100);
    for (;;) {
      v1::SyncChatResponse resp;
      grpc::Status s = api_->Call(u.token, &Stub::SyncChat, req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) break;
      for (const auto& e : resp.events()) out.push_back(e);
      if (!resp.has_more() || resp.events().empty()) break;
      req.set_after_seq(resp.events().rbegin()->seq());
    }
    return out;
  }
  std::vector<v1::Message> ListAll(const TestUser& u,
                                   const std::string& chat_id) {
    v1::ListMessagesRequest req;
    req.set_chat_id(chat_id);
    req.set_page_size(500);
    v1::ListMessagesResponse resp;
    EXPECT_TRUE(api_->Call(u.token, &Stub::ListMessages, req, &resp).ok());
    return {resp.messages().begin(), resp.messages().end()};
  }

  std::unique_ptr<Api> api_;
};


const v1::Message& Carried(const v1::ChatEvent& e) {
  switch (e.event_case()) {
    case v1::ChatEvent::kMessageCreated:
      return e.message_created();
    case v1::ChatEvent::kMessageEdited:
      return e.message_edited();
    case v1::ChatEvent::kMessageDeleted:
      return e.message_deleted();
    default:
      return e.reaction_changed();
  }
}

std::map<std::string, std::vector<std::string>> ReactionsOf(
    const v1::Message& m) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& r : m.reactions()) {
    EXPECT_EQ(r.count(), static_cast<uint64_t>(r.user_ids_size()));
    std::vector<std::string> users(r.user_ids().begin(), r.user_ids().end());
    std::sort(users.begin(), users.end());
    out[r.emoji()] = users;
  }
  return out;
}

TEST_F(ChatEventsTest, EveryKindArrivesOnOtherMembersStreamsInSeqOrder) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b"),
           c = api_->NewUser("c");
  v1::Chat g = api_->Group(a, "events", {b, c});
  auto bs = LiveStream::Open(cluster_->gateway_address(0), b.token);
  auto cs = LiveStream::Open(cluster_->gateway_address(1), c.token);
  ASSERT_TRUE(bs && cs);

  v1::Message m = api_->Send(a, g.chat_id(), "first draft");
  ASSERT_TRUE(React(b, g.chat_id(), m.message_id(), kThumbs, true).ok());
  ASSERT_TRUE(Edit(a, g.chat_id(), m.message_id(), "final text").ok());
  ASSERT_TRUE(React(c, g.chat_id(), m.message_id(), kHeart, true).ok());
  ASSERT_TRUE(React(b, g.chat_id(), m.message_id(), kThumbs, false).ok());
  v1::Message tomb;
  ASSERT_TRUE(Delete(a, g.chat_id(), m.message_id(), &tomb).ok());
  EXPECT_TRUE(tomb.deleted());
  EXPECT_EQ(tomb.seq(), 1u);

  for (LiveStream* s : {bs.get(), cs.get()}) {
    std::vector<v1::ChatEvent> got;
    while (got.size() < 6) {
      auto f = s->WaitFor([&](const v1::ServerFrame& f) {
        return f.has_chat_event() && f.chat_event().chat_id() == g.chat_id();
      });
      ASSERT_TRUE(f.has_value()) << "only " << got.size() << " events";
      got.push_back(f->chat_event());
    }
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].seq(), i + 1) << "arrived out of order";
      EXPECT_EQ(Carried(got[i]).message_id(), m.message_id());
    }
    EXPECT_TRUE(got[0].has_message_created());
    EXPECT_TRUE(got[1].has_reaction_changed());
    EXPECT_TRUE(got[2].has_message_edited());
    EXPECT_TRUE(got[3].has_reaction_changed());
    EXPECT_TRUE(got[4].has_reaction_changed());
    EXPECT_TRUE(got[5].has_message_deleted());
    // Each pushed event carries the whole message as it was then.
    EXPECT_EQ(got[1].reaction_changed().text(), "first draft");
    EXPECT_EQ(ReactionsOf(got[1].reaction_changed()),
              (std::map<std::string, std::vector<std::string>>{
                  {kThumbs, {b.user_id}}}));
    EXPECT_EQ(got[2].message_edited().text(), "final text");
    EXPECT_TRUE(got[2].message_edited().has_edit_time());
    EXPECT_EQ(ReactionsOf(got[3].reaction_changed()).size(), 2u);
    EXPECT_EQ(ReactionsOf(got[4].reaction_changed()),
              (std::map<std::string, std::vector<std::string>>{
                  {kHeart, {c.user_id}}}));
    const v1::Message& d = got[5].message_deleted();
    EXPECT_TRUE(d.deleted());
    EXPECT_EQ(d.text(), "");
    EXPECT_EQ(d.reactions_size(), 0);
  }

  // Deleted text is gone everywhere: history and the replayed log.
  std::vector<v1::Message> history = ListAll(b, g.chat_id());
  ASSERT_EQ(history.size(), 1u);
  EXPECT_TRUE(history[0].deleted());
  EXPECT_EQ(history[0].text(), "");
  EXPECT_EQ(history[0].seq(), 1u);
  std::vector<v1::ChatEvent> log = SyncAll(c, g.chat_id());
  ASSERT_EQ(log.size(), 6u);
  for (const auto& e : log) {
    EXPECT_TRUE(Carried(e).deleted()) << "seq " << e.seq();
    EXPECT_EQ(Carried(e).text(), "") << "seq " << e.seq();
  }
}

TEST_F(ChatEventsTest, EditAndDeletePermissionMatrix) {
  TestUser admin = api_->NewUser("adm"), sender = api_->NewUser("snd"),
           member = api_->NewUser("mem"), outsider = api_->NewUser("out");
  v1::Chat g = api_->Group(admin, "perm", {sender, member});
  v1::Message m = api_->Send(sender, g.chat_id(), "mine");
  const auto denied = grpc::StatusCode::PERMISSION_DENIED;

  // Edit: the sender only.
  EXPECT_EQ(Edit(member, g.chat_id(), m.message_id(), "x").error_code(), denied);
  EXPECT_EQ(Edit(admin, g.chat_id(), m.message_id(), "x").error_code(), denied);
  EXPECT_EQ(Edit(outsider, g.chat_id(), m.message_id(), "x").error_code(),
            denied);
  v1::Message edited;
  ASSERT_TRUE(Edit(sender, g.chat_id(), m.message_id(), "mine, edited", &edited)
                  .ok());
  EXPECT_EQ(edited.text(), "mine, edited");
  EXPECT_TRUE(edited.has_edit_time());
  EXPECT_EQ(edited.seq(), m.seq());

  // Delete: the sender or a group admin.
  EXPECT_EQ(Delete(member, g.chat_id(), m.message_id()).error_code(), denied);
  EXPECT_EQ(Delete(outsider, g.chat_id(), m.message_id()).error_code(), denied);
  v1::Message by_admin = api_->Send(member, g.chat_id(), "moderate me");
  ASSERT_TRUE(Delete(admin, g.chat_id(), by_admin.message_id()).ok());
  ASSERT_TRUE(Delete(sender, g.chat_id(), m.message_id()).ok());

  // Deleting again is idempotent and records nothing; editing is refused.
  const uint64_t seq = LastSeq(sender, g.chat_id());
  v1::Message again;
  ASSERT_TRUE(Delete(sender, g.chat_id(), m.message_id(), &again).ok());
  EXPECT_TRUE(again.deleted());
  EXPECT_EQ(LastSeq(sender, g.chat_id()), seq);
  EXPECT_EQ(Edit(sender, g.chat_id(), m.message_id(), "revive").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  // In a direct chat the peer can do neither.
  v1::Chat d = api_->Direct(sender, member);
  v1::Message dm = api_->Send(sender, d.chat_id(), "direct");
  EXPECT_EQ(Edit(member, d.chat_id(), dm.message_id(), "x").error_code(), denied);
  EXPECT_EQ(Delete(member, d.chat_id(), dm.message_id()).error_code(), denied);
  ASSERT_TRUE(Delete(sender, d.chat_id(), dm.message_id()).ok());

  // Bad input.
  EXPECT_EQ(Edit(sender, g.chat_id(), "abc", "x").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Edit(sender, g.chat_id(), "123456789", "x").error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::Message other = api_->Send(sender, d.chat_id(), "elsewhere");
  EXPECT_EQ(Edit(sender, g.chat_id(), other.message_id(), "x").error_code(),
            grpc::StatusCode::NOT_FOUND);  // message of another chat
  EXPECT_EQ(Edit(sender, d.chat_id(), other.message_id(), "").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(
      Edit(sender, d.chat_id(), other.message_id(), std::string(16385, 'x'))
          .error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ChatEventsTest, ReactionRules) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  v1::Chat d = api_->Direct(a, b);
  v1::Message m = api_->Send(a, d.chat_id(), "react to me");
  v1::Message r;
  ASSERT_TRUE(React(b, d.chat_id(), m.message_id(), kThumbs, true, &r).ok());
  const uint64_t seq = LastSeq(a, d.chat_id());
  // Idempotent per (user, message, emoji).
  ASSERT_TRUE(React(b, d.chat_id(), m.message_id(), kThumbs, true, &r).ok());
  EXPECT_EQ(LastSeq(a, d.chat_id()), seq);
  ASSERT_EQ(r.reactions_size(), 1);
  EXPECT_EQ(r.reactions(0).count(), 1u);
  ASSERT_TRUE(React(a, d.chat_id(), m.message_id(), kParty, false, &r).ok());
  EXPECT_EQ(LastSeq(a, d.chat_id()), seq);

  for (const std::string& bad : {std::string(""), std::string("a"),
                                 kThumbs + kThumbs, std::string(" ") + kThumbs,
                                 std::string(40, 'x')}) {
    grpc::Status s = React(a, d.chat_id(), m.message_id(), bad, true);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_THAT(s.error_message(), StartsWith("emoji:"));
  }

  // At most 20 distinct emoji per message.
  const std::vector<std::string> faces = {
      "\xF0\x9F\x98\x80", "\xF0\x9F\x98\x81", "\xF0\x9F\x98\x82",
      "\xF0\x9F\x98\x83", "\xF0\x9F\x98\x84", "\xF0\x9F\x98\x85",
      "\xF0\x9F\x98\x86", "\xF0\x9F\x98\x87", "\xF0\x9F\x98\x88",
      "\xF0\x9F\x98\x89", "\xF0\x9F\x98\x8A", "\xF0\x9F\x98\x8B",
      "\xF0\x9F\x98\x8C", "\xF0\x9F\x98\x8D", "\xF0\x9F\x98\x8E",
      "\xF0\x9F\x98\x8F", "\xF0\x9F\x98\x90", "\xF0\x9F\x98\x91",
      "\xF0\x9F\x98\x92", "\xF0\x9F\x98\x93"};
  for (size_t i = 0; i + 1 < faces.size(); ++i) {  // 👍 + 19 faces = 20
    ASSERT_TRUE(React(a, d.chat_id(), m.message_id(), faces[i], true).ok()) << i;
  }
  grpc::Status over = React(a, d.chat_id(), m.message_id(), faces.back(), true);
  EXPECT_TRUE(over.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
              over.error_code() == grpc::StatusCode::FAILED_PRECONDITION)
      << over.error_code();
  // An existing emoji can still gain users.
  ASSERT_TRUE(React(b, d.chat_id(), m.message_id(), faces[0], true).ok());

  // A deleted message takes no reactions.
  ASSERT_TRUE(Delete(a, d.chat_id(), m.message_id()).ok());
  EXPECT_EQ(React(b, d.chat_id(), m.message_id(), kHeart, true).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(ChatEventsTest, ConcurrentReactionsStayExactAndReplayable) {
  constexpr int kUsers = 20;
  TestUser admin = api_->NewUser("adm");
  std::vector<TestUser> users;
  for (int i = 0; i < kUsers; ++i) users.push_back(api_->NewUser("r"));
  v1::Chat g = api_->Group(admin, "busy", users);
  v1::Message m = api_->Send(admin, g.chat_id(), "react!");

  // Each user: add 👍 and ❤️, remove ❤️, add 🎉, remove 👍 (odd users only),
  // several rounds, all users at once through both gateways.
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kUsers; ++i) {
    threads.emplace_back([&, i] {
      Api api(cluster_->gateway_address(i % 2));
      auto call = [&](const std::string& emoji, bool add) {
        v1::Message out;
        grpc::Status s;
        if (add) {
          v1::AddReactionRequest req;
          req.set_chat_id(g.chat_id());
          req.set_message_id(m.message_id());
          req.set_emoji(emoji);
          s = api.Call(users[i].token, &Stub::AddReaction, req, &out);
        } else {
          v1::RemoveReactionRequest req;
          req.set_chat_id(g.chat_id());
          req.set_message_id(m.message_id());
          req.set_emoji(emoji);
          s = api.Call(users[i].token, &Stub::RemoveReaction, req, &out);
        }
        if (!s.ok()) ++failures;
      };
      for (int round = 0; round < 3; ++round) {
        call(kThumbs, true);
        call(kHeart, true);
        call(kHeart, false);
        call(kParty, true);
        if (i % 2) call(kThumbs, false);
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);

  std::vector<std::string> thumbs, party;
  for (int i = 0; i < kUsers; ++i) {
    party.push_back(users[i].user_id);
    if (i % 2 == 0) thumbs.push_back(users[i].user_id);
  }
  std::sort(thumbs.begin(), thumbs.end());
  std::sort(party.begin(), party.end());
  std::vector<v1::Message> history = ListAll(admin, g.chat_id());
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(ReactionsOf(history[0]),
            (std::map<std::string, std::vector<std::string>>{
                {kThumbs, thumbs}, {kParty, party}}));

  // The log is gap-free, and replaying it gives what ListMessages shows.
  std::vector<v1::ChatEvent> log = SyncAll(admin, g.chat_id());
  const uint64_t last = LastSeq(admin, g.chat_id());
  ASSERT_EQ(log.size(), last);
  std::map<std::string, v1::Message> replayed;
  for (size_t i = 0; i < log.size(); ++i) {
    ASSERT_EQ(log[i].seq(), i + 1);
    if (log[i].has_members_changed()) continue;
    const v1::Message& msg = Carried(log[i]);
    replayed[msg.message_id()] = msg;
  }
  ASSERT_EQ(replayed.size(), 1u);
  EXPECT_EQ(replayed.begin()->second.SerializeAsString(),
            history[0].SerializeAsString());
  // Every event after the message is a reaction change that really changed
  // something: at least one per distinct final reaction.
  EXPECT_GE(log.size(), 1 + thumbs.size() + party.size());
}

}  // namespace
}  // namespace parley::e2e
