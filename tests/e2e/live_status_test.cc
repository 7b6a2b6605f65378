// Live status end to end: presence (devices, grace, gateway death,
// GetPresence), typing indicators, delivery/read receipts, unread counts and
// Redis outages, driven through the public gRPC API against the real
// binaries.
//
// Waiting is always for an event or a condition; where the absence of a
// frame must be shown, the test waits a bounded time, round-trips a ping
// (Sync) and then inspects everything received.
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
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

using ::google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;
using Stub = v1::ChatService::Stub;
using Frame = v1::ServerFrame;
using Pred = std::function<bool(const Frame&)>;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

constexpr milliseconds kTypingTtl{1500};
constexpr milliseconds kOfflineGrace{1000};
// "Offline within 2 s" of the last stream's clean close, plus scheduling slack.
constexpr milliseconds kOfflineWithin{2500};
// How long to wait before declaring that a frame did not come.
constexpr milliseconds kSettle{1500};
constexpr char kUnknownId[] = "8999999999999999999";

// ------------------------------------------------------------------ Device
// A Connect stream that, unlike LiveStream, can also send typing and ack
// frames. Same reading semantics as LiveStream.
class Device {
 public:
  static std::unique_ptr<Device> Open(const std::string& gateway,
                                      const std::string& token) {
    std::unique_ptr<Device> d(new Device());
    d->channel_ =
        grpc::CreateChannel(gateway, grpc::InsecureChannelCredentials());
    d->stub_ = v1::ChatService::NewStub(d->channel_);
    d->ctx_.AddMetadata("authorization", "Bearer " + token);
    d->stream_ = d->stub_->Connect(&d->ctx_);
    d->reader_ = std::thread([raw = d.get()] { raw->ReadLoop(); });
    if (!d->Sync()) return nullptr;
    return d;
  }

  ~Device() {
    Cancel();
    if (reader_.joinable()) reader_.join();
  }

  bool Write(const v1::ClientFrame& f) {
    std::lock_guard<std::mutex> lock(write_mu_);
    return stream_->Write(f);
  }
  bool Typing(const std::string& chat_id, bool typing) {
    v1::ClientFrame f;
    f.mutable_typing()->set_chat_id(chat_id);
    f.mutable_typing()->set_typing(typing);
    return Write(f);
  }
  bool Ack(const std::string& chat_id, uint64_t seq) {
    v1::ClientFrame f;
    f.mutable_ack()->set_chat_id(chat_id);
    f.mutable_ack()->set_seq(seq);
    return Write(f);
  }

  // First frame matching `pred` (removing it and every frame before it).
  // `pred` sees each frame exactly once, in order.
  std::optional<Frame> WaitFor(const Pred& pred,
                               milliseconds timeout = seconds(10)) {
    std::unique_lock<std::mutex> lock(mu_);
    const auto end = steady_clock::now() + timeout;
    for (;;) {
      while (!frames_.empty()) {
        Frame f = std::move(frames_.front());
        frames_.pop_front();
        if (pred(f)) return f;
      }
      if (ended_) return std::nullopt;
      if (cv_.wait_until(lock, end) == std::cv_status::timeout &&
          frames_.empty()) {
        return std::nullopt;
      }
    }
  }

  std::optional<v1::ChatEvent> WaitForEvent(
      const std::string& chat_id, uint64_t seq,
      milliseconds timeout = seconds(10)) {
    auto f = WaitFor(
        [&](const Frame& f) {
          return f.has_chat_event() && f.chat_event().chat_id() == chat_id &&
                 f.chat_event().seq() == seq;
        },
        timeout);
    if (!f) return std::nullopt;
    return f->chat_event();
  }

  std::vector<Frame> Drain() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Frame> out(frames_.begin(), frames_.end());
    frames_.clear();
    return out;
  }

  // Ping round trip; frames other than the pong are kept.
  bool Sync(milliseconds timeout = seconds(10)) {
    int64_t nonce;
    {
      std::lock_guard<std::mutex> lock(write_mu_);
      nonce = next_nonce_++;
      v1::ClientFrame ping;
      ping.mutable_ping()->set_nonce(nonce);
      if (!stream_->Write(ping)) return false;
    }
    std::unique_lock<std::mutex> lock(mu_);
    const auto end = steady_clock::now() + timeout;
    for (;;) {
      for (auto it = frames_.begin(); it != frames_.end(); ++it) {
        if (it->has_pong() && it->pong().nonce() == nonce) {
          frames_.erase(it);
          return true;
        }
      }
      if (ended_) return false;
      if (cv_.wait_until(lock, end) == std::cv_status::timeout) return false;
    }
  }

  std::optional<grpc::Status> WaitEnd(milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [this] { return ended_; })) {
      return std::nullopt;
    }
    return status_;
  }

  void Cancel() { ctx_.TryCancel(); }
  // The client goes away cleanly: cancel and wait for the local end.
  void Close() {
    Cancel();
    WaitEnd(seconds(5));
  }

 private:
  Device() = default;
  void ReadLoop() {
    Frame frame;
    while (stream_->Read(&frame)) {
      std::lock_guard<std::mutex> lock(mu_);
      frames_.push_back(frame);
      cv_.notify_all();
    }
    grpc::Status s = stream_->Finish();
    std::lock_guard<std::mutex> lock(mu_);
    ended_ = true;
    status_ = s;
    cv_.notify_all();
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ChatService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ClientFrame, Frame>> stream_;
  std::thread reader_;
  std::mutex write_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Frame> frames_;
  bool ended_ = false;
  grpc::Status status_;
  int64_t next_nonce_ = 1;
};

// ---------------------------------------------------------------- matchers

Pred PresenceIs(const TestUser& u, bool online) {
  return [id = u.user_id, online](const Frame& f) {
    return f.has_presence() && f.presence().user_id() == id &&
           f.presence().online() == online;
  };
}
Pred AnyTypingOf(const std::string& chat_id, const TestUser& u) {
  return [chat_id, id = u.user_id](const Frame& f) {
    return f.has_typing() && f.typing().chat_id() == chat_id &&
           f.typing().user_id() == id;
  };
}
Pred TypingIs(const std::string& chat_id, const TestUser& u, bool typing) {
  return [chat_id, id = u.user_id, typing](const Frame& f) {
    return f.has_typing() && f.typing().chat_id() == chat_id &&
           f.typing().user_id() == id && f.typing().typing() == typing;
  };
}
Pred AnyTypingIn(const std::string& chat_id) {
  return [chat_id](const Frame& f) {
    return f.has_typing() && f.typing().chat_id() == chat_id;
  };
}
Pred ReceiptOf(const std::string& chat_id, const TestUser& u) {
  return [chat_id, id = u.user_id](const Frame& f) {
    return f.has_receipt() && f.receipt().chat_id() == chat_id &&
           f.receipt().user_id() == id;
  };
}

