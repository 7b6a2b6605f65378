#include "services/message/fanout_batcher.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/async_call.h"
#include "common/logging.h"

namespace parley::message {

namespace internal = ::parley::internal::v1;

FanoutBatcher::FanoutBatcher(internal::PresenceService::StubInterface* presence,
                             FanoutHub* hub, RouteCache* cache,
                             FanoutBatcherOptions options)
    : presence_(presence), hub_(hub), cache_(cache), options_(options) {}

void FanoutBatcher::Fanout(std::shared_ptr<const parley::v1::ServerFrame> frame,
                           std::vector<int64_t> recipients,
                           std::optional<internal::TypingStop> typing_stop,
                           SkipStream skip) {
  if (recipients.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    waiting_.push_back(Event{std::move(frame), std::move(recipients),
                             std::move(typing_stop), std::move(skip)});
  }
  Pump();
}

void FanoutBatcher::Pump() {
  for (;;) {
    std::vector<Event> batch;
    std::vector<int64_t> users;
    uint64_t id = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (waiting_.empty() ||
          in_flight_ >= std::max(1, options_.max_in_flight)) {
        return;
      }
      // Take events in order until the user or event budget is spent; the
      // first one always fits.
      std::unordered_set<int64_t> seen;
      size_t taken = 0;
      for (; taken < waiting_.size() &&
             taken < std::max<size_t>(1, options_.max_events);
           ++taken) {
        const Event& e = waiting_[taken];
        size_t added = 0;
        for (int64_t u : e.recipients) added += seen.count(u) == 0;
        if (taken > 0 && seen.size() + added > options_.max_users) break;
        seen.insert(e.recipients.begin(), e.recipients.end());
      }
      batch.assign(std::make_move_iterator(waiting_.begin()),
                   std::make_move_iterator(waiting_.begin() + taken));
      waiting_.erase(waiting_.begin(), waiting_.begin() + taken);
      ++in_flight_;
      id = next_id_++;
      users.assign(seen.begin(), seen.end());
    }
    RouteMap cached;
    std::vector<int64_t> misses;
    uint64_t ticket = 0;
    if (cache_ != nullptr) {
      ticket = cache_->Lookup(users, &cached, &misses);
    } else {
      misses = std::move(users);
    }
    internal::GetRoutesRequest lookup;
    for (const Event& e : batch) {
      if (e.typing_stop) *lookup.add_typing_stops() = *e.typing_stop;
    }
    if (misses.empty() && lookup.typing_stops().empty()) {
      // Every route is cached: push now, in turn.
      Complete(id, Looked{std::move(batch), std::move(cached)});
      continue;
    }
    lookup.mutable_user_ids()->Add(misses.begin(), misses.end());
    CallAsync(
        presence_->async(),
        &internal::PresenceService::StubInterface::async_interface::GetRoutes,
        std::move(lookup), options_.timeout,
        [this, id, ticket, batch = std::move(batch), cached = std::move(cached),
         misses = std::move(misses)](
            absl::StatusOr<internal::GetRoutesResponse> found) mutable {
          absl::StatusOr<RouteMap> routes = std::move(cached);
          if (found.ok()) {
            if (cache_ != nullptr && !misses.empty()) {
              cache_->Fill(ticket, misses, *found);
            }
            routes->Add(*found);
          } else {
            if (cache_ != nullptr && !misses.empty()) cache_->Abandon(ticket);
            routes = found.status();
          }
          Complete(id, Looked{std::move(batch), std::move(routes)});
          Pump();
        });
  }
}

void FanoutBatcher::Complete(uint64_t id, Looked looked) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
    looked_.emplace(id, std::move(looked));
    // Whoever is pushing already will find this batch when its turn comes.
    if (delivering_) return;
    delivering_ = true;
  }
  for (;;) {
    std::vector<Looked> ready;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = looked_.find(next_deliver_); it != looked_.end();
           it = looked_.find(next_deliver_)) {
        ready.push_back(std::move(it->second));
        looked_.erase(it);
        ++next_deliver_;
      }
      if (ready.empty()) {
        delivering_ = false;
        return;
      }
    }
    for (Looked& l : ready) Deliver(std::move(l.batch), std::move(l.routes));
  }
}

namespace {

std::shared_ptr<internal::Delivery> MakeDelivery(
    const parley::v1::ServerFrame& frame, const SkipStream& skip) {
  auto d = std::make_shared<internal::Delivery>();
  *d->mutable_frame() = frame;
  if (skip.stream_id != 0) {
    d->set_skip_gateway_id(skip.gateway_id);
    d->set_skip_stream_id(skip.stream_id);
  }
  return d;
}

}  // namespace

void FanoutBatcher::Deliver(std::vector<Event> batch,
                            absl::StatusOr<RouteMap> routes) {
  if (!routes.ok()) {
    // Routes unknown: let every gateway pick out its own recipients.
    spdlog::warn("route lookup failed ({}); broadcasting {} events",
                 absl::StatusCodeToString(routes.status().code()),
                 batch.size());
    for (const Event& e : batch) {
      auto d = MakeDelivery(*e.frame, e.skip);
      d->mutable_recipient_user_ids()->Add(e.recipients.begin(),
                                           e.recipients.end());
      hub_->Broadcast(std::move(d));
    }
    return;
  }
  const int gateways = static_cast<int>(routes->gateways.size());
  std::vector<std::vector<int64_t>> per_gateway(gateways);
  for (const Event& e : batch) {
    for (auto& users : per_gateway) users.clear();
    for (int64_t u : e.recipients) {
      auto it = routes->where.find(u);
      if (it == routes->where.end()) continue;
      for (int g : it->second) per_gateway[g].push_back(u);
    }
    for (int g = 0; g < gateways; ++g) {
      if (per_gateway[g].empty()) continue;
      auto d = MakeDelivery(*e.frame, e.skip);
      d->mutable_recipient_user_ids()->Add(per_gateway[g].begin(),
                                           per_gateway[g].end());
      hub_->Push(routes->gateways[g], std::move(d));
    }
  }
}

}  // namespace parley::message
