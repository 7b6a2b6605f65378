// Channels, deadlines and servers shared by all services.
//
//   auto channel = parley::MakeChannel("127.0.0.1:50054");
//   grpc::ClientContext ctx;
//   parley::SetTimeout(&ctx, std::chrono::seconds(2));
//
//   parley::ServerOptions opts{.listen = "127.0.0.1:0"};
//   auto server = parley::StartServer(opts, {&service});
//   int port = server->port;
#ifndef PARLEY_COMMON_GRPC_UTIL_H_
#define PARLEY_COMMON_GRPC_UTIL_H_

#include <grpcpp/client_context.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace parley {

// A channel to another service with keepalive pings, so a dead peer is
// noticed within seconds even on an idle long-lived stream.
std::shared_ptr<grpc::Channel> MakeChannel(
    const std::string& target,
    std::shared_ptr<grpc::ChannelCredentials> creds = nullptr);

// Every internal call carries a deadline. Internal calls wait for a peer
// that is reconnecting (a restart) until the deadline instead of failing at
// once; a peer still down by then yields UNAVAILABLE.
inline void SetTimeout(grpc::ClientContext* ctx,
                       std::chrono::milliseconds timeout) {
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  ctx->set_wait_for_ready(true);
}

struct ServerOptions {
  // host:port to listen on; port 0 picks a free port.
  std::string listen = "127.0.0.1:0";
  // When set, the bound port is written to this file once serving.
  std::string port_file;
  // Serve gRPC server reflection.
  bool reflection = false;
  // Defaults to insecure credentials.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // Largest message accepted, in bytes.
  int max_receive_message_bytes = 4 << 20;
};

struct RunningServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

// Builds and starts a server with the standard health service.
absl::StatusOr<RunningServer> StartServer(
    const ServerOptions& options, const std::vector<grpc::Service*>& services);

// Waits for SIGINT or SIGTERM (blocked by InitProcess) and returns its number.
int WaitForShutdownSignal();

// Marks the server NOT_SERVING, then shuts it down, letting calls in flight
// finish for up to `grace`.
void ShutdownGracefully(grpc::Server* server, std::chrono::milliseconds grace);

}  // namespace parley

#endif  // PARLEY_COMMON_GRPC_UTIL_H_
