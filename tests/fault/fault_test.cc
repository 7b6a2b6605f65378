// The fault suite: nothing acknowledged is lost.
//
// A cluster of 2 gateways, 2 message instances, presence, storage,
// PostgreSQL and Redis carries a steady load of group messages while one
// component after another is killed (SIGKILL; PostgreSQL stopped in
// immediate mode, Redis killed and restarted empty) and brought back. The
// clients behave like good real clients: they reconnect with jittered
// exponential backoff (trying the other gateway when theirs is down), resend
// an unacknowledged message with the same client_message_id until it is
// acknowledged, and after every reconnect, or when they see a seq skipped,
// catch up with SyncChat from the last seq they hold.
//
// At the end every acknowledged message must be stored exactly once (read
// back through SyncChat and counted in PostgreSQL), every chat's seqs must be
// 1..last_seq without gaps, every member must hold every event of its chats,
// and after each restart sends and live deliveries must work again within
// 5 s. A table with one row per fault is printed.
//
// CI form by default (a few minutes at most). PARLEY_FAULT_LONG=1 selects the
// long form: 500 msg/s over 50 chats, the faults repeated for
// PARLEY_FAULT_DURATION_S seconds (default 600). PARLEY_FAULT_DOWN_MS sets how
// long each component stays down (default 1000).
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/e2e/test_client.h"
#include "tests/support/cluster.h"

namespace parley::e2e {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Stub = v1::ChatService::Stub;

constexpr int kGateways = 2;
constexpr int kMembersPerChat = 3;
constexpr milliseconds kRecoveryBudget{5000};

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

int64_t Ms(Clock::duration d) {
  return std::chrono::duration_cast<milliseconds>(d).count();
}

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  int out = 0;
  return v != nullptr && absl::SimpleAtoi(v, &out) ? out : fallback;
}

struct Config {
  int chats = 30;           // one user per chat too; 3 members per chat
  double rate = 250;        // messages per second, all senders together
  milliseconds down{1000};  // how long a killed component stays down
  milliseconds dwell{3000};  // load after a restart before the next fault
  seconds duration{0};      // long form: repeat the faults this long
};

Config LoadConfig() {
  Config c;
  if (EnvInt("PARLEY_FAULT_LONG", 0) != 0) {
    c.chats = 50;
    c.rate = 500;
    c.dwell = milliseconds(5000);
    c.duration = seconds(EnvInt("PARLEY_FAULT_DURATION_S", 600));
  } else if (kSanitized) {
    c.rate = 100;  // sanitized services are several times slower
  }
  c.down = milliseconds(EnvInt("PARLEY_FAULT_DOWN_MS", c.down.count()));
  return c;
}

// Sleeps that end early when the run stops.
class Stopper {
 public:
  void Stop() {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    cv_.notify_all();
  }
  bool stopped() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopped_;
  }
  // False when stopped.
  bool SleepUntil(Clock::time_point t) {
    std::unique_lock<std::mutex> lock(mu_);
    return !cv_.wait_until(lock, t, [this] { return stopped_; });
  }
  bool SleepFor(Clock::duration d) { return SleepUntil(Clock::now() + d); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

// Exponential backoff with jitter: a random delay in [d/2, d], d doubling
// from `initial` up to `max`.
class Backoff {
 public:
  Backoff(milliseconds initial, milliseconds max)
      : initial_(initial), max_(max), next_(initial),
        rng_(std::random_device{}()) {}
  milliseconds Next() {
    const milliseconds d = next_;
    next_ = std::min(next_ * 2, max_);
    std::uniform_int_distribution<int64_t> jitter(d.count() / 2, d.count());
    return milliseconds(jitter(rng_));
  }
  void Reset() { next_ = initial_; }

 private:
  const milliseconds initial_, max_;
  milliseconds next_;
  std::mt19937_64 rng_;
};

// A client's own channel to a gateway: it retries connecting quickly, as a
// chat app would, so a restarted gateway is found again within a second.
std::shared_ptr<grpc::Channel> ClientChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   args);
}

