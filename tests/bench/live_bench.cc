// parley-live-bench: measures, against a running gateway, how long presence
// and typing frames take to reach a contact's Connect stream.
//
//   parley-live-bench --gateway 127.0.0.1:50051 --rounds 200 --grace_ms 1000
//
// Two fresh users A and B share a direct chat; B's stream is registered
// first. Each round:
//   typing:   A calls SetTyping(true), then SetTyping(false); the time from
//             the call to B's typing frame is measured for both.
//   presence: A opens a Connect stream (time to B's online frame), then
//             closes it (time to B's offline frame, minus the configured
//             offline grace, which is deliberate).
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_util.h"
#include "parley/v1/parley.grpc.pb.h"

namespace parley::bench {
namespace {

namespace v1 = ::parley::v1;
using Clock = std::chrono::steady_clock;
using Stream = grpc::ClientReaderWriter<v1::ClientFrame, v1::ServerFrame>;

struct Options {
  std::string gateway = "127.0.0.1:50051";
  TlsCredentials tls;  // plaintext unless --tls_ca_file
  int rounds = 200;
  int grace_ms = 1000;
};

// Reads a stream on its own thread, timestamping every frame.
class Reader {
 public:
  explicit Reader(Stream* s) : stream_(s), thread_([this] { Loop(); }) {}
  ~Reader() { thread_.join(); }

  // Waits for a frame matching `pred`; returns its arrival time.
  bool Wait(const std::function<bool(const v1::ServerFrame&)>& pred,
            Clock::time_point* at, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    const auto end = Clock::now() + timeout;
    for (;;) {
      while (!frames_.empty()) {
        auto [f, t] = frames_.front();
        frames_.pop_front();
        if (pred(f)) {
          *at = t;
          return true;
        }
      }
      if (ended_ || cv_.wait_until(lock, end) == std::cv_status::timeout) {
        if (frames_.empty()) return false;
      }
    }
  }

 private:
  void Loop() {
    v1::ServerFrame f;
    while (stream_->Read(&f)) {
      const auto now = Clock::now();
      std::lock_guard<std::mutex> lock(mu_);
      frames_.emplace_back(f, now);
      cv_.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu_);
    ended_ = true;
    cv_.notify_all();
  }

  Stream* stream_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<v1::ServerFrame, Clock::time_point>> frames_;
  bool ended_ = false;
  std::thread thread_;
};

struct User {
  std::string id, token;
};

void Authorize(grpc::ClientContext* ctx, const User& u) {
  ctx->AddMetadata("authorization", "Bearer " + u.token);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
}

bool Register(v1::AuthService::Stub* auth, const std::string& name, User* u) {
  v1::RegisterRequest req;
  req.set_username(name);
  req.set_password("bench-password-" + name);
  v1::RegisterResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status s = auth->Register(&ctx, req, &resp);
  if (!s.ok()) {
    std::cerr << "register: " << s.error_message() << "\n";
    return false;
  }
  *u = {resp.user().user_id(), resp.access_token()};
  return true;
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

void Print(const char* name, std::vector<double> v) {
  if (v.empty()) {
    std::printf("%-26s %7s\n", name, "0");
    return;
  }
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, size_t(q * v.size()))]; };
  std::printf("%-26s %7zu %9.3f %9.3f %9.3f %9.3f %9.3f\n", name, v.size(),
              v.front(), at(0.5), at(0.9), at(0.99), v.back());
}

// Opens B-side or A-side Connect and waits for the Pong (route registered).
std::unique_ptr<Stream> Open(v1::ChatService::Stub* chat, grpc::ClientContext* ctx,
                             const User& u) {
  ctx->AddMetadata("authorization", "Bearer " + u.token);
  auto s = chat->Connect(ctx);
  v1::ClientFrame ping;
  ping.mutable_ping()->set_nonce(1);
  s->Write(ping);
  return s;
}

