// Connection routes and online status in Redis.
//
// Keys (the {...} hash tag keeps all of one user's keys in one cluster slot):
//   parley:{u:<user_id>}:routes   sorted set: member = gateway id,
//                                 score = expiry time in Unix ms. The key
//                                 itself expires one TTL after its last
//                                 refresh, so a dead gateway leaves nothing.
//   parley:{u:<user_id>}:seen     last-seen time in Unix ms.
//   parley:{u:<user_id>}:announced "1" or "0": the state last pushed to
//                                 contacts, so that a quick reconnect or a
//                                 second device announces nothing.
//   parley:{c:<chat_id>}:typing:<user_id>
//                                 exists while the user types; expires
//                                 after the typing TTL.
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
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
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
    std::chrono::milliseconds typing_ttl{6000};
    // Unix milliseconds; tests may inject a clock.
    std::function<int64_t()> clock_ms;
  };

  // Redis channel on which every change to a user's set of gateways is
  // published, as the user id (Heartbeat: several ids, comma-separated).
  static constexpr char kRouteChangesChannel[] = "parley:route-changes";
  // The user ids of a message on that channel; malformed parts are skipped.
  static std::vector<int64_t> ParseRouteChanges(absl::string_view payload);

  static std::string RoutesKey(int64_t user_id);
  static std::string SeenKey(int64_t user_id);
  static std::string AnnouncedKey(int64_t user_id);
  static std::string TypingKey(int64_t chat_id, int64_t user_id);
  // Inverse of RoutesKey / TypingKey; false for other keys.
  static bool ParseRoutesKey(absl::string_view key, int64_t* user_id);
  static bool ParseTypingKey(absl::string_view key, int64_t* chat_id,
                             int64_t* user_id);

  RouteStore(RedisClient* redis, Options options);

  // Adds or refreshes a route; true when the user's coming online must be
  // announced (it was not announced as online already).
  absl::StatusOr<bool> Register(const std::string& gateway_id, int64_t user_id);
  // Drops a route; true when the user has no live route left.
  absl::StatusOr<bool> Unregister(const std::string& gateway_id,
                                  int64_t user_id);
  // True when the user has no live route and was announced online: records
  // `last_seen_ms` and marks the user announced offline, atomically, so that
  // exactly one caller announces it.
  absl::StatusOr<bool> ClaimOffline(int64_t user_id, int64_t last_seen_ms);
  // Starts or refreshes (typing) or stops a typing indicator; true when it
  // started or stopped (not for a refresh, nor for stopping what had
  // already stopped).
  absl::StatusOr<bool> SetTyping(int64_t chat_id, int64_t user_id,
                                 bool typing);
  // Stops the typing indicators of (chat, user) pairs in one round trip;
  // per pair, true when it was on.
  absl::StatusOr<std::vector<bool>> ClearTyping(
      const std::vector<std::pair<int64_t, int64_t>>& chat_users);
  // True for exactly one caller per expiry of a typing key (several presence
  // instances see the same expiry).
  absl::StatusOr<bool> ClaimTypingExpiry(int64_t chat_id, int64_t user_id);
  // Refreshes (or re-creates, e.g. after a Redis restart) many routes.
  absl::Status Heartbeat(const std::string& gateway_id,
                         const std::vector<int64_t>& user_ids);
  // Live routes grouped by gateway id.
  absl::StatusOr<std::map<std::string, std::vector<int64_t>>> Lookup(
      const std::vector<int64_t>& user_ids);
  struct RoutesAndTyping {
    std::map<std::string, std::vector<int64_t>> routes;
    // Per (chat, user) pair, true when its indicator was on; empty when
    // clearing failed (best effort: the routes still count).
    std::vector<bool> typing_cleared;
  };
  // Lookup and ClearTyping together, in one round trip.
  absl::StatusOr<RoutesAndTyping> LookupAndClearTyping(
      const std::vector<int64_t>& user_ids,
      const std::vector<std::pair<int64_t, int64_t>>& chat_users);
  absl::StatusOr<std::vector<UserPresence>> GetPresence(
      const std::vector<int64_t>& user_ids);

  const Options& options() const { return options_; }
  int64_t Now() const;

 private:

  RedisClient* redis_;
  Options options_;
};

}  // namespace parley::presence

#endif  // PARLEY_SERVICES_PRESENCE_ROUTE_STORE_H_
