// The flags every service shares for mutual TLS between the services:
// --internal_tls_ca_file, --internal_tls_cert_file, --internal_tls_key_file
// and --internal_tls_server_name (env PARLEY_INTERNAL_TLS_*). Linking a
// service's main against this file defines them.
//
//   parley::TlsCredentials internal = parley::InternalTlsFromFlags();
//   auto channel = parley::MakeChannel(addr, internal);
#ifndef PARLEY_COMMON_TLS_FLAGS_H_
#define PARLEY_COMMON_TLS_FLAGS_H_

#include "common/grpc_util.h"

namespace parley {

// TlsCredentials::Load at start-up: on error, logs it and exits with
// status 2, like any bad flag.
TlsCredentials LoadTlsOrExit(const TlsFiles& files, TlsRole role);

// The internal TLS files named by the flags, read and checked: all three
// files (mutual TLS for serving and calling) or none (plaintext). Exits on
// error (see LoadTlsOrExit).
TlsCredentials InternalTlsFromFlags();

}  // namespace parley

#endif  // PARLEY_COMMON_TLS_FLAGS_H_
