#include "common/async_call.h"

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace parley {
namespace {

struct Counter {
  std::mutex mu;
  std::condition_variable idle;
  int64_t calls = 0;
};

Counter& Calls() {
  static auto* counter = new Counter();  // never destroyed: used at exit
  return *counter;
}

}  // namespace

namespace async_call_internal {

Tracked::Tracked() {
  Counter& c = Calls();
  std::lock_guard<std::mutex> lock(c.mu);
  ++c.calls;
}

Tracked::~Tracked() {
  Counter& c = Calls();
  std::lock_guard<std::mutex> lock(c.mu);
  if (--c.calls == 0) c.idle.notify_all();
}

}  // namespace async_call_internal

bool WaitForAsyncCalls(std::chrono::milliseconds timeout) {
  Counter& c = Calls();
  std::unique_lock<std::mutex> lock(c.mu);
  return c.idle.wait_for(lock, timeout, [&] { return c.calls == 0; });
}

}  // namespace parley
