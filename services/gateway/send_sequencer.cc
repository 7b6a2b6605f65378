#include "services/gateway/send_sequencer.h"

#include <algorithm>
#include <iterator>
#include <mutex>
#include <utility>

namespace parley::gateway {

SendSequencer::SendSequencer(Options options, Start start)
    : options_(options), start_(std::move(start)) {}

void SendSequencer::Submit(uint64_t stream_id, int64_t chat_id, Send send) {
  const Key key{stream_id, chat_id};
  {
    std::lock_guard<std::mutex> lock(mu_);
    Queue& q = queues_[key];
    if (q.in_flight > 0) {
      q.waiting.push_back(std::move(send));
      return;
    }
    q.in_flight = 1;
  }
  std::vector<Send> group;
  group.push_back(std::move(send));
  StartGroup(key, std::move(group));
}

void SendSequencer::StartGroup(Key key, std::vector<Send> group) {
  for (Send& s : group) {
    s.done = [this, key, done = std::move(s.done)](
                 absl::StatusOr<::parley::v1::Message> m) {
      done(std::move(m));
      OnAnswered(key);
    };
  }
  start_(key.second, std::move(group));
}

void SendSequencer::OnAnswered(Key key) {
  std::vector<Send> next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = queues_.find(key);
    if (it == queues_.end()) return;  // not ours: cannot happen
    Queue& q = it->second;
    if (--q.in_flight > 0) return;
    if (q.waiting.empty()) {
      queues_.erase(it);
      return;
    }
    const size_t n =
        std::min(q.waiting.size(), std::max<size_t>(1, options_.max_group));
    next.assign(std::make_move_iterator(q.waiting.begin()),
                std::make_move_iterator(q.waiting.begin() + n));
    q.waiting.erase(q.waiting.begin(), q.waiting.begin() + n);
    q.in_flight = n;
  }
  StartGroup(key, std::move(next));
}

size_t SendSequencer::active() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queues_.size();
}

}  // namespace parley::gateway
