// Listens, on a dedicated connection, for Redis key expirations (keyspace
// notifications on __keyevent@<db>__:expired) and for route changes (the
// RouteStore::kRouteChangesChannel channel), reconnecting (and re-enabling
// notifications) after Redis restarts.
//
//   KeyspaceListener listener(redis_options,
//       {.on_expired = [&](const std::string& key) { ... },
//        .on_route_changes = [&](const std::string& ids) { ... }});
//   listener.Start();
//
// On Redis Cluster every node publishes its own expirations: one listener
// per node would be needed.
#ifndef PARLEY_SERVICES_PRESENCE_KEYSPACE_LISTENER_H_
#define PARLEY_SERVICES_PRESENCE_KEYSPACE_LISTENER_H_

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "services/presence/redis_client.h"

namespace parley::presence {

class KeyspaceListener {
 public:
  struct Callbacks {
    // A key expired.
    std::function<void(const std::string& key)> on_expired = {};
    // A message on the route changes channel.
    std::function<void(const std::string& payload)> on_route_changes = {};
    // Runs each time the subscription is re-established after having been
    // lost (Redis restarted or the connection broke).
    std::function<void()> on_resubscribed = {};
    // Runs with true each time the subscription starts, and with false each
    // time it is lost: messages published in between are missed.
    std::function<void(bool subscribed)> on_subscription = {};
  };

  KeyspaceListener(RedisClient::Options options, Callbacks callbacks);
  ~KeyspaceListener();

  void Start();
  void Stop();
  // True while subscribed (for health and tests).
  bool subscribed() const { return subscribed_.load(); }

 private:
  void Run();
  // One connection's life: returns when it breaks or on Stop.
  void Listen();

  const RedisClient::Options options_;
  const Callbacks callbacks_;
  bool ever_subscribed_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> subscribed_{false};
  std::thread thread_;
};

}  // namespace parley::presence

#endif  // PARLEY_SERVICES_PRESENCE_KEYSPACE_LISTENER_H_