template <typename Req, typename Resp>
grpc::Status CallWithToken(
    Stub* stub, const std::string& token,
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
    const Req& req, Resp* resp, milliseconds timeout,
    bool wait_for_ready = false) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  ctx.set_wait_for_ready(wait_for_ready);
  ctx.AddMetadata("authorization", "Bearer " + token);
  return (stub->*method)(&ctx, req, resp);
}

// Counts the status codes clients saw, to check that failures during a fault
// are only the retryable kinds.
class CodeCounter {
 public:
  void Add(grpc::StatusCode code) {
    std::lock_guard<std::mutex> lock(mu_);
    ++counts_[code];
  }
  std::map<grpc::StatusCode, int64_t> counts() {
    std::lock_guard<std::mutex> lock(mu_);
    return counts_;
  }

 private:
  std::mutex mu_;
  std::map<grpc::StatusCode, int64_t> counts_;
};

bool Retryable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE ||
         code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::ABORTED ||
         code == grpc::StatusCode::CANCELLED ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

// One user's device: a Connect stream that reconnects, and a syncer that
// fills gaps with SyncChat. Records every event it holds per chat.
class Device {
 public:
  struct ChatLog {
    std::map<uint64_t, std::string> held;  // seq -> client_message_id
    std::set<uint64_t> via_sync;           // seqs first held through sync
    uint64_t contiguous = 0;               // every seq up to this is held
    bool sync_needed = false;
  };

  Device(TestUser user, std::vector<std::shared_ptr<grpc::Channel>> channels,
         int preferred, bool pinned, const std::vector<std::string>& chats,
         CodeCounter* codes)
      : user_(std::move(user)), channels_(std::move(channels)),
        preferred_(preferred), pinned_(pinned), codes_(codes) {
    for (auto& ch : channels_) stubs_.push_back(v1::ChatService::NewStub(ch));
    for (const auto& c : chats) logs_[c];
  }
  ~Device() { Stop(); }

