// Keeps one long-lived streaming call open. Each attempt starts the call on
// a fresh ClientContext and blocks until it ends; between attempts a
// thread of ours waits out a jittered backoff (100 ms, doubling up to
// `max_backoff`, and back to 100 ms after an attempt that received
// anything). Stop cancels the call in flight and joins.
//
//   StreamKeeper keeper("presence", [&](grpc::ClientContext* ctx) {
//     auto ended = std::make_shared<StreamEnd>();
//     StartMyReactor(ctx, ended);   // its OnDone calls ended->Notify(...)
//     return ended->Wait();
//   });
//   keeper.Start();
#ifndef PARLEY_COMMON_STREAM_KEEPER_H_
#define PARLEY_COMMON_STREAM_KEEPER_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"

namespace parley {

// How one attempt ended.
struct StreamEnded {
  grpc::Status status;
  // The call received at least one message.
  bool received = false;
};

// The end of one call, signalled by its reactor's OnDone and awaited by the
// attempt. Shared, so that the reactor may signal and then return safely.
class StreamEnd {
 public:
  void Notify(const grpc::Status& status, bool received) {
    std::lock_guard<std::mutex> lock(mu_);
    ended_ = StreamEnded{status, received};
    done_ = true;
    cv_.notify_all();
  }
  StreamEnded Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
    return ended_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  StreamEnded ended_ ABSL_GUARDED_BY(mu_);
};

class StreamKeeper {
 public:
  // Starts the call on `ctx` and returns when it has ended.
  using Attempt = std::function<StreamEnded(grpc::ClientContext* ctx)>;

  StreamKeeper(std::string name, Attempt attempt,
               std::chrono::milliseconds max_backoff = std::chrono::seconds(1));
  ~StreamKeeper();

  void Start();
  void Stop();

 private:
  void Run();

  const std::string name_;
  const Attempt attempt_;
  const std::chrono::milliseconds max_backoff_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* active_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread thread_;
};

}  // namespace parley

#endif  // PARLEY_COMMON_STREAM_KEEPER_H_
