// parley-latency-bench: measures, against a running gateway, how long
// SendMessage takes to be acknowledged (send->ack) and how long a message
// takes to reach the peer's Connect stream (send->delivery).
//
//   parley-latency-bench --gateway 127.0.0.1:50051 --messages 1000 --json
//
// Two fresh users A and B share a direct chat. B's stream is registered
// (Pong to its first Ping) before A sends N messages one at a time, each
// after the previous one was delivered to B.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/client/chat_client.h"
#include "services/client/client_status.h"

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
  if (const char* g = std::getenv("PARLEY_GATEWAY"); g != nullptr && *g) {
    o->gateway = g;
  }
  if (const char* ca = std::getenv("PARLEY_TLS_CA_FILE"); ca != nullptr && *ca) {
    o->tls_ca_file = ca;
  }
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    bool has_value = false;
    if (const size_t eq = a.find('='); a.rfind("--", 0) == 0 && eq != a.npos) {
      value = a.substr(eq + 1);
      a.resize(eq);
      has_value = true;
    }
    auto need_value = [&](std::string* out) {
      if (has_value) {
        *out = value;
        return true;
      }
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    auto need_count = [&](int64_t min, int64_t* out) {
      std::string v;
      if (!need_value(&v) || !absl::SimpleAtoi(v, out) || *out < min) {
        std::cerr << "error: INVALID_ARGUMENT: " << a
                  << " needs a whole number >= " << min << "\n";
        return false;
      }
      return true;
    };
    if (a == "-h" || a == "--help") {
      *help = true;
    } else if (a == "--gateway") {
      if (!need_value(&o->gateway)) {
        std::cerr << "error: INVALID_ARGUMENT: --gateway needs HOST:PORT\n";
        return false;
      }
    } else if (a == "--tls_ca_file") {
      if (!need_value(&o->tls_ca_file)) {
        std::cerr << "error: INVALID_ARGUMENT: --tls_ca_file needs a file\n";
        return false;
      }
    } else if (a == "--messages") {
      if (!need_count(1, &o->messages)) return false;
    } else if (a == "--warmup") {
      if (!need_count(0, &o->warmup)) return false;
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

std::string RandomHex(int chars) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string out;
  for (int i = 0; i < chars; ++i) out.push_back(kHex[rd() & 0xf]);
  return out;
}

struct Summary {
  size_t count = 0;
  double min = 0, p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;  // ms
};

// Nearest-rank percentiles of durations in microseconds.
Summary Summarize(std::vector<double> us) {
  Summary s;
  s.count = us.size();
  if (us.empty()) return s;
  std::sort(us.begin(), us.end());
  auto rank = [&](double p) {
    const size_t r = static_cast<size_t>(std::ceil(p / 100.0 * us.size()));
    return us[std::min(us.size() - 1, r == 0 ? 0 : r - 1)] / 1000.0;
  };
  s.min = us.front() / 1000.0;
  s.max = us.back() / 1000.0;
  s.p50 = rank(50);
  s.p90 = rank(90);
  s.p99 = rank(99);
  double sum = 0;
  for (double v : us) sum += v;
  s.mean = sum / us.size() / 1000.0;
  return s;
}

std::string SummaryJson(const Summary& s) {
  return absl::StrFormat(
      "{\"count\":%d,\"min\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
      "\"max\":%.3f,\"mean\":%.3f}",
      s.count, s.min, s.p50, s.p90, s.p99, s.max, s.mean);
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
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
  std::printf("%-16s %7s %9s %9s %9s %9s %9s %9s\n", "latency (ms)", "count",
              "min", "p50", "p90", "p99", "max", "mean");
  for (const auto& [name, s] :
       {std::pair<const char*, const Summary&>{"send->ack", ack},
        std::pair<const char*, const Summary&>{"send->delivery", delivery}}) {
    std::printf("%-16s %7zu %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n", name,
                s.count, s.min, s.p50, s.p90, s.p99, s.max, s.mean);
  }
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
