// parley-latency-bench: measures, against a running gateway, how long
// SendMessage takes to be acknowledged (send->ack) and how long a message
// takes to reach the peer's Connect stream (send->delivery).
//
//   parley-latency-bench --gateway 127.0.0.1:50051 --messages 1000 --json
//
// Two fresh users A and B share a direct chat. B's stream is registered
// (Pong to its first Ping) before A sends N messages one at a time, each
// after the previous one was delivered to B.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/client/chat_client.h"
#include "services/client/client_status.h"
#include "tests/bench/bench_util.h"

namespace parley::bench {
namespace {

using client::ChatClient;
using client::ConnectStream;
namespace v1 = ::parley::v1;
using Clock = std::chrono::steady_clock;

constexpr auto kDeliveryTimeout = std::chrono::seconds(10);

struct Options {
  std::string gateway = "127.0.0.1:50051";
  std::string tls_ca_file;  // empty: plaintext
  int64_t messages = 1000;
  int64_t warmup = 50;
  bool json = false;
};

constexpr char kUsage[] =
    "Usage: parley-latency-bench [--gateway HOST:PORT] [--messages N]\n"
    "                            [--warmup N] [--json] [--tls_ca_file FILE]\n"
    "  --gateway   gateway address (env PARLEY_GATEWAY; default "
    "127.0.0.1:50051)\n"
    "  --tls_ca_file  TLS to the gateway, verified against this PEM CA\n"
    "              (env PARLEY_TLS_CA_FILE; default: plaintext)\n"
    "  --messages  measured messages (default 1000)\n"
    "  --warmup    unmeasured messages sent first (default 50)\n"
    "  --json      also print one JSON object as the last line\n";

// Returns false (after printing why) on a bad command line.
bool ParseOptions(int argc, char** argv, Options* o, bool* help) {
  EnvDefault("PARLEY_GATEWAY", &o->gateway);
  EnvDefault("PARLEY_TLS_CA_FILE", &o->tls_ca_file);
  ArgReader args(argc, argv);
  while (args.Next()) {
    const std::string& a = args.name();
    if (a == "-h" || a == "--help") {
      *help = true;
    } else if (a == "--gateway") {
      if (!args.Value("HOST:PORT", &o->gateway)) return false;
    } else if (a == "--tls_ca_file") {
      if (!args.Value("a file", &o->tls_ca_file)) return false;
    } else if (a == "--messages") {
      if (!args.Count(int64_t{1}, &o->messages)) return false;
    } else if (a == "--warmup") {
      if (!args.Count(int64_t{0}, &o->warmup)) return false;
    } else if (a == "--json") {
      o->json = true;
    } else {
      std::cerr << "error: INVALID_ARGUMENT: unknown argument " << a << "\n"
                << kUsage;
      return false;
    }
  }
  return true;
}

// Reads B's stream on its own thread and timestamps what arrives, so that
// a delivery is timed when it reaches the client, not when the sender gets
// around to looking.
class StreamReader {
 public:
  StreamReader(ConnectStream* stream) : stream_(stream) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~StreamReader() { thread_.join(); }

  // Waits for the Pong answering `nonce`.
  bool WaitForPong(int64_t nonce, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      return pong_nonce_ == nonce || ended_;
    }) && pong_nonce_ == nonce;
  }

  // Waits for the message_created event carrying `client_message_id`;
  // returns its arrival time.
  bool WaitForMessage(const std::string& client_message_id,
                      Clock::time_point deadline, Clock::time_point* arrival) {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      while (!arrivals_.empty()) {
        auto [id, at] = arrivals_.front();
        arrivals_.pop_front();
        if (id == client_message_id) {
          *arrival = at;
          return true;
        }
      }
      if (ended_) return false;
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout &&
          arrivals_.empty()) {
        return false;
      }
    }
  }

 private:
  void Loop() {
    v1::ServerFrame frame;
    while (stream_->Read(&frame)) {
      const Clock::time_point now = Clock::now();
      std::lock_guard<std::mutex> lock(mu_);
      if (frame.has_pong()) {
        pong_nonce_ = frame.pong().nonce();
      } else if (frame.has_chat_event() &&
                 frame.chat_event().has_message_created()) {
        arrivals_.emplace_back(
            frame.chat_event().message_created().client_message_id(), now);
      } else {
        continue;
      }
      cv_.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu_);
    ended_ = true;
    cv_.notify_all();
  }

  ConnectStream* const stream_;
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t pong_nonce_ = 0;
  bool ended_ = false;
  std::deque<std::pair<std::string, Clock::time_point>> arrivals_;
  std::thread thread_;
};

int Fail(const std::string& what, const absl::Status& s) {
  std::cerr << client::FormatError(s) << " (" << what << ")" << std::endl;
  return 1;
}

