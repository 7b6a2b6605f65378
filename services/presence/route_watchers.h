// The push side of WatchRoutes: tells every watching message instance which
// users' routes changed, so that it can cache routes between changes.
//
// Each stream has at most one write in flight. Changes that arrive in the
// meantime are merged into the stream's next frame, so a slow watcher costs
// bounded memory: past `max_pending` users its next frame is a reset
// instead of a list.
//
//   RouteWatchers watchers;
//   // In PresenceService::WatchRoutes:
//   return watchers.Open(req->watcher_id());
//   // From the Redis subscription to route changes:
//   watchers.SetTracking(true);    // subscribed: watchers may cache
//   watchers.OnPublished("42,43"); // routes of 42 and 43 changed
//   watchers.SetTracking(false);   // subscription lost: stop caching
#ifndef PARLEY_SERVICES_PRESENCE_ROUTE_WATCHERS_H_
#define PARLEY_SERVICES_PRESENCE_ROUTE_WATCHERS_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "parley/internal/v1/presence.pb.h"

namespace parley::presence {

class RouteWatchers {
 public:
  explicit RouteWatchers(size_t max_pending = 100000)
      : max_pending_(max_pending) {}
  ~RouteWatchers();

  // Creates the reactor of a WatchRoutes call. Its first frame is a reset
  // carrying the current tracking state.
  grpc::ServerWriteReactor<::parley::internal::v1::RouteChanges>* Open(
      const std::string& watcher_id);
  // The routes of `user_ids` changed.
  void Changed(const std::vector<int64_t>& user_ids);
  // A message on RouteStore::kRouteChangesChannel.
  void OnPublished(const std::string& payload);
  // A Redis key expired: a routes key's lapse is a change every instance
  // sees for itself.
  void OnKeyExpired(const std::string& key);
  // Whether route changes are being followed; every stream gets a reset
  // with the new state, since changes may have been missed either way.
  void SetTracking(bool tracking);
  // Ends every stream, e.g. at shutdown.
  void CloseAll();
  size_t size() const;

 private:
  class Stream;
  friend class Stream;
  void Remove(Stream* stream);

  const size_t max_pending_;
  mutable std::mutex mu_;
  bool tracking_ ABSL_GUARDED_BY(mu_) = false;
  std::set<Stream*> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace parley::presence

#endif  // PARLEY_SERVICES_PRESENCE_ROUTE_WATCHERS_H_
