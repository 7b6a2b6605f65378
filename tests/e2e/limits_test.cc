// Abuse limits through the public API: per-user rate limits (with their
// retry delay), streams per user, message and group size, and a client that
// never reads its Connect stream.
//
// gateway0 runs with low limits; gateway1 with unlimited writes, so that a
// test can flood a stream, and default stream limits.
#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/test_client.h"
#include "tests/support/cluster.h"

namespace parley::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;
using Stub = v1::ChatService::Stub;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kMaxGroupMembers = 5;

class LimitsTest : public testing::SharedClusterTest {
 protected:
  static void SetUpTestSuite() {
    testing::Cluster::Options options;
    options.gateways = 3;
    options.max_group_members = kMaxGroupMembers;
    options.extra_flags["gateway0"] = {
        "--write_rate=2",          "--write_burst=3",
        "--typing_rate=1",         "--typing_burst=2",
        "--connect_rate=1",        "--connect_burst=4",
        "--max_streams_per_user=2", "--stream_queue_bytes=65536",
        "--stream_stall_timeout_ms=1000"};
    // A stall timeout longer than any flood below, so that the slow client
    // reads its status rather than being cancelled.
    options.extra_flags["gateway1"] = {"--write_rate=0",
                                       "--stream_stall_timeout_ms=120000"};
    // One send in flight at a time: the load-shedding budget.
    options.extra_flags["gateway2"] = {"--write_rate=0",
                                       "--max_inflight_sends=1"};
    StartCluster(options);
  }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    api0_ = std::make_unique<Api>(cluster_->gateway_address(0));
    api1_ = std::make_unique<Api>(cluster_->gateway_address(1));
  }

  std::unique_ptr<Api> api0_;
  std::unique_ptr<Api> api1_;
};


// The outcome of a call together with its trailing metadata.
struct Outcome {
  grpc::Status status;
  std::optional<int64_t> retry_after_ms;
};

std::optional<int64_t> RetryAfterMs(const grpc::ClientContext& ctx) {
  const auto& trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find("retry-after-ms");
  if (it == trailers.end()) return std::nullopt;
  int64_t ms = 0;
  if (!absl::SimpleAtoi(std::string(it->second.data(), it->second.size()),
                        &ms)) {
    return -1;
  }
  return ms;
}

template <typename Req, typename Resp>
Outcome CallWithTrailers(
    Api* api, const std::string& token,
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
    const Req& req) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
  ctx.AddMetadata("authorization", "Bearer " + token);
  Resp resp;
  Outcome out;
  out.status = (api->chat()->*method)(&ctx, req, &resp);
  out.retry_after_ms = RetryAfterMs(ctx);
  return out;
}

Outcome Send(Api* api, const TestUser& u, const std::string& chat,
             const std::string& text) {
  v1::SendMessageRequest req;
  req.set_chat_id(chat);
  req.set_text(text);
  req.set_client_message_id(UniqueName("c"));
  return CallWithTrailers(api, u.token, &Stub::SendMessage, req);
}

// Checks a rate-limit refusal: code, message and a retry delay in (0, max].
void ExpectRateLimited(const Outcome& o, const std::string& what,
                       int64_t max_retry_ms) {
  EXPECT_EQ(o.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << o.status.error_message();
  EXPECT_THAT(o.status.error_message(),
              MatchesRegex(what + " rate exceeded; retry after [0-9]+ ms"));
  ASSERT_TRUE(o.retry_after_ms.has_value()) << "no retry-after-ms trailer";
  EXPECT_GT(*o.retry_after_ms, 0);
  EXPECT_LE(*o.retry_after_ms, max_retry_ms);
  EXPECT_THAT(o.status.error_message(),
              HasSubstr(absl::StrCat("after ", *o.retry_after_ms, " ms")));
}

// A Connect stream driven by hand: nothing reads it unless the test does.
struct RawStream {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<Stub> stub;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ClientFrame, v1::ServerFrame>>
      rw;

  // Opens the stream on a connection of its own, with `metadata` besides
  // the token, and sends a ping. A `window_bytes` above 0 fixes the HTTP/2
  // stream window (else gRPC grows it with bandwidth-delay probing).
  static std::unique_ptr<RawStream> Open(
      const std::string& gateway, const std::string& token,
      const std::vector<std::pair<std::string, std::string>>& metadata = {},
      int window_bytes = 0) {
    auto s = std::make_unique<RawStream>();
    grpc::ChannelArguments args;
    if (window_bytes > 0) {
      args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
      args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, window_bytes);
    }
    s->channel = grpc::CreateCustomChannel(
        gateway, grpc::InsecureChannelCredentials(), args);
    s->stub = v1::ChatService::NewStub(s->channel);
    s->ctx.AddMetadata("authorization", "Bearer " + token);
    for (const auto& [key, value] : metadata) s->ctx.AddMetadata(key, value);
    s->ctx.set_deadline(std::chrono::system_clock::now() + seconds(120));
    s->rw = s->stub->Connect(&s->ctx);
    v1::ClientFrame ping;
    ping.mutable_ping()->set_nonce(1);
    s->rw->Write(ping);
    return s;
  }
  // Reads up to the Pong: the route is registered and live events will
  // arrive. False if the stream ended instead.
  bool WaitReady() {
    v1::ServerFrame f;
    while (rw->Read(&f)) {
      if (f.has_pong()) return true;
    }
    return false;
  }
  // Reads to the end; returns the final status and counts frames.
  grpc::Status ReadToEnd(int* frames = nullptr) {
    v1::ServerFrame f;
    int n = 0;
    while (rw->Read(&f)) ++n;
    if (frames != nullptr) *frames = n;
    return rw->Finish();
  }
  void Close() {
    rw->WritesDone();
    ReadToEnd();
  }
};

