#include "common/call_limiter.h"

#include <algorithm>
#include <utility>

namespace parley {

bool CallLimiter::Run(Call call) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return false;
    if (in_flight_ >= std::max(1, options_.max_in_flight)) {
      if (waiting_.size() >= options_.max_waiting) return false;
      waiting_.push_back(std::move(call));
      return true;
    }
    ++in_flight_;
  }
  call([this] { Release(); });
  return true;
}

void CallLimiter::Release() {
  Call next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (waiting_.empty()) {
      --in_flight_;
      return;
    }
    // The slot passes straight to the oldest waiting call.
    next = std::move(waiting_.front());
    waiting_.pop_front();
  }
  next([this] { Release(); });
}

void CallLimiter::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  waiting_.clear();
}

size_t CallLimiter::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<size_t>(in_flight_);
}

size_t CallLimiter::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_.size();
}

}  // namespace parley
