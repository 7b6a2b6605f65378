#include "services/gateway/typing_marks.h"

#include <algorithm>
#include <vector>

namespace parley::gateway {

std::chrono::steady_clock::time_point TypingMarks::Now() const {
  return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
}

void TypingMarks::Set(int64_t user_id, int64_t chat_id, bool typing) {
  const auto now = Now();
  std::lock_guard<std::mutex> lock(mu_);
  if (!typing) {
    marks_.erase(Key{user_id, chat_id});
    return;
  }
  marks_[Key{user_id, chat_id}] = now;
  if (marks_.size() <= options_.max_marks) return;
  absl::erase_if(
      marks_, [&](const auto& m) { return now - m.second > options_.max_age; });
  if (marks_.size() <= options_.max_marks) return;
  // All fresh: keep the newest half.
  std::vector<std::chrono::steady_clock::time_point> times;
  times.reserve(marks_.size());
  for (const auto& m : marks_) times.push_back(m.second);
  auto mid = times.begin() + times.size() / 2;
  std::nth_element(times.begin(), mid, times.end());
  const auto cutoff = *mid;
  absl::erase_if(marks_, [&](const auto& m) { return m.second < cutoff; });
}

bool TypingMarks::Take(int64_t user_id, int64_t chat_id) {
  const auto now = Now();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = marks_.find(Key{user_id, chat_id});
  if (it == marks_.end()) return false;
  const bool fresh = now - it->second <= options_.max_age;
  marks_.erase(it);
  return fresh;
}

size_t TypingMarks::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return marks_.size();
}

}  // namespace parley::gateway
