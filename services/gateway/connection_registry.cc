#include "services/gateway/connection_registry.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_util.h"
#include "common/logging.h"

namespace parley::gateway {

namespace internal = ::parley::internal::v1;

ConnectionRegistry::ConnectionRegistry(
    internal::PresenceService::StubInterface* presence, Options options)
    : presence_(presence), options_(std::move(options)) {}

ConnectionRegistry::~ConnectionRegistry() { Stop(); }

void ConnectionRegistry::Start() {
  for (int i = 0; i < std::max(1, options_.route_workers); ++i) {
    auto w = std::make_unique<Worker>();
    Worker* raw = w.get();
    w->thread = std::thread([this, raw] { WorkerLoop(raw); });
    workers_.push_back(std::move(w));
  }
  heartbeat_ = std::thread([this] { HeartbeatLoop(); });
}

void ConnectionRegistry::Stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(heartbeat_mu_);
  }
  heartbeat_cv_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
  for (auto& w : workers_) {
    {
      std::lock_guard<std::mutex> lock(w->mu);
    }
    w->cv.notify_all();
    if (w->thread.joinable()) w->thread.join();
  }
}

absl::Status ConnectionRegistry::Add(int64_t user_id, LocalStream* stream) {
  Shard& shard = ShardFor(user_id);
  bool enqueue = false;
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    UserEntry& e = shard.users[user_id];
    // An ending stream no longer counts: its client has its status (or is
    // about to) while the stream's own Remove may still be on its way.
    if (options_.max_streams_per_user > 0 &&
        std::count_if(e.streams.begin(), e.streams.end(),
                      [](const LocalStream* s) { return !s->ending(); }) >=
            options_.max_streams_per_user) {
      return absl::ResourceExhaustedError(
          absl::StrCat("too many open streams: at most ",
                       options_.max_streams_per_user, " per user"));
    }
    ++streams_;
    e.streams.push_back(stream);
    if (e.registered && !e.queued) {
      stream->OnRouteReady();
    } else if (!e.queued) {
      e.queued = true;
      enqueue = true;
    }
    // When queued, the worker will call OnRouteReady for every stream.
  }
  if (enqueue) Enqueue(user_id);
  return absl::OkStatus();
}

void ConnectionRegistry::Remove(int64_t user_id, LocalStream* stream) {
  Shard& shard = ShardFor(user_id);
  bool enqueue = false;
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.users.find(user_id);
    if (it == shard.users.end()) return;
    auto& streams = it->second.streams;
    auto pos = std::find(streams.begin(), streams.end(), stream);
    if (pos == streams.end()) return;
    streams.erase(pos);
    --streams_;
    if (streams.empty() && !it->second.queued) {
      it->second.queued = true;
      enqueue = true;
    }
  }
  if (enqueue) Enqueue(user_id);
}

void ConnectionRegistry::RequestHeartbeat() {
  {
    std::lock_guard<std::mutex> lock(heartbeat_mu_);
    heartbeat_requested_ = true;
  }
  heartbeat_cv_.notify_all();
}

uint64_t ConnectionRegistry::SkipOf(const internal::Delivery& delivery) const {
  return delivery.skip_gateway_id() == options_.gateway_id
             ? delivery.skip_stream_id()
             : 0;
}