// ------------------------------------------------------------ rate limits

TEST_F(LimitsTest, SendRateExceededNamesTheDelayAndWaitingItOutWorks) {
  TestUser a = api0_->NewUser("a"), b = api0_->NewUser("b");
  v1::Chat chat = api0_->Direct(a, b);
  // Burst 3 at 2/s: three sends pass at once, the fourth is refused with at
  // most 500 ms to wait.
  for (int i = 0; i < 3; ++i) {
    Outcome o = Send(api0_.get(), a, chat.chat_id(), "hi");
    ASSERT_TRUE(o.status.ok()) << i << ": " << o.status.error_message();
    EXPECT_FALSE(o.retry_after_ms.has_value());
  }
  Outcome refused = Send(api0_.get(), a, chat.chat_id(), "too fast");
  ExpectRateLimited(refused, "send", 500);
  ASSERT_TRUE(refused.retry_after_ms.has_value());
  // The limit is per user: b is not affected.
  ASSERT_TRUE(Send(api0_.get(), b, chat.chat_id(), "me too").status.ok());
  // Waiting as long as told is enough.
  std::this_thread::sleep_for(milliseconds(*refused.retry_after_ms));
  Outcome after = Send(api0_.get(), a, chat.chat_id(), "patient");
  EXPECT_TRUE(after.status.ok()) << after.status.error_message();

  // Edits share the bucket (now empty again).
  v1::EditMessageRequest edit;
  edit.set_chat_id(chat.chat_id());
  edit.set_message_id("1");
  edit.set_text("x");
  ExpectRateLimited(CallWithTrailers(api0_.get(), a.token, &Stub::EditMessage,
                                     edit),
                    "edit", 500);
  // The refused sends were not stored: 3 + 1 from a, 1 from b.
  v1::SyncChatRequest sync;
  sync.set_chat_id(chat.chat_id());
  v1::SyncChatResponse events;
  ASSERT_TRUE(api0_->Call(b.token, &Stub::SyncChat, sync, &events).ok());
  int messages = 0;
  for (const auto& e : events.events()) messages += e.has_message_created();
  EXPECT_EQ(messages, 5);
}

TEST_F(LimitsTest, StreamSendsShareTheSendRateLimit) {
  TestUser a = api0_->NewUser("a"), b = api0_->NewUser("b");
  v1::Chat chat = api0_->Direct(a, b);
  auto stream = LiveStream::Open(cluster_->gateway_address(0), a.token);
  ASSERT_NE(stream, nullptr);
  // Burst 3: three sends pass, the fourth is refused on the stream with the
  // delay, and the stream stays open.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(
        stream->Write(SendFrame(chat.chat_id(), absl::StrCat("rl-", i), "hi")));
    auto r = stream->WaitFor([&](const v1::ServerFrame& f) {
      return f.has_send_result() &&
             f.send_result().client_message_id() == absl::StrCat("rl-", i);
    });
    ASSERT_TRUE(r.has_value()) << i;
    if (i < 3) {
      EXPECT_EQ(r->send_result().code(), 0)
          << i << ": " << r->send_result().error_message();
      continue;
    }
    EXPECT_EQ(r->send_result().code(),
              static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
    EXPECT_THAT(r->send_result().error_message(),
                HasSubstr("send rate exceeded"));
    EXPECT_GT(r->send_result().retry_after_ms(), 0);
    EXPECT_LE(r->send_result().retry_after_ms(), 500);
  }
  EXPECT_TRUE(stream->Sync());
}