  void Start() {
    reader_ = std::thread([this] { ReadLoop(); });
    syncer_ = std::thread([this] { SyncLoop(); });
  }
  void Stop() {
    stopper_.Stop();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (active_ != nullptr) active_->TryCancel();
    }
    cv_.notify_all();
    if (reader_.joinable()) reader_.join();
    if (syncer_.joinable()) syncer_.join();
  }

  const TestUser& user() const { return user_; }

  // Waits until the stream is confirmed (first pong received).
  bool WaitConnected(milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return connected_; });
  }
  // Waits until the device holds `seq` of `chat` with this message.
  bool WaitHolds(const std::string& chat, uint64_t seq, const std::string& cmid,
                 Clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, deadline, [&] {
      const auto& held = logs_[chat].held;
      auto it = held.find(seq);
      return it != held.end() && it->second == cmid;
    });
  }
  // Waits until every chat's log is complete up to `last_seq[chat]`.
  bool WaitComplete(const std::map<std::string, uint64_t>& last_seq,
                    Clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, deadline, [&] {
      for (const auto& [chat, log] : logs_) {
        auto it = last_seq.find(chat);
        if (it != last_seq.end() && log.contiguous < it->second) return false;
      }
      return true;
    });
  }
  ChatLog Log(const std::string& chat) {
    std::lock_guard<std::mutex> lock(mu_);
    return logs_[chat];
  }
  int64_t reconnects() const { return reconnects_.load(); }
  int64_t seq_conflicts() const { return seq_conflicts_.load(); }

 private:
  int GatewayFor(int attempt) const {
    return pinned_ ? preferred_ : (preferred_ + attempt) % kGateways;
  }

  void ReadLoop() {
    Backoff backoff(milliseconds(100), milliseconds(1000));
    int attempt = 0;  // failed attempts since the last confirmed stream
    while (!stopper_.stopped()) {
      const int g = GatewayFor(attempt);
      // Like an app waiting for connectivity: connect as soon as the channel
      // can, rather than failing at once while it backs off.
      channels_[g]->WaitForConnected(std::chrono::system_clock::now() +
                                     seconds(1));
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", "Bearer " + user_.token);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopper_.stopped()) break;
        active_ = &ctx;
      }
      auto stream = stubs_[g]->Connect(&ctx);
      v1::ClientFrame ping;
      ping.mutable_ping()->set_nonce(1);
      bool confirmed = false;
      const bool wrote = stream->Write(ping);
      if (wrote) {
        v1::ServerFrame frame;
        while (stream->Read(&frame)) {
          if (frame.has_pong() && !confirmed) {
            // The route is registered: live events flow from now on, and a
            // sync fills in whatever was missed before.
            confirmed = true;
            attempt = 0;
            backoff.Reset();
            std::lock_guard<std::mutex> lock(mu_);
            connected_ = true;
            gateway_ = g;
            for (auto& [chat, log] : logs_) log.sync_needed = true;
            cv_.notify_all();
          } else if (frame.has_chat_event()) {
            OnEvent(frame.chat_event(), /*live=*/true);
          }
        }
      }
      if (!wrote) ctx.TryCancel();
      const grpc::Status status = stream->Finish();
      {
        std::lock_guard<std::mutex> lock(mu_);
        active_ = nullptr;
        connected_ = false;
      }
      if (stopper_.stopped()) break;
      codes_->Add(status.error_code());
      ++reconnects_;
      if (!confirmed) ++attempt;
      stopper_.SleepFor(backoff.Next());
    }
  }

  void OnEvent(const v1::ChatEvent& event, bool live) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = logs_.find(event.chat_id());
    if (it == logs_.end()) return;
    ChatLog& log = it->second;
    const std::string cmid = event.has_message_created()
                                 ? event.message_created().client_message_id()
                                 : std::string();
    auto [pos, inserted] = log.held.emplace(event.seq(), cmid);
    if (!inserted) {
      if (pos->second != cmid) ++seq_conflicts_;
      return;
    }
    if (!live) log.via_sync.insert(event.seq());
    while (log.held.count(log.contiguous + 1)) ++log.contiguous;
    // A seq was skipped: catch up.
    if (live && log.held.rbegin()->first > log.contiguous) {
      log.sync_needed = true;
    }
    cv_.notify_all();
  }

  void SyncLoop() {
    Backoff backoff(milliseconds(100), milliseconds(1000));
    int failures = 0;
    for (;;) {
      std::string chat;
      uint64_t after = 0;
      int g = 0;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] {
          if (stopper_.stopped()) return true;
          for (const auto& [c, log] : logs_) {
            if (log.sync_needed) return true;
          }
          return false;
        });
        if (stopper_.stopped()) return;
        for (auto& [c, log] : logs_) {
          if (log.sync_needed) {
            chat = c;
            after = log.contiguous;
            log.sync_needed = false;
            break;
          }
        }
        g = connected_ ? gateway_ : GatewayFor(failures);
      }
      bool more = true;
      while (more) {
        v1::SyncChatRequest req;
        req.set_chat_id(chat);
        req.set_after_seq(after);
        req.set_page_size(500);
        v1::SyncChatResponse resp;
        grpc::Status s = CallWithToken(stubs_[g].get(), user_.token,
                                       &Stub::SyncChat, req, &resp,
                                       milliseconds(3000));
        if (!s.ok()) {
          codes_->Add(s.error_code());
          {
            std::lock_guard<std::mutex> lock(mu_);
            logs_[chat].sync_needed = true;  // try again
          }
          ++failures;
          g = GatewayFor(failures);
          stopper_.SleepFor(backoff.Next());
          break;
        }
        failures = 0;
        backoff.Reset();
        for (const auto& e : resp.events()) {
          OnEvent(e, /*live=*/false);
          after = std::max<uint64_t>(after, e.seq());
        }
        more = resp.has_more() && !resp.events().empty();
      }
    }
  }

  const TestUser user_;
  const std::vector<std::shared_ptr<grpc::Channel>> channels_;
  const int preferred_;
  const bool pinned_;
  CodeCounter* const codes_;
  std::vector<std::unique_ptr<Stub>> stubs_;
  Stopper stopper_;
  std::thread reader_, syncer_;
  std::atomic<int64_t> reconnects_{0};
  std::atomic<int64_t> seq_conflicts_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  grpc::ClientContext* active_ = nullptr;
  bool connected_ = false;
  int gateway_ = 0;
  std::map<std::string, ChatLog> logs_;
};

