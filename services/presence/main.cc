// parley-presence: connection routes and online status, kept in Redis.
#include <chrono>
#include <string>

#include "absl/flags/flag.h"
#include "common/flags.h"
#include "common/grpc_util.h"
#include "common/logging.h"
#include "common/thread_pool.h"
#include "services/presence/presence_service.h"
#include "services/presence/redis_client.h"
#include "services/presence/route_store.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50053", "Address to serve on.");
ABSL_FLAG(std::string, port_file, "",
          "If set, the bound port is written to this file.");
ABSL_FLAG(std::string, redis_url, "redis://127.0.0.1:50056/0",
          "Redis server, redis://host:port/db.");
ABSL_FLAG(int, redis_pool_size, 8, "Redis connections (and worker threads).");
ABSL_FLAG(int, redis_timeout_ms, 500, "Redis connect and command timeout.");
ABSL_FLAG(int, route_ttl_ms, 30000,
          "How long a route lives without a gateway heartbeat.");

namespace {

struct Options {
  std::string listen;
  std::string port_file;
  parley::presence::RedisClient::Options redis;
  std::chrono::milliseconds route_ttl;
};

}  // namespace

int main(int argc, char** argv) {
  parley::InitProcess(argc, argv,
                      "connection routes and online status "
                      "in Redis.\nUsage: parley-presence [flags]");
  Options o;
  o.listen = absl::GetFlag(FLAGS_listen);
  o.port_file = absl::GetFlag(FLAGS_port_file);
  auto redis_options =
      parley::presence::RedisClient::ParseUrl(absl::GetFlag(FLAGS_redis_url));
  if (!redis_options.ok()) {
    spdlog::critical("{}", redis_options.status().ToString());
    return 2;
  }
  o.redis = *redis_options;
  o.redis.pool_size = absl::GetFlag(FLAGS_redis_pool_size);
  o.redis.timeout = std::chrono::milliseconds(absl::GetFlag(FLAGS_redis_timeout_ms));
  o.route_ttl = std::chrono::milliseconds(absl::GetFlag(FLAGS_route_ttl_ms));

  parley::presence::RedisClient redis(o.redis);
  parley::presence::RouteStore routes(&redis, {.route_ttl = o.route_ttl});
  parley::ThreadPool pool("redis", o.redis.pool_size, 100000);
  parley::presence::PresenceServiceImpl service(&routes, &pool);

  auto server = parley::StartServer(
      {.listen = o.listen, .port_file = o.port_file}, {&service});
  if (!server.ok()) {
    spdlog::critical("{}", server.status().ToString());
    return 1;
  }
  spdlog::info("presence serving on port {} (redis {}:{})", server->port,
               o.redis.host, o.redis.port);
  const int sig = parley::WaitForShutdownSignal();
  spdlog::info("signal {}: shutting down", sig);
  parley::ShutdownGracefully(server->server.get(), std::chrono::seconds(5));
  return 0;
}
