#include "services/message/route_cache.h"

#include <unordered_set>

namespace parley::message {

namespace internal = ::parley::internal::v1;

int RouteMap::Gateway(const std::string& gateway_id) {
  auto [it, added] =
      index_.try_emplace(gateway_id, static_cast<int>(gateways.size()));
  if (added) gateways.push_back(gateway_id);
  return it->second;
}

void RouteMap::Add(const internal::GetRoutesResponse& found) {
  for (const auto& g : found.gateways()) {
    const int index = Gateway(g.gateway_id());
    for (int64_t u : g.user_ids()) where[u].push_back(index);
  }
}

void RouteCache::Apply(const internal::RouteChanges& changes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (changes.reset() || tracking_ != changes.tracking()) {
    ClearLocked();
  }
  tracking_ = changes.tracking();
  if (changes.user_ids().empty()) return;
  ++version_;
  for (int64_t u : changes.user_ids()) {
    entries_.erase(u);
    if (!in_flight_.empty()) recent_[u] = version_;
  }
  if (recent_.size() > options_.max_recent) {
    reset_version_ = version_;
    recent_.clear();
  }
}

void RouteCache::Lost() {
  std::lock_guard<std::mutex> lock(mu_);
  ClearLocked();
  tracking_ = false;
}

void RouteCache::ClearLocked() {
  ++version_;
  reset_version_ = version_;
  recent_.clear();
  entries_.clear();
  gateway_names_.clear();
  gateway_index_.clear();
}

uint64_t RouteCache::Lookup(const std::vector<int64_t>& user_ids,
                            RouteMap* routes, std::vector<int64_t>* misses) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t asked_before = misses->size();
  // Cached gateway index -> index in `routes`: a gateway's name is looked
  // up once per call, not once per user.
  std::vector<int> mapped(gateway_names_.size(), -1);
  for (int64_t u : user_ids) {
    auto it = tracking_ ? entries_.find(u) : entries_.end();
    if (it == entries_.end()) {
      misses->push_back(u);
      continue;
    }
    if (it->second.empty()) continue;  // cached offline
    auto& where = routes->where[u];
    for (uint32_t g : it->second) {
      if (mapped[g] < 0) mapped[g] = routes->Gateway(gateway_names_[g]);
      where.push_back(mapped[g]);
    }
  }
  if (misses->size() > asked_before) ++in_flight_[version_];
  return version_;
}

void RouteCache::Fill(uint64_t ticket, const std::vector<int64_t>& asked,
                      const internal::GetRoutesResponse& found) {
  std::lock_guard<std::mutex> lock(mu_);
  if (tracking_ && ticket >= reset_version_) {
    if (entries_.size() + asked.size() > options_.max_users) {
      // Start over rather than track recency on every hit.
      entries_.clear();
      gateway_names_.clear();
      gateway_index_.clear();
    }
    auto stale = [&](int64_t u) {
      auto it = recent_.find(u);
      return it != recent_.end() && it->second > ticket;
    };
    std::unordered_set<int64_t> routed;
    for (const auto& g : found.gateways()) {
      const uint32_t index = InternLocked(g.gateway_id());
      for (int64_t u : g.user_ids()) {
        if (stale(u)) continue;
        auto& gateways = entries_[u];
        if (routed.insert(u).second) gateways.clear();
        gateways.push_back(index);
      }
    }
    for (int64_t u : asked) {
      if (!routed.count(u) && !stale(u)) entries_[u].clear();
    }
  }
  EndTicketLocked(ticket);
}

void RouteCache::Abandon(uint64_t ticket) {
  std::lock_guard<std::mutex> lock(mu_);
  EndTicketLocked(ticket);
}

void RouteCache::EndTicketLocked(uint64_t ticket) {
  auto it = in_flight_.find(ticket);
  if (it != in_flight_.end() && --it->second == 0) in_flight_.erase(it);
  if (in_flight_.empty()) {
    recent_.clear();
  } else if (!recent_.empty() && in_flight_.begin()->first > ticket) {
    // Invalidations no lookup in flight predates are no longer needed.
    const uint64_t oldest = in_flight_.begin()->first;
    for (auto r = recent_.begin(); r != recent_.end();) {
      r = r->second <= oldest ? recent_.erase(r) : std::next(r);
    }
  }
}

uint32_t RouteCache::InternLocked(const std::string& gateway_id) {
  auto [it, added] = gateway_index_.try_emplace(
      gateway_id, static_cast<uint32_t>(gateway_names_.size()));
  if (added) gateway_names_.push_back(gateway_id);
  return it->second;
}

bool RouteCache::tracking() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tracking_;
}

size_t RouteCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace parley::message
