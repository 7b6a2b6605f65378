// Dependencies going away: callers get UNAVAILABLE within their deadline,
// never a hang, and service resumes when the dependency returns.
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_util.h"
#include "gtest/gtest.h"
#include "parley/internal/v1/message.grpc.pb.h"
#include "tests/e2e/test_client.h"
#include "tests/support/cluster.h"

namespace parley::e2e {
namespace {

using Stub = v1::ChatService::Stub;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

class ResilienceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = testing::Cluster::Start({.gateways = 1, .message_instances = 2});
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = std::move(*c);
    api_ = std::make_unique<Api>(cluster_->gateway_address(0));
  }
  std::unique_ptr<testing::Cluster> cluster_;
  std::unique_ptr<Api> api_;
};

TEST_F(ResilienceTest, StorageDownIsUnavailableWithinTheDeadline) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  v1::Chat chat = api_->Direct(a, b);
  cluster_->process("storage")->Kill();

  v1::SendMessageRequest req;
  req.set_chat_id(chat.chat_id());
  req.set_client_message_id("during-outage");
  req.set_text("are you there?");
  v1::Message m;
  const auto start = steady_clock::now();
  grpc::Status s = api_->Call(a.token, &Stub::SendMessage, req, &m, seconds(3));
  const auto took = steady_clock::now() - start;
  EXPECT_TRUE(s.error_code() == grpc::StatusCode::UNAVAILABLE ||
              s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
      << s.error_code() << " " << s.error_message();
  EXPECT_LT(took, seconds(4));

  v1::ListMessagesRequest lm;
  lm.set_chat_id(chat.chat_id());
  v1::ListMessagesResponse history;
  s = api_->Call(a.token, &Stub::ListMessages, lm, &history, seconds(3));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error_code(), grpc::StatusCode::INTERNAL);

  ASSERT_TRUE(cluster_->Restart("storage").ok());
  // The retry of the failed send goes through once, and only once.
  v1::Message first, again;
  ASSERT_TRUE(api_->TrySend(a, chat.chat_id(), "are you there?", &first,
                            "during-outage")
                  .ok());
  ASSERT_TRUE(api_->TrySend(a, chat.chat_id(), "are you there?", &again,
                            "during-outage")
                  .ok());
  EXPECT_EQ(first.seq(), 1u);
  EXPECT_EQ(again.message_id(), first.message_id());
}

TEST_F(ResilienceTest, AMessageInstanceDyingDoesNotStopSendsOrDelivery) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  auto bs = LiveStream::Open(cluster_->gateway_address(0), b.token);
  ASSERT_TRUE(bs);
  // Chats hash onto both instances; use several.
  std::vector<v1::Chat> chats;
  for (int i = 0; i < 4; ++i) {
    TestUser peer = api_->NewUser("p");
    chats.push_back(api_->Group(a, absl::StrCat("g", i), {b, peer}));
  }
  cluster_->process("message0")->Kill();
  for (const auto& chat : chats) {
    v1::Message m;
    grpc::Status s = api_->TrySend(a, chat.chat_id(), "still flowing", &m);
    ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    auto ev = bs->WaitForEvent(chat.chat_id(), m.seq());
    EXPECT_TRUE(ev.has_value()) << "chat " << chat.chat_id();
  }
  // Back again: the gateway resubscribes and both instances serve.
  ASSERT_TRUE(cluster_->Restart("message0").ok());
  ASSERT_TRUE(cluster_->WaitServing("gateway0", seconds(10)).ok());
}

