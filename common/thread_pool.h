// A fixed set of worker threads behind a bounded queue, for blocking work
// (database calls, password hashing) that must never run on a gRPC reactor
// thread.
//
//   parley::ThreadPool pool("db", 8, 10000);
//   if (!pool.TrySubmit([] { ... })) reactor->Finish(Unavailable());
#ifndef PARLEY_COMMON_THREAD_POOL_H_
#define PARLEY_COMMON_THREAD_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace parley {

class ThreadPool {
 public:
  ThreadPool(std::string name, int threads, size_t max_queue);
  ~ThreadPool();  // Shutdown.

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `fn`; false when the queue is full or the pool is stopping.
  bool TrySubmit(std::function<void()> fn);

  size_t queued() const;

  // Refuses new work, runs what is queued and joins the threads. Call it
  // before anything the queued work uses goes away; later calls do
  // nothing. Not concurrently with itself.
  void Shutdown();

 private:
  void Work();

  const std::string name_;
  const size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace parley

#endif  // PARLEY_COMMON_THREAD_POOL_H_
