// Turns route and typing changes into pushed frames: presence frames to a
// user's direct contacts, typing frames to a chat's members. Frames go only
// to the gateways holding the recipients (by the routes in Redis), over the
// gateways' Subscribe streams.
//
// Going offline waits out a grace period first, so a quick reconnect (or a
// second device) announces nothing; which instance announces is decided
// atomically in Redis, so several presence instances never double up.
//
//   LiveEvents events(&routes, &hub, storage_stub, &pool, {.offline_grace = 1s});
//   events.Start();
//   events.OnRouteRegistered(user_id, /*announce=*/true);
#ifndef PARLEY_SERVICES_PRESENCE_LIVE_EVENTS_H_
#define PARLEY_SERVICES_PRESENCE_LIVE_EVENTS_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <queue>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/call_limiter.h"
#include "common/fanout_hub.h"
#include "common/thread_pool.h"
#include "parley/internal/v1/storage.grpc.pb.h"
#include "parley/v1/parley.pb.h"
#include "services/presence/route_store.h"

namespace parley::presence {

class LiveEvents {
 public:
  struct Options {
    std::chrono::milliseconds offline_grace{1000};
    std::chrono::milliseconds storage_timeout{2000};
  };

  LiveEvents(RouteStore* routes, FanoutHub* hub,
             ::parley::internal::v1::StorageService::StubInterface* storage,
             ThreadPool* pool, Options options);
  ~LiveEvents();

  void Start();
  // Stops the offline timer and starts no more storage calls (those asked
  // for later are dropped). Calls in flight go on: main waits for them
  // with parley::WaitForAsyncCalls.
  void Stop();

  // A route was registered; `announce` when the user came online.
  void OnRouteRegistered(int64_t user_id, bool announce);
  // The last route of a user is gone: announce offline after the grace.
  void OnLastRouteGone(int64_t user_id);
  // A user's routes key expired (its gateway stopped heartbeating).
  void OnRoutesExpired(int64_t user_id);
  // A typing indicator started or stopped.
  void OnTyping(int64_t chat_id, int64_t user_id, bool typing,
                std::vector<int64_t> members);
  // A typing key expired without a refresh.
  void OnTypingExpired(int64_t chat_id, int64_t user_id);
  // Any Redis key expired (from the keyspace listener).
  void OnKeyExpired(const std::string& key);

  // Routes a frame to the gateways holding `recipients`; when routes are
  // unknown, to every gateway.
  void Push(const parley::v1::ServerFrame& frame,
            const std::vector<int64_t>& recipients);

 private:
  void AnnounceOffline(int64_t user_id, int64_t last_seen_ms);
  void PushPresence(int64_t user_id, bool online, int64_t last_seen_ms);
  void TimerLoop();

  RouteStore* const routes_;
  FanoutHub* const hub_;
  ::parley::internal::v1::StorageService::StubInterface* const storage_;
  ThreadPool* const pool_;
  const Options options_;

  using Due = std::pair<std::chrono::steady_clock::time_point, int64_t>;
  // Storage calls (last-seen writes, contact lookups) in flight at once.
  CallLimiter storage_calls_{{.max_in_flight = 16, .max_waiting = 100000}};
  std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due_
      ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread timer_;
};

}  // namespace parley::presence

#endif  // PARLEY_SERVICES_PRESENCE_LIVE_EVENTS_H_
