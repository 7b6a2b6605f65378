// parley-threading-bench: what gRPC's threading costs per stream message.
//
// A child process serves ChatService.Connect and answers each ping frame
// with a pong, the way the gateway reads a client frame and writes one back:
// either on the callback API (reactors run on gRPC's own threads) or on
// completion queues, each drained by one thread of the child's own. This
// process drives it from one completion-queue thread at a fixed rate over
// many streams, and reads the child's CPU time and context switches from
// /proc over the measured window. No database or other service takes part:
// the figures are gRPC's and the kernel's alone.
//
// The mixed servers serve Connect on one queue thread as well, beside an idle
// service on another API: "cq+callback" beside gRPC's standard health service
// (callback API in gRPC 1.51), "cq+sync" beside server reflection (sync API);
// or after one call of their own at start-up: "cq+callback-call" through the
// callback API, "cq+sync-call" through the sync one. They show what a process
// converted only in part to completion queues pays.
//
//   parley-threading-bench              # callback, 1 and 2 cq threads, mixed
//   parley-threading-bench --api cq --cq_threads 1 --rate 20000 --json
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "parley/v1/parley.grpc.pb.h"
#include "tests/bench/bench_util.h"
#include "tests/bench/proc_sampler.h"

namespace parley::bench {
namespace {

namespace v1 = ::parley::v1;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string api = "all";  // callback, cq, mixed or all
  std::vector<int> cq_threads = {1, 2};
  double rate = 5000;
  double duration = 5;
  double warmup = 1;
  int streams = 200;
  int channels = 64;
  bool json = false;
};

// ---------------------------------------------------------------------------
// The child: a Connect server answering pings.

// One stream on the callback API: one write in flight, the rest queued.
class CallbackStream final
    : public grpc::ServerBidiReactor<v1::ClientFrame, v1::ServerFrame> {
 public:
  CallbackStream() { StartRead(&in_); }

  void OnReadDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ok) {
      reads_done_ = true;
      MaybeFinishLocked();
      return;
    }
    queue_.emplace_back();
    queue_.back().mutable_pong()->set_nonce(in_.ping().nonce());
    if (!writing_) {
      writing_ = true;
      StartWrite(&queue_.front());
    }
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.pop_front();
    writing_ = false;
    if (ok && !queue_.empty()) {
      writing_ = true;
      StartWrite(&queue_.front());
      return;
    }
    if (!ok) reads_done_ = true;
    MaybeFinishLocked();
  }
  void OnDone() override { delete this; }

 private:
  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reads_done_ && !writing_ && !finished_) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }

  std::mutex mu_;
  v1::ClientFrame in_;  // reads are one at a time
  std::deque<v1::ServerFrame> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

class CallbackService final : public v1::ChatService::CallbackService {
  grpc::ServerBidiReactor<v1::ClientFrame, v1::ServerFrame>* Connect(
      grpc::CallbackServerContext* /*ctx*/) override {
    return new CallbackStream();
  }
};

// One stream on a completion queue. Every event of the call arrives on the
// queue's one thread, so it needs no lock.
class QueueStream {
 public:
  struct Tag {
    QueueStream* stream;
    enum Kind { kNew, kRead, kWrite, kFinish } kind;
  };

  QueueStream(v1::ChatService::AsyncService* service,
              grpc::ServerCompletionQueue* cq)
      : service_(service), cq_(cq), rw_(&ctx_) {
    service_->RequestConnect(&ctx_, &rw_, cq_, cq_, &tags_[Tag::kNew]);
  }

  void On(Tag::Kind kind, bool ok) {
    switch (kind) {
      case Tag::kNew:
        if (!ok) {  // the server is shutting down
          delete this;
          return;
        }
        new QueueStream(service_, cq_);  // the next call's request
        Read();
        return;
      case Tag::kRead:
        reading_ = false;
        if (!ok) {
          reads_done_ = true;
          MaybeFinish();
          return;
        }
        queue_.emplace_back();
        queue_.back().mutable_pong()->set_nonce(in_.ping().nonce());
        if (!writing_) Write();
        Read();
        return;
      case Tag::kWrite:
        queue_.pop_front();
        writing_ = false;
        if (ok && !queue_.empty()) {
          Write();
          return;
        }
        if (!ok) reads_done_ = true;
        MaybeFinish();
        return;
      case Tag::kFinish:  // nothing else is outstanding by now
        delete this;
        return;
    }
  }