// Waits `settle`, round-trips a ping, and returns how many of the frames
// received meanwhile match `pred` (all pending frames are consumed).
int CountAfterSettle(Device& d, const Pred& pred,
                     milliseconds settle = kSettle) {
  std::this_thread::sleep_for(settle);
  EXPECT_TRUE(d.Sync()) << "stream ended or ping unanswered";
  int n = 0;
  for (const Frame& f : d.Drain()) n += pred(f) ? 1 : 0;
  return n;
}

// Polls `cond` until it holds or `timeout` passes.
bool Eventually(const std::function<bool()>& cond, milliseconds timeout,
                milliseconds step = milliseconds(100)) {
  const auto end = steady_clock::now() + timeout;
  for (;;) {
    if (cond()) return true;
    if (steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(step);
  }
}

int64_t NowMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
int64_t Ms(const google::protobuf::Timestamp& t) {
  return TimeUtil::TimestampToMilliseconds(t);
}
int64_t Since(steady_clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - t)
      .count();
}

void ExpectCode(const grpc::Status& s, grpc::StatusCode code,
                const std::string& field = "") {
  EXPECT_EQ(s.error_code(), code) << s.error_message();
  if (!field.empty()) {
    EXPECT_THAT(s.error_message(), HasSubstr(field));
  }
}

std::string Describe(const grpc::Status& s) {
  return absl::StrCat(s.error_code(), " ", s.error_message());
}

// Shared helpers for every fixture.
class LiveStatusBase : public ::testing::Test {
 protected:
  virtual testing::Cluster* cluster() = 0;

  void MakeApis() {
    api_ = std::make_unique<Api>(cluster()->gateway_address(0));
    api1_ = std::make_unique<Api>(cluster()->gateway_address(1));
  }

  std::unique_ptr<Device> Open(const TestUser& u, int gateway = 0) {
    auto d = Device::Open(cluster()->gateway_address(gateway), u.token);
    EXPECT_NE(d, nullptr) << "Connect failed for " << u.username;
    return d;
  }

  grpc::Status GetPresence(const TestUser& viewer,
                           const std::vector<std::string>& ids,
                           v1::GetPresenceResponse* resp,
                           milliseconds timeout = seconds(10),
                           int gateway = 0) {
    v1::GetPresenceRequest req;
    for (const auto& id : ids) req.add_user_ids(id);
    Api& api = gateway == 0 ? *api_ : *api1_;
    return api.Call(viewer.token, &Stub::GetPresence, req, resp, timeout);
  }
  // The one entry about `u` as `viewer` sees it; nullopt on error.
  std::optional<v1::Presence> PresenceOf(const TestUser& viewer,
                                         const TestUser& u, int gateway = 0,
                                         milliseconds timeout = seconds(10)) {
    v1::GetPresenceResponse resp;
    grpc::Status s = GetPresence(viewer, {u.user_id}, &resp, timeout, gateway);
    if (!s.ok() || resp.presences_size() != 1) return std::nullopt;
    return resp.presences(0);
  }

  grpc::Status SetTyping(const TestUser& u, const std::string& chat_id,
                         bool typing, milliseconds timeout = seconds(10)) {
    v1::SetTypingRequest req;
    req.set_chat_id(chat_id);
    req.set_typing(typing);
    google::protobuf::Empty e;
    return api_->Call(u.token, &Stub::SetTyping, req, &e, timeout);
  }
  grpc::Status MarkRead(const TestUser& u, const std::string& chat_id,
                        uint64_t seq) {
    v1::MarkReadRequest req;
    req.set_chat_id(chat_id);
    req.set_seq(seq);
    google::protobuf::Empty e;
    return api_->Call(u.token, &Stub::MarkRead, req, &e);
  }
  // The caller's view of one chat from ListChats.
  std::optional<v1::Chat> ChatAsSeenBy(const TestUser& u,
                                       const std::string& chat_id) {
    v1::ListChatsRequest req;
    req.set_page_size(500);
    v1::ListChatsResponse resp;
    grpc::Status s = api_->Call(u.token, &Stub::ListChats, req, &resp);
    EXPECT_TRUE(s.ok()) << Describe(s);
    for (const auto& c : resp.chats()) {
      if (c.chat_id() == chat_id) return c;
    }
    return std::nullopt;
  }
  uint64_t Unread(const TestUser& u, const std::string& chat_id) {
    auto c = ChatAsSeenBy(u, chat_id);
    EXPECT_TRUE(c.has_value()) << "chat " << chat_id << " not listed";
    return c ? c->unread_count() : ~uint64_t{0};
  }

  std::unique_ptr<Api> api_;
  std::unique_ptr<Api> api1_;
};

// ====================================================== shared cluster

class LiveStatusTest : public LiveStatusBase {
 protected:
  static void SetUpTestSuite() {
    auto c = testing::Cluster::Start({.gateways = 2,
                                      .message_instances = 2,
                                      .typing_ttl = kTypingTtl,
                                      .offline_grace = kOfflineGrace});
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = c->release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    MakeApis();
  }
  testing::Cluster* cluster() override { return cluster_; }
  static testing::Cluster* cluster_;
};

testing::Cluster* LiveStatusTest::cluster_ = nullptr;

// ---------------------------------------------------------------- presence

