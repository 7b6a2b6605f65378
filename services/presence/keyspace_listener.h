// Listens for Redis key expirations (keyspace notifications on
// __keyevent@<db>__:expired) on a dedicated connection, reconnecting (and
// re-enabling notifications) after Redis restarts.
//
//   KeyspaceListener listener(redis_options,
//                             [&](const std::string& key) { ... });
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
  using Callback = std::function<void(const std::string& key)>;

  // `on_resubscribed` runs each time the subscription is re-established
  // after having been lost (Redis restarted or the connection broke).
  KeyspaceListener(RedisClient::Options options, Callback on_expired,
                   std::function<void()> on_resubscribed = nullptr);
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
  const Callback on_expired_;
  const std::function<void()> on_resubscribed_;
  bool ever_subscribed_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> subscribed_{false};
  std::thread thread_;
};

}  // namespace parley::presence

#endif  // PARLEY_SERVICES_PRESENCE_KEYSPACE_LISTENER_H_