 private:
  void Read() {
    reading_ = true;
    rw_.Read(&in_, &tags_[Tag::kRead]);
  }
  void Write() {
    writing_ = true;
    rw_.Write(queue_.front(), &tags_[Tag::kWrite]);
  }
  void MaybeFinish() {
    if (reads_done_ && !reading_ && !writing_ && !finishing_) {
      finishing_ = true;
      rw_.Finish(grpc::Status::OK, &tags_[Tag::kFinish]);
    }
  }

  v1::ChatService::AsyncService* const service_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncReaderWriter<v1::ServerFrame, v1::ClientFrame> rw_;
  Tag tags_[4] = {{this, Tag::kNew},
                  {this, Tag::kRead},
                  {this, Tag::kWrite},
                  {this, Tag::kFinish}};
  v1::ClientFrame in_;
  std::deque<v1::ServerFrame> queue_;
  bool reading_ = false, writing_ = false, reads_done_ = false,
       finishing_ = false;
};

// One unary call from the server process to itself, through the callback
// API or the sync one, as a service makes a call at start-up and then none.
// Nothing answers it (ListChats is registered but never requested), so it
// ends at its deadline. Returns the stub: its channel stays open, as a
// service's channels do (gRPC keeps its callback threads while a channel
// that used them is open).
std::unique_ptr<v1::ChatService::Stub> CallOnce(int port, bool callback_api) {
  auto stub = v1::ChatService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(100));
  v1::ListChatsRequest request;
  v1::ListChatsResponse response;
  if (!callback_api) {
    stub->ListChats(&ctx, request, &response);
    return stub;
  }
  std::promise<void> done;
  stub->async()->ListChats(&ctx, &request, &response,
                           [&](grpc::Status) { done.set_value(); });
  done.get_future().wait();
  return stub;
}

// Serves until killed; prints "port N" on stdout once listening. `api` is
// callback, cq, cq+callback, cq+sync, cq+callback-call or cq+sync-call.
int Serve(const std::string& api, int cq_threads) {
  // Both before the builder: it takes its plugins when constructed.
  if (api == "cq+callback") grpc::EnableDefaultHealthCheckService(true);
  if (api == "cq+sync") {
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  }
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  CallbackService callback_service;
  v1::ChatService::AsyncService queue_service;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
  if (api == "callback") {
    builder.RegisterService(&callback_service);
  } else {
    builder.RegisterService(&queue_service);
    for (int i = 0; i < cq_threads; ++i) {
      cqs.push_back(builder.AddCompletionQueue());
    }
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) return 1;
  std::unique_ptr<v1::ChatService::Stub> caller;
  if (api == "cq+callback-call" || api == "cq+sync-call") {
    caller = CallOnce(port, api == "cq+callback-call");
  }
  std::printf("port %d\n", port);
  std::fflush(stdout);
  if (cqs.empty()) {
    server->Wait();
    return 0;
  }
  std::vector<std::thread> threads;
  for (auto& cq : cqs) {
    grpc::ServerCompletionQueue* q = cq.get();
    // Calls waiting to be accepted on this queue; each accepted one asks
    // for the next.
    for (int i = 0; i < 16; ++i) new QueueStream(&queue_service, q);
    threads.emplace_back([q] {
      void* tag;
      bool ok;
      while (q->Next(&tag, &ok)) {
        auto* t = static_cast<QueueStream::Tag*>(tag);
        t->stream->On(t->kind, ok);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return 0;
}

// ---------------------------------------------------------------------------
// The parent: a paced client on one completion-queue thread.

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             Clock::now().time_since_epoch())
      .count();
}

class Pinger {
 public:
  struct Tag {
    Pinger* pinger;
    enum Kind { kStarted, kRead, kWrite } kind;
  };

  Pinger(v1::ChatService::Stub* stub, grpc::CompletionQueue* cq)
      : rw_(stub->AsyncConnect(&ctx_, cq, &tags_[Tag::kStarted])) {}

  // Sends a ping carrying the time it was due; from the pacing thread.
  void Ping(int64_t due_us) {
    v1::ClientFrame f;
    f.mutable_ping()->set_nonce(due_us);
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || reads_done_) return;  // the call is over
    pending_.push_back(std::move(f));
    if (started_ && !writing_) WriteLocked();
  }

  // Cancels the call; its outstanding operations then complete.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    ctx_.TryCancel();
  }

  // Runs on the completion queue's thread. `on_pong` gets each pong's
  // nonce. True when this event left nothing of the call outstanding, which
  // happens once per call.
  template <typename OnPong>
  bool On(Tag::Kind kind, bool ok, OnPong&& on_pong) {
    std::lock_guard<std::mutex> lock(mu_);
    OnLocked(kind, ok, on_pong);
    if (finished_ || !reads_done_ || writing_) return false;
    finished_ = true;
    return true;
  }

 private:
  template <typename OnPong>
  void OnLocked(Tag::Kind kind, bool ok, OnPong& on_pong)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (kind) {
      case Tag::kStarted:
        started_ = ok;
        if (!ok || stopping_) {
          reads_done_ = true;
          return;
        }
        rw_->Read(&in_, &tags_[Tag::kRead]);
        if (!pending_.empty() && !writing_) WriteLocked();
        return;
      case Tag::kRead:
        if (!ok || stopping_) {
          reads_done_ = true;
          return;
        }
        on_pong(in_.pong().nonce());
        rw_->Read(&in_, &tags_[Tag::kRead]);
        return;
      case Tag::kWrite:
        writing_ = false;
        if (ok && !stopping_ && !pending_.empty()) WriteLocked();
        return;
    }
  }

  void WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    writing_ = true;
    out_ = std::move(pending_.front());
    pending_.pop_front();
    rw_->Write(out_, &tags_[Tag::kWrite]);
  }

  grpc::ClientContext ctx_;
  std::unique_ptr<
      grpc::ClientAsyncReaderWriter<v1::ClientFrame, v1::ServerFrame>>
      rw_;
  Tag tags_[3] = {
      {this, Tag::kStarted}, {this, Tag::kRead}, {this, Tag::kWrite}};
  std::mutex mu_;
  v1::ServerFrame in_ ABSL_GUARDED_BY(mu_);
  v1::ClientFrame out_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::ClientFrame> pending_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // On() has said so
};