TEST_F(LiveStatusTest, PresenceFollowsTheLastOfSeveralDevices) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  api_->Direct(a, b);
  auto bs = Open(b, 1);  // the contact
  ASSERT_TRUE(bs);

  const int64_t before_ms = NowMs();
  auto a0 = Open(a, 0);
  ASSERT_TRUE(a0);
  // Going online (first stream) is pushed to the contact.
  auto on = bs->WaitFor(PresenceIs(a, true), seconds(5));
  ASSERT_TRUE(on.has_value()) << "contact did not see a come online";
  auto a1 = Open(a, 1);  // a second device, on the other gateway
  ASSERT_TRUE(a1);
  auto p = PresenceOf(b, a);
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->online());
  EXPECT_EQ(p->user_id(), a.user_id);

  // One device leaves: a stays online, well past the grace.
  a0->Close();
  EXPECT_EQ(CountAfterSettle(*bs, PresenceIs(a, false),
                             kOfflineGrace + milliseconds(1500)),
            0)
      << "offline pushed while another device is still connected";
  p = PresenceOf(b, a, 1);
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->online()) << "offline while a device is still connected";

  // The last device leaves: offline within 2 s, with last_seen_time.
  const auto closed = steady_clock::now();
  a1->Close();
  auto off = bs->WaitFor(PresenceIs(a, false), kOfflineWithin);
  ASSERT_TRUE(off.has_value())
      << "no offline frame within " << kOfflineWithin.count() << " ms";
  EXPECT_LT(Since(closed), kOfflineWithin.count());
  ASSERT_TRUE(off->presence().has_last_seen_time());
  EXPECT_GE(Ms(off->presence().last_seen_time()), before_ms - 1000);
  EXPECT_LE(Ms(off->presence().last_seen_time()), NowMs() + 1000);

  p = PresenceOf(b, a);
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(p->online());
  ASSERT_TRUE(p->has_last_seen_time());
  EXPECT_GE(Ms(p->last_seen_time()), before_ms - 1000);
  EXPECT_LE(Ms(p->last_seen_time()), NowMs() + 1000);
}

TEST_F(LiveStatusTest, ReconnectWithinGraceIsNotAnOfflineOnlinePair) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  api_->Direct(a, b);
  auto bs = Open(b, 1);
  ASSERT_TRUE(bs);
  auto as = Open(a, 0);
  ASSERT_TRUE(as);
  ASSERT_TRUE(bs->WaitFor(PresenceIs(a, true), seconds(5)).has_value());

  // Reconnect to the same gateway, then to the other one.
  for (int gw : {0, 1}) {
    SCOPED_TRACE(absl::StrCat("reconnect to gateway", gw));
    const auto t = steady_clock::now();
    as->Close();
    as = Open(a, gw);
    ASSERT_TRUE(as);
    ASSERT_LT(Since(t), kOfflineGrace.count() - 200)
        << "reconnect too slow to exercise the grace";
    EXPECT_EQ(CountAfterSettle(*bs, PresenceIs(a, false),
                               kOfflineGrace + milliseconds(1500)),
              0)
        << "a reconnect within the grace produced an offline frame";
    auto p = PresenceOf(b, a);
    ASSERT_TRUE(p.has_value());
    EXPECT_TRUE(p->online());
  }

  // Positive control: a real disconnect is seen.
  as->Close();
  EXPECT_TRUE(bs->WaitFor(PresenceIs(a, false), kOfflineWithin).has_value());
}

TEST_F(LiveStatusTest, PresenceIsPushedOnlyToDirectContacts) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b"),
           g = api_->NewUser("g"), x = api_->NewUser("x");
  api_->Direct(a, b);
  api_->Group(a, "not a contact", {g});
  auto bs = Open(b, 0), gs = Open(g, 1), xs = Open(x, 0);
  ASSERT_TRUE(bs && gs && xs);
  auto as = Open(a, 1);
  ASSERT_TRUE(as);
  ASSERT_TRUE(bs->WaitFor(PresenceIs(a, true), seconds(5)).has_value());
  as->Close();
  ASSERT_TRUE(bs->WaitFor(PresenceIs(a, false), kOfflineWithin).has_value());
  auto about_a = [id = a.user_id](const Frame& f) {
    return f.has_presence() && f.presence().user_id() == id;
  };
  EXPECT_EQ(CountAfterSettle(*gs, about_a, milliseconds(200)), 0)
      << "a group co-member is not a contact";
  EXPECT_EQ(CountAfterSettle(*xs, about_a, milliseconds(0)), 0)
      << "a stranger got a's presence";
}

TEST_F(LiveStatusTest, GetPresenceVisibilityAndOrder) {
  TestUser c = api_->NewUser("c");          // the caller
  TestUser d = api_->NewUser("d");          // direct contact, online
  TestUser never = api_->NewUser("never");  // direct contact, never online
  TestUser g_on = api_->NewUser("gon");     // group co-member, online
  TestUser g_off = api_->NewUser("goff");   // group co-member, was online
  TestUser s = api_->NewUser("s");          // stranger, online
  api_->Direct(c, d);
  api_->Direct(never, c);
  api_->Group(g_on, "grp", {c, g_off});
  auto ds = Open(d, 0), gons = Open(g_on, 1), ss = Open(s, 0);
  ASSERT_TRUE(ds && gons && ss);
  const int64_t before_ms = NowMs();
  {
    auto goffs = Open(g_off, 1);
    ASSERT_TRUE(goffs);
  }
  ASSERT_TRUE(Eventually(
      [&] {
        auto p = PresenceOf(c, g_off);
        return p && !p->online() && p->has_last_seen_time();
      },
      kOfflineWithin + seconds(1)))
      << "g_off never became offline with a last_seen_time";

  const std::vector<std::string> ids = {s.user_id,     d.user_id,
                                        kUnknownId,    g_off.user_id,
                                        never.user_id, g_on.user_id};
  for (int gw : {0, 1}) {
    SCOPED_TRACE(absl::StrCat("via gateway", gw));
    v1::GetPresenceResponse resp;
    grpc::Status st = GetPresence(c, ids, &resp, seconds(10), gw);
    ASSERT_TRUE(st.ok()) << Describe(st);
    ASSERT_EQ(resp.presences_size(), static_cast<int>(ids.size()));
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(resp.presences(i).user_id(), ids[i]) << "entry " << i;
    }
    const auto& ps = resp.presences();
    // Stranger: online, but not visible.
    EXPECT_FALSE(ps[0].online()) << "stranger's presence leaked";
    EXPECT_FALSE(ps[0].has_last_seen_time()) << "stranger's last seen leaked";
    // Direct contact, online.
    EXPECT_TRUE(ps[1].online());
    // Unknown id.
    EXPECT_FALSE(ps[2].online());
    EXPECT_FALSE(ps[2].has_last_seen_time());
    // Group co-member, seen before.
    EXPECT_FALSE(ps[3].online());
    ASSERT_TRUE(ps[3].has_last_seen_time());
    EXPECT_GE(Ms(ps[3].last_seen_time()), before_ms - 1000);
    EXPECT_LE(Ms(ps[3].last_seen_time()), NowMs() + 1000);
    // Contact never seen.
    EXPECT_FALSE(ps[4].online());
    EXPECT_FALSE(ps[4].has_last_seen_time());
    // Group co-member, online.
    EXPECT_TRUE(ps[5].online());
  }
}