TEST_F(LimitsTest, SendsOverTheGatewayBudgetAreShedAtOnce) {
  // A burst of stream sends to a gateway that keeps one in flight: each is
  // answered, either stored or refused with the retry delay; none waits.
  Api api2(cluster_->gateway_address(2));
  TestUser a = api2.NewUser("a"), b = api2.NewUser("b");
  v1::Chat chat = api2.Direct(a, b);
  auto stream = LiveStream::Open(cluster_->gateway_address(2), a.token);
  ASSERT_NE(stream, nullptr);
  constexpr int kSends = 30;
  for (int i = 0; i < kSends; ++i) {
    ASSERT_TRUE(stream->Write(
        SendFrame(chat.chat_id(), absl::StrCat("shed-", i), "hi")));
  }
  int stored = 0, shed = 0, answered = 0;
  ASSERT_TRUE(stream
                  ->WaitFor([&](const v1::ServerFrame& f) {
                    if (!f.has_send_result()) return false;
                    const v1::SendResult& r = f.send_result();
                    ++answered;
                    if (r.code() == 0) {
                      ++stored;
                    } else {
                      EXPECT_EQ(r.code(), static_cast<int>(
                                              grpc::StatusCode::RESOURCE_EXHAUSTED))
                          << r.error_message();
                      EXPECT_THAT(r.error_message(),
                                  HasSubstr("gateway overloaded"));
                      EXPECT_EQ(r.retry_after_ms(), 100);
                      ++shed;
                    }
                    return answered == kSends;
                  })
                  .has_value())
      << answered << " of " << kSends << " answered";
  EXPECT_GT(stored, 0);
  EXPECT_GT(shed, 0) << "a burst of " << kSends
                     << " sends never went over a budget of one";
  // The budget frees up again: a unary send afterwards goes through.
  Outcome later = Send(&api2, a, chat.chat_id(), "after the burst");
  EXPECT_TRUE(later.status.ok()) << later.status.error_message();
}

TEST_F(LimitsTest, TypingIsRateLimited) {
  TestUser a = api0_->NewUser("a"), b = api0_->NewUser("b");
  v1::Chat chat = api0_->Direct(a, b);
  v1::SetTypingRequest req;
  req.set_chat_id(chat.chat_id());
  req.set_typing(true);
  for (int i = 0; i < 2; ++i) {
    Outcome o = CallWithTrailers(api0_.get(), a.token, &Stub::SetTyping, req);
    ASSERT_TRUE(o.status.ok()) << o.status.error_message();
  }
  ExpectRateLimited(
      CallWithTrailers(api0_.get(), a.token, &Stub::SetTyping, req), "typing",
      1000);
}

TEST_F(LimitsTest, ConnectRateExceededNamesTheDelay) {
  TestUser a = api0_->NewUser("a");
  const std::string gw = cluster_->gateway_address(0);
  // Burst 4: four opens (one at a time, under the stream limit) pass.
  for (int i = 0; i < 4; ++i) {
    auto s = RawStream::Open(gw, a.token);
    ASSERT_TRUE(s->WaitReady()) << i;
    s->Close();
  }
  auto refused = RawStream::Open(gw, a.token);
  EXPECT_FALSE(refused->WaitReady());
  Outcome o{refused->rw->Finish(), RetryAfterMs(refused->ctx)};
  ExpectRateLimited(o, "connect", 1000);
  ASSERT_TRUE(o.retry_after_ms.has_value());
  std::this_thread::sleep_for(milliseconds(*o.retry_after_ms));
  auto again = RawStream::Open(gw, a.token);
  EXPECT_TRUE(again->WaitReady());
  again->Close();
}