size_t ConnectionRegistry::Deliver(const internal::Delivery& delivery) {
  if (delivery.resync_routes()) RequestHeartbeat();
  if (delivery.batch().empty()) {
    if (delivery.recipient_user_ids().empty()) return 0;
    const Addressed one{
        std::make_shared<const parley::v1::ServerFrame>(delivery.frame()),
        SkipOf(delivery)};
    size_t delivered = 0;
    for (int64_t uid : delivery.recipient_user_ids()) {
      delivered += PushToUser(uid, absl::MakeConstSpan(&one, 1));
    }
    return delivered;
  }
  // A batch: each user's frames are gathered first, in batch order. Pushed
  // frame by frame, a frame's write to a stream would be done before the
  // next frame came round to it, and nothing would ever wait to share one.
  absl::flat_hash_map<int64_t, std::vector<Addressed>> per_user;
  auto gather = [&](const internal::Delivery& d) {
    if (d.resync_routes()) RequestHeartbeat();
    if (d.recipient_user_ids().empty()) return;
    const Addressed a{
        std::make_shared<const parley::v1::ServerFrame>(d.frame()), SkipOf(d)};
    for (int64_t uid : d.recipient_user_ids()) per_user[uid].push_back(a);
  };
  for (const internal::Delivery& d : delivery.batch()) {
    // A batch is one level deep; anything deeper is not ours.
    if (d.batch().empty()) gather(d);
  }
  gather(delivery);
  size_t delivered = 0;
  for (const auto& [uid, frames] : per_user) {
    delivered += PushToUser(uid, frames);
  }
  return delivered;
}

size_t ConnectionRegistry::PushToUser(int64_t user_id,
                                      absl::Span<const Addressed> frames) {
  Shard& shard = ShardFor(user_id);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.users.find(user_id);
  if (it == shard.users.end()) return 0;
  size_t pushed = 0;
  // Inline: the common push of one frame allocates nothing here.
  absl::InlinedVector<std::shared_ptr<const parley::v1::ServerFrame>, 4> out;
  for (LocalStream* s : it->second.streams) {
    out.clear();
    for (const Addressed& a : frames) {
      if (a.skip == 0 || a.skip != s->stream_id()) out.push_back(a.frame);
    }
    if (out.empty()) continue;
    s->Push(out);
    pushed += out.size();
  }
  return pushed;
}

void ConnectionRegistry::CloseAll(const grpc::Status& status) {
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (auto& [uid, e] : shard.users) {
      for (LocalStream* s : e.streams) s->Close(status);
    }
  }
}

size_t ConnectionRegistry::user_count() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (const auto& [uid, e] : shard.users) n += !e.streams.empty();
  }
  return n;
}

void ConnectionRegistry::Enqueue(int64_t user_id) {
  Worker& w = *workers_[user_id % workers_.size()];
  {
    std::lock_guard<std::mutex> lock(w.mu);
    w.queue.push_back(user_id);
  }
  w.cv.notify_one();
}

void ConnectionRegistry::WorkerLoop(Worker* w) {
  for (;;) {
    int64_t user_id;
    {
      std::unique_lock<std::mutex> lock(w->mu);
      w->cv.wait(lock, [&] { return stopping_ || !w->queue.empty(); });
      if (w->queue.empty()) return;  // stopping and drained
      user_id = w->queue.front();
      w->queue.pop_front();
    }
    SyncRoute(user_id);
  }
}

// Brings presence in line with whether the user has local streams.
void ConnectionRegistry::SyncRoute(int64_t user_id) {
  Shard& shard = ShardFor(user_id);
  for (;;) {
    bool want;
    {
      std::lock_guard<std::mutex> lock(shard.mu);
      auto it = shard.users.find(user_id);
      if (it == shard.users.end()) return;
      UserEntry& e = it->second;
      want = !e.streams.empty();
      if (want == e.registered) {
        e.queued = false;
        if (want) {
          for (LocalStream* s : e.streams) s->OnRouteReady();
        } else {
          shard.users.erase(it);
        }
        return;
      }
    }
    internal::RouteRequest req;
    req.set_gateway_id(options_.gateway_id);
    req.set_user_id(user_id);
    internal::RouteResponse resp;
    grpc::ClientContext ctx;
    SetTimeout(&ctx, options_.presence_timeout);
    const grpc::Status status =
        want ? presence_->RegisterRoute(&ctx, req, &resp)
             : presence_->UnregisterRoute(&ctx, req, &resp);
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.users.find(user_id);
    if (it == shard.users.end()) return;
    UserEntry& e = it->second;
    if (status.ok()) {
      e.registered = want;
      continue;  // re-check: streams may have come or gone meanwhile
    }
    spdlog::warn("route {} failed for a user: {}",
                 want ? "register" : "unregister",
                 static_cast<int>(status.error_code()));
    presence_failing_ = true;
    e.queued = false;
    if (want) {
      // Serve the streams anyway; the heartbeat registers the route once
      // presence is back.
      for (LocalStream* s : e.streams) s->OnRouteReady();
    } else if (e.streams.empty()) {
      // Retried with the next heartbeat; failing that, the route expires
      // by itself after its TTL.
      shard.users.erase(it);
      std::lock_guard<std::mutex> retry_lock(retry_mu_);
      if (unregister_retries_.size() < 100000) {
        unregister_retries_.push_back(user_id);
      }
    }
    return;
  }
}