TEST_F(LiveStatusTest, GetPresenceLimitsAndBadInput) {
  TestUser c = api_->NewUser("c"), d = api_->NewUser("d");
  api_->Direct(c, d);
  auto ds = Open(d, 1);
  ASSERT_TRUE(ds);

  std::vector<std::string> ids = {d.user_id};
  for (int i = 1; ids.size() < 500; ++i) {
    ids.push_back(absl::StrCat(8000000000000000000LL + i));
  }
  v1::GetPresenceResponse resp;
  grpc::Status s = GetPresence(c, ids, &resp);
  ASSERT_TRUE(s.ok()) << "500 ids must be accepted: " << Describe(s);
  ASSERT_EQ(resp.presences_size(), 500);
  EXPECT_TRUE(resp.presences(0).online());
  for (int i = 0; i < 500; ++i) {
    ASSERT_EQ(resp.presences(i).user_id(), ids[i]) << "entry " << i;
    if (i > 0) {
      EXPECT_FALSE(resp.presences(i).online());
    }
  }

  ids.push_back(absl::StrCat(8000000000000000000LL + 1000));
  ExpectCode(GetPresence(c, ids, &resp), grpc::StatusCode::INVALID_ARGUMENT,
             "user_ids");

  for (const std::string bad : {"12x", "-4", "", "abc"}) {
    SCOPED_TRACE(absl::StrCat("id '", bad, "'"));
    ExpectCode(GetPresence(c, {d.user_id, bad}, &resp),
               grpc::StatusCode::INVALID_ARGUMENT);
  }
  // Still needs a token.
  v1::GetPresenceRequest req;
  req.add_user_ids(d.user_id);
  ExpectCode(api_->Call("", &Stub::GetPresence, req, &resp),
             grpc::StatusCode::UNAUTHENTICATED);
}

// ------------------------------------------------------------------ typing

TEST_F(LiveStatusTest, TypingStartAndExplicitStop) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b"),
           c = api_->NewUser("c");
  v1::Chat g = api_->Group(a, "typing", {b, c});
  auto as = Open(a, 1), bs = Open(b, 0), cs = Open(c, 1);
  ASSERT_TRUE(as && bs && cs);
  const std::string chat = g.chat_id();

  // By RPC.
  grpc::Status s = SetTyping(a, chat, true);
  ASSERT_TRUE(s.ok()) << Describe(s);
  for (Device* d : {bs.get(), cs.get()}) {
    auto f = d->WaitFor(AnyTypingOf(chat, a), seconds(2));
    ASSERT_TRUE(f.has_value()) << "typing start not pushed at once";
    EXPECT_TRUE(f->typing().typing());
  }
  s = SetTyping(a, chat, false);
  ASSERT_TRUE(s.ok()) << Describe(s);
  for (Device* d : {bs.get(), cs.get()}) {
    auto f = d->WaitFor(AnyTypingOf(chat, a), seconds(2));
    ASSERT_TRUE(f.has_value()) << "typing stop not pushed at once";
    EXPECT_FALSE(f->typing().typing());
  }

  // By stream frame.
  ASSERT_TRUE(as->Typing(chat, true));
  for (Device* d : {bs.get(), cs.get()}) {
    auto f = d->WaitFor(AnyTypingOf(chat, a), seconds(2));
    ASSERT_TRUE(f.has_value()) << "stream typing start not pushed";
    EXPECT_TRUE(f->typing().typing());
  }
  ASSERT_TRUE(as->Typing(chat, false));
  for (Device* d : {bs.get(), cs.get()}) {
    auto f = d->WaitFor(AnyTypingOf(chat, a), seconds(2));
    ASSERT_TRUE(f.has_value()) << "stream typing stop not pushed";
    EXPECT_FALSE(f->typing().typing());
  }

  // Stopped means stopped: the TTL lapsing later pushes nothing more.
  EXPECT_EQ(CountAfterSettle(*bs, AnyTypingOf(chat, a),
                             kTypingTtl + milliseconds(1000)),
            0);
  EXPECT_EQ(CountAfterSettle(*cs, AnyTypingOf(chat, a), milliseconds(0)), 0);
  EXPECT_TRUE(as->Sync()) << "typist's stream ended";
}

TEST_F(LiveStatusTest, SendingAMessageStopsTyping) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  v1::Chat chat = api_->Direct(a, b);
  auto bs = Open(b, 1);
  ASSERT_TRUE(bs);
  ASSERT_TRUE(SetTyping(a, chat.chat_id(), true).ok());
  ASSERT_TRUE(
      bs->WaitFor(TypingIs(chat.chat_id(), a, true), seconds(2)).has_value());

  // Refresh, then send at once: the stop must come from the send, well
  // before the TTL could lapse.
  ASSERT_TRUE(SetTyping(a, chat.chat_id(), true).ok());
  const auto sent = steady_clock::now();
  v1::Message m = api_->Send(a, chat.chat_id(), "done typing");
  auto f = bs->WaitFor(AnyTypingOf(chat.chat_id(), a), milliseconds(1200));
  ASSERT_TRUE(f.has_value()) << "no typing stop within 1.2 s of the send";
  EXPECT_FALSE(f->typing().typing()) << "a refresh was broadcast again";
  EXPECT_LT(Since(sent), kTypingTtl.count())
      << "that was the TTL, not the send";
  // Exactly one stop: the TTL lapsing later pushes nothing more.
  EXPECT_EQ(CountAfterSettle(*bs, AnyTypingOf(chat.chat_id(), a),
                             kTypingTtl + milliseconds(1000)),
            0);
  (void)m;
}

TEST_F(LiveStatusTest, TypingExpiresAfterTheTtl) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  v1::Chat chat = api_->Direct(a, b);
  auto bs = Open(b, 0);
  ASSERT_TRUE(bs);
  const auto start = steady_clock::now();
  ASSERT_TRUE(SetTyping(a, chat.chat_id(), true).ok());
  ASSERT_TRUE(
      bs->WaitFor(TypingIs(chat.chat_id(), a, true), seconds(2)).has_value());
  const auto deadline = start + kTypingTtl + seconds(2);
  auto f = bs->WaitFor(
      AnyTypingOf(chat.chat_id(), a),
      std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now()));
  ASSERT_TRUE(f.has_value()) << "typing did not expire within TTL + 2 s";
  EXPECT_FALSE(f->typing().typing());
  EXPECT_GE(Since(start), kTypingTtl.count() - 200) << "expired too early";
  EXPECT_EQ(CountAfterSettle(*bs, AnyTypingOf(chat.chat_id(), a)), 0);
}