// A message the load sent, and what its acknowledgement said.
struct Sent {
  std::string chat;
  std::string cmid;
  int window = 0;  // the fault window it was first sent in
  int attempts = 0;
  bool acked = false;
  uint64_t seq = 0;
  std::string message_id;
  bool inconsistent = false;  // two acks disagreed
};

// One sender in one chat: sends at a steady rate, each message resent with
// its client_message_id until acknowledged.
class Lane {
 public:
  Lane(int id, const TestUser& user, std::vector<Stub*> stubs, int preferred,
       std::string chat, milliseconds period, std::atomic<int>* window,
       CodeCounter* codes)
      : id_(id), user_(user), stubs_(std::move(stubs)), preferred_(preferred),
        chat_(std::move(chat)), period_(period), window_(window),
        codes_(codes) {}

  void Start(Clock::time_point first) {
    thread_ = std::thread([this, first] { Run(first); });
  }
  // No new messages; the one in flight is still resent until acknowledged
  // (or `abort` stops it).
  void StopNew() { stop_new_.Stop(); }
  void Abort() {
    stop_new_.Stop();
    abort_.Stop();
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  bool idle() const { return idle_.load(); }
  std::vector<Sent> sent() {
    std::lock_guard<std::mutex> lock(mu_);
    return sent_;
  }
  int64_t unexpected() const { return unexpected_.load(); }

 private:
  void Run(Clock::time_point next) {
    int n = 0;
    while (stop_new_.SleepUntil(next)) {
      next += period_;
      // After a long outage do not burst: the schedule restarts from now.
      if (next < Clock::now() - seconds(1)) next = Clock::now();
      Sent m;
      m.chat = chat_;
      m.cmid = absl::StrCat("l", id_, "-", n++);
      m.window = window_->load();
      const std::string text =
          absl::StrCat("message ", m.cmid, " from ", user_.username);
      idle_ = false;
      SendUntilAcked(text, &m);
      {
        std::lock_guard<std::mutex> lock(mu_);
        sent_.push_back(m);
      }
      idle_ = true;
    }
    idle_ = true;
  }

  void SendUntilAcked(const std::string& text, Sent* m) {
    Backoff backoff(milliseconds(50), milliseconds(1000));
    int failures = 0;
    while (!abort_.stopped()) {
      v1::SendMessageRequest req;
      req.set_chat_id(m->chat);
      req.set_client_message_id(m->cmid);
      req.set_text(text);
      v1::Message resp;
      Stub* stub = stubs_[(preferred_ + failures) % stubs_.size()];
      ++m->attempts;
      const grpc::Status s = CallWithToken(stub, user_.token,
                                           &Stub::SendMessage, req, &resp,
                                           milliseconds(3000));
      if (s.ok()) {
        if (m->acked && (resp.seq() != m->seq ||
                         resp.message_id() != m->message_id)) {
          m->inconsistent = true;
        }
        m->acked = true;
        m->seq = resp.seq();
        m->message_id = resp.message_id();
        return;
      }
      codes_->Add(s.error_code());
      if (!Retryable(s.error_code())) {
        ++unexpected_;
        ADD_FAILURE() << "send " << m->cmid << ": " << s.error_code() << " "
                      << s.error_message();
      }
      ++failures;
      abort_.SleepFor(backoff.Next());
    }
  }

  const int id_;
  const TestUser user_;
  const std::vector<Stub*> stubs_;
  const int preferred_;
  const std::string chat_;
  const milliseconds period_;
  std::atomic<int>* const window_;
  CodeCounter* const codes_;
  Stopper stop_new_, abort_;
  std::thread thread_;
  std::atomic<bool> idle_{true};
  std::atomic<int64_t> unexpected_{0};
  std::mutex mu_;
  std::vector<Sent> sent_;
};

struct Fault {
  std::string name;
  std::function<absl::Status()> kill;
  std::function<absl::Status()> restart;
};

struct Row {
  std::string fault;
  int64_t acknowledged = 0;
  int64_t retried = 0;
  int64_t lost = 0;
  int64_t duplicated = 0;
  int64_t synced = 0;  // deliveries that came through SyncChat, not live
  int64_t recovery_ms = -1;
};

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = LoadConfig();
    testing::Cluster::Options options;
    options.gateways = kGateways;
    options.message_instances = 2;
    auto c = testing::Cluster::Start(options);
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = std::move(*c);
    for (int g = 0; g < kGateways; ++g) {
      gateways_.push_back(cluster_->gateway_address(g));
    }
  }
  void TearDown() override {
    for (auto& l : lanes_) l->Abort();
    for (auto& l : lanes_) l->Join();
    for (auto& d : devices_) d->Stop();
  }

  std::unique_ptr<Device> NewDevice(const TestUser& u, int preferred,
                                    bool pinned,
                                    const std::vector<std::string>& chats,
                                    std::vector<std::shared_ptr<grpc::Channel>>*
                                        channels) {
    for (const auto& a : gateways_) channels->push_back(ClientChannel(a));
    return std::make_unique<Device>(u, *channels, preferred, pinned, chats,
                                    &codes_);
  }

  // Sends through every gateway into every probe chat until each message is
  // held by both pinned probe devices. Returns when all succeeded, or after
  // `limit`.
  bool Probe(Clock::duration limit) {
    const auto deadline = Clock::now() + limit;
    for (int g = 0; g < kGateways; ++g) {
      for (const auto& chat : probe_chats_) {
        bool done = false;
        while (!done && Clock::now() < deadline) {
          v1::SendMessageRequest req;
          req.set_chat_id(chat);
          req.set_client_message_id(absl::StrCat("probe-", probe_n_++));
          req.set_text("probe");
          v1::Message m;
          grpc::Status s = CallWithToken(probe_stubs_[g].get(),
                                         probe_sender_.token,
                                         &Stub::SendMessage, req, &m,
                                         milliseconds(1000),
                                         /*wait_for_ready=*/true);
          if (s.ok()) {
            const auto wait = std::min(deadline, Clock::now() + seconds(1));
            done = true;
            for (auto* d : probe_devices_) {
              done = done && d->WaitHolds(chat, m.seq(),
                                          req.client_message_id(), wait);
            }
          }
          if (!done) std::this_thread::sleep_for(milliseconds(50));
        }
        if (!done) return false;
      }
    }
    return true;
  }

  std::vector<Fault> Faults() {
    testing::Cluster* c = cluster_.get();
    auto service = [c](const std::string& name) {
      return Fault{name,
                   [c, name] {
                     c->process(name)->Kill();
                     return absl::OkStatus();
                   },
                   [c, name] { return c->Restart(name); }};
    };
    return {
        service("gateway0"),
        service("message0"),
        service("presence"),
        service("storage"),
        Fault{"postgres",
              [c] {
                using Mode = testing::TestPostgres::StopMode;
                c->postgres()->Stop(Mode::kImmediate);
                return absl::OkStatus();
              },
              [c] { return c->postgres()->Restart(); }},
        Fault{"redis",
              [c] {
                c->redis()->Stop();
                return absl::OkStatus();
              },
              [c] { return c->redis()->StartAgain(); }},
        service("gateway1"),
        service("message1"),
    };
  }

  Config config_;
  std::unique_ptr<testing::Cluster> cluster_;
  std::vector<std::string> gateways_;
  CodeCounter codes_;
  std::atomic<int> window_{0};  // index of the current row of the table
  std::vector<std::vector<std::shared_ptr<grpc::Channel>>> channels_;
  std::vector<std::unique_ptr<Device>> devices_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::vector<std::unique_ptr<Stub>> lane_stubs_;
  // Probes: one sender, and one device pinned to each gateway.
  TestUser probe_sender_;
  std::vector<std::unique_ptr<Stub>> probe_stubs_;
  std::vector<Device*> probe_devices_;
  std::vector<std::string> probe_chats_;
  int64_t probe_n_ = 0;
};

