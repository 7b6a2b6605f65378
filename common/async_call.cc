#include "common/async_call.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace parley {
namespace {

struct Registry {
  std::mutex mu;
  std::condition_variable idle;  // signalled when `calls` becomes empty
  // The calls running, by their Tracked: the state that owns the context
  // (not kept alive from here) and the context.
  std::map<const void*, std::pair<std::weak_ptr<void>, grpc::ClientContext*>>
      calls;
};

Registry& Calls() {
  static auto* registry = new Registry();  // never destroyed: used at exit
  return *registry;
}

}  // namespace

namespace async_call_internal {

Tracked::~Tracked() {
  Registry& r = Calls();
  std::lock_guard<std::mutex> lock(r.mu);
  if (r.calls.erase(this) > 0 && r.calls.empty()) r.idle.notify_all();
}

void Tracked::Register(std::weak_ptr<void> owner, grpc::ClientContext* ctx) {
  Registry& r = Calls();
  std::lock_guard<std::mutex> lock(r.mu);
  r.calls[this] = {std::move(owner), ctx};
}

}  // namespace async_call_internal

void CancelAsyncCalls() {
  Registry& r = Calls();
  std::vector<std::pair<std::shared_ptr<void>, grpc::ClientContext*>> live;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    for (auto& [key, entry] : r.calls) {
      // A state already being destroyed does not lock: its call is done.
      if (auto owner = entry.first.lock()) {
        live.emplace_back(std::move(owner), entry.second);
      }
    }
  }
  // Outside the lock: a callback may run inline here, and its Tracked
  // takes the lock when it goes (perhaps when `live` lets go of it).
  for (auto& [owner, ctx] : live) ctx->TryCancel();
}

bool WaitForAsyncCalls(std::chrono::milliseconds timeout) {
  Registry& r = Calls();
  std::unique_lock<std::mutex> lock(r.mu);
  return r.idle.wait_for(lock, timeout, [&] { return r.calls.empty(); });
}

}  // namespace parley
