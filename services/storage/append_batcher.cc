#include "services/storage/append_batcher.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "common/call_batcher.h"

namespace parley::storage {

namespace iv1 = ::parley::internal::v1;

AppendBatcher::AppendBatcher(StorageRepository* repo, ThreadPool* workers,
                             AppendBatcherOptions options)
    : repo_(repo),
      workers_(workers),
      options_{std::max(1, options.lanes),
               std::max<size_t>(1, options.max_batch), options.max_queue} {
  for (int i = 0; i < options_.lanes; ++i) {
    lanes_.push_back(std::make_unique<Lane>());
  }
}

AppendBatcher::~AppendBatcher() {
  for (auto& lane : lanes_) {
    std::unique_lock<std::mutex> lock(lane->mu);
    lane->idle.wait(lock, [&] { return !lane->running; });
  }
}

void AppendBatcher::Submit(const iv1::AppendMessageRequest* req,
                           std::chrono::system_clock::time_point deadline,
                           Done done) {
  Entry one{req, std::move(done)};
  Enqueue(lanes_[LaneIndex(*req)].get(), absl::MakeSpan(&one, 1), deadline);
}

void AppendBatcher::SubmitAll(std::vector<Entry> entries,
                              std::chrono::system_clock::time_point deadline) {
  if (lanes_.size() == 1) {
    Enqueue(lanes_[0].get(), absl::MakeSpan(entries), deadline);
    return;
  }
  std::vector<std::vector<Entry>> by_lane(lanes_.size());
  for (Entry& e : entries) by_lane[LaneIndex(*e.req)].push_back(std::move(e));
  for (size_t i = 0; i < lanes_.size(); ++i) {
    if (!by_lane[i].empty()) {
      Enqueue(lanes_[i].get(), absl::MakeSpan(by_lane[i]), deadline);
    }
  }
}

size_t AppendBatcher::LaneIndex(const iv1::AppendMessageRequest& req) const {
  return static_cast<uint64_t>(req.chat_id()) % lanes_.size();
}

void AppendBatcher::Enqueue(Lane* lane, absl::Span<Entry> entries,
                            std::chrono::system_clock::time_point deadline) {
  bool start = false;
  std::vector<Done> refused;
  {
    std::lock_guard<std::mutex> lock(lane->mu);
    bool first = true;
    for (Entry& e : entries) {
      if (lane->queue.size() < options_.max_queue) {
        lane->queue.push_back(Item{e.req, deadline, std::move(e.done), !first});
        first = false;
      } else {
        refused.push_back(std::move(e.done));
      }
    }
    if (refused.size() < entries.size()) {
      start = !lane->running;
      lane->running = true;
    }
  }
  for (Done& done : refused) {  // answered outside the lock
    done(absl::UnavailableError("storage overloaded: too many queued sends"));
  }
  if (start && !workers_->TrySubmit([this, lane] { Drain(lane); })) {
    // No worker: fail what is queued rather than leave it waiting.
    std::deque<Item> failed;
    {
      std::lock_guard<std::mutex> lock(lane->mu);
      failed.swap(lane->queue);
      lane->running = false;
      lane->idle.notify_all();
    }
    for (Item& item : failed) {
      item.done(absl::UnavailableError("storage overloaded"));
    }
  }
}

void AppendBatcher::Drain(Lane* lane) {
  for (;;) {
    std::vector<Item> batch;
    {
      std::lock_guard<std::mutex> lock(lane->mu);
      if (lane->queue.empty()) {
        lane->running = false;
        lane->idle.notify_all();
        return;
      }
      const size_t take = BatchEnd(lane->queue, options_.max_batch);
      batch.reserve(take);
      for (size_t i = 0; i < take; ++i) {
        batch.push_back(std::move(lane->queue.front()));
        lane->queue.pop_front();
      }
    }
    const auto now = std::chrono::system_clock::now();
    std::vector<const iv1::AppendMessageRequest*> reqs;
    std::vector<Item*> live;
    for (Item& item : batch) {
      if (item.deadline <= now) {
        item.done(absl::DeadlineExceededError(
            "deadline passed before the send was appended"));
        continue;
      }
      reqs.push_back(item.req);
      live.push_back(&item);
    }
    if (reqs.empty()) continue;
    auto results = repo_->AppendMessages(reqs);
    for (size_t i = 0; i < live.size(); ++i) {
      live[i]->done(std::move(results[i]));
    }
  }
}

}  // namespace parley::storage