TEST_F(FaultTest, AcknowledgedMessagesSurviveEveryCrash) {
  const auto test_start = Clock::now();
  Api api(gateways_[0]);
  const int n = config_.chats;

  // Users, chats (user k, k+1, k+2), and one device per user.
  std::vector<TestUser> users;
  for (int u = 0; u < n; ++u) users.push_back(api.NewUser("f"));
  ASSERT_FALSE(HasFailure());
  std::vector<std::string> chats;
  std::vector<std::vector<int>> members(n);
  std::vector<std::vector<std::string>> user_chats(n);
  for (int k = 0; k < n; ++k) {
    std::vector<TestUser> others;
    for (int j = 0; j < kMembersPerChat; ++j) members[k].push_back((k + j) % n);
    for (int j = 1; j < kMembersPerChat; ++j) {
      others.push_back(users[members[k][j]]);
    }
    v1::Chat chat = api.Group(users[k], absl::StrCat("fault ", k), others);
    ASSERT_FALSE(chat.chat_id().empty());
    chats.push_back(chat.chat_id());
    for (int u : members[k]) user_chats[u].push_back(chat.chat_id());
  }
  channels_.resize(n + 3);
  for (int u = 0; u < n; ++u) {
    devices_.push_back(NewDevice(users[u], u % kGateways, /*pinned=*/false,
                                 user_chats[u], &channels_[u]));
  }

  // Probes: two chats (ids of both parities, so both message instances are
  // the first choice of one of them), watched through each gateway.
  probe_sender_ = api.NewUser("ps");
  std::vector<TestUser> watchers = {api.NewUser("pw"), api.NewUser("pw")};
  for (int i = 0; i < 2; ++i) {
    probe_chats_.push_back(
        api.Group(probe_sender_, absl::StrCat("probe ", i), watchers)
            .chat_id());
  }
  ASSERT_FALSE(HasFailure());
  for (int g = 0; g < kGateways; ++g) {
    channels_[n].push_back(ClientChannel(gateways_[g]));
    probe_stubs_.push_back(v1::ChatService::NewStub(channels_[n].back()));
    devices_.push_back(NewDevice(watchers[g], g, /*pinned=*/true,
                                 probe_chats_, &channels_[n + 1 + g]));
    probe_devices_.push_back(devices_.back().get());
  }
  for (auto& d : devices_) d->Start();
  for (auto& d : devices_) ASSERT_TRUE(d->WaitConnected(seconds(20)));
  ASSERT_TRUE(Probe(seconds(20))) << "the cluster does not serve at all";

  // The load: one lane per (chat, member).
  const int lanes = n * kMembersPerChat;
  const milliseconds period(
      static_cast<int64_t>(1000.0 * lanes / config_.rate));
  std::vector<std::vector<Stub*>> stubs_of(n);
  for (int u = 0; u < n; ++u) {
    for (auto& ch : channels_[u]) {
      lane_stubs_.push_back(v1::ChatService::NewStub(ch));
      stubs_of[u].push_back(lane_stubs_.back().get());
    }
  }
  const auto load_start = Clock::now() + milliseconds(100);
  for (int k = 0; k < n; ++k) {
    for (int j = 0; j < kMembersPerChat; ++j) {
      const int u = members[k][j];
      const int id = static_cast<int>(lanes_.size());
      lanes_.push_back(std::make_unique<Lane>(id, users[u], stubs_of[u],
                                              u % kGateways, chats[k], period,
                                              &window_, &codes_));
      lanes_.back()->Start(load_start + period * id / lanes);
    }
  }
  std::printf("fault suite: %d chats, %d users, %d lanes, %.0f msg/s\n", n, n,
              lanes, config_.rate);

  // Warm-up, then the faults.
  std::vector<Row> rows = {Row{"none (warm-up)"}};
  std::this_thread::sleep_for(config_.dwell);
  const std::vector<Fault> faults = Faults();
  const auto faults_start = Clock::now();
  for (int round = 0;; ++round) {
    for (const Fault& f : faults) {
      Row row;
      row.fault = f.name;
      rows.push_back(row);
      window_ = static_cast<int>(rows.size()) - 1;
      ASSERT_TRUE(f.kill().ok()) << f.name;
      std::this_thread::sleep_for(config_.down);
      absl::Status restarted = f.restart();
      ASSERT_TRUE(restarted.ok()) << f.name << ": " << restarted;
      const auto t0 = Clock::now();
      const bool recovered = Probe(seconds(30));
      const auto recovered_at = Clock::now();
      rows.back().recovery_ms = recovered ? Ms(recovered_at - t0) : -1;
      std::printf("  %-10s restarted; serving again after %lld ms\n",
                  f.name.c_str(),
                  static_cast<long long>(rows.back().recovery_ms));
      std::fflush(stdout);
      std::this_thread::sleep_until(
          std::max(t0 + config_.dwell, recovered_at + config_.dwell / 2));
    }
    if (Clock::now() - faults_start >= config_.duration) break;
  }

  // Drain: no new messages; everything in flight is resent until
  // acknowledged, which a healthy cluster must do quickly.
  for (auto& l : lanes_) l->StopNew();
  const auto drain_deadline = Clock::now() + seconds(30);
  bool drained = false;
  while (!drained && Clock::now() < drain_deadline) {
    drained = std::all_of(lanes_.begin(), lanes_.end(),
                          [](const auto& l) { return l->idle(); });
    if (!drained) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(drained) << "sends still unacknowledged 30 s after the faults";
  for (auto& l : lanes_) l->Abort();
  for (auto& l : lanes_) l->Join();

  std::map<std::string, const Sent*> by_cmid;
  std::vector<Sent> all;
  for (auto& l : lanes_) {
    for (Sent& s : l->sent()) all.push_back(std::move(s));
  }
  for (const Sent& s : all) by_cmid[s.cmid] = &s;

  // The stored truth, through the API: every chat's full event log.
  std::map<std::string, std::vector<v1::ChatEvent>> logs;
  std::map<std::string, uint64_t> last_seq;
  for (int k = 0; k < n; ++k) {
    Stub* stub = lane_stubs_[0].get();
    const TestUser& reader = users[members[k][0]];
    std::vector<v1::ChatEvent>& events = logs[chats[k]];
    for (bool more = true; more;) {
      v1::SyncChatRequest req;
      req.set_chat_id(chats[k]);
      req.set_after_seq(events.empty() ? 0 : events.back().seq());
      req.set_page_size(500);
      v1::SyncChatResponse resp;
      grpc::Status s = CallWithToken(stub, reader.token, &Stub::SyncChat, req,
                                     &resp, milliseconds(10000));
      ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
      for (const auto& e : resp.events()) events.push_back(e);
      more = resp.has_more() && !resp.events().empty();
    }
    last_seq[chats[k]] = events.empty() ? 0 : events.back().seq();
    // Gap-free: seq i at position i - 1.
    for (size_t i = 0; i < events.size(); ++i) {
      ASSERT_EQ(events[i].seq(), i + 1) << "chat " << chats[k];
    }
  }
  std::map<std::string, int> stored_count;
  std::map<std::string, uint64_t> stored_seq;
  for (const auto& [chat, events] : logs) {
    for (const auto& e : events) {
      if (!e.has_message_created()) continue;
      const std::string& cmid = e.message_created().client_message_id();
      ++stored_count[cmid];
      stored_seq[cmid] = e.seq();
      const auto it = by_cmid.find(cmid);
      EXPECT_TRUE(it != by_cmid.end() && it->second->acked)
          << "stored but never acknowledged: " << cmid;
    }
  }

  // Every member's device holds every event of its chats.
  const auto complete_deadline = Clock::now() + seconds(20);
  for (int u = 0; u < n; ++u) {
    std::map<std::string, uint64_t> mine;
    for (const auto& c : user_chats[u]) mine[c] = last_seq[c];
    EXPECT_TRUE(devices_[u]->WaitComplete(mine, complete_deadline))
        << "user " << u << " is missing events";
  }

  // Exactly once in PostgreSQL as well.
  {
    pqxx::connection conn(cluster_->postgres()->url());
    pqxx::work tx(conn);
    const std::string ids = absl::StrJoin(chats, ",");
    const pqxx::row r = tx.exec1(absl::StrCat(
        "SELECT count(*), count(DISTINCT (sender_id, client_message_id)), "
        "count(DISTINCT (chat_id, seq)) FROM messages WHERE chat_id IN (",
        ids, ")"));
    int64_t acked = 0;
    for (const Sent& s : all) acked += s.acked;
    EXPECT_EQ(r[0].as<int64_t>(), acked) << "stored rows vs acknowledged";
    EXPECT_EQ(r[1].as<int64_t>(), acked) << "distinct keys vs acknowledged";
    EXPECT_EQ(r[2].as<int64_t>(), acked) << "distinct seqs vs acknowledged";
    for (const auto& chat : chats) {
      const pqxx::row e = tx.exec1(absl::StrCat(
          "SELECT count(*), coalesce(max(seq), 0) FROM chat_events "
          "WHERE chat_id = ", chat));
      EXPECT_EQ(e[0].as<int64_t>(), e[1].as<int64_t>())
          << "event seqs with a gap in chat " << chat;
      EXPECT_EQ(e[1].as<uint64_t>(), last_seq[chat]) << "chat " << chat;
    }
  }

  // The table.
  std::map<std::string, std::vector<int>> members_of;
  for (int k = 0; k < n; ++k) members_of[chats[k]] = members[k];
  std::vector<std::map<std::string, Device::ChatLog>> held(n);
  for (int u = 0; u < n; ++u) {
    for (const auto& c : user_chats[u]) held[u][c] = devices_[u]->Log(c);
  }
  for (const Sent& s : all) {
    Row& row = rows[s.window];
    if (!s.acked) continue;
    ++row.acknowledged;
    row.retried += s.attempts > 1;
    const int count = stored_count[s.cmid];
    bool lost = count == 0;
    row.duplicated += count > 1 || s.inconsistent;
    EXPECT_FALSE(s.inconsistent)
        << s.cmid << ": retries acknowledged differently";
    if (count > 0) {
      EXPECT_EQ(stored_seq[s.cmid], s.seq)
          << s.cmid << ": acked at another seq";
    }
    for (int u : members_of[s.chat]) {
      const Device::ChatLog& log = held[u][s.chat];
      auto it = log.held.find(s.seq);
      if (it == log.held.end() || it->second != s.cmid) {
        lost = true;
      } else {
        row.synced += log.via_sync.count(s.seq);
      }
    }
    row.lost += lost;
  }

  int64_t reconnects = 0, conflicts = 0;
  for (auto& d : devices_) {
    reconnects += d->reconnects();
    conflicts += d->seq_conflicts();
  }
  std::printf("\n%-16s %12s %8s %6s %10s %8s %13s\n", "fault", "acknowledged",
              "retried", "lost", "duplicated", "synced", "recovery (ms)");
  for (const Row& r : rows) {
    std::printf("%-16s %12lld %8lld %6lld %10lld %8lld %13s\n",
                r.fault.c_str(), static_cast<long long>(r.acknowledged),
                static_cast<long long>(r.retried),
                static_cast<long long>(r.lost),
                static_cast<long long>(r.duplicated),
                static_cast<long long>(r.synced),
                r.recovery_ms < 0 && r.fault == rows[0].fault
                    ? "-"
                    : absl::StrCat(r.recovery_ms).c_str());
  }
  std::string codes;
  for (const auto& [code, count] : codes_.counts()) {
    absl::StrAppend(&codes, " ", static_cast<int>(code), ":", count);
  }
  std::printf(
      "\n%zu messages, %lld stream reconnects, client errors by code:%s; "
      "%.1f s\n",
      all.size(), static_cast<long long>(reconnects), codes.c_str(),
      std::chrono::duration<double>(Clock::now() - test_start).count());
  std::fflush(stdout);

  EXPECT_EQ(conflicts, 0) << "a seq was seen with two different messages";
  for (const Row& r : rows) {
    EXPECT_EQ(r.lost, 0) << r.fault;
    EXPECT_EQ(r.duplicated, 0) << r.fault;
    EXPECT_GT(r.acknowledged, 0) << r.fault;
    if (&r != &rows[0]) {
      EXPECT_GE(r.recovery_ms, 0) << r.fault << " never recovered";
      EXPECT_LT(r.recovery_ms, kRecoveryBudget.count()) << r.fault;
    }
  }
  for (auto& l : lanes_) EXPECT_EQ(l->unexpected(), 0);
}

}  // namespace
}  // namespace parley::e2e
