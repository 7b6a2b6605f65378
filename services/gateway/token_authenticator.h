// Checks the bearer token of ChatService calls. Tokens are random; storage
// keeps only their SHA-256. Resolved tokens are cached for a short while so
// that most calls cost no storage round trip.
//
//   auth.Authenticate(ctx, [reactor](absl::StatusOr<int64_t> user_id) {
//     if (!user_id.ok()) return reactor->Finish(ToGrpcStatus(user_id.status()));
//     ...
//   });
#ifndef PARLEY_SERVICES_GATEWAY_TOKEN_AUTHENTICATOR_H_
#define PARLEY_SERVICES_GATEWAY_TOKEN_AUTHENTICATOR_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "parley/internal/v1/storage.grpc.pb.h"

namespace parley::gateway {

class TokenAuthenticator {
 public:
  struct Options {
    // How long a resolved token is trusted without asking storage again.
    std::chrono::milliseconds cache_ttl{30000};
    size_t max_cache_entries = 200000;
    std::chrono::milliseconds storage_timeout{2000};
  };
  using Done = std::function<void(absl::StatusOr<int64_t>)>;

  TokenAuthenticator(
      ::parley::internal::v1::StorageService::StubInterface* storage,
      Options options);

  // Calls `done` exactly once with the caller's user id, or UNAUTHENTICATED
  // (missing, malformed, unknown or expired token) or UNAVAILABLE. May call
  // it inline.
  void Authenticate(const grpc::ServerContextBase* ctx, Done done);
  // Primes the cache with a token just issued.
  void Remember(const std::string& token_hash, int64_t user_id,
                std::chrono::system_clock::time_point expire_time);

 private:
  struct Entry {
    int64_t user_id;
    std::chrono::system_clock::time_point expire_time;
    std::chrono::steady_clock::time_point cached_until;
  };

  ::parley::internal::v1::StorageService::StubInterface* const storage_;
  const Options options_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace parley::gateway

#endif  // PARLEY_SERVICES_GATEWAY_TOKEN_AUTHENTICATOR_H_