struct Result {
  std::string api;
  int cq_threads = 0;
  int64_t sent = 0;    // in the measured window
  int64_t echoed = 0;  // of those, answered
  double server_cpu_percent = 0;
  double cpu_us_per_echo = 0;
  double switches_per_echo = 0;
  Summary latency;
  std::string error;
};

// Starts `argv` with its stdout on a pipe; returns its pid and the read end.
bool Spawn(const std::vector<std::string>& argv, pid_t* pid, int* out_fd) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  *pid = fork();
  if (*pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return false;
  }
  if (*pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  *out_fd = fds[0];
  return true;
}

// Reads the child's "port N" line; 0 when it ends without one.
int ReadPort(int fd) {
  std::string line;
  char c;
  while (read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
  absl::string_view rest = line;
  int port = 0;
  if (!absl::ConsumePrefix(&rest, "port ") || !absl::SimpleAtoi(rest, &port)) {
    return 0;
  }
  return port;
}

Result Measure(const Options& o, const std::string& self,
               const std::string& api, int cq_threads) {
  Result r;
  r.api = api;
  r.cq_threads = cq_threads;
  pid_t child = 0;
  int out_fd = -1;
  if (!Spawn({self, "--serve", api, "--cq_threads",
              absl::StrCat(std::max(cq_threads, 1))},
             &child, &out_fd)) {
    r.error = "cannot start the server";
    return r;
  }
  const int port = ReadPort(out_fd);
  close(out_fd);
  if (port == 0) {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    r.error = "the server did not start";
    return r;
  }
  const std::string target = absl::StrCat("127.0.0.1:", port);
  {
    grpc::CompletionQueue cq;
    std::vector<std::unique_ptr<v1::ChatService::Stub>> stubs;
    for (int i = 0; i < o.channels; ++i) {
      grpc::ChannelArguments args;
      // A distinct argument keeps gRPC from sharing one connection.
      args.SetInt("parley.bench.channel", i);
      stubs.push_back(v1::ChatService::NewStub(grpc::CreateCustomChannel(
          target, grpc::InsecureChannelCredentials(), args)));
    }
    std::vector<std::unique_ptr<Pinger>> pingers;
    for (int i = 0; i < o.streams; ++i) {
      pingers.push_back(
          std::make_unique<Pinger>(stubs[i % o.channels].get(), &cq));
    }
    // Paced sends: every millisecond, those that have come due, in turn
    // over the streams; pongs of pings due in [measure_from, end) count.
    const int64_t start = NowUs();
    const int64_t measure_from = start + static_cast<int64_t>(o.warmup * 1e6);
    const int64_t end = measure_from + static_cast<int64_t>(o.duration * 1e6);
    std::mutex mu;
    std::condition_variable answered;
    std::vector<double> latencies;  // guarded by mu
    std::thread poller([&] {
      void* tag;
      bool ok;
      size_t finished = 0;
      while (cq.Next(&tag, &ok)) {
        auto* t = static_cast<Pinger::Tag*>(tag);
        const bool last_event = t->pinger->On(t->kind, ok, [&](int64_t due_us) {
          if (due_us < measure_from || due_us >= end) return;
          std::lock_guard<std::mutex> lock(mu);
          latencies.push_back(static_cast<double>(NowUs() - due_us));
          answered.notify_all();
        });
        // Nothing can start an operation on a finished call, so once every
        // call is finished the queue may shut down.
        if (last_event && ++finished == pingers.size()) cq.Shutdown();
      }
    });

    absl::StatusOr<ProcCounters> before;
    int64_t before_us = 0;
    int64_t sent = 0, sent_in_window = 0;
    size_t next = 0;
    // Sends the pings due by `until` (all of the run's at the end).
    auto send_due = [&](int64_t until) {
      const int64_t due = static_cast<int64_t>(
          static_cast<double>(until - start) * o.rate / 1e6);
      for (; sent < due; ++sent) {
        const int64_t due_us =
            start +
            static_cast<int64_t>(static_cast<double>(sent) * 1e6 / o.rate);
        if (due_us >= measure_from) ++sent_in_window;
        pingers[next++ % pingers.size()]->Ping(due_us);
      }
    };
    for (int64_t now = NowUs(); now < end; now = NowUs()) {
      if (!before.ok() && now >= measure_from) {
        before = ReadProcCounters(child);
        before_us = NowUs();
      }
      send_due(now);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    send_due(end);
    absl::StatusOr<ProcCounters> after = ReadProcCounters(child);
    const int64_t after_us = NowUs();
    r.sent = sent_in_window;
    {
      // The window's answers, or what came of them in 5 s.
      std::unique_lock<std::mutex> lock(mu);
      answered.wait_for(lock, std::chrono::seconds(5), [&] {
        return latencies.size() >= static_cast<size_t>(sent_in_window);
      });
      r.echoed = static_cast<int64_t>(latencies.size());
      r.latency = Summarize(latencies);
    }
    if (before.ok() && after.ok() && r.echoed > 0 && after_us > before_us) {
      const double cpu = after->cpu_seconds - before->cpu_seconds;
      r.server_cpu_percent =
          100 * cpu * 1e6 / static_cast<double>(after_us - before_us);
      r.cpu_us_per_echo = cpu * 1e6 / static_cast<double>(r.echoed);
      r.switches_per_echo = static_cast<double>(after->context_switches -
                                                before->context_switches) /
                            static_cast<double>(r.echoed);
    } else {
      r.error = "cannot read the server's counters";
    }
    // Cancel every call; the poller shuts the queue down once the last one
    // has nothing outstanding, and returns.
    for (auto& p : pingers) p->Stop();
    poller.join();
    pingers.clear();
  }
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  if (r.error.empty() && r.echoed != r.sent) {
    r.error = absl::StrCat(r.sent - r.echoed, " pings unanswered");
  }
  return r;
}

bool ParseOptions(int argc, char** argv, Options* o, std::string* serve) {
  ArgReader args(argc, argv);
  while (args.Next()) {
    const std::string& a = args.name();
    bool ok = true;
    if (a == "--serve") {
      ok = args.Value(
          "callback, cq, cq+callback, cq+sync, cq+callback-call or "
          "cq+sync-call",
          serve);
    } else if (a == "--api") {
      ok = args.Value("callback, cq, mixed or all", &o->api);
      if (ok && o->api != "callback" && o->api != "cq" && o->api != "mixed" &&
          o->api != "all") {
        std::fprintf(
            stderr,
            "error: INVALID_ARGUMENT: --api: callback, cq, mixed or all\n");
        ok = false;
      }
    } else if (a == "--cq_threads") {
      std::string list;
      ok = args.Value("thread counts, e.g. 1,2", &list);
      o->cq_threads.clear();
      for (absl::string_view part : absl::StrSplit(list, ',')) {
        int n = 0;
        if (!absl::SimpleAtoi(part, &n) || n < 1) {
          std::fprintf(stderr,
                       "error: INVALID_ARGUMENT: --cq_threads: whole numbers "
                       ">= 1, comma-separated\n");
          return false;
        }
        o->cq_threads.push_back(n);
      }
    } else if (a == "--rate") {
      ok = args.Number(1, &o->rate);
    } else if (a == "--duration") {
      ok = args.Number(0.1, &o->duration);
    } else if (a == "--warmup") {
      ok = args.Number(0, &o->warmup);
    } else if (a == "--streams") {
      ok = args.Count(1, &o->streams);
    } else if (a == "--channels") {
      ok = args.Count(1, &o->channels);
    } else if (a == "--json") {
      o->json = true;
    } else {
      std::fprintf(
          stderr,
          "usage: parley-threading-bench [--api callback|cq|mixed|all] "
          "[--cq_threads 1,2] [--rate 5000] [--duration 5] [--warmup 1] "
          "[--streams 200] [--channels 64] [--json]\n");
      return false;
    }
    if (!ok) return false;
  }
  return true;
}

int Main(int argc, char** argv) {
  Options o;
  std::string serve;
  if (!ParseOptions(argc, argv, &o, &serve)) return 2;
  if (!serve.empty()) return Serve(serve, o.cq_threads.front());
  signal(SIGPIPE, SIG_IGN);
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return 1;
  self[n] = '\0';

  std::vector<Result> results;
  const bool all = o.api == "all";
  if (all || o.api == "callback") {
    results.push_back(Measure(o, self, "callback", 0));
  }
  if (all || o.api == "cq") {
    for (int threads : o.cq_threads) {
      results.push_back(Measure(o, self, "cq", threads));
    }
  }
  if (all || o.api == "mixed") {
    results.push_back(Measure(o, self, "cq+callback", 1));
    results.push_back(Measure(o, self, "cq+sync", 1));
    results.push_back(Measure(o, self, "cq+callback-call", 1));
    results.push_back(Measure(o, self, "cq+sync-call", 1));
  }
  std::printf(
      "ChatService.Connect ping -> pong, %.0f pings/s over %d streams and "
      "%d connections, %.1f s measured\n\n",
      o.rate, o.streams, o.channels, o.duration);
  std::printf("%-16s %10s %9s %9s %11s %10s %12s %8s %8s\n", "api",
              "cq threads", "sent", "answered", "server CPU%", "us/ping",
              "switches/ping", "p50 ms", "p99 ms");
  bool failed = false;
  std::vector<std::string> json;
  for (const Result& r : results) {
    std::printf("%-16s %10s %9lld %9lld %11.1f %10.1f %12.2f %8.2f %8.2f%s\n",
                r.api.c_str(),
                r.cq_threads > 0 ? absl::StrCat(r.cq_threads).c_str() : "-",
                static_cast<long long>(r.sent),
                static_cast<long long>(r.echoed), r.server_cpu_percent,
                r.cpu_us_per_echo, r.switches_per_echo, r.latency.p50,
                r.latency.p99,
                r.error.empty() ? "" : ("  error: " + r.error).c_str());
    failed = failed || !r.error.empty();
    json.push_back(absl::StrFormat(
        "{\"api\":%s,\"cq_threads\":%d,\"sent\":%d,\"answered\":%d,"
        "\"server_cpu_percent\":%.2f,\"cpu_us_per_ping\":%.2f,"
        "\"switches_per_ping\":%.3f,\"latency\":%s,\"error\":%s}",
        JsonString(r.api), r.cq_threads, r.sent, r.echoed, r.server_cpu_percent,
        r.cpu_us_per_echo, r.switches_per_echo, SummaryJson(r.latency),
        JsonString(r.error)));
  }
  if (o.json) {
    std::printf("{\"rate\":%.1f,\"streams\":%d,\"results\":[%s]}\n", o.rate,
                o.streams, absl::StrJoin(json, ",").c_str());
  }
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace parley::bench

int main(int argc, char** argv) { return parley::bench::Main(argc, argv); }