TEST_F(LiveStatusTest, TypingRefreshesAreNotBroadcast) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b"),
           c = api_->NewUser("c");
  v1::Chat g = api_->Group(a, "refresh", {b, c});
  auto bs = Open(b, 0);
  ASSERT_TRUE(bs);
  const std::string chat = g.chat_id();
  steady_clock::time_point last;
  for (int i = 0; i < 5; ++i) {
    if (i > 0) std::this_thread::sleep_for(milliseconds(200));
    last = steady_clock::now();
    grpc::Status s = SetTyping(a, chat, true);
    ASSERT_TRUE(s.ok()) << i << ": " << Describe(s);
  }
  int starts = 0;
  auto stop = bs->WaitFor(
      [&](const Frame& f) {
        if (!AnyTypingOf(chat, a)(f)) return false;
        if (f.typing().typing()) {
          ++starts;
          return false;
        }
        return true;
      },
      kTypingTtl + seconds(2) + milliseconds(500));
  ASSERT_TRUE(stop.has_value()) << "typing did not expire after refreshes";
  EXPECT_EQ(starts, 1) << "refreshes were broadcast";
  // Refreshes extend the indicator: expiry counts from the last one.
  EXPECT_GE(Since(last), kTypingTtl.count() - 300)
      << "expired counting from an earlier refresh";
  EXPECT_EQ(CountAfterSettle(*bs, AnyTypingOf(chat, a)), 0)
      << "more than one stop";
}

TEST_F(LiveStatusTest, TypingByNonMembers) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b"),
           x = api_->NewUser("x");
  v1::Chat chat = api_->Direct(a, b);
  auto bs = Open(b, 0), as = Open(a, 1), xs = Open(x, 1);
  ASSERT_TRUE(bs && as && xs);

  ExpectCode(SetTyping(x, chat.chat_id(), true),
             grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(xs->Typing(chat.chat_id(), true));
  EXPECT_EQ(CountAfterSettle(*bs, AnyTypingIn(chat.chat_id())), 0)
      << "a non-member's typing reached a member";
  EXPECT_EQ(CountAfterSettle(*as, AnyTypingIn(chat.chat_id()), milliseconds(0)),
            0);
  EXPECT_TRUE(xs->Sync()) << "the stream was closed for a non-member frame";

  // Positive control: a member's typing arrives.
  ASSERT_TRUE(as->Typing(chat.chat_id(), true));
  EXPECT_TRUE(
      bs->WaitFor(TypingIs(chat.chat_id(), a, true), seconds(2)).has_value());
  ASSERT_TRUE(SetTyping(a, chat.chat_id(), false).ok());
}

// ---------------------------------------------------------------- receipts

TEST_F(LiveStatusTest, ReceiptsMoveOnlyForwardAndReachOthers) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b"),
           c = api_->NewUser("c");
  v1::Chat g = api_->Group(a, "receipts", {b, c});
  const std::string chat = g.chat_id();
  auto as = Open(a, 1), bs = Open(b, 0), cs = Open(c, 0);
  ASSERT_TRUE(as && bs && cs);
  for (int i = 1; i <= 5; ++i) {
    ASSERT_EQ(api_->Send(a, chat, absl::StrCat("m", i)).seq(),
              static_cast<uint64_t>(i));
  }
  auto expect_next = [&](uint64_t delivered, uint64_t read,
                         const std::string& what) {
    for (Device* d : {as.get(), cs.get()}) {
      auto f = d->WaitFor(ReceiptOf(chat, b), seconds(3));
      ASSERT_TRUE(f.has_value()) << what << ": receipt not pushed";
      EXPECT_EQ(f->receipt().delivered_seq(), delivered) << what;
      EXPECT_EQ(f->receipt().read_seq(), read) << what;
    }
  };
  auto expect_none = [&](const std::string& what) {
    EXPECT_EQ(CountAfterSettle(*as, ReceiptOf(chat, b)), 0) << what;
    EXPECT_EQ(CountAfterSettle(*cs, ReceiptOf(chat, b), milliseconds(0)), 0)
        << what;
  };

  ASSERT_TRUE(bs->Ack(chat, 3));
  expect_next(3, 0, "ack 3");
  ASSERT_TRUE(MarkRead(b, chat, 2).ok());
  expect_next(3, 2, "read 2");

  // Backwards: accepted, but nothing changes and nothing is pushed.
  ASSERT_TRUE(bs->Ack(chat, 2));
  grpc::Status s = MarkRead(b, chat, 1);
  EXPECT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(bs->Sync());  // the ack frame has been read by the gateway
  expect_none("backwards updates");

  // Read implies delivered.
  ASSERT_TRUE(MarkRead(b, chat, 4).ok());
  expect_next(4, 4, "read 4");
  ASSERT_TRUE(bs->Ack(chat, 4));  // no-op: already delivered
  ASSERT_TRUE(bs->Ack(chat, 5));
  expect_next(5, 4, "ack 5 (after a no-op ack 4)");

  // Beyond last_seq: clamped to it.
  ASSERT_TRUE(MarkRead(b, chat, 1000).ok());
  expect_next(5, 5, "read 1000 clamped to 5");
  ASSERT_EQ(api_->Send(a, chat, "m6").seq(), 6u);
  ASSERT_TRUE(MarkRead(b, chat, 6).ok());
  expect_next(6, 6, "read 6 after the clamp");
  expect_none("after read 6");
  EXPECT_EQ(Unread(b, chat), 0u);
}

TEST_F(LiveStatusTest, MarkReadErrors) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b"),
           x = api_->NewUser("x");
  v1::Chat chat = api_->Direct(a, b);
  api_->Send(a, chat.chat_id(), "hi");
  ExpectCode(MarkRead(x, chat.chat_id(), 1),
             grpc::StatusCode::PERMISSION_DENIED);
  ExpectCode(MarkRead(b, kUnknownId, 1), grpc::StatusCode::NOT_FOUND);
  for (const std::string bad : {"abc", "12x", "-4", ""}) {
    SCOPED_TRACE(absl::StrCat("chat_id '", bad, "'"));
    ExpectCode(MarkRead(b, bad, 1), grpc::StatusCode::INVALID_ARGUMENT,
               "chat_id");
  }
  EXPECT_TRUE(MarkRead(b, chat.chat_id(), 1).ok());
}

