// parley-gateway: the only client-facing service.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/async_call.h"
#include "common/flags.h"
#include "common/grpc_util.h"
#include "common/logging.h"
#include "common/thread_pool.h"
#include "common/tls_flags.h"
#include "parley/internal/v1/presence.grpc.pb.h"
#include "parley/internal/v1/storage.grpc.pb.h"
#include "services/gateway/auth_service.h"
#include "services/gateway/chat_service.h"
#include "services/gateway/connection_registry.h"
#include "services/gateway/message_backends.h"
#include "services/gateway/push_subscriber.h"
#include "services/gateway/token_authenticator.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "Address to serve on.");
ABSL_FLAG(std::string, port_file, "",
          "If set, the bound port is written to this file.");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate chain (leaf first) served to clients over TLS; "
          "with --tls_key_file. Both empty: plaintext.");
ABSL_FLAG(std::string, tls_key_file, "",
          "PEM private key of --tls_cert_file (unencrypted).");
ABSL_FLAG(std::string, storage_addr, "127.0.0.1:50054",
          "Address of the storage service.");
ABSL_FLAG(std::string, presence_addr, "127.0.0.1:50053",
          "Address of the presence service.");
ABSL_FLAG(std::string, message_addrs, "127.0.0.1:50052",
          "Comma-separated addresses of every message instance.");
ABSL_FLAG(std::string, gateway_id, "",
          "This gateway's id in connection routes; default: random per start.");
ABSL_FLAG(int64_t, token_ttl_s, 30 * 24 * 3600,
          "Lifetime of issued access tokens, in seconds.");
ABSL_FLAG(int, max_group_members, 10000, "Largest allowed group.");
ABSL_FLAG(int, heartbeat_interval_ms, 10000,
          "How often routes are refreshed in presence (keep well below the "
          "presence route TTL).");
ABSL_FLAG(int, backend_timeout_ms, 5000,
          "Deadline of calls to other services.");
ABSL_FLAG(int, stream_queue, 4096,
          "Frames queued for a client that does not read before it is "
          "disconnected.");
ABSL_FLAG(int64_t, stream_queue_bytes, 4 << 20,
          "Bytes of frames queued for a client that does not read before it "
          "is disconnected.");
ABSL_FLAG(int, stream_stall_timeout_ms, 30000,
          "How long a disconnected slow client may take to read the frame "
          "in flight (and so its status) before its stream is cancelled.");
ABSL_FLAG(int, max_inflight_sends, 1024,
          "Sends this gateway has in flight at once, all users together; "
          "beyond it a send is refused with RESOURCE_EXHAUSTED and a retry "
          "delay. 0: no limit.");
ABSL_FLAG(int, send_calls, 2,
          "SendMessages calls in flight per message instance; sends "
          "arriving meanwhile share the next call. 0 sends each message in "
          "its own SendMessage call.");
ABSL_FLAG(int, subscribe_window_bytes, 64 << 10,
          "HTTP/2 stream window of the channels to the message and presence "
          "services, whose Subscribe streams push to this gateway: a backlog "
          "beyond it waits upstream, where it is batched. 0: gRPC's default, "
          "which grows with bandwidth-delay probing.");
ABSL_FLAG(int, max_stream_sends, 64,
          "Send frames of one Connect stream in flight at once; beyond it "
          "the stream is not read until a result goes out.");
ABSL_FLAG(int, stream_batch_frames, 256,
          "Most frames one batch frame of a Connect stream carries, for "
          "clients that ask for batches; 1: no batches.");
ABSL_FLAG(int, max_streams_per_user, 16,
          "Connect streams one user may hold open on this gateway; 0: no "
          "limit.");
ABSL_FLAG(double, write_rate, 20,
          "Event writes (SendMessage, EditMessage, DeleteMessage, reactions, "
          "AddMembers, RemoveMember) per second per user; 0: unlimited.");
ABSL_FLAG(double, write_burst, 200, "Event writes one user may make at once.");
ABSL_FLAG(double, typing_rate, 5,
          "SetTyping calls and typing frames per second per user; 0: "
          "unlimited.");
ABSL_FLAG(double, typing_burst, 30,
          "Typing updates one user may make at once.");
ABSL_FLAG(double, receipt_rate, 50,
          "MarkRead calls and ack frames per second per user; 0: unlimited.");
ABSL_FLAG(double, receipt_burst, 500, "Receipts one user may send at once.");
ABSL_FLAG(double, connect_rate, 1,
          "Connect streams opened per second per user; 0: unlimited.");
ABSL_FLAG(double, connect_burst, 30,
          "Connect streams one user may open at once.");
