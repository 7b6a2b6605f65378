// parley-message: the send pipeline and the push streams to gateways.
#include <algorithm>
#include <chrono>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "common/async_call.h"
#include "common/fanout_hub.h"
#include "common/flags.h"
#include "common/grpc_util.h"
#include "common/id_generator.h"
#include "common/logging.h"
#include "common/tls_flags.h"
#include "services/message/message_service.h"
#include "services/message/route_cache.h"
#include "services/message/route_watch.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50052", "Address to serve on.");
ABSL_FLAG(std::string, port_file, "",
          "If set, the bound port is written to this file.");
ABSL_FLAG(std::string, storage_addr, "127.0.0.1:50054",
          "Address of the storage service.");
ABSL_FLAG(std::string, presence_addr, "127.0.0.1:50053",
          "Address of the presence service.");
ABSL_FLAG(int, node_id, 0,
          "Node id (0-1023) in message ids; unique per message instance.");
ABSL_FLAG(int, storage_timeout_ms, 5000, "Deadline of calls to storage.");
ABSL_FLAG(int, presence_timeout_ms, 1000, "Deadline of calls to presence.");
ABSL_FLAG(int, max_reactions_per_message, 20,
          "Most distinct emoji one message may hold.");
ABSL_FLAG(int64_t, max_text_bytes, 16 * 1024,
          "Largest message text (sent or edited), in bytes.");
ABSL_FLAG(bool, batch_fanout, true,
          "Share one route lookup among the events waiting for one; false "
          "looks up every event on its own.");
ABSL_FLAG(int, append_calls, 2,
          "AppendMessages calls to storage in flight at once; sends arriving "
          "meanwhile share the next call. 0 sends each message in its own "
          "AppendMessage call.");
ABSL_FLAG(int, event_order_hold_ms, 50,
          "Longest a chat's event is held back while an earlier seq of that "
          "chat is still on its way, so that live events go out in seq "
          "order. 0: events are pushed as their results come.");
ABSL_FLAG(int, append_batch, 256,
          "Most sends one AppendMessages call carries (1-1024).");
ABSL_FLAG(int, route_cache_users, 1000000,
          "Users whose routes are cached between the changes presence "
          "announces (WatchRoutes); 0 looks every recipient up in presence.");
ABSL_FLAG(int, gateway_queue, 100000,
          "Deliveries queued per gateway stream before it is dropped.");

namespace {

struct Options {
  std::string listen;
  std::string port_file;
  std::string storage_addr;
  std::string presence_addr;
  int node_id;
  int gateway_queue;
  int route_cache_users;
  parley::TlsCredentials internal_tls;
  parley::message::MessageServiceOptions service;
};

}  // namespace

int main(int argc, char** argv) {
  parley::InitProcess(argc, argv,
                      "validates, persists and fans out chat "
                      "events.\nUsage: parley-message [flags]");
  Options o;
  o.listen = absl::GetFlag(FLAGS_listen);
  o.port_file = absl::GetFlag(FLAGS_port_file);
  o.storage_addr = absl::GetFlag(FLAGS_storage_addr);
  o.presence_addr = absl::GetFlag(FLAGS_presence_addr);
  o.node_id = absl::GetFlag(FLAGS_node_id);
  o.gateway_queue = absl::GetFlag(FLAGS_gateway_queue);
  o.route_cache_users = std::max(0, absl::GetFlag(FLAGS_route_cache_users));
  o.service.storage_timeout =
      std::chrono::milliseconds(absl::GetFlag(FLAGS_storage_timeout_ms));
  o.service.presence_timeout =
      std::chrono::milliseconds(absl::GetFlag(FLAGS_presence_timeout_ms));
  o.service.max_reactions_per_message =
      absl::GetFlag(FLAGS_max_reactions_per_message);
  o.service.max_text_bytes = static_cast<size_t>(
      std::max<int64_t>(1, absl::GetFlag(FLAGS_max_text_bytes)));
  if (!absl::GetFlag(FLAGS_batch_fanout)) {
    o.service.fanout.max_events = 1;
    o.service.fanout.max_in_flight = 1 << 20;
  }
  o.service.append_calls = std::max(0, absl::GetFlag(FLAGS_append_calls));
  o.service.order_hold = std::chrono::milliseconds(
      std::max(0, absl::GetFlag(FLAGS_event_order_hold_ms)));
  o.service.append_batch = static_cast<size_t>(
      std::clamp(absl::GetFlag(FLAGS_append_batch), 1, 1024));
  o.internal_tls = parley::InternalTlsFromFlags();

  auto ids = parley::IdGenerator::Create(o.node_id);
  if (!ids.ok()) {
    spdlog::critical("{}", ids.status().ToString());
    return 2;
  }
  std::unique_ptr<parley::IdGenerator> id_generator(*ids);
  auto storage = parley::internal::v1::StorageService::NewStub(
      parley::MakeChannel(o.storage_addr, o.internal_tls));
  auto presence = parley::internal::v1::PresenceService::NewStub(
      parley::MakeChannel(o.presence_addr, o.internal_tls));
  parley::FanoutHub hub(o.gateway_queue);
  std::unique_ptr<parley::message::RouteCache> route_cache;
  std::unique_ptr<parley::message::RouteWatch> route_watch;
  if (o.route_cache_users > 0) {
    route_cache = std::make_unique<parley::message::RouteCache>(
        parley::message::RouteCache::Options{
            .max_users = static_cast<size_t>(o.route_cache_users)});
    route_watch = std::make_unique<parley::message::RouteWatch>(
        "message node " + std::to_string(o.node_id), presence.get(),
        route_cache.get());
  }
  parley::message::MessageServiceImpl service(o.service, id_generator.get(),
                                              storage.get(), presence.get(),
                                              &hub, route_cache.get());
  if (route_watch) route_watch->Start();

  auto server = parley::StartServer(
      {.listen = o.listen, .port_file = o.port_file, .tls = o.internal_tls},
      {&service});
  if (!server.ok()) {
    spdlog::critical("{}", server.status().ToString());
    return 1;
  }
  spdlog::info("message node {} serving on port {}{}", o.node_id, server->port,
               o.internal_tls.enabled() ? " (mutual TLS)" : "");
  const int sig = parley::WaitForShutdownSignal();
  spdlog::info("signal {}: shutting down", sig);
  hub.CloseAll();
  parley::ShutdownGracefully(server->server.get(), std::chrono::seconds(5));
  if (route_watch) route_watch->Stop();
  // Storage calls and route lookups still in flight call back into the
  // service: end them (nobody waits for their answers, and the hub pushes
  // nothing now) before it goes. Their answers may leave events held
  // again, hence the second round.
  for (int round = 0; round < 2; ++round) {
    service.ReleaseHeldEvents();
    parley::CancelAsyncCalls();
    if (!parley::WaitForAsyncCalls(std::chrono::seconds(10))) {
      spdlog::warn("calls to other services still running at exit");
    }
  }
  return 0;
}