TEST_F(LiveStatusTest, UnreadCounts) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b"),
           c = api_->NewUser("c"), d = api_->NewUser("d");
  v1::Chat g = api_->Group(a, "unread", {b, c});
  const std::string chat = g.chat_id();
  for (int i = 0; i < 3; ++i) api_->Send(a, chat, "from a");  // 1..3
  for (int i = 0; i < 2; ++i) api_->Send(c, chat, "from c");  // 4..5
  ASSERT_EQ(api_->Send(b, chat, "from b").seq(), 6u);
  EXPECT_EQ(Unread(a, chat), 3u);
  EXPECT_EQ(Unread(b, chat), 5u);
  EXPECT_EQ(Unread(c, chat), 4u);

  ASSERT_TRUE(MarkRead(b, chat, 3).ok());
  EXPECT_EQ(Unread(b, chat), 2u);
  ASSERT_TRUE(MarkRead(b, chat, 6).ok());
  EXPECT_EQ(Unread(b, chat), 0u);
  ASSERT_TRUE(MarkRead(c, chat, 5).ok());
  EXPECT_EQ(Unread(c, chat), 1u);  // b's message, seq 6
  // Going backwards changes nothing.
  ASSERT_TRUE(MarkRead(b, chat, 1).ok());
  EXPECT_EQ(Unread(b, chat), 0u);
  // A membership event is not a message.
  v1::AddMembersRequest add;
  add.set_chat_id(chat);
  add.add_user_ids(d.user_id);
  v1::Chat after;
  ASSERT_TRUE(api_->Call(a.token, &Stub::AddMembers, add, &after).ok());
  EXPECT_EQ(after.last_seq(), 7u);
  EXPECT_EQ(Unread(b, chat), 0u);
  // A new message from another member counts.
  api_->Send(a, chat, "seq 8");
  EXPECT_EQ(Unread(b, chat), 1u);
  EXPECT_EQ(Unread(a, chat), 3u);  // own messages never count

  // Direct chat, both sides.
  v1::Chat direct = api_->Direct(a, b);
  api_->Send(a, direct.chat_id(), "1");
  api_->Send(a, direct.chat_id(), "2");
  EXPECT_EQ(Unread(b, direct.chat_id()), 2u);
  EXPECT_EQ(Unread(a, direct.chat_id()), 0u);
}

TEST_F(LiveStatusTest, UnreadCountSkipsDeletedMessages) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  v1::Chat chat = api_->Direct(a, b);
  api_->Send(a, chat.chat_id(), "1");
  v1::Message doomed = api_->Send(a, chat.chat_id(), "2");
  api_->Send(a, chat.chat_id(), "3");
  v1::DeleteMessageRequest del;
  del.set_chat_id(chat.chat_id());
  del.set_message_id(doomed.message_id());
  v1::Message out;
  grpc::Status s = api_->Call(a.token, &Stub::DeleteMessage, del, &out);
  if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    GTEST_SKIP() << "DeleteMessage is not implemented yet";
  }
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(Unread(b, chat.chat_id()), 2u);
}

// ============================================== gateway killed (own cluster)

class GatewayDeathTest : public LiveStatusBase {
 protected:
  void SetUp() override {
    auto c = testing::Cluster::Start({.gateways = 2,
                                      .message_instances = 1,
                                      .route_ttl = milliseconds(2000),
                                      .heartbeat_interval = milliseconds(500),
                                      .typing_ttl = kTypingTtl,
                                      .offline_grace = kOfflineGrace});
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = std::move(*c);
    MakeApis();
  }
  testing::Cluster* cluster() override { return cluster_.get(); }
  std::unique_ptr<testing::Cluster> cluster_;
};

TEST_F(GatewayDeathTest, UsersOfAKilledGatewayGoOfflineWithinTheRouteTtl) {
  TestUser a = api1_->NewUser("a"), a2 = api1_->NewUser("a2"),
           e = api1_->NewUser("e"), b = api1_->NewUser("b");
  api1_->Direct(a, b);
  api1_->Direct(a2, b);
  api1_->Direct(e, b);
  auto bs = Open(b, 1);
  ASSERT_TRUE(bs);
  auto as = Open(a, 0), a2s = Open(a2, 0), e0 = Open(e, 0), e1 = Open(e, 1);
  ASSERT_TRUE(as && a2s && e0 && e1);
  // The three online frames may come in any order, and WaitFor consumes
  // what it skips: collect them with one predicate.
  std::set<std::string> online;
  auto all_online = bs->WaitFor(
      [&](const Frame& f) {
        if (f.has_presence() && f.presence().online()) {
          online.insert(f.presence().user_id());
        }
        return online.count(a.user_id) && online.count(a2.user_id) &&
               online.count(e.user_id);
      },
      seconds(5));
  ASSERT_TRUE(all_online.has_value())
      << "online not pushed for all of a, a2, e; got " << online.size();

  const int64_t before_kill_ms = NowMs();
  const auto killed = steady_clock::now();
  cluster_->process("gateway0")->Kill();
  const milliseconds limit = milliseconds(2000) + seconds(3);
  std::vector<std::string> offline;
  auto got = bs->WaitFor(
      [&](const Frame& f) {
        if (f.has_presence() && !f.presence().online()) {
          offline.push_back(f.presence().user_id());
          EXPECT_TRUE(f.presence().has_last_seen_time());
        }
        return std::count(offline.begin(), offline.end(), a.user_id) > 0 &&
               std::count(offline.begin(), offline.end(), a2.user_id) > 0;
      },
      limit);
  ASSERT_TRUE(got.has_value())
      << "offline not pushed within route TTL + 3 s; got " << offline.size()
      << " offline frames";
  EXPECT_LT(Since(killed), limit.count());
  EXPECT_EQ(std::count(offline.begin(), offline.end(), e.user_id), 0)
      << "e still has a device on gateway1";

  for (const TestUser* u : {&a, &a2}) {
    auto p = PresenceOf(b, *u, 1);
    ASSERT_TRUE(p.has_value());
    EXPECT_FALSE(p->online()) << u->username;
    ASSERT_TRUE(p->has_last_seen_time()) << u->username;
    EXPECT_GE(Ms(p->last_seen_time()), before_kill_ms - 5000);
    EXPECT_LE(Ms(p->last_seen_time()), NowMs() + 1000);
  }
  auto pe = PresenceOf(b, e, 1);
  ASSERT_TRUE(pe.has_value());
  EXPECT_TRUE(pe->online()) << "e's device on gateway1 is still connected";
  EXPECT_EQ(CountAfterSettle(*bs, PresenceIs(e, false), milliseconds(500)), 0);
}

