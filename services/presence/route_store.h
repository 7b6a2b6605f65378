// Connection routes and online status in Redis.
//
// Keys (the {...} hash tag keeps all of one user's keys in one cluster slot):
//   parley:{u:<user_id>}:routes   sorted set: member = gateway id,
//                                 score = expiry time in Unix ms. The key
//                                 itself expires one TTL after its last
//                                 refresh, so a dead gateway leaves nothing.
//   parley:{u:<user_id>}:seen     last-seen time in Unix ms.
// Typing TTLs will live under parley:{c:<chat_id>}:typing:<user_id>.
//
//   RouteStore routes(&redis, RouteStore::Options{.route_ttl = 30s});
//   auto changed = routes.Register("gw-1", 42);   // true: 42 came online
//   auto by_gateway = routes.Lookup({42, 43});
#ifndef PARLEY_SERVICES_PRESENCE_ROUTE_STORE_H_
#define PARLEY_SERVICES_PRESENCE_ROUTE_STORE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/presence/redis_client.h"

namespace parley::presence {

struct UserPresence {
  int64_t user_id = 0;
  bool online = false;
  int64_t last_seen_ms = 0;  // 0 = never seen
};

class RouteStore {
 public:
  struct Options {
    std::chrono::milliseconds route_ttl{30000};
    // Unix milliseconds; tests may inject a clock.
    std::function<int64_t()> clock_ms;
  };

  static std::string RoutesKey(int64_t user_id);
  static std::string SeenKey(int64_t user_id);

  RouteStore(RedisClient* redis, Options options);

  // Adds or refreshes a route; true when the user had no live route before.
  absl::StatusOr<bool> Register(const std::string& gateway_id, int64_t user_id);
  // Drops a route; true when the user has no live route left.
  absl::StatusOr<bool> Unregister(const std::string& gateway_id,
                                  int64_t user_id);
  // Refreshes (or re-creates, e.g. after a Redis restart) many routes.
  absl::Status Heartbeat(const std::string& gateway_id,
                         const std::vector<int64_t>& user_ids);
  // Live routes grouped by gateway id.
  absl::StatusOr<std::map<std::string, std::vector<int64_t>>> Lookup(
      const std::vector<int64_t>& user_ids);
  absl::StatusOr<std::vector<UserPresence>> GetPresence(
      const std::vector<int64_t>& user_ids);

 private:
  int64_t Now() const;

  RedisClient* redis_;
  Options options_;
};

}  // namespace parley::presence

#endif  // PARLEY_SERVICES_PRESENCE_ROUTE_STORE_H_
