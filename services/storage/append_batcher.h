// Group commit for AppendMessage. Concurrent sends are queued on lanes (a
// chat always maps to the same lane) and each lane appends what has queued
// up in one transaction via StorageRepository::AppendMessages, so a burst of
// N sends costs one commit instead of N. While a lane's transaction runs, the
// next batch gathers behind it: batches grow with load and stay at one
// message when idle, adding no delay of their own. A chat's messages take
// seqs in arrival order because one lane handles them one batch at a time.
//
//   AppendBatcher batcher(&repo, &workers, {.lanes = 4, .max_batch = 256});
//   batcher.Submit(&req, deadline, [](absl::StatusOr<ChatEventResult> r) {
//     ...  // runs on a worker thread once the batch committed or failed
//   });
#ifndef PARLEY_SERVICES_STORAGE_APPEND_BATCHER_H_
#define PARLEY_SERVICES_STORAGE_APPEND_BATCHER_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/thread_pool.h"
#include "parley/internal/v1/storage.pb.h"
#include "services/storage/storage_repository.h"

namespace parley::storage {

struct AppendBatcherOptions {
  // Independent transaction streams; chats are spread over them by id.
  int lanes = 1;
  // Most messages one transaction appends, but for a larger SubmitAll.
  size_t max_batch = 256;
  // Most sends waiting per lane; beyond it Submit refuses (UNAVAILABLE).
  size_t max_queue = 20000;
};

class AppendBatcher {
 public:
  using Done = std::function<void(
      absl::StatusOr<::parley::internal::v1::ChatEventResult>)>;

  // Neither is owned. Each busy lane occupies one worker of `workers`.
  AppendBatcher(StorageRepository* repo, ThreadPool* workers,
                AppendBatcherOptions options);
  // Waits until no lane is draining; the workers must still run (or have
  // run) the drains already handed to them.
  ~AppendBatcher();

  // Queues `req`, which must stay valid until `done` has run (a gRPC
  // request does: it lives until the call finishes). `done` runs exactly
  // once, on a worker thread:
  // with the result, with DEADLINE_EXCEEDED if `deadline` passed before its
  // batch started (nothing is written then), or with UNAVAILABLE when the
  // lane's queue is full.
  void Submit(const ::parley::internal::v1::AppendMessageRequest* req,
              std::chrono::system_clock::time_point deadline, Done done);

  // One send and what to call with its result.
  struct Entry {
    const ::parley::internal::v1::AppendMessageRequest* req;
    Done done;
  };
  // Submits `entries` as Submit does, but together: a lane's drain cannot
  // start on the first of them and leave the rest for its next
  // transaction, and a transaction never splits them, even past
  // `max_batch`, so sends that arrived in one call (on each lane) commit
  // in one.
  void SubmitAll(std::vector<Entry> entries,
                 std::chrono::system_clock::time_point deadline);

 private:
  struct Item {
    const ::parley::internal::v1::AppendMessageRequest* req;
    std::chrono::system_clock::time_point deadline;
    Done done;
    // Not the first of the SubmitAll it came in (on this lane).
    bool follows = false;
  };
  struct Lane {
    std::mutex mu;
    std::condition_variable idle;  // signalled when running turns false
    std::deque<Item> queue ABSL_GUARDED_BY(mu);
    bool running ABSL_GUARDED_BY(mu) = false;
  };

  // A chat always maps to the same lane.
  size_t LaneIndex(
      const ::parley::internal::v1::AppendMessageRequest& req) const;
  // Queues `entries` (moving from them) on `lane` and starts its drain if
  // it is idle.
  void Enqueue(Lane* lane, absl::Span<Entry> entries,
               std::chrono::system_clock::time_point deadline);
  // Appends batches from `lane` until its queue is empty.
  void Drain(Lane* lane);

  StorageRepository* const repo_;
  ThreadPool* const workers_;
  const AppendBatcherOptions options_;
  std::vector<std::unique_ptr<Lane>> lanes_;
};

}  // namespace parley::storage

#endif  // PARLEY_SERVICES_STORAGE_APPEND_BATCHER_H_