int Run(const Options& o) {
  const std::string suffix = RandomHex(10);
  const std::string password = RandomHex(24);
  absl::StatusOr<TlsCredentials> tls =
      TlsCredentials::LoadClient(o.tls_ca_file);
  if (!tls.ok()) {
    std::cerr << client::FormatError(tls.status()) << "\n";
    return 2;
  }
  auto a = ChatClient::Create(o.gateway, "", ChatClient::kDefaultTimeout, *tls);
  auto b = ChatClient::Create(o.gateway, "", ChatClient::kDefaultTimeout, *tls);

  absl::StatusOr<v1::RegisterResponse> ra =
      a->Register("bench_a_" + suffix, password, "");
  if (!ra.ok()) return Fail("register user A", ra.status());
  absl::StatusOr<v1::RegisterResponse> rb =
      b->Register("bench_b_" + suffix, password, "");
  if (!rb.ok()) return Fail("register user B", rb.status());
  a->set_token(ra->access_token());
  b->set_token(rb->access_token());

  absl::StatusOr<v1::Chat> chat = a->CreateDirectChat(rb->user().user_id());
  if (!chat.ok()) return Fail("create direct chat", chat.status());

  grpc::ClientContext stream_ctx;
  std::unique_ptr<ConnectStream> stream = b->Connect(&stream_ctx);
  absl::Status failure;
  std::vector<double> ack_us, delivery_us;
  Clock::time_point measure_start, measure_end;
  {
    StreamReader reader(stream.get());
    v1::ClientFrame ping;
    ping.mutable_ping()->set_nonce(1);
    if (!stream->Write(ping) ||
        !reader.WaitForPong(1, std::chrono::seconds(10))) {
      failure = absl::UnavailableError("no Pong on B's Connect stream");
    }

    const int64_t total = o.warmup + o.messages;
    ack_us.reserve(o.messages);
    delivery_us.reserve(o.messages);
    for (int64_t i = 0; failure.ok() && i < total; ++i) {
      if (i == o.warmup) measure_start = Clock::now();
      v1::SendMessageRequest req;
      req.set_chat_id(chat->chat_id());
      req.set_client_message_id(client::NewClientMessageId());
      req.set_text(absl::StrCat("bench message ", i));
      const Clock::time_point t0 = Clock::now();
      absl::StatusOr<v1::Message> sent = a->SendMessage(req);
      const Clock::time_point t1 = Clock::now();
      if (!sent.ok()) {
        failure = sent.status();
        break;
      }
      Clock::time_point t2;
      if (!reader.WaitForMessage(req.client_message_id(), t1 + kDeliveryTimeout,
                                 &t2)) {
        failure = absl::DeadlineExceededError(absl::StrCat(
            "message ", i, " (#", sent->seq(), ") not delivered to B within ",
            kDeliveryTimeout.count(), " s"));
        break;
      }
      if (i >= o.warmup) {
        ack_us.push_back(
            std::chrono::duration<double, std::micro>(t1 - t0).count());
        delivery_us.push_back(
            std::chrono::duration<double, std::micro>(t2 - t0).count());
      }
    }
    measure_end = Clock::now();
    stream_ctx.TryCancel();
  }  // joins the reader
  stream->Finish();
  if (!failure.ok()) return Fail("benchmark run", failure);

  const Summary ack = Summarize(ack_us);
  const Summary delivery = Summarize(delivery_us);
  const double seconds =
      std::chrono::duration<double>(measure_end - measure_start).count();
  const double rate = seconds > 0 ? ack.count / seconds : 0;

  std::printf(
      "parley latency bench: %lld messages (+%lld warmup) via %s, "
      "direct chat %s\n\n",
      static_cast<long long>(o.messages), static_cast<long long>(o.warmup),
      o.gateway.c_str(), chat->chat_id().c_str());
  PrintLatencyTable({{"send->ack", ack}, {"send->delivery", delivery}});
  std::printf("\n%.1f messages/s (sequential, one in flight)\n", rate);
  if (o.json) {
    std::printf(
        "%s\n",
        absl::StrCat("{\"gateway\":", JsonString(o.gateway),
                     ",\"messages\":", o.messages, ",\"warmup\":", o.warmup,
                     ",\"unit\":\"ms\",\"send_ack\":", SummaryJson(ack),
                     ",\"send_delivery\":", SummaryJson(delivery),
                     ",\"messages_per_second\":", absl::StrFormat("%.1f", rate),
                     "}")
            .c_str());
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace parley::bench

int main(int argc, char** argv) {
  parley::bench::Options options;
  bool help = false;
  if (!parley::bench::ParseOptions(argc, argv, &options, &help)) return 2;
  if (help) {
    std::cout << parley::bench::kUsage;
    return 0;
  }
  return parley::bench::Run(options);
}
