// Throwaway certificates for TLS tests, made with the `openssl` command.
//
//   auto certs = parley::testing::TestCerts::Create(dir);
//   ASSERT_TRUE(certs.ok()) << certs.status();
//   // certs->ca signs certs->server_cert (SAN DNS:localhost, IP:127.0.0.1)
//   // and certs->client_cert; certs->other_ca signs certs->other_cert.
#ifndef PARLEY_TESTS_SUPPORT_TLS_CERTS_H_
#define PARLEY_TESTS_SUPPORT_TLS_CERTS_H_

#include <string>

#include "absl/status/statusor.h"

namespace parley::testing {

// Paths of PEM files (EC P-256 keys, valid for two days).
struct TestCerts {
  std::string ca;           // the trusted CA
  std::string server_cert;  // by `ca`; serverAuth + clientAuth; SAN
  std::string server_key;   //   DNS:localhost, IP:127.0.0.1
  std::string client_cert;  // by `ca`; clientAuth only
  std::string client_key;
  std::string other_ca;     // an unrelated CA
  std::string other_cert;   // by `other_ca`; same names and usages as
  std::string other_key;    //   server_cert

  // Writes everything into `dir` (which must exist).
  static absl::StatusOr<TestCerts> Create(const std::string& dir);
};

}  // namespace parley::testing

#endif  // PARLEY_TESTS_SUPPORT_TLS_CERTS_H_