// Stream sends whose chat's instance is gone move to the other one, and
// each chat's sends are still stored in the order they were sent.
TEST_F(ResilienceTest, StreamSendsOutliveAMessageInstanceInSendOrder) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  auto as = LiveStream::Open(cluster_->gateway_address(0), a.token);
  ASSERT_TRUE(as);
  // Two chats of the instance that is stopped (chat id mod 2 == 0), one of
  // the other.
  std::vector<v1::Chat> chats;
  int on_first = 0, on_second = 0;
  for (int i = 0; i < 60 && (on_first < 2 || on_second < 1); ++i) {
    v1::Chat c = api_->Group(a, absl::StrCat("g", i), {b});
    uint64_t id = 0;
    ASSERT_TRUE(absl::SimpleAtoi(c.chat_id(), &id));
    if (id % 2 == 0 && on_first < 2) {
      ++on_first;
      chats.push_back(c);
    } else if (id % 2 == 1 && on_second < 1) {
      ++on_second;
      chats.push_back(c);
    }
  }
  ASSERT_EQ(chats.size(), 3u);
  cluster_->process("message0")->Kill();
  constexpr int kSends = 30;  // 90 sends: within the write burst of 200
  for (int i = 0; i < kSends; ++i) {
    for (size_t c = 0; c < chats.size(); ++c) {
      ASSERT_TRUE(as->Write(SendFrame(
          chats[c].chat_id(), absl::StrCat(c, "-", i), absl::StrCat("m", i))));
    }
  }
  std::map<std::string, v1::SendResult> results;
  const size_t total = kSends * chats.size();
  ASSERT_TRUE(as->WaitFor(
                    [&](const v1::ServerFrame& f) {
                      if (f.has_send_result()) {
                        results[f.send_result().client_message_id()] =
                            f.send_result();
                      }
                      return results.size() == total;
                    },
                    seconds(30))
                  .has_value())
      << results.size() << " of " << total << " answered";
  for (size_t c = 0; c < chats.size(); ++c) {
    uint64_t last = 0;
    for (int i = 0; i < kSends; ++i) {
      const v1::SendResult& r = results[absl::StrCat(c, "-", i)];
      ASSERT_EQ(r.code(), 0) << c << "-" << i << ": " << r.error_message();
      // Consecutive seqs, in send order (the first follows the chat's
      // creation events).
      if (i > 0) {
        EXPECT_EQ(r.message().seq(), last + 1)
            << "chat " << c << ", send " << i;
      }
      last = r.message().seq();
    }
  }
}

// A restarted message instance commits sends before the gateways have
// subscribed to it again (they reconnect with backoff). Those events are held
// for the gateways and delivered live once they subscribe, not dropped.
TEST_F(ResilienceTest, ARestartedMessageInstanceDeliversWhatItCommittedEarly) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  auto bs = LiveStream::Open(cluster_->gateway_address(0), b.token);
  ASSERT_TRUE(bs);
  v1::Chat chat = api_->Direct(a, b);
  cluster_->process("message0")->Kill();
  // Long enough for the gateway's resubscribe backoff to reach its cap, so
  // the send below lands before the new subscription.
  std::this_thread::sleep_for(seconds(3));
  ASSERT_TRUE(cluster_->Restart("message0").ok());

  // Straight to the new instance, as a gateway forwards a send.
  auto stub = internal::v1::MessageService::NewStub(
      MakeChannel(cluster_->address("message0")));
  internal::v1::AppendMessageRequest req;
  int64_t sender = 0, chat_id = 0;
  ASSERT_TRUE(absl::SimpleAtoi(a.user_id, &sender));
  ASSERT_TRUE(absl::SimpleAtoi(chat.chat_id(), &chat_id));
  req.set_sender_user_id(sender);
  req.set_chat_id(chat_id);
  req.set_client_message_id("early-after-restart");
  req.set_text("committed before the gateway came back");
  v1::Message m;
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  ctx.set_deadline(std::chrono::system_clock::now() + seconds(5));
  grpc::Status s = stub->SendMessage(&ctx, req, &m);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  ASSERT_EQ(m.seq(), 1u);
  auto ev = bs->WaitForEvent(chat.chat_id(), 1, seconds(5));
  ASSERT_TRUE(ev.has_value()) << "the event was dropped, not held";
  EXPECT_EQ(ev->message_created().client_message_id(), "early-after-restart");
}

