// The gateway's live connections: which local streams belong to which user,
// and the routes in presence that tell message instances to push here.
//
// Route changes go through per-user-ordered workers (a user always maps to
// the same worker), so a quick disconnect/reconnect can never leave presence
// with the wrong final state. A heartbeat refreshes every route; it also
// restores routes after presence or Redis lost them.
//
//   ConnectionRegistry registry(presence_stub, {.gateway_id = "gw-1"});
//   registry.Start();
//   registry.Add(user_id, stream);     // ok: stream->OnRouteReady() follows
//   registry.Deliver(delivery);        // from a message instance
//   registry.Remove(user_id, stream);  // from the stream's OnDone
#ifndef PARLEY_SERVICES_GATEWAY_CONNECTION_REGISTRY_H_
#define PARLEY_SERVICES_GATEWAY_CONNECTION_REGISTRY_H_

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "parley/internal/v1/message.pb.h"
#include "parley/internal/v1/presence.grpc.pb.h"
#include "parley/v1/parley.pb.h"

namespace parley::gateway {

// A client stream as the registry sees it.
class LocalStream {
 public:
  virtual ~LocalStream() = default;
  // Queues frames, in order; must not block.
  virtual void Push(
      absl::Span<const std::shared_ptr<const parley::v1::ServerFrame>>
          frames) = 0;
  // The user's route is registered (or registration failed and the stream
  // should go on anyway); called once per stream. Must not block.
  virtual void OnRouteReady() = 0;
  // Ends the stream with `status`; must not block.
  virtual void Close(const grpc::Status& status) = 0;
  // Unique among this gateway's streams; never 0.
  virtual uint64_t stream_id() const = 0;
  // The stream is ending: it takes no more frames, and its client may
  // already have its final status although Remove has not come yet. Must
  // not block.
  virtual bool ending() const = 0;
};

class ConnectionRegistry {
 public:
  struct Options {
    std::string gateway_id;
    std::chrono::milliseconds heartbeat_interval{10000};
    std::chrono::milliseconds presence_timeout{2000};
    int route_workers = 4;
    // Streams one user may hold on this gateway at once; 0: no limit.
    int max_streams_per_user = 0;
  };

  ConnectionRegistry(
      ::parley::internal::v1::PresenceService::StubInterface* presence,
      Options options);
  ~ConnectionRegistry();

  void Start();
  // Drains pending route changes (unregistering what is gone) and stops the
  // workers. Call after every stream has been removed.
  void Stop();

  // Adds a stream, or refuses it with RESOURCE_EXHAUSTED when the user
  // already holds max_streams_per_user streams here that are not ending.
  absl::Status Add(int64_t user_id, LocalStream* stream);
  void Remove(int64_t user_id, LocalStream* stream);
  // Pushes the delivery's frame to the local streams of its recipients,
  // leaving out the stream it names to skip, and does the same for each
  // delivery of its batch, in order. A stream gets all its frames of one
  // batch in one push, so that they can leave in one write. Returns how
  // many frames went to streams.
  size_t Deliver(const ::parley::internal::v1::Delivery& delivery);
  // Re-sends every route to presence soon (presence asked for it).
  void RequestHeartbeat();
  // Closes every stream (shutdown).
  void CloseAll(const grpc::Status& status);

  size_t stream_count() const { return streams_.load(); }
  size_t user_count() const;
  const std::string& gateway_id() const { return options_.gateway_id; }

 private:
  static constexpr int kShards = 16;
  struct UserEntry {
    std::vector<LocalStream*> streams;
    bool registered = false;  // presence has our route (as far as we know)
    bool queued = false;      // a worker will look at this user
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<int64_t, UserEntry> users ABSL_GUARDED_BY(mu);
  };
  struct Worker {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<int64_t> queue ABSL_GUARDED_BY(mu);
    std::thread thread;
  };

  Shard& ShardFor(int64_t user_id) { return shards_[user_id % kShards]; }
  // A frame for one user's streams, except the one with id `skip` (0:
  // none).
  struct Addressed {
    std::shared_ptr<const parley::v1::ServerFrame> frame;
    uint64_t skip;
  };
  // Pushes `frames` to the local streams of `user_id`; returns how many
  // frames went out.
  size_t PushToUser(int64_t user_id, absl::Span<const Addressed> frames);
  // The stream id a delivery skips on this gateway, or 0.
  uint64_t SkipOf(const ::parley::internal::v1::Delivery& delivery) const;
  void Enqueue(int64_t user_id);
  void WorkerLoop(Worker* w);
  void SyncRoute(int64_t user_id);
  void HeartbeatLoop();
  // False when presence could not be reached.
  bool SendHeartbeat();
  void RetryUnregisters();

  ::parley::internal::v1::PresenceService::StubInterface* const presence_;
  const Options options_;
  std::array<Shard, kShards> shards_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> streams_{0};
  // Set when presence failed: heartbeats then run every second, so routes
  // are restored within seconds of presence (or Redis) coming back.
  std::atomic<bool> presence_failing_{false};
  std::atomic<bool> heartbeat_requested_{false};
  // Users whose route could not be removed; retried with the heartbeat.
  std::mutex retry_mu_;
  std::vector<int64_t> unregister_retries_ ABSL_GUARDED_BY(retry_mu_);
  std::mutex heartbeat_mu_;
  std::condition_variable heartbeat_cv_;
  std::thread heartbeat_;
};

}  // namespace parley::gateway

#endif  // PARLEY_SERVICES_GATEWAY_CONNECTION_REGISTRY_H_