void ConnectionRegistry::HeartbeatLoop() {
  std::unique_lock<std::mutex> lock(heartbeat_mu_);
  while (!stopping_) {
    const auto interval =
        presence_failing_ ? std::min(options_.heartbeat_interval,
                                     std::chrono::milliseconds(1000))
                          : options_.heartbeat_interval;
    heartbeat_cv_.wait_for(lock, interval, [this] {
      return stopping_.load() || heartbeat_requested_.load();
    });
    if (stopping_) return;
    heartbeat_requested_ = false;
    lock.unlock();
    presence_failing_ = !SendHeartbeat();
    if (!presence_failing_) RetryUnregisters();
    lock.lock();
  }
}

void ConnectionRegistry::RetryUnregisters() {
  std::vector<int64_t> users;
  {
    std::lock_guard<std::mutex> lock(retry_mu_);
    users.swap(unregister_retries_);
  }
  for (int64_t user_id : users) {
    {
      // Back on this gateway meanwhile: nothing to remove.
      Shard& shard = ShardFor(user_id);
      std::lock_guard<std::mutex> lock(shard.mu);
      if (shard.users.count(user_id)) continue;
    }
    internal::RouteRequest req;
    req.set_gateway_id(options_.gateway_id);
    req.set_user_id(user_id);
    internal::RouteResponse resp;
    grpc::ClientContext ctx;
    SetTimeout(&ctx, options_.presence_timeout);
    if (!presence_->UnregisterRoute(&ctx, req, &resp).ok()) {
      std::lock_guard<std::mutex> lock(retry_mu_);
      unregister_retries_.push_back(user_id);
    }
  }
}

bool ConnectionRegistry::SendHeartbeat() {
  constexpr size_t kBatch = 2000;
  std::vector<int64_t> users;
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (const auto& [uid, e] : shard.users) {
      if (!e.streams.empty()) users.push_back(uid);
    }
  }
  for (size_t i = 0; i < users.size(); i += kBatch) {
    internal::HeartbeatRequest req;
    req.set_gateway_id(options_.gateway_id);
    const size_t end = std::min(users.size(), i + kBatch);
    req.mutable_user_ids()->Add(users.begin() + i, users.begin() + end);
    internal::HeartbeatResponse resp;
    grpc::ClientContext ctx;
    SetTimeout(&ctx, options_.presence_timeout);
    const grpc::Status status = presence_->Heartbeat(&ctx, req, &resp);
    if (!status.ok()) {
      spdlog::warn("heartbeat failed: code {}",
                   static_cast<int>(status.error_code()));
      return false;
    }
    // The routes exist now, whatever happened to them before.
    for (size_t k = i; k < end; ++k) {
      Shard& shard = ShardFor(users[k]);
      std::lock_guard<std::mutex> lock(shard.mu);
      auto it = shard.users.find(users[k]);
      if (it != shard.users.end() && !it->second.streams.empty()) {
        it->second.registered = true;
      }
    }
  }
  return true;
}

}  // namespace parley::gateway
