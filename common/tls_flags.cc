#include "common/tls_flags.h"

#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "common/logging.h"

ABSL_FLAG(std::string, internal_tls_ca_file, "",
          "PEM CA certificates for mutual TLS between the services: servers "
          "require client certificates signed by them, clients verify "
          "servers against them. With --internal_tls_cert_file and "
          "--internal_tls_key_file; all empty: plaintext.");
ABSL_FLAG(std::string, internal_tls_cert_file, "",
          "PEM certificate chain this service presents on internal links, as "
          "server and as client (extended key usages serverAuth and "
          "clientAuth; subject alternative names covering the host it is "
          "reached by).");
ABSL_FLAG(std::string, internal_tls_key_file, "",
          "PEM private key of --internal_tls_cert_file (unencrypted).");
ABSL_FLAG(std::string, internal_tls_server_name, "",
          "Name expected in the certificates of the services this one calls, "
          "instead of the host of each address (e.g. one name shared by all "
          "internal certificates).");

namespace parley {

TlsCredentials LoadTlsOrExit(const TlsFiles& files, TlsRole role) {
  absl::StatusOr<TlsCredentials> tls = TlsCredentials::Load(files, role);
  if (!tls.ok()) {
    spdlog::critical("{}", std::string(tls.status().message()));
    std::exit(2);
  }
  return *std::move(tls);
}

TlsCredentials InternalTlsFromFlags() {
  TlsFiles files;
  files.ca = absl::GetFlag(FLAGS_internal_tls_ca_file);
  files.cert = absl::GetFlag(FLAGS_internal_tls_cert_file);
  files.key = absl::GetFlag(FLAGS_internal_tls_key_file);
  files.server_name = absl::GetFlag(FLAGS_internal_tls_server_name);
  files.flag_prefix = "internal_tls";
  return LoadTlsOrExit(files, TlsRole::kPeer);
}

}  // namespace parley
