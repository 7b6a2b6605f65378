// Routes (which gateways hold a user's streams) cached between the changes
// that presence announces on its WatchRoutes stream, so that a message to
// users whose routes are known needs no presence round trip.
//
// A lookup that was in flight when a user's routes changed must not cache
// the answer it got from before the change: every lookup takes a ticket,
// and Fill skips the users invalidated after that ticket was issued. While
// presence is not tracking changes (no watch stream, or presence lost its
// Redis subscription), nothing is cached and every user misses.
//
//   RouteCache cache({.max_users = 1000000});
//   cache.Apply(changes);          // each frame of WatchRoutes
//   RouteMap routes;
//   std::vector<int64_t> misses;
//   uint64_t ticket = cache.Lookup({alice, bob}, &routes, &misses);
//   // ... GetRoutes(misses) answers `found` ...
//   cache.Fill(ticket, misses, found);   // or Abandon(ticket) on failure
//   routes.Add(found);
#ifndef PARLEY_SERVICES_MESSAGE_ROUTE_CACHE_H_
#define PARLEY_SERVICES_MESSAGE_ROUTE_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "parley/internal/v1/presence.pb.h"

namespace parley::message {

// Gateways by user: `where` maps a user to indexes into `gateways`. Users
// with no live stream have no entry.
struct RouteMap {
  std::vector<std::string> gateways;
  std::unordered_map<int64_t, std::vector<int>> where;

  // The index of `gateway_id` in `gateways`, added if new.
  int Gateway(const std::string& gateway_id);
  void Add(const ::parley::internal::v1::GetRoutesResponse& found);

 private:
  std::unordered_map<std::string, int> index_;
};

class RouteCache {
 public:
  struct Options {
    // Most users cached; past it the cache starts over.
    size_t max_users = 1000000;
    // Most invalidations remembered for lookups in flight; past it they
    // are all treated as stale.
    size_t max_recent = 100000;
  };

  explicit RouteCache(Options options) : options_(options) {}

  // Applies a frame of the WatchRoutes stream.
  void Apply(const ::parley::internal::v1::RouteChanges& changes);
  // The WatchRoutes stream ended: forget everything, cache nothing until a
  // new stream says presence is tracking.
  void Lost();

  // Adds the cached routes of `user_ids` to `routes` and the users not
  // cached to `misses`. Returns the ticket for Fill or Abandon, which must
  // follow when `misses` is not empty.
  uint64_t Lookup(const std::vector<int64_t>& user_ids, RouteMap* routes,
                  std::vector<int64_t>* misses);
  // Caches presence's answer for `asked` (users absent from `found` have no
  // routes), except for users whose routes changed since `ticket`.
  void Fill(uint64_t ticket, const std::vector<int64_t>& asked,
            const ::parley::internal::v1::GetRoutesResponse& found);
  // The lookup of `ticket` failed.
  void Abandon(uint64_t ticket);

  bool tracking() const;
  size_t size() const;

 private:
  void ClearLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndTicketLocked(uint64_t ticket) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint32_t InternLocked(const std::string& gateway_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable std::mutex mu_;
  bool tracking_ ABSL_GUARDED_BY(mu_) = false;
  // Bumped by every invalidation; tickets are its value at lookup time.
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  // Lookups from before this version are stale as a whole.
  uint64_t reset_version_ ABSL_GUARDED_BY(mu_) = 0;
  // user -> version of their last invalidation, while lookups are in
  // flight.
  std::unordered_map<int64_t, uint64_t> recent_ ABSL_GUARDED_BY(mu_);
  // ticket -> lookups in flight with it.
  std::map<uint64_t, int> in_flight_ ABSL_GUARDED_BY(mu_);
  // user -> indexes into gateway_names_ (empty: no live stream).
  std::unordered_map<int64_t, std::vector<uint32_t>> entries_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::string> gateway_names_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, uint32_t> gateway_index_ ABSL_GUARDED_BY(mu_);
};

}  // namespace parley::message

#endif  // PARLEY_SERVICES_MESSAGE_ROUTE_CACHE_H_
