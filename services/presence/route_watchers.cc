#include "services/presence/route_watchers.h"

#include <unordered_set>
#include <utility>

#include "common/logging.h"
#include "common/serial_writer.h"
#include "services/presence/route_store.h"

namespace parley::presence {

namespace internal = ::parley::internal::v1;

class RouteWatchers::Stream final
    : public SerialWriter<internal::RouteChanges> {
 public:
  Stream(RouteWatchers* owner, std::string watcher_id, size_t max_pending)
      : owner_(owner),
        watcher_id_(std::move(watcher_id)),
        max_pending_(max_pending) {}

  // Merges a change into the next frame, and writes it unless a write is
  // in flight.
  void Add(const std::vector<int64_t>& user_ids, bool reset, bool tracking) {
    std::lock_guard<std::mutex> lock(mu_);
    if (finishing()) return;
    tracking_ = tracking;
    if (reset) {
      reset_ = true;
      pending_.clear();
    } else if (!reset_) {
      pending_.insert(user_ids.begin(), user_ids.end());
      if (pending_.size() > max_pending_) {
        reset_ = true;
        pending_.clear();
      }
    }
    if (!writing()) WriteNextLocked();
  }

  void OnDone() override {
    owner_->Remove(this);
    spdlog::info("route watcher {} left", watcher_id_);
    delete this;
  }

 private:
  // Writes what is pending, if anything is.
  void WriteNextLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!reset_ && pending_.empty()) return;
    frame_.Clear();
    frame_.set_reset(reset_);
    frame_.set_tracking(tracking_);
    frame_.mutable_user_ids()->Reserve(static_cast<int>(pending_.size()));
    for (int64_t u : pending_) frame_.add_user_ids(u);
    reset_ = false;
    pending_.clear();
    StartWriteLocked(&frame_);
  }

  RouteWatchers* const owner_;
  const std::string watcher_id_;
  const size_t max_pending_;
  std::unordered_set<int64_t> pending_ ABSL_GUARDED_BY(mu_);
  bool reset_ ABSL_GUARDED_BY(mu_) = false;
  bool tracking_ ABSL_GUARDED_BY(mu_) = false;
  internal::RouteChanges frame_ ABSL_GUARDED_BY(mu_);
};

RouteWatchers::~RouteWatchers() { CloseAll(); }

grpc::ServerWriteReactor<internal::RouteChanges>* RouteWatchers::Open(
    const std::string& watcher_id) {
  auto* stream = new Stream(this, watcher_id.substr(0, 128), max_pending_);
  std::lock_guard<std::mutex> lock(mu_);
  streams_.insert(stream);
  spdlog::info("route watcher {} joined", watcher_id.substr(0, 128));
  stream->Add({}, /*reset=*/true, tracking_);
  return stream;
}

void RouteWatchers::Changed(const std::vector<int64_t>& user_ids) {
  if (user_ids.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (Stream* s : streams_) s->Add(user_ids, /*reset=*/false, tracking_);
}

void RouteWatchers::OnPublished(const std::string& payload) {
  Changed(RouteStore::ParseRouteChanges(payload));
}

void RouteWatchers::OnKeyExpired(const std::string& key) {
  int64_t user_id = 0;
  if (RouteStore::ParseRoutesKey(key, &user_id)) Changed({user_id});
}

void RouteWatchers::SetTracking(bool tracking) {
  std::lock_guard<std::mutex> lock(mu_);
  tracking_ = tracking;
  for (Stream* s : streams_) s->Add({}, /*reset=*/true, tracking);
}

void RouteWatchers::CloseAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (Stream* s : streams_) s->Close(grpc::Status::OK);
}

size_t RouteWatchers::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return streams_.size();
}

void RouteWatchers::Remove(Stream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  streams_.erase(stream);
}

}  // namespace parley::presence