ABSL_FLAG(int, password_hash_threads, 2, "Threads hashing passwords.");
ABSL_FLAG(int64_t, max_file_bytes, 100LL << 20, "Largest file accepted.");
ABSL_FLAG(int64_t, file_transfer_timeout_ms, 3600000,
          "Longest an upload or download may run; then it ends with "
          "DEADLINE_EXCEEDED.");
ABSL_FLAG(uint64_t, password_hash_ops, 2, "argon2id ops limit.");
ABSL_FLAG(uint64_t, password_hash_mem_kib, 65536, "argon2id memory limit.");

namespace {

struct Options {
  std::string listen;
  std::string port_file;
  // Client-facing TLS (no client certificates).
  parley::TlsFiles tls;
  std::string storage_addr;
  std::string presence_addr;
  std::vector<std::string> message_addrs;
  std::string gateway_id;
  int heartbeat_interval_ms;
  int password_hash_threads;
  int max_streams_per_user;
  parley::gateway::AuthOptions auth;
  parley::gateway::ChatOptions chat;
  parley::gateway::MessageBackendOptions backends;
};

std::string RandomGatewayId() {
  char host[64] = {0};
  gethostname(host, sizeof host - 1);
  std::mt19937_64 rng(std::random_device{}());
  return absl::StrCat("gw-", host, "-", getpid(), "-", rng() % 1000000);
}

Options ReadFlags() {
  Options o;
  o.listen = absl::GetFlag(FLAGS_listen);
  o.port_file = absl::GetFlag(FLAGS_port_file);
  o.tls.cert = absl::GetFlag(FLAGS_tls_cert_file);
  o.tls.key = absl::GetFlag(FLAGS_tls_key_file);
  o.storage_addr = absl::GetFlag(FLAGS_storage_addr);
  o.presence_addr = absl::GetFlag(FLAGS_presence_addr);
  o.message_addrs =
      parley::ParseAddressList(absl::GetFlag(FLAGS_message_addrs));
  o.gateway_id = absl::GetFlag(FLAGS_gateway_id);
  if (o.gateway_id.empty()) o.gateway_id = RandomGatewayId();
  o.heartbeat_interval_ms = absl::GetFlag(FLAGS_heartbeat_interval_ms);
  o.password_hash_threads = absl::GetFlag(FLAGS_password_hash_threads);
  const auto backend_timeout =
      std::chrono::milliseconds(absl::GetFlag(FLAGS_backend_timeout_ms));
  o.auth.token_ttl = std::chrono::seconds(absl::GetFlag(FLAGS_token_ttl_s));
  o.auth.hash_cost.ops_limit = absl::GetFlag(FLAGS_password_hash_ops);
  o.auth.hash_cost.mem_limit_bytes =
      absl::GetFlag(FLAGS_password_hash_mem_kib) * 1024;
  o.auth.storage_timeout = backend_timeout;
  o.chat.max_group_members = absl::GetFlag(FLAGS_max_group_members);
  o.chat.backend_timeout = backend_timeout;
  o.chat.stream.max_queue = absl::GetFlag(FLAGS_stream_queue);
  o.chat.stream.max_queue_bytes = absl::GetFlag(FLAGS_stream_queue_bytes);
  o.chat.stream.stall_timeout =
      std::chrono::milliseconds(absl::GetFlag(FLAGS_stream_stall_timeout_ms));
  o.chat.stream.max_sends = absl::GetFlag(FLAGS_max_stream_sends);
  o.chat.stream.max_batch_frames = absl::GetFlag(FLAGS_stream_batch_frames);
  o.backends.send_calls = std::max(0, absl::GetFlag(FLAGS_send_calls));
  o.backends.channel.stream_window_bytes =
      std::max(0, absl::GetFlag(FLAGS_subscribe_window_bytes));
  o.chat.max_inflight_sends = absl::GetFlag(FLAGS_max_inflight_sends);
  o.max_streams_per_user = absl::GetFlag(FLAGS_max_streams_per_user);
  o.chat.writes = {absl::GetFlag(FLAGS_write_rate),
                   absl::GetFlag(FLAGS_write_burst)};
  o.chat.typing = {absl::GetFlag(FLAGS_typing_rate),
                   absl::GetFlag(FLAGS_typing_burst)};
  o.chat.receipts = {absl::GetFlag(FLAGS_receipt_rate),
                     absl::GetFlag(FLAGS_receipt_burst)};
  o.chat.connects = {absl::GetFlag(FLAGS_connect_rate),
                     absl::GetFlag(FLAGS_connect_burst)};
  o.chat.files.max_file_bytes = absl::GetFlag(FLAGS_max_file_bytes);
  o.chat.files.max_transfer_time = std::chrono::milliseconds(
      std::max<int64_t>(1, absl::GetFlag(FLAGS_file_transfer_timeout_ms)));
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  parley::InitProcess(argc, argv,
                      "the client-facing AuthService and "
                      "ChatService.\nUsage: parley-gateway [flags]");
  const Options o = ReadFlags();
  if (o.message_addrs.empty()) {
    spdlog::critical("--message_addrs must name at least one instance");
    return 2;
  }
  const parley::TlsCredentials public_tls =
      parley::LoadTlsOrExit(o.tls, parley::TlsRole::kServer);
  const parley::TlsCredentials internal_tls = parley::InternalTlsFromFlags();

  auto storage = parley::internal::v1::StorageService::NewStub(
      parley::MakeChannel(o.storage_addr, internal_tls));
  auto presence = parley::internal::v1::PresenceService::NewStub(
      parley::MakeChannel(o.presence_addr, internal_tls, o.backends.channel));
  parley::gateway::TokenAuthenticator auth(
      storage.get(), {.storage_timeout = o.auth.storage_timeout});
  parley::gateway::ConnectionRegistry registry(
      presence.get(),
      {.gateway_id = o.gateway_id,
       .heartbeat_interval = std::chrono::milliseconds(o.heartbeat_interval_ms),
       .max_streams_per_user = o.max_streams_per_user});
  parley::gateway::MessageBackends messages(o.message_addrs, internal_tls,
                                            &registry, o.backends);
  parley::gateway::PushSubscriber presence_events(
      "presence " + o.presence_addr,
      [stub = presence.get()](
          grpc::ClientContext* ctx,
          const parley::internal::v1::SubscribeRequest* req,
          grpc::ClientReadReactor<parley::internal::v1::Delivery>* reactor) {
        stub->async()->Subscribe(ctx, req, reactor);
      },
      &registry);
  parley::ThreadPool hash_pool("pwhash", o.password_hash_threads, 1024);
  parley::gateway::AuthServiceImpl auth_service(o.auth, storage.get(), &auth,
                                                &hash_pool);
  parley::gateway::ChatServiceImpl chat_service(
      o.chat, storage.get(), presence.get(), &messages, &auth, &registry);
  registry.Start();
  messages.Start();
  presence_events.Start();

  auto server = parley::StartServer({.listen = o.listen,
                                     .port_file = o.port_file,
                                     .reflection = true,
                                     .tls = public_tls},
                                    {&auth_service, &chat_service});
  if (!server.ok()) {
    spdlog::critical("{}", server.status().ToString());
    return 1;
  }
  // Report NOT_SERVING until every push stream (each message instance's and
  // presence's) is live, so that a ready gateway never misses live events.
  auto* health = server->server->GetHealthCheckService();
  health->SetServingStatus(false);
  std::atomic<bool> stopping{false};
  std::thread readiness([&] {
    while (messages.live_subscriptions() < static_cast<int>(messages.size()) ||
           !presence_events.live()) {
      if (stopping.load()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    health->SetServingStatus(true);
    spdlog::info("gateway {} ready", o.gateway_id);
  });
  spdlog::info("gateway {} serving on port {} ({}; internal links {})",
               o.gateway_id, server->port,
               public_tls.enabled() ? "TLS" : "plaintext",
               internal_tls.enabled() ? "mutual TLS" : "plaintext");

  const int sig = parley::WaitForShutdownSignal();
  spdlog::info("signal {}: shutting down", sig);
  // Each step's end is logged with the time since the signal, so that a
  // slow shutdown says which step it waited in.
  const auto signalled = std::chrono::steady_clock::now();
  auto step_done = [&](const char* step) {
    spdlog::info("shutdown: {} after {} ms", step,
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - signalled)
                     .count());
  };
  stopping.store(true);
  readiness.join();  // uses the objects below; it may still be waiting
  health->SetServingStatus(false);
  registry.CloseAll(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "gateway is shutting down"));
  parley::ShutdownGracefully(server->server.get(), std::chrono::seconds(5));
  step_done("server stopped");
  messages.Stop();
  presence_events.Stop();
  step_done("subscriptions stopped");
  registry.Stop();
  hash_pool.Shutdown();  // hashes still queued answer through auth_service
  step_done("registry and hashing stopped");
  // Calls to storage, presence and the message instances still in flight
  // call back into the objects above: end them (their callers are gone)
  // and let their callbacks finish before those objects go.
  parley::CancelAsyncCalls();
  if (!parley::WaitForAsyncCalls(std::chrono::seconds(10))) {
    spdlog::warn("calls to other services still running at exit");
  }
  step_done("calls to other services ended");
  return 0;
}
