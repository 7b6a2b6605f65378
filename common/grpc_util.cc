#include "common/grpc_util.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/async_call.h"
#include "common/logging.h"

namespace parley {
namespace {

// Reads a PEM file that must contain `marker` (e.g. "CERTIFICATE-----").
absl::StatusOr<std::string> ReadPem(const std::string& path,
                                    const std::string& flag,
                                    absl::string_view marker,
                                    absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  std::string text = buf.str();
  if (!absl::StrContains(text, "-----BEGIN ") ||
      !absl::StrContains(text, marker)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path, " holds no PEM ", what));
  }
  if (absl::StrContains(text, "ENCRYPTED PRIVATE KEY") ||
      absl::StrContains(text, "Proc-Type: 4,ENCRYPTED")) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": ", path, " is encrypted; give an unencrypted key"));
  }
  return text;
}

}  // namespace

absl::StatusOr<TlsCredentials> TlsCredentials::Load(const TlsFiles& files,
                                                    TlsRole role) {
  const std::string ca_flag = absl::StrCat("--", files.flag_prefix, "_ca_file");
  const std::string cert_flag =
      absl::StrCat("--", files.flag_prefix, "_cert_file");
  const std::string key_flag =
      absl::StrCat("--", files.flag_prefix, "_key_file");
  const bool has_ca = !files.ca.empty();
  const bool has_cert = !files.cert.empty();
  const bool has_key = !files.key.empty();
  TlsCredentials tls;
  if (!has_ca && !has_cert && !has_key) return tls;  // plaintext
  if (has_cert != has_key) {
    return absl::InvalidArgumentError(absl::StrCat(
        has_cert ? cert_flag : key_flag, " is set but ",
        has_cert ? key_flag : cert_flag,
        " is not: a certificate and its private key go together"));
  }
  switch (role) {
    case TlsRole::kServer:
      if (!has_cert) {
        return absl::InvalidArgumentError(absl::StrCat(
            ca_flag, " needs ", cert_flag, " and ", key_flag,
            " (the server's own certificate)"));
      }
      break;
    case TlsRole::kClient:
      if (!has_ca) {
        return absl::InvalidArgumentError(
            absl::StrCat(cert_flag, " needs ", ca_flag,
                         " (the CA that signed the server's certificate)"));
      }
      break;
    case TlsRole::kPeer:
      if (!has_ca || !has_cert) {
        return absl::InvalidArgumentError(
            absl::StrCat("mutual TLS needs all of ", ca_flag, ", ", cert_flag,
                         " and ", key_flag));
      }
      break;
  }
  if (has_ca) {
    absl::StatusOr<std::string> ca =
        ReadPem(files.ca, ca_flag, "CERTIFICATE-----", "certificate");
    if (!ca.ok()) return ca.status();
    tls.ca_pem_ = std::move(*ca);
  }
  if (has_cert) {
    absl::StatusOr<std::string> cert =
        ReadPem(files.cert, cert_flag, "CERTIFICATE-----", "certificate");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key =
        ReadPem(files.key, key_flag, "PRIVATE KEY-----", "private key");
    if (!key.ok()) return key.status();
    tls.cert_pem_ = std::move(*cert);
    tls.key_pem_ = std::move(*key);
  }
  tls.server_name_ = files.server_name;
  return tls;
}

absl::StatusOr<TlsCredentials> TlsCredentials::LoadClient(
    const std::string& ca_file, const std::string& cert_file,
    const std::string& key_file) {
  TlsFiles files;
  files.ca = ca_file;
  files.cert = cert_file;
  files.key = key_file;
  return Load(files, TlsRole::kClient);
}

std::shared_ptr<grpc::ServerCredentials> TlsCredentials::ServerCredentials()
    const {
  if (!enabled()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      ca_pem_.empty()
          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = ca_pem_;
  options.pem_key_cert_pairs.push_back({key_pem_, cert_pem_});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> TlsCredentials::ChannelCredentials()
    const {
  if (!enabled()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ca_pem_;
  options.pem_cert_chain = cert_pem_;
  options.pem_private_key = key_pem_;
  return grpc::SslCredentials(options);
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target,
                                           const TlsCredentials& tls,
                                           const ChannelOptions& options) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  // At most about a second between connection attempts: a restarted peer
  // is found again promptly, which matters most for the long-lived
  // Subscribe streams, since pushes to a gateway that is not subscribed are
  // dropped. An attempt on a dead loopback or LAN address costs nothing.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  if (!tls.server_name().empty()) {
    args.SetSslTargetNameOverride(tls.server_name());
  }
  if (options.stream_window_bytes > 0) {
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES,
                options.stream_window_bytes);
  }
  return grpc::CreateCustomChannel(target, tls.ChannelCredentials(), args);
}

absl::StatusOr<RunningServer> StartServer(
    const ServerOptions& options, const std::vector<grpc::Service*>& services) {
  grpc::EnableDefaultHealthCheckService(true);
  if (options.reflection) {
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  }
  grpc::ServerBuilder builder;
  RunningServer running;
  builder.AddListeningPort(options.listen, options.tls.ServerCredentials(),
                           &running.port);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  // Accept the keepalive pings MakeChannel sends and probe idle clients.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  for (grpc::Service* s : services) builder.RegisterService(s);
  running.server = builder.BuildAndStart();
  if (!running.server || running.port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.listen,
        options.tls.enabled() ? " (with TLS: are the certificate and key "
                                "valid and a pair?)"
                              : ""));
  }
  if (!options.port_file.empty()) {
    const std::string tmp = options.port_file + ".tmp";
    {
      std::ofstream out(tmp);
      out << running.port << "\n";
    }
    std::rename(tmp.c_str(), options.port_file.c_str());
  }
  return running;
}

int WaitForShutdownSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

void ShutdownGracefully(grpc::Server* server,
                        std::chrono::milliseconds grace) {
  if (auto* health = server->GetHealthCheckService()) {
    health->SetServingStatus(false);
  }
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  const auto deadline = std::chrono::system_clock::now() + grace;
  std::thread shutdown([&] {
    server->Shutdown(deadline);
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  // At the deadline the server cancels the calls it still has, but a call
  // waiting on one of its own to another service ends only when that one
  // does: cancel those too, until the server is down.
  if (!cv.wait_until(lock, deadline, [&] { return done; })) {
    while (!done) {
      lock.unlock();
      CancelAsyncCalls();
      lock.lock();
      cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return done; });
    }
  }
  lock.unlock();
  shutdown.join();
}

}  // namespace parley
