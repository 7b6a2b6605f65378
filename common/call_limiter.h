// Bounds how many asynchronous calls one caller has in flight; the rest wait
// their turn in order. Keeps a burst (a thousand users going offline at
// once) from landing on another service all at the same moment.
//
//   CallLimiter limiter({.max_in_flight = 16, .max_waiting = 100000});
//   limiter.Run([stub](std::function<void()> done) {
//     CallAsync(..., [done](auto result) { ...; done(); });
//   });
//   // At shutdown: start nothing more (what runs goes on).
//   limiter.Close();
#ifndef PARLEY_COMMON_CALL_LIMITER_H_
#define PARLEY_COMMON_CALL_LIMITER_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

#include "absl/base/thread_annotations.h"

namespace parley {

class CallLimiter {
 public:
  struct Options {
    int max_in_flight = 16;
    // Calls waiting for a slot; more are dropped.
    size_t max_waiting = 100000;
  };
  // A call gets `done`, which it must invoke exactly once when it has
  // finished (on any thread, not before it returns is fine too).
  using Call = std::function<void(std::function<void()> done)>;

  explicit CallLimiter(Options options) : options_(options) {}

  // Starts `call` now, or queues it behind the calls in flight; false when
  // the queue is full or the limiter is closed, and the call was dropped.
  bool Run(Call call);
  // Starts no more calls: Run refuses from now on, and the calls waiting are
  // dropped. Calls in flight go on.
  void Close();

  size_t in_flight() const;
  size_t waiting() const;

 private:
  void Release();

  const Options options_;
  mutable std::mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Call> waiting_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace parley

#endif  // PARLEY_COMMON_CALL_LIMITER_H_
