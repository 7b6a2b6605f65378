// parley-bench: an open-loop load generator for the public API, driven
// through the gateway.
//
// How to run (two terminals, from the checkout):
//
//   # 1: the cluster, with the per-user abuse limits off
//   export PARLEY_WRITE_RATE=0 PARLEY_TYPING_RATE=0 PARLEY_CONNECT_RATE=0
//   export PARLEY_MAX_STREAMS_PER_USER=0 PARLEY_CONNECT_BURST=1000000
//   scripts/up
//
//   # 2: the load
//   build/bin/parley-bench --scenario direct --rate 2000 --duration 10
//   build/bin/parley-bench --scenario group --groups 5 --rate 200
//   build/bin/parley-bench --scenario connections --clients 5000
//   build/bin/parley-bench --scenario ramp --rate 500 --duration 5
//   build/bin/parley-bench --scenario direct --rate 1000 --pgbench --json
//
// Registration hashes every password with argon2id at the gateway; for runs
// with many users, PARLEY_PASSWORD_HASH_MEM_KIB=8192 in terminal 1 makes it
// quicker.
//
// Scenarios:
//   direct       --clients users in pairs, one direct chat per pair, each
//                with a Connect stream. Sends follow a schedule made in
//                advance (--rate messages/s spread evenly over the senders)
//                and latency counts from the scheduled time, so queueing in
//                the client counts too. Sends that cannot be issued on time
//                (over --max_inflight, or more than --late_ms behind) count
//                as "late" errors. A sender thread wakes at most once per
//                --send_tick_us and issues every send due by then; the
//                streams run on completion queues with one thread each
//                (--stream_threads), not on gRPC's callback threads: the
//                benchmark shares the machine and must cost little.
//   group        --groups groups of --group-size members, all connected;
//                every message is delivered to group-size - 1 streams.
//   connections  --clients idle Connect streams over --users users and
//                --channels HTTP/2 connections; connect rate and gateway
//                RSS per connection.
//   ramp         direct at increasing rates (doubling, then bisecting) to
//                find the highest rate whose p99 send->delivery stays under
//                100 ms while delivering about the target rate.
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_util.h"
#include "parley/v1/parley.grpc.pb.h"
#include "services/client/client_status.h"
#include "tests/bench/bench_util.h"
#include "tests/bench/proc_sampler.h"