int Run(const Options& o) {
  auto channel = grpc::CreateChannel(o.gateway, o.tls.ChannelCredentials());
  auto auth = v1::AuthService::NewStub(channel);
  auto chat = v1::ChatService::NewStub(channel);
  const std::string tag = absl::StrCat(std::random_device{}() % 1000000);
  User a, b;
  if (!Register(auth.get(), "live_a_" + tag, &a) ||
      !Register(auth.get(), "live_b_" + tag, &b)) {
    return 1;
  }
  v1::CreateDirectChatRequest dreq;
  dreq.set_peer_user_id(b.id);
  v1::Chat direct;
  {
    grpc::ClientContext ctx;
    Authorize(&ctx, a);
    if (!chat->CreateDirectChat(&ctx, dreq, &direct).ok()) return 1;
  }
  grpc::ClientContext bctx;
  auto bstream = Open(chat.get(), &bctx, b);
  std::vector<double> typing_on, typing_off, online, offline;
  {
    Reader reader(bstream.get());
    Clock::time_point at;
    if (!reader.Wait([](const v1::ServerFrame& f) { return f.has_pong(); }, &at,
                     std::chrono::seconds(10))) {
      std::cerr << "no pong on B's stream\n";
      return 1;
    }
    for (int i = 0; i < o.rounds; ++i) {
      for (bool on : {true, false}) {
        v1::SetTypingRequest req;
        req.set_chat_id(direct.chat_id());
        req.set_typing(on);
        google::protobuf::Empty empty;
        grpc::ClientContext ctx;
        Authorize(&ctx, a);
        const auto t0 = Clock::now();
        if (!chat->SetTyping(&ctx, req, &empty).ok()) return 1;
        if (!reader.Wait(
                [&](const v1::ServerFrame& f) {
                  return f.has_typing() && f.typing().user_id() == a.id &&
                         f.typing().typing() == on;
                },
                &at, std::chrono::seconds(10))) {
          std::cerr << "typing frame missing\n";
          return 1;
        }
        (on ? typing_on : typing_off).push_back(Ms(at - t0));
      }
    }
    const int presence_rounds = std::max(1, o.rounds / 20);
    for (int i = 0; i < presence_rounds; ++i) {
      // A's device has a connection of its own, as a real second client
      // would: closing it is what the gateway sees.
      auto achannel =
          grpc::CreateChannel(o.gateway, o.tls.ChannelCredentials());
      auto achat = v1::ChatService::NewStub(achannel);
      auto actx = std::make_unique<grpc::ClientContext>();
      const auto t0 = Clock::now();
      auto astream = Open(achat.get(), actx.get(), a);
      if (!reader.Wait(
              [&](const v1::ServerFrame& f) {
                return f.has_presence() && f.presence().user_id() == a.id &&
                       f.presence().online();
              },
              &at, std::chrono::seconds(10))) {
        std::cerr << "online frame missing\n";
        return 1;
      }
      online.push_back(Ms(at - t0));
      const auto t1 = Clock::now();
      actx->TryCancel();
      astream->Finish();
      astream.reset();
      achat.reset();
      achannel.reset();
      if (!reader.Wait(
              [&](const v1::ServerFrame& f) {
                return f.has_presence() && f.presence().user_id() == a.id &&
                       !f.presence().online();
              },
              &at, std::chrono::seconds(10))) {
        std::cerr << "offline frame missing\n";
        return 1;
      }
      offline.push_back(Ms(at - t1) - o.grace_ms);
    }
    bctx.TryCancel();
  }
  bstream->Finish();
  std::printf("parley live bench via %s: %d typing rounds\n\n", o.gateway.c_str(),
              o.rounds);
  std::printf("%-26s %7s %9s %9s %9s %9s %9s\n", "latency (ms)", "count", "min",
              "p50", "p90", "p99", "max");
  Print("typing start -> frame", typing_on);
  Print("typing stop -> frame", typing_off);
  Print("connect -> online frame", online);
  Print("close -> offline - grace", offline);
  return 0;
}

}  // namespace
}  // namespace parley::bench

int main(int argc, char** argv) {
  parley::bench::Options o;
  if (const char* g = std::getenv("PARLEY_GATEWAY"); g && *g) o.gateway = g;
  std::string tls_ca_file;
  if (const char* c = std::getenv("PARLEY_TLS_CA_FILE"); c && *c) {
    tls_ca_file = c;
  }
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      const std::string prefix = std::string(name) + "=";
      if (a.rfind(prefix, 0) == 0) return argv[i] + prefix.size();
      if (a == name && i + 1 < argc) return argv[++i];
      return nullptr;
    };
    if (const char* v = value("--gateway")) {
      o.gateway = v;
    } else if (const char* v = value("--tls_ca_file")) {
      tls_ca_file = v;
    } else if (const char* v = value("--rounds")) {
      if (!absl::SimpleAtoi(v, &o.rounds) || o.rounds < 1) return 2;
    } else if (const char* v = value("--grace_ms")) {
      if (!absl::SimpleAtoi(v, &o.grace_ms)) return 2;
    } else {
      std::fprintf(stderr,
                   "Usage: parley-live-bench [--gateway HOST:PORT] "
                   "[--rounds N] [--grace_ms MS] [--tls_ca_file FILE]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  auto tls = parley::TlsCredentials::LoadClient(tls_ca_file);
  if (!tls.ok()) {
    std::fprintf(stderr, "error: %s\n", tls.status().ToString().c_str());
    return 2;
  }
  o.tls = *tls;
  return parley::bench::Run(o);
}
