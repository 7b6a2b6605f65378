// Deliveries for a gateway that has no Subscribe stream here yet, kept for a
// short while so that a gateway (re)subscribing after this instance restarted,
// or after its own stream broke, still receives what was committed meanwhile.
// Bounded per gateway, in gateway count, and in age. Not thread-safe: the
// owner (FanoutHub) guards it.
//
//   HeldDeliveries<Delivery> held({.per_gateway = 10000, .gateways = 256,
//                                  .hold_for = std::chrono::seconds(5)});
//   held.Hold("gw-1", delivery, Clock::now());       // no stream for gw-1
//   for (auto& d : held.Take("gw-1", Clock::now())) stream->Enqueue(d);
#ifndef PARLEY_COMMON_HELD_DELIVERIES_H_
#define PARLEY_COMMON_HELD_DELIVERIES_H_

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace parley {

struct HeldDeliveriesLimits {
  size_t per_gateway = 10000;  // older deliveries are dropped beyond this
  size_t gateways = 256;       // new gateway ids are refused beyond this
  std::chrono::steady_clock::duration hold_for = std::chrono::seconds(5);
};

template <typename T>
class HeldDeliveries {
 public:
  using Clock = std::chrono::steady_clock;
  using Item = std::shared_ptr<const T>;

  explicit HeldDeliveries(HeldDeliveriesLimits limits) : limits_(limits) {}

  // Keeps `item` for `gateway_id`; false if it had to be refused.
  bool Hold(const std::string& gateway_id, Item item, Clock::time_point now) {
    auto it = held_.find(gateway_id);
    if (it == held_.end()) {
      if (held_.size() >= limits_.gateways) ExpireAll(now);
      if (held_.size() >= limits_.gateways || limits_.per_gateway == 0) {
        return false;
      }
      it = held_.emplace(gateway_id, Queue()).first;
    }
    Queue& q = it->second;
    Expire(q, now);
    if (q.size() >= limits_.per_gateway) q.pop_front();
    q.emplace_back(now, std::move(item));
    return true;
  }

  // Removes and returns what is still fresh for `gateway_id`, oldest first.
  std::vector<Item> Take(const std::string& gateway_id, Clock::time_point now) {
    std::vector<Item> out;
    auto it = held_.find(gateway_id);
    if (it == held_.end()) return out;
    Expire(it->second, now);
    out.reserve(it->second.size());
    for (auto& [when, item] : it->second) out.push_back(std::move(item));
    held_.erase(it);
    return out;
  }

  size_t gateways() const { return held_.size(); }

 private:
  using Queue = std::deque<std::pair<Clock::time_point, Item>>;

  void Expire(Queue& q, Clock::time_point now) const {
    while (!q.empty() && now - q.front().first > limits_.hold_for) {
      q.pop_front();
    }
  }
  void ExpireAll(Clock::time_point now) {
    for (auto it = held_.begin(); it != held_.end();) {
      Expire(it->second, now);
      it = it->second.empty() ? held_.erase(it) : std::next(it);
    }
  }

  const HeldDeliveriesLimits limits_;
  std::map<std::string, Queue> held_;
};

}  // namespace parley

#endif  // PARLEY_COMMON_HELD_DELIVERIES_H_
