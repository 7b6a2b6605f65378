// Which (user, chat) typing indicators were started through this gateway
// and not yet stopped, so that a send can say whether it ends one
// (AppendMessageRequest.ends_typing) and the message service asks presence
// to end an indicator only when one may be on. A mark older than
// `max_age` is stale: the indicator has lapsed in presence anyway.
//
//   TypingMarks marks({.max_age = std::chrono::seconds(30)});
//   marks.Set(user, chat, /*typing=*/true);
//   bool ends = marks.Take(user, chat);   // true once, then false
#ifndef PARLEY_SERVICES_GATEWAY_TYPING_MARKS_H_
#define PARLEY_SERVICES_GATEWAY_TYPING_MARKS_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"

namespace parley::gateway {

class TypingMarks {
 public:
  struct Options {
    // Longer than presence's typing TTL.
    std::chrono::milliseconds max_age{30000};
    // Past it, stale marks are swept; if all are fresh, the oldest go
    // first (their sends then leave the indicator to lapse).
    size_t max_marks = 100000;
    // Tests may inject a clock.
    std::function<std::chrono::steady_clock::time_point()> clock;
  };

  explicit TypingMarks(Options options) : options_(std::move(options)) {}

  // A typing start or refresh (true) or stop (false) for the pair.
  void Set(int64_t user_id, int64_t chat_id, bool typing);
  // True when the pair's indicator may be on; clears the mark.
  bool Take(int64_t user_id, int64_t chat_id);
  size_t size() const;

 private:
  using Key = std::pair<int64_t, int64_t>;
  std::chrono::steady_clock::time_point Now() const;

  const Options options_;
  mutable std::mutex mu_;
  absl::flat_hash_map<Key, std::chrono::steady_clock::time_point> marks_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace parley::gateway

#endif  // PARLEY_SERVICES_GATEWAY_TYPING_MARKS_H_