// ============================================== Redis outages (own cluster)

class RedisOutageTest : public LiveStatusBase {
 protected:
  void SetUp() override {
    auto c = testing::Cluster::Start({.gateways = 2,
                                      .message_instances = 1,
                                      .route_ttl = milliseconds(5000),
                                      .heartbeat_interval = milliseconds(1000),
                                      .typing_ttl = kTypingTtl,
                                      .offline_grace = kOfflineGrace});
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = std::move(*c);
    MakeApis();
  }
  testing::Cluster* cluster() override { return cluster_.get(); }
  std::unique_ptr<testing::Cluster> cluster_;
};

// Must not be INTERNAL and must answer well within the deadline.
void ExpectDegraded(const grpc::Status& s, int64_t took_ms,
                    const std::string& what) {
  EXPECT_TRUE(s.ok() || s.error_code() == grpc::StatusCode::UNAVAILABLE)
      << what << ": " << Describe(s);
  EXPECT_LT(took_ms, 5000) << what << " hung";
}

TEST_F(RedisOutageTest, EverythingRecoversAfterARedisRestart) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  v1::Chat chat = api_->Direct(a, b);
  auto bs = Open(b, 0);
  auto as = Open(a, 1);
  ASSERT_TRUE(as && bs);
  ASSERT_EQ(api_->Send(a, chat.chat_id(), "before").seq(), 1u);
  ASSERT_TRUE(bs->WaitForEvent(chat.chat_id(), 1, seconds(5)).has_value());

  cluster_->redis()->Stop();

  // Messaging keeps working.
  v1::Message m;
  grpc::Status s = api1_->TrySend(a, chat.chat_id(), "during", &m);
  ASSERT_TRUE(s.ok()) << "send during Redis outage: " << Describe(s);
  EXPECT_EQ(m.seq(), 2u);
  v1::ListMessagesRequest lm;
  lm.set_chat_id(chat.chat_id());
  v1::ListMessagesResponse history;
  s = api_->Call(b.token, &Stub::ListMessages, lm, &history, seconds(5));
  ASSERT_TRUE(s.ok()) << "ListMessages during outage: " << Describe(s);
  EXPECT_EQ(history.messages_size(), 2);
  v1::SyncChatRequest sc;
  sc.set_chat_id(chat.chat_id());
  v1::SyncChatResponse sync;
  s = api_->Call(b.token, &Stub::SyncChat, sc, &sync, seconds(5));
  ASSERT_TRUE(s.ok()) << "SyncChat during outage: " << Describe(s);
  EXPECT_EQ(sync.events_size(), 2);

  // Live status degrades without INTERNAL or hanging, for long enough that
  // heartbeats, offline checks and typing expiries fall into the outage.
  const auto down = steady_clock::now();
  int rounds = 0;
  while (steady_clock::now() - down < milliseconds(2500) && !HasFailure()) {
    ++rounds;
    auto t = steady_clock::now();
    s = SetTyping(a, chat.chat_id(), true, seconds(5));
    ExpectDegraded(s, Since(t), absl::StrCat("SetTyping #", rounds));
    t = steady_clock::now();
    v1::GetPresenceResponse pr;
    s = GetPresence(a, {b.user_id}, &pr, seconds(5));
    ExpectDegraded(s, Since(t), absl::StrCat("GetPresence #", rounds));
    if (s.ok()) {
      EXPECT_EQ(pr.presences_size(), 1);
    }
    ASSERT_TRUE(as->Typing(chat.chat_id(), rounds % 2 == 0));
    std::this_thread::sleep_for(milliseconds(100));
  }
  // Receipts are durable, not in Redis.
  s = MarkRead(b, chat.chat_id(), 1);
  EXPECT_TRUE(s.ok()) << "MarkRead during outage: " << Describe(s);
  EXPECT_TRUE(as->Sync()) << "a's stream died during the outage";
  EXPECT_TRUE(bs->Sync()) << "b's stream died during the outage";
  // Still sending at the end of the outage.
  s = api_->TrySend(a, chat.chat_id(), "late in the outage", &m);
  ASSERT_TRUE(s.ok()) << "send late in the outage: " << Describe(s);
  EXPECT_EQ(m.seq(), 3u);

  ASSERT_TRUE(cluster_->redis()->StartAgain().ok());
  const auto back = steady_clock::now();
  const auto deadline = back + seconds(10);
  auto left = [&] {
    return std::max<milliseconds>(milliseconds(0),
                                  std::chrono::duration_cast<milliseconds>(
                                      deadline - steady_clock::now()));
  };

  // Presence is whole again: both streams stayed open throughout.
  EXPECT_TRUE(Eventually(
      [&] {
        auto p = PresenceOf(a, b, 0, seconds(2));
        return p && p->online();
      },
      left()))
      << "b not reported online within 10 s of Redis returning";
  EXPECT_TRUE(Eventually(
      [&] {
        auto p = PresenceOf(b, a, 1, seconds(2));
        return p && p->online();
      },
      left()))
      << "a not reported online within 10 s of Redis returning";

  // Typing works again.
  bool typing_seen = false;
  while (!typing_seen && steady_clock::now() < deadline) {
    grpc::Status ts = SetTyping(a, chat.chat_id(), true, seconds(2));
    if (ts.ok()) {
      typing_seen =
          bs->WaitFor(TypingIs(chat.chat_id(), a, true), milliseconds(700))
              .has_value();
    }
    if (!typing_seen) {
      SetTyping(a, chat.chat_id(), false, seconds(2));
      std::this_thread::sleep_for(milliseconds(200));
    }
  }
  EXPECT_TRUE(typing_seen) << "typing not pushed within 10 s of Redis "
                              "returning";

  // A message is delivered live.
  bool delivered = false;
  while (!delivered && steady_clock::now() < deadline) {
    v1::Message live;
    if (api1_->TrySend(a, chat.chat_id(), "after", &live).ok()) {
      delivered =
          bs->WaitForEvent(chat.chat_id(), live.seq(), milliseconds(500))
              .has_value();
    }
  }
  EXPECT_TRUE(delivered) << "no live delivery within 10 s of Redis returning";
  EXPECT_TRUE(as->Sync() && bs->Sync());
}