TEST_F(LimitsTest, StreamsPerUserAreLimited) {
  TestUser a = api0_->NewUser("a");
  const std::string gw = cluster_->gateway_address(0);
  auto s1 = RawStream::Open(gw, a.token);
  auto s2 = RawStream::Open(gw, a.token);
  ASSERT_TRUE(s1->WaitReady());
  ASSERT_TRUE(s2->WaitReady());
  auto s3 = RawStream::Open(gw, a.token);
  EXPECT_FALSE(s3->WaitReady());
  grpc::Status refused = s3->rw->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(refused.error_message(), "too many open streams: at most 2 per user");
  // Another gateway counts its own streams.
  auto other = RawStream::Open(cluster_->gateway_address(1), a.token);
  EXPECT_TRUE(other->WaitReady());
  other->Close();
  // Once a stream is closed there is room again at once: the client has the
  // final status only after the stream stopped counting (a fourth open, the
  // last of the connect burst).
  s1->Close();
  auto reopened = RawStream::Open(gw, a.token);
  EXPECT_TRUE(reopened->WaitReady());
  reopened->Close();
  s2->Close();
}

// ------------------------------------------------------------------- sizes

TEST_F(LimitsTest, MessageTextOverTheLimitNamesTheField) {
  TestUser a = api1_->NewUser("a"), b = api1_->NewUser("b");
  v1::Chat chat = api1_->Direct(a, b);
  // The default limit is 16 KiB (message --max_text_bytes).
  Outcome ok = Send(api1_.get(), a, chat.chat_id(), std::string(16384, 'x'));
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();
  Outcome big = Send(api1_.get(), a, chat.chat_id(), std::string(16385, 'x'));
  EXPECT_EQ(big.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(big.status.error_message(), "text: must be at most 16384 bytes");
  v1::EditMessageRequest edit;
  edit.set_chat_id(chat.chat_id());
  edit.set_message_id("1");
  edit.set_text(std::string(16385, 'y'));
  Outcome big_edit =
      CallWithTrailers(api1_.get(), a.token, &Stub::EditMessage, edit);
  EXPECT_EQ(big_edit.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(big_edit.status.error_message(), StartsWith("text:"));
}

TEST_F(LimitsTest, GroupSizeIsEnforcedOnCreateAndOnAdd) {
  TestUser admin = api1_->NewUser("adm");
  std::vector<TestUser> users;
  for (int i = 0; i < kMaxGroupMembers + 1; ++i) {
    users.push_back(api1_->NewUser("m"));
  }
  auto create = [&](int others, v1::Chat* out) {
    v1::CreateGroupChatRequest req;
    req.set_title("g");
    for (int i = 0; i < others; ++i) req.add_member_user_ids(users[i].user_id);
    return api1_->Call(admin.token, &Stub::CreateGroupChat, req, out);
  };
  auto add = [&](const v1::Chat& chat, int from, int to) {
    v1::AddMembersRequest req;
    req.set_chat_id(chat.chat_id());
    for (int i = from; i < to; ++i) req.add_user_ids(users[i].user_id);
    v1::Chat out;
    return api1_->Call(admin.token, &Stub::AddMembers, req, &out);
  };
  const std::string too_many = absl::StrCat(": a group can have at most ",
                                            kMaxGroupMembers, " members");
  v1::Chat chat;
  // Creator + 5 = 6 > 5 (counted by storage), creator + 6 (refused early).
  for (int others : {kMaxGroupMembers, kMaxGroupMembers + 1}) {
    grpc::Status s = create(others, &chat);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << others;
    EXPECT_EQ(s.error_message(), "member_user_ids" + too_many);
  }
  // Creator + 4 = 5 fits exactly.
  ASSERT_TRUE(create(kMaxGroupMembers - 1, &chat).ok());
  EXPECT_EQ(chat.member_user_ids_size(), kMaxGroupMembers);
  grpc::Status full = add(chat, kMaxGroupMembers - 1, kMaxGroupMembers);
  EXPECT_EQ(full.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(full.error_message(), "user_ids" + too_many);

  // Adding: creator + 2, then + 2 = 5 fits, then one more does not; a list
  // that can never fit is refused as well.
  ASSERT_TRUE(create(2, &chat).ok());
  ASSERT_TRUE(add(chat, 2, 4).ok());
  grpc::Status over = add(chat, 4, 5);
  EXPECT_EQ(over.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(over.error_message(), "user_ids" + too_many);
  ASSERT_TRUE(create(0, &chat).ok());
  grpc::Status never = add(chat, 0, kMaxGroupMembers);
  EXPECT_EQ(never.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(never.error_message(), "user_ids" + too_many);
}

// ----------------------------------------------------------- slow clients

// Resident set (VmRSS) or its peak (VmHWM) of a process, in KiB.
int64_t StatusKb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::stoll(line.substr(field.size() + 1));
    }
  }
  return -1;
}

// Sends `count` messages of `bytes` from `from` into `chat` through
// `gateway`, on `threads` connections at once. Returns how many failed.
int Flood(const std::string& gateway, const TestUser& from,
          const std::string& chat, int count, size_t bytes, int threads) {
  std::atomic<int> next{0}, failed{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < threads; ++t) {
    senders.emplace_back([&] {
      Api api(gateway);
      for (int i = next++; i < count; i = next++) {
        std::string text = absl::StrCat(i, " ");
        text.resize(bytes, 'x');
        if (!Send(&api, from, chat, text).status.ok()) ++failed;
      }
    });
  }
  for (auto& t : senders) t.join();
  return failed.load();
}

TEST_F(LimitsTest, ClientThatNeverReadsIsDroppedInBoundedMemory) {
  TestUser reader = api1_->NewUser("slow"), sender = api1_->NewUser("fast");
  v1::Chat chat = api1_->Direct(reader, sender);
  const std::string gw = cluster_->gateway_address(1);
  auto slow = RawStream::Open(gw, reader.token);
  ASSERT_TRUE(slow->WaitReady());
  // From here on the client reads nothing.

  constexpr int kMessages = 1500;
  constexpr size_t kBytes = 16000;
  const pid_t pid = cluster_->process("gateway1")->pid();
  const int64_t peak_before = StatusKb(pid, "VmHWM");
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(Flood(gw, sender, chat.chat_id(), kMessages, kBytes, 4), 0);
  const double flood_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  const int64_t peak_after = StatusKb(pid, "VmHWM");
  const int64_t rss_after = StatusKb(pid, "VmRSS");
  const int64_t sent_kb = static_cast<int64_t>(kMessages) * kBytes / 1024;
  std::printf("[ rss      ] gateway peak %lld KiB before, %lld KiB after "
              "(rss %lld KiB) while %lld KiB went to a client that does not "
              "read (%.1f s)\n",
              static_cast<long long>(peak_before),
              static_cast<long long>(peak_after),
              static_cast<long long>(rss_after),
              static_cast<long long>(sent_kb), flood_s);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  EXPECT_GT(peak_before, 0);
  // The stream's queue holds at most 4 MiB (--stream_queue_bytes); the rest
  // is a frame in flight, HTTP/2 buffers and malloc slack. Without the byte
  // budget the queue would take nearly all 23 MiB (1500 < 4096 frames).
  EXPECT_LT(peak_after - peak_before, 12 * 1024);
#endif

  // The client finally reads: what was in flight, then the reason.
  int frames = 0;
  grpc::Status end = slow->ReadToEnd(&frames);
  EXPECT_EQ(end.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << end.error_message();
  EXPECT_EQ(end.error_message(), "client is not reading its stream");
  EXPECT_LT(frames, kMessages);
  std::printf("[ frames   ] %d of %d frames reached the slow client\n", frames,
              kMessages);
}

// What a stream delivered once read: the seqs of its messages in arrival
// order, and the sizes of the batch frames that carried some of them.
struct Arrivals {
  std::vector<uint64_t> seqs;
  std::vector<int> batch_sizes;
  int nested_batches = 0;
};

Arrivals ReadMessages(RawStream* s, size_t count) {
  Arrivals a;
  auto take = [&a](const v1::ServerFrame& f) {
    if (f.has_chat_event() && f.chat_event().has_message_created()) {
      a.seqs.push_back(f.chat_event().seq());
    }
  };
  v1::ServerFrame f;
  while (a.seqs.size() < count && s->rw->Read(&f)) {
    if (!f.has_batch()) {
      take(f);
      continue;
    }
    a.batch_sizes.push_back(f.batch().frames_size());
    for (const v1::ServerFrame& g : f.batch().frames()) {
      if (g.has_batch()) ++a.nested_batches;
      take(g);
    }
  }
  return a;
}

TEST_F(LimitsTest, FramesQueuedBehindASlowReaderComeInBatchesWhenAsked) {
  TestUser sender = api1_->NewUser("burst"), batched = api1_->NewUser("bat"),
           plain = api1_->NewUser("plain");
  v1::Chat chat = api1_->Group(sender, "batches", {batched, plain});
  const std::string gw = cluster_->gateway_address(1);
  constexpr int kWindow = 64 << 10;
  auto with = RawStream::Open(gw, batched.token, {{"parley-batch-frames", "8"}},
                              kWindow);
  auto without = RawStream::Open(gw, plain.token, {}, kWindow);
  ASSERT_TRUE(with->WaitReady());
  ASSERT_TRUE(without->WaitReady());
  // Nothing is read meanwhile: past the 64 KiB window the frames wait in the
  // gateway, behind a write that cannot complete.
  constexpr int kMessages = 100;
  constexpr size_t kBytes = 8000;
  ASSERT_EQ(Flood(gw, sender, chat.chat_id(), kMessages, kBytes, 1), 0);

  // Every message arrives once and in chat order on both streams.
  Arrivals a = ReadMessages(with.get(), kMessages);
  Arrivals b = ReadMessages(without.get(), kMessages);
  for (const Arrivals* got : {&a, &b}) {
    ASSERT_EQ(got->seqs.size(), static_cast<size_t>(kMessages));
    for (size_t i = 1; i < got->seqs.size(); ++i) {
      ASSERT_EQ(got->seqs[i], got->seqs[i - 1] + 1) << "at " << i;
    }
  }
  EXPECT_EQ(a.seqs, b.seqs);
  // What had queued came in batches of at most the 8 asked for, none nested;
  // the stream that did not ask got none.
  ASSERT_FALSE(a.batch_sizes.empty());
  EXPECT_THAT(a.batch_sizes, ::testing::Each(::testing::AllOf(
                                 ::testing::Ge(2), ::testing::Le(8))));
  EXPECT_EQ(a.nested_batches, 0);
  EXPECT_THAT(b.batch_sizes, ::testing::IsEmpty());
  std::printf("[ batches  ] %zu batch frames carried %d of %d messages\n",
              a.batch_sizes.size(),
              std::accumulate(a.batch_sizes.begin(), a.batch_sizes.end(), 0),
              kMessages);
  with->Close();
  without->Close();
}

TEST_F(LimitsTest, BatchSizeOutsideOneTo1024IsInvalidArgument) {
  TestUser u = api1_->NewUser("askbad");
  const std::string gw = cluster_->gateway_address(1);
  for (const char* bad : {"0", "1025", "-3", "eight", "8 frames", ""}) {
    auto s = RawStream::Open(gw, u.token, {{"parley-batch-frames", bad}});
    grpc::Status end = s->ReadToEnd();
    EXPECT_EQ(end.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << "'" << bad << "': " << end.error_message();
    EXPECT_EQ(end.error_message(),
              "parley-batch-frames: must be an integer from 1 to 1024")
        << "'" << bad << "'";
  }
  // The bounds themselves are fine.
  for (const char* good : {"1", "1024"}) {
    auto s = RawStream::Open(gw, u.token, {{"parley-batch-frames", good}});
    EXPECT_TRUE(s->WaitReady()) << good;
    s->Close();
  }
}

TEST_F(LimitsTest, ClientThatNeverReadsAtAllIsCancelled) {
  // gateway0: 64 KiB queue, cancelled 1 s after being dropped.
  TestUser reader = api1_->NewUser("mute"), sender = api1_->NewUser("talk");
  v1::Chat chat = api1_->Direct(reader, sender);
  auto mute = RawStream::Open(cluster_->gateway_address(0), reader.token);
  ASSERT_TRUE(mute->WaitReady());
  auto online = [&] {
    v1::GetPresenceRequest req;
    req.add_user_ids(reader.user_id);
    v1::GetPresenceResponse resp;
    EXPECT_TRUE(
        api1_->Call(sender.token, &Stub::GetPresence, req, &resp).ok());
    return resp.presences_size() == 1 && resp.presences(0).online();
  };
  ASSERT_TRUE(online());
  // Flood until the gateway lets go of the stream: the user goes offline
  // (after presence's 1 s grace) although the client never closed anything.
  const auto deadline = std::chrono::steady_clock::now() + seconds(60);
  int sent = 0;
  bool gone = false;
  while (!gone && std::chrono::steady_clock::now() < deadline) {
    ASSERT_EQ(Flood(cluster_->gateway_address(1), sender, chat.chat_id(), 50,
                    16000, 2),
              0);
    sent += 50;
    gone = !online();
  }
  for (int i = 0; i < 50 && !gone; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
    gone = !online();
  }
  EXPECT_TRUE(gone) << "still online after " << sent << " messages";
  std::printf("[ dropped  ] after %d messages\n", sent);
  grpc::Status end = mute->ReadToEnd();
  EXPECT_FALSE(end.ok());
}

}  // namespace
}  // namespace parley::e2e