namespace parley::bench {
namespace {

namespace v1 = ::parley::v1;
using Clock = std::chrono::steady_clock;

constexpr auto kCallTimeout = std::chrono::seconds(30);
constexpr auto kSendTimeout = std::chrono::seconds(10);
constexpr int kMaxRuns = 64;
constexpr double kRampP99LimitMs = 100;

constexpr char kLimitHint[] =
    "hint: the gateway refused with RESOURCE_EXHAUSTED: start it with "
    "PARLEY_WRITE_RATE=0 PARLEY_TYPING_RATE=0 PARLEY_CONNECT_RATE=0 "
    "(scripts/up passes PARLEY_<FLAG> variables to the services)";
constexpr char kStreamHint[] =
    "hint: Connect streams were refused with RESOURCE_EXHAUSTED: start the "
    "gateway with PARLEY_MAX_STREAMS_PER_USER=0 PARLEY_CONNECT_RATE=0 "
    "PARLEY_CONNECT_BURST=1000000 (or give --users more users)";

struct Options {
  std::string scenario = "direct";
  std::string gateway = "127.0.0.1:50051";
  std::string tls_ca_file;
  double rate = 1000;
  double duration = 10;
  double warmup = 2;
  double drain = 5;
  double late_ms = 1000;
  int clients = 200;
  int group_size = 100;
  int groups = 10;
  int users = 0;  // connections: 0 means clients / 100
  int channels = 64;
  int64_t max_inflight = 20000;
  int sender_threads = 2;
  int stream_threads = 1;
  int64_t send_tick_us = 1000;
  int register_inflight = 8;
  int connect_inflight = 1000;
  int ramp_steps = 6;
  double max_error_ratio = 0.01;
  bool json = false;
  bool pgbench = false;
  std::string pg_url;
  int pgbench_seconds = 10;
  std::string watch;
  std::string send_via = "stream";
  int batch_frames = 64;
};

constexpr char kUsage[] =
    "Usage: parley-bench [--scenario direct|group|connections|ramp] [options]\n"
    "  --gateway HOST:PORT   gateway (env PARLEY_GATEWAY; default "
    "127.0.0.1:50051)\n"
    "  --tls_ca_file FILE    TLS to the gateway, verified against this CA\n"
    "                        (env PARLEY_TLS_CA_FILE; default plaintext)\n"
    "  --rate R              target messages/s, all senders together "
    "(default 1000;\n"
    "                        ramp: the first step)\n"
    "  --duration S          measured seconds (default 10; connections: how "
    "long\n"
    "                        the streams are held)\n"
    "  --warmup S            unmeasured seconds of load first (default 2)\n"
    "  --drain S             wait this long after the last send for "
    "deliveries\n"
    "                        (default 5)\n"
    "  --clients N           direct: users, in pairs (default 200);\n"
    "                        connections: streams\n"
    "  --group-size G        group: members per group (default 100)\n"
    "  --groups N            group: groups (default 10)\n"
    "  --users N             connections: users the streams are spread over\n"
    "                        (default clients / 100)\n"
    "  --channels N          HTTP/2 connections to the gateway (default 64)\n"
    "  --max_inflight N      outstanding sends at most (default 20000)\n"
    "  --late_ms MS          a send this far behind its schedule is late\n"
    "                        (default 1000)\n"
    "  --sender_threads N    threads issuing sends (default 2)\n"
    "  --stream_threads N    threads driving the Connect streams (default 1)\n"
    "  --send_tick_us US     a sender wakes at most once per tick and issues\n"
    "                        every send due by then (default 1000; 0: one\n"
    "                        wake-up per send). Latency still counts from\n"
    "                        each send's own slot\n"
    "  --send_via stream|unary  send on each sender's Connect stream (send\n"
    "                        frames, answered by send_result) or with the\n"
    "                        SendMessage call (default stream)\n"
    "  --batch_frames N      frames per read each stream accepts, as a\n"
    "                        client that asks for batches (default 64; 1: no\n"
    "                        batches)\n"
    "  --register_inflight N concurrent Register calls (default 8)\n"
    "  --connect_inflight N  connections: streams opening at once (default "
    "1000)\n"
    "  --ramp_steps N        ramp: steps (default 6)\n"
    "  --max_error_ratio X   exit 1 above this share of errors (default "
    "0.01)\n"
    "  --watch NAME=PID,...  also sample these processes\n"
    "  --pgbench             measure a pgbench ceiling for the per-message\n"
    "                        transaction first\n"
    "  --pg_url URL          PostgreSQL for --pgbench (env "
    "PARLEY_POSTGRES_URL;\n"
    "                        default: the scripts/up one next to the "
    "gateway)\n"
    "  --pgbench_seconds S   pgbench duration (default 10)\n"
    "  --json                one JSON object as the last line of stdout\n"
    "  --help                this text\n";

bool ParseOptions(int argc, char** argv, Options* o, bool* help) {
  EnvDefault("PARLEY_GATEWAY", &o->gateway);
  EnvDefault("PARLEY_TLS_CA_FILE", &o->tls_ca_file);
  EnvDefault("PARLEY_POSTGRES_URL", &o->pg_url);
  ArgReader args(argc, argv);
  while (args.Next()) {
    const std::string& a = args.name();
    bool ok = true;
    if (a == "-h" || a == "--help") {
      *help = true;
    } else if (a == "--scenario") {
      ok = args.Value("a scenario", &o->scenario);
      if (ok && o->scenario != "direct" && o->scenario != "group" &&
          o->scenario != "connections" && o->scenario != "ramp") {
        std::cerr << "error: INVALID_ARGUMENT: unknown scenario " << o->scenario
                  << "\n";
        ok = false;
      }
    } else if (a == "--gateway") {
      ok = args.Value("HOST:PORT", &o->gateway);
    } else if (a == "--tls_ca_file") {
      ok = args.Value("a file", &o->tls_ca_file);
    } else if (a == "--rate") {
      ok = args.Number(0.001, &o->rate);
    } else if (a == "--duration") {
      ok = args.Number(0.1, &o->duration);
    } else if (a == "--warmup") {
      ok = args.Number(0, &o->warmup);
    } else if (a == "--drain") {
      ok = args.Number(0, &o->drain);
    } else if (a == "--late_ms") {
      ok = args.Number(1, &o->late_ms);
    } else if (a == "--clients") {
      ok = args.Count(1, &o->clients);
    } else if (a == "--group-size" || a == "--group_size") {
      ok = args.Count(2, &o->group_size);
    } else if (a == "--groups") {
      ok = args.Count(1, &o->groups);
    } else if (a == "--users") {
      ok = args.Count(1, &o->users);
    } else if (a == "--channels") {
      ok = args.Count(1, &o->channels);
    } else if (a == "--max_inflight") {
      ok = args.Count(int64_t{1}, &o->max_inflight);
    } else if (a == "--send_via") {
      ok = args.Value("stream or unary", &o->send_via);
      if (ok && o->send_via != "stream" && o->send_via != "unary") {
        std::cerr << "error: INVALID_ARGUMENT: --send_via must be stream or "
                     "unary\n";
        ok = false;
      }
    } else if (a == "--sender_threads") {
      ok = args.Count(1, &o->sender_threads);
    } else if (a == "--stream_threads") {
      ok = args.Count(1, &o->stream_threads);
    } else if (a == "--batch_frames") {
      ok = args.Count(1, &o->batch_frames);
      if (ok && o->batch_frames > 1024) {
        std::cerr << "error: INVALID_ARGUMENT: --batch_frames must be at "
                     "most 1024\n";
        ok = false;
      }
    } else if (a == "--send_tick_us") {
      ok = args.Count(int64_t{0}, &o->send_tick_us);
    } else if (a == "--register_inflight") {
      ok = args.Count(1, &o->register_inflight);
    } else if (a == "--connect_inflight") {
      ok = args.Count(1, &o->connect_inflight);
    } else if (a == "--ramp_steps") {
      ok = args.Count(1, &o->ramp_steps);
    } else if (a == "--max_error_ratio") {
      ok = args.Number(0, &o->max_error_ratio);
    } else if (a == "--watch") {
      ok = args.Value("NAME=PID,...", &o->watch);
    } else if (a == "--pgbench") {
      o->pgbench = true;
    } else if (a == "--pg_url") {
      ok = args.Value("a URL", &o->pg_url);
    } else if (a == "--pgbench_seconds") {
      ok = args.Count(1, &o->pgbench_seconds);
    } else if (a == "--json") {
      o->json = true;
    } else {
      std::cerr << "error: INVALID_ARGUMENT: unknown argument " << a << "\n";
      ok = false;
    }
    if (!ok) {
      std::cerr << kUsage;
      return false;
    }
  }
  if (o->scenario == "direct" || o->scenario == "ramp") {
    if (o->clients < 2 || o->clients % 2 != 0) {
      std::cerr << "error: INVALID_ARGUMENT: --clients must be even and >= 2 "
                   "for "
                << o->scenario << "\n"
                << kUsage;
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Status codes.

constexpr int kCodes = 17;

const char* CodeName(int code) {
  static constexpr std::array<const char*, kCodes> kNames = {
      "OK",
      "CANCELLED",
      "UNKNOWN",
      "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED",
      "NOT_FOUND",
      "ALREADY_EXISTS",
      "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION",
      "ABORTED",
      "OUT_OF_RANGE",
      "UNIMPLEMENTED",
      "INTERNAL",
      "UNAVAILABLE",
      "DATA_LOSS",
      "UNAUTHENTICATED"};
  return code >= 0 && code < kCodes ? kNames[code] : "UNKNOWN";
}

class CodeCounts {
 public:
  void Add(int code) { counts_[code >= 0 && code < kCodes ? code : 2]++; }
  int64_t Get(int code) const { return counts_[code].load(); }
  int64_t Total() const {
    int64_t t = 0;
    for (int c = 1; c < kCodes; ++c) t += counts_[c].load();
    return t;
  }
  // "UNAVAILABLE 3, DEADLINE_EXCEEDED 1" or "none".
  std::string Describe() const {
    std::vector<std::string> parts;
    for (int c = 1; c < kCodes; ++c) {
      if (counts_[c] > 0)
        parts.push_back(absl::StrCat(CodeName(c), " ", counts_[c].load()));
    }
    return parts.empty() ? "none" : absl::StrJoin(parts, ", ");
  }
  std::string Json() const {
    std::vector<std::string> parts;
    for (int c = 1; c < kCodes; ++c) {
      if (counts_[c] > 0)
        parts.push_back(
            absl::StrCat("\"", CodeName(c), "\":", counts_[c].load()));
    }
    return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
  }

 private:
  std::array<std::atomic<int64_t>, kCodes> counts_{};
};

// ---------------------------------------------------------------------------
// A lock-free latency histogram (about 3% resolution) for the live p99.

class LiveHistogram {
 public:
  static constexpr int kBuckets = 64 + 36 * 32;

  void Add(int64_t us) {
    buckets_[Bucket(us)].fetch_add(1, std::memory_order_relaxed);
  }

  std::vector<int64_t> Snapshot() const {
    std::vector<int64_t> out(kBuckets);
    for (int i = 0; i < kBuckets; ++i)
      out[i] = buckets_[i].load(std::memory_order_relaxed);
    return out;
  }

  // The p-th percentile in ms of the samples added between two snapshots;
  // -1 when there were none.
  static double Percentile(const std::vector<int64_t>& before,
                           const std::vector<int64_t>& after, double p) {
    int64_t total = 0;
    for (int i = 0; i < kBuckets; ++i) total += after[i] - before[i];
    if (total == 0) return -1;
    const int64_t rank = static_cast<int64_t>(std::ceil(p / 100.0 * total));
    int64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += after[i] - before[i];
      if (seen >= rank) return UpperBoundUs(i) / 1000.0;
    }
    return UpperBoundUs(kBuckets - 1) / 1000.0;
  }

 private:
  static int Bucket(int64_t us) {
    if (us < 64) return us < 0 ? 0 : static_cast<int>(us);
    int msb = 63 - __builtin_clzll(static_cast<uint64_t>(us));
    if (msb > 41) return kBuckets - 1;
    return 64 + (msb - 6) * 32 + static_cast<int>((us >> (msb - 5)) & 31);
  }
  static int64_t UpperBoundUs(int b) {
    if (b < 64) return b;
    const int msb = (b - 64) / 32 + 6;
    const int64_t m = (b - 64) % 32 + 32;
    return (m + 1) << (msb - 5);
  }

  std::array<std::atomic<int64_t>, kBuckets> buckets_{};
};

// ---------------------------------------------------------------------------
// Users, chats and the Connect stream reactor.

struct BenchUser {
  std::string user_id;
  std::string bearer;  // "Bearer <token>"
  int channel = 0;
};

struct BenchChat {
  std::string chat_id;
};

class Stream;

class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual void OnPong(Stream* stream, Clock::time_point at) = 0;
  // `message` is only valid during the call.
  virtual void OnMessage(Stream* stream, const v1::Message& message,
                         Clock::time_point at) = 0;
  // `result` is only valid during the call.
  virtual void OnSendResult(const v1::SendResult& result,
                            Clock::time_point at) = 0;
  virtual void OnStreamDone(Stream* stream, const grpc::Status& status) = 0;
  // One read from a stream carried `frames` frames (more than 1: a batch).
  virtual void OnRead(int frames) = 0;
};

// Completion queues of the Connect streams, each drained by one thread of
// its own. The callback API's two threads per process handed most events
// to each other: about five context switches per message at 4,000 msg/s,
// the largest single cost of a benchmark that shares the machine with
// what it measures. A thread waiting alone on its queue takes each event
// itself.
class StreamQueues {
 public:
  // What a queue's thread does with an event: tags are Op*.
  struct Op {
    virtual void Proceed(bool ok) = 0;

   protected:
    ~Op() = default;
  };

  explicit StreamQueues(int threads) {
    for (int i = 0; i < std::max(1, threads); ++i) {
      queues_.push_back(std::make_unique<grpc::CompletionQueue>());
    }
    for (auto& q : queues_) {
      threads_.emplace_back([cq = q.get()] {
        void* tag;
        bool ok;
        while (cq->Next(&tag, &ok)) static_cast<Op*>(tag)->Proceed(ok);
      });
    }
  }
  ~StreamQueues() {
    for (auto& q : queues_) q->Shutdown();
    for (auto& t : threads_) t.join();
  }
  grpc::CompletionQueue* queue(int i) const {
    return queues_[i % queues_.size()].get();
  }

 private:
  std::vector<std::unique_ptr<grpc::CompletionQueue>> queues_;
  std::vector<std::thread> threads_;
};

// Starts a unary call whose answer comes from `cq`: `prepare(cq)` is the
// stub's PrepareAsync method bound to the call's context and request;
// `done` runs on the queue's thread. (Calls through the callback API would
// bring back gRPC's own callback threads and their hand-offs.)
template <typename Resp, typename Prepare>
void CallOnQueue(grpc::CompletionQueue* cq, Prepare prepare, Resp* resp,
                 std::function<void(grpc::Status)> done) {
  struct UnaryOp final : StreamQueues::Op {
    std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>> reader;
    grpc::Status status;
    std::function<void(grpc::Status)> done;
    void Proceed(bool /*ok*/) override {
      done(status);
      delete this;
    }
  };
  auto* op = new UnaryOp;
  op->done = std::move(done);
  op->reader = prepare(cq);
  op->reader->StartCall();
  op->reader->Finish(resp, &op->status, op);
}

// One Connect stream: pings once, then reads until cancelled. Its events
// come from one completion queue, one at a time; Write may be called from
// any thread.
class Stream final {
 public:
  Stream(StreamSink* sink, int index, int user)
      : sink_(sink), index_(index), user_(user) {}

  // Asks for batches of up to `batch_frames` frames when above 1.
  void Start(v1::ChatService::Stub* stub, grpc::CompletionQueue* cq,
             const std::string& bearer, int batch_frames) {
    ctx_.AddMetadata("authorization", bearer);
    if (batch_frames > 1) {
      ctx_.AddMetadata("parley-batch-frames", std::to_string(batch_frames));
    }
    std::lock_guard<std::mutex> lock(mu_);
    rw_ = stub->PrepareAsyncConnect(&ctx_, cq);
    rw_->StartCall(&start_op_);
  }
  void Cancel() { ctx_.TryCancel(); }
  int index() const { return index_; }
  int user() const { return user_; }
  bool connected() const { return connected_; }

  // Queues a frame (a send); one write is in flight at a time. False once
  // the stream is broken.
  bool Write(v1::ClientFrame frame) {
    std::lock_guard<std::mutex> lock(mu_);
    if (broken_) return false;
    if (writing_) {
      pending_.push_back(std::move(frame));
      return true;
    }
    writing_ = true;
    out_ = std::move(frame);
    rw_->Write(out_, &write_op_);
    return true;
  }

 private:
  struct StreamOp final : StreamQueues::Op {
    using Fn = void (Stream::*)(bool);
    StreamOp(Stream* s, Fn f) : stream(s), fn(f) {}
    void Proceed(bool ok) override { (stream->*fn)(ok); }
    Stream* const stream;
    const Fn fn;
  };

  void OnStarted(bool ok) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ok) {  // the call never started: Finish tells why
      FinishLocked();
      return;
    }
    out_.mutable_ping()->set_nonce(index_ + 1);
    writing_ = true;
    rw_->Write(out_, &write_op_);
    rw_->Read(&in_, &read_op_);
  }
  void OnWriteDone(bool ok) {
    bool done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!ok) broken_ = true;
      if (ok && !pending_.empty()) {
        out_ = std::move(pending_.front());
        pending_.pop_front();
        rw_->Write(out_, &write_op_);
        return;
      }
      writing_ = false;
      done = finished_;
    }
    if (done) sink_->OnStreamDone(this, status_);
  }
  void OnReadDone(bool ok) {
    if (!ok) {  // the stream ended
      std::lock_guard<std::mutex> lock(mu_);
      FinishLocked();
      return;
    }
    const Clock::time_point now = Clock::now();
    if (in_.has_batch()) {
      for (const v1::ServerFrame& f : in_.batch().frames()) OnFrame(f, now);
      sink_->OnRead(in_.batch().frames_size());
    } else {
      OnFrame(in_, now);
      sink_->OnRead(1);
    }
    rw_->Read(&in_, &read_op_);
  }
  void OnFrame(const v1::ServerFrame& f, Clock::time_point now) {
    if (f.has_pong()) {
      if (!connected_) {
        connected_ = true;
        sink_->OnPong(this, now);
      }
    } else if (f.has_chat_event() && f.chat_event().has_message_created()) {
      sink_->OnMessage(this, f.chat_event().message_created(), now);
    } else if (f.has_send_result()) {
      sink_->OnSendResult(f.send_result(), now);
    }
  }
  void FinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    broken_ = true;
    pending_.clear();
    rw_->Finish(&status_, &finish_op_);
  }
  void OnFinished(bool /*ok*/) {
    bool done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      finished_ = true;
      done = !writing_;  // else the write's completion reports the end
    }
    if (done) sink_->OnStreamDone(this, status_);
  }

  StreamSink* const sink_;
  const int index_;
  const int user_;
  grpc::ClientContext ctx_;
  StreamOp start_op_{this, &Stream::OnStarted};
  StreamOp read_op_{this, &Stream::OnReadDone};
  StreamOp write_op_{this, &Stream::OnWriteDone};
  StreamOp finish_op_{this, &Stream::OnFinished};
  v1::ServerFrame in_;  // reads are one at a time, on the queue's thread
  bool connected_ = false;
  grpc::Status status_;  // set by Finish
  std::mutex mu_;
  std::unique_ptr<
      grpc::ClientAsyncReaderWriter<v1::ClientFrame, v1::ServerFrame>>
      rw_ ABSL_GUARDED_BY(mu_);
  v1::ClientFrame out_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::ClientFrame> pending_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// Runs task(i, done) for every i in [0, n) with at most `inflight`
