// parley-presence: connection routes, online status and typing, in Redis,
// and the push streams that carry presence and typing frames to gateways.
#include <chrono>
#include <string>

#include "absl/flags/flag.h"
#include "common/async_call.h"
#include "common/fanout_hub.h"
#include "common/flags.h"
#include "common/grpc_util.h"
#include "common/logging.h"
#include "common/thread_pool.h"
#include "common/tls_flags.h"
#include "parley/internal/v1/storage.grpc.pb.h"
#include "services/presence/keyspace_listener.h"
#include "services/presence/live_events.h"
#include "services/presence/presence_service.h"
#include "services/presence/redis_client.h"
#include "services/presence/route_store.h"
#include "services/presence/route_watchers.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50053", "Address to serve on.");
ABSL_FLAG(std::string, port_file, "",
          "If set, the bound port is written to this file.");
ABSL_FLAG(std::string, redis_url, "redis://127.0.0.1:50056/0",
          "Redis server, redis://host:port/db.");
ABSL_FLAG(std::string, storage_addr, "127.0.0.1:50054",
          "Address of the storage service (contacts, members, last-seen).");
ABSL_FLAG(int, redis_pool_size, 8, "Redis connections (and worker threads).");
ABSL_FLAG(int, redis_timeout_ms, 500, "Redis connect and command timeout.");
ABSL_FLAG(int, route_ttl_ms, 30000,
          "How long a route lives without a gateway heartbeat.");
ABSL_FLAG(int, typing_ttl_ms, 6000,
          "How long a typing indicator lives without a refresh.");
ABSL_FLAG(int, offline_grace_ms, 1000,
          "How long a user may be without streams before contacts are told "
          "the user went offline.");
ABSL_FLAG(int, gateway_queue, 100000,
          "Frames queued per gateway stream before it is dropped.");

namespace {

struct Options {
  std::string listen;
  std::string port_file;
  std::string storage_addr;
  parley::presence::RedisClient::Options redis;
  parley::presence::RouteStore::Options routes;
  parley::presence::LiveEvents::Options events;
  int gateway_queue;
  parley::TlsCredentials internal_tls;
};

}  // namespace

int main(int argc, char** argv) {
  parley::InitProcess(argc, argv,
                      "connection routes, online status and typing in Redis."
                      "\nUsage: parley-presence [flags]");
  Options o;
  o.listen = absl::GetFlag(FLAGS_listen);
  o.port_file = absl::GetFlag(FLAGS_port_file);
  o.storage_addr = absl::GetFlag(FLAGS_storage_addr);
  auto redis_options =
      parley::presence::RedisClient::ParseUrl(absl::GetFlag(FLAGS_redis_url));
  if (!redis_options.ok()) {
    spdlog::critical("{}", redis_options.status().ToString());
    return 2;
  }
  o.redis = *redis_options;
  o.redis.pool_size = absl::GetFlag(FLAGS_redis_pool_size);
  o.redis.timeout =
      std::chrono::milliseconds(absl::GetFlag(FLAGS_redis_timeout_ms));
  o.routes.route_ttl =
      std::chrono::milliseconds(absl::GetFlag(FLAGS_route_ttl_ms));
  o.routes.typing_ttl =
      std::chrono::milliseconds(absl::GetFlag(FLAGS_typing_ttl_ms));
  o.events.offline_grace =
      std::chrono::milliseconds(absl::GetFlag(FLAGS_offline_grace_ms));
  o.gateway_queue = absl::GetFlag(FLAGS_gateway_queue);
  o.internal_tls = parley::InternalTlsFromFlags();

  parley::presence::RedisClient redis(o.redis);
  parley::presence::RouteStore routes(&redis, o.routes);
  parley::ThreadPool pool("redis", o.redis.pool_size, 100000);
  parley::FanoutHub hub(o.gateway_queue, /*resync_on_open=*/true);
  auto storage = parley::internal::v1::StorageService::NewStub(
      parley::MakeChannel(o.storage_addr, o.internal_tls));
  parley::presence::LiveEvents events(&routes, &hub, storage.get(), &pool,
                                      o.events);
  parley::presence::RouteWatchers watchers;
  parley::presence::KeyspaceListener listener(
      o.redis,
      {.on_expired =
           [&events, &watchers](const std::string& key) {
             watchers.OnKeyExpired(key);
             events.OnKeyExpired(key);
           },
       .on_route_changes =
           [&watchers](const std::string& payload) {
             watchers.OnPublished(payload);
           },
       // Redis came back (possibly empty): have every gateway re-send its
       // routes now rather than at its next heartbeat.
       .on_resubscribed =
           [&hub] {
             auto resync = std::make_shared<parley::internal::v1::Delivery>();
             resync->set_resync_routes(true);
             hub.Broadcast(std::move(resync));
           },
       .on_subscription =
           [&watchers](bool subscribed) { watchers.SetTracking(subscribed); }});
  parley::presence::PresenceServiceImpl service(&routes, &events, &hub,
                                                &watchers, &pool);
  events.Start();
  listener.Start();

  auto server = parley::StartServer(
      {.listen = o.listen, .port_file = o.port_file, .tls = o.internal_tls},
      {&service});
  if (!server.ok()) {
    spdlog::critical("{}", server.status().ToString());
    return 1;
  }
  spdlog::info("presence serving on port {} (redis {}:{}{})", server->port,
               o.redis.host, o.redis.port,
               o.internal_tls.enabled() ? "; mutual TLS" : "");
  const int sig = parley::WaitForShutdownSignal();
  spdlog::info("signal {}: shutting down", sig);
  hub.CloseAll();
  watchers.CloseAll();
  parley::ShutdownGracefully(server->server.get(), std::chrono::seconds(5));
  // In this order: nothing starts new work, the pool runs what it holds
  // (it may start no storage calls now), and the storage calls in flight
  // finish, whose callbacks use events, the pool and the hub (CallAsync
  // counts them). Only then may the objects above go away.
  listener.Stop();
  events.Stop();
  pool.Shutdown();
  if (!parley::WaitForAsyncCalls(o.events.storage_timeout +
                                 std::chrono::seconds(1))) {
    spdlog::warn("storage calls still in flight at exit");
  }
  return 0;
}