TEST_F(ResilienceTest, PresenceDownStillSendsAndDelivers) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  auto bs = LiveStream::Open(cluster_->gateway_address(0), b.token);
  ASSERT_TRUE(bs);
  v1::Chat chat = api_->Direct(a, b);
  cluster_->process("presence")->Kill();
  v1::Message m = api_->Send(a, chat.chat_id(), "no routes, still here");
  ASSERT_EQ(m.seq(), 1u);
  // Routes are unknown, so the event is broadcast to every gateway, which
  // delivers it to its local recipients.
  EXPECT_TRUE(bs->WaitForEvent(chat.chat_id(), 1).has_value());
  ASSERT_TRUE(cluster_->Restart("presence").ok());
}

TEST_F(ResilienceTest, RedisRestartRestoresRoutesWithoutRestarts) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  auto bs = LiveStream::Open(cluster_->gateway_address(0), b.token);
  ASSERT_TRUE(bs);
  v1::Chat chat = api_->Direct(a, b);
  cluster_->redis()->Stop();
  ASSERT_TRUE(cluster_->redis()->StartAgain().ok());  // empty: routes lost
  // Sending works at once; the next gateway heartbeat (10 s by default here)
  // re-registers b's route, after which delivery is routed again.
  ASSERT_EQ(api_->Send(a, chat.chat_id(), "first").seq(), 1u);
  bool delivered = false;
  for (int i = 2; i < 40 && !delivered; ++i) {
    v1::Message m = api_->Send(a, chat.chat_id(), absl::StrCat("try ", i));
    delivered = bs->WaitForEvent(chat.chat_id(), m.seq(), milliseconds(500))
                    .has_value();
  }
  EXPECT_TRUE(delivered);
}

TEST_F(ResilienceTest, GatewayShutsDownGracefullyOnSigterm) {
  TestUser b = api_->NewUser("b");
  auto bs = LiveStream::Open(cluster_->gateway_address(0), b.token);
  ASSERT_TRUE(bs);
  testing::Subprocess* gw = cluster_->process("gateway0");
  gw->Signal(SIGTERM);
  auto end = bs->WaitEnd(seconds(10));
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAVAILABLE);
  const int status = gw->Wait(seconds(10));
  ASSERT_GE(status, 0) << "gateway did not exit";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// Calls to storage and presence are in flight when each service is told to
// stop: they must end before the objects their callbacks use go, and the
// process must exit 0 (not abort, or crash under ASan).
TEST_F(ResilienceTest, ServicesExitCleanlyOnSigtermWithSendsInFlight) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  v1::Chat chat = api_->Direct(a, b);
  auto bs = LiveStream::Open(cluster_->gateway_address(0), b.token);
  ASSERT_TRUE(bs);
  std::mutex mu;
  std::condition_variable flowing;
  int acked = 0;
  std::atomic<bool> stop{false};
  std::vector<std::thread> senders;
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        if (api_->TrySend(a, chat.chat_id(), "in flight", nullptr,
                          absl::StrCat("exit-", t, "-", i))
                .ok()) {
          std::lock_guard<std::mutex> lock(mu);
          ++acked;
          flowing.notify_all();
        }
      }
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(
        flowing.wait_for(lock, seconds(10), [&] { return acked >= 50; }));
  }
  for (const char* name : {"message0", "message1", "gateway0"}) {
    testing::Subprocess* p = cluster_->process(name);
    p->Signal(SIGTERM);
    // The 5 s grace, then the calls still waiting on the (stopped) message
    // instances are cancelled: well within the 10 s that docker compose
    // and the cluster fixture give a process before killing it.
    const int status = p->Wait(seconds(8));
    EXPECT_GE(status, 0) << name << " did not exit within 8 s";
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << name << " exit status " << status;
  }
  stop = true;
  for (auto& t : senders) t.join();
}

}  // namespace
}  // namespace parley::e2e