// outstanding; each task calls done exactly once. Starts no more tasks after
// the first failure, which it returns.
absl::Status RunBounded(
    int64_t n, int inflight,
    const std::function<void(int64_t, std::function<void(absl::Status)>)>&
        task) {
  std::mutex mu;
  std::condition_variable cv;
  int64_t outstanding = 0;
  int64_t next = 0;
  absl::Status first;
  std::unique_lock<std::mutex> lock(mu);
  while (true) {
    cv.wait(lock, [&] { return outstanding < inflight; });
    if (!first.ok() || next >= n) break;
    const int64_t i = next++;
    ++outstanding;
    lock.unlock();
    task(i, [&](absl::Status s) {
      std::lock_guard<std::mutex> guard(mu);
      if (!s.ok() && first.ok()) first = s;
      --outstanding;
      cv.notify_all();
    });
    lock.lock();
  }
  cv.wait(lock, [&] { return outstanding == 0; });
  return first;
}

template <typename Req, typename Resp>
struct UnaryCall {
  grpc::ClientContext ctx;
  Req req;
  Resp resp;
};

// ---------------------------------------------------------------------------
// One load run (a direct or group run, or one ramp step).

enum Outcome : int8_t { kPending, kIssued, kAcked, kFailed, kLate };

struct Slot {
  int64_t scheduled_ns = 0;  // after the run's t0
  int32_t chat = 0;
  int32_t sender = 0;
  bool measured = false;
  std::atomic<int64_t> ack_ns{-1};
  std::atomic<int32_t> deliveries{0};
  std::atomic<int8_t> outcome{kPending};
};

struct RunState {
  int step = 0;
  std::string prefix;  // client_message_id prefix, "<bench id>s<step>-"
  double rate = 0;
  int expected = 1;  // recipients of each message
  int64_t n = 0;
  Clock::time_point t0;
  std::unique_ptr<Slot[]> slots;
  std::atomic<int64_t> sent{0}, acked{0}, failed{0}, late{0}, inflight{0};
  std::atomic<int64_t> deliveries{0}, duplicates{0}, misrouted{0};
  std::atomic<bool> finished{false};
  CodeCounts errors;
  LiveHistogram live;
  std::mutex mu;
  std::vector<double> delivery_us;  // measured deliveries
};

struct StepResult {
  double target_rate = 0;
  double duration = 0;
  int64_t scheduled = 0;  // all slots, warmup included
  int64_t measured = 0;
  int64_t sent = 0, acked = 0, failed = 0, late = 0;
  int64_t measured_acked = 0;
  int64_t delivered_messages = 0;  // measured, reached every recipient
  int64_t deliveries = 0;          // measured
  int64_t undelivered = 0;  // acked (any slot) but short of its recipients
  int64_t duplicates = 0, misrouted = 0, stream_errors = 0;
  Summary ack, delivery;
  std::string errors_text, errors_json;
  std::vector<ProcUsage> usage;
  double delivered_per_s = 0, deliveries_per_s = 0, persisted_per_s = 0;
  // Frames per stream read in the measured window; above 1 when the
  // gateway batched.
  double frames_per_read = 0;
  int64_t errors = 0;
  bool resource_exhausted = false;

  double ErrorRatio() const {
    return scheduled > 0 ? static_cast<double>(errors) / scheduled : 0;
  }
};

// ---------------------------------------------------------------------------

bool IsLocalHost(const std::string& host) {
  return host == "localhost" || absl::StartsWith(host, "127.") ||
         host == "[::1]" || host == "::1";
}

// The port of "host:port", or 0.
int PortOf(const std::string& target, std::string* host) {
  const size_t colon = target.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(target.substr(colon + 1), &port)) {
    return 0;
  }
  *host = target.substr(0, colon);
  return port;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Runs `command` through the shell; returns its output and exit status.
absl::StatusOr<std::string> RunCommand(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return absl::InternalError("popen failed");
  std::string out;
  char buf[4096];
  size_t got;
  while ((got = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, got);
  const int rc = pclose(p);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("command failed (status ", rc, "): ", out));
  }
  return out;
}

std::string PgTool(const char* name) {
  const std::string path = absl::StrCat("/usr/lib/postgresql/15/bin/", name);
  return access(path.c_str(), X_OK) == 0 ? path : name;
}

// The per-message transaction of storage's AppendMessage: look up the
// idempotency key, bump the chat's seq under its row lock, insert the
// message and its chat_events row, commit.
constexpr char kPgbenchSetup[] = R"sql(
DROP SCHEMA IF EXISTS parley_bench CASCADE;
CREATE SCHEMA parley_bench;
CREATE TABLE parley_bench.chats (
  chat_id bigint PRIMARY KEY,
  type smallint NOT NULL DEFAULT 1,
  last_seq bigint NOT NULL DEFAULT 0,
  last_event_time timestamptz NOT NULL DEFAULT now(),
  create_time timestamptz NOT NULL DEFAULT now());
-- The message and event tables take the real ones' columns, defaults,
-- checks and indexes, so the ceiling follows the schema's migrations (like
-- the real ones since 0005, they have no foreign keys).
CREATE TABLE parley_bench.messages (LIKE public.messages INCLUDING ALL);
CREATE TABLE parley_bench.chat_events (LIKE public.chat_events INCLUDING ALL);
CREATE SEQUENCE parley_bench.message_ids;
)sql";