TEST_F(RedisOutageTest, LastSeenAndReadWatermarksSurviveARedisRestart) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  v1::Chat chat = api_->Direct(a, b);
  for (int i = 0; i < 3; ++i) api_->Send(a, chat.chat_id(), "m");
  ASSERT_TRUE(MarkRead(b, chat.chat_id(), 2).ok());
  ASSERT_EQ(Unread(b, chat.chat_id()), 1u);
  auto bs = Open(b, 1);
  ASSERT_TRUE(bs);
  {
    auto as = Open(a, 0);
    ASSERT_TRUE(as);
    ASSERT_TRUE(bs->WaitFor(PresenceIs(a, true), seconds(5)).has_value());
  }
  // a is offline for good once the contact has been told.
  ASSERT_TRUE(bs->WaitFor(PresenceIs(a, false), kOfflineWithin).has_value());
  std::optional<v1::Presence> seen = PresenceOf(b, a);
  ASSERT_TRUE(seen.has_value());
  ASSERT_FALSE(seen->online());
  ASSERT_TRUE(seen->has_last_seen_time());

  cluster_->redis()->Stop();
  ASSERT_TRUE(cluster_->redis()->StartAgain().ok());

  std::optional<v1::Presence> after;
  ASSERT_TRUE(Eventually(
      [&] {
        after = PresenceOf(b, a, 1, seconds(2));
        return after.has_value();
      },
      seconds(10)))
      << "GetPresence did not answer within 10 s of Redis returning";
  EXPECT_FALSE(after->online());
  ASSERT_TRUE(after->has_last_seen_time()) << "last_seen lost with Redis";
  EXPECT_NEAR(Ms(after->last_seen_time()), Ms(seen->last_seen_time()), 1000);
  EXPECT_EQ(Unread(b, chat.chat_id()), 1u) << "read watermark lost";
}

// The last stream closes and Redis restarts before the offline grace has
// run out: the user was seen, so a last_seen_time must still come back.
TEST_F(RedisOutageTest, LastSeenSurvivesARedisRestartWithinTheGrace) {
  TestUser a = api_->NewUser("a"), b = api_->NewUser("b");
  api_->Direct(a, b);
  const int64_t before_ms = NowMs();
  {
    auto as = Open(a, 0);
    ASSERT_TRUE(as);
  }
  // As soon as a is reported offline (possibly still within the grace, before
  // contacts are told), Redis goes away.
  ASSERT_TRUE(Eventually(
      [&] {
        auto p = PresenceOf(b, a);
        return p && !p->online();
      },
      kOfflineWithin, milliseconds(20)));
  cluster_->redis()->Stop();
  ASSERT_TRUE(cluster_->redis()->StartAgain().ok());

  std::optional<v1::Presence> after;
  EXPECT_TRUE(Eventually(
      [&] {
        after = PresenceOf(b, a, 1, seconds(2));
        return after && !after->online() && after->has_last_seen_time();
      },
      seconds(10)))
      << "10 s after Redis returned: "
      << (after ? after->ShortDebugString() : std::string("no answer"));
  if (after && after->has_last_seen_time()) {
    EXPECT_GE(Ms(after->last_seen_time()), before_ms - 1000);
    EXPECT_LE(Ms(after->last_seen_time()), NowMs() + 1000);
  }
}

// ========================================= mass disconnect (own cluster)

// Storage with two workers queues at most 128 calls and answers "overloaded"
// past that. When many users leave at once, presence has a last-seen write
// and a contact lookup to make for each: it must pace them, or offline
// frames are lost and storage refuses other users' calls meanwhile.
class MassDisconnectTest : public LiveStatusBase {
 protected:
  void SetUp() override {
    auto c = testing::Cluster::Start(
        {.gateways = 2,
         .message_instances = 1,
         .typing_ttl = kTypingTtl,
         .offline_grace = kOfflineGrace,
         .extra_flags = {{"storage", {"--pool_size=2"}}}});
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = std::move(*c);
    MakeApis();
  }
  testing::Cluster* cluster() override { return cluster_.get(); }
  std::unique_ptr<testing::Cluster> cluster_;
};

TEST_F(MassDisconnectTest, EveryOfflineOfAMassDisconnectIsAnnounced) {
  constexpr int kUsers = 300;
  TestUser w = api_->NewUser("w");
  std::vector<TestUser> users;
  for (int i = 0; i < kUsers; ++i) {
    users.push_back(api_->NewUser("m"));
    api_->Direct(users.back(), w);
  }
  auto ws = Open(w, 1);
  ASSERT_TRUE(ws);
  std::vector<std::unique_ptr<Device>> devices;
  for (int i = 0; i < kUsers; ++i) {
    devices.push_back(Open(users[i], i % 2));
    ASSERT_TRUE(devices.back()) << "user " << i;
  }
  // Collects the users a run of presence frames names, until all are seen.
  auto collect = [&](bool online, std::set<std::string>* seen) {
    return ws->WaitFor(
        [&, online, seen](const Frame& f) {
          if (f.has_presence() && f.presence().online() == online) {
            seen->insert(f.presence().user_id());
          }
          return seen->size() == static_cast<size_t>(kUsers);
        },
        seconds(30));
  };
  std::set<std::string> online;
  ASSERT_TRUE(collect(true, &online).has_value())
      << "online pushed for " << online.size() << " of " << kUsers;

  // Everyone leaves at once: their offlines fall due together.
  for (auto& d : devices) d->Cancel();
  for (auto& d : devices) ASSERT_TRUE(d->WaitEnd(seconds(10)).has_value());
  std::set<std::string> offline;
  EXPECT_TRUE(collect(false, &offline).has_value())
      << "offline pushed for " << offline.size() << " of " << kUsers;
  for (const TestUser& u : users) {
    EXPECT_TRUE(offline.count(u.user_id))
        << u.username << " never went offline";
    if (HasFailure()) break;
  }
  // Storage still answers: the durable last-seen of every user is there.
  for (size_t i = 0; i < users.size(); i += 50) {
    v1::GetPresenceResponse resp;
    std::vector<std::string> ids;
    for (size_t j = i; j < std::min(users.size(), i + 50); ++j) {
      ids.push_back(users[j].user_id);
    }
    grpc::Status s = GetPresence(w, ids, &resp);
    ASSERT_TRUE(s.ok()) << Describe(s);
    ASSERT_EQ(resp.presences_size(), static_cast<int>(ids.size()));
    for (const auto& p : resp.presences()) {
      EXPECT_FALSE(p.online()) << p.user_id();
      EXPECT_TRUE(p.has_last_seen_time()) << p.user_id();
    }
  }
}

}  // namespace
}  // namespace parley::e2e
