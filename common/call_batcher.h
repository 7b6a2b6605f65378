// Carries concurrent calls to another service in shared batch calls. At
// most `max_in_flight` batch calls run at once; items submitted while they
// run wait and leave together in the next batch (up to `max_batch`). When
// nothing is in flight an item leaves alone at once, so an idle caller adds
// no delay, and batches grow with load, the way group commit does. A batch
// call lives as long as its most patient item's deadline.
//
//   CallBatcher<Req, Res> batcher(
//       {.max_in_flight = 8, .max_batch = 256},
//       [stub](std::vector<Req> items, std::chrono::milliseconds timeout,
//              CallBatcher<Req, Res>::Finish finish) {
//         ...  // one call carrying `items`; then, on any thread:
//         finish(std::vector<absl::StatusOr<Res>>{...});  // one per item
//       });
//   batcher.Submit(req, deadline, [](absl::StatusOr<Res> r) { ... });
#ifndef PARLEY_COMMON_CALL_BATCHER_H_
#define PARLEY_COMMON_CALL_BATCHER_H_

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

namespace parley {

// How many items of `queue` (items with a `follows` flag: not the first of
// those submitted together) the next batch takes: up to `max_batch`, but
// never some of a run submitted together. A batch that would end inside a
// run ends before it; a run that opens the batch is taken whole, however
// long.
template <typename Queue>
size_t BatchEnd(const Queue& queue, size_t max_batch) {
  size_t n = std::min(queue.size(), max_batch);
  if (n == queue.size() || !queue[n].follows) return n;
  size_t start = n;
  while (start > 0 && queue[start].follows) --start;
  if (start > 0) return start;
  while (n < queue.size() && queue[n].follows) ++n;
  return n;
}

template <typename Item, typename Result>
class CallBatcher {
 public:
  struct Options {
    int max_in_flight = 4;
    // Most items in one batch call, but for a larger SubmitAll.
    size_t max_batch = 256;
    // Items waiting for a batch; beyond it Submit refuses at once.
    size_t max_waiting = 20000;
  };
  using Done = std::function<void(absl::StatusOr<Result>)>;
  // Reports a batch call's end: one result per item, in the items' order,
  // or one failed status for all of them. Call it exactly once.
  using Finish =
      std::function<void(absl::StatusOr<std::vector<absl::StatusOr<Result>>>)>;
  // Starts one batch call with `timeout`; must not block.
  using Send =
      std::function<void(std::vector<Item> items,
                         std::chrono::milliseconds timeout, Finish finish)>;

  CallBatcher(Options options, Send send)
      : options_(options), send_(std::move(send)) {}

  // One item and what to call with its result.
  struct Entry {
    Item item;
    Done done;
  };

  // `done` runs exactly once: with the item's result, with the batch call's
  // failure, or (inline) with RESOURCE_EXHAUSTED when too many items wait.
  void Submit(Item item, std::chrono::system_clock::time_point deadline,
              Done done) {
    Entry one{std::move(item), std::move(done)};
    Enqueue(absl::MakeSpan(&one, 1), deadline);
  }

  // Submits `entries` together: they leave in the same batch call, in
  // their order. A batch that would split them ends before them instead,
  // and more than `max_batch` of them leave as one call of their own, so
  // the caller keeps `entries` within what the receiver takes in one call.
  // Items that arrived in one batch of the caller's own thus stay one, the
  // caller's answer, which waits for all of them, waits for no straggler
  // left behind for the next call, and the receiver sees them in the
  // caller's order even while several calls run at once.
  void SubmitAll(std::vector<Entry> entries,
                 std::chrono::system_clock::time_point deadline) {
    Enqueue(absl::MakeSpan(entries), deadline);
  }

  // Hands a batch call's outcome to its items' `dones`, in order: each its
  // own result, or the call's failure; INTERNAL for all when the number of
  // results is not the number of items. What a Finish does with its
  // outcome, for callers that make a batch call of their own.
  static void AnswerEach(
      absl::StatusOr<std::vector<absl::StatusOr<Result>>> results,
      std::vector<Done>& dones) {
    if (results.ok() && results->size() != dones.size()) {
      results = absl::InternalError(
          absl::StrCat("batch call answered ", results->size(), " results for ",
                       dones.size(), " items"));
    }
    for (size_t i = 0; i < dones.size(); ++i) {
      if (results.ok()) {
        dones[i](std::move((*results)[i]));
      } else {
        dones[i](results.status());
      }
    }
  }

  int in_flight() const {
    std::lock_guard<std::mutex> lock(mu_);
    return in_flight_;
  }
  size_t waiting() const {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_.size();
  }

 private:
  struct Pending {
    Item item;
    std::chrono::system_clock::time_point deadline;
    Done done;
    // Not the first of the SubmitAll it came in.
    bool follows = false;
  };

  // Queues `entries` (moving from them) and starts the calls they need.
  void Enqueue(absl::Span<Entry> entries,
               std::chrono::system_clock::time_point deadline) {
    size_t starts = 0;
    std::vector<Done> refused;
    {
      std::lock_guard<std::mutex> lock(mu_);
      bool first = true;
      for (Entry& e : entries) {
        if (waiting_.size() < options_.max_waiting) {
          waiting_.push_back(
              {std::move(e.item), deadline, std::move(e.done), !first});
          first = false;
        } else {
          refused.push_back(std::move(e.done));
        }
      }
      // A free slot means nothing waited before: start as many calls as
      // the new items fill, as far as the slots go.
      while (in_flight_ < options_.max_in_flight &&
             waiting_.size() > starts * options_.max_batch) {
        ++in_flight_;
        ++starts;
      }
    }
    for (Done& done : refused) {
      done(absl::ResourceExhaustedError(absl::StrCat(
          "more than ", options_.max_waiting, " calls waiting for a batch")));
    }
    for (size_t i = 0; i < starts; ++i) StartNext();
  }

  // Sends what waits as one batch; the caller has counted it in flight.
  void StartNext() {
    std::vector<Item> items;
    auto dones = std::make_shared<std::vector<Done>>();
    const auto now = std::chrono::system_clock::now();
    auto latest = now;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (waiting_.empty()) {
        --in_flight_;
        return;
      }
      const size_t n = BatchEnd(waiting_, options_.max_batch);
      items.reserve(n);
      dones->reserve(n);
      for (size_t i = 0; i < n; ++i) {
        latest = std::max(latest, waiting_.front().deadline);
        items.push_back(std::move(waiting_.front().item));
        dones->push_back(std::move(waiting_.front().done));
        waiting_.pop_front();
      }
    }
    const auto timeout = std::max(
        std::chrono::milliseconds(1),
        std::chrono::duration_cast<std::chrono::milliseconds>(latest - now));
    send_(std::move(items), timeout,
          [this,
           dones](absl::StatusOr<std::vector<absl::StatusOr<Result>>> results) {
            AnswerEach(std::move(results), *dones);
            // The slot passes to whatever gathered meanwhile.
            StartNext();
          });
  }

  const Options options_;
  const Send send_;
  mutable std::mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Pending> waiting_ ABSL_GUARDED_BY(mu_);
};

}  // namespace parley

#endif  // PARLEY_COMMON_CALL_BATCHER_H_