constexpr char kPgbenchScript[] = R"sql(\set c random(1, :chats)
\set s random(1, 1000000)
BEGIN;
SELECT message_id FROM parley_bench.messages
  WHERE sender_id = :s AND client_message_id = md5(random()::text);
UPDATE parley_bench.chats SET last_seq = last_seq + 1,
  last_event_time = now() WHERE chat_id = :c RETURNING last_seq \gset
INSERT INTO parley_bench.messages (message_id, chat_id, seq, sender_id,
  client_message_id, content_hash, text)
  VALUES (nextval('parley_bench.message_ids'), :c, :last_seq, :s,
  md5(random()::text), sha256(random()::text::bytea),
  'parley-bench pgbench message') RETURNING message_id \gset
INSERT INTO parley_bench.chat_events (chat_id, seq, kind, message_id)
  VALUES (:c, :last_seq, 1, :message_id);
END;
)sql";

// pgbench's transactions per second for the per-message transaction on
// `chats` chats, 8 clients, synchronous_commit on.
absl::StatusOr<double> RunPgbench(const std::string& url, int seconds,
                                  int chats) {
  const std::string psql =
      absl::StrCat(ShellQuote(PgTool("psql")), " -X -q -v ON_ERROR_STOP=1 -d ",
                   ShellQuote(url));
  std::string setup = kPgbenchSetup;
  absl::StrAppend(&setup, "INSERT INTO parley_bench.chats (chat_id) ",
                  "SELECT g FROM generate_series(1, ", chats, ") g;\n");
  char path[] = "/tmp/parley-bench-pgbench.XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return absl::InternalError("cannot create the pgbench script");
  close(fd);
  {
    std::ofstream script(path);
    script << kPgbenchScript;
  }
  absl::StatusOr<std::string> out =
      RunCommand(absl::StrCat(psql, " -c ", ShellQuote(setup), " 2>&1"));
  if (out.ok()) {
    out = RunCommand(absl::StrCat(
        "PGOPTIONS='-c synchronous_commit=on' ", ShellQuote(PgTool("pgbench")),
        " -n -M extended -c 8 -j 2 -T ", seconds, " -D chats=", chats, " -f ",
        path, " ", ShellQuote(url), " 2>&1"));
  }
  RunCommand(absl::StrCat(psql, " -c ",
                          ShellQuote("DROP SCHEMA IF EXISTS parley_bench "
                                     "CASCADE"),
                          " 2>&1"))
      .IgnoreError();
  unlink(path);
  if (!out.ok()) return out.status();
  const size_t at = out->find("tps = ");
  double tps = 0;
  if (at == std::string::npos) {
    return absl::InternalError("no \"tps = \" line in pgbench's output");
  }
  const size_t end = out->find(' ', at + 6);
  if (!absl::SimpleAtod(out->substr(at + 6, end - at - 6), &tps)) {
    return absl::InternalError("unreadable tps in pgbench's output");
  }
  return tps;
}

