// Channels, deadlines and servers shared by all services.
//
//   auto channel = parley::MakeChannel("127.0.0.1:50054");
//   grpc::ClientContext ctx;
//   parley::SetTimeout(&ctx, std::chrono::seconds(2));
//
//   parley::ServerOptions opts{.listen = "127.0.0.1:0"};
//   auto server = parley::StartServer(opts, {&service});
//   int port = server->port;
//
// Transport security: PEM files are read once at start-up into
// TlsCredentials, which servers and channels then use.
//
//   auto tls = parley::TlsCredentials::Load(
//       {.ca = "ca.pem", .cert = "node.pem", .key = "node.key"},
//       parley::TlsRole::kPeer);
//   if (!tls.ok()) ...;  // a missing or unreadable file, a key without cert
//   auto channel = parley::MakeChannel("storage:50054", *tls);
//   auto server = parley::StartServer({.listen = ..., .tls = *tls}, ...);
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

// PEM files that secure a server or a channel. All empty: plaintext.
struct TlsFiles {
  // CA certificates the peer's certificate must chain to. A server given
  // one requires and verifies client certificates (mutual TLS); a client
  // verifies the server's certificate against it.
  std::string ca;
  // This side's certificate chain (leaf first) and its private key.
  std::string cert;
  std::string key;
  // Clients only: the name the server's certificate must hold instead of
  // the host part of the target address.
  std::string server_name;
  // Names the flags in error messages: "tls" -> "--tls_cert_file".
  std::string flag_prefix = "tls";
};

// Which files a TlsFiles must hold (when it holds any).
enum class TlsRole {
  kServer,  // cert + key; with ca: mutual TLS
  kClient,  // ca; cert + key optional (presented to the server)
  kPeer,    // ca + cert + key: serves and calls with mutual TLS
};

// TLS credentials read from their files once, at start-up.
class TlsCredentials {
 public:
  // Plaintext.
  TlsCredentials() = default;

  // Reads and checks the files for `role`. INVALID_ARGUMENT naming the flag
  // when a file is missing, unreadable or not PEM, or when the set of files
  // does not fit the role (e.g. a certificate without its key).
  static absl::StatusOr<TlsCredentials> Load(const TlsFiles& files,
                                             TlsRole role);
  // Load for a client of the "--tls_*" flags: verifies servers against
  // `ca_file`, presents `cert_file` and `key_file` when given.
  static absl::StatusOr<TlsCredentials> LoadClient(
      const std::string& ca_file, const std::string& cert_file = "",
      const std::string& key_file = "");

  bool enabled() const { return !ca_pem_.empty() || !cert_pem_.empty(); }
  // Mutual TLS when a CA was given.
  std::shared_ptr<grpc::ServerCredentials> ServerCredentials() const;
  std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials() const;
  const std::string& server_name() const { return server_name_; }

 private:
  std::string ca_pem_;
  std::string cert_pem_;
  std::string key_pem_;
  std::string server_name_;
};

struct ChannelOptions {
  // Bytes a stream of the channel may receive ahead of its reader (the
  // HTTP/2 stream window), fixed; 0: gRPC's default, which grows with
  // bandwidth-delay probing. A fixed small window keeps a backlog with the
  // sender, which can batch it, instead of in socket buffers.
  int stream_window_bytes = 0;
};

// A channel to another service with keepalive pings, so a dead peer is
// noticed within seconds even on an idle long-lived stream.
std::shared_ptr<grpc::Channel> MakeChannel(
    const std::string& target, const TlsCredentials& tls = TlsCredentials(),
    const ChannelOptions& options = {});

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
  // Plaintext unless enabled.
  TlsCredentials tls;
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
// finish for up to `grace`. Past it, calls still waiting on calls of their
// own to other services are ended by cancelling those (CancelAsyncCalls).
void ShutdownGracefully(grpc::Server* server, std::chrono::milliseconds grace);

}  // namespace parley

#endif  // PARLEY_COMMON_GRPC_UTIL_H_