void RaiseFileLimit() {
  rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// ---------------------------------------------------------------------------

class Bench final : public StreamSink {
 public:
  Bench(Options options, TlsCredentials tls)
      : o_(std::move(options)),
        tls_(std::move(tls)),
        queues_(std::make_unique<StreamQueues>(o_.stream_threads)) {
    bench_id_ = RandomHex(8);
    for (int i = 0; i < o_.channels; ++i) {
      grpc::ChannelArguments args;
      // A distinct argument keeps gRPC from sharing one connection.
      args.SetInt("parley.bench.channel", i);
      if (!tls_.server_name().empty()) {
        args.SetSslTargetNameOverride(tls_.server_name());
      }
      auto channel = grpc::CreateCustomChannel(o_.gateway,
                                               tls_.ChannelCredentials(), args);
      auth_.push_back(v1::AuthService::NewStub(channel));
      chat_.push_back(v1::ChatService::NewStub(channel));
    }
    std::string host;
    const int port = PortOf(o_.gateway, &host);
    if (port > 0 && IsLocalHost(host)) {
      targets_ = DiscoverCluster(port, &notes_);
      gateway_port_ = port;
    } else {
      notes_.push_back("the gateway is not local: no /proc sampling");
    }
    absl::StatusOr<std::vector<WatchTarget>> extra = ParseWatchList(o_.watch);
    if (extra.ok()) {
      targets_.insert(targets_.end(), extra->begin(), extra->end());
    }
  }

  ~Bench() override { CloseStreams(); }

  int Run();

  // StreamSink.
  void OnPong(Stream* stream, Clock::time_point at) override;
  void OnMessage(Stream* stream, const v1::Message& message,
                 Clock::time_point at) override;
  void OnSendResult(const v1::SendResult& result,
                    Clock::time_point at) override;
  void OnStreamDone(Stream* stream, const grpc::Status& status) override;
  void OnRead(int frames) override {
    reads_.fetch_add(1, std::memory_order_relaxed);
    frames_read_.fetch_add(frames, std::memory_order_relaxed);
  }

 private:
  // The run and slot a client_message_id of this benchmark names, or null.
  RunState* FindSlot(const std::string& client_message_id, int64_t* k);
  // Records the answer to slot k's send.
  static void Answered(RunState* run, int64_t k, grpc::StatusCode code,
                       Clock::time_point at);
  absl::Status RegisterUsers(int n);
  absl::Status CreateDirectChats();
  absl::Status CreateGroups();
  // Opens `n` streams (stream i for user i % users) at most
  // --connect_inflight unanswered at once; returns when every stream has
  // its Pong or ended.
  void OpenStreams(int n, bool progress);
  void CloseStreams();

  StepResult RunLoad(double rate, int step);
  void SenderLoop(RunState* run, int thread, int threads);
  void Issue(RunState* run, int64_t k);
  void ProgressLoop(RunState* run, Clock::time_point start);

  int RunDirectOrGroup();
  int RunRamp();
  int RunConnections();

  void MaybeRunPgbench(int chats);
  void PrintServices(const std::vector<ProcUsage>& usage) const;
  std::string ServicesJson(const std::vector<ProcUsage>& usage) const;
  std::string PgbenchJson(double persisted_per_s) const;
  void PrintLoad(const StepResult& r) const;
  std::string LoadJson(const StepResult& r) const;
  int gateway_index() const {
    for (size_t i = 0; i < targets_.size(); ++i) {
      if (targets_[i].name == "gateway") return static_cast<int>(i);
    }
    return -1;
  }

  const Options o_;
  const TlsCredentials tls_;
  std::string bench_id_;
  std::vector<std::unique_ptr<v1::AuthService::Stub>> auth_;
  std::vector<std::unique_ptr<v1::ChatService::Stub>> chat_;
  std::vector<WatchTarget> targets_;
  std::vector<std::string> notes_;
  int gateway_port_ = 0;

  std::vector<BenchUser> users_;
  std::vector<BenchChat> chats_;
  int group_size_ = 2;  // users per chat

  // Outlives the streams: its threads deliver their last events.
  std::unique_ptr<StreamQueues> queues_;
  std::vector<std::unique_ptr<Stream>> streams_;
  std::mutex stream_mu_;
  std::condition_variable stream_cv_;
  int streams_open_ = 0;       // started and not done
  int streams_connected_ = 0;  // got their Pong
  int streams_failed_ = 0;     // ended before their Pong
  int streams_dropped_ = 0;    // ended after their Pong, not by us
  // Reads from all streams, and the frames they carried.
  std::atomic<int64_t> reads_{0};
  std::atomic<int64_t> frames_read_{0};
  bool closing_ = false;
  Clock::time_point last_pong_;
  CodeCounts stream_errors_;
  std::atomic<bool> stream_exhausted_{false};

  std::array<std::unique_ptr<RunState>, kMaxRuns> runs_;
  std::atomic<int> run_count_{0};
  std::atomic<int64_t> stray_{0};

  double pgbench_tps_ = -1;
  std::string pgbench_error_;
};

absl::Status Bench::RegisterUsers(int n) {
  const std::string password = RandomHex(24);
  users_.assign(n, BenchUser());
  std::atomic<bool> exhausted{false};
  const Clock::time_point start = Clock::now();
  std::cerr << "registering " << n << " users ..." << std::endl;
  absl::Status s =
      RunBounded(n, o_.register_inflight, [&](int64_t i, auto done) {
        using Call = UnaryCall<v1::RegisterRequest, v1::RegisterResponse>;
        auto call = std::make_shared<Call>();
        const int channel = static_cast<int>(i % o_.channels);
        call->req.set_username(absl::StrCat("pb", bench_id_, "_", i));
        call->req.set_password(password);
        call->ctx.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
        CallOnQueue(
            queues_->queue(channel),
            [&](grpc::CompletionQueue* cq) {
              return auth_[channel]->PrepareAsyncRegister(&call->ctx, call->req,
                                                          cq);
            },
            &call->resp,
            [this, call, i, channel, done, &exhausted](grpc::Status st) {
              if (st.ok()) {
                BenchUser& u = users_[i];
                u.user_id = call->resp.user().user_id();
                u.bearer = absl::StrCat("Bearer ", call->resp.access_token());
                u.channel = channel;
              } else if (st.error_code() == grpc::RESOURCE_EXHAUSTED) {
                exhausted = true;
              }
              done(client::StatusFromGrpc(st));
            });
      });
  if (exhausted) std::cerr << kLimitHint << std::endl;
  if (s.ok()) {
    std::cerr << absl::StrFormat("registered %d users in %.1f s", n,
                                 Seconds(Clock::now() - start))
              << std::endl;
  }
  return s;
}

absl::Status Bench::CreateDirectChats() {
  const int pairs = static_cast<int>(users_.size() / 2);
  chats_.assign(pairs, BenchChat());
  group_size_ = 2;
  return RunBounded(pairs, 32, [&](int64_t p, auto done) {
    using Call = UnaryCall<v1::CreateDirectChatRequest, v1::Chat>;
    auto call = std::make_shared<Call>();
    const BenchUser& a = users_[2 * p];
    call->req.set_peer_user_id(users_[2 * p + 1].user_id);
    call->ctx.AddMetadata("authorization", a.bearer);
    call->ctx.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    CallOnQueue(
        queues_->queue(p),
        [&](grpc::CompletionQueue* cq) {
          return chat_[a.channel]->PrepareAsyncCreateDirectChat(&call->ctx,
                                                                call->req, cq);
        },
        &call->resp,
        [this, call, p, done](grpc::Status st) {
          if (st.ok()) chats_[p].chat_id = call->resp.chat_id();
          done(client::StatusFromGrpc(st));
        });
  });
}

absl::Status Bench::CreateGroups() {
  chats_.assign(o_.groups, BenchChat());
  group_size_ = o_.group_size;
  return RunBounded(o_.groups, 4, [&](int64_t g, auto done) {
    using Call = UnaryCall<v1::CreateGroupChatRequest, v1::Chat>;
    auto call = std::make_shared<Call>();
    const BenchUser& owner = users_[g * o_.group_size];
    call->req.set_title(absl::StrCat("parley-bench group ", g));
    for (int m = 1; m < o_.group_size; ++m) {
      call->req.add_member_user_ids(users_[g * o_.group_size + m].user_id);
    }
    call->ctx.AddMetadata("authorization", owner.bearer);
    call->ctx.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    CallOnQueue(
        queues_->queue(g),
        [&](grpc::CompletionQueue* cq) {
          return chat_[owner.channel]->PrepareAsyncCreateGroupChat(
              &call->ctx, call->req, cq);
        },
        &call->resp,
        [this, call, g, done](grpc::Status st) {
          if (st.ok()) chats_[g].chat_id = call->resp.chat_id();
          done(client::StatusFromGrpc(st));
        });
  });
}

void Bench::OnPong(Stream* /*stream*/, Clock::time_point at) {
  std::lock_guard<std::mutex> lock(stream_mu_);
  ++streams_connected_;
  last_pong_ = at;
  stream_cv_.notify_all();
}

void Bench::OnStreamDone(Stream* stream, const grpc::Status& status) {
  std::lock_guard<std::mutex> lock(stream_mu_);
  --streams_open_;
  if (!closing_) {
    stream_errors_.Add(status.error_code());
    if (status.error_code() == grpc::RESOURCE_EXHAUSTED) {
      stream_exhausted_ = true;
    }
  }
  if (!closing_) {
    // OnDone follows the last read, so connected() is settled.
    if (stream->connected()) {
      ++streams_dropped_;
    } else {
      ++streams_failed_;
    }
  }
  stream_cv_.notify_all();
}

void Bench::OpenStreams(int n, bool progress) {
  const Clock::time_point start = Clock::now();
  Clock::time_point last_print = start;
  streams_.reserve(streams_.size() + n);
  std::unique_lock<std::mutex> lock(stream_mu_);
  for (int i = 0; i < n; ++i) {
    // Unanswered = opened - connected - failed.
    stream_cv_.wait(lock, [&] {
      return static_cast<int>(streams_.size()) - streams_connected_ -
                 streams_failed_ <
             o_.connect_inflight;
    });
    const int user = i % static_cast<int>(users_.size());
    streams_.push_back(std::make_unique<Stream>(this, i, user));
    ++streams_open_;
    Stream* s = streams_.back().get();
    lock.unlock();
    s->Start(chat_[i % o_.channels].get(), queues_->queue(i),
             users_[user].bearer, o_.batch_frames);
    if (progress && Clock::now() - last_print >= std::chrono::seconds(1)) {
      last_print = Clock::now();
      std::lock_guard<std::mutex> g(stream_mu_);
      std::cerr << absl::StrFormat("[%6.1fs] opened %d connected %d failed %d",
                                   Seconds(last_print - start), i + 1,
                                   streams_connected_, streams_failed_)
                << std::endl;
    }
    lock.lock();
  }
  // Wait for the rest, giving up after 30 s without progress.
  int seen = -1;
  Clock::time_point last_change = Clock::now();
  while (streams_connected_ + streams_failed_ <
         static_cast<int>(streams_.size())) {
    if (streams_connected_ + streams_failed_ != seen) {
      seen = streams_connected_ + streams_failed_;
      last_change = Clock::now();
    } else if (Clock::now() - last_change > std::chrono::seconds(30)) {
      break;
    }
    stream_cv_.wait_for(lock, std::chrono::milliseconds(100));
    if (Clock::now() - last_print >= std::chrono::seconds(1)) {
      last_print = Clock::now();
      if (progress) {
        std::cerr << absl::StrFormat(
                         "[%6.1fs] opened %d connected %d failed %d",
                         Seconds(last_print - start), n, streams_connected_,
                         streams_failed_)
                  << std::endl;
      }
    }
  }
}

void Bench::CloseStreams() {
  {
    std::lock_guard<std::mutex> lock(stream_mu_);
    closing_ = true;
  }
  for (auto& s : streams_) s->Cancel();
  std::unique_lock<std::mutex> lock(stream_mu_);
  stream_cv_.wait_for(lock, std::chrono::seconds(30),
                      [&] { return streams_open_ == 0; });
  const bool all_done = streams_open_ == 0;
  lock.unlock();
  if (all_done) {
    // OnDone may still be returning on a gRPC thread.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    streams_.clear();
  } else {
    for (auto& s : streams_) s.release();  // still in use by gRPC: leak
    streams_.clear();
  }
}

RunState* Bench::FindSlot(const std::string& id, int64_t* k) {
  // "<bench id>s<step>-<k>"
  const std::string head = absl::StrCat(bench_id_, "s");
  int step = 0;
  const size_t dash = id.find('-');
  if (!absl::StartsWith(id, head) || dash == std::string::npos ||
      !absl::SimpleAtoi(id.substr(head.size(), dash - head.size()), &step) ||
      !absl::SimpleAtoi(id.substr(dash + 1), k) || step < 0 ||
      step >= run_count_.load(std::memory_order_acquire)) {
    return nullptr;
  }
  RunState* run = runs_[step].get();
  if (*k < 0 || *k >= run->n) return nullptr;
  return run;
}

void Bench::OnMessage(Stream* stream, const v1::Message& message,
                      Clock::time_point at) {
  if (message.sender_user_id() == users_[stream->user()].user_id) return;
  int64_t k = 0;
  RunState* run = FindSlot(message.client_message_id(), &k);
  if (run == nullptr) {
    stray_++;
    return;
  }
  Slot& slot = run->slots[k];
  if (message.chat_id() != chats_[slot.chat].chat_id) {
    run->misrouted++;
    return;
  }
  if (slot.deliveries.fetch_add(1) >= run->expected) {
    run->duplicates++;
    return;
  }
  run->deliveries++;
  const int64_t us =
      std::chrono::duration_cast<std::chrono::microseconds>(
          at - (run->t0 + std::chrono::nanoseconds(slot.scheduled_ns)))
          .count();
  run->live.Add(us);
  if (slot.measured) {
    std::lock_guard<std::mutex> lock(run->mu);
    run->delivery_us.push_back(static_cast<double>(us));
  }
}

void Bench::OnSendResult(const v1::SendResult& result, Clock::time_point at) {
  int64_t k = 0;
  RunState* run = FindSlot(result.client_message_id(), &k);
  if (run == nullptr) {
    stray_++;
    return;
  }
  // Only a slot still waiting takes an answer (a second one is a bug
  // that shows as a duplicate).
  int8_t issued = kIssued;
  if (!run->slots[k].outcome.compare_exchange_strong(issued, kPending)) {
    run->duplicates++;
    return;
  }
  Answered(run, k, static_cast<grpc::StatusCode>(result.code()), at);
}

void Bench::Answered(RunState* run, int64_t k, grpc::StatusCode code,
                     Clock::time_point at) {
  Slot& s = run->slots[k];
  if (code == grpc::StatusCode::OK) {
    s.ack_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(at - run->t0)
            .count();
    s.outcome = kAcked;
    run->acked++;
  } else {
    s.outcome = kFailed;
    run->failed++;
    run->errors.Add(code);
  }
  run->inflight--;
}

void Bench::Issue(RunState* run, int64_t k) {
  Slot& slot = run->slots[k];
  const BenchUser& u = users_[slot.sender];
  const std::string id = absl::StrCat(run->prefix, k);
  if (o_.send_via == "stream") {
    v1::ClientFrame frame;
    v1::SendMessageRequest* req = frame.mutable_send();
    req->set_chat_id(chats_[slot.chat].chat_id);
    req->set_client_message_id(id);
    req->set_text(absl::StrCat("parley-bench message ", id));
    slot.outcome = kIssued;
    run->inflight++;
    run->sent++;
    // Streams are opened in user order, one per user, before any load.
    if (!streams_[slot.sender]->Write(std::move(frame))) {
      int8_t issued = kIssued;
      if (slot.outcome.compare_exchange_strong(issued, kPending)) {
        Answered(run, k, grpc::StatusCode::UNAVAILABLE, Clock::now());
      }
    }
    return;
  }
  using Call = UnaryCall<v1::SendMessageRequest, v1::Message>;
  auto* call = new Call;
  call->ctx.AddMetadata("authorization", u.bearer);
  call->ctx.set_deadline(std::chrono::system_clock::now() + kSendTimeout);
  call->req.set_chat_id(chats_[slot.chat].chat_id);
  call->req.set_client_message_id(id);
  call->req.set_text(absl::StrCat("parley-bench message ", id));
  slot.outcome = kIssued;
  run->inflight++;
  run->sent++;
  CallOnQueue(
      queues_->queue(static_cast<int>(k)),
      [&](grpc::CompletionQueue* cq) {
        return chat_[u.channel]->PrepareAsyncSendMessage(&call->ctx, call->req,
                                                         cq);
      },
      &call->resp,
      [run, k, call](grpc::Status st) {
        Answered(run, k, st.error_code(), Clock::now());
        delete call;
      });
}

void Bench::SenderLoop(RunState* run, int thread, int threads) {
  const auto late =
      std::chrono::microseconds(static_cast<int64_t>(o_.late_ms * 1000));
  // Waking for every send cost the benchmark, which shares the machine
  // with what it measures, a context switch per send: a sender wakes at
  // most once per tick and issues what is due. A send issued late by the
  // tick still counts its latency from its own slot.
  const std::chrono::microseconds tick(o_.send_tick_us);
  Clock::time_point woke = Clock::now();
  for (int64_t k = thread; k < run->n; k += threads) {
    Slot& slot = run->slots[k];
    const Clock::time_point when =
        run->t0 + std::chrono::nanoseconds(slot.scheduled_ns);
    if (when > Clock::now()) {
      std::this_thread::sleep_until(std::max(when, woke + tick));
      woke = Clock::now();
    }
    if (Clock::now() - when > late || run->inflight >= o_.max_inflight) {
      slot.outcome = kLate;
      run->late++;
      continue;
    }
    Issue(run, k);
  }
}

void Bench::ProgressLoop(RunState* run, Clock::time_point start) {
  std::vector<int64_t> before = run->live.Snapshot();
  auto next = Clock::now() + std::chrono::seconds(1);
  while (!run->finished) {
    std::this_thread::sleep_until(next);
    next += std::chrono::seconds(1);
    if (run->finished) break;
    std::vector<int64_t> after = run->live.Snapshot();
    const double p99 = LiveHistogram::Percentile(before, after, 99);
    before = std::move(after);
    std::cerr << absl::StrFormat(
                     "[%6.1fs] rate %.0f/s sent %d acked %d delivered %d "
                     "errors %d p99 %s",
                     Seconds(Clock::now() - start), run->rate, run->sent.load(),
                     run->acked.load(), run->deliveries.load(),
                     run->failed.load() + run->late.load(),
                     p99 < 0 ? std::string("-")
                             : absl::StrFormat("%.1fms", p99))
              << std::endl;
  }
}

StepResult Bench::RunLoad(double rate, int step) {
  auto run = std::make_unique<RunState>();
  run->step = step;
  run->prefix = absl::StrCat(bench_id_, "s", step, "-");
  run->rate = rate;
  run->expected = group_size_ - 1;
  const double total_s = o_.warmup + o_.duration;
  run->n =
      std::max<int64_t>(1, static_cast<int64_t>(std::floor(rate * total_s)));
  run->slots = std::make_unique<Slot[]>(run->n);
  const int64_t warmup_ns = static_cast<int64_t>(o_.warmup * 1e9);
  const int chats = static_cast<int>(chats_.size());
  for (int64_t k = 0; k < run->n; ++k) {
    Slot& s = run->slots[k];
    s.scheduled_ns = static_cast<int64_t>(k * 1e9 / rate);
    s.measured = s.scheduled_ns >= warmup_ns;
    if (group_size_ == 2) {
      // Every user sends in turn: each at rate / users, evenly spaced.
      s.sender = static_cast<int32_t>(k % users_.size());
      s.chat = s.sender / 2;
    } else {
      s.chat = static_cast<int32_t>(k % chats);
      const int member = static_cast<int>((k / chats) % group_size_);
      s.sender = s.chat * group_size_ + member;
    }
  }
  RunState* r = run.get();
  runs_[step] = std::move(run);
  run_count_.store(step + 1, std::memory_order_release);

  const Clock::time_point start = Clock::now();
  r->t0 = start + std::chrono::milliseconds(200);
  std::thread progress([&] { ProgressLoop(r, start); });
  std::vector<std::thread> senders;
  for (int t = 0; t < o_.sender_threads; ++t) {
    senders.emplace_back([this, r, t] { SenderLoop(r, t, o_.sender_threads); });
  }
  ProcSampler sampler(targets_, std::chrono::milliseconds(250));
  const Clock::time_point window_start =
      r->t0 + std::chrono::nanoseconds(warmup_ns);
  const Clock::time_point window_end =
      window_start +
      std::chrono::nanoseconds(static_cast<int64_t>(o_.duration * 1e9));
  std::this_thread::sleep_until(window_start);
  sampler.Start();
  const int64_t reads_before = reads_.load();
  const int64_t frames_before = frames_read_.load();
  std::this_thread::sleep_until(window_end);
  sampler.Stop();
  const int64_t window_reads = reads_.load() - reads_before;
  const int64_t window_frames = frames_read_.load() - frames_before;
  for (auto& t : senders) t.join();

  // Drain: acks and deliveries still on their way.
  const int64_t dropped_before = stream_errors_.Total();
  const Clock::time_point drain_end =
      Clock::now() +
      std::chrono::nanoseconds(static_cast<int64_t>(o_.drain * 1e9));
  while (Clock::now() < drain_end) {
    if (r->inflight == 0 && r->deliveries >= r->acked * r->expected) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // Sends still in flight end by their deadline; wait for them so that no
  // callback outlives the run.
  const Clock::time_point calls_end =
      Clock::now() + kSendTimeout + std::chrono::seconds(2);
  while (r->inflight > 0 && Clock::now() < calls_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // A stream send has no deadline of its own: one still unanswered failed.
  for (int64_t k = 0; k < r->n; ++k) {
    int8_t issued = kIssued;
    if (r->slots[k].outcome.compare_exchange_strong(issued, kPending)) {
      Answered(r, k, grpc::StatusCode::DEADLINE_EXCEEDED, Clock::now());
    }
  }
  r->finished = true;
  progress.join();

  StepResult res;
  res.target_rate = rate;
  res.duration = o_.duration;
  res.scheduled = r->n;
  res.sent = r->sent;
  res.acked = r->acked;
  res.failed = r->failed;
  res.late = r->late;
  res.duplicates = r->duplicates;
  res.misrouted = r->misrouted;
  res.stream_errors = stream_errors_.Total() - dropped_before;
  res.resource_exhausted = r->errors.Get(grpc::RESOURCE_EXHAUSTED) > 0;
  std::vector<double> ack_us;
  for (int64_t k = 0; k < r->n; ++k) {
    const Slot& s = r->slots[k];
    const int64_t ack = s.ack_ns.load();
    const int32_t got = std::min(s.deliveries.load(), r->expected);
    if (ack >= 0 && got < r->expected) ++res.undelivered;
    if (!s.measured) continue;
    ++res.measured;
    if (ack >= 0) {
      ++res.measured_acked;
      ack_us.push_back((ack - s.scheduled_ns) / 1000.0);
    }
    if (got == r->expected) ++res.delivered_messages;
    res.deliveries += got;
  }
  {
    std::lock_guard<std::mutex> lock(r->mu);
    res.delivery = Summarize(r->delivery_us);
  }
  res.ack = Summarize(std::move(ack_us));
  res.errors_text = r->errors.Describe();
  res.errors_json = r->errors.Json();
  res.usage = sampler.Usage();
  res.delivered_per_s = res.delivered_messages / o_.duration;
  res.deliveries_per_s = res.deliveries / o_.duration;
  res.persisted_per_s = res.measured_acked / o_.duration;
  res.frames_per_read =
      window_reads > 0 ? static_cast<double>(window_frames) / window_reads : 0;
  res.errors = res.failed + res.late + res.undelivered + res.misrouted +
               res.stream_errors;
  return res;
}

void Bench::MaybeRunPgbench(int chats) {
  if (!o_.pgbench) return;
  std::string url = o_.pg_url;
  if (url.empty()) {
    if (gateway_port_ == 0) {
      pgbench_error_ = "no --pg_url and the gateway is not local";
      return;
    }
    url = absl::StrCat("postgresql://postgres@127.0.0.1:", gateway_port_ + 4,
                       "/parley");
  }
  std::cerr << "pgbench: " << o_.pgbench_seconds
            << " s of the per-message transaction, 8 clients ..." << std::endl;
  absl::StatusOr<double> tps =
      RunPgbench(url, o_.pgbench_seconds, std::max(1, chats));
  if (tps.ok()) {
    pgbench_tps_ = *tps;
  } else {
    pgbench_error_ = std::string(tps.status().message());
    std::cerr << "pgbench failed: " << pgbench_error_ << std::endl;
  }
}

void Bench::PrintServices(const std::vector<ProcUsage>& usage) const {
  if (usage.empty()) return;
  std::printf("\n%-10s %8s %14s %6s\n", "service", "cpu %", "peak RSS MiB",
              "procs");
  for (const ProcUsage& u : usage) {
    std::printf("%-10s %8.1f %14.1f %6d\n", u.name.c_str(), u.cpu_percent,
                u.peak_rss_kib / 1024.0, u.processes);
  }
}

std::string Bench::ServicesJson(const std::vector<ProcUsage>& usage) const {
  std::vector<std::string> parts;
  for (const ProcUsage& u : usage) {
    parts.push_back(
        absl::StrFormat("%s:{\"cpu_percent\":%.1f,\"peak_rss_kib\":%d}",
                        JsonString(u.name), u.cpu_percent, u.peak_rss_kib));
  }
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

std::string Bench::PgbenchJson(double persisted_per_s) const {
  if (pgbench_tps_ <= 0) return "";
  return absl::StrFormat(",\"pgbench_ceiling_per_s\":%.1f,\"ratio\":%.3f",
                         pgbench_tps_, persisted_per_s / pgbench_tps_);
}

void Bench::PrintLoad(const StepResult& r) const {
  std::printf("%-10s %10s %10s %10s %8s %8s\n", "sends", "scheduled", "issued",
              "acked", "late", "failed");
  std::printf("%-10s %10lld %10lld %10lld %8lld %8lld\n", "",
              static_cast<long long>(r.scheduled),
              static_cast<long long>(r.sent), static_cast<long long>(r.acked),
              static_cast<long long>(r.late), static_cast<long long>(r.failed));
  std::printf("\n");
  PrintLatencyTable({{"send->ack", r.ack}, {"send->delivery", r.delivery}});
  std::printf("(latency counts from each message's scheduled send time)\n");
  std::printf("\ndelivered      %.1f msg/s (target %.1f)\n", r.delivered_per_s,
              r.target_rate);
  if (group_size_ > 2) {
    std::printf("deliveries     %.1f/s (%d recipients per message)\n",
                r.deliveries_per_s, group_size_ - 1);
  }
  std::printf("persisted      %.1f msg/s (acknowledged sends)\n",
              r.persisted_per_s);
  std::printf("frames/read    %.2f (--batch_frames %d)\n", r.frames_per_read,
              o_.batch_frames);
  if (pgbench_tps_ > 0) {
    std::printf(
        "pgbench        %.1f tx/s ceiling; parley/ceiling %.3f\n"
        "               (a ceiling only while Parley is saturated: "
        "see the ramp scenario)\n",
        pgbench_tps_, r.persisted_per_s / pgbench_tps_);
  } else if (!pgbench_error_.empty()) {
    std::printf("pgbench        failed\n");
  }
  std::printf("acked but not delivered: %lld\n",
              static_cast<long long>(r.undelivered));
  std::printf("send errors by code: %s\n", r.errors_text.c_str());
  if (r.stream_errors > 0 || r.misrouted > 0 || r.duplicates > 0) {
    std::printf("streams ended: %lld, misrouted: %lld, duplicates: %lld\n",
                static_cast<long long>(r.stream_errors),
                static_cast<long long>(r.misrouted),
                static_cast<long long>(r.duplicates));
  }
  std::printf("errors: %lld of %lld scheduled (%.2f%%)\n",
              static_cast<long long>(r.errors),
              static_cast<long long>(r.scheduled), 100 * r.ErrorRatio());
  PrintServices(r.usage);
}

std::string Bench::LoadJson(const StepResult& r) const {
  return absl::StrFormat(
      "\"target_rate\":%.1f,\"duration_s\":%.1f,\"delivered_per_s\":%.1f,"
      "\"deliveries_per_s\":%.1f,\"persisted_per_s\":%.1f,"
      "\"ack_p50_ms\":%.3f,\"ack_p90_ms\":%.3f,\"ack_p99_ms\":%.3f,"
      "\"ack_p999_ms\":%.3f,\"ack_max_ms\":%.3f,"
      "\"delivery_p50_ms\":%.3f,\"delivery_p90_ms\":%.3f,"
      "\"delivery_p99_ms\":%.3f,\"delivery_p999_ms\":%.3f,"
      "\"delivery_max_ms\":%.3f,\"scheduled\":%d,\"sent\":%d,\"acked\":%d,"
      "\"late\":%d,\"failed\":%d,\"undelivered\":%d,\"errors\":%d,"
      "\"errors_by_code\":%s,\"frames_per_read\":%.3f",
      r.target_rate, r.duration, r.delivered_per_s, r.deliveries_per_s,
      r.persisted_per_s, r.ack.p50, r.ack.p90, r.ack.p99, r.ack.p999, r.ack.max,
      r.delivery.p50, r.delivery.p90, r.delivery.p99, r.delivery.p999,
      r.delivery.max, r.scheduled, r.sent, r.acked, r.late, r.failed,
      r.undelivered, r.errors, r.errors_json, r.frames_per_read);
}

int Bench::RunDirectOrGroup() {
  const bool group = o_.scenario == "group";
  const int users = group ? o_.group_size * o_.groups : o_.clients;
  if (absl::Status s = RegisterUsers(users); !s.ok()) {
    std::cerr << client::FormatError(s) << " (registering users)" << std::endl;
    return 1;
  }
  absl::Status s = group ? CreateGroups() : CreateDirectChats();
  if (!s.ok()) {
    std::cerr << client::FormatError(s) << " (creating chats)" << std::endl;
    if (s.code() == absl::StatusCode::kResourceExhausted) {
      std::cerr << kLimitHint << std::endl;
    }
    return 1;
  }
  OpenStreams(users, false);
  if (streams_connected_ < users) {
    std::cerr << "only " << streams_connected_ << " of " << users
              << " Connect streams were answered: " << stream_errors_.Describe()
              << std::endl;
    if (stream_exhausted_) std::cerr << kStreamHint << std::endl;
    return 1;
  }
  std::cerr << users << " streams connected" << std::endl;
  MaybeRunPgbench(static_cast<int>(chats_.size()));
  StepResult r = RunLoad(o_.rate, 0);
  if (r.resource_exhausted) std::cerr << kLimitHint << std::endl;

  std::printf(
      "parley-bench %s via %s: %d users in %zu %s chats, target %.1f msg/s "
      "for %.1f s (+%.1f s warmup)\n\n",
      o_.scenario.c_str(), o_.gateway.c_str(), users, chats_.size(),
      group ? "group" : "direct", o_.rate, o_.duration, o_.warmup);
  PrintLoad(r);
  for (const std::string& n : notes_) std::printf("note: %s\n", n.c_str());
  if (o_.json) {
    std::printf(
        "%s\n",
        absl::StrCat("{\"scenario\":", JsonString(o_.scenario),
                     ",\"gateway\":", JsonString(o_.gateway),
                     ",\"send_via\":", JsonString(o_.send_via),
                     ",\"users\":", users, ",\"chats\":", chats_.size(),
                     group ? absl::StrCat(",\"group_size\":", o_.group_size)
                           : std::string(),
                     ",", LoadJson(r), PgbenchJson(r.persisted_per_s),
                     ",\"services\":", ServicesJson(r.usage), "}")
            .c_str());
  }
  std::fflush(stdout);
  if (r.deliveries == 0) return 1;
  return r.ErrorRatio() > o_.max_error_ratio ? 1 : 0;
}

int Bench::RunRamp() {
  if (absl::Status s = RegisterUsers(o_.clients); !s.ok()) {
    std::cerr << client::FormatError(s) << " (registering users)" << std::endl;
    return 1;
  }
  if (absl::Status s = CreateDirectChats(); !s.ok()) {
    std::cerr << client::FormatError(s) << " (creating chats)" << std::endl;
    return 1;
  }
  OpenStreams(o_.clients, false);
  if (streams_connected_ < o_.clients) {
    std::cerr << "only " << streams_connected_ << " of " << o_.clients
              << " Connect streams were answered: " << stream_errors_.Describe()
              << std::endl;
    if (stream_exhausted_) std::cerr << kStreamHint << std::endl;
    return 1;
  }
  MaybeRunPgbench(static_cast<int>(chats_.size()));
  std::vector<StepResult> steps;
  std::vector<bool> passed;
  double best = 0, lowest_fail = 0;
  double rate = o_.rate;
  const int max_steps = std::min(o_.ramp_steps, kMaxRuns);
  for (int i = 0; i < max_steps; ++i) {
    std::cerr << absl::StrFormat("ramp step %d: %.1f msg/s", i + 1, rate)
              << std::endl;
    StepResult r = RunLoad(rate, i);
    if (r.resource_exhausted) std::cerr << kLimitHint << std::endl;
    const bool pass = r.delivery.count > 0 &&
                      r.delivery.p99 < kRampP99LimitMs &&
                      r.delivered_per_s >= 0.95 * rate &&
                      r.ErrorRatio() <= o_.max_error_ratio;
    steps.push_back(std::move(r));
    passed.push_back(pass);
    if (pass) {
      best = std::max(best, rate);
    } else {
      lowest_fail = lowest_fail == 0 ? rate : std::min(lowest_fail, rate);
    }
    if (lowest_fail == 0) {
      rate *= 2;
    } else if (best == 0) {
      rate /= 2;
    } else {
      if (lowest_fail - best < 0.05 * best) break;
      rate = (best + lowest_fail) / 2;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }

  std::printf(
      "parley-bench ramp via %s: %d users in %zu direct chats, %.1f s per "
      "step (+%.1f s warmup)\n\n",
      o_.gateway.c_str(), o_.clients, chats_.size(), o_.duration, o_.warmup);
  std::printf("%4s %10s %10s %9s %9s %9s %9s %7s %5s\n", "step", "target/s",
              "deliv/s", "ack p99", "del p50", "del p99", "del max", "errors",
              "pass");
  for (size_t i = 0; i < steps.size(); ++i) {
    const StepResult& r = steps[i];
    std::printf("%4zu %10.1f %10.1f %9.2f %9.2f %9.2f %9.2f %7lld %5s\n", i + 1,
                r.target_rate, r.delivered_per_s, r.ack.p99, r.delivery.p50,
                r.delivery.p99, r.delivery.max,
                static_cast<long long>(r.errors), passed[i] ? "yes" : "no");
  }
  std::printf(
      "\nhighest rate with p99 send->delivery < %.0f ms and delivered >= 95%% "
      "of target: %.1f msg/s%s\n",
      kRampP99LimitMs, best, best == 0 ? " (no step passed)" : "");
  // The details of the best step.
  const StepResult* best_step = nullptr;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (passed[i] && steps[i].target_rate == best) best_step = &steps[i];
  }
  if (best_step == nullptr) best_step = &steps.front();
  PrintServices(best_step->usage);
  if (pgbench_tps_ > 0) {
    std::printf(
        "pgbench        %.1f tx/s ceiling; best step persisted %.1f "
        "msg/s (ratio %.3f)\n",
        pgbench_tps_, best_step->persisted_per_s,
        best_step->persisted_per_s / pgbench_tps_);
  }
  for (const std::string& n : notes_) std::printf("note: %s\n", n.c_str());
  if (o_.json) {
    std::vector<std::string> rows;
    for (size_t i = 0; i < steps.size(); ++i) {
      rows.push_back(absl::StrCat("{", LoadJson(steps[i]), ",\"pass\":",
                                  passed[i] ? "true" : "false", "}"));
    }
    std::printf(
        "%s\n",
        absl::StrCat(
            "{\"scenario\":\"ramp\",\"gateway\":", JsonString(o_.gateway),
            ",\"send_via\":", JsonString(o_.send_via),
            ",\"users\":", o_.clients,
            absl::StrFormat(",\"max_rate_p99_under_100ms\":%.1f,", best),
            LoadJson(*best_step), PgbenchJson(best_step->persisted_per_s),
            ",\"services\":", ServicesJson(best_step->usage), ",\"steps\":[",
            absl::StrJoin(rows, ","), "]}")
            .c_str());
  }
  std::fflush(stdout);
  return best > 0 ? 0 : 1;
}

int Bench::RunConnections() {
  const int users = o_.users > 0 ? o_.users : std::max(1, o_.clients / 100);
  if (absl::Status s = RegisterUsers(users); !s.ok()) {
    std::cerr << client::FormatError(s) << " (registering users)" << std::endl;
    return 1;
  }
  const int gw = gateway_index();
  const int64_t rss_before = gw >= 0 ? ProcessRssKib(targets_[gw].pid) : -1;
  const Clock::time_point start = Clock::now();
  OpenStreams(o_.clients, true);
  int connected, failed;
  Clock::time_point last_pong;
  {
    std::lock_guard<std::mutex> lock(stream_mu_);
    connected = streams_connected_;
    failed = streams_failed_;
    last_pong = last_pong_;
  }
  const double connect_s = connected > 0 ? Seconds(last_pong - start) : 0;
  const double connect_per_s = connect_s > 0 ? connected / connect_s : 0;
  std::cerr << absl::StrFormat("holding %d streams for %.1f s", connected,
                               o_.duration)
            << std::endl;
  ProcSampler sampler(targets_, std::chrono::milliseconds(250));
  sampler.Start();
  std::this_thread::sleep_for(
      std::chrono::nanoseconds(static_cast<int64_t>(o_.duration * 1e9)));
  sampler.Stop();
  const int64_t rss_after = gw >= 0 ? ProcessRssKib(targets_[gw].pid) : -1;
  int held, dropped;
  {
    std::lock_guard<std::mutex> lock(stream_mu_);
    held = streams_open_;
    dropped = streams_dropped_;
  }
  const std::string errors = stream_errors_.Describe();
  const std::string errors_json = stream_errors_.Json();
  const int64_t error_count = stream_errors_.Total();
  CloseStreams();
  const double per_conn =
      rss_before >= 0 && rss_after >= 0 && connected > 0
          ? static_cast<double>(rss_after - rss_before) / connected
          : -1;
  const std::vector<ProcUsage> usage = sampler.Usage();

  std::printf(
      "parley-bench connections via %s: %d streams over %d users and %d "
      "channels\n\n",
      o_.gateway.c_str(), o_.clients, users, o_.channels);
  std::printf("connected      %d of %d (failed %d) in %.2f s: %.1f streams/s\n",
              connected, o_.clients, failed, connect_s, connect_per_s);
  std::printf("held           %d after %.1f s (dropped while held: %d)\n", held,
              o_.duration, dropped);
  std::printf("stream errors  %s\n", errors.c_str());
  if (rss_before >= 0) {
    std::printf(
        "gateway RSS    before %.1f MiB, after %.1f MiB, %.2f KiB per "
        "connection\n",
        rss_before / 1024.0, rss_after / 1024.0, per_conn);
  }
  PrintServices(usage);
  std::printf(
      "note: the RSS delta leaves out memory the gateway had freed but kept "
      "from earlier load and now reused; restart the gateway first for a "
      "clean figure\n");
  for (const std::string& n : notes_) std::printf("note: %s\n", n.c_str());
  if (stream_exhausted_) std::cerr << kStreamHint << std::endl;
  if (o_.json) {
    std::printf(
        "%s\n",
        absl::StrCat(
            "{\"scenario\":\"connections\",\"gateway\":",
            JsonString(o_.gateway), ",\"target_rate\":0,\"users\":", users,
            ",\"channels\":", o_.channels, ",\"requested\":", o_.clients,
            ",\"connections\":", connected, ",\"held\":", held,
            ",\"failed\":", failed,
            absl::StrFormat(",\"connect_seconds\":%.3f,\"connect_per_s\":%.1f,"
                            "\"gateway_rss_before_kib\":%d,"
                            "\"gateway_rss_after_kib\":%d,"
                            "\"rss_per_connection_kib\":%.2f",
                            connect_s, connect_per_s, rss_before, rss_after,
                            per_conn),
            ",\"delivered_per_s\":0,\"ack_p50_ms\":0,\"ack_p99_ms\":0,"
            "\"delivery_p50_ms\":0,\"delivery_p99_ms\":0,\"delivery_max_ms\":0",
            ",\"errors\":", error_count, ",\"errors_by_code\":", errors_json,
            ",\"services\":", ServicesJson(usage), "}")
            .c_str());
  }
  std::fflush(stdout);
  if (connected == 0) return 1;
  return static_cast<double>(error_count) / o_.clients > o_.max_error_ratio ? 1
                                                                            : 0;
}

int Bench::Run() {
  if (o_.scenario == "connections") return RunConnections();
  if (o_.scenario == "ramp") return RunRamp();
  return RunDirectOrGroup();
}

}  // namespace
}  // namespace parley::bench

int main(int argc, char** argv) {
  // As in the services (common/flags.cc): the load generator must not spend
  // its CPU on Abseil's lock-graph bookkeeping inside gRPC.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  parley::bench::Options options;
  bool help = false;
  if (!parley::bench::ParseOptions(argc, argv, &options, &help)) return 2;
  if (help) {
    std::cout << parley::bench::kUsage;
    return 0;
  }
  if (absl::StatusOr<std::vector<parley::bench::WatchTarget>> w =
          parley::bench::ParseWatchList(options.watch);
      !w.ok()) {
    std::cerr << parley::client::FormatError(w.status()) << "\n"
              << parley::bench::kUsage;
    return 2;
  }
  absl::StatusOr<parley::TlsCredentials> tls =
      parley::TlsCredentials::LoadClient(options.tls_ca_file);
  if (!tls.ok()) {
    std::cerr << parley::client::FormatError(tls.status()) << "\n";
    return 2;
  }
  parley::bench::RaiseFileLimit();
  parley::bench::Bench bench(options, *tls);
  return bench.Run();
}
